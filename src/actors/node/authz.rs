//! ACL enforcement on the request path: the server that serves a request
//! resolves its token from its own store, compiles (or reuses) the
//! token's authorizer and checks what [`crate::acl::Enforcer`] says the
//! request needs. Forwarding servers do not decide: the token travels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::tokens::AgentTokens;
use crate::acl::{
    Access as AclAccess, Authorizer, AuthorizerConfig, DefaultPolicy, Enforcer, Lookup, NamedRules,
    PermissionDenied, Resource, TokenGrants,
};
use crate::config::{AclDefaultPolicy, RuntimeConfig};
use crate::state::query::execute;
use crate::state::{StateStore, T_ACL_POLICIES, T_ACL_ROLES, T_ACL_TOKENS};
use crate::storage::fsm::{self, SharedStore};
use crate::structs::acl::{ResolvedAclToken, ANONYMOUS_TOKEN_SECRET};
use crate::structs::catalog::Node;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{ReadRequest, ReadResponse, RequestError, WriteRequest};

/// A token's compiled authorizer, valid while the ACL tables stay at
/// `index`.
struct Cached {
    index: u64,
    authz: Arc<Authorizer>,
    accessor_id: String,
    /// The token's `ExpirationTime`: it stops resolving then, before the
    /// leader's reaper moves the index.
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

/// A resolved token, ready to check: what the router gives the agent's
/// own endpoints and the request path alike.
#[derive(Clone)]
pub struct Access {
    authz: Arc<Authorizer>,
    accessor_id: String,
    /// Whether decisions are made at all (ACLs on): with ACLs off every
    /// check passes and nothing is ever reported filtered.
    enforced: bool,
}

impl Access {
    /// ACLs off: everything is allowed.
    pub fn unrestricted() -> Access {
        Access {
            authz: Arc::new(Authorizer::management()),
            accessor_id: String::new(),
            enforced: false,
        }
    }

    pub(super) fn new(authz: Arc<Authorizer>, accessor_id: String) -> Access {
        Access {
            authz,
            accessor_id,
            enforced: true,
        }
    }

    fn enforcer(&self) -> Enforcer<'_> {
        Enforcer {
            authz: &self.authz,
            accessor_id: &self.accessor_id,
        }
    }

    /// The permission, or Consul's 403 naming the rule or default that
    /// refused.
    pub fn require(
        &self,
        resource: Resource,
        access: AclAccess,
        name: &str,
    ) -> Result<(), RequestError> {
        if !self.enforced {
            return Ok(());
        }
        self.authz
            .check(resource, access, name)
            .require(&self.accessor_id, resource, access, name)
            .map_err(denied)
    }

    /// Whether the permission is granted (to filter a list).
    pub fn allowed(&self, resource: Resource, access: AclAccess, name: &str) -> bool {
        !self.enforced || self.authz.allowed(resource, access, name)
    }

    pub fn accessor_id(&self) -> &str {
        &self.accessor_id
    }
}

/// The ACL settings the request path needs, and the authorizer cache.
pub struct Authz {
    enabled: bool,
    dc: String,
    node_name: String,
    config: AuthorizerConfig,
    /// `acl.tokens.*`, settable at run time (`/v1/agent/token/<type>`).
    tokens: AgentTokens,
    cache: Mutex<HashMap<String, Cached>>,
    /// A secondary datacenter's server without token replication: tokens
    /// its store does not hold are the primary's, resolved there.
    asks_primary: bool,
    /// What the primary answered for such tokens (or what
    /// `acl.down_policy` decided while it could not), by secret; the
    /// router keeps it current before each decision.
    foreign: Mutex<HashMap<String, Access>>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Consul's accessor ID for the agent recovery token.
const AGENT_RECOVERY_ACCESSOR: &str = "agent-recovery-token";

impl Authz {
    pub fn new(config: &RuntimeConfig) -> Authz {
        let acl = &config.acl;
        Authz {
            enabled: acl.enabled,
            dc: config.datacenter.clone(),
            node_name: config.node_name.clone(),
            config: AuthorizerConfig {
                default_policy: match acl.default_policy {
                    AclDefaultPolicy::Allow => DefaultPolicy::Allow,
                    AclDefaultPolicy::Deny => DefaultPolicy::Deny,
                },
                enable_key_list_policy: acl.enable_key_list_policy,
            },
            tokens: AgentTokens::new(config),
            cache: Mutex::default(),
            asks_primary: acl.enabled
                && !config.in_primary_datacenter()
                && !acl.enable_token_replication,
            foreign: Mutex::default(),
        }
    }

    /// Whether tokens unknown here are resolved by the primary
    /// datacenter (a secondary without `acl.enable_token_replication`,
    /// as Consul's secondaries do then).
    pub(super) fn asks_primary(&self) -> bool {
        self.asks_primary
    }

    /// Whether this server's own store holds the token behind `secret`.
    pub(super) fn known_here(&self, store: &SharedStore, secret: &str) -> bool {
        self.resolve_local(&fsm::read(store), secret).is_ok()
    }

    /// Records the primary's answer for a token unknown here (`None`: it
    /// has no such token).
    pub(super) fn set_foreign(&self, secret: &str, access: Option<Access>) {
        let mut foreign = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        match access {
            Some(a) => foreign.insert(secret.to_string(), a),
            None => foreign.remove(secret),
        };
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn tokens(&self) -> &AgentTokens {
        &self.tokens
    }

    /// The token a request that carried none uses (only with ACLs on, so
    /// that nothing changes with them off).
    pub fn or_default(&self, token: Option<String>) -> Option<String> {
        match token {
            None if self.enabled => non_empty(self.tokens.get().default),
            t => t,
        }
    }

    /// `acl.tokens.agent`, else the default.
    pub fn agent_token(&self) -> Option<String> {
        let t = self.tokens.get();
        non_empty(t.agent)
            .or_else(|| non_empty(t.default))
            .filter(|_| self.enabled)
    }

    /// The token a local service or check syncs with (Consul's
    /// `aclTokenForServiceSync`): the one it was registered with, else
    /// for one from the config files
    /// `acl.tokens.config_file_service_registration`, else the agent's.
    /// Read at each sync, so tokens set at run time apply at once.
    pub fn registration_token(&self, own: Option<&str>, from_file: bool) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let file_token = || {
            from_file
                .then(|| non_empty(self.tokens.get().config_file_service_registration))
                .flatten()
        };
        own.filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(file_token)
            .or_else(|| self.agent_token())
    }

    /// `acl.tokens.dns`, else the default.
    pub fn dns_token(&self) -> Option<String> {
        let t = self.tokens.get();
        non_empty(t.dns)
            .or_else(|| non_empty(t.default))
            .filter(|_| self.enabled)
    }

    /// `acl.tokens.agent_recovery`, resolved on this agent alone (it
    /// works while no server answers): `agent:write` on this node and
    /// `node:read` on every node, nothing else, as Consul's.
    pub(super) fn recovery(&self, secret: Option<&str>) -> Option<Access> {
        let recovery = self.tokens.get().agent_recovery;
        if recovery.is_empty() || secret != Some(recovery.as_str()) {
            return None;
        }
        let rules = format!(
            "agent {:?} {{ policy = \"write\" }}\nnode_prefix \"\" {{ policy = \"read\" }}",
            self.node_name
        );
        let config = AuthorizerConfig {
            default_policy: DefaultPolicy::Deny,
            ..self.config
        };
        let authz = match NamedRules::parse("agent_recovery", &rules) {
            Ok(r) => Authorizer::compile(&[r], config),
            Err(e) => {
                tracing::warn!(error = %e, "agent recovery rules do not parse; it grants nothing");
                Authorizer::compile(&[], config)
            }
        };
        Some(Access::new(
            Arc::new(authz),
            AGENT_RECOVERY_ACCESSOR.to_string(),
        ))
    }

    /// An authorizer with no rules under `policy` (a client's
    /// `down_policy` of allow or deny), naming why in its accessor.
    pub(super) fn blanket(&self, policy: DefaultPolicy, why: &str) -> Access {
        let config = AuthorizerConfig {
            default_policy: policy,
            ..self.config
        };
        Access::new(Arc::new(Authorizer::compile(&[], config)), why.to_string())
    }

    /// The token behind `secret` from this server's store.
    pub(super) fn resolve_here(
        &self,
        store: &SharedStore,
        secret: Option<&str>,
    ) -> Result<Access, RequestError> {
        self.resolve(&fsm::read(store), secret)
    }

    /// What `ResolveToken` answers a client agent: the token behind
    /// `secret` in this server's store with its policies, roles and
    /// identities, or `ACL not found`.
    pub(super) fn resolved_token(
        &self,
        store: &SharedStore,
        secret: &str,
    ) -> Result<ResolvedAclToken, RequestError> {
        if !self.enabled {
            return Err(RequestError::Rejected("ACL support disabled".into()));
        }
        let query = Query::AclResolve {
            secret: secret.to_string(),
            now: chrono::Utc::now(),
        };
        match execute(&fsm::read(store), &query, None).1 {
            QueryResult::AclResolved(Some(token)) => Ok(*token),
            _ => Err(RequestError::AclNotFound),
        }
    }

    /// The token behind `secret` (none: the anonymous token), compiled
    /// once per change of the ACL tables.
    fn resolve(&self, store: &StateStore, secret: Option<&str>) -> Result<Access, RequestError> {
        let secret = secret.unwrap_or(ANONYMOUS_TOKEN_SECRET);
        match self.resolve_local(store, secret) {
            Err(RequestError::AclNotFound) if self.asks_primary => self
                .foreign
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(secret)
                .cloned()
                .ok_or(RequestError::AclNotFound),
            r => r,
        }
    }

    /// `resolve` from this server's store alone.
    fn resolve_local(&self, store: &StateStore, secret: &str) -> Result<Access, RequestError> {
        let now = chrono::Utc::now();
        // The index `AclResolve` answers with: the three tables' highest.
        let index = [T_ACL_TOKENS, T_ACL_POLICIES, T_ACL_ROLES]
            .iter()
            .map(|t| store.table_index(t))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |c: &&Cached| c.index == index && c.expires.is_none_or(|e| now < e);
        if let Some(c) = cache.get(secret).filter(fresh) {
            return Ok(Access::new(c.authz.clone(), c.accessor_id.clone()));
        }
        let query = Query::AclResolve {
            secret: secret.to_string(),
            now,
        };
        let (index, result) = execute(store, &query, None);
        let QueryResult::AclResolved(Some(token)) = result else {
            // Unknown or expired; an earlier answer for it is stale.
            cache.remove(secret);
            return Err(RequestError::AclNotFound);
        };
        // Entries of other indexes can never be used again.
        cache.retain(|_, c| c.index == index);
        let authz = Arc::new(self.compile(&token));
        let accessor_id = token.token.accessor_id.clone();
        cache.insert(
            secret.to_string(),
            Cached {
                index,
                authz: authz.clone(),
                accessor_id: accessor_id.clone(),
                expires: token.token.expiration_time,
            },
        );
        Ok(Access::new(authz, accessor_id))
    }

    pub(super) fn compile(&self, token: &ResolvedAclToken) -> Authorizer {
        let (authz, skipped) = TokenGrants::from(token).compile(&self.dc, self.config);
        for note in skipped {
            tracing::warn!(token = %token.token.accessor_id, "ACL {note}");
        }
        authz
    }

    /// A read this server serves: refused, or the token to filter its
    /// answer with (`None` with ACLs off).
    pub fn read(
        &self,
        store: &SharedStore,
        req: &ReadRequest,
    ) -> Result<Option<Access>, RequestError> {
        if !self.enabled {
            return Ok(None);
        }
        // A token reading itself needs no permission (`/v1/acl/token/self`;
        // its unknown secret answers as the endpoint says).
        if let Query::AclTokenBySecret { secret_id } = &req.query {
            if req.opts.token.as_deref() == Some(secret_id.as_str()) {
                return Ok(None);
            }
        }
        let s = fsm::read(store);
        let access = self.resolve(&s, req.opts.token.as_deref())?;
        access.enforcer().read(&req.query).map_err(denied)?;
        Ok(Some(access))
    }

    /// A write this server is about to batch (it leads).
    pub fn write(&self, store: &SharedStore, req: &WriteRequest) -> Result<(), RequestError> {
        if !self.enabled {
            return Ok(());
        }
        let s = fsm::read(store);
        let access = self.resolve(&s, req.token.as_deref())?;
        access
            .enforcer()
            .write(&req.command, &StoreLookup(&s))
            .map_err(denied)
    }
}

impl Authz {
    /// One permission outside reads and writes (user events, Raft peer
    /// removal), on the server that acts.
    pub fn check(
        &self,
        store: &SharedStore,
        token: Option<&str>,
        resource: Resource,
        access: AclAccess,
        name: &str,
    ) -> Result<(), RequestError> {
        if !self.enabled {
            return Ok(());
        }
        let s = fsm::read(store);
        self.resolve(&s, token)?.require(resource, access, name)
    }
}

/// Drops from a served answer what the token may not read.
pub fn filter(access: Option<&Access>, mut resp: ReadResponse) -> ReadResponse {
    if let Some(a) = access.filter(|a| a.enforced) {
        if a.enforcer().filter(&mut resp.result) {
            resp.meta.results_filtered = true;
        }
    }
    resp
}

fn denied(e: PermissionDenied) -> RequestError {
    RequestError::PermissionDenied(e.to_string())
}

/// The store lookups a write's check needs.
struct StoreLookup<'a>(&'a StateStore);

impl Lookup for StoreLookup<'_> {
    fn session_node(&self, id: &str) -> Option<String> {
        let q = Query::SessionInfo { id: id.to_string() };
        match execute(self.0, &q, None).1 {
            QueryResult::Sessions(v) => v.into_iter().next().map(|s| s.node),
            _ => None,
        }
    }

    fn service_name(&self, node: &str, service_id: &str) -> Option<String> {
        let q = Query::CatalogNode {
            node: node.to_string(),
        };
        match execute(self.0, &q, None).1 {
            QueryResult::NodeServices(Some(ns)) => ns
                .services
                .values()
                .find(|s| s.id == service_id)
                .map(|s| s.service.clone()),
            _ => None,
        }
    }

    fn prepared_query(&self, id: &str) -> Option<crate::structs::prepared_query::PreparedQuery> {
        self.0.prepared_query_get(id, None).1
    }

    fn node(&self, name: &str) -> Option<Node> {
        let q = Query::CatalogNode {
            node: name.to_string(),
        };
        match execute(self.0, &q, None).1 {
            QueryResult::NodeServices(Some(ns)) => Some(ns.node),
            _ => None,
        }
    }
}
