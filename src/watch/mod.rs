//! Watches: a view of the data (a key, a prefix, the services, the nodes,
//! one service's instances, checks, events) followed with blocking
//! queries, and a handler run with the new JSON each time its index moves.
//! `meridian watch` runs one from the command line; `watches` in the config
//! files are run by the agent against its own HTTP API. Both behave as
//! Consul's: the handler gets the JSON on stdin (scripts) or as the body
//! (HTTP), and `CONSUL_INDEX` / `X-Consul-Index` carry the index.
//!
//! [`plan`] owns what a watch is (the data types and their validation),
//! [`run`] owns following one over HTTP and running its handler. They are
//! apart so that the config, which only parses plans, does not depend on
//! an HTTP client.

pub mod plan;
pub mod run;

pub use plan::{WatchHandler, WatchKind, WatchParams, WatchPlan};
pub use run::{invoke, run, start_config_watches};
