//! The `Health` actor: runs this agent's checks and reports their results
//! to `Node`. It lives on its own arbiter (thread), so probes never run on
//! the thread that serves the API and Raft; at most `CONCURRENCY` probes
//! are in flight, so a thousand hanging endpoints cannot stall the agent.
//!
//! Interval checks (http, tcp, udp, grpc, script) each get a task that
//! starts at a random point of its first interval (so checks loaded
//! together do not fire together) and applies Consul's thresholds
//! (`success_before_passing`, `failures_before_warning|critical`) before
//! reporting. TTL checks are deadlines that `TtlTouched` moves. Alias
//! checks are evaluated by `Node`, which holds what they mirror.

pub mod probe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;
use tokio::sync::Semaphore;

use crate::config::CheckDefinition;
use crate::state::structs::HealthStatus;

/// Most probes running at once: enough that a few hundred hanging
/// endpoints only delay the rest, never the agent itself.
const CONCURRENCY: usize = 128;

/// A check's result, to `Node`. Sent after every run that passes the
/// thresholds; `Node` decides what changed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CheckResult {
    pub id: String,
    pub status: HealthStatus,
    pub output: String,
}

/// The checks this agent runs, by check ID, and where results go. Checks
/// whose definition did not change keep running on their schedule.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetChecks {
    pub checks: Vec<(String, CheckDefinition)>,
    pub reporter: Recipient<CheckResult>,
}

/// A TTL check was updated through the API: its deadline starts over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtlTouched(pub String);

struct Running {
    def: CheckDefinition,
    task: Option<tokio::task::JoinHandle<()>>,
    /// TTL checks: when they expire unless touched.
    deadline: Option<Instant>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

pub struct HealthActor {
    running: HashMap<String, Running>,
    reporter: Option<Recipient<CheckResult>>,
    permits: Arc<Semaphore>,
    clients: probe::Clients,
}

impl HealthActor {
    /// Starts the actor on an arbiter of its own.
    pub fn start_on_own_thread() -> Addr<HealthActor> {
        let arbiter = Arbiter::new();
        HealthActor::start_in_arbiter(&arbiter.handle(), |_| HealthActor::new())
    }

    pub fn new() -> HealthActor {
        HealthActor {
            running: HashMap::new(),
            reporter: None,
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
            clients: probe::Clients::new(),
        }
    }

    fn start_check(&self, id: &str, def: &CheckDefinition) -> Running {
        let mut running = Running {
            def: def.clone(),
            task: None,
            deadline: None,
        };
        if let Some(ttl) = def.ttl {
            running.deadline = Some(Instant::now() + ttl);
            return running;
        }
        let (Some(interval), Some(reporter)) = (def.interval, self.reporter.clone()) else {
            // Alias checks (no interval) are Node's.
            return running;
        };
        let (id, def, clients, permits) = (
            id.to_string(),
            def.clone(),
            self.clients.clone(),
            self.permits.clone(),
        );
        let first = interval.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        running.task = Some(tokio::task::spawn_local(async move {
            tokio::time::sleep(first).await;
            let mut thresholds = Thresholds::new(&def);
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let (status, output) = {
                    let Ok(_permit) = permits.acquire().await else {
                        return;
                    };
                    probe::run(&def, &clients).await
                };
                if let Some(status) = thresholds.observe(status) {
                    if reporter
                        .try_send(CheckResult {
                            id: id.clone(),
                            status,
                            output,
                        })
                        .is_err()
                        && !reporter.connected()
                    {
                        return;
                    }
                }
            }
        }));
        running
    }

    fn expire_ttls(&mut self) {
        let now = Instant::now();
        for (id, r) in self.running.iter_mut() {
            if r.deadline.is_some_and(|d| d <= now) {
                r.deadline = None;
                if let Some(rep) = &self.reporter {
                    rep.do_send(CheckResult {
                        id: id.clone(),
                        status: HealthStatus::Critical,
                        output: "TTL expired".into(),
                    });
                }
            }
        }
    }
}

impl Default for HealthActor {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for HealthActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(100), |act, _| act.expire_ttls());
    }
}

impl Handler<SetChecks> for HealthActor {
    type Result = ();

    fn handle(&mut self, msg: SetChecks, _: &mut Context<Self>) {
        self.reporter = Some(msg.reporter);
        let wanted: HashMap<String, CheckDefinition> = msg.checks.into_iter().collect();
        self.running
            .retain(|id, r| wanted.get(id).is_some_and(|d| *d == r.def));
        for (id, def) in &wanted {
            if !self.running.contains_key(id) {
                let r = self.start_check(id, def);
                self.running.insert(id.clone(), r);
            }
        }
        tracing::debug!(
            checks = self.running.len(),
            "health: running checks updated"
        );
    }
}

impl Handler<TtlTouched> for HealthActor {
    type Result = ();

    fn handle(&mut self, msg: TtlTouched, _: &mut Context<Self>) {
        if let Some(r) = self.running.get_mut(&msg.0) {
            r.deadline = r.def.ttl.map(|ttl| Instant::now() + ttl);
        }
    }
}

/// Consul's status thresholds: a status is reported only once enough
/// results in a row agree; until then the previous one stands.
#[derive(Debug)]
pub struct Thresholds {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    pub fn new(def: &CheckDefinition) -> Self {
        let critical = def.failures_before_critical.max(1);
        Thresholds {
            success_before_passing: def.success_before_passing.max(1),
            failures_before_warning: if def.failures_before_warning == 0 {
                critical
            } else {
                def.failures_before_warning
            },
            failures_before_critical: critical,
            successes: 0,
            failures: 0,
        }
    }

    /// The status to report after this result, if any.
    pub fn observe(&mut self, status: HealthStatus) -> Option<HealthStatus> {
        if status == HealthStatus::Passing {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            return (self.successes >= self.success_before_passing).then_some(status);
        }
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        if status == HealthStatus::Critical && self.failures >= self.failures_before_critical {
            Some(HealthStatus::Critical)
        } else if self.failures >= self.failures_before_warning {
            Some(HealthStatus::Warning)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_consul() {
        let def = CheckDefinition {
            success_before_passing: 2,
            failures_before_warning: 1,
            failures_before_critical: 3,
            ..Default::default()
        };
        let mut t = Thresholds::new(&def);
        use HealthStatus::*;
        assert_eq!(t.observe(Passing), None);
        assert_eq!(t.observe(Passing), Some(Passing));
        assert_eq!(t.observe(Critical), Some(Warning));
        assert_eq!(t.observe(Critical), Some(Warning));
        assert_eq!(t.observe(Critical), Some(Critical));
        assert_eq!(t.observe(Passing), None);
        assert_eq!(t.observe(Passing), Some(Passing));
        // Defaults: every result counts at once.
        let mut t = Thresholds::new(&CheckDefinition::default());
        assert_eq!(t.observe(Critical), Some(Critical));
        assert_eq!(t.observe(Warning), Some(Warning));
        assert_eq!(t.observe(Passing), Some(Passing));
    }
}
