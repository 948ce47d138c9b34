//! The authorizer of the agent's own endpoints ([`Router::access`]), on
//! both roles: a server resolves the token from its own store (as the
//! request path does); a client agent has no store and asks a server of
//! its datacenter (`ResolveToken`), compiles the answer with the same code
//! servers use, and caches it by secret.
//!
//! A client's cache entry lives for the smallest of `acl.token_ttl`,
//! `policy_ttl` and `role_ttl` (one answer carries the token, its
//! policies and its roles, so the shortest life bounds them all). When no
//! server answers, `acl.down_policy` decides: `allow`, `deny`,
//! `extend-cache` (the cached entry past its TTL, else deny), or
//! `async-cache` (an expired entry is served at once while one refresh
//! runs in the background; no entry, deny).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Router, Target};
use crate::acl::DefaultPolicy;
use crate::actors::node::authz::Access;
use crate::actors::node::tokens::{self, TokenKind};
use crate::actors::raft::LocalServer;
use crate::config::{AclDownPolicy, RuntimeConfig};
use crate::structs::acl::{ResolvedAclToken, ANONYMOUS_TOKEN_SECRET};
use crate::structs::rpc;
use crate::structs::RequestError;

/// Time for one `ResolveToken` call.
const RESOLVE_HOLD: Duration = Duration::from_secs(5);

/// The accessor a down-policy decision names: no token was resolved.
const DOWN: &str = "unresolved: no server answered, acl.down_policy";

/// A client's cache of resolved tokens.
pub(in crate::actors::node) struct TokenCache {
    ttl: Duration,
    down_policy: AclDownPolicy,
    entries: Mutex<HashMap<String, Entry>>,
    /// Secrets an `async-cache` refresh is running for.
    refreshing: Mutex<HashSet<String>>,
}

#[derive(Clone)]
struct Entry {
    access: Access,
    fetched: Instant,
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

impl TokenCache {
    pub(in crate::actors::node) fn new(config: &RuntimeConfig) -> TokenCache {
        let acl = &config.acl;
        TokenCache {
            ttl: acl.token_ttl.min(acl.policy_ttl).min(acl.role_ttl),
            down_policy: acl.down_policy,
            entries: Mutex::default(),
            refreshing: Mutex::default(),
        }
    }

    /// The cached entry for `secret` and whether it is still fresh; an
    /// expired token's entry is never used.
    fn get(&self, secret: &str) -> Option<(Access, bool)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(secret)?;
        if e.expires.is_some_and(|t| chrono::Utc::now() >= t) {
            return None;
        }
        Some((e.access.clone(), e.fetched.elapsed() < self.ttl))
    }

    fn put(&self, secret: &str, access: Access, token: &ResolvedAclToken) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                secret.to_string(),
                Entry {
                    access,
                    fetched: Instant::now(),
                    expires: token.token.expiration_time,
                },
            );
    }

    fn forget(&self, secret: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret);
    }
}

impl Router {
    /// The authorizer for the agent's own endpoints: `token` (else
    /// `acl.tokens.default`, else anonymous), resolved here on a server
    /// and through a server on a client agent. With ACLs off everything
    /// is allowed.
    pub async fn access(&self, token: Option<String>) -> Result<Access, RequestError> {
        let authz = &self.0.authz;
        if !authz.enabled() {
            return Ok(Access::unrestricted());
        }
        let secret = authz.or_default(token);
        if let Some(a) = authz.recovery(secret.as_deref()) {
            return Ok(a);
        }
        if let Some(local) = &self.0.local {
            self.learn_foreign(local, secret.as_deref()).await?;
            return authz.resolve_here(local.store(), secret.as_deref());
        }
        let secret = secret.unwrap_or_else(|| ANONYMOUS_TOKEN_SECRET.to_string());
        self.client_access(&secret).await
    }

    /// A server's answer to a client's `ResolveToken`: its store's, or in
    /// a secondary without token replication, the primary's.
    pub async fn resolve_token(&self, secret: String) -> Result<ResolvedAclToken, RequestError> {
        let Some(local) = &self.0.local else {
            return Err(RequestError::NoServers);
        };
        match self.0.authz.resolved_token(local.store(), &secret) {
            Err(RequestError::AclNotFound) if self.0.authz.asks_primary() => {
                let token = self
                    .remote::<rpc::ResolveToken>(&self.primary_target(), secret, RESOLVE_HOLD)
                    .await??;
                global_only(token)
            }
            r => r,
        }
    }

    /// Before a decision on a secondary's server without token
    /// replication: a token its store does not hold is looked up in the
    /// primary (cached for the token TTL, `acl.down_policy` when the
    /// primary does not answer), so that the request path, which decides
    /// from what this server has, finds it.
    pub(super) async fn learn_foreign(
        &self,
        local: &LocalServer,
        secret: Option<&str>,
    ) -> Result<(), RequestError> {
        let authz = &self.0.authz;
        let secret = secret.unwrap_or(ANONYMOUS_TOKEN_SECRET);
        if !authz.asks_primary() || authz.known_here(local.store(), secret) {
            return Ok(());
        }
        match self.client_access(secret).await {
            Ok(access) => authz.set_foreign(secret, Some(access)),
            Err(RequestError::AclNotFound) => authz.set_foreign(secret, None),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Where a token this agent cannot resolve itself is resolved: a
    /// client's servers, or a secondary server's primary datacenter.
    fn primary_target(&self) -> Target {
        Target::Dc(self.0.primary.to_ascii_lowercase())
    }

    async fn client_access(&self, secret: &str) -> Result<Access, RequestError> {
        let cache = &self.0.tokens;
        let cached = cache.get(secret);
        match &cached {
            Some((a, true)) => return Ok(a.clone()),
            Some((a, false)) if cache.down_policy == AclDownPolicy::AsyncCache => {
                self.refresh_in_background(secret);
                return Ok(a.clone());
            }
            _ => {}
        }
        match self.fetch(secret).await {
            Ok(access) => Ok(access),
            Err(Fetch::NotFound) => Err(RequestError::AclNotFound),
            Err(Fetch::Down(e)) => {
                tracing::warn!(error = %e, policy = %cache.down_policy, "no server resolved an ACL token; applying acl.down_policy");
                let authz = &self.0.authz;
                Ok(match (cache.down_policy, cached) {
                    (AclDownPolicy::Allow, _) => {
                        authz.blanket(DefaultPolicy::Allow, &format!("{DOWN} allow"))
                    }
                    (AclDownPolicy::ExtendCache | AclDownPolicy::AsyncCache, Some((a, _))) => a,
                    (p, _) => authz.blanket(DefaultPolicy::Deny, &format!("{DOWN} {p}")),
                })
            }
        }
    }

    /// One `ResolveToken` round: the compiled token, cached. A client
    /// asks its servers; a server (a secondary without token
    /// replication) asks the primary, whose local tokens are not valid
    /// here.
    async fn fetch(&self, secret: &str) -> Result<Access, Fetch> {
        let (target, here) = match self.0.local {
            Some(_) => (self.primary_target(), false),
            None => (Target::Here, true),
        };
        let reply = self
            .remote::<rpc::ResolveToken>(&target, secret.to_string(), RESOLVE_HOLD)
            .await
            .map_err(Fetch::Down)?;
        let reply = if here {
            reply
        } else {
            reply.and_then(global_only)
        };
        match reply {
            Ok(token) => {
                let authz = Arc::new(self.0.authz.compile(&token));
                let access = Access::new(authz, token.token.accessor_id.clone());
                self.0.tokens.put(secret, access.clone(), &token);
                Ok(access)
            }
            Err(RequestError::AclNotFound) => {
                self.0.tokens.forget(secret);
                Err(Fetch::NotFound)
            }
            // The server could not resolve it (no ACLs there, no leader).
            Err(e) => Err(Fetch::Down(e)),
        }
    }

    fn refresh_in_background(&self, secret: &str) {
        {
            let mut running = self
                .0
                .tokens
                .refreshing
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !running.insert(secret.to_string()) {
                return;
            }
        }
        let (me, secret) = (self.clone(), secret.to_string());
        tokio::spawn(async move {
            if let Err(Fetch::Down(e)) = me.fetch(&secret).await {
                tracing::debug!(error = %e, "background ACL token refresh failed; the cached entry stays");
            }
            me.0.tokens
                .refreshing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&secret);
        });
    }
}

/// Why a `ResolveToken` round gave nothing.
enum Fetch {
    /// The servers said the secret names no token.
    NotFound,
    /// No server answered it.
    Down(RequestError),
}

impl Router {
    /// `PUT /v1/agent/token/<kind>`: in force at once, and persisted
    /// (off the actor threads) with `acl.enable_token_persistence`.
    pub async fn set_agent_token(
        &self,
        kind: TokenKind,
        value: String,
    ) -> Result<(), RequestError> {
        let internal = |e: String| RequestError::Internal(e);
        let persist = self
            .0
            .authz
            .tokens()
            .set(kind, value)
            .map_err(|e| internal(e.to_string()))?;
        if let Some((path, bytes)) = persist {
            tokio::task::spawn_blocking(move || tokens::write(&path, &bytes))
                .await
                .map_err(|e| internal(e.to_string()))?
                .map_err(|e| internal(e.to_string()))?;
        }
        Ok(())
    }

    /// A reload's `acl.tokens` (those set through the API stay).
    pub fn reload_tokens(&self, tokens: &crate::config::AclTokens) {
        self.0.authz.tokens().reload(tokens);
    }
}

/// A token another datacenter resolved: only a global one counts here.
fn global_only(token: ResolvedAclToken) -> Result<ResolvedAclToken, RequestError> {
    if token.token.local {
        Err(RequestError::AclNotFound)
    } else {
        Ok(token)
    }
}
