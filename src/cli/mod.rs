//! The `meridian` command line: one file per command. Every command but
//! `agent`, `validate` and `version` talks to an agent's HTTP API, exactly
//! as Consul's CLI does, so it works against any agent it can reach
//! (`demo` starts agents of its own and talks to those).

mod acl;
mod agent;
mod catalog;
mod client;
mod demo;
mod demo_web;
mod event;
mod force_leave;
mod info;
mod join;
mod keygen;
mod keyring;
mod kv;
mod leave;
mod lock;
mod maint;
mod members;
mod monitor;
mod operator;
mod reload;
mod rtt;
mod services;
mod snapshot;
mod tls;
mod validate;
mod version;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};

pub use client::{Client, HttpArgs};

#[derive(Parser)]
#[command(
    name = "meridian",
    about = "Service discovery and configuration, speaking Consul's interfaces",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs an agent.
    // Boxed: the agent's flags outweigh every other command's.
    Agent(Box<crate::config::AgentFlags>),
    /// Manages ACL tokens, policies and roles; explains decisions.
    Acl {
        #[command(subcommand)]
        cmd: acl::AclCmd,
    },
    /// Tells the agent to join a cluster through an agent already in it.
    Join(join::Args),
    /// Lists the members of the cluster.
    Members(members::Args),
    /// Interacts with the key-value store.
    Kv {
        #[command(subcommand)]
        cmd: kv::KvCmd,
    },
    /// Interacts with the catalog.
    Catalog {
        #[command(subcommand)]
        cmd: catalog::CatalogCmd,
    },
    /// Operator tools (Raft).
    Operator {
        #[command(subcommand)]
        cmd: operator::OperatorCmd,
    },
    /// Saves, restores and inspects snapshots of the datacenter's state.
    Snapshot {
        #[command(subcommand)]
        cmd: snapshot::SnapshotCmd,
    },
    /// Fires a user event to the datacenter's agents.
    Event(event::Args),
    /// Runs a command while holding a lock (or a semaphore slot).
    Lock(lock::Args),
    /// Watches a view of the data and runs a handler on each change.
    Watch(watch::Args),
    /// Load generator: throughput and latency of a workload (also against etcd).
    Bench(crate::bench::Args),
    /// Provides debugging information for operators.
    Info(HttpArgs),
    /// Triggers the agent to reload its configuration files.
    Reload(HttpArgs),
    /// Gracefully leaves the cluster and shuts down the agent.
    Leave(HttpArgs),
    /// Streams the agent's log lines.
    Monitor(monitor::Args),
    /// Registers and deregisters services with the local agent.
    Services {
        #[command(subcommand)]
        cmd: services::ServicesCmd,
    },
    /// Controls node or service maintenance mode.
    Maint(maint::Args),
    /// Estimates the network round trip time between two nodes.
    Rtt(rtt::Args),
    /// Forces a failed member of the cluster to enter the "left" state.
    ForceLeave(force_leave::Args),
    /// Generates a new encryption key for gossip.
    Keygen,
    /// Manages gossip layer encryption keys (install, use, remove, list).
    Keyring(keyring::Args),
    /// Creates the agent CA and the certificates it signs.
    Tls {
        #[command(subcommand)]
        cmd: tls::TlsCmd,
    },
    /// Checks config files or directories for validity.
    Validate(validate::Args),
    /// Prints the version.
    Version,
    /// Starts federated datacenters of agents on loopback addresses, with
    /// the UI and a sample service; Ctrl-C stops them (a Meridian extension).
    Demo(demo::Args),
    /// The docker-compose demo's small web service.
    #[command(name = "demo-web", hide = true)]
    DemoWeb(demo_web::Args),
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let args = crate::config::flags::go_style_args(args);
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // Help and version are not errors; bad usage is exit 1 as in Consul.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.cmd {
        Cmd::Agent(flags) => agent::run(*flags),
        Cmd::Acl { cmd } => acl::run(cmd),
        Cmd::Join(a) => join::run(a),
        Cmd::Members(a) => members::run(a),
        Cmd::Kv { cmd } => kv::run(cmd),
        Cmd::Catalog { cmd } => catalog::run(cmd),
        Cmd::Operator { cmd } => operator::run(cmd),
        Cmd::Snapshot { cmd } => snapshot::run(cmd),
        Cmd::Event(a) => event::run(a),
        Cmd::Lock(a) => lock::run(a),
        Cmd::Watch(a) => watch::run(a),
        Cmd::Bench(a) => crate::bench::run(a),
        Cmd::Info(h) => info::run(h),
        Cmd::Reload(h) => reload::run(h),
        Cmd::Leave(h) => leave::run(h),
        Cmd::ForceLeave(a) => force_leave::run(a),
        Cmd::Rtt(a) => rtt::run(a),
        Cmd::Maint(a) => maint::run(a),
        Cmd::Monitor(a) => monitor::run(a),
        Cmd::Services { cmd } => services::run(cmd),
        Cmd::Keygen => keygen::run(),
        Cmd::Keyring(a) => keyring::run(a),
        Cmd::Tls { cmd } => tls::run(cmd),
        Cmd::Validate(a) => validate::run(a),
        Cmd::Version => version::run(),
        Cmd::Demo(a) => demo::run(a),
        Cmd::DemoWeb(a) => demo_web::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

/// Set by SIGINT/SIGTERM once this is first called: for commands that
/// run children (`lock`, `demo`) and must stop them, and give up what they
/// hold, rather than die and leave them behind.
pub(crate) fn termination_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    extern "C" fn on_signal(_: libc::c_int) {
        if let Some(f) = FLAG.get() {
            f.store(true, Ordering::SeqCst);
        }
    }
    FLAG.get_or_init(|| {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
        Arc::new(AtomicBool::new(false))
    })
    .clone()
}

/// Lays rows out in columns separated by two spaces (Consul's columnize).
pub(crate) fn columnize(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
