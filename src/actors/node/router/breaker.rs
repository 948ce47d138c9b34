//! Per-datacenter circuit breakers (Meridian's own). Consul notices a
//! datacenter that stopped answering only through WAN gossip (tens of
//! seconds) and makes each request wait out `rpc_hold_timeout` meanwhile.
//! Here each server probes every other datacenter's servers twice a second
//! with a short call. Two probes in a row without an answer open that
//! datacenter's breaker: new requests for it are `No path to datacenter`
//! at once, and requests already waiting on it are answered so too. The
//! first answered probe closes it, and the servers that answered are a
//! route even before WAN gossip has taken them back.
//!
//! The breakers also keep each datacenter's last probe round trip, which
//! `/v1/agent/self` shows (the federation view reads it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Router;
use crate::structs::rpc;

/// How often each other datacenter is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long one probe waits for an answer: well above a WAN round trip,
/// well below the 2 s in which a dead datacenter must be reported.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// Probes in a row without an answer that open a breaker: one lost probe
/// (a server busy for 400 ms) is not a dead datacenter.
const MISSES_TO_OPEN: u32 = 2;

#[derive(Default)]
pub(super) struct Breakers {
    dcs: Mutex<HashMap<String, Dc>>,
}

struct Dc {
    /// `true` while open.
    open: watch::Sender<bool>,
    misses: u32,
    /// The servers that answered the last probe, nearest first.
    answered: Vec<String>,
    rtt: Option<Duration>,
    since: Instant,
}

impl Dc {
    fn new() -> Dc {
        Dc {
            open: watch::Sender::new(false),
            misses: 0,
            answered: Vec::new(),
            rtt: None,
            since: Instant::now(),
        }
    }
}

/// One datacenter as this server's probes see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Reach {
    pub datacenter: String,
    pub reachable: bool,
    /// The fastest answer to the last probe, in milliseconds.
    #[serde(rename = "RTTMs")]
    pub rtt_ms: Option<f64>,
    /// How long it has been reachable (or not), in milliseconds.
    pub for_ms: u64,
}

impl Breakers {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Dc>) -> T) -> T {
        f(&mut self.dcs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `dc`'s breaker (`true` while open); `None` for a datacenter not
    /// probed yet (its requests find out the slow way). Only the probes
    /// add datacenters, so names in requests cannot grow the map.
    pub(super) fn watch(&self, dc: &str) -> Option<watch::Receiver<bool>> {
        self.with(|m| m.get(dc).map(|d| d.open.subscribe()))
    }

    /// The servers of `dc` that answered the last probe while its breaker
    /// is closed: a route when WAN gossip still counts them failed.
    pub(super) fn answered(&self, dc: &str) -> Vec<String> {
        self.with(|m| match m.get(dc) {
            Some(d) if !*d.open.borrow() => d.answered.clone(),
            _ => Vec::new(),
        })
    }

    /// Records one probe of `dc`: the servers that answered, fastest first,
    /// with the fastest round trip. Returns the breaker's new state when
    /// this probe changed it.
    fn record(&self, dc: &str, answered: Vec<(Duration, String)>) -> Option<bool> {
        self.with(|m| {
            let d = m.entry(dc.to_string()).or_insert_with(Dc::new);
            let was_open = *d.open.borrow();
            if answered.is_empty() {
                d.misses += 1;
                d.answered.clear();
                d.rtt = None;
            } else {
                d.misses = 0;
                d.rtt = answered.first().map(|(t, _)| *t);
                d.answered = answered.into_iter().map(|(_, a)| a).collect();
            }
            let open = d.misses >= MISSES_TO_OPEN;
            if open == was_open {
                return None;
            }
            d.since = Instant::now();
            d.open.send_replace(open);
            Some(open)
        })
    }

    /// Forgets datacenters that are no longer in the WAN pool.
    fn keep(&self, known: &BTreeMap<String, Vec<String>>) {
        self.with(|m| m.retain(|dc, _| known.contains_key(dc)));
    }

    pub(super) fn reach(&self) -> Vec<Reach> {
        let now = Instant::now();
        let mut out: Vec<Reach> = self.with(|m| {
            m.iter()
                .map(|(dc, d)| Reach {
                    datacenter: dc.clone(),
                    reachable: !*d.open.borrow(),
                    rtt_ms: d.rtt.map(|t| t.as_secs_f64() * 1e3),
                    for_ms: now.duration_since(d.since).as_millis() as u64,
                })
                .collect()
        });
        out.sort_by(|a, b| a.datacenter.cmp(&b.datacenter));
        out
    }
}

impl Router {
    /// Probes every other datacenter's servers for as long as the agent
    /// runs (servers with a WAN pool only; a client's requests for other
    /// datacenters go through its servers, which hold the breakers).
    pub fn start_probes(&self) {
        if self.0.local.is_none() || self.0.wan.is_none() {
            return;
        }
        let me = self.clone();
        actix::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.probe_all().await;
            }
        });
    }

    /// This server's view of the other datacenters, by name.
    pub fn datacenter_reach(&self) -> Vec<Reach> {
        self.0.breakers.reach()
    }

    async fn probe_all(&self) {
        let Ok((members, _)) = self.wan_view().await else {
            return;
        };
        let mut dcs = crate::wan::servers_by_dc(&members);
        dcs.remove(&self.0.dc.to_ascii_lowercase());
        self.0.breakers.keep(&dcs);
        let probes = dcs.into_iter().map(|(dc, servers)| async move {
            let answered = self.probe(&dc, servers).await;
            (dc, answered)
        });
        for (dc, answered) in futures::future::join_all(probes).await {
            match self.0.breakers.record(&dc, answered) {
                Some(true) => tracing::warn!(
                    datacenter = %dc,
                    "no server of the datacenter answers; its requests fail at once until one does"
                ),
                Some(false) => tracing::info!(datacenter = %dc, "the datacenter answers again"),
                None => {}
            }
        }
    }

    /// One probe of `dc`'s servers, all at once: those that answered,
    /// fastest first, with their round trips.
    async fn probe(&self, dc: &str, servers: Vec<String>) -> Vec<(Duration, String)> {
        let calls = servers.into_iter().map(|addr| async move {
            let t = Instant::now();
            let r = self
                .0
                .pool
                .call_in::<rpc::Datacenters>(dc, &addr, &(), PROBE_TIMEOUT)
                .await;
            r.ok().map(|_| (t.elapsed(), addr))
        });
        let mut answered: Vec<(Duration, String)> = futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect();
        answered.sort();
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(addr: &str) -> Vec<(Duration, String)> {
        vec![(Duration::from_millis(3), addr.to_string())]
    }

    #[tokio::test]
    async fn two_missed_probes_open_and_one_answer_closes() {
        let b = Breakers::default();
        assert!(b.watch("dc2").is_none(), "not probed yet");
        assert_eq!(b.record("dc2", ok("a:1")), None);
        let mut rx = b.watch("dc2").unwrap();
        assert!(!*rx.borrow());
        assert_eq!(b.answered("dc2"), vec!["a:1"]);
        assert_eq!(b.record("dc2", vec![]), None, "one miss is not enough");
        assert_eq!(b.record("dc2", vec![]), Some(true));
        // Whoever waits on the datacenter hears of it.
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update());
        assert!(b.answered("dc2").is_empty());
        assert_eq!(b.record("dc2", vec![]), None);
        assert_eq!(b.record("dc2", ok("b:2")), Some(false));
        assert!(!*rx.borrow_and_update());
        assert_eq!(b.answered("dc2"), vec!["b:2"]);
        let r = b.reach();
        assert_eq!(r.len(), 1);
        assert!(r[0].reachable);
        assert_eq!(r[0].rtt_ms, Some(3.0));
    }

    #[tokio::test]
    async fn datacenters_gone_from_the_pool_are_forgotten() {
        let b = Breakers::default();
        b.record("dc2", vec![]);
        b.record("dc3", vec![]);
        let known = BTreeMap::from([("dc3".to_string(), vec![])]);
        b.keep(&known);
        let names: Vec<String> = b.reach().into_iter().map(|r| r.datacenter).collect();
        assert_eq!(names, vec!["dc3"]);
    }
}
