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
