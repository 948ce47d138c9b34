//! Meridian: service discovery, health checking and configuration for
//! multi-datacenter deployments, speaking Consul's HTTP, DNS, CLI and
//! config-file interfaces. See DESIGN.md for the picture.

pub mod actors;
pub mod agent;
pub mod api;
pub mod bench;

pub mod cli;
pub mod config;
pub mod http;
pub mod lan;
pub mod rpc;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod structs;
pub mod ui;
pub mod wan;
pub mod watch;
