//! `/v1/agent/metrics`: this agent's telemetry, as Consul's JSON summary
//! of the last finished 10-second interval, or (`?format=prometheus`, or
//! an `Accept` Prometheus sends) the Prometheus text exposition when
//! `telemetry.prometheus_retention_time` is positive.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::json as json_resp;
use super::routes::{get, Decision::Agent, Need, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::config::RuntimeConfig;
use crate::metrics;

pub fn routes() -> Vec<Route> {
    // Consul: agent:read on this agent's node name.
    vec![get(
        "/v1/agent/metrics",
        Agent(Need::node(Resource::Agent, Access::Read)),
        |r| r.to(agent_metrics),
    )]
}

/// The registry's settings from the agent's `telemetry` block.
pub fn settings(config: &RuntimeConfig) -> metrics::Settings {
    let t = &config.telemetry;
    metrics::Settings {
        prefix: t.metrics_prefix.clone(),
        hostname: (!t.disable_hostname).then(|| {
            hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        prometheus_retention: t.prometheus_retention_time,
        compat_1_9: !t.disable_compat_1_9,
    }
}

/// Consul's test: `?format=prometheus`, or an `Accept` naming OpenMetrics
/// (or the plain-text version Consul's code spells `version=0.4.0`).
fn wants_prometheus(req: &HttpRequest) -> bool {
    let format =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("format").cloned());
    if format.as_deref() == Some("prometheus") {
        return true;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.split(',').any(|m| {
        let mut parts = m.split(';').map(str::trim);
        match parts.next().map(str::to_ascii_lowercase).as_deref() {
            Some("application/openmetrics-text") => true,
            Some("text/plain") => parts.next() == Some("version=0.4.0"),
            _ => false,
        }
    })
}

async fn agent_metrics(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let s = settings(&state.config);
    let reg = metrics::global();
    if wants_prometheus(&req) {
        if s.prometheus_retention.is_zero() {
            return Err(ApiError::unsupported_media_type(
                "Prometheus is not enabled since its retention time is not positive",
            ));
        }
        reg.collect();
        let text = metrics::prometheus(reg, &s, std::time::SystemTime::now());
        return Ok(HttpResponse::Ok()
            .content_type(metrics::PROMETHEUS_CONTENT_TYPE)
            .body(text));
    }
    reg.collect();
    let summary = metrics::json(reg, &s, std::time::SystemTime::now());
    Ok(json_resp(&req, &summary))
}

#[cfg(test)]
mod tests {
    use super::wants_prometheus;
    use actix_web::test::TestRequest;

    #[test]
    fn prometheus_is_asked_for_by_query_or_accept() {
        let ask = |uri: &str, accept: Option<&str>| {
            let mut r = TestRequest::get().uri(uri);
            if let Some(a) = accept {
                r = r.insert_header(("Accept", a));
            }
            wants_prometheus(&r.to_http_request())
        };
        assert!(ask("/v1/agent/metrics?format=prometheus", None));
        assert!(!ask("/v1/agent/metrics", None));
        assert!(!ask("/v1/agent/metrics?format=json", None));
        // What Prometheus 2.x sends when it scrapes.
        assert!(ask(
            "/v1/agent/metrics",
            Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        ));
        assert!(!ask("/v1/agent/metrics", Some("application/json")));
    }
}
