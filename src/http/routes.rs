//! The route table: every `/v1/...` route is one [`Route`] of a method, a
//! path, a handler and the [`Decision`] that authorizes it. A route cannot
//! be registered without a decision: [`register`] is the only way routes
//! reach the app, and `tests/acl_routes.rs` walks the same table under
//! `default_policy = "deny"`.
//!
//! Decisions of [`Decision::Agent`] are enforced here, before the handler
//! runs, with the authorizer the router gives the agent's own endpoints
//! ([`crate::actors::node::Router::access`], on servers and client agents
//! alike). The others are enforced where the request is served: by the
//! router on the server that serves it, or by the handler against what the
//! request names.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::web;

use super::error::ApiError;
use super::params::Params;
use super::ApiState;
use crate::acl::{Access, Resource};

/// Who decides whether a request may be served, and how a request without
/// a token is answered under `default_policy = "deny"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Consul checks nothing (status, datacenters).
    Open,
    /// Open while ACLs were never bootstrapped; refused once they were
    /// (`/v1/acl/bootstrap`).
    Bootstrap,
    /// The router, on the server that serves it, checks what the request
    /// needs (`acl::Enforcer`); refused with 403.
    RequestPath,
    /// The router decides and filters list answers to what the token may
    /// read (`X-Consul-Results-Filtered-By-ACLs`).
    RequestPathFiltered,
    /// A token asking about itself (`/v1/acl/token/self`): the secret is
    /// the permission; no token means the anonymous token.
    TokenSelf,
    /// One permission on this agent, checked before the handler runs.
    Agent(Need),
    /// Checked by the handler against what the request names (the service
    /// of a body, the service of a check); refused with 403.
    AgentByRequest,
    /// An agent list the handler filters to what the token may read.
    AgentFiltered,
}

/// A permission an agent endpoint needs before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub resource: Resource,
    pub access: Access,
    /// On this agent's node name, or (false) on no name (`operator`,
    /// `acl`).
    pub on_this_node: bool,
}

impl Need {
    pub const fn node(resource: Resource, access: Access) -> Need {
        Need {
            resource,
            access,
            on_this_node: true,
        }
    }

    pub const fn global(resource: Resource, access: Access) -> Need {
        Need {
            resource,
            access,
            on_this_node: false,
        }
    }
}

/// One route of the API.
pub struct Route {
    pub method: Method,
    /// actix's pattern (`/v1/kv/{key:.*}`).
    pub path: &'static str,
    pub decision: Decision,
    handler: fn(actix_web::Route) -> actix_web::Route,
}

/// A route: `handler` is given `web::method(method)` and adds the handler
/// (`|r| r.to(get)`).
pub fn route(
    method: Method,
    path: &'static str,
    decision: Decision,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Route {
    Route {
        method,
        path,
        decision,
        handler,
    }
}

pub fn get(
    path: &'static str,
    decision: Decision,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Route {
    route(Method::GET, path, decision, handler)
}

pub fn put(
    path: &'static str,
    decision: Decision,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Route {
    route(Method::PUT, path, decision, handler)
}

pub fn delete(
    path: &'static str,
    decision: Decision,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Route {
    route(Method::DELETE, path, decision, handler)
}

/// Registers `table` in its order (actix tries resources in the order they
/// were added, so `/v1/acl/token/self` must come before
/// `/v1/acl/token/{id}`): one resource per path with all its methods, any
/// other method answered 405 with `Allow`.
pub fn register(cfg: &mut web::ServiceConfig, table: Vec<Route>) {
    let mut paths: Vec<&'static str> = Vec::new();
    for r in &table {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        let mut allowed: Vec<&str> = Vec::new();
        for r in table.iter().filter(|r| r.path == path) {
            if !allowed.contains(&r.method.as_str()) {
                allowed.push(r.method.as_str());
            }
            let mut built = (r.handler)(web::method(r.method.clone()));
            if let Decision::Agent(need) = r.decision {
                built = built.wrap(from_fn(move |req, next| check(need, req, next)));
            }
            // Outermost, so that the time includes the ACL check.
            let timers = Timers::new(&r.method, r.path);
            built = built.wrap(from_fn(move |req, next| timed(timers.clone(), req, next)));
            resource = resource.route(built);
        }
        let allowed = allowed.join(",");
        cfg.service(resource.default_service(web::to(super::method_not_allowed(allowed))));
    }
}

/// A route's latency metrics, made once when the route is registered so
/// that a request only records into them.
#[derive(Clone)]
struct Timers {
    /// `api.http` with Consul's `method` and `path` labels.
    api: crate::metrics::Summary,
    /// Consul's pre-1.9 `http.<METHOD>.<path parts>`, unless
    /// `disable_compat_1.9`.
    compat: Option<crate::metrics::Summary>,
}

impl Timers {
    fn new(method: &Method, path: &str) -> Timers {
        let (label, parts) = consul_path(path);
        let reg = crate::metrics::global();
        let api = reg.summary_with(
            "api.http",
            vec![
                ("method".into(), method.to_string()),
                ("path".into(), label),
            ],
        );
        let compat = crate::metrics::settings()
            .compat_1_9
            .then(|| reg.summary(&format!("http.{method}.{}", parts.join("."))));
        Timers { api, compat }
    }
}

/// The pattern Consul registers for an actix path (everything before the
/// first parameter: `/v1/kv/{key:.*}` is Consul's `/v1/kv/`), as Consul's
/// `path` label (`v1_kv_`) and the parts of its pre-1.9 metric name
/// (`v1`, `kv`, `_`: a trailing slash is `_`).
pub(crate) fn consul_path(path: &str) -> (String, Vec<String>) {
    let pattern = path.split('{').next().unwrap_or(path);
    let label = pattern.trim_start_matches('/').replace('/', "_");
    let parts = pattern
        .split('/')
        .enumerate()
        .filter_map(|(i, p)| match p {
            "" if i == 0 => None,
            "" => Some("_".to_string()),
            p => Some(p.to_string()),
        })
        .collect();
    (label, parts)
}

async fn timed(
    timers: Timers,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let start = std::time::Instant::now();
    let res = next.call(req).await;
    timers.api.since(start);
    if let Some(c) = &timers.compat {
        c.since(start);
    }
    res
}

/// [`Decision::Agent`]: the caller's token must grant `need` on this agent.
async fn check(
    need: Need,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the API state is missing"))?;
    let token = Params::from(req.request())?.token();
    let access = state.router.access(token).await.map_err(ApiError::from)?;
    let name = if need.on_this_node {
        state.config.node_name.as_str()
    } else {
        ""
    };
    access
        .require(need.resource, need.access, name)
        .map_err(ApiError::from)?;
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::consul_path;

    #[test]
    fn paths_take_consuls_metric_shape() {
        let p = |s: &str| consul_path(s);
        assert_eq!(
            p("/v1/kv/{key:.*}"),
            ("v1_kv_".into(), vec!["v1".into(), "kv".into(), "_".into()])
        );
        assert_eq!(
            p("/v1/agent/metrics"),
            (
                "v1_agent_metrics".into(),
                vec!["v1".into(), "agent".into(), "metrics".into()]
            )
        );
        assert_eq!(
            p("/v1/agent/service/deregister/{id}").0,
            "v1_agent_service_deregister_"
        );
    }
}
