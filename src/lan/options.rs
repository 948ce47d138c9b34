//! How a pool is tuned: Consul's serf timeouts beyond SWIM ([`LanOptions`])
//! and the SWIM timings themselves ([`lan_config`]). The WAN pool is the
//! same actor with other values, so these are options, not constants.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::keyring;

/// How the pool behaves beyond SWIM's timings.
#[derive(Clone)]
pub struct LanOptions {
    pub keyring: Option<keyring::Keyring>,
    /// Where the ring is saved when a key operation changes it
    /// (`<data-dir>/serf/local.keyring`; `None`: nowhere).
    pub keyring_file: Option<PathBuf>,
    /// Where the members known are kept for a restart (`None`: nowhere).
    pub snapshot: Option<PathBuf>,
    pub rejoin_after_leave: bool,
    pub reconnect_timeout: Duration,
    pub tombstone_timeout: Duration,
    pub reconnect_interval: Duration,
    /// SWIM timings; `None` = the LAN ones.
    pub timings: Option<foca::Config>,
}

impl Default for LanOptions {
    /// Consul's serf defaults.
    fn default() -> Self {
        LanOptions {
            keyring: None,
            keyring_file: None,
            snapshot: None,
            rejoin_after_leave: false,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            reconnect_interval: Duration::from_secs(30),
            timings: None,
        }
    }
}

/// LAN timings: a crashed member is declared failed in about 3 s.
pub fn lan_config(expected_size: u32) -> foca::Config {
    let mut c =
        foca::Config::new_lan(NonZeroU32::new(expected_size.max(1)).unwrap_or(NonZeroU32::MIN));
    c.probe_period = Duration::from_millis(500);
    c.probe_rtt = Duration::from_millis(200);
    c.suspect_to_down_after = Duration::from_millis(1500);
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: Duration::from_millis(100),
        num_members: std::num::NonZeroUsize::MIN.saturating_add(2),
    });
    c
}

/// The timings for a pool of `members` (this member included), from the
/// ones chosen for a small pool: memberlist's scaling, which Consul
/// relies on as a datacenter grows. An update is retransmitted
/// `4 · ⌈log10(n + 1)⌉` times (fewer and news dies out before it reaches
/// everyone: a 100-member pool needs 12, the small-pool value is 6), and
/// a suspect has `max(1, log10 n)` times the small-pool suspicion window
/// to refute (a bigger pool takes longer to carry the refutation back,
/// and a busier one answers later). Probe and gossip rates do not
/// change, as in memberlist. Below ten members the base is returned as
/// it is (at ten, memberlist's formula already asks for 8 sends).
pub fn scaled(base: &foca::Config, members: usize) -> foca::Config {
    let n = members.max(1) as f64;
    let mut c = base.clone();
    let wanted_tx = (4.0 * (n + 1.0).log10().ceil()).min(255.0) as u8;
    if let Some(tx) = std::num::NonZeroU8::new(wanted_tx) {
        c.max_transmissions = c.max_transmissions.max(tx);
    }
    let factor = n.log10().max(1.0);
    c.suspect_to_down_after = base.suspect_to_down_after.mul_f64(factor);
    c
}

#[cfg(test)]
mod scaled_tests {
    use super::*;

    #[test]
    fn small_pools_keep_their_timings_and_big_ones_stretch_like_memberlist() {
        let base = lan_config(32);
        for n in [1, 3, 5, 9] {
            let c = scaled(&base, n);
            assert_eq!(c.max_transmissions, base.max_transmissions, "n={n}");
            assert_eq!(c.suspect_to_down_after, base.suspect_to_down_after, "n={n}");
        }
        assert_eq!(scaled(&base, 10).max_transmissions.get(), 8);
        let c = scaled(&base, 100);
        assert_eq!(c.max_transmissions.get(), 12);
        assert_eq!(c.suspect_to_down_after, Duration::from_millis(3000));
        let c = scaled(&base, 1000);
        assert_eq!(c.max_transmissions.get(), 16);
        assert_eq!(c.suspect_to_down_after.as_millis(), 4500);
        // What set_config accepts: rates and probe timings untouched.
        assert_eq!(c.probe_period, base.probe_period);
        assert_eq!(c.probe_rtt, base.probe_rtt);
        assert_eq!(
            c.periodic_gossip.map(|g| g.frequency),
            base.periodic_gossip.map(|g| g.frequency)
        );
    }
}
