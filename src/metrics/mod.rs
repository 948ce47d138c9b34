//! Telemetry: the process's metrics under Consul's names, and their two
//! renderings for `/v1/agent/metrics` (Consul's JSON summary of the last
//! 10-second interval, and the Prometheus text exposition).
//!
//! One registry per process, as go-metrics' global sink is in Consul:
//! code anywhere records through a handle from [`global`] without being
//! handed one. Agents started side by side in one process (the test
//! harness) share it; each real agent is its own process. Gauges that
//! describe state something else owns (the catalog, the gossip pool) are
//! refreshed by collectors ([`Registry::collect_with`]) just before they
//! are shown, so the owners do no extra work per change.
//!
//! This module names nothing else of the crate: the config hands it
//! [`Settings`] at start.
//!
//! - `registry.rs`: the metrics, their interval roll-ups and handles;
//! - `render.rs`: the JSON summary and the Prometheus text;
//! - `process.rs`: the process's own figures from `/proc/self`.

mod process;
mod registry;
mod render;

use std::sync::{OnceLock, RwLock};
use std::time::Duration;

pub use registry::{Counter, Gauge, Kind, Registry, Summary};
pub use render::{json, prometheus, PROMETHEUS_CONTENT_TYPE};

/// `telemetry { ... }` as the registry needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `metrics_prefix` (Consul's default `consul`).
    pub prefix: String,
    /// Put before every gauge's name (go-metrics' `EnableHostname`);
    /// None with `disable_hostname`.
    pub hostname: Option<String>,
    /// `prometheus_retention_time`: zero turns the Prometheus format off;
    /// a metric not updated for this long leaves the exposition.
    pub prometheus_retention: Duration,
    /// Also record HTTP timings under the pre-1.9 names
    /// (`http.GET.v1.kv._`); off with `disable_compat_1.9`.
    pub compat_1_9: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: "consul".into(),
            hostname: None,
            prometheus_retention: Duration::ZERO,
            compat_1_9: true,
        }
    }
}

/// The process's registry, with Consul's definitions declared.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::new();
        for d in DEFINITIONS {
            if d.declared {
                r.declare(d.name, d.kind);
            }
        }
        r.collect_with(Box::new(|| {
            let p = process::read();
            let reg = global();
            for (name, v) in [
                ("runtime.resident_memory_bytes", p.resident_bytes),
                ("runtime.threads", p.threads),
                ("runtime.open_fds", p.open_fds),
            ] {
                if let Some(v) = v {
                    reg.gauge(name).set(v);
                }
            }
            true
        }));
        r
    })
}

/// A handle to a metric without labels, looked up once for the process's
/// life: hot paths keep one in a `static` and record with no map lookup.
pub struct Static<T: 'static> {
    name: &'static str,
    make: fn(&Registry, &str) -> T,
    cell: OnceLock<T>,
}

impl<T> Static<T> {
    pub fn get(&self) -> &T {
        self.cell.get_or_init(|| (self.make)(global(), self.name))
    }
}

pub const fn counter(name: &'static str) -> Static<Counter> {
    Static {
        name,
        make: Registry::counter,
        cell: OnceLock::new(),
    }
}

pub const fn gauge(name: &'static str) -> Static<Gauge> {
    Static {
        name,
        make: Registry::gauge,
        cell: OnceLock::new(),
    }
}

pub const fn summary(name: &'static str) -> Static<Summary> {
    Static {
        name,
        make: Registry::summary,
        cell: OnceLock::new(),
    }
}

fn settings_lock() -> &'static RwLock<Settings> {
    static SETTINGS: OnceLock<RwLock<Settings>> = OnceLock::new();
    SETTINGS.get_or_init(|| RwLock::new(Settings::default()))
}

/// Applies the agent's `telemetry` settings, before its HTTP routes are
/// registered (they make their timers by them).
pub fn configure(s: Settings) {
    *settings_lock().write().unwrap_or_else(|p| p.into_inner()) = s;
}

/// The settings in force.
pub fn settings() -> Settings {
    settings_lock()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// A metric Consul documents (or Meridian adds), with its help text for
/// the exposition.
pub struct Definition {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Listed from the start (no labels); otherwise it appears once
    /// recorded, one series per label set.
    pub declared: bool,
}

const fn def(name: &'static str, kind: Kind, help: &'static str) -> Definition {
    Definition {
        name,
        kind,
        help,
        declared: true,
    }
}

const fn labelled(name: &'static str, kind: Kind, help: &'static str) -> Definition {
    Definition {
        name,
        kind,
        help,
        declared: false,
    }
}

use Kind::{Counter as C, Gauge as G, Summary as S};

/// Every metric Meridian records. Names are Consul's where Consul has one
/// (its telemetry reference); the few of Meridian's own say so.
pub const DEFINITIONS: &[Definition] = &[
    // Raft.
    def("raft.apply", C, "Raft transactions applied by the leader."),
    def(
        "raft.commitTime",
        S,
        "Time to commit a new entry to the Raft log on the leader (ms).",
    ),
    def(
        "raft.leader.lastContact",
        S,
        "Time since the leader last heard from a quorum of followers, when checked (ms).",
    ),
    def(
        "raft.state.leader",
        C,
        "Times this server became the Raft leader.",
    ),
    def(
        "raft.state.candidate",
        C,
        "Times this server started an election.",
    ),
    def(
        "raft.state.follower",
        C,
        "Times this server became a follower.",
    ),
    def(
        "raft.applied_index",
        G,
        "The Raft index last applied to the state machine.",
    ),
    def("raft.last_index", G, "The last index of the Raft log."),
    def(
        "raft.snapshot.create",
        S,
        "Time to build a snapshot of the state machine (ms).",
    ),
    def(
        "raft.fsm.restore",
        S,
        "Time to restore the state machine from a snapshot (ms).",
    ),
    def(
        "raft.snapshot.size",
        G,
        "Size in bytes of the last snapshot built or installed (Meridian's own).",
    ),
    def(
        "raft.log.entries",
        G,
        "Entries in the Raft log not yet compacted into a snapshot (Meridian's own).",
    ),
    def(
        "raft.rpc.appendEntries",
        S,
        "Time to serve an AppendEntries RPC (ms).",
    ),
    def(
        "raft.rpc.requestVote",
        S,
        "Time to serve a RequestVote RPC (ms).",
    ),
    def(
        "raft.rpc.installSnapshot",
        S,
        "Time to serve an InstallSnapshot RPC (ms).",
    ),
    // Server RPC.
    def(
        "rpc.accept_conn",
        C,
        "RPC connections accepted by this server.",
    ),
    def(
        "rpc.request",
        C,
        "RPC requests received by this server (not Raft's).",
    ),
    def("rpc.query", C, "Read RPC requests received by this server."),
    def(
        "rpc.queries_blocking",
        G,
        "Blocking queries in flight on this server.",
    ),
    labelled(
        "rpc.server.call",
        S,
        "Time to serve an RPC request, by method (ms).",
    ),
    // Writes through Raft, measured on the leader until committed and applied.
    def(
        "kvs.apply",
        S,
        "Time to complete an update to the KV store (ms).",
    ),
    def("txn.apply", S, "Time to apply a transaction (ms)."),
    def(
        "catalog.register",
        S,
        "Time to complete a catalog register operation (ms).",
    ),
    def(
        "catalog.deregister",
        S,
        "Time to complete a catalog deregister operation (ms).",
    ),
    def("session.apply", S, "Time to apply a session update (ms)."),
    // The catalog (servers).
    def("state.nodes", G, "Nodes registered in the catalog."),
    def(
        "state.services",
        G,
        "Distinct service names registered in the catalog.",
    ),
    def(
        "state.service_instances",
        G,
        "Service instances registered in the catalog.",
    ),
    def("state.kv_entries", G, "Entries in the KV store."),
    labelled(
        "state.checks",
        G,
        "Health checks in the catalog, by status (Meridian's own).",
    ),
    def("session_ttl.active", G, "Sessions in the state store."),
    // Gossip.
    def("members.clients", G, "Client agents in the LAN pool."),
    def("members.servers", G, "Server agents in the LAN pool."),
    labelled(
        "memberlist.node.instances",
        G,
        "Members of a gossip pool, by pool and state.",
    ),
    def("serf.member.join", C, "Members that joined the LAN pool."),
    def("serf.member.left", C, "Members that left the LAN pool."),
    def(
        "serf.member.failed",
        C,
        "Members of the LAN pool marked failed.",
    ),
    def(
        "serf.member.update",
        C,
        "Members of the LAN pool that updated their tags.",
    ),
    def(
        "memberlist.probeNode",
        S,
        "Round-trip time of a gossip probe of another member (ms).",
    ),
    // DNS.
    labelled(
        "dns.domain_query",
        S,
        "Time to answer a DNS query in the agent's domain (ms).",
    ),
    labelled(
        "dns.ptr_query",
        S,
        "Time to answer a reverse DNS query (ms).",
    ),
    def(
        "dns.stale_queries",
        C,
        "DNS queries answered from possibly stale data.",
    ),
    // Meridian's declared KV replication (leader only).
    def(
        "kv.replication.lag_seconds",
        G,
        "How far the KV replication copy may be behind its source: 0 while in sync, else seconds since the oldest failing prefix last synced.",
    ),
    // HTTP.
    labelled(
        "api.http",
        S,
        "Time to serve an HTTP request, by method and path (ms).",
    ),
    // The process (Meridian's own; Consul reports Go's runtime here).
    def(
        "runtime.resident_memory_bytes",
        G,
        "Resident set size of the agent process in bytes.",
    ),
    def("runtime.threads", G, "Threads of the agent process."),
    def(
        "runtime.open_fds",
        G,
        "File descriptors the agent process holds open.",
    ),
];

/// The help text of a dotted name, if defined.
pub fn help(name: &str) -> Option<&'static str> {
    DEFINITIONS
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.help)
        .or_else(|| {
            name.starts_with("http.").then_some(
                "Time to serve an HTTP request, by method and path (ms; Consul's pre-1.9 name).",
            )
        })
}

#[cfg(test)]
mod tests;
