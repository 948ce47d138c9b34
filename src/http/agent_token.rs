//! `PUT /v1/agent/token/<type>`: sets one of the agent's own ACL tokens
//! (Consul's types and their legacy names), in force at once and persisted
//! with `acl.enable_token_persistence`. Needs `acl:write`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::params::{decode, read_body};
use super::routes::{put, Decision, Need, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::actors::node::tokens::TokenKind;

pub fn routes() -> Vec<Route> {
    vec![put(
        "/v1/agent/token/{type}",
        Decision::Agent(Need::global(Resource::Acl, Access::Write)),
        |r| r.to(set),
    )]
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct TokenBody {
    token: String,
}

async fn set(
    req: HttpRequest,
    state: web::Data<ApiState>,
    kind: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    if !state.config.acl.enabled {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: "ACL support disabled".into(),
        });
    }
    let Some(which) = TokenKind::from_path(&kind) else {
        return Err(ApiError::not_found(format!(
            "Token {:?} is unknown",
            kind.as_str()
        )));
    };
    let body = read_body(&req, payload, 64 * 1024).await?;
    let b: TokenBody = decode(&body)?;
    state.router.set_agent_token(which, b.token).await?;
    tracing::info!(token = %kind, "agent ACL token updated");
    Ok(HttpResponse::Ok().finish())
}
