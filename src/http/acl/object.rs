//! The create, update, read (by ID or name) and delete handlers that
//! policies and roles share. Their endpoints take the same steps; what
//! tells the two apart (Consul's texts, the commands and queries, the
//! policy's rules check) is the [`AclObject`] each implements.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    answer, body_or_default, delete_missing, new_id, not_exist, read, require_enabled, unexpected,
    url_id, write,
};
use crate::http::error::ApiError;
use crate::http::params::{json, Params};
use crate::http::ApiState;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

/// A policy or a role as its endpoints see it.
pub(super) trait AclObject:
    DeserializeOwned + Serialize + Default + Sized + 'static
{
    /// Its name in Consul's texts ("policy", "role").
    const NAME: &'static str;
    /// Consul's refusal of a create whose body carries an ID.
    const CREATE_WITH_ID: &'static str;
    /// Consul's refusal of an update whose body names another ID.
    const ID_MISMATCH: &'static str;

    fn id_mut(&mut self) -> &mut String;
    /// Refuses what could never be applied (a policy's rules that do not
    /// parse); nothing to check by default.
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
    fn set_command(self, create: bool) -> Command;
    fn delete_command(id: String) -> Command;
    fn read_query(id: String) -> Query;
    fn by_name_query(name: String) -> Query;
    /// The object a set answered with (any other answer is a bug).
    fn from_set(r: CommandResult) -> Result<Box<Self>, ApiError>;
    /// The object a read found (`None`: not there; any other answer is
    /// a bug).
    fn from_read(r: QueryResult) -> Result<Option<Box<Self>>, ApiError>;
}

async fn write_object<T: AclObject>(
    req: &HttpRequest,
    state: &ApiState,
    object: T,
    create: bool,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(req)?;
    object.check()?;
    let stored = T::from_set(write(state, &p, object.set_command(create)).await?)?;
    Ok(json(req, &stored))
}

pub(super) async fn create<T: AclObject>(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let mut object: T = body_or_default(&req, payload).await?;
    if !object.id_mut().is_empty() {
        return Err(ApiError::bad_request(T::CREATE_WITH_ID));
    }
    *object.id_mut() = new_id();
    write_object(&req, &state, object, true).await
}

pub(super) async fn update<T: AclObject>(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let id = id.into_inner();
    let mut object: T = body_or_default(&req, payload).await?;
    url_id(object.id_mut(), id, T::ID_MISMATCH)?;
    write_object(&req, &state, object, false).await
}

async fn read_object<T: AclObject>(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    require_enabled(state)?;
    let (meta, result) = read(req, state, query).await?;
    match T::from_read(result) {
        Ok(found) => Ok(answer(
            req,
            &meta,
            &found.ok_or_else(|| not_exist(T::NAME))?,
        )),
        Err(other) => unexpected(other),
    }
}

pub(super) async fn get<T: AclObject>(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    read_object::<T>(&req, &state, T::read_query(id.into_inner())).await
}

pub(super) async fn by_name<T: AclObject>(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    read_object::<T>(&req, &state, T::by_name_query(name.into_inner())).await
}

pub(super) async fn delete<T: AclObject>(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    match write(&state, &p, T::delete_command(id.into_inner())).await? {
        CommandResult::Bool(true) => Ok(json(&req, &true)),
        CommandResult::Bool(false) => Err(delete_missing(T::NAME)),
        other => unexpected(other),
    }
}
