//! `GET /v1/openapi.json`: Meridian's own route (Consul publishes no
//! OpenAPI file), serving the OpenAPI 3.0 description of the HTTP API
//! kept in `openapi.json` beside this file. The description is a data
//! file embedded in the binary; `tests/openapi.rs` holds it to the route
//! table (every route documented, every documented operation a route)
//! and `tests/python/test_openapi_fuzz.py` fuzzes a live agent with it.

use std::sync::OnceLock;

use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::json;
use super::routes::{get, Decision, Need, Route};
use crate::acl::{Access, Resource};

/// The description as written (its `info.version` is the build's, set
/// when it is first served).
const DOCUMENT: &str = include_str!("openapi.json");

pub const PATH: &str = "/v1/openapi.json";

pub fn routes() -> Vec<Route> {
    // What the agent serves about itself is read with `agent:read`, as
    // `/v1/agent/self` is.
    vec![get(
        PATH,
        Decision::Agent(Need::node(Resource::Agent, Access::Read)),
        |r| r.to(openapi),
    )]
}

/// The description with this build's version. An embedded file that does
/// not parse is a build defect (a unit test below catches it), answered
/// 500 rather than taking the agent down.
pub fn document() -> Result<&'static serde_json::Value, String> {
    static DOC: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc: serde_json::Value =
            serde_json::from_str(DOCUMENT).map_err(|e| format!("openapi.json: {e}"))?;
        if let Some(info) = doc.get_mut("info").and_then(|i| i.as_object_mut()) {
            info.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        }
        Ok(doc)
    })
    .as_ref()
    .map_err(Clone::clone)
}

async fn openapi(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let doc = document().map_err(ApiError::internal)?;
    Ok(json(&req, doc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_description_parses_and_carries_the_build_version() {
        let doc = super::document().unwrap();
        assert_eq!(
            doc["openapi"].as_str().unwrap().split('.').next(),
            Some("3")
        );
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["paths"].as_object().unwrap().len() > 50);
    }
}
