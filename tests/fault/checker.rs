//! A linearizability checker for histories of registers, one per key
//! (Wing & Gong's search with porcupine's refinements: each key is checked
//! on its own, since a history is linearizable iff every key's is; and a
//! (linearized set, register value) pair seen once is never explored
//! again). Only test binaries include it: it is not part of the agent.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Read,
    Write(String),
    /// Set `to` only if the register holds `from` (`None`: absent).
    Cas(Option<String>, String),
}

/// What the client learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Took effect; a read carries the value it saw (`None`: absent).
    Ok(Option<String>),
    /// Definitely did not take effect. For a CAS this is "compare failed"
    /// and still says something: the register did not hold `from` at its
    /// linearization point. For anything else the operation is dropped.
    Fail,
    /// No answer (timeout, connection lost, an error after which the
    /// write may still commit): may take effect at any point after its
    /// invocation, or never.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub process: usize,
    /// The server the client sent it to (which answered it, or forwarded
    /// it to the leader): the checker ignores it, reports use it.
    pub server: usize,
    pub key: String,
    pub kind: Kind,
    /// Nanoseconds since the history began.
    pub invoke: u64,
    /// `None` for `Unknown` outcomes.
    pub complete: Option<u64>,
    pub outcome: Outcome,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "<absent>".into());
        let what = match (&self.kind, &self.outcome) {
            (Kind::Read, Outcome::Ok(x)) => format!("read -> {}", v(x)),
            (Kind::Read, o) => format!("read -> {o:?}"),
            (Kind::Write(x), o) => format!("write {x} -> {o:?}"),
            (Kind::Cas(a, b), o) => format!("cas {} -> {b} -> {o:?}", v(a)),
        };
        let end = self.complete.map_or_else(
            || "open".to_string(),
            |c| format!("{:.3} ms", c as f64 / 1e6),
        );
        write!(
            f,
            "process {} {what} [{:.3} ms, {end}] via server {}",
            self.process,
            self.invoke as f64 / 1e6,
            self.server
        )
    }
}

/// Why a key's history is not linearizable.
#[derive(Debug, Clone)]
pub struct Violation {
    pub key: String,
    /// How many operations the longest linearizable prefix ordered, and
    /// the value the register held after them.
    pub prefix_len: usize,
    pub state: Option<String>,
    /// The operation whose completion came before it could be placed.
    pub stuck: Op,
    /// The operations still open (not ordered) at that point, the stuck
    /// one's rivals: none of them can come next.
    pub open: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?}: after the longest linearizable prefix ({} operations) the register holds {}",
            self.key,
            self.prefix_len,
            self.state.as_deref().unwrap_or("<absent>")
        )?;
        writeln!(f, "  cannot be ordered: {}", self.stuck)?;
        for o in &self.open {
            writeln!(f, "  open at that point: {o}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Verdict {
    Linearizable,
    Violation(Box<Violation>),
    /// The search hit its step budget: no verdict for this key.
    Undecided {
        key: String,
        steps: u64,
    },
}

/// Checks every key; the first violation (by key order) is returned, an
/// undecided key only if no key is violated.
pub fn check(history: &[Op], budget_per_key: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut undecided = None;
    for (key, ops) in by_key {
        // Unknown writes no one observed are left out first (they can only
        // explain a failed CAS, and kept they make the search explode: each
        // stays open to the end). When the search sticks at a failed CAS,
        // the lost writes begun before it come back one at a time, nearest
        // first, and one that gets the search past it stays; when none does
        // (or the search stuck elsewhere: its longest prefix need not end at
        // the CAS that needs one), all come back at once, and only then is
        // a violation reported.
        let lost: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].outcome == Outcome::Unknown && !matches!(ops[i].kind, Kind::Read))
            .collect();
        let mut keep = vec![false; ops.len()];
        let mut verdict = check_key(key, &ops, budget_per_key, &keep);
        while let Verdict::Violation(v) = &verdict {
            let (stuck, prefix) = (v.stuck.clone(), v.prefix_len);
            let mut progressed = false;
            if matches!(stuck.kind, Kind::Cas(..)) && stuck.outcome == Outcome::Fail {
                let done = stuck.complete.unwrap_or(u64::MAX);
                let mut near: Vec<usize> = lost
                    .iter()
                    .copied()
                    .filter(|&i| !keep[i] && ops[i].invoke < done)
                    .collect();
                near.sort_by_key(|&i| std::cmp::Reverse(ops[i].invoke));
                for i in near.into_iter().take(64) {
                    keep[i] = true;
                    let tried = check_key(key, &ops, budget_per_key, &keep);
                    let past = match &tried {
                        Verdict::Linearizable => true,
                        Verdict::Violation(w) => w.stuck != stuck && w.prefix_len >= prefix,
                        Verdict::Undecided { .. } => false,
                    };
                    if past {
                        verdict = tried;
                        progressed = true;
                        break;
                    }
                    keep[i] = false;
                }
            }
            if !progressed {
                if lost.iter().all(|&i| keep[i]) {
                    break;
                }
                for &i in &lost {
                    keep[i] = true;
                }
                verdict = check_key(key, &ops, budget_per_key, &keep);
                break;
            }
        }
        match verdict {
            Verdict::Linearizable => {}
            v @ Verdict::Violation(_) => return v,
            u @ Verdict::Undecided { .. } => undecided = undecided.or(Some(u)),
        }
    }
    undecided.unwrap_or(Verdict::Linearizable)
}

/// One key's operations, as the search sees them: values interned.
struct Prepared<'a> {
    op: &'a Op,
    kind: PKind,
    /// `true`: the op must be linearized before its return event.
    known: bool,
    /// Its return event (for an unknown write that was observed: the
    /// first observer's completion).
    complete: u64,
}

#[derive(Clone, Copy)]
enum PKind {
    Read(u32),
    Write(u32),
    Cas(u32, u32),
    /// A CAS that answered "not applied": the register was not `from`.
    CasFailed(u32),
}

const ABSENT: u32 = 0;

fn step(state: u32, k: PKind) -> Option<u32> {
    match k {
        PKind::Read(v) => (state == v).then_some(state),
        PKind::Write(v) => Some(v),
        PKind::Cas(from, to) => (state == from).then_some(to),
        PKind::CasFailed(from) => (state != from).then_some(state),
    }
}

#[derive(Clone, Copy)]
struct Event {
    op: usize,
    call: bool,
    prev: usize,
    next: usize,
}

fn check_key(key: &str, ops: &[&Op], budget: u64, keep: &[bool]) -> Verdict {
    let mut values: HashMap<Option<String>, u32> = HashMap::new();
    values.insert(None, ABSENT);
    let mut intern = |v: &Option<String>| {
        let n = values.len() as u32;
        *values.entry(v.clone()).or_insert(n)
    };
    // Unknown writes are what makes the search explode: each stays open to
    // the end and may be placed anywhere. Values are unique, which bounds
    // them exactly: one whose value was observed (read, or expected by a
    // CAS that succeeded) happened, before the first observer completed;
    // one never observed can only matter to a failed CAS (the register
    // held something else): it is dropped unless `keep` names it.
    let mut first_seen: HashMap<&str, u64> = HashMap::new();
    for op in ops {
        let (seen, done) = match (&op.kind, &op.outcome, op.complete) {
            (Kind::Read, Outcome::Ok(Some(v)), Some(c)) => (Some(v), c),
            (Kind::Cas(Some(v), _), Outcome::Ok(_), Some(c)) => (Some(v), c),
            _ => (None, 0),
        };
        if let Some(v) = seen {
            let e = first_seen.entry(v.as_str()).or_insert(done);
            *e = (*e).min(done);
        }
    }
    let mut prepared = Vec::new();
    for (i, op) in ops.iter().copied().enumerate() {
        let written = match &op.kind {
            Kind::Write(v) | Kind::Cas(_, v) => Some(v.as_str()),
            Kind::Read => None,
        };
        if op.outcome == Outcome::Unknown {
            if let Some(deadline) = written.and_then(|v| first_seen.get(v)) {
                let kind = match &op.kind {
                    Kind::Cas(f, t) => PKind::Cas(intern(f), intern(&Some(t.clone()))),
                    _ => PKind::Write(intern(&written.map(String::from))),
                };
                prepared.push(Prepared {
                    op,
                    kind,
                    known: true,
                    complete: *deadline,
                });
                continue;
            }
            if written.is_some() && !keep[i] {
                continue;
            }
        }
        let (kind, known) = match (&op.kind, &op.outcome) {
            (Kind::Read, Outcome::Ok(v)) => (PKind::Read(intern(v)), true),
            // A read that got no answer changed nothing and said nothing.
            (Kind::Read, _) => continue,
            (Kind::Write(v), Outcome::Ok(_)) => (PKind::Write(intern(&Some(v.clone()))), true),
            (Kind::Write(v), Outcome::Unknown) => (PKind::Write(intern(&Some(v.clone()))), false),
            (Kind::Write(_), Outcome::Fail) => continue,
            (Kind::Cas(f, t), Outcome::Ok(_)) => {
                (PKind::Cas(intern(f), intern(&Some(t.clone()))), true)
            }
            (Kind::Cas(f, t), Outcome::Unknown) => {
                (PKind::Cas(intern(f), intern(&Some(t.clone()))), false)
            }
            (Kind::Cas(f, _), Outcome::Fail) => (PKind::CasFailed(intern(f)), true),
        };
        let complete = op.complete.unwrap_or(u64::MAX);
        prepared.push(Prepared {
            op,
            kind,
            known,
            complete,
        });
    }
    let n = prepared.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Events in time order; an unknown op's return is at the end of time,
    // and a return sorts before a call at the same instant (the two
    // operations did not overlap).
    let mut evs: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, p) in prepared.iter().enumerate() {
        evs.push((p.op.invoke, true, i));
        let end = if p.known { p.complete } else { u64::MAX };
        evs.push((end, false, i));
    }
    evs.sort_by_key(|&(t, call, i)| (t, call, i));
    // A doubly linked list with a sentinel head at index 0.
    let mut list: Vec<Event> = Vec::with_capacity(2 * n + 1);
    list.push(Event {
        op: usize::MAX,
        call: false,
        prev: 0,
        next: 1,
    });
    let mut ret_of = vec![0usize; n];
    for (j, &(_, call, i)) in evs.iter().enumerate() {
        let idx = j + 1;
        if !call {
            ret_of[i] = idx;
        }
        list.push(Event {
            op: i,
            call,
            prev: idx - 1,
            next: if idx == 2 * n { usize::MAX } else { idx + 1 },
        });
    }
    let remove = |l: &mut Vec<Event>, i: usize| {
        let (p, nx) = (l[i].prev, l[i].next);
        l[p].next = nx;
        if nx != usize::MAX {
            l[nx].prev = p;
        }
    };
    let restore = |l: &mut Vec<Event>, i: usize| {
        let (p, nx) = (l[i].prev, l[i].next);
        l[p].next = i;
        if nx != usize::MAX {
            l[nx].prev = i;
        }
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state = ABSENT;
    let mut seen: HashSet<(Vec<u64>, u32)> = HashSet::new();
    // (call event, state before it) of each op placed, in order.
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut best: Option<(usize, u32, usize, Vec<usize>)> = None;
    let mut steps = 0u64;
    let mut entry = list[0].next;
    loop {
        if entry == usize::MAX {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Undecided {
                key: key.to_string(),
                steps,
            };
        }
        let e = list[entry];
        if e.call {
            if let Some(next_state) = step(state, prepared[e.op].kind) {
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if seen.insert((lin.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    linearized = lin;
                    remove(&mut list, entry);
                    remove(&mut list, ret_of[e.op]);
                    entry = list[0].next;
                    continue;
                }
            }
            entry = e.next;
        } else {
            // A return: its op was not placed before it.
            if !prepared[e.op].known {
                // Only unknown ops' returns remain (they sort last, and
                // every known return before them was passed with its op
                // placed): the unplaced unknown ops never happened.
                return Verdict::Linearizable;
            }
            if best.as_ref().is_none_or(|b| stack.len() > b.0) {
                let mut open = Vec::new();
                let mut c = list[0].next;
                while c != usize::MAX && c != entry {
                    if list[c].call {
                        open.push(list[c].op);
                    }
                    c = list[c].next;
                }
                best = Some((stack.len(), state, e.op, open));
            }
            let Some((call, prev_state)) = stack.pop() else {
                break;
            };
            let op = list[call].op;
            restore(&mut list, ret_of[op]);
            restore(&mut list, call);
            linearized[op / 64] &= !(1 << (op % 64));
            state = prev_state;
            entry = list[call].next;
        }
    }
    let (prefix_len, st, stuck, open) = best.unwrap_or((0, ABSENT, 0, Vec::new()));
    let names: HashMap<u32, Option<String>> = values.into_iter().map(|(k, v)| (v, k)).collect();
    Verdict::Violation(Box::new(Violation {
        key: key.to_string(),
        prefix_len,
        state: names.get(&st).cloned().flatten(),
        stuck: prepared[stuck].op.clone(),
        open: open
            .into_iter()
            .filter(|&i| i != stuck)
            .map(|i| prepared[i].op.clone())
            .collect(),
    }))
}
