//! `/v1/acl/role*` and `/v1/acl/roles`: create, read by ID or name,
//! update, delete and list (optionally those linking a policy).

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
use crate::structs::acl::AclRole;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

pub fn routes() -> Vec<rt::Route> {
    vec![
        rt::put("/v1/acl/role", RequestPath, |r| r.to(create)),
        rt::get("/v1/acl/role/name/{name}", RequestPath, |r| r.to(by_name)),
        rt::get("/v1/acl/role/{id}", RequestPath, |r| r.to(get)),
        rt::put("/v1/acl/role/{id}", RequestPath, |r| r.to(update)),
        rt::delete("/v1/acl/role/{id}", RequestPath, |r| r.to(delete)),
        rt::get("/v1/acl/roles", RequestPath, |r| r.to(list)),
    ]
}

async fn write_role(
    req: &HttpRequest,
    state: &ApiState,
    role: AclRole,
    create: bool,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(req)?;
    match write(state, &p, Command::AclRoleSet { role, create }).await? {
        CommandResult::AclRole(role) => Ok(json(req, &role)),
        other => unexpected(other),
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let mut role: AclRole = body_or_default(&req, payload).await?;
    // Consul's create path takes no ID in the URL, so a body ID must be
    // empty too ("do not match" otherwise).
    if !role.id.is_empty() {
        return Err(ApiError::bad_request(
            "Role ID in URL and payload do not match",
        ));
    }
    role.id = new_id();
    write_role(&req, &state, role, true).await
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let id = id.into_inner();
    let mut role: AclRole = body_or_default(&req, payload).await?;
    if role.id.is_empty() {
        role.id = id;
    } else if role.id != id {
        return Err(ApiError::bad_request(
            "Role ID in URL and payload do not match",
        ));
    }
    write_role(&req, &state, role, false).await
}

async fn read_role(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    require_enabled(state)?;
    match read(req, state, query).await? {
        (meta, QueryResult::AclRole(r)) => {
            Ok(answer(req, &meta, &r.ok_or_else(|| not_exist("role"))?))
        }
        (_, other) => unexpected(other),
    }
}

async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::AclRoleRead {
        id: id.into_inner(),
    };
    read_role(&req, &state, query).await
}

async fn by_name(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::AclRoleByName {
        name: name.into_inner(),
    };
    read_role(&req, &state, query).await
}

async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let command = Command::AclRoleDelete {
        id: id.into_inner(),
    };
    match write(&state, &p, command).await? {
        CommandResult::Bool(true) => Ok(json(&req, &true)),
        CommandResult::Bool(false) => Err(delete_missing("role")),
        other => unexpected(other),
    }
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let policy = p
        .get("policy")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    match read(&req, &state, Query::AclRoleList { policy }).await? {
        (meta, QueryResult::AclRoles(roles)) => Ok(answer(&req, &meta, &roles)),
        (_, other) => unexpected(other),
    }
}
