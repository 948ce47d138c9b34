//! Which permission each request needs, as Consul's endpoints check them,
//! and how list answers are filtered. Pure: the caller resolves the
//! token and passes what must be looked up in the store (a session's
//! node, a service's name) as closures.

use crate::structs::catalog::Node;
use crate::structs::prepared_query::PreparedQuery;
use crate::structs::query::{Query, QueryResult};
use crate::structs::txn::{KvOp, TxnOp};
use crate::structs::Command;

use super::{Access, Authorizer, PermissionDenied, Resource};

/// What a token's `SecretID` reads as to a caller without `acl:write`
/// (Consul's text).
pub const REDACTED_SECRET: &str = "<hidden>";

/// What a write needs to look up in the store to be checked.
pub trait Lookup {
    /// The node of session `id`, if it exists.
    fn session_node(&self, id: &str) -> Option<String>;
    /// The name of service instance `service_id` on `node`, if it exists.
    fn service_name(&self, node: &str, service_id: &str) -> Option<String>;
    /// Node `name`'s catalog row, if it exists.
    fn node(&self, name: &str) -> Option<Node>;
    /// Prepared query `id` as stored, if it exists.
    fn prepared_query(&self, id: &str) -> Option<PreparedQuery>;
}

/// One authorizer and the AccessorID a refusal names.
pub struct Enforcer<'a> {
    pub authz: &'a Authorizer,
    pub accessor_id: &'a str,
}

impl Enforcer<'_> {
    fn need(&self, resource: Resource, access: Access, name: &str) -> Result<(), PermissionDenied> {
        self.authz
            .check(resource, access, name)
            .require(self.accessor_id, resource, access, name)
    }

    fn operator(&self, resource: Resource, access: Access) -> Result<(), PermissionDenied> {
        self.need(resource, access, "")
    }

    /// A read's up-front requirement; list answers are filtered after
    /// (see [`Enforcer::filter`]), as Consul filters them silently.
    pub fn read(&self, query: &Query) -> Result<(), PermissionDenied> {
        match query {
            Query::KvGet { key } => self.need(Resource::Key, Access::Read, key),
            // `list` is granted with `read` unless enable_key_list_policy
            // (the authorizer knows its config).
            Query::KvList { prefix }
            | Query::KvKeys { prefix, .. }
            | Query::KvChanges { prefix, .. } => {
                if self.authz.config().enable_key_list_policy {
                    self.need(Resource::Key, Access::List, prefix)
                } else {
                    Ok(())
                }
            }
            Query::CatalogNodes
            | Query::CatalogServices
            | Query::CatalogServiceList
            | Query::CatalogService { .. }
            | Query::CatalogNode { .. }
            | Query::HealthService { .. }
            | Query::DnsService { .. }
            | Query::HealthNode { .. }
            | Query::HealthChecks { .. }
            | Query::HealthState { .. }
            | Query::SessionInfo { .. }
            | Query::SessionList { .. }
            | Query::CoordinateNodes => Ok(()),
            // Prepared queries are filtered by name after the read; anyone
            // who knows a query's ID or name may execute it (its answer is
            // filtered with the query's own token, or the caller's).
            Query::PreparedQueryGet { .. }
            | Query::PreparedQueryList
            | Query::PreparedQueryExplain { .. }
            | Query::PreparedQueryExecute { .. }
            | Query::PreparedQueryExecuteRemote { .. } => Ok(()),
            // Consul's `Coordinate.Node`: the node must be readable.
            Query::CoordinateNode { node } => self.need(Resource::Node, Access::Read, node),
            // The bootstrap endpoint asks before any token exists.
            Query::AclBootstrapState => Ok(()),
            Query::Snapshot => self.operator(Resource::Acl, Access::Write),
            Query::AclTokenRead { .. }
            | Query::AclTokenList { .. }
            | Query::AclPolicyRead { .. }
            | Query::AclPolicyByName { .. }
            | Query::AclPolicyList
            | Query::AclRoleRead { .. }
            | Query::AclRoleByName { .. }
            | Query::AclRoleList { .. }
            | Query::AclPolicyBatch { .. } => self.operator(Resource::Acl, Access::Read),
            // Secrets: internal lookups; from outside only management may
            // (a token reading itself is let through by the caller). Whole
            // tokens carry their secrets: Consul's token replication needs
            // `acl = "write"` too.
            Query::AclTokenBySecret { .. }
            | Query::AclResolve { .. }
            | Query::AclTokenBatch { .. } => self.operator(Resource::Acl, Access::Write),
        }
    }

    /// Drops what the token may not read from a list answer; whether
    /// anything was dropped (Consul's `X-Consul-Results-Filtered-By-ACLs`).
    /// Token secrets are hidden from a token without `acl:write`, which
    /// does not count as dropping (Consul's header stays off for it).
    pub fn filter(&self, result: &mut QueryResult) -> bool {
        self.redact_secrets(result);
        let a = self.authz;
        let key = |k: &str| a.allowed(Resource::Key, Access::Read, k);
        let node = |n: &str| a.allowed(Resource::Node, Access::Read, n);
        let service = |s: &str| a.allowed(Resource::Service, Access::Read, s);
        let session = |n: &str| a.allowed(Resource::Session, Access::Read, n);
        fn keep<T>(v: &mut Vec<T>, f: impl Fn(&T) -> bool) -> bool {
            let before = v.len();
            v.retain(|x| f(x));
            v.len() != before
        }
        match result {
            QueryResult::Entries(v) => keep(v, |e| key(&e.key)),
            QueryResult::Keys(v) => keep(v, |k| key(k)),
            // A deleted key's name is as secret as its entry was.
            QueryResult::KvChanges(crate::structs::catalog::KvChanges::Since(v)) => {
                keep(v, |c| key(c.key()))
            }
            QueryResult::Nodes(v) => keep(v, |n| node(&n.node)),
            QueryResult::Services(m) => {
                let before = m.len();
                m.retain(|name, _| service(name));
                m.len() != before
            }
            QueryResult::ServiceNodes(v) => keep(v, |s| node(&s.node) && service(&s.service_name)),
            QueryResult::ServiceList(v) => keep(v, |s| service(&s.service_name)),
            QueryResult::CheckServiceNodes(v) => {
                keep(v, |c| node(&c.node.node) && service(&c.service.service))
            }
            QueryResult::DnsInstances {
                service: s,
                instances,
            } => {
                if service(s) {
                    keep(instances, |i| node(&i.node))
                } else {
                    let dropped = !instances.is_empty();
                    instances.clear();
                    dropped
                }
            }
            QueryResult::Checks(v) => keep(v, |c| {
                node(&c.node) && (c.service_name.is_empty() || service(&c.service_name))
            }),
            QueryResult::NodeServices(ns) => match ns {
                Some(n) if !node(&n.node.node) => {
                    *ns = None;
                    true
                }
                Some(n) => {
                    let before = n.services.len();
                    n.services.retain(|_, s| service(&s.service));
                    n.services.len() != before
                }
                None => false,
            },
            QueryResult::Sessions(v) => keep(v, |s| session(&s.node)),
            QueryResult::PreparedQueries(v) => keep(v, |q| self.may_read_query(q)),
            QueryResult::PreparedQuery(q) => match q {
                Some(pq) if !self.may_read_query(pq) => {
                    *q = None;
                    true
                }
                _ => false,
            },
            QueryResult::PreparedQueryExecuted(Some(r)) => keep(&mut r.nodes, |c| {
                node(&c.node.node) && service(&c.service.service)
            }),
            QueryResult::Coordinates(v) => keep(v, |c| node(&c.node)),
            _ => false,
        }
    }

    /// Consul's redaction: `acl:read` is enough to see tokens, but only
    /// `acl:write` (which could mint an equal token anyway) sees their
    /// secrets. A token reading itself by its secret is never filtered.
    fn redact_secrets(&self, result: &mut QueryResult) {
        if self.authz.allowed(Resource::Acl, Access::Write, "") {
            return;
        }
        match result {
            QueryResult::AclToken(Some(t)) => t.secret_id = REDACTED_SECRET.into(),
            QueryResult::AclTokens(v) => {
                for t in v {
                    t.secret_id = REDACTED_SECRET.into();
                }
            }
            // A prepared query's token as its definition shows it; the one
            // an execution carries is never shown, and the server that
            // fails over needs it.
            QueryResult::PreparedQuery(Some(q)) => redact_query_token(q),
            QueryResult::PreparedQueries(v) => v.iter_mut().for_each(redact_query_token),
            _ => {}
        }
    }

    /// Consul's `filterPreparedQueries`: a token that may read ACLs sees
    /// every query; otherwise `query:read` on the query's name, and an
    /// unnamed query (no prefix to match) is not shown.
    fn may_read_query(&self, q: &PreparedQuery) -> bool {
        self.authz.allowed(Resource::Acl, Access::Read, "")
            || q.acl_prefix()
                .is_some_and(|p| self.authz.allowed(Resource::Query, Access::Read, p))
    }

    /// `query:write` on what a prepared-query write names, and on the
    /// stored query it changes or deletes (Consul's `PreparedQuery.Apply`):
    /// an unnamed query needs nothing, as in Consul.
    fn prepared_query_write(
        &self,
        new: Option<&PreparedQuery>,
        id: &str,
        lookup: &dyn Lookup,
    ) -> Result<(), PermissionDenied> {
        if let Some(p) = new.and_then(PreparedQuery::acl_prefix) {
            self.need(Resource::Query, Access::Write, p)?;
        }
        if let Some(old) = lookup.prepared_query(id) {
            if let Some(p) = old.acl_prefix() {
                self.need(Resource::Query, Access::Write, p)?;
            }
        }
        Ok(())
    }

    /// A write's requirements, every one of them (a batch's and a
    /// transaction's operations each).
    pub fn write(&self, command: &Command, lookup: &dyn Lookup) -> Result<(), PermissionDenied> {
        let key_write = |k: &str| self.need(Resource::Key, Access::Write, k);
        match command {
            Command::KvSet { key, .. }
            | Command::KvCas { key, .. }
            | Command::KvDelete { key }
            | Command::KvDeleteCas { key, .. }
            | Command::KvLock { key, .. }
            | Command::KvUnlock { key, .. } => key_write(key),
            Command::KvDeleteTree { prefix } => self.delete_tree(prefix),
            Command::Register(r) => {
                // Consul's `vetRegisterWithACL`: node:write only when the
                // registration creates or changes the node, so a service's
                // own token (service:write alone) keeps its instance in
                // the catalog while the agent token owns the node row.
                if r.changes_node(lookup.node(&r.node).as_ref()) {
                    self.need(Resource::Node, Access::Write, &r.node)?;
                }
                if let Some(s) = &r.service {
                    self.need(Resource::Service, Access::Write, &s.service)?;
                    // Replacing an instance that had another name needs
                    // write on that name too, or service:write on one
                    // name could take over any instance of the node.
                    let id = if s.id.is_empty() { &s.service } else { &s.id };
                    if let Some(old) = lookup
                        .service_name(&r.node, id)
                        .filter(|old| *old != s.service)
                    {
                        self.need(Resource::Service, Access::Write, &old)?;
                    }
                }
                for c in r.check.iter().chain(&r.checks) {
                    if c.service_id.is_empty() {
                        // A node-level check is the node's.
                        self.need(Resource::Node, Access::Write, &r.node)?;
                    } else {
                        // The service registered with it, else the stored one.
                        let name = r
                            .service
                            .as_ref()
                            .filter(|s| s.id == c.service_id)
                            .map(|s| s.service.clone())
                            .or_else(|| lookup.service_name(&r.node, &c.service_id))
                            .unwrap_or_else(|| c.service_name.clone());
                        self.need(Resource::Service, Access::Write, &name)?;
                    }
                }
                Ok(())
            }
            Command::Deregister(d) => {
                // Consul: a service's removal needs service:write on it
                // (or node:write); anything else node:write.
                if !d.service_id.is_empty() {
                    if let Some(name) = lookup.service_name(&d.node, &d.service_id) {
                        if self.authz.allowed(Resource::Service, Access::Write, &name) {
                            return Ok(());
                        }
                    }
                }
                self.need(Resource::Node, Access::Write, &d.node)
            }
            Command::SessionCreate(s) => self.need(Resource::Session, Access::Write, &s.node),
            Command::SessionDestroy { id } | Command::SessionRenew { id } => {
                // An unknown session fails as it would without ACLs.
                match lookup.session_node(id) {
                    Some(node) => self.need(Resource::Session, Access::Write, &node),
                    None => Ok(()),
                }
            }
            Command::Txn(ops) => ops.iter().try_for_each(|op| self.kv_op(op)),
            Command::TxnOps(ops) => ops.iter().try_for_each(|op| self.txn_op(op)),
            Command::Batch(cmds) => cmds.iter().try_for_each(|c| self.write(c, lookup)),
            // Anyone may bootstrap once: the store refuses a second time.
            Command::AclBootstrap { .. } => Ok(()),
            Command::Restore(_)
            | Command::AclInitialize { .. }
            | Command::AclTokenSet { .. }
            | Command::AclTokenDelete { .. }
            | Command::AclPolicySet { .. }
            | Command::AclPolicyDelete { .. }
            | Command::AclRoleSet { .. }
            | Command::AclRoleDelete { .. }
            | Command::AclTokensReapExpired { .. }
            | Command::AclReplicate(_) => self.operator(Resource::Acl, Access::Write),
            // Only the leader issues it; no client request carries it.
            Command::KvReapTombstones { .. } | Command::KvExpire { .. } => {
                self.operator(Resource::Operator, Access::Write)
            }
            Command::PreparedQuerySet { query, .. } => {
                self.prepared_query_write(Some(query), &query.id, lookup)
            }
            Command::PreparedQueryDelete { id } => self.prepared_query_write(None, id, lookup),
            // Consul's `Coordinate.Update`: each node's own write.
            Command::CoordinateBatchUpdate(rows) => rows
                .iter()
                .try_for_each(|r| self.need(Resource::Node, Access::Write, &r.node)),
        }
    }

    fn delete_tree(&self, prefix: &str) -> Result<(), PermissionDenied> {
        self.authz.key_write_prefix(prefix).require(
            self.accessor_id,
            Resource::Key,
            Access::Write,
            prefix,
        )
    }

    fn kv_op(&self, op: &KvOp) -> Result<(), PermissionDenied> {
        match op.verb.as_str() {
            "get" | "get-tree" | "check-index" | "check-session" | "check-not-exists" => {
                self.need(Resource::Key, Access::Read, &op.key)
            }
            "delete-tree" => self.delete_tree(&op.key),
            _ => self.need(Resource::Key, Access::Write, &op.key),
        }
    }

    fn txn_op(&self, op: &TxnOp) -> Result<(), PermissionDenied> {
        let access = |verb: &str| match verb {
            "get" => Access::Read,
            _ => Access::Write,
        };
        match op {
            TxnOp::Kv(kv) => self.kv_op(kv),
            TxnOp::Node { verb, node } => self.need(Resource::Node, access(verb), &node.node),
            TxnOp::Service { verb, service, .. } => {
                self.need(Resource::Service, access(verb), &service.service)
            }
            TxnOp::Check { verb, check } => {
                if check.service_name.is_empty() {
                    self.need(Resource::Node, access(verb), &check.node)
                } else {
                    self.need(Resource::Service, access(verb), &check.service_name)
                }
            }
        }
    }
}

fn redact_query_token(q: &mut PreparedQuery) {
    if !q.token.is_empty() {
        q.token = REDACTED_SECRET.into();
    }
}
