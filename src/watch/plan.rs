//! What a watch is: the view followed ([`WatchKind`]), where and how it
//! reads ([`WatchPlan`]) and what runs on a change ([`WatchHandler`]),
//! checked with Consul's messages whether the parameters came from
//! `meridian watch` flags or a config file's `watches`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WatchKind {
    Key(String),
    KeyPrefix(String),
    /// Meridian extension (`-changes-only`): a prefix whose handler gets
    /// the whole listing once, then only the keys written or deleted
    /// since the previous run (deleted ones as `{"Key", "Deleted": true,
    /// "ModifyIndex"}`).
    KeyPrefixChanges(String),
    Services,
    Nodes,
    Service {
        service: String,
        tags: Vec<String>,
        passing_only: bool,
    },
    Checks {
        service: Option<String>,
        state: Option<String>,
    },
    Event {
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum WatchHandler {
    /// Print the first result and stop (`meridian watch` without a handler).
    #[default]
    Print,
    /// A command run on every change, the JSON on its stdin.
    Script { args: Vec<String>, shell: bool },
    /// An HTTP request on every change, the JSON as its body.
    Http {
        path: String,
        method: String,
        headers: BTreeMap<String, Vec<String>>,
        timeout: Duration,
        tls_skip_verify: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchPlan {
    pub kind: WatchKind,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    pub stale: bool,
    pub handler: WatchHandler,
}

#[derive(Debug, Error, PartialEq)]
pub enum WatchError {
    #[error("{0}")]
    Invalid(String),
}

/// The parameters of a watch, whatever they came from (flags or a file).
#[derive(Debug, Default, Clone)]
pub struct WatchParams {
    pub kind: String,
    pub key: Option<String>,
    pub prefix: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    pub passing_only: bool,
    pub state: Option<String>,
    pub name: Option<String>,
    /// Only what changed (`keyprefix` watches; a Meridian extension).
    pub changes_only: bool,
}

impl WatchKind {
    /// Checks the parameters a type needs, with Consul's messages.
    pub fn from_params(p: &WatchParams) -> Result<WatchKind, WatchError> {
        let need = |v: &Option<String>, msg: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| WatchError::Invalid(msg.to_string()))
        };
        if p.changes_only && p.kind != "keyprefix" {
            return Err(WatchError::Invalid(
                "changes-only is only for keyprefix watches".into(),
            ));
        }
        Ok(match p.kind.as_str() {
            "key" => WatchKind::Key(need(&p.key, "Must specify a single key to watch")?),
            "keyprefix" => {
                let prefix = p.prefix.clone().ok_or_else(|| {
                    WatchError::Invalid("Must specify a single prefix to watch".into())
                })?;
                if p.changes_only {
                    WatchKind::KeyPrefixChanges(prefix)
                } else {
                    WatchKind::KeyPrefix(prefix)
                }
            }
            "services" => WatchKind::Services,
            "nodes" => WatchKind::Nodes,
            "service" => WatchKind::Service {
                service: need(&p.service, "Must specify a single service to watch")?,
                tags: p.tags.clone(),
                passing_only: p.passing_only,
            },
            "checks" => {
                if p.service.is_some() && p.state.is_some() {
                    return Err(WatchError::Invalid(
                        "Cannot specify service and state".into(),
                    ));
                }
                WatchKind::Checks {
                    service: p.service.clone(),
                    state: p.state.clone(),
                }
            }
            "event" => WatchKind::Event {
                name: p.name.clone().filter(|n| !n.is_empty()),
            },
            "" => return Err(WatchError::Invalid("Watch type must be specified".into())),
            other => {
                return Err(WatchError::Invalid(format!(
                    "Unsupported watch type: {other}"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kind: &str) -> WatchParams {
        WatchParams {
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_type_asks_for_what_it_needs() {
        assert_eq!(
            WatchKind::from_params(&params("key")),
            Err(WatchError::Invalid(
                "Must specify a single key to watch".into()
            ))
        );
        assert!(WatchKind::from_params(&params("service")).is_err());
        assert!(WatchKind::from_params(&params("bogus")).is_err());
        assert!(WatchKind::from_params(&params("")).is_err());
        let mut p = params("checks");
        p.service = Some("web".into());
        p.state = Some("critical".into());
        assert!(WatchKind::from_params(&p).is_err());
        let mut p = params("keyprefix");
        p.prefix = Some("app/".into());
        p.changes_only = true;
        assert_eq!(
            WatchKind::from_params(&p),
            Ok(WatchKind::KeyPrefixChanges("app/".into()))
        );
        let mut p = params("key");
        p.key = Some("k".into());
        p.changes_only = true;
        assert!(WatchKind::from_params(&p).is_err());
    }
}
