//! WAN gossip and datacenter routing. The WAN pool (port 8302) holds the
//! servers of every datacenter, named `NODE.DC`; it is the same gossip
//! actor as the LAN pool (`crate::lan::LanGossip`: encryption, leave
//! notices, reconnect, RTT pings) with WAN timings and its own snapshot,
//! `<data-dir>/serf/remote.snapshot`.
//!
//! Routing is a view over its members and their network coordinates: the
//! live servers of a datacenter (from their `dc` and `port` tags),
//! nearest first, and the datacenters known, nearest first; nearness is
//! the coordinates' estimate where known, else the measured round trip.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use actix::Addr;

use crate::lan::{LanGossip, LanOptions, Member, MemberStatus, PoolCoordinates};
use crate::structs::coordinate::{CoordinateEntry, DatacenterMap};

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

/// How far a WAN member is from this server: the estimate from the two
/// network coordinates when its coordinate is known (Consul routes by
/// these), else the round trip measured, else unknown.
fn distance(m: &Member, coords: &PoolCoordinates) -> Option<Duration> {
    match coords.peers.get(&m.name) {
        Some(c) if c.is_compatible_with(&coords.own) => Some(coords.own.distance_to(c)),
        _ => m.rtt,
    }
}

fn live_servers<'a>(
    members: &'a [Member],
    dc: Option<&'a str>,
) -> impl Iterator<Item = &'a Member> {
    members.iter().filter(move |m| {
        m.status == MemberStatus::Alive
            && m.tags.get("role").map(String::as_str) == Some("consul")
            && (dc.is_none() || m.tags.get("dc").map(String::as_str) == dc)
    })
}

/// The live servers of `dc` as server RPC addresses, nearest first.
pub fn servers_of(members: &[Member], coords: &PoolCoordinates, dc: &str) -> Vec<String> {
    let mut live: Vec<(Duration, String)> = live_servers(members, Some(dc))
        .filter_map(|m| {
            let port = m.tags.get("port")?;
            Some((
                distance(m, coords).unwrap_or(Duration::MAX),
                format!("{}:{port}", m.addr.ip()),
            ))
        })
        .collect();
    // Stable: servers at one distance keep the pool's order.
    live.sort_by_key(|(d, _)| *d);
    live.into_iter().map(|(_, a)| a).collect()
}

/// Every server of every datacenter that has not left the pool (failed
/// ones too), as server RPC addresses by datacenter: what the circuit
/// breakers probe, since a failed server may be back before gossip says so.
pub fn servers_by_dc(members: &[Member]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in members.iter().filter(|m| {
        m.status != MemberStatus::Left && m.tags.get("role").map(String::as_str) == Some("consul")
    }) {
        if let (Some(dc), Some(port)) = (m.tags.get("dc"), m.tags.get("port")) {
            out.entry(dc.clone())
                .or_default()
                .push(format!("{}:{port}", m.addr.ip()));
        }
    }
    out
}

/// Every datacenter with a server that has not left, this one first, then by the
/// median distance to its servers (Consul's `GetDatacentersByDistance`:
/// coordinates where known, else measured round trips; unmeasured last),
/// then by name. This is the order `/v1/catalog/datacenters` answers in
/// and the order failover to other datacenters should try them in.
pub fn datacenters_by_distance(
    members: &[Member],
    coords: &PoolCoordinates,
    own: &str,
) -> Vec<String> {
    let mut dists: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    // A datacenter whose servers all failed stays listed (last), as in
    // Consul, whose router keeps failed servers until they are reaped: a
    // request for it is `No path to datacenter`, not an unknown name.
    for m in members.iter().filter(|m| m.status != MemberStatus::Left) {
        if let Some(dc) = m.tags.get("dc") {
            let e = dists.entry(dc.clone()).or_default();
            if m.status != MemberStatus::Alive {
                continue;
            }
            if let Some(d) = distance(m, coords) {
                e.push(d);
            }
        }
    }
    dists.entry(own.to_string()).or_default();
    let mut dcs: Vec<(Duration, String)> = dists
        .into_iter()
        .map(|(dc, mut d)| {
            d.sort();
            let median = if dc == own {
                Duration::ZERO
            } else {
                d.get(d.len() / 2).copied().unwrap_or(Duration::MAX)
            };
            (median, dc)
        })
        .collect();
    dcs.sort();
    dcs.into_iter().map(|(_, dc)| dc).collect()
}

/// `/v1/coordinate/datacenters`: each datacenter's live servers with the
/// WAN coordinates known for them (this server's own included), by
/// datacenter name. Servers whose coordinate is not known yet are left
/// out, as Consul leaves them.
pub fn coordinate_maps(
    members: &[Member],
    coords: &PoolCoordinates,
    me: &str,
) -> Vec<DatacenterMap> {
    let mut maps: BTreeMap<String, Vec<CoordinateEntry>> = BTreeMap::new();
    for m in live_servers(members, None) {
        let Some(dc) = m.tags.get("dc") else { continue };
        let entries = maps.entry(dc.clone()).or_default();
        let coord = if m.name == me {
            Some(coords.own.clone())
        } else {
            coords.peers.get(&m.name).cloned()
        };
        if let Some(coord) = coord {
            entries.push(CoordinateEntry {
                node: m.name.clone(),
                segment: String::new(),
                coord,
            });
        }
    }
    maps.into_iter()
        .map(|(datacenter, coordinates)| DatacenterMap {
            datacenter,
            area_id: "wan".into(),
            coordinates,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::coordinate::Coordinate;

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
        let none = PoolCoordinates::default();
        assert_eq!(
            servers_of(&m, &none, "dc2"),
            vec!["10.0.1.2:8300", "10.0.1.1:8300"]
        );
        assert!(servers_of(&m, &none, "dc9").is_empty());
        assert_eq!(
            datacenters_by_distance(&m, &none, "dc1"),
            vec!["dc1", "dc3", "dc2", "dc4"]
        );
        // dc5's only server failed: still listed, last; dc6's left: gone.
        let mut m = m;
        m.push(server(
            "g",
            "dc5",
            [10, 0, 4, 1],
            Some(1),
            MemberStatus::Failed,
        ));
        m.push(server(
            "h",
            "dc6",
            [10, 0, 5, 1],
            Some(1),
            MemberStatus::Left,
        ));
        assert_eq!(
            datacenters_by_distance(&m, &none, "dc1"),
            vec!["dc1", "dc3", "dc2", "dc4", "dc5"]
        );
        let by_dc = servers_by_dc(&m);
        assert_eq!(by_dc["dc2"].len(), 3, "failed servers are probed too");
        assert_eq!(by_dc["dc5"], vec!["10.0.4.1:8300"]);
        assert!(!by_dc.contains_key("dc6"));
    }

    #[test]
    fn coordinates_outrank_measured_round_trips() {
        let m = vec![
            server("a", "dc1", [10, 0, 0, 1], None, MemberStatus::Alive),
            server("b", "dc2", [10, 0, 1, 1], Some(5), MemberStatus::Alive),
            server("c", "dc3", [10, 0, 2, 1], Some(50), MemberStatus::Alive),
        ];
        let at = |x: f64| {
            let mut c = Coordinate::default();
            c.vec[0] = x;
            c
        };
        // The coordinates say dc3 is 10 ms away and dc2 80 ms.
        let coords = PoolCoordinates {
            own: at(0.0),
            measured: true,
            peers: [("b.dc2", at(0.080)), ("c.dc3", at(0.010))]
                .into_iter()
                .map(|(n, c)| (n.to_string(), c))
                .collect(),
        };
        assert_eq!(
            datacenters_by_distance(&m, &coords, "dc1"),
            vec!["dc1", "dc3", "dc2"]
        );
        let maps = coordinate_maps(&m, &coords, "a.dc1");
        let names: Vec<_> = maps.iter().map(|d| d.datacenter.as_str()).collect();
        assert_eq!(names, vec!["dc1", "dc2", "dc3"]);
        assert!(maps
            .iter()
            .all(|d| d.area_id == "wan" && d.coordinates.len() == 1));
        assert_eq!(maps[0].coordinates[0].coord, at(0.0));
        assert_eq!(maps[2].coordinates[0].node, "c.dc3");
    }
}
