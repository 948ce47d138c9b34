//! Failpoints: named places in the Raft storage path (and the agent's
//! anti-entropy) where a debug build can be told to fail or stall on
//! purpose, so the fault tests can show what a failing append, fsync,
//! snapshot write or snapshot install does to the cluster, and what a
//! slow sync pass races with (the `fail` crate's idea, driven by an environment variable
//! instead of a cargo feature: CI's binary is the debug build, and a
//! feature would build the whole binary a second time).
//!
//! `MERIDIAN_FAILPOINTS="<point>=<action>[@<when>];..."`, read once when
//! the agent starts (`init`, which refuses an unknown point or a malformed
//! spec naming the variable and the part). Actions:
//! - `error`: the storage call returns an I/O error (openraft then stops
//!   for good and the agent exits 1, `actors::raft::raft_failed`);
//! - `panic`: the storage code panics where it stands;
//! - `crash`: the process SIGKILLs itself there, as a power cut or
//!   `kill -9` at exactly that point would leave the disk;
//! - `delay:<ms>`: the call sleeps that long first (a slow disk).
//!
//! When: every hit (default), `once` (the first hit), `<n>` (the n-th hit
//! only) or `<p>%` (each hit with probability p; `MERIDIAN_FAILPOINTS_SEED`
//! seeds it for replay). Each firing is logged (`failpoint fired`) before
//! it acts, on stderr as well for `crash`, so a test can tell which point
//! took the server down.
//!
//! In a release build every point compiles to nothing, and an agent
//! started with `MERIDIAN_FAILPOINTS` set refuses to start rather than
//! ignore it.

use thiserror::Error;

/// Every failpoint the storage code has, with where it sits.
pub const POINTS: &[(&str, &str)] = &[
    (
        "raft_log_append",
        "a batch of Raft log entries, before any is put in the transaction",
    ),
    (
        "raft_log_before_fsync",
        "a log batch (entries, vote, truncation) written into the transaction, before the commit that fsyncs it",
    ),
    (
        "raft_log_after_fsync",
        "a log batch committed and on disk, before openraft is told (entries durable, not acknowledged)",
    ),
    (
        "snapshot_write",
        "a snapshot this server built, before it is saved",
    ),
    (
        "snapshot_install",
        "a snapshot received from the leader, before it is saved",
    ),
    (
        "snapshot_install_saved",
        "a snapshot received from the leader, saved, before the state store takes it",
    ),
    (
        "anti_entropy_pass",
        "a full anti-entropy pass, its entries read from the agent's local state, before it writes them (a delay awaits, the agent goes on)",
    ),
];

pub const ENV: &str = "MERIDIAN_FAILPOINTS";
pub const SEED_ENV: &str = "MERIDIAN_FAILPOINTS_SEED";

/// What a failpoint set to `error` returns.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("failpoint {0} injected an I/O error")]
pub struct Injected(pub &'static str);

/// Why `MERIDIAN_FAILPOINTS` was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{ENV}: {part:?}: unknown failpoint {name:?} (known: {known})")]
    UnknownPoint {
        part: String,
        name: String,
        known: String,
    },
    #[error(
        "{ENV}: {part:?}: {why} (expected <point>=<error|panic|crash|delay:MS>[@once|@N|@P%])"
    )]
    Malformed { part: String, why: String },
    #[error("{ENV} is set, but this is a release build, which has no failpoints")]
    ReleaseBuild,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Error,
    Panic,
    Crash,
    Delay(u64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Always,
    /// The n-th hit (1-based) only; `once` is 1.
    Nth(u64),
    /// Each hit with this probability (0..=1).
    Chance(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub point: &'static str,
    pub action: Action,
    pub when: When,
}

/// Parses a `MERIDIAN_FAILPOINTS` value (`;`-separated rules; empty parts
/// are skipped).
pub fn parse(spec: &str) -> Result<Vec<Rule>, SpecError> {
    let mut rules = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let malformed = |why: &str| SpecError::Malformed {
            part: part.to_string(),
            why: why.to_string(),
        };
        let (name, rest) = part.split_once('=').ok_or_else(|| malformed("no '='"))?;
        let name = name.trim();
        let point = POINTS
            .iter()
            .map(|(p, _)| *p)
            .find(|p| *p == name)
            .ok_or_else(|| SpecError::UnknownPoint {
                part: part.to_string(),
                name: name.to_string(),
                known: POINTS
                    .iter()
                    .map(|(p, _)| *p)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let (action, when) = match rest.split_once('@') {
            Some((a, w)) => (a.trim(), Some(w.trim())),
            None => (rest.trim(), None),
        };
        let action = match action {
            "error" => Action::Error,
            "panic" => Action::Panic,
            "crash" => Action::Crash,
            a => match a.strip_prefix("delay:").map(str::parse::<u64>) {
                Some(Ok(ms)) => Action::Delay(ms),
                Some(Err(_)) => return Err(malformed("delay needs milliseconds")),
                None => return Err(malformed(&format!("unknown action {a:?}"))),
            },
        };
        let when = match when {
            None => When::Always,
            Some("once") => When::Nth(1),
            Some(w) => match w.strip_suffix('%') {
                Some(p) => match p.trim().parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => When::Chance(p / 100.0),
                    _ => return Err(malformed("a chance is 0-100%")),
                },
                None => match w.parse::<u64>() {
                    Ok(n) if n > 0 => When::Nth(n),
                    _ => return Err(malformed(&format!("unknown trigger {w:?}"))),
                },
            },
        };
        rules.push(Rule {
            point,
            action,
            when,
        });
    }
    Ok(rules)
}

#[cfg(debug_assertions)]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::{parse, Action, Injected, Rule, SpecError, When, ENV, POINTS, SEED_ENV};

    struct Armed {
        rules: Vec<Rule>,
        /// Hits per rule.
        hits: Vec<AtomicU64>,
        rng: Mutex<StdRng>,
    }

    static ARMED: OnceLock<Armed> = OnceLock::new();

    fn load() -> Result<Armed, SpecError> {
        let rules = match std::env::var(ENV) {
            Ok(s) => parse(&s)?,
            Err(_) => Vec::new(),
        };
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                t ^ u64::from(std::process::id()) << 32
            });
        Ok(Armed {
            hits: rules.iter().map(|_| AtomicU64::new(0)).collect(),
            rules,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }

    pub fn init() -> Result<Vec<Rule>, SpecError> {
        if let Some(a) = ARMED.get() {
            return Ok(a.rules.clone());
        }
        let armed = load()?;
        let rules = armed.rules.clone();
        let _ = ARMED.set(armed);
        Ok(rules)
    }

    /// What failpoint `point` does on this hit: an error, or a sleep of
    /// this long (zero when nothing is armed there); panic and crash act
    /// here.
    fn fire(point: &'static str) -> Result<u64, Injected> {
        // Before `init` (unit tests of the storage code) nothing is armed.
        let Some(a) = ARMED.get() else {
            return Ok(0);
        };
        debug_assert!(POINTS.iter().any(|(p, _)| *p == point), "{point}");
        let mut sleep = 0;
        for (rule, hits) in a.rules.iter().zip(&a.hits) {
            if rule.point != point {
                continue;
            }
            let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
            let fires = match rule.when {
                When::Always => true,
                When::Nth(k) => n == k,
                When::Chance(p) => a.rng.lock().unwrap_or_else(|e| e.into_inner()).gen_bool(p),
            };
            if !fires {
                continue;
            }
            tracing::warn!(failpoint = point, action = ?rule.action, hit = n, "failpoint fired");
            match rule.action {
                Action::Error => return Err(Injected(point)),
                Action::Panic => panic!("failpoint {point} fired (hit {n})"),
                Action::Crash => {
                    // The log line above may sit in a buffer that dies with
                    // the process: stderr is unbuffered.
                    eprintln!("failpoint fired: {point} crash (hit {n})");
                    // SAFETY: kill(2) on our own pid; nothing after it runs.
                    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                    std::process::abort();
                }
                Action::Delay(ms) => sleep += ms,
            }
        }
        Ok(sleep)
    }

    pub fn hit(point: &'static str) -> Result<(), Injected> {
        let ms = fire(point)?;
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(())
    }

    pub async fn pause(point: &'static str) -> Result<(), Injected> {
        let ms = fire(point)?;
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Ok(())
    }
}

/// Reads `MERIDIAN_FAILPOINTS` (once; the agent calls it at start) and
/// returns the rules armed.
#[cfg(debug_assertions)]
pub fn init() -> Result<Vec<Rule>, SpecError> {
    armed::init()
}

/// Release builds have no failpoints: a spec given to one is refused.
#[cfg(not(debug_assertions))]
pub fn init() -> Result<Vec<Rule>, SpecError> {
    match std::env::var_os(ENV) {
        Some(v) if !v.is_empty() => Err(SpecError::ReleaseBuild),
        _ => Ok(Vec::new()),
    }
}

/// Passes through failpoint `point`: fails, panics, crashes or sleeps as
/// `MERIDIAN_FAILPOINTS` says, or returns at once.
#[cfg(debug_assertions)]
pub(crate) fn hit(point: &'static str) -> Result<(), Injected> {
    armed::hit(point)
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn hit(_point: &'static str) -> Result<(), Injected> {
    Ok(())
}

/// `hit` for a point in async code run by an actor or a runtime that
/// must go on meanwhile: a delay awaits a timer instead of holding the
/// thread.
#[cfg(debug_assertions)]
pub(crate) async fn pause(point: &'static str) -> Result<(), Injected> {
    armed::pause(point).await
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) async fn pause(_point: &'static str) -> Result<(), Injected> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_parses_into_rules() {
        let rules = parse(
            "raft_log_append=error@5%; raft_log_before_fsync=crash@once;snapshot_write=panic;\
             snapshot_install=delay:250@3;",
        )
        .unwrap();
        assert_eq!(
            rules,
            vec![
                Rule {
                    point: "raft_log_append",
                    action: Action::Error,
                    when: When::Chance(0.05)
                },
                Rule {
                    point: "raft_log_before_fsync",
                    action: Action::Crash,
                    when: When::Nth(1)
                },
                Rule {
                    point: "snapshot_write",
                    action: Action::Panic,
                    when: When::Always
                },
                Rule {
                    point: "snapshot_install",
                    action: Action::Delay(250),
                    when: When::Nth(3)
                },
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn a_bad_spec_is_refused_naming_the_part() {
        let e = parse("raft_log_apend=error").unwrap_err();
        assert!(
            matches!(&e, SpecError::UnknownPoint { name, .. } if name == "raft_log_apend"),
            "{e}"
        );
        assert!(e.to_string().contains("raft_log_append"), "{e}");
        for bad in [
            "raft_log_append",
            "raft_log_append=explode",
            "raft_log_append=error@sometimes",
            "raft_log_append=error@0",
            "raft_log_append=error@150%",
            "raft_log_append=delay:soon",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(&e, SpecError::Malformed { part, .. } if part == bad),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(ENV), "{e}");
        }
    }
}
