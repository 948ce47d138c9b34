//! The HTTP API (Consul's `/v1/...`), one file per API area. Handlers are
//! thin: parse, hand the request to the router (reads, writes, status,
//! events: the one request path HTTP, DNS and RPC share) or one message to
//! the `Node` actor (this agent's own services, checks and members),
//! encode. Errors become statuses in `error.rs` only; query options and
//! read headers are shared in `params.rs`. Each file declares its routes
//! as rows of the one route table (`routes.rs`), each with the ACL
//! decision that covers it; `agent_authz.rs` holds the checks the agent's
//! own handlers make against what a request names; `openapi.rs` serves
//! the OpenAPI description of every route (`openapi.json`, held to the
//! table by `tests/openapi.rs`). `server.rs` runs the
//! HTTP and HTTPS listeners, `conn_limit.rs` counts their connections.

pub mod acl;
pub mod agent;
pub mod agent_authz;
pub mod agent_checks;
pub(crate) mod agent_host;
pub mod agent_metrics;
pub mod agent_token;
pub mod catalog;
pub mod coordinate;
pub mod error;
pub mod event;
pub mod fan_out;
pub mod health;
pub mod keyring;
pub mod kv;
pub(crate) mod mesh;
pub mod openapi;
pub mod operator;
pub mod params;
pub mod query;
pub mod routes;
pub mod server;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::actors::node::{NodeActor, Router};
use crate::config::RuntimeConfig;
use crate::structs::query::Query;
use crate::structs::rpc::{Hop, StatusArgs};
use crate::structs::{
    Command, QueryOptions, RaftStatus, ReadRequest, ReadResponse, RequestError, WriteRequest,
    WriteResponse,
};
use error::ApiError;

pub use crate::conn_limit::ConnLimit;
pub use server::{server, ServeError};

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub node: Addr<NodeActor>,
    pub router: Router,
    pub config: Arc<RuntimeConfig>,
}

impl ApiState {
    pub async fn read(&self, opts: QueryOptions, query: Query) -> Result<ReadResponse, ApiError> {
        Ok(self.router.read(ReadRequest { opts, query }).await?)
    }

    /// Raft's view of `dc` (this one when `None`): a server's own, or with
    /// `leader` the leader's.
    pub async fn status(&self, dc: Option<String>, leader: bool) -> Result<RaftStatus, ApiError> {
        Ok(self
            .router
            .status(StatusArgs { dc, leader }, Hop::Route)
            .await?)
    }

    /// One message to the `Node` actor; a stopped actor is `ShuttingDown`.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, ApiError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        NodeActor: actix::Handler<M>,
    {
        self.node
            .send(msg)
            .await
            .map_err(|_| RequestError::ShuttingDown.into())
    }

    /// A write for `dc` with the caller's token.
    pub async fn write(
        &self,
        dc: Option<String>,
        token: Option<String>,
        command: Command,
    ) -> Result<WriteResponse, ApiError> {
        let req = WriteRequest { dc, command, token };
        Ok(self.router.write(req).await?)
    }
}

/// Every route of the API with its authorization decision, in the order
/// actix tries them (see [`routes::register`]).
pub fn table() -> Vec<routes::Route> {
    let mut t = Vec::new();
    t.extend(kv::routes());
    t.extend(catalog::routes());
    t.extend(health::routes());
    t.extend(coordinate::routes());
    t.extend(mesh::routes());
    t.extend(agent::routes());
    t.extend(agent_checks::routes());
    t.extend(agent_metrics::routes());
    t.extend(agent_token::routes());
    t.extend(session::routes());
    t.extend(query::routes());
    t.extend(txn::routes());
    t.extend(event::routes());
    t.extend(snapshot::routes());
    t.extend(status::routes());
    t.extend(operator::routes());
    t.extend(keyring::routes());
    t.extend(acl::routes());
    t.extend(openapi::routes());
    t
}

/// Every route of the API, from [`table`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    routes::register(cfg, table());
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.path() == "/" {
        return HttpResponse::Ok().content_type("text/plain").body(
            "Meridian Agent: the web UI is not enabled (-ui or ui_config { enabled = true }); the HTTP API is under /v1/\n",
        );
    }
    let body = if req.path().starts_with("/v1/") {
        "Invalid URL path: not a recognized HTTP API endpoint"
    } else {
        "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'"
    };
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// A route that answers 405 with `Allow` for methods it does not serve.
pub(crate) fn method_not_allowed(
    allowed: String,
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    move |req: HttpRequest| {
        std::future::ready(if req.method() == actix_web::http::Method::OPTIONS {
            HttpResponse::Ok()
                .insert_header(("Allow", format!("OPTIONS,{allowed}")))
                .finish()
        } else {
            HttpResponse::MethodNotAllowed()
                .insert_header(("Allow", format!("OPTIONS,{allowed}")))
                .body(format!("method {} not allowed", req.method()))
        })
    }
}

/// The header naming `acl.default_policy` (`allow` or `deny`).
pub const DEFAULT_ACL_POLICY_HEADER: &str = "X-Consul-Default-ACL-Policy";
