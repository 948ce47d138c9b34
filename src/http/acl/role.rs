//! `/v1/acl/role*` and `/v1/acl/roles`: create, read by ID or name,
//! update, delete and list (optionally those linking a policy).

use actix_web::{web, HttpRequest, HttpResponse};

use super::object::{self, AclObject};
use super::{answer, read, require_enabled, unexpected};
use crate::http::error::ApiError;
use crate::http::params::Params;
use crate::http::routes::{self as rt, Decision::*};
use crate::http::ApiState;
use crate::structs::acl::AclRole;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

pub fn routes() -> Vec<rt::Route> {
    vec![
        rt::put("/v1/acl/role", RequestPath, |r| {
            r.to(object::create::<AclRole>)
        }),
        rt::get("/v1/acl/role/name/{name}", RequestPath, |r| {
            r.to(object::by_name::<AclRole>)
        }),
        rt::get("/v1/acl/role/{id}", RequestPath, |r| {
            r.to(object::get::<AclRole>)
        }),
        rt::put("/v1/acl/role/{id}", RequestPath, |r| {
            r.to(object::update::<AclRole>)
        }),
        rt::delete("/v1/acl/role/{id}", RequestPath, |r| {
            r.to(object::delete::<AclRole>)
        }),
        rt::get("/v1/acl/roles", RequestPath, |r| r.to(list)),
    ]
}

impl AclObject for AclRole {
    const NAME: &'static str = "role";
    // Consul's create path takes no ID in the URL, so a body ID must be
    // empty too ("do not match" otherwise).
    const CREATE_WITH_ID: &'static str = "Role ID in URL and payload do not match";
    const ID_MISMATCH: &'static str = "Role ID in URL and payload do not match";

    fn id_mut(&mut self) -> &mut String {
        &mut self.id
    }

    fn set_command(self, create: bool) -> Command {
        Command::AclRoleSet { role: self, create }
    }

    fn delete_command(id: String) -> Command {
        Command::AclRoleDelete { id }
    }

    fn read_query(id: String) -> Query {
        Query::AclRoleRead { id }
    }

    fn by_name_query(name: String) -> Query {
        Query::AclRoleByName { name }
    }

    fn from_set(r: CommandResult) -> Result<Box<Self>, ApiError> {
        match r {
            CommandResult::AclRole(role) => Ok(role),
            other => unexpected(other),
        }
    }

    fn from_read(r: QueryResult) -> Result<Option<Box<Self>>, ApiError> {
        match r {
            QueryResult::AclRole(role) => Ok(role),
            other => unexpected(other),
        }
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
