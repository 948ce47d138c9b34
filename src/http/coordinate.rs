//! `/v1/coordinate/*`: the WAN coordinates of every datacenter's servers,
//! the LAN coordinates of this datacenter's nodes (all, or one), and a
//! node's update of its own. All answer 401 `Coordinate support
//! disabled` under `disable_coordinates`, as Consul's do.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::catalog::{answer, serve, MAX_BODY};
use super::error::ApiError;
use super::params::{decode, json, read_body, Params};
use super::routes::{get, put, Decision::*, Route};
use super::ApiState;
use crate::state::query::{Query, QueryResult};
use crate::structs::coordinate::{Coordinate, CoordinateEntry};
use crate::structs::rpc::{CoordinateUpdateArgs, Hop};

pub fn routes() -> Vec<Route> {
    vec![
        // Consul checks nothing: server names and places are not secret
        // from whoever can reach the API.
        get("/v1/coordinate/datacenters", Open, |r| r.to(datacenters)),
        get("/v1/coordinate/nodes", RequestPathFiltered, |r| r.to(nodes)),
        get("/v1/coordinate/node/{node}", RequestPath, |r| r.to(node)),
        put("/v1/coordinate/update", RequestPath, |r| r.to(update)),
    ]
}

fn enabled(state: &ApiState) -> Result<(), ApiError> {
    if state.config.disable_coordinates {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: "Coordinate support disabled".into(),
        });
    }
    Ok(())
}

async fn datacenters(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let maps = state.router.coordinate_datacenters().await?;
    Ok(json(&req, &maps))
}

async fn nodes(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    serve(&req, &state, Query::CoordinateNodes).await
}

/// One node's coordinates; 404 when it has none (Consul's answer).
async fn node(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let p = Params::from(&req)?;
    let opts = p.query_options(&state.config)?;
    let resp = state
        .read(
            opts,
            Query::CoordinateNode {
                node: node.into_inner(),
            },
        )
        .await?;
    if matches!(&resp.result, QueryResult::Coordinates(c) if c.is_empty()) {
        return Ok(super::params::read_response(StatusCode::NOT_FOUND, &resp.meta).finish());
    }
    answer(&req, resp)
}

/// `PUT /v1/coordinate/update`'s body (Consul's `CoordinateUpdateRequest`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateBody {
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    segment: Option<String>,
    #[serde(default)]
    coord: Option<Coordinate>,
    #[serde(default)]
    datacenter: Option<String>,
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, MAX_BODY).await?;
    let b: UpdateBody = decode(&body)?;
    let node = b
        .node
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing node name (Node)"))?;
    let coord = b
        .coord
        .ok_or_else(|| ApiError::bad_request("Missing coordinate (Coord)"))?;
    if !coord.is_compatible_with(&Coordinate::default()) {
        return Err(ApiError::bad_request(format!(
            "Coord.Vec: coordinate dimensionality is incompatible: {} dimensions, want {}",
            coord.vec.len(),
            crate::structs::coordinate::DIMENSIONALITY
        )));
    }
    if !coord.is_valid() {
        return Err(ApiError::bad_request(
            "Coord: invalid coordinate (a component is NaN or infinite)",
        ));
    }
    let args = CoordinateUpdateArgs {
        dc: p.dc().or(b.datacenter.filter(|d| !d.is_empty())),
        entry: CoordinateEntry {
            node,
            segment: b.segment.unwrap_or_default(),
            coord,
        },
        token: p.token(),
    };
    state.router.coordinate_update(args, Hop::Route).await?;
    Ok(HttpResponse::Ok().finish())
}
