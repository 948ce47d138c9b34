//! `/v1/acl/policy*` and `/v1/acl/policies`: create, read by ID or name,
//! update, delete and list. Rules are parsed here, as Consul's endpoint
//! does, so a policy that could never compile is never stored.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::{
    answer, body_or_default, delete_missing, new_id, not_exist, read, require_enabled, unexpected,
    write,
};
use crate::http::error::ApiError;
use crate::http::params::{json, Params};
use crate::http::routes::{self as rt, Decision::*};
use crate::http::ApiState;
use crate::structs::acl::AclPolicy;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

pub fn routes() -> Vec<rt::Route> {
    vec![
        rt::put("/v1/acl/policy", RequestPath, |r| r.to(create)),
        rt::get("/v1/acl/policy/name/{name:.+}", RequestPath, |r| {
            r.to(by_name)
        }),
        rt::get("/v1/acl/policy/{id}", RequestPath, |r| r.to(get)),
        rt::put("/v1/acl/policy/{id}", RequestPath, |r| r.to(update)),
        rt::delete("/v1/acl/policy/{id}", RequestPath, |r| r.to(delete)),
        rt::get("/v1/acl/policies", RequestPath, |r| r.to(list)),
    ]
}

async fn write_policy(
    req: &HttpRequest,
    state: &ApiState,
    policy: AclPolicy,
    create: bool,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(req)?;
    crate::acl::Rules::parse(&policy.rules).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match write(state, &p, Command::AclPolicySet { policy, create }).await? {
        CommandResult::AclPolicy(policy) => Ok(json(req, &policy)),
        other => unexpected(other),
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let mut policy: AclPolicy = body_or_default(&req, payload).await?;
    if !policy.id.is_empty() {
        return Err(ApiError::bad_request(
            "Cannot specify the ID when creating a new policy",
        ));
    }
    policy.id = new_id();
    write_policy(&req, &state, policy, true).await
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let id = id.into_inner();
    let mut policy: AclPolicy = body_or_default(&req, payload).await?;
    if policy.id.is_empty() {
        policy.id = id;
    } else if policy.id != id {
        return Err(ApiError::bad_request(
            "Policy ID in URL and payload do not match",
        ));
    }
    write_policy(&req, &state, policy, false).await
}

async fn read_policy(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    require_enabled(state)?;
    match read(req, state, query).await? {
        (meta, QueryResult::AclPolicy(p)) => {
            Ok(answer(req, &meta, &p.ok_or_else(|| not_exist("policy"))?))
        }
        (_, other) => unexpected(other),
    }
}

async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::AclPolicyRead {
        id: id.into_inner(),
    };
    read_policy(&req, &state, query).await
}

async fn by_name(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::AclPolicyByName {
        name: name.into_inner(),
    };
    read_policy(&req, &state, query).await
}

async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let command = Command::AclPolicyDelete {
        id: id.into_inner(),
    };
    match write(&state, &p, command).await? {
        CommandResult::Bool(true) => Ok(json(&req, &true)),
        CommandResult::Bool(false) => Err(delete_missing("policy")),
        other => unexpected(other),
    }
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    match read(&req, &state, Query::AclPolicyList).await? {
        (meta, QueryResult::AclPolicies(stubs)) => Ok(answer(&req, &meta, &stubs)),
        (_, other) => unexpected(other),
    }
}
