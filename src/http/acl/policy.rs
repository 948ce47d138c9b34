//! `/v1/acl/policy*` and `/v1/acl/policies`: create, read by ID or name,
//! update, delete and list. Rules are parsed here, as Consul's endpoint
//! does, so a policy that could never compile is never stored.

use actix_web::{web, HttpRequest, HttpResponse};

use super::object::{self, AclObject};
use super::{answer, read, require_enabled, unexpected};
use crate::http::error::ApiError;
use crate::http::routes::{self as rt, Decision::*};
use crate::http::ApiState;
use crate::structs::acl::AclPolicy;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

pub fn routes() -> Vec<rt::Route> {
    vec![
        rt::put("/v1/acl/policy", RequestPath, |r| {
            r.to(object::create::<AclPolicy>)
        }),
        rt::get("/v1/acl/policy/name/{name:.+}", RequestPath, |r| {
            r.to(object::by_name::<AclPolicy>)
        }),
        rt::get("/v1/acl/policy/{id}", RequestPath, |r| {
            r.to(object::get::<AclPolicy>)
        }),
        rt::put("/v1/acl/policy/{id}", RequestPath, |r| {
            r.to(object::update::<AclPolicy>)
        }),
        rt::delete("/v1/acl/policy/{id}", RequestPath, |r| {
            r.to(object::delete::<AclPolicy>)
        }),
        rt::get("/v1/acl/policies", RequestPath, |r| r.to(list)),
    ]
}

impl AclObject for AclPolicy {
    const NAME: &'static str = "policy";
    const CREATE_WITH_ID: &'static str = "Cannot specify the ID when creating a new policy";
    const ID_MISMATCH: &'static str = "Policy ID in URL and payload do not match";

    fn id_mut(&mut self) -> &mut String {
        &mut self.id
    }

    fn check(&self) -> Result<(), ApiError> {
        crate::acl::Rules::parse(&self.rules).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(())
    }

    fn set_command(self, create: bool) -> Command {
        Command::AclPolicySet {
            policy: self,
            create,
        }
    }

    fn delete_command(id: String) -> Command {
        Command::AclPolicyDelete { id }
    }

    fn read_query(id: String) -> Query {
        Query::AclPolicyRead { id }
    }

    fn by_name_query(name: String) -> Query {
        Query::AclPolicyByName { name }
    }

    fn from_set(r: CommandResult) -> Result<Box<Self>, ApiError> {
        match r {
            CommandResult::AclPolicy(policy) => Ok(policy),
            other => unexpected(other),
        }
    }

    fn from_read(r: QueryResult) -> Result<Option<Box<Self>>, ApiError> {
        match r {
            QueryResult::AclPolicy(policy) => Ok(policy),
            other => unexpected(other),
        }
    }
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    match read(&req, &state, Query::AclPolicyList).await? {
        (meta, QueryResult::AclPolicies(stubs)) => Ok(answer(&req, &meta, &stubs)),
        (_, other) => unexpected(other),
    }
}
