//! Meridian: service discovery, health checking and configuration for
//! multi-datacenter deployments, speaking Consul's HTTP, DNS, CLI and
//! config-file interfaces. See DESIGN.md for the picture.
//!
//! Modules are `pub` only where the binary, the integration tests or the
//! examples reach into them; the rest is the crate's own.

pub mod acl;
pub mod actors;
pub mod agent;
pub(crate) mod api;
pub(crate) mod bench;
pub mod build_info;
pub mod cli;
pub mod config;
pub(crate) mod conn_limit;
pub mod coordinate;
pub mod failpoint;
pub(crate) mod filter;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod http;
pub(crate) mod logstream;
/// The HTTP API's route table, each route with its authorization
/// decision: what the app registers, for the tests that walk it.
pub mod route_table {
    pub use crate::http::routes::{Decision, Need, Route};
    pub use crate::http::table;
}
pub(crate) mod lan;
pub(crate) mod metrics;
pub(crate) mod rpc;
pub(crate) mod snapshot;
pub mod state;
pub mod storage;
pub mod structs;
pub mod tls;
pub(crate) mod ui;
pub(crate) mod wan;
pub mod watch;
