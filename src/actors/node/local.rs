//! The agent's own services and checks: the truth for this node that
//! anti-entropy writes to the catalog. Plain data and Consul's rules for
//! it (check IDs and names, maintenance checks, aggregated health, what a
//! reload keeps); the `Node` actor owns one and does the I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{format_duration, CheckDefinition, ServiceDefinition};
use crate::state::structs::{HealthCheck, HealthStatus, NodeService, RegisterRequest, Weights};
use crate::structs::RequestError;

pub const NODE_MAINT: &str = "_node_maintenance";
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";

/// The shortest interval a check runs at (Consul's `checks.MinInterval`);
/// shorter ones are raised to it with a warning, as Consul does.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a local change can fail with, typed by the answer it deserves.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Bad definition: 400.
    #[error("{0}")]
    Invalid(String),
    /// Unknown service or check: 404.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Request(#[from] RequestError),
}

#[derive(Debug, Clone)]
pub struct LocalService {
    pub service: NodeService,
    /// Came from a config file: a reload may remove or change it.
    pub from_file: bool,
    /// The token it was registered with (Consul's service token); unset,
    /// it syncs with the fallbacks of [`Local::sync_token`]'s callers.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LocalCheck {
    pub row: HealthCheck,
    pub def: CheckDefinition,
    pub from_file: bool,
    /// Since when the check is critical (`deregister_critical_service_after`).
    pub critical_since: Option<Instant>,
    /// The token it was registered with: its own, else its service's
    /// for an inline one. Kept out of `def`, which the runners see.
    pub token: Option<String>,
}

#[derive(Debug, Default)]
pub struct Local {
    node: String,
    pub services: BTreeMap<String, LocalService>,
    pub checks: BTreeMap<String, LocalCheck>,
    /// Services whose catalog entry is behind ("" = the node's own checks).
    pub dirty: BTreeSet<String>,
    /// Only check output changed: synced on `check_update_interval`.
    pub output_dirty: BTreeSet<String>,
    /// Checks removed here that the catalog may still hold.
    pub removed_checks: BTreeSet<String>,
    /// The token and origin of services removed here, until a full pass
    /// has removed them from the catalog: a removal goes with the token
    /// the service had, as Consul's.
    pub removed_tokens: BTreeMap<String, (Option<String>, bool)>,
}

impl Local {
    pub fn new(node: &str) -> Self {
        Local {
            node: node.to_string(),
            ..Default::default()
        }
    }

    /// Adds or replaces a service and its inline checks, dropping the
    /// service's checks the new definition no longer has (files, and the
    /// API's `?replace-existing-checks`). Checks whose definition is
    /// unchanged keep their status and output.
    pub fn add_service(&mut self, def: &ServiceDefinition, from_file: bool) -> String {
        self.add_service_with(def, from_file, true)
    }

    /// [`Local::add_service`]; without `replace_checks` the service's
    /// other checks stay, as Consul's API register keeps them.
    pub fn add_service_with(
        &mut self,
        def: &ServiceDefinition,
        from_file: bool,
        replace_checks: bool,
    ) -> String {
        let id = if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        };
        let service = NodeService {
            id: id.clone(),
            service: def.name.clone(),
            tags: def.tags.clone(),
            address: def.address.clone(),
            meta: def.meta.clone(),
            tagged_addresses: def
                .tagged_addresses
                .iter()
                .map(|(k, a)| {
                    let v = serde_json::json!({"Address": a.address, "Port": a.port});
                    (k.clone(), v)
                })
                .collect(),
            port: def.port,
            weights: def
                .weights
                .map(|(passing, warning)| Weights { passing, warning })
                .unwrap_or_default(),
            enable_tag_override: def.enable_tag_override,
            kind: def.kind.clone(),
            ..Default::default()
        };
        let token = def.token.get().map(str::to_string);
        let mut new_checks = Vec::new();
        for (i, c) in def.checks.iter().enumerate() {
            let mut c = c.clone();
            c.service_id = id.clone();
            if c.token.get().is_none() {
                c.token = def.token.clone();
            }
            let nth = if def.checks.len() > 1 { i + 1 } else { 0 };
            new_checks.push(build_check(&self.node, &c, Some(&service), nth));
        }
        // Checks of the previous version of this service that are gone.
        let keep: BTreeSet<&str> = new_checks
            .iter()
            .map(|(r, _)| r.check_id.as_str())
            .collect();
        let stale: Vec<String> = self
            .checks
            .iter()
            .filter(|(cid, c)| {
                replace_checks
                    && c.row.service_id == id
                    && !keep.contains(cid.as_str())
                    && !cid.starts_with(SERVICE_MAINT_PREFIX)
            })
            .map(|(cid, _)| cid.clone())
            .collect();
        for cid in stale {
            self.checks.remove(&cid);
        }
        self.removed_tokens.remove(&id);
        self.services.insert(
            id.clone(),
            LocalService {
                service: service.clone(),
                from_file,
                token,
            },
        );
        for (row, def) in new_checks {
            self.insert_check(row, def, from_file);
        }
        // Service fields may have changed: refresh the copies in its checks.
        for c in self.checks.values_mut().filter(|c| c.row.service_id == id) {
            c.row.service_name = service.service.clone();
            c.row.service_tags = service.tags.clone();
        }
        self.dirty.insert(id.clone());
        id
    }

    /// `EnableTagOverride`: the catalog's tags, changed there by someone
    /// else, become this service's (Consul's `updateSyncState`), without
    /// making it dirty; false when nothing changed.
    pub fn adopt_tags(&mut self, id: &str, tags: &[String]) -> bool {
        let Some(s) = self.services.get_mut(id) else {
            return false;
        };
        if !s.service.enable_tag_override || s.service.tags == tags {
            return false;
        }
        s.service.tags = tags.to_vec();
        for c in self.checks.values_mut().filter(|c| c.row.service_id == id) {
            c.row.service_tags = tags.to_vec();
        }
        true
    }

    fn insert_check(&mut self, mut row: HealthCheck, mut def: CheckDefinition, from_file: bool) {
        let token = std::mem::take(&mut def.token).get().map(str::to_string);
        let mut critical_since = (row.status == HealthStatus::Critical).then(Instant::now);
        self.removed_checks.remove(&row.check_id);
        if let Some(old) = self.checks.get(&row.check_id) {
            if old.def == def {
                row.status = old.row.status;
                row.output = old.row.output.clone();
                critical_since = old.critical_since;
            }
        }
        self.checks.insert(
            row.check_id.clone(),
            LocalCheck {
                row,
                def,
                from_file,
                critical_since,
                token,
            },
        );
    }

    /// Removes a service and its checks; false when it is unknown.
    pub fn remove_service(&mut self, id: &str) -> bool {
        let Some(gone) = self.services.remove(id) else {
            return false;
        };
        self.removed_tokens
            .insert(id.to_string(), (gone.token, gone.from_file));
        self.checks.retain(|_, c| c.row.service_id != id);
        self.output_dirty.remove(id);
        true
    }

    /// Adds or replaces a check (`/v1/agent/check/register`, files).
    pub fn add_check(
        &mut self,
        def: CheckDefinition,
        from_file: bool,
    ) -> Result<String, LocalError> {
        def.validate().map_err(LocalError::Invalid)?;
        if def.kind().is_empty() {
            return Err(LocalError::Invalid(
                "Invalid check: must have one of HTTP, TCP, UDP, GRPC, Args, TTL or AliasService"
                    .into(),
            ));
        }
        if def.interval.is_none() && !matches!(def.kind(), "ttl" | "alias") {
            return Err(LocalError::Invalid(
                "Invalid check: Interval is required for this check type".into(),
            ));
        }
        if def.name.is_empty() && def.id.is_empty() {
            return Err(LocalError::Invalid("Missing check name".into()));
        }
        let svc = if def.service_id.is_empty() {
            None
        } else {
            Some(
                self.services
                    .get(&def.service_id)
                    .map(|s| s.service.clone())
                    .ok_or_else(|| {
                        LocalError::Invalid(format!(
                            "ServiceID {:?} does not exist",
                            def.service_id
                        ))
                    })?,
            )
        };
        let (row, def) = build_check(&self.node, &def, svc.as_ref(), 0);
        let id = row.check_id.clone();
        self.dirty.insert(row.service_id.clone());
        self.insert_check(row, def, from_file);
        Ok(id)
    }

    pub fn remove_check(&mut self, id: &str) -> bool {
        match self.checks.remove(id) {
            Some(_) => {
                self.removed_checks.insert(id.to_string());
                true
            }
            None => false,
        }
    }

    /// A new result for a check. Status changes are synced at once,
    /// output-only changes later. None when the check is unknown.
    pub fn set_status(&mut self, id: &str, status: HealthStatus, output: &str) -> Option<()> {
        let c = self.checks.get_mut(id)?;
        if c.row.status != status {
            c.row.status = status;
            c.row.output = output.to_string();
            c.critical_since = (status == HealthStatus::Critical).then(Instant::now);
            self.dirty.insert(c.row.service_id.clone());
        } else if c.row.output != output {
            c.row.output = output.to_string();
            self.output_dirty.insert(c.row.service_id.clone());
        }
        Some(())
    }

    /// Services whose critical check asked to deregister them by now.
    pub fn expired_critical(&self, now: Instant) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .values()
            .filter(|c| !c.row.service_id.is_empty())
            .filter(
                |c| match (c.def.deregister_critical_service_after, c.critical_since) {
                    (Some(after), Some(since)) => now.duration_since(since) >= after,
                    _ => false,
                },
            )
            .map(|c| c.row.service_id.clone())
            .collect();
        out.dedup();
        out
    }

    /// Re-applies the config files: their services and checks are
    /// replaced, ones from the API stay; unchanged checks keep their state.
    pub fn reload(
        &mut self,
        services: &[ServiceDefinition],
        checks: &[CheckDefinition],
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let old_services: Vec<String> = self
            .services
            .iter()
            .filter(|(_, s)| s.from_file)
            .map(|(id, _)| id.clone())
            .collect();
        let new_ids: BTreeSet<String> = services
            .iter()
            .map(|d| {
                if d.id.is_empty() {
                    d.name.clone()
                } else {
                    d.id.clone()
                }
            })
            .collect();
        for id in old_services.iter().filter(|id| !new_ids.contains(*id)) {
            self.remove_service(id);
            self.dirty.insert(id.clone());
        }
        for def in services {
            self.add_service(def, true);
        }
        let file_checks: BTreeSet<String> = self
            .checks
            .iter()
            .filter(|(_, c)| c.from_file && c.def.service_id.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        let mut kept = BTreeSet::new();
        for def in checks {
            match self.add_check(def.clone(), true) {
                Ok(id) => {
                    kept.insert(id);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        for id in file_checks.difference(&kept) {
            self.remove_check(id);
        }
        errors
    }

    /// The catalog writes for a service with its checks ("" = the node's
    /// own checks), each on top of this node's row and with the token it
    /// goes with. `token_for(own, from_file)` is the agent's fallback
    /// order (Consul's `aclTokenForServiceSync`). Checks whose token is
    /// the service's ride with it; the others go in writes of their own,
    /// so that no check borrows its service's rights (as Consul's
    /// `syncService`). Only the node's own first write may change the
    /// node row: the others carry a service's or check's token, which
    /// need not have `node:write`.
    pub fn registrations(
        &self,
        service_id: &str,
        node_row: &RegisterRequest,
        token_for: impl Fn(Option<&str>, bool) -> Option<String>,
    ) -> Vec<(RegisterRequest, Option<String>)> {
        let service = self.services.get(service_id);
        let lead = match service {
            Some(s) => token_for(s.token.as_deref(), s.from_file),
            None => token_for(None, false),
        };
        let mut groups: Vec<(Option<String>, Vec<HealthCheck>)> = vec![(lead, Vec::new())];
        for c in self
            .checks
            .values()
            .filter(|c| c.row.service_id == service_id)
        {
            let token = token_for(c.token.as_deref(), c.from_file);
            match groups.iter_mut().find(|(t, _)| *t == token) {
                Some((_, checks)) => checks.push(c.row.clone()),
                None => groups.push((token, vec![c.row.clone()])),
            }
        }
        groups
            .into_iter()
            .enumerate()
            .map(|(i, (token, checks))| {
                let req = RegisterRequest {
                    service: service.map(|s| s.service.clone()),
                    checks,
                    skip_node_update: node_row.skip_node_update
                        || !(service_id.is_empty() && i == 0),
                    ..node_row.clone()
                };
                (req, token)
            })
            .collect()
    }

    pub fn rows(&self) -> BTreeMap<String, HealthCheck> {
        self.checks
            .iter()
            .map(|(id, c)| (id.clone(), c.row.clone()))
            .collect()
    }

    /// What the `Health` actor runs.
    pub fn specs(&self) -> Vec<(String, CheckDefinition)> {
        self.checks
            .iter()
            .filter(|(_, c)| {
                matches!(
                    c.def.kind(),
                    "http" | "tcp" | "udp" | "grpc" | "script" | "ttl"
                )
            })
            .map(|(id, c)| (id.clone(), c.def.clone()))
            .collect()
    }

    /// The worst status among a service's checks and the node's own
    /// (Consul's `AggregatedStatus`); passing when there are none.
    pub fn aggregated(&self, service_id: &str) -> HealthStatus {
        self.checks
            .values()
            .filter(|c| c.row.service_id == service_id || c.row.service_id.is_empty())
            .map(|c| c.row.status)
            .max()
            .unwrap_or(HealthStatus::Passing)
    }

    /// Node maintenance on (with a reason) or off; whether anything changed.
    pub fn node_maintenance(&mut self, enable: bool, reason: &str) -> bool {
        if !enable {
            return self.remove_check(NODE_MAINT);
        }
        let notes = if reason.is_empty() {
            "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.".to_string()
        } else {
            reason.to_string()
        };
        self.insert_maintenance(NODE_MAINT.into(), "Node Maintenance Mode", notes, None);
        true
    }

    /// Service maintenance; NotFound for an unknown service.
    pub fn service_maintenance(
        &mut self,
        id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<(), LocalError> {
        let svc = self
            .services
            .get(id)
            .map(|s| s.service.clone())
            .ok_or_else(|| LocalError::NotFound(format!("Unknown service ID {id:?}")))?;
        let check_id = format!("{SERVICE_MAINT_PREFIX}{id}");
        if !enable {
            self.remove_check(&check_id);
            return Ok(());
        }
        let notes = if reason.is_empty() {
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.".to_string()
        } else {
            reason.to_string()
        };
        self.insert_maintenance(check_id, "Service Maintenance Mode", notes, Some(&svc));
        Ok(())
    }

    fn insert_maintenance(
        &mut self,
        id: String,
        name: &str,
        notes: String,
        svc: Option<&NodeService>,
    ) {
        let mut row = HealthCheck {
            node: self.node.clone(),
            check_id: id.clone(),
            name: name.into(),
            status: HealthStatus::Critical,
            notes,
            r#type: "maintenance".into(),
            definition: serde_json::json!({}),
            ..Default::default()
        };
        if let Some(s) = svc {
            row.service_id = s.id.clone();
            row.service_name = s.service.clone();
            row.service_tags = s.tags.clone();
        }
        // A service's maintenance check goes with the service's token.
        let token = self
            .services
            .get(&row.service_id)
            .and_then(|s| s.token.clone());
        self.dirty.insert(row.service_id.clone());
        self.checks.insert(
            id,
            LocalCheck {
                row,
                def: CheckDefinition::default(),
                from_file: false,
                critical_since: None,
                token,
            },
        );
    }
}

/// A check definition as the catalog row it becomes, with Consul's naming:
/// `service:<id>` (`:N` when a service has several), `Service '<name>' check`.
pub fn build_check(
    node: &str,
    def: &CheckDefinition,
    svc: Option<&NodeService>,
    nth: usize,
) -> (HealthCheck, CheckDefinition) {
    let (id, name) = match svc {
        Some(s) => (
            if !def.id.is_empty() {
                def.id.clone()
            } else if nth == 0 {
                format!("service:{}", s.id)
            } else {
                format!("service:{}:{}", s.id, nth)
            },
            if def.name.is_empty() {
                format!("Service '{}' check", s.service)
            } else {
                def.name.clone()
            },
        ),
        None => {
            let id = if def.id.is_empty() {
                def.name.clone()
            } else {
                def.id.clone()
            };
            let name = if def.name.is_empty() {
                id.clone()
            } else {
                def.name.clone()
            };
            (id, name)
        }
    };
    let status = HealthStatus::parse(&def.status)
        .filter(|s| *s != HealthStatus::Any)
        .unwrap_or(HealthStatus::Critical);
    let mut def = def.clone();
    // Consul's `checks.MinInterval`: a probe runs at most once a second,
    // so that a registration (a typo, or a fuzzer's `1ns`) cannot turn a
    // check into a busy loop of connections or forks.
    if let Some(interval) = def.interval.filter(|i| *i < MIN_CHECK_INTERVAL) {
        tracing::warn!(check = %id, ?interval, minimum = ?MIN_CHECK_INTERVAL, "check has interval below minimum");
        def.interval = Some(MIN_CHECK_INTERVAL);
    }
    let mut definition = serde_json::Map::new();
    let dur = |d: &Option<Duration>| d.map(format_duration);
    for (k, v) in [
        ("Interval", dur(&def.interval)),
        ("Timeout", dur(&def.timeout)),
        ("TTL", dur(&def.ttl)),
        (
            "DeregisterCriticalServiceAfter",
            dur(&def.deregister_critical_service_after),
        ),
    ] {
        if let Some(v) = v {
            definition.insert(k.into(), v.into());
        }
    }
    for (k, v) in [
        ("HTTP", &def.http),
        ("TCP", &def.tcp),
        ("UDP", &def.udp),
        ("GRPC", &def.grpc),
        ("Method", &def.method),
    ] {
        if !v.is_empty() {
            definition.insert(k.into(), v.clone().into());
        }
    }
    let mut row = HealthCheck {
        node: node.to_string(),
        check_id: id,
        name,
        status,
        notes: def.notes.clone(),
        service_id: def.service_id.clone(),
        r#type: def.kind().to_string(),
        definition: serde_json::Value::Object(definition),
        ..Default::default()
    };
    if let Some(s) = svc {
        row.service_id = s.id.clone();
        row.service_name = s.service.clone();
        row.service_tags = s.tags.clone();
        def.service_id = s.id.clone();
    }
    (row, def)
}

#[cfg(test)]
mod tests;
