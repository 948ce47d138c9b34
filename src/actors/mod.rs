//! The actors of one agent. Each owns its state and talks only through the
//! typed messages defined beside it.

pub mod dns;
pub mod health;
pub mod node;
pub mod raft;
