//! The `Raft` actor (servers): the Raft node and the state store it drives.

use actix::prelude::*;

use crate::rpc::{ReadRequest, ReadResponse, RequestError, WriteResponse};
use crate::state::command::Command;

#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReadResponse, RequestError>")]
pub struct RaftRead(pub ReadRequest);

#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResponse, RequestError>")]
pub struct RaftWrite(pub Command);

pub struct RaftActor {}

impl Actor for RaftActor {
    type Context = Context<Self>;
}

impl Handler<RaftRead> for RaftActor {
    type Result = ResponseFuture<Result<ReadResponse, RequestError>>;
    fn handle(&mut self, _msg: RaftRead, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async { Err(RequestError::NoLeader) })
    }
}

impl Handler<RaftWrite> for RaftActor {
    type Result = ResponseFuture<Result<WriteResponse, RequestError>>;
    fn handle(&mut self, _msg: RaftWrite, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async { Err(RequestError::NoLeader) })
    }
}
