//! Unit tests of the KV table's Meridian extensions: TTLs (stored,
//! replicated, expired through `KvExpire` with its `ModifyIndex` guard)
//! and changed-key reads (writes, deletions, and the too-old answer).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::command::{apply, Command, CommandResult};
use super::query::{execute, Query, QueryResult};
use super::structs::{KvChange, KvChanges};
use super::txn::KvOp;
use super::StateStore;

fn fired(w: &Arc<Notify>) -> bool {
    let fut = w.notified();
    futures::pin_mut!(fut);
    fut.as_mut().enable()
}

fn set(key: &str, value: &str, ttl: Option<&str>) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
        ttl: ttl.map(str::to_string),
    }
}

fn expire(key: &str, modify_index: u64) -> Command {
    Command::KvExpire {
        key: key.into(),
        modify_index,
    }
}

fn ttl_keys(s: &StateStore) -> Vec<(String, u64, Duration)> {
    s.kv_ttl_keys()
        .iter()
        .map(|(k, (m, d))| (k.clone(), *m, *d))
        .collect()
}

#[test]
fn a_ttl_is_stored_shown_in_json_and_cleared_by_a_rewrite_without_one() {
    let mut s = StateStore::new();
    assert_eq!(
        apply(&mut s, 1, &set("t", "v", Some("30s"))),
        CommandResult::Bool(true)
    );
    assert_eq!(
        apply(&mut s, 2, &set("plain", "v", None)),
        CommandResult::Bool(true)
    );
    let e = s.kv_get("t", None).1.expect("t is stored");
    assert_eq!(e.ttl.as_deref(), Some("30s"));
    let json = serde_json::to_value(&e).expect("an entry encodes");
    assert_eq!(json["TTL"], "30s");
    let plain = serde_json::to_value(s.kv_get("plain", None).1.expect("plain is stored"))
        .expect("an entry encodes");
    assert!(
        plain.get("TTL").is_none(),
        "no TTL field for Consul clients: {plain}"
    );
    assert_eq!(ttl_keys(&s), vec![("t".into(), 1, Duration::from_secs(30))]);

    // With a new TTL: a new ModifyIndex for the timers to restart on.
    let v = s.kv_ttl_version();
    apply(&mut s, 3, &set("t", "v2", Some("1m")));
    assert_eq!(ttl_keys(&s), vec![("t".into(), 3, Duration::from_secs(60))]);
    assert!(s.kv_ttl_version() > v);
    // Without: no TTL any more.
    apply(&mut s, 4, &set("t", "v3", None));
    assert_eq!(s.kv_get("t", None).1.expect("t is stored").ttl, None);
    assert!(ttl_keys(&s).is_empty());
    // A write elsewhere does not move the version (the leader skips its rescan).
    let v = s.kv_ttl_version();
    apply(&mut s, 5, &set("other", "v", None));
    assert_eq!(s.kv_ttl_version(), v);
}

#[test]
fn a_ttl_out_of_bounds_is_refused_by_every_server() {
    let mut s = StateStore::new();
    for bad in ["500ms", "25h", "soon", "0"] {
        match apply(&mut s, 1, &set("t", "v", Some(bad))) {
            CommandResult::Rejected(why) => assert!(why.contains("ttl"), "{why}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(s.kv_get("t", None).1.is_none());
    assert_eq!(
        apply(&mut s, 2, &set("t", "v", Some("1s"))),
        CommandResult::Bool(true)
    );
    assert_eq!(
        apply(&mut s, 3, &set("t", "v", Some("24h"))),
        CommandResult::Bool(true)
    );
}

#[test]
fn expiry_deletes_through_the_normal_path_and_wakes_watchers() {
    let mut s = StateStore::new();
    apply(&mut s, 1, &set("app/t", "v", Some("10s")));
    let key_waiter = Arc::new(Notify::new());
    let prefix_waiter = Arc::new(Notify::new());
    s.kv_get("app/t", Some(&key_waiter));
    s.kv_list("app/", Some(&prefix_waiter));

    assert_eq!(
        apply(&mut s, 7, &expire("app/t", 1)),
        CommandResult::Bool(true)
    );
    assert!(s.kv_get("app/t", None).1.is_none());
    assert!(fired(&key_waiter) && fired(&prefix_waiter));
    // The index advances and the delete leaves a tombstone, as any delete.
    assert_eq!(s.kv_list("app/", None).0, 7);
    assert_eq!(s.kv_tombstone_max(), 7);
    assert_eq!(s.last_index(), 7);
    assert!(ttl_keys(&s).is_empty());
}

#[test]
fn expiry_never_deletes_a_key_rewritten_since_its_timer_started() {
    let mut s = StateStore::new();
    apply(&mut s, 1, &set("t", "v", Some("10s")));
    apply(&mut s, 2, &set("t", "v2", Some("10s")));
    // The timer of the write at 1 fires late: the write at 2 wins.
    assert_eq!(
        apply(&mut s, 3, &expire("t", 1)),
        CommandResult::Bool(false)
    );
    assert_eq!(s.kv_get("t", None).1.expect("kept").value, b"v2");
    assert_eq!(s.kv_tombstones(), 0);

    // A key without a TTL is never expired, even at its current index.
    apply(&mut s, 4, &set("u", "v", None));
    assert_eq!(
        apply(&mut s, 5, &expire("u", 4)),
        CommandResult::Bool(false)
    );
    assert!(s.kv_get("u", None).1.is_some());
    // An absent key: nothing to do.
    assert_eq!(
        apply(&mut s, 6, &expire("nope", 1)),
        CommandResult::Bool(false)
    );
}

#[test]
fn the_ttl_is_in_snapshots_and_the_ttl_index_is_rebuilt_on_restore() {
    let mut s = StateStore::new();
    apply(&mut s, 1, &set("a", "v", Some("5s")));
    apply(&mut s, 2, &set("b", "v", None));
    let snap = s.snapshot();
    // Through the same encoding the Raft snapshot uses.
    let bytes = serde_json::to_vec(&snap).expect("a snapshot encodes");
    let back = serde_json::from_slice(&bytes).expect("a snapshot decodes");
    let mut r = StateStore::new();
    let v = r.kv_ttl_version();
    r.restore(back);
    assert_eq!(
        r.kv_get("a", None).1.expect("a restored").ttl.as_deref(),
        Some("5s")
    );
    assert_eq!(ttl_keys(&r), vec![("a".into(), 1, Duration::from_secs(5))]);
    assert!(
        r.kv_ttl_version() > v,
        "the leader's timers see the restore"
    );
    assert_eq!(apply(&mut r, 3, &expire("a", 1)), CommandResult::Bool(true));
}

#[test]
fn transactions_set_ttls_and_a_failed_one_puts_the_ttl_index_back() {
    let op = |verb: &str, key: &str, ttl: Option<&str>, index: u64| KvOp {
        verb: verb.into(),
        key: key.into(),
        value: b"x".to_vec(),
        flags: 0,
        index,
        session: String::new(),
        ttl: ttl.map(str::to_string),
    };
    let mut s = StateStore::new();
    apply(&mut s, 1, &set("k", "v", Some("10s")));
    // Fails at its check: the rewrite without a TTL is undone.
    let out = s.txn(
        2,
        &[op("set", "k", None, 0), op("check-index", "k", None, 99)],
    );
    assert!(matches!(out, super::txn::TxnOutcome::Errors(_)));
    assert_eq!(ttl_keys(&s), vec![("k".into(), 1, Duration::from_secs(10))]);
    let out = s.txn(
        3,
        &[op("set", "n", Some("2s"), 0), op("cas", "k", Some("3s"), 1)],
    );
    assert!(matches!(out, super::txn::TxnOutcome::Results(_)), "{out:?}");
    assert_eq!(
        ttl_keys(&s),
        vec![
            ("k".into(), 3, Duration::from_secs(3)),
            ("n".into(), 3, Duration::from_secs(2)),
        ]
    );
    let out = s.txn(4, &[op("set", "m", Some("1ms"), 0)]);
    assert!(matches!(out, super::txn::TxnOutcome::Errors(_)), "{out:?}");
}

fn changes(s: &StateStore, prefix: &str, since: u64) -> (u64, KvChanges) {
    match execute(
        s,
        &Query::KvChanges {
            prefix: prefix.into(),
            since,
        },
        None,
    ) {
        (i, QueryResult::KvChanges(c)) => (i, c),
        other => panic!("{other:?}"),
    }
}

fn deleted(key: &str, modify_index: u64) -> KvChange {
    KvChange::Deleted {
        key: key.into(),
        modify_index,
    }
}

#[test]
fn changes_since_lists_writes_and_deletions_after_the_index_only() {
    let mut s = StateStore::new();
    for i in 1..=5 {
        s.kv_set(i, &format!("p/{i}"), b"v".to_vec(), 0);
    }
    s.kv_set(6, "q/outside", b"v".to_vec(), 0);
    s.kv_delete(7, "p/1");
    let (index, c) = changes(&s, "p/", 5);
    assert_eq!(index, 7);
    assert_eq!(c, KvChanges::Since(vec![deleted("p/1", 7)]));

    s.kv_set(8, "p/2", b"new".to_vec(), 0);
    s.kv_delete(9, "p/3");
    s.kv_set(10, "q/outside", b"w".to_vec(), 0);
    let (index, c) = changes(&s, "p/", 7);
    assert_eq!(index, 9);
    let KvChanges::Since(rows) = c else {
        panic!("{c:?}")
    };
    assert_eq!(rows.len(), 2);
    assert!(matches!(&rows[0], KvChange::Set(e) if e.key == "p/2" && e.value == b"new"));
    assert_eq!(rows[1], deleted("p/3", 9));

    // Deleted and written again: a write, not a deletion.
    s.kv_set(11, "p/3", b"back".to_vec(), 0);
    let (_, c) = changes(&s, "p/", 9);
    assert!(matches!(c, KvChanges::Since(ref r) if r.len() == 1 && r[0].key() == "p/3"));
    // Nothing since the newest index: an empty delta.
    assert_eq!(changes(&s, "p/", 11).1, KvChanges::Since(vec![]));
}

#[test]
fn changes_since_an_index_older_than_the_reaped_tombstones_is_too_old() {
    let mut s = StateStore::new();
    for i in 1..=4 {
        s.kv_set(i, &format!("p/{i}"), b"v".to_vec(), 0);
    }
    s.kv_delete(5, "p/1");
    s.kv_delete(6, "p/2");
    let KvChanges::Since(all) = changes(&s, "p/", 0).1 else {
        panic!("nothing reaped yet: everything is known")
    };
    assert_eq!(all.len(), 4, "p/3, p/4 and the two deletions: {all:?}");
    s.kv_reap_tombstones(5);
    // The delete at 5 left no trace: a client at 4 cannot be told about it.
    assert_eq!(changes(&s, "p/", 4).1, KvChanges::TooOld { floor: 5 });
    assert_eq!(changes(&s, "p/", 0).1, KvChanges::TooOld { floor: 5 });
    // From 5 on, every deletion still has its tombstone.
    assert_eq!(
        changes(&s, "p/", 5).1,
        KvChanges::Since(vec![deleted("p/2", 6)])
    );
    // The floor travels with snapshots.
    let mut r = StateStore::new();
    r.restore(s.snapshot());
    assert_eq!(changes(&r, "p/", 4).1, KvChanges::TooOld { floor: 5 });
}

#[test]
fn a_snapshot_restore_through_raft_is_a_floor_for_changes() {
    let mut s = StateStore::new();
    s.kv_set(1, "p/a", b"v".to_vec(), 0);
    let snap = s.snapshot();
    s.kv_set(2, "p/b", b"v".to_vec(), 0);
    // p/b vanishes without a tombstone.
    apply(&mut s, 3, &Command::Restore(Box::new(snap)));
    assert_eq!(changes(&s, "p/", 2).1, KvChanges::TooOld { floor: 3 });
    assert_eq!(changes(&s, "p/", 3).1, KvChanges::Since(vec![]));
}

#[test]
fn a_blocking_changes_read_wakes_on_an_expiry() {
    let mut s = StateStore::new();
    apply(&mut s, 1, &set("p/t", "v", Some("1s")));
    let w = Arc::new(Notify::new());
    execute(
        &s,
        &Query::KvChanges {
            prefix: "p/".into(),
            since: 1,
        },
        Some(&w),
    );
    apply(&mut s, 2, &expire("p/t", 1));
    assert!(fired(&w));
    let (index, c) = changes(&s, "p/", 1);
    assert_eq!(index, 2);
    assert_eq!(c, KvChanges::Since(vec![deleted("p/t", 2)]));
}
