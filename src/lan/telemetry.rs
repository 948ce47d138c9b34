//! What a gossip pool reports to telemetry: members by state (both
//! pools), and the LAN pool's joins, leaves, failures and updates, and
//! its servers and clients, as Consul's serf and memberlist metrics.

use super::{LanGossip, MemberEvent, MemberStatus};
use crate::metrics::{counter, gauge, Counter, Gauge, Static};

static JOIN: Static<Counter> = counter("serf.member.join");
static LEFT: Static<Counter> = counter("serf.member.left");
static FAILED: Static<Counter> = counter("serf.member.failed");
static UPDATE: Static<Counter> = counter("serf.member.update");
static SERVERS: Static<Gauge> = gauge("members.servers");
static CLIENTS: Static<Gauge> = gauge("members.clients");

impl LanGossip {
    /// The pool's name in labels: the WAN pool is the one started with
    /// timings of its own (`wan::start`); the LAN pool takes the defaults.
    fn network(&self) -> &'static str {
        if self.opts.timings.is_some() {
            "wan"
        } else {
            "lan"
        }
    }

    /// Counts `event` and refreshes the member gauges.
    pub(super) fn record(&self, event: &MemberEvent) {
        if self.network() == "lan" {
            match event {
                MemberEvent::Join(_) => JOIN.get().inc(),
                MemberEvent::Leave(_) => LEFT.get().inc(),
                MemberEvent::Fail(_) => FAILED.get().inc(),
                MemberEvent::Update(_) => UPDATE.get().inc(),
                MemberEvent::Reap(_) => {}
            }
        }
        self.member_gauges();
    }

    /// Members by state (and the LAN's servers and clients), also each
    /// second: a pool with no changes still reports itself.
    pub(super) fn member_gauges(&self) {
        let network = self.network();
        if network == "lan" {
            let (servers, clients) = self
                .members
                .values()
                .filter(|m| m.status == MemberStatus::Alive)
                .fold((0, 0), |(s, c), m| {
                    if m.tags.get("role").map(String::as_str) == Some("consul") {
                        (s + 1, c)
                    } else {
                        (s, c + 1)
                    }
                });
            SERVERS.get().set(servers as f64);
            CLIENTS.get().set(clients as f64);
        }
        let reg = crate::metrics::global();
        for (state, status) in [
            ("alive", MemberStatus::Alive),
            ("leaving", MemberStatus::Leaving),
            ("left", MemberStatus::Left),
            ("failed", MemberStatus::Failed),
        ] {
            let n = self.members.values().filter(|m| m.status == status).count();
            reg.gauge_with(
                "memberlist.node.instances",
                vec![
                    ("network".into(), network.into()),
                    ("node_state".into(), state.into()),
                ],
            )
            .set(n as f64);
        }
    }
}
