//! User events on this agent (`/v1/event/*`): the last 256 it accepted
//! after its node, service and tag filters (Consul's
//! `shouldProcessUserEvent`), firing them into its LAN pool (the router
//! sends another datacenter's through the servers), and the signal
//! blocking lists wait on.

use std::collections::VecDeque;

use actix::prelude::*;
use tokio::sync::watch;

use super::router::FireLocalEvent;
use super::NodeActor;
use crate::structs::{RequestError, UserEvent, USER_EVENT_SIZE_LIMIT};

/// Events an agent keeps (Consul's ring of 256).
const KEPT: usize = 256;

pub struct EventLog {
    events: VecDeque<UserEvent>,
    /// Bumped on every accepted event.
    changed: watch::Sender<u64>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            events: VecDeque::new(),
            changed: watch::channel(0).0,
        }
    }
}

impl EventLog {
    fn push(&mut self, ev: UserEvent) {
        if self.events.len() >= KEPT {
            self.events.pop_front();
        }
        self.events.push_back(ev);
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Consul's index for an event list: the newest event's ID folded into
/// 64 bits (halves of the UUID xor'ed), so it changes with every event.
pub fn event_index(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return 0;
    }
    let low = u64::from_str_radix(&hex[0..16], 16).unwrap_or(0);
    let high = u64::from_str_radix(&hex[16..32], 16).unwrap_or(0);
    low ^ high
}

/// A filter is a regular expression, unanchored as in Go.
fn compile(what: &str, re: &str) -> Result<Option<regex::Regex>, String> {
    if re.is_empty() {
        return Ok(None);
    }
    regex::Regex::new(re)
        .map(Some)
        .map_err(|e| format!("Invalid {what} filter: {e}"))
}

/// Refuses filters that are not regular expressions, and events too big
/// to gossip, before anything is sent.
pub fn validate(ev: &UserEvent) -> Result<(), String> {
    if ev.name.is_empty() {
        return Err("User event missing name".into());
    }
    if !ev.tag_filter.is_empty() && ev.service_filter.is_empty() {
        return Err("Cannot provide tag filter without service filter".into());
    }
    compile("node", &ev.node_filter)?;
    compile("service", &ev.service_filter)?;
    compile("tag", &ev.tag_filter)?;
    if ev.size() > USER_EVENT_SIZE_LIMIT {
        return Err(format!(
            "user event exceeds configured limit of {} bytes before encoding",
            USER_EVENT_SIZE_LIMIT
        ));
    }
    Ok(())
}

/// Whether this agent takes the event: its node name matches the node
/// filter and one of its services (with a matching tag) the service filter.
pub fn accepts<'a>(
    ev: &UserEvent,
    node: &str,
    mut services: impl Iterator<Item = (&'a str, &'a [String])>,
) -> bool {
    let (Ok(node_re), Ok(service_re), Ok(tag_re)) = (
        compile("node", &ev.node_filter),
        compile("service", &ev.service_filter),
        compile("tag", &ev.tag_filter),
    ) else {
        return false;
    };
    if node_re.is_some_and(|re| !re.is_match(node)) {
        return false;
    }
    let Some(service_re) = service_re else {
        return true;
    };
    services.any(|(name, tags)| {
        service_re.is_match(name)
            && tag_re
                .as_ref()
                .is_none_or(|re| tags.iter().any(|t| re.is_match(t)))
    })
}

/// The events this agent holds, oldest first, and a receiver that changes
/// when another arrives.
#[derive(Message)]
#[rtype(result = "(Vec<UserEvent>, watch::Receiver<u64>)")]
pub struct ListEvents;

impl Handler<FireLocalEvent> for NodeActor {
    type Result = ResponseFuture<Result<UserEvent, RequestError>>;

    fn handle(&mut self, msg: FireLocalEvent, ctx: &mut Context<Self>) -> Self::Result {
        match &self.lan {
            Some(lan) => {
                let lan = lan.clone();
                Box::pin(async move {
                    lan.send(crate::lan::FireEvent(msg.0))
                        .await
                        .map_err(|_| RequestError::ShuttingDown)
                })
            }
            // No gossip (a lone agent): this agent is the whole pool.
            None => {
                let ev = msg.0;
                ctx.notify(ev.clone());
                Box::pin(async move { Ok(ev) })
            }
        }
    }
}

impl Handler<UserEvent> for NodeActor {
    type Result = ();

    fn handle(&mut self, ev: UserEvent, _: &mut Context<Self>) {
        let services = self
            .local
            .services
            .values()
            .map(|s| (s.service.service.as_str(), s.service.tags.as_slice()));
        if accepts(&ev, &self.config.node_name, services) {
            tracing::debug!(name = %ev.name, id = %ev.id, "user event");
            self.events.push(ev);
        }
    }
}

impl Handler<ListEvents> for NodeActor {
    type Result = MessageResult<ListEvents>;

    fn handle(&mut self, _: ListEvents, _: &mut Context<Self>) -> Self::Result {
        MessageResult((
            self.events.events.iter().cloned().collect(),
            self.events.changed.subscribe(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(node: &str, service: &str, tag: &str) -> UserEvent {
        UserEvent {
            id: "b54fe110-7af5-cafc-d1fb-afc8ba432b1c".into(),
            name: "deploy".into(),
            payload: None,
            node_filter: node.into(),
            service_filter: service.into(),
            tag_filter: tag.into(),
            version: 1,
            ltime: 0,
        }
    }

    #[test]
    fn filters_match_as_consul_does() {
        let tags = vec!["v1".to_string(), "primary".to_string()];
        let svcs = || vec![("web", tags.as_slice()), ("db", &[][..])].into_iter();
        assert!(accepts(&ev("", "", ""), "n1", svcs()));
        assert!(accepts(&ev("^n", "", ""), "n1", svcs()));
        assert!(!accepts(&ev("^x", "", ""), "n1", svcs()));
        assert!(accepts(&ev("", "we", ""), "n1", svcs()), "unanchored");
        assert!(!accepts(&ev("", "^api$", ""), "n1", svcs()));
        assert!(accepts(&ev("", "web", "prim"), "n1", svcs()));
        assert!(!accepts(&ev("", "db", "prim"), "n1", svcs()));
        assert!(!accepts(&ev("", "web", ""), "n1", std::iter::empty()));
        assert!(validate(&ev("(", "", "")).is_err());
        assert!(validate(&ev("", "", "x")).is_err());
        let mut big = ev("", "", "");
        big.payload = Some(vec![0; 600]);
        assert!(validate(&big)
            .unwrap_err()
            .contains("exceeds configured limit"));
    }

    #[test]
    fn index_folds_the_uuid_as_consul() {
        // 0xb54fe1107af5cafc ^ 0xd1fbafc8ba432b1c
        assert_eq!(
            event_index("b54fe110-7af5-cafc-d1fb-afc8ba432b1c"),
            0xb54fe1107af5cafc ^ 0xd1fbafc8ba432b1c
        );
        assert_eq!(event_index("garbage"), 0);
    }
}
