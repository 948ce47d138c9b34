//! Raft's timers and the leader lease derived from them, with the
//! invariant that makes default-mode reads safe: a leader's lease ends
//! before any other server can have won an election.
//!
//! Why the relation holds: a follower that heard from the leader refuses
//! votes for a while after (openraft 0.9: `election_timeout_max`, and
//! Pre-Votes for as long, see [`super::prevote`]; we count only
//! `election_timeout_min`, the shorter one, as a margin). The leader
//! measures its lease from the *send* time of the last heartbeat a quorum
//! acknowledged, which is no later than when any of that quorum heard it,
//! and every new leader needs a vote from one of that quorum. The leader
//! reads the age of that acknowledgement from openraft's metrics, which
//! are refreshed at least once per tick (`heartbeat_interval * 3 / 2`), so
//! the age it sees can be one tick young; and the two machines' clocks may
//! run at different rates. Hence:
//! `lease + tick + drift <= election_timeout_min`.

/// The bound on clock-rate difference between two servers over one
/// election window, as a fraction of `election_timeout_min`: 10%, far
/// above NTP-disciplined drift (parts per million) and above what a
/// loaded VM's timer slack has shown here.
const DRIFT_PERCENT: u64 = 10;

/// A leader must be able to keep its lease on a healthy cluster: at least
/// this many ticks (heartbeats acknowledged) fit in it, so that one late
/// acknowledgement does not make it answer `No cluster leader`.
const MIN_TICKS_PER_LEASE: u64 = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimingError {
    #[error(
        "raft timing: leader lease {lease} ms + metrics tick {tick} ms + clock drift margin {drift} ms \
         exceeds election_timeout_min {emin} ms: a deposed leader could serve stale reads"
    )]
    LeaseOutlivesVoteRefusal {
        lease: u64,
        tick: u64,
        drift: u64,
        emin: u64,
    },
    #[error("raft timing: leader lease {lease} ms holds fewer than {MIN_TICKS_PER_LEASE} ticks of {tick} ms")]
    LeaseTooShort { lease: u64, tick: u64 },
    #[error("raft timing: need heartbeat {hb} ms < election_timeout_min {emin} ms < election_timeout_max {emax} ms")]
    Order { hb: u64, emin: u64, emax: u64 },
}

/// Raft's timers (milliseconds) and the leader lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat: u64,
    pub election_min: u64,
    pub election_max: u64,
    pub lease: u64,
}

impl Timing {
    /// The timers for a dev agent (faster, one machine) or a real one,
    /// with the longest lease the invariant allows. A follower stands
    /// `election_timeout_max` plus up to `max - min` after it last heard
    /// the leader ([`super::prevote`]): failover stays under 1 s.
    pub fn for_mode(dev: bool) -> Result<Self, TimingError> {
        let (heartbeat, election_min, election_max) =
            if dev { (25, 150, 300) } else { (50, 300, 500) };
        let slack = tick(heartbeat) + drift(election_min);
        let t = Timing {
            heartbeat,
            election_min,
            election_max,
            lease: election_min.saturating_sub(slack),
        };
        t.check()?;
        Ok(t)
    }

    /// The invariant (module docs), checked before Raft starts.
    pub fn check(&self) -> Result<(), TimingError> {
        let (hb, emin, emax) = (self.heartbeat, self.election_min, self.election_max);
        if !(hb < emin && emin < emax) {
            return Err(TimingError::Order { hb, emin, emax });
        }
        let (tick, drift) = (tick(hb), drift(emin));
        if self.lease + tick + drift > emin {
            return Err(TimingError::LeaseOutlivesVoteRefusal {
                lease: self.lease,
                tick,
                drift,
                emin,
            });
        }
        if self.lease < MIN_TICKS_PER_LEASE * tick {
            return Err(TimingError::LeaseTooShort {
                lease: self.lease,
                tick,
            });
        }
        Ok(())
    }
}

/// openraft 0.9's tick (and so its metrics refresh) period.
fn tick(heartbeat: u64) -> u64 {
    heartbeat * 3 / 2
}

fn drift(election_min: u64) -> u64 {
    election_min * DRIFT_PERCENT / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_satisfy_the_invariant() {
        for dev in [false, true] {
            let t = Timing::for_mode(dev).unwrap();
            assert!(t.lease + tick(t.heartbeat) + drift(t.election_min) <= t.election_min);
            assert!(t.lease >= 2 * tick(t.heartbeat));
        }
        assert_eq!(Timing::for_mode(false).unwrap().lease, 195);
        assert_eq!(Timing::for_mode(true).unwrap().lease, 98);
    }

    #[test]
    fn the_old_lease_is_refused() {
        // Before: 1 s lease against a 250 ms election timeout.
        let old = Timing {
            heartbeat: 100,
            election_min: 250,
            election_max: 500,
            lease: 1000,
        };
        assert_eq!(
            old.check(),
            Err(TimingError::LeaseOutlivesVoteRefusal {
                lease: 1000,
                tick: 150,
                drift: 25,
                emin: 250
            })
        );
        let short = Timing {
            lease: 100,
            ..Timing::for_mode(false).unwrap()
        };
        assert!(matches!(
            short.check(),
            Err(TimingError::LeaseTooShort { .. })
        ));
        let disordered = Timing {
            election_max: 300,
            ..Timing::for_mode(false).unwrap()
        };
        assert!(matches!(disordered.check(), Err(TimingError::Order { .. })));
    }
}
