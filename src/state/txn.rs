//! `/v1/txn`'s operations (KV, node, service and check verbs), applied
//! all or nothing under one Raft index: each operation runs in order; the
//! first that fails undoes what the earlier ones wrote and the transaction
//! answers its errors instead.
//!
//! A KV-only transaction saves just the keys it touches; one with catalog
//! verbs saves every table first (a node delete reaches services, checks,
//! sessions and their locks), which costs a copy but only for those.

use std::collections::BTreeMap;

pub use crate::structs::txn::{KvOp, TxnOp, TxnOutcome, TxnResult};

use super::structs::{
    DeregisterRequest, DirEntry, HealthCheck, Node, NodeService, RegisterRequest,
};
use super::{StateStore, T_KVS};

/// Every table a catalog verb can reach, to put back on failure.
struct Tables {
    kvs: BTreeMap<String, DirEntry>,
    tombstones: BTreeMap<String, u64>,
    nodes: BTreeMap<String, Node>,
    services: BTreeMap<(String, String), NodeService>,
    checks: BTreeMap<(String, String), HealthCheck>,
    by_service_name: BTreeMap<String, std::collections::BTreeSet<(String, String)>>,
    indexes: BTreeMap<String, u64>,
    sessions: BTreeMap<String, super::session::Session>,
    last_index: u64,
}

impl StateStore {
    /// A transaction of any verbs.
    pub fn txn_ops(&mut self, index: u64, ops: &[TxnOp]) -> TxnOutcome {
        if ops.iter().all(|o| matches!(o, TxnOp::Kv(_))) {
            let kv: Vec<KvOp> = ops
                .iter()
                .filter_map(|o| match o {
                    TxnOp::Kv(k) => Some(k.clone()),
                    _ => None,
                })
                .collect();
            return self.txn(index, &kv);
        }
        let saved = Tables {
            kvs: self.kvs.clone(),
            tombstones: self.tombstones.clone(),
            nodes: self.nodes.clone(),
            services: self.services.clone(),
            checks: self.checks.clone(),
            by_service_name: self.by_service_name.clone(),
            indexes: self.indexes.clone(),
            sessions: self.sessions.clone(),
            last_index: self.last_index,
        };
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                TxnOp::Kv(k) => self.txn_op(index, k),
                TxnOp::Node { verb, node } => self.txn_node(index, verb, node),
                TxnOp::Service {
                    verb,
                    node,
                    service,
                } => self.txn_service(index, verb, node, service),
                TxnOp::Check { verb, check } => self.txn_check(index, verb, check),
            };
            match r {
                Ok(r) => results.extend(r),
                Err(what) => {
                    self.kvs = saved.kvs;
                    self.kv_ttl_rebuild();
                    self.tombstones = saved.tombstones;
                    self.nodes = saved.nodes;
                    self.services = saved.services;
                    self.checks = saved.checks;
                    self.by_service_name = saved.by_service_name;
                    self.indexes = saved.indexes;
                    self.sessions = saved.sessions;
                    self.last_index = saved.last_index;
                    return TxnOutcome::Errors(vec![(i, what)]);
                }
            }
        }
        TxnOutcome::Results(results)
    }

    fn txn_node(&mut self, index: u64, verb: &str, node: &Node) -> Result<Vec<TxnResult>, String> {
        let name = node.node.as_str();
        let current = self.nodes.get(name).map(|n| n.modify_index);
        let stale = |what: &str| format!("failed to {what} node {name:?}, index is stale");
        match verb {
            "set" | "cas" => {
                if verb == "cas" && current.unwrap_or(0) != node.modify_index {
                    return Err(stale("set"));
                }
                let req = RegisterRequest {
                    id: node.id.clone(),
                    node: node.node.clone(),
                    address: node.address.clone(),
                    datacenter: node.datacenter.clone(),
                    tagged_addresses: node.tagged_addresses.clone(),
                    node_meta: node.meta.clone(),
                    ..Default::default()
                };
                self.ensure_registration(index, &req)
                    .map_err(|e| e.to_string())?;
                Ok(self
                    .nodes
                    .get(name)
                    .cloned()
                    .map(TxnResult::Node)
                    .into_iter()
                    .collect())
            }
            "get" => self
                .nodes
                .get(name)
                .map(|n| vec![TxnResult::Node(n.clone())])
                .ok_or_else(|| format!("node {name:?} doesn't exist")),
            "delete" | "delete-cas" => {
                if verb == "delete-cas" && current != Some(node.modify_index) {
                    return Err(stale("delete"));
                }
                let req = DeregisterRequest {
                    node: name.to_string(),
                    ..Default::default()
                };
                self.deregister(index, &req).map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            other => Err(format!("unknown node verb {other:?}")),
        }
    }

    fn txn_service(
        &mut self,
        index: u64,
        verb: &str,
        node: &str,
        svc: &NodeService,
    ) -> Result<Vec<TxnResult>, String> {
        let id = if svc.id.is_empty() {
            &svc.service
        } else {
            &svc.id
        }
        .clone();
        let key = (node.to_string(), id.clone());
        let current = self.services.get(&key).map(|s| s.modify_index);
        let stale = |what: &str| {
            format!("failed to {what} service {id:?} on node {node:?}, index is stale")
        };
        match verb {
            "set" | "cas" => {
                if verb == "cas" && current.unwrap_or(0) != svc.modify_index {
                    return Err(stale("set"));
                }
                if !self.nodes.contains_key(node) {
                    return Err("Missing node registration".into());
                }
                let req = RegisterRequest {
                    node: node.to_string(),
                    skip_node_update: true,
                    service: Some(svc.clone()),
                    ..Default::default()
                };
                self.ensure_registration(index, &req)
                    .map_err(|e| e.to_string())?;
                Ok(self
                    .services
                    .get(&key)
                    .cloned()
                    .map(TxnResult::Service)
                    .into_iter()
                    .collect())
            }
            "get" => self
                .services
                .get(&key)
                .map(|s| vec![TxnResult::Service(s.clone())])
                .ok_or_else(|| format!("service {id:?} on node {node:?} doesn't exist")),
            "delete" | "delete-cas" => {
                if verb == "delete-cas" && current != Some(svc.modify_index) {
                    return Err(stale("delete"));
                }
                let req = DeregisterRequest {
                    node: node.to_string(),
                    service_id: id.clone(),
                    ..Default::default()
                };
                self.deregister(index, &req).map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            other => Err(format!("unknown service verb {other:?}")),
        }
    }

    fn txn_check(
        &mut self,
        index: u64,
        verb: &str,
        check: &HealthCheck,
    ) -> Result<Vec<TxnResult>, String> {
        let (node, id) = (check.node.as_str(), check.check_id.as_str());
        let key = (node.to_string(), id.to_string());
        let current = self.checks.get(&key).map(|c| c.modify_index);
        let stale =
            |what: &str| format!("failed to {what} check {id:?} on node {node:?}, index is stale");
        match verb {
            "set" | "cas" => {
                if verb == "cas" && current.unwrap_or(0) != check.modify_index {
                    return Err(stale("set"));
                }
                let req = RegisterRequest {
                    node: node.to_string(),
                    skip_node_update: true,
                    check: Some(check.clone()),
                    ..Default::default()
                };
                if node.is_empty() || !self.nodes.contains_key(node) {
                    return Err("Missing node registration".into());
                }
                self.ensure_registration(index, &req)
                    .map_err(|e| e.to_string())?;
                Ok(self
                    .checks
                    .get(&key)
                    .cloned()
                    .map(TxnResult::Check)
                    .into_iter()
                    .collect())
            }
            "get" => self
                .checks
                .get(&key)
                .map(|c| vec![TxnResult::Check(c.clone())])
                .ok_or_else(|| format!("check {id:?} on node {node:?} doesn't exist")),
            "delete" | "delete-cas" => {
                if verb == "delete-cas" && current != Some(check.modify_index) {
                    return Err(stale("delete"));
                }
                let req = DeregisterRequest {
                    node: node.to_string(),
                    check_id: id.to_string(),
                    ..Default::default()
                };
                self.deregister(index, &req).map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            other => Err(format!("unknown check verb {other:?}")),
        }
    }

    pub fn txn(&mut self, index: u64, ops: &[KvOp]) -> TxnOutcome {
        // What the operations may overwrite, to put back on failure.
        let mut saved: Vec<(String, Option<DirEntry>, Option<u64>)> = Vec::new();
        let kv_index = self.table_index(T_KVS);
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let touched: Vec<String> = if op.verb == "delete-tree" {
                self.kvs
                    .range(op.key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&op.key))
                    .map(|(k, _)| k.clone())
                    .collect()
            } else {
                vec![op.key.clone()]
            };
            for k in touched {
                if !saved.iter().any(|(s, _, _)| *s == k) {
                    saved.push((
                        k.clone(),
                        self.kvs.get(&k).cloned(),
                        self.tombstones.get(&k).copied(),
                    ));
                }
            }
            match self.txn_op(index, op) {
                Ok(r) => results.extend(r),
                Err(what) => {
                    for (k, entry, tomb) in saved.into_iter().rev() {
                        match entry {
                            Some(e) => self.kvs.insert(k.clone(), e),
                            None => self.kvs.remove(&k),
                        };
                        match tomb {
                            Some(t) => self.tombstones.insert(k.clone(), t),
                            None => self.tombstones.remove(&k),
                        };
                        self.kv_ttl_track(&k);
                    }
                    self.indexes.insert(T_KVS.to_string(), kv_index);
                    return TxnOutcome::Errors(vec![(i, what)]);
                }
            }
        }
        TxnOutcome::Results(results)
    }

    fn txn_op(&mut self, index: u64, op: &KvOp) -> Result<Vec<TxnResult>, String> {
        self.txn_kv(index, op)
            .map(|entries| entries.into_iter().map(TxnResult::Kv).collect())
    }

    fn txn_kv(&mut self, index: u64, op: &KvOp) -> Result<Vec<DirEntry>, String> {
        let key = op.key.as_str();
        let written = |s: &StateStore| -> Vec<DirEntry> {
            s.kvs
                .get(key)
                .map(|e| DirEntry {
                    value: Vec::new(),
                    ..e.clone()
                })
                .into_iter()
                .collect()
        };
        if let Some(ttl) = &op.ttl {
            crate::structs::catalog::parse_kv_ttl(ttl).map_err(|e| e.to_string())?;
        }
        match op.verb.as_str() {
            "set" => {
                self.kv_set_ttl(index, key, op.value.clone(), op.flags, op.ttl.clone());
                Ok(written(self))
            }
            "cas" => {
                if self.kv_cas_ttl(
                    index,
                    key,
                    op.value.clone(),
                    op.flags,
                    op.index,
                    op.ttl.clone(),
                ) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to set key {key:?}, index is stale"))
                }
            }
            "lock" => {
                if !self.sessions().contains_key(&op.session) {
                    Err(format!("invalid session {:?}", op.session))
                } else if self.kv_lock_ttl(
                    index,
                    key,
                    op.value.clone(),
                    op.flags,
                    &op.session,
                    op.ttl.clone(),
                ) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to lock key {key:?}, lock is already held"))
                }
            }
            "unlock" => {
                if self.kv_unlock_ttl(
                    index,
                    key,
                    op.value.clone(),
                    op.flags,
                    &op.session,
                    op.ttl.clone(),
                ) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to unlock key {key:?}, lock isn't held, or is held by another session"))
                }
            }
            "get" => match self.kvs.get(key) {
                Some(e) => Ok(vec![e.clone()]),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "get-tree" => Ok(self
                .kvs
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(_, e)| e.clone())
                .collect()),
            "check-index" => match self.kvs.get(key) {
                Some(e) if e.modify_index == op.index => Ok(Vec::new()),
                Some(e) => Err(format!(
                    "current modify index {} != {}",
                    e.modify_index, op.index
                )),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "check-session" => match self.kvs.get(key) {
                Some(e) if e.session.as_deref() == Some(op.session.as_str()) => Ok(Vec::new()),
                Some(e) => Err(format!(
                    "current session {:?} != {:?}",
                    e.session.clone().unwrap_or_default(),
                    op.session
                )),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "check-not-exists" => match self.kvs.get(key) {
                Some(_) => Err(format!("key {key:?} exists")),
                None => Ok(Vec::new()),
            },
            "delete" => {
                self.kv_delete(index, key);
                Ok(Vec::new())
            }
            "delete-tree" => {
                self.kv_delete_tree(index, key);
                Ok(Vec::new())
            }
            "delete-cas" => {
                if self.kv_delete_cas(index, key, op.index) {
                    Ok(Vec::new())
                } else {
                    Err(format!("failed to delete key {key:?}, index is stale"))
                }
            }
            other => Err(format!("unknown KV verb {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(verb: &str, key: &str, value: &str, index: u64) -> KvOp {
        KvOp {
            verb: verb.into(),
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags: 0,
            index,
            session: String::new(),
            ttl: None,
        }
    }

    #[test]
    fn all_or_nothing_with_a_failing_check_in_the_middle() {
        let mut s = StateStore::new();
        s.kv_set(1, "a", b"old".to_vec(), 0);
        let before = s.snapshot();
        let out = s.txn(
            2,
            &[
                op("set", "a", "new", 0),
                op("set", "b", "x", 0),
                op("check-index", "a", "", 1),
                op("delete", "a", "", 0),
            ],
        );
        assert_eq!(
            out,
            TxnOutcome::Errors(vec![(2, "current modify index 2 != 1".into())])
        );
        let after = s.snapshot();
        assert_eq!(before.kvs, after.kvs, "nothing written");
        assert_eq!(before.indexes, after.indexes);

        let out = s.txn(
            3,
            &[
                op("check-index", "a", "", 1),
                op("cas", "a", "v2", 1),
                op("check-not-exists", "c", "", 0),
                op("set", "c", "z", 0),
                op("get", "a", "", 0),
            ],
        );
        let TxnOutcome::Results(r) = out else {
            panic!("{out:?}")
        };
        let kv = |r: &TxnResult| match r {
            TxnResult::Kv(e) => e.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(r.len(), 3, "check verbs answer no row");
        assert_eq!(kv(&r[2]).value, b"v2");
        assert_eq!(kv(&r[0]).modify_index, 3);
        assert!(
            kv(&r[0]).value.is_empty(),
            "writes answer without the value"
        );
        assert_eq!(s.kvs["c"].value, b"z");
    }

    fn node(name: &str, modify_index: u64) -> Node {
        Node {
            node: name.into(),
            address: "10.0.0.1".into(),
            modify_index,
            ..Default::default()
        }
    }

    #[test]
    fn catalog_verbs_are_all_or_nothing_too() {
        let mut s = StateStore::new();
        let web = NodeService {
            id: "web1".into(),
            service: "web".into(),
            port: 80,
            ..Default::default()
        };
        let check = HealthCheck {
            node: "n1".into(),
            check_id: "alive".into(),
            name: "alive".into(),
            service_id: "web1".into(),
            ..Default::default()
        };
        let out = s.txn_ops(
            1,
            &[
                TxnOp::Node {
                    verb: "set".into(),
                    node: node("n1", 0),
                },
                TxnOp::Service {
                    verb: "set".into(),
                    node: "n1".into(),
                    service: web.clone(),
                },
                TxnOp::Check {
                    verb: "set".into(),
                    check: check.clone(),
                },
                TxnOp::Kv(op("set", "k", "v", 0)),
            ],
        );
        let TxnOutcome::Results(r) = out else {
            panic!("{out:?}")
        };
        assert_eq!(r.len(), 4);
        assert!(matches!(&r[1], TxnResult::Service(s) if s.create_index == 1));
        assert!(matches!(&r[2], TxnResult::Check(c) if c.service_name == "web"));
        let before = s.snapshot();

        // A node delete (services and checks with it), then a stale CAS:
        // everything stays as it was.
        let out = s.txn_ops(
            2,
            &[
                TxnOp::Node {
                    verb: "delete".into(),
                    node: node("n1", 0),
                },
                TxnOp::Kv(op("delete", "k", "", 0)),
                TxnOp::Node {
                    verb: "cas".into(),
                    node: node("n2", 7),
                },
            ],
        );
        assert_eq!(
            out,
            TxnOutcome::Errors(vec![(
                2,
                "failed to set node \"n2\", index is stale".into()
            )])
        );
        assert_eq!(s.snapshot(), before);

        let missing = s.txn_ops(
            3,
            &[TxnOp::Service {
                verb: "set".into(),
                node: "nope".into(),
                service: web.clone(),
            }],
        );
        assert_eq!(
            missing,
            TxnOutcome::Errors(vec![(0, "Missing node registration".into())])
        );
        let get = s.txn_ops(
            3,
            &[TxnOp::Check {
                verb: "get".into(),
                check: HealthCheck {
                    node: "n1".into(),
                    check_id: "gone".into(),
                    ..Default::default()
                },
            }],
        );
        assert_eq!(
            get,
            TxnOutcome::Errors(vec![(
                0,
                "check \"gone\" on node \"n1\" doesn't exist".into()
            )])
        );

        let out = s.txn_ops(
            4,
            &[
                TxnOp::Service {
                    verb: "delete-cas".into(),
                    node: "n1".into(),
                    service: NodeService {
                        modify_index: 1,
                        ..web
                    },
                },
                TxnOp::Node {
                    verb: "get".into(),
                    node: node("n1", 0),
                },
            ],
        );
        assert!(
            matches!(&out, TxnOutcome::Results(r) if r.len() == 1),
            "{out:?}"
        );
        assert!(s.checks.is_empty(), "the service's check went with it");
    }
}
