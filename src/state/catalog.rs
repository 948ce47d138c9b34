//! The catalog tables: nodes, service instances and health checks, and the
//! catalog and health reads over them.
//!
//! Index entries `svc/<name>` and `node/<name>` move whenever anything a
//! read of that service or node returns changes (a node-level check moves
//! every service on the node), so blocking queries on one service neither
//! miss a change nor report another service's.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::structs::{
    aggregate, CheckServiceNode, DeregisterRequest, DnsInstance, HealthCheck, HealthStatus, Node,
    NodeService, NodeServices, RegisterRequest, ServiceNode,
};
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_CHECKS, T_NODES, T_SERVICES};

#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CatalogError {
    #[error("Must provide node")]
    MissingNode,
    #[error("Must provide address if SkipNodeUpdate is not set")]
    MissingAddress,
    #[error("Must provide service name (Service.Service) with ID {0:?}")]
    MissingServiceName(String),
    #[error("Missing node registration")]
    UnknownNode,
    #[error("Unknown service ID '{0}' for check ID '{1}'")]
    UnknownServiceForCheck(String, String),
}

fn svc_key(name: &str) -> String {
    format!("svc/{name}")
}

fn node_key(name: &str) -> String {
    format!("node/{name}")
}

fn tags_match(have: &[String], want: &[String]) -> bool {
    want.iter()
        .all(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w)))
}

impl StateStore {
    /// Registers a node and optionally a service and checks on it, as
    /// `/v1/catalog/register` does. Unchanged rows keep their indexes.
    pub fn ensure_registration(
        &mut self,
        index: u64,
        req: &RegisterRequest,
    ) -> Result<(), CatalogError> {
        self.check_registration(req)?;
        let node_exists = self.nodes.contains_key(&req.node);
        if !(req.skip_node_update && node_exists) {
            self.ensure_node(
                index,
                Node {
                    id: req.id.clone(),
                    node: req.node.clone(),
                    address: req.address.clone(),
                    datacenter: req.datacenter.clone(),
                    tagged_addresses: req.tagged_addresses.clone(),
                    meta: req.node_meta.clone(),
                    create_index: 0,
                    modify_index: 0,
                },
            );
        }
        if let Some(svc) = &req.service {
            self.ensure_service(index, &req.node, svc.clone());
        }
        for c in req.check.iter().chain(req.checks.iter()) {
            self.ensure_check(index, &req.node, c.clone())?;
        }
        Ok(())
    }

    /// Everything a registration can be refused for, checked before any
    /// row is written: Consul applies a registration in one transaction,
    /// so a refused one (a check naming a service the node does not
    /// have) leaves no node or service behind.
    fn check_registration(&self, req: &RegisterRequest) -> Result<(), CatalogError> {
        if req.node.is_empty() {
            return Err(CatalogError::MissingNode);
        }
        let node_exists = self.nodes.contains_key(&req.node);
        if !(req.skip_node_update && node_exists) && req.address.is_empty() {
            return Err(CatalogError::MissingAddress);
        }
        let registered = match &req.service {
            Some(svc) if svc.service.is_empty() => {
                return Err(CatalogError::MissingServiceName(svc.id.clone()))
            }
            Some(svc) if svc.id.is_empty() => Some(svc.service.as_str()),
            Some(svc) => Some(svc.id.as_str()),
            None => None,
        };
        for c in req.check.iter().chain(req.checks.iter()) {
            let known = c.service_id.is_empty()
                || registered == Some(c.service_id.as_str())
                || self
                    .services
                    .contains_key(&(req.node.clone(), c.service_id.clone()));
            if !known {
                return Err(CatalogError::UnknownServiceForCheck(
                    c.service_id.clone(),
                    c.check_id.clone(),
                ));
            }
        }
        Ok(())
    }

    fn ensure_node(&mut self, index: u64, mut node: Node) {
        if let Some(old) = self.nodes.get(&node.node) {
            node.create_index = old.create_index;
            node.modify_index = old.modify_index;
            if node.id.is_empty() {
                node.id = old.id.clone();
            }
            if *old == node {
                return;
            }
        } else {
            node.create_index = index;
        }
        node.modify_index = index;
        let name = node.node.clone();
        self.nodes.insert(name.clone(), node);
        self.bump(T_NODES, index);
        self.node_changed(index, &name);
    }

    fn ensure_service(&mut self, index: u64, node: &str, mut svc: NodeService) {
        if svc.id.is_empty() {
            svc.id = svc.service.clone();
        }
        let key = (node.to_string(), svc.id.clone());
        let old_name = match self.services.get(&key) {
            Some(old) => {
                svc.create_index = old.create_index;
                svc.modify_index = old.modify_index;
                if *old == svc {
                    return;
                }
                Some(old.service.clone())
            }
            None => {
                svc.create_index = index;
                None
            }
        };
        svc.modify_index = index;
        let name = svc.service.clone();
        if let Some(old) = old_name.filter(|o| *o != name) {
            self.unindex_service(&old, &key);
            self.service_changed(index, &old, node);
        }
        self.by_service_name
            .entry(name.clone())
            .or_default()
            .insert(key.clone());
        self.services.insert(key, svc);
        self.service_changed(index, &name, node);
    }

    fn ensure_check(
        &mut self,
        index: u64,
        node: &str,
        mut check: HealthCheck,
    ) -> Result<(), CatalogError> {
        if !self.nodes.contains_key(node) {
            return Err(CatalogError::UnknownNode);
        }
        check.node = node.to_string();
        if !check.service_id.is_empty() {
            match self
                .services
                .get(&(node.to_string(), check.service_id.clone()))
            {
                Some(s) => {
                    check.service_name = s.service.clone();
                    check.service_tags = s.tags.clone();
                }
                None => {
                    return Err(CatalogError::UnknownServiceForCheck(
                        check.service_id.clone(),
                        check.check_id.clone(),
                    ))
                }
            }
        }
        let key = (node.to_string(), check.check_id.clone());
        match self.checks.get(&key) {
            Some(old) => {
                check.create_index = old.create_index;
                check.modify_index = old.modify_index;
                if *old == check {
                    return Ok(());
                }
            }
            None => check.create_index = index,
        }
        check.modify_index = index;
        let service = (!check.service_name.is_empty()).then(|| check.service_name.clone());
        let critical = check.status == HealthStatus::Critical;
        let check_id = check.check_id.clone();
        self.checks.insert(key, check);
        self.check_changed(index, node, service.as_deref());
        if critical {
            self.invalidate_sessions(index, node, Some(&check_id));
        }
        Ok(())
    }

    /// Removes a check, a service (with its checks) or a whole node, as
    /// `/v1/catalog/deregister` does. Unknown rows are not an error.
    pub fn deregister(&mut self, index: u64, req: &DeregisterRequest) -> Result<(), CatalogError> {
        if req.node.is_empty() {
            return Err(CatalogError::MissingNode);
        }
        if !req.check_id.is_empty() {
            self.delete_check(index, &req.node, &req.check_id);
        } else if !req.service_id.is_empty() {
            self.delete_service(index, &req.node, &req.service_id);
        } else {
            self.delete_node(index, &req.node);
        }
        Ok(())
    }

    fn delete_check(&mut self, index: u64, node: &str, check_id: &str) {
        if let Some(c) = self
            .checks
            .remove(&(node.to_string(), check_id.to_string()))
        {
            let service = (!c.service_name.is_empty()).then_some(c.service_name);
            self.check_changed(index, node, service.as_deref());
            self.invalidate_sessions(index, node, Some(check_id));
        }
    }

    fn delete_service(&mut self, index: u64, node: &str, service_id: &str) {
        let key = (node.to_string(), service_id.to_string());
        let Some(svc) = self.services.remove(&key) else {
            return;
        };
        let doomed: Vec<String> = self
            .node_checks_iter(node)
            .filter(|c| c.service_id == service_id)
            .map(|c| c.check_id.clone())
            .collect();
        for id in doomed {
            self.checks.remove(&(node.to_string(), id.clone()));
            self.bump(T_CHECKS, index);
            self.fire(WatchKey::Checks);
            self.invalidate_sessions(index, node, Some(&id));
        }
        self.unindex_service(&svc.service, &key);
        self.service_changed(index, &svc.service, node);
    }

    fn delete_node(&mut self, index: u64, node: &str) {
        self.invalidate_sessions(index, node, None);
        let ids: Vec<String> = self
            .node_services_iter(node)
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.delete_service(index, node, &id);
        }
        let checks: Vec<String> = self
            .node_checks_iter(node)
            .map(|c| c.check_id.clone())
            .collect();
        for id in checks {
            self.delete_check(index, node, &id);
        }
        self.coordinates_delete_node(index, node);
        if self.nodes.remove(node).is_some() {
            self.bump(T_NODES, index);
            self.node_changed(index, node);
        }
    }

    fn unindex_service(&mut self, name: &str, key: &(String, String)) {
        if let Some(set) = self.by_service_name.get_mut(name) {
            set.remove(key);
            if set.is_empty() {
                self.by_service_name.remove(name);
            }
        }
    }

    fn node_changed(&mut self, index: u64, node: &str) {
        self.bump(&node_key(node), index);
        self.fire(WatchKey::Nodes);
        self.fire(WatchKey::Node(node.to_string()));
        // Health reads of every service on this node include the node.
        let names: BTreeSet<String> = self
            .node_services_iter(node)
            .map(|s| s.service.clone())
            .collect();
        for n in names {
            self.bump(&svc_key(&n), index);
            self.fire(WatchKey::Service(n));
        }
    }

    fn service_changed(&mut self, index: u64, name: &str, node: &str) {
        self.bump(T_SERVICES, index);
        self.bump(&svc_key(name), index);
        self.bump(&node_key(node), index);
        self.fire(WatchKey::Services);
        self.fire(WatchKey::Service(name.to_string()));
        self.fire(WatchKey::Node(node.to_string()));
    }

    fn check_changed(&mut self, index: u64, node: &str, service: Option<&str>) {
        self.bump(T_CHECKS, index);
        self.fire(WatchKey::Checks);
        match service {
            Some(name) => {
                self.bump(&node_key(node), index);
                self.bump(&svc_key(name), index);
                self.fire(WatchKey::Node(node.to_string()));
                self.fire(WatchKey::Service(name.to_string()));
            }
            None => self.node_changed(index, node),
        }
    }

    fn node_services_iter<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = &'a NodeService> + 'a {
        self.services
            .range((node.to_string(), String::new())..)
            .take_while(move |((n, _), _)| n == node)
            .map(|(_, s)| s)
    }

    fn node_checks_iter<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a HealthCheck> + 'a {
        self.checks
            .range((node.to_string(), String::new())..)
            .take_while(move |((n, _), _)| n == node)
            .map(|(_, c)| c)
    }

    fn index_or(&self, key: &str, table: &str) -> u64 {
        match self.table_index(key) {
            0 => self.table_index(table),
            i => i,
        }
    }

    pub fn catalog_nodes(&self, waiter: Option<&Waiter>) -> (u64, Vec<Node>) {
        self.watch(waiter, WatchKey::Nodes);
        (
            self.table_index(T_NODES),
            self.nodes.values().cloned().collect(),
        )
    }

    pub fn catalog_services(
        &self,
        waiter: Option<&Waiter>,
    ) -> (u64, BTreeMap<String, Vec<String>>) {
        self.watch(waiter, WatchKey::Services);
        // Borrowed while grouping: a name or tag is copied once per
        // answer, not once per instance (27.7 ms for 11 names over
        // 100,000 instances when every instance cloned its name).
        let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in self.services.values() {
            out.entry(s.service.as_str())
                .or_default()
                .extend(s.tags.iter().map(String::as_str));
        }
        (
            self.table_index(T_SERVICES),
            out.into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
                .collect(),
        )
    }

    /// Every service instance joined with its node, watched and indexed
    /// as [`StateStore::catalog_services`] is.
    pub fn catalog_service_list(&self, waiter: Option<&Waiter>) -> (u64, Vec<ServiceNode>) {
        self.watch(waiter, WatchKey::Services);
        let out = self
            .services
            .iter()
            .filter_map(|(key, svc)| Some(ServiceNode::new(self.nodes.get(&key.0)?, svc)))
            .collect();
        (self.table_index(T_SERVICES), out)
    }

    pub fn catalog_service(
        &self,
        name: &str,
        tags: &[String],
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<ServiceNode>) {
        self.watch(waiter, WatchKey::Service(name.to_string()));
        let mut out = Vec::new();
        for key in self.by_service_name.get(name).into_iter().flatten() {
            let (Some(svc), Some(node)) = (self.services.get(key), self.nodes.get(&key.0)) else {
                continue;
            };
            if tags_match(&svc.tags, tags) {
                out.push(ServiceNode::new(node, svc));
            }
        }
        (self.index_or(&svc_key(name), T_SERVICES), out)
    }

    pub fn catalog_node(&self, node: &str, waiter: Option<&Waiter>) -> (u64, Option<NodeServices>) {
        self.watch(waiter, WatchKey::Node(node.to_string()));
        let idx = self.index_or(&node_key(node), T_NODES);
        let Some(n) = self.nodes.get(node) else {
            return (idx, None);
        };
        let services = self
            .node_services_iter(node)
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        (
            idx,
            Some(NodeServices {
                node: n.clone(),
                services,
            }),
        )
    }

    /// Instances of a service with their node and every check that bears
    /// on them (node-level checks such as `serfHealth`, and the service's).
    pub fn health_service(
        &self,
        name: &str,
        tags: &[String],
        passing_only: bool,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<CheckServiceNode>) {
        self.watch(waiter, WatchKey::Service(name.to_string()));
        let mut idx = self.index_or(&svc_key(name), T_SERVICES);
        let mut out = Vec::new();
        for key in self.by_service_name.get(name).into_iter().flatten() {
            let (Some(svc), Some(node)) = (self.services.get(key), self.nodes.get(&key.0)) else {
                continue;
            };
            if !tags_match(&svc.tags, tags) {
                continue;
            }
            idx = idx.max(self.table_index(&node_key(&node.node)));
            let checks: Vec<HealthCheck> = self
                .node_checks_iter(&node.node)
                .filter(|c| c.service_id.is_empty() || c.service_id == svc.id)
                .cloned()
                .collect();
            if passing_only && checks.iter().any(|c| c.status != HealthStatus::Passing) {
                continue;
            }
            out.push(CheckServiceNode {
                node: node.clone(),
                service: svc.clone(),
                checks,
            });
        }
        (idx, out)
    }

    /// `health_service` for DNS: the instances DNS answers with, each
    /// with its aggregate status worked out here, so that no check is
    /// copied (an instance's checks are most of its size) and unhealthy
    /// instances are not copied at all. Same watch and index.
    pub fn dns_service(
        &self,
        name: &str,
        tags: &[String],
        only_passing: bool,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<DnsInstance>) {
        self.watch(waiter, WatchKey::Service(name.to_string()));
        let mut idx = self.index_or(&svc_key(name), T_SERVICES);
        let mut out = Vec::new();
        for key in self.by_service_name.get(name).into_iter().flatten() {
            let (Some(svc), Some(node)) = (self.services.get(key), self.nodes.get(&key.0)) else {
                continue;
            };
            if !tags_match(&svc.tags, tags) {
                continue;
            }
            idx = idx.max(self.table_index(&node_key(&node.node)));
            let mut status = HealthStatus::Passing;
            for c in self
                .node_checks_iter(&node.node)
                .filter(|c| c.service_id.is_empty() || c.service_id == svc.id)
            {
                match c.status {
                    HealthStatus::Critical => {
                        status = HealthStatus::Critical;
                        break;
                    }
                    HealthStatus::Warning => status = HealthStatus::Warning,
                    _ => {}
                }
            }
            let answered = match status {
                HealthStatus::Critical => false,
                HealthStatus::Warning => !only_passing,
                _ => true,
            };
            if answered {
                out.push(DnsInstance {
                    node: node.node.clone(),
                    node_address: node.address.clone(),
                    node_meta: node.meta.clone(),
                    address: svc.address.clone(),
                    port: svc.port,
                    weights: svc.weights,
                    status,
                });
            }
        }
        (idx, out)
    }

    pub fn health_node(&self, node: &str, waiter: Option<&Waiter>) -> (u64, Vec<HealthCheck>) {
        self.watch(waiter, WatchKey::Node(node.to_string()));
        (
            self.index_or(&node_key(node), T_NODES),
            self.node_checks_iter(node).cloned().collect(),
        )
    }

    pub fn health_checks(&self, service: &str, waiter: Option<&Waiter>) -> (u64, Vec<HealthCheck>) {
        self.watch(waiter, WatchKey::Service(service.to_string()));
        let checks = self
            .checks
            .values()
            .filter(|c| c.service_name == service)
            .cloned()
            .collect();
        (self.index_or(&svc_key(service), T_CHECKS), checks)
    }

    pub fn health_state(
        &self,
        state: HealthStatus,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<HealthCheck>) {
        self.watch(waiter, WatchKey::Checks);
        let checks = self
            .checks
            .values()
            .filter(|c| state == HealthStatus::Any || c.status == state)
            .cloned()
            .collect();
        (self.table_index(T_CHECKS), checks)
    }

    /// The aggregate status of one instance: used by DNS to leave out
    /// critical instances.
    pub fn instance_status(checks: &[HealthCheck]) -> HealthStatus {
        aggregate(checks)
    }
}
