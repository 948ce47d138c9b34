//! `/v1/event/fire/<name>` and `/v1/event/list`: user events in Consul's
//! JSON shape. Firing goes through the router (gossip here, or the
//! servers for `?dc=`); the list is this agent's own view, blocking on
//! the index Consul derives from the newest event's ID.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde::Serialize;

use super::error::ApiError;
use super::params::{json, json_with, read_body, Params};
use super::routes::{get, put, Decision::*, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::actors::node::events::{event_index, validate, ListEvents};
use crate::structs::rpc::FireEventArgs;
use crate::structs::{UserEvent, USER_EVENT_SIZE_LIMIT};

pub fn routes() -> Vec<Route> {
    vec![
        put("/v1/event/fire/{name}", AgentByRequest, |r| r.to(fire)),
        get("/v1/event/list", AgentFiltered, |r| r.to(list)),
    ]
}

/// Consul's `UserEvent` JSON (the payload as base64, `null` when empty).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventJson {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    payload: Option<String>,
    node_filter: String,
    service_filter: String,
    tag_filter: String,
    version: u32,
    #[serde(rename = "LTime")]
    ltime: u64,
}

impl From<UserEvent> for EventJson {
    fn from(e: UserEvent) -> Self {
        EventJson {
            id: e.id,
            name: e.name,
            payload: e
                .payload
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
            node_filter: e.node_filter,
            service_filter: e.service_filter,
            tag_filter: e.tag_filter,
            version: e.version,
            ltime: e.ltime,
        }
    }
}

async fn fire(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, 64 * 1024).await?;
    let event = UserEvent {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into_inner(),
        payload: (!body.is_empty()).then(|| body.to_vec()),
        node_filter: p.get("node").unwrap_or_default().to_string(),
        service_filter: p.get("service").unwrap_or_default().to_string(),
        tag_filter: p.get("tag").unwrap_or_default().to_string(),
        version: 1,
        ltime: 0,
    };
    if let Err(e) = validate(&event) {
        return Err(if event.size() > USER_EVENT_SIZE_LIMIT {
            ApiError::too_large(e)
        } else {
            ApiError::bad_request(e)
        });
    }
    let fired = state
        .router
        .fire_event(FireEventArgs {
            dc: p.dc(),
            event,
            token: state.router.token_or_default(p.token()),
        })
        .await?;
    Ok(json(&req, &EventJson::from(fired)))
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let opts = p.query_options(&state.config)?;
    let name = p.get("name").filter(|n| !n.is_empty()).map(str::to_string);
    // Consul filters the list by `event:read` on each event's name.
    let access = super::agent_authz::access(&req, &state).await?;
    let deadline = tokio::time::Instant::now() + opts.max_wait;
    loop {
        let (events, mut changed) = state.ask(ListEvents).await?;
        let events: Vec<UserEvent> = events
            .into_iter()
            .filter(|e| name.as_ref().is_none_or(|n| *n == e.name))
            .collect();
        let total = events.len();
        let events: Vec<UserEvent> = events
            .into_iter()
            .filter(|e| access.allowed(Resource::Event, Access::Read, &e.name))
            .collect();
        let filtered = events.len() != total;
        let index = events.last().map_or(0, |e| event_index(&e.id)).max(1);
        let blocking = opts.min_index > 0 && tokio::time::Instant::now() < deadline;
        if !blocking || index != opts.min_index {
            let mut b = HttpResponse::Ok();
            b.insert_header(("X-Consul-Index", index.to_string()));
            super::agent_authz::filtered_header(&mut b, filtered);
            let out: Vec<EventJson> = events.into_iter().map(EventJson::from).collect();
            return Ok(json_with(b, &req, &out));
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
