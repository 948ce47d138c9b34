//! WAN gossip and datacenter routing. The WAN pool (port 8302) holds the
//! servers of every datacenter, named `NODE.DC`; it is the same gossip
//! actor as the LAN pool (`crate::lan::LanGossip`: encryption, leave
//! notices, reconnect, RTT pings) with WAN timings and its own snapshot,
//! `<data-dir>/serf/remote.snapshot`.
//!
//! Routing is a view over its members: the live servers of a datacenter
//! (from their `dc` and `port` tags), nearest first by measured RTT, and
//! the datacenters known, nearest first.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use actix::Addr;

use crate::lan::{LanGossip, LanOptions, Member, MemberStatus};

/// The WAN pool's actor: the gossip actor with WAN settings.
pub type WanGossip = LanGossip;

/// WAN timings: slower probes and longer suspicion than the LAN (links
/// between datacenters are slower and flakier); a dead server is declared
/// failed in about 6 s.
pub fn wan_config(expected_size: u32) -> foca::Config {
    let mut c =
        foca::Config::new_wan(NonZeroU32::new(expected_size.max(1)).unwrap_or(NonZeroU32::MIN));
    c.probe_period = Duration::from_secs(1);
    c.probe_rtt = Duration::from_millis(600);
    c.suspect_to_down_after = Duration::from_secs(4);
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: Duration::from_millis(200),
        num_members: std::num::NonZeroUsize::MIN.saturating_add(2),
    });
    c
}

/// Starts a server's WAN gossip as `NODE.DC`: the pool options given
/// (its own keyring and `remote.keyring`, rejoin, reconnect) with WAN
/// timings, and its snapshot beside the LAN one as `remote.snapshot`. Returns the actor and the address
/// bound (the ephemeral port when `bind` has port 0).
pub async fn start(
    node_name: &str,
    datacenter: &str,
    bind: SocketAddr,
    advertise: IpAddr,
    tags: BTreeMap<String, String>,
    wan_opts: LanOptions,
) -> std::io::Result<(Addr<WanGossip>, SocketAddr)> {
    let opts = LanOptions {
        snapshot: wan_opts
            .snapshot
            .map(|p| p.with_file_name("remote.snapshot")),
        timings: Some(wan_config(16)),
        ..wan_opts
    };
    LanGossip::start(
        format!("{node_name}.{datacenter}"),
        bind,
        advertise,
        tags,
        opts,
    )
    .await
}

/// The live servers of `dc` as server RPC addresses, nearest first.
pub fn servers_of(members: &[Member], dc: &str) -> Vec<String> {
    let mut live: Vec<(&Member, String)> = members
        .iter()
        .filter(|m| {
            m.status == MemberStatus::Alive
                && m.tags.get("role").map(String::as_str) == Some("consul")
                && m.tags.get("dc").map(String::as_str) == Some(dc)
        })
        .filter_map(|m| {
            let port = m.tags.get("port")?;
            Some((m, format!("{}:{port}", m.addr.ip())))
        })
        .collect();
    live.sort_by_key(|(m, _)| m.rtt.unwrap_or(Duration::MAX));
    live.into_iter().map(|(_, a)| a).collect()
}

/// Every datacenter with a live server, this one first, then by the
/// median RTT to its servers (unmeasured last), then by name.
pub fn datacenters(members: &[Member], own: &str) -> Vec<String> {
    let mut rtts: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for m in members.iter().filter(|m| m.status == MemberStatus::Alive) {
        if let Some(dc) = m.tags.get("dc") {
            let e = rtts.entry(dc.clone()).or_default();
            if let Some(r) = m.rtt {
                e.push(r);
            }
        }
    }
    rtts.entry(own.to_string()).or_default();
    let mut dcs: Vec<(Duration, String)> = rtts
        .into_iter()
        .map(|(dc, mut r)| {
            r.sort();
            let median = if dc == own {
                Duration::ZERO
            } else {
                r.get(r.len() / 2).copied().unwrap_or(Duration::MAX)
            };
            (median, dc)
        })
        .collect();
    dcs.sort();
    dcs.into_iter().map(|(_, dc)| dc).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(
        name: &str,
        dc: &str,
        ip: [u8; 4],
        rtt_ms: Option<u64>,
        status: MemberStatus,
    ) -> Member {
        Member {
            name: format!("{name}.{dc}"),
            addr: SocketAddr::from((ip, 8302)),
            tags: [("role", "consul"), ("dc", dc), ("port", "8300")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            status,
            rtt: rtt_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn routes_to_live_servers_nearest_first_and_orders_datacenters() {
        let m = vec![
            server("a", "dc1", [10, 0, 0, 1], None, MemberStatus::Alive),
            server("b", "dc2", [10, 0, 1, 1], Some(30), MemberStatus::Alive),
            server("c", "dc2", [10, 0, 1, 2], Some(10), MemberStatus::Alive),
            server("d", "dc2", [10, 0, 1, 3], Some(1), MemberStatus::Failed),
            server("e", "dc3", [10, 0, 2, 1], Some(5), MemberStatus::Alive),
            server("f", "dc4", [10, 0, 3, 1], None, MemberStatus::Alive),
        ];
        assert_eq!(
            servers_of(&m, "dc2"),
            vec!["10.0.1.2:8300", "10.0.1.1:8300"]
        );
        assert!(servers_of(&m, "dc9").is_empty());
        assert_eq!(datacenters(&m, "dc1"), vec!["dc1", "dc3", "dc2", "dc4"]);
    }
}
