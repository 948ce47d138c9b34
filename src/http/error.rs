//! The one place where errors become HTTP statuses and Consul's texts.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::structs::RequestError;

#[derive(Debug, thiserror::Error)]
#[error("{body}")]
pub struct ApiError {
    pub status: StatusCode,
    pub body: String,
}

impl ApiError {
    pub fn bad_request(body: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: body.into(),
        }
    }
    pub fn not_found(body: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: body.into(),
        }
    }
    pub fn too_large(body: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: body.into(),
        }
    }
    pub fn unsupported_media_type(body: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: body.into(),
        }
    }
    pub fn internal(body: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: body.into(),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        if matches!(
            e,
            RequestError::PermissionDenied(_)
                | RequestError::AclNotFound
                | RequestError::Replicated(_)
        ) {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                body: e.to_string(),
            };
        }
        // Consul answers every RPC-level failure with 500 and the text;
        // clients match on the text.
        ApiError::internal(e.to_string())
    }
}

impl From<crate::actors::node::LocalError> for ApiError {
    fn from(e: crate::actors::node::LocalError) -> Self {
        use crate::actors::node::LocalError;
        match e {
            LocalError::Invalid(m) => ApiError::bad_request(m),
            LocalError::NotFound(m) => ApiError::not_found(m),
            LocalError::Request(r) => r.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        // Blocking clients read these headers even on errors (Consul sends them).
        HttpResponse::build(self.status)
            .insert_header(("X-Consul-Index", "1"))
            .insert_header(("X-Consul-KnownLeader", "false"))
            .insert_header(("X-Consul-LastContact", "0"))
            .content_type("text/plain; charset=utf-8")
            .body(self.body.clone())
    }
}
