//! State store unit tests: KV semantics, indexes, watches, catalog and
//! health reads, snapshot and restore.

use std::sync::Arc;

use tokio::sync::Notify;

use super::command::{apply, Command, CommandResult};
use super::query::{execute, Query, QueryResult};
use super::structs::{DeregisterRequest, HealthCheck, HealthStatus, NodeService, RegisterRequest};
use super::StateStore;

fn waiter() -> Arc<Notify> {
    Arc::new(Notify::new())
}

/// True when the waiter has been fired (a stored permit is consumed).
fn fired(w: &Arc<Notify>) -> bool {
    let fut = w.notified();
    futures::pin_mut!(fut);
    fut.as_mut().enable()
}

fn reg(
    node: &str,
    addr: &str,
    svc: Option<(&str, &str, &[&str])>,
    checks: Vec<HealthCheck>,
) -> RegisterRequest {
    RegisterRequest {
        node: node.into(),
        address: addr.into(),
        service: svc.map(|(id, name, tags)| NodeService {
            id: id.into(),
            service: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            port: 80,
            ..Default::default()
        }),
        checks,
        ..Default::default()
    }
}

fn check(id: &str, service_id: &str, status: HealthStatus) -> HealthCheck {
    HealthCheck {
        check_id: id.into(),
        name: id.into(),
        service_id: service_id.into(),
        status,
        ..Default::default()
    }
}

#[test]
fn kv_set_keeps_create_index_and_moves_modify_index() {
    let mut s = StateStore::new();
    assert!(s.kv_set(5, "a", b"1".to_vec(), 7));
    assert!(s.kv_set(9, "a", b"2".to_vec(), 0));
    let (idx, e) = s.kv_get("a", None);
    let e = e.unwrap();
    assert_eq!((idx, e.create_index, e.modify_index, e.flags), (9, 5, 9, 0));
    assert_eq!(e.value, b"2");
    // Absent key: the table's index.
    assert_eq!(s.kv_get("zzz", None), (9, None));
}

#[test]
fn kv_cas_zero_creates_only_if_absent_and_n_must_match() {
    let mut s = StateStore::new();
    assert!(s.kv_cas(1, "k", b"a".to_vec(), 0, 0));
    assert!(
        !s.kv_cas(2, "k", b"b".to_vec(), 0, 0),
        "cas=0 on an existing key"
    );
    assert!(!s.kv_cas(3, "k", b"b".to_vec(), 0, 99), "wrong index");
    assert!(s.kv_cas(4, "k", b"b".to_vec(), 0, 1));
    assert!(
        !s.kv_cas(5, "missing", b"x".to_vec(), 0, 4),
        "cas=N on an absent key"
    );
    assert_eq!(s.kv_get("k", None).1.unwrap().value, b"b");
    assert!(!s.kv_delete_cas(6, "k", 0), "delete cas=0 deletes nothing");
    assert!(!s.kv_delete_cas(6, "k", 1));
    assert!(s.kv_delete_cas(6, "k", 4));
    assert!(s.kv_get("k", None).1.is_none());
}

#[test]
fn kv_list_keys_and_delete_tree() {
    let mut s = StateStore::new();
    for (i, k) in ["web/a", "web/sub/x", "web/sub/y", "webz", "other"]
        .iter()
        .enumerate()
    {
        s.kv_set(i as u64 + 1, k, vec![], 0);
    }
    let (idx, e) = s.kv_list("web/", None);
    assert_eq!(
        e.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["web/a", "web/sub/x", "web/sub/y"]
    );
    assert_eq!(idx, 3);
    let (_, keys) = s.kv_keys("web/", Some("/"), None);
    assert_eq!(keys, ["web/a", "web/sub/"]);
    let (_, keys) = s.kv_keys("", Some("/"), None);
    assert_eq!(keys, ["other", "web/", "webz"]);
    s.kv_delete_tree(10, "web/");
    let (idx, e) = s.kv_list("web/", None);
    assert!(e.is_empty());
    assert_eq!(
        idx, 10,
        "a deleted prefix keeps a moving index (tombstones)"
    );
    assert!(
        s.kv_get("webz", None).1.is_some(),
        "delete-tree respects the prefix"
    );
}

#[test]
fn watch_on_a_key_fires_only_for_that_key() {
    let mut s = StateStore::new();
    s.kv_set(1, "a", vec![], 0);
    let w = waiter();
    s.kv_get("a", Some(&w));
    s.kv_set(2, "b", vec![], 0);
    s.kv_set(3, "ab", vec![], 0);
    assert!(!fired(&w), "woke for other keys");
    s.kv_set(4, "a", b"x".to_vec(), 0);
    assert!(fired(&w));
    // Absent keys can be watched too (a blocking get waiting for creation).
    let w = waiter();
    s.kv_get("later", Some(&w));
    s.kv_set(5, "later", vec![], 0);
    assert!(fired(&w));
}

#[test]
fn prefix_watch_fires_for_keys_under_it_only() {
    let mut s = StateStore::new();
    let w = waiter();
    s.kv_list("app/", Some(&w));
    s.kv_set(1, "apple", vec![], 0);
    assert!(!fired(&w));
    s.kv_set(2, "app/x/y", vec![], 0);
    assert!(fired(&w));
    let w = waiter();
    s.kv_keys("app/", Some("/"), Some(&w));
    s.kv_delete(3, "app/x/y");
    assert!(fired(&w), "deletes fire prefix watches");
}

#[test]
fn dropped_waiters_are_swept() {
    let s = StateStore::new();
    for i in 0..10_000 {
        let w = waiter();
        s.kv_get(&format!("never-written-{i}"), Some(&w));
    }
    assert!(
        s.watches.lock().unwrap().len() < 5_000,
        "dead waiters accumulate: {}",
        s.watches.lock().unwrap().len()
    );
}

#[test]
fn register_is_idempotent_and_indexes_per_service() {
    let mut s = StateStore::new();
    s.ensure_registration(
        1,
        &reg("n1", "10.0.0.1", Some(("web1", "web", &["v1"])), vec![]),
    )
    .unwrap();
    s.ensure_registration(2, &reg("n2", "10.0.0.2", Some(("db", "db", &[])), vec![]))
        .unwrap();
    let (idx_web, nodes) = s.catalog_service("web", &[], None);
    assert_eq!((idx_web, nodes.len()), (1, 1));
    // Re-registering the same thing changes nothing, not even indexes.
    s.ensure_registration(
        3,
        &reg("n1", "10.0.0.1", Some(("web1", "web", &["v1"])), vec![]),
    )
    .unwrap();
    let (idx, nodes) = s.catalog_service("web", &[], None);
    assert_eq!((idx, nodes[0].modify_index), (1, 1));
    assert_eq!(
        s.catalog_service("web", &["V1".into()], None).1.len(),
        1,
        "tag match ignores case"
    );
    assert!(s.catalog_service("web", &["v2".into()], None).1.is_empty());
    let (_, services) = s.catalog_services(None);
    assert_eq!(services.get("web").unwrap(), &vec!["v1".to_string()]);
}

#[test]
fn register_validates_and_rejects_checks_for_unknown_services() {
    let mut s = StateStore::new();
    assert!(s
        .ensure_registration(1, &reg("", "a", None, vec![]))
        .is_err());
    assert!(s
        .ensure_registration(1, &reg("n", "", None, vec![]))
        .is_err());
    let e = s.ensure_registration(
        1,
        &reg(
            "n",
            "a",
            None,
            vec![check("c", "nope", HealthStatus::Passing)],
        ),
    );
    assert!(e.unwrap_err().to_string().contains("nope"));
    // A refused registration writes nothing: not the node, not its
    // service (Consul applies one registration in one transaction).
    let e = s.ensure_registration(
        2,
        &reg(
            "n",
            "a",
            Some(("web", "web", &[])),
            vec![
                check("ok", "web", HealthStatus::Passing),
                check("c", "nope", HealthStatus::Passing),
            ],
        ),
    );
    assert!(e.is_err());
    assert!(s.nodes.is_empty() && s.services.is_empty() && s.checks.is_empty());
    // The service registered in the same request counts for its checks.
    s.ensure_registration(
        3,
        &reg(
            "n",
            "a",
            Some(("web", "web", &[])),
            vec![check("ok", "web", HealthStatus::Passing)],
        ),
    )
    .unwrap();
    assert_eq!(s.checks.len(), 1);
}

#[test]
fn health_service_joins_node_checks_and_filters_passing() {
    let mut s = StateStore::new();
    s.ensure_registration(
        1,
        &reg(
            "n1",
            "10.0.0.1",
            Some(("web", "web", &[])),
            vec![check("serfHealth", "", HealthStatus::Passing)],
        ),
    )
    .unwrap();
    s.ensure_registration(
        2,
        &reg(
            "n2",
            "10.0.0.2",
            Some(("web", "web", &[])),
            vec![check("svc", "web", HealthStatus::Warning)],
        ),
    )
    .unwrap();
    let (_, all) = s.health_service("web", &[], false, None);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].checks[0].check_id, "serfHealth");
    let (_, passing) = s.health_service("web", &[], true, None);
    assert_eq!(passing.len(), 1);
    assert_eq!(passing[0].node.node, "n1");

    // A node-level check going critical wakes health watchers of the
    // node's services and moves their index.
    let w = waiter();
    let (before, _) = s.health_service("web", &[], false, Some(&w));
    s.ensure_registration(
        7,
        &reg(
            "n1",
            "10.0.0.1",
            None,
            vec![check("serfHealth", "", HealthStatus::Critical)],
        ),
    )
    .unwrap();
    assert!(fired(&w));
    let (after, res) = s.health_service("web", &[], false, None);
    assert!(after > before);
    assert_eq!(res[0].aggregate_status(), HealthStatus::Critical);
    let (_, crit) = s.health_state(HealthStatus::Critical, None);
    assert_eq!(crit.len(), 1);
    let (_, any) = s.health_state(HealthStatus::Any, None);
    assert_eq!(any.len(), 2);
}

#[test]
fn service_watch_ignores_other_services() {
    let mut s = StateStore::new();
    s.ensure_registration(1, &reg("n1", "a", Some(("web", "web", &[])), vec![]))
        .unwrap();
    let w = waiter();
    s.catalog_service("web", &[], Some(&w));
    s.ensure_registration(2, &reg("n2", "b", Some(("db", "db", &[])), vec![]))
        .unwrap();
    assert!(!fired(&w));
    s.ensure_registration(3, &reg("n3", "c", Some(("web", "web", &[])), vec![]))
        .unwrap();
    assert!(fired(&w));
}

#[test]
fn deregister_node_removes_its_services_and_checks() {
    let mut s = StateStore::new();
    s.ensure_registration(
        1,
        &reg(
            "n1",
            "a",
            Some(("web", "web", &[])),
            vec![
                check("c1", "web", HealthStatus::Passing),
                check("serfHealth", "", HealthStatus::Passing),
            ],
        ),
    )
    .unwrap();
    s.deregister(
        2,
        &DeregisterRequest {
            node: "n1".into(),
            check_id: "c1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.health_node("n1", None).1.len(), 1);
    s.deregister(
        3,
        &DeregisterRequest {
            node: "n1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(s.catalog_node("n1", None).1.is_none());
    assert!(s.catalog_service("web", &[], None).1.is_empty());
    assert!(s.health_state(HealthStatus::Any, None).1.is_empty());
    let (idx, _) = s.catalog_service("web", &[], None);
    assert_eq!(idx, 3, "a removed service's index still moves forward");
}

#[test]
fn snapshot_restore_round_trips_and_wakes_everyone() {
    let mut s = StateStore::new();
    apply(
        &mut s,
        1,
        &Command::KvSet {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 3,
            ttl: None,
        },
    );
    apply(
        &mut s,
        2,
        &Command::Register(reg(
            "n1",
            "a",
            Some(("web", "web", &["t"])),
            vec![check("c", "web", HealthStatus::Passing)],
        )),
    );
    apply(&mut s, 3, &Command::KvDelete { key: "gone".into() });
    let snap = s.snapshot();
    let json = serde_json::to_vec(&snap).unwrap();

    let mut t = StateStore::new();
    let w = waiter();
    t.kv_get("k", Some(&w));
    t.restore(serde_json::from_slice(&json).unwrap());
    assert!(fired(&w), "restore wakes blocked queries");
    assert_eq!(t.snapshot(), snap);
    assert_eq!(t.kv_get("k", None).1.unwrap().flags, 3);
    assert_eq!(
        t.health_service("web", &["t".into()], true, None).1.len(),
        1
    );
    assert_eq!(t.last_index(), 3);
}

#[test]
fn commands_answer_as_the_http_api_expects() {
    let mut s = StateStore::new();
    assert_eq!(
        apply(
            &mut s,
            1,
            &Command::KvCas {
                key: "x".into(),
                value: vec![],
                flags: 0,
                cas: 0,
                ttl: None,
            }
        ),
        CommandResult::Bool(true)
    );
    assert_eq!(
        apply(
            &mut s,
            2,
            &Command::KvCas {
                key: "x".into(),
                value: vec![],
                flags: 0,
                cas: 0,
                ttl: None,
            }
        ),
        CommandResult::Bool(false)
    );
    assert!(matches!(
        apply(&mut s, 3, &Command::Register(reg("", "", None, vec![]))),
        CommandResult::Rejected(_)
    ));
    let (idx, r) = execute(
        &s,
        &Query::KvKeys {
            prefix: String::new(),
            separator: None,
        },
        None,
    );
    assert_eq!((idx, r), (1, QueryResult::Keys(vec!["x".into()])));
    assert_eq!(
        s.last_index(),
        3,
        "every applied entry moves the last index"
    );
}

#[test]
fn a_batch_applies_in_order_under_one_index() {
    let mut s = StateStore::new();
    let batch = Command::Batch(vec![
        Command::KvCas {
            key: "c".into(),
            value: b"1".to_vec(),
            flags: 0,
            cas: 0,
            ttl: None,
        },
        Command::KvCas {
            key: "c".into(),
            value: b"2".to_vec(),
            flags: 0,
            cas: 0,
            ttl: None,
        },
        Command::KvSet {
            key: "d".into(),
            value: b"x".to_vec(),
            flags: 0,
            ttl: None,
        },
        Command::KvDelete { key: "d".into() },
    ]);
    let r = apply(&mut s, 7, &batch);
    assert_eq!(
        r,
        CommandResult::Batch(vec![
            CommandResult::Bool(true),
            CommandResult::Bool(false),
            CommandResult::Bool(true),
            CommandResult::Bool(true)
        ])
    );
    let e = s.kv_get("c", None).1.unwrap();
    assert_eq!(
        (e.value.as_slice(), e.modify_index),
        (&b"1"[..], 7),
        "the second CAS saw the first"
    );
    assert!(s.kv_get("d", None).1.is_none());
}

#[test]
fn reaping_tombstones_drops_them_and_no_prefix_index_goes_back() {
    let mut s = StateStore::new();
    s.kv_set(1, "mix/old", vec![], 0);
    s.kv_set(2, "mix/gone", vec![], 0);
    s.kv_set(3, "dir/a", vec![], 0);
    s.kv_set(4, "live/x", vec![], 0);
    s.kv_delete(5, "mix/gone");
    s.kv_delete_tree(6, "dir/");
    assert_eq!(s.kv_tombstones(), 2);
    assert_eq!(s.kv_tombstone_max(), 6);
    let before = |s: &StateStore, p: &str| s.kv_list(p, None).0;
    assert_eq!(before(&s, "mix/"), 5);
    assert_eq!(before(&s, "dir/"), 6);
    assert_eq!(before(&s, "live/"), 4);

    // A reap below the newest tombstone keeps it.
    assert_eq!(s.kv_reap_tombstones(5), 1);
    assert_eq!(s.kv_tombstones(), 1);
    assert_eq!(s.kv_reap_tombstones(6), 1);
    assert_eq!(s.kv_tombstones(), 0);
    assert_eq!(s.kv_reap_tombstones(6), 0, "a second reap finds nothing");

    // mix/ has only `mix/old` (1) left: without the floor its index would
    // fall from 5 to 1.
    assert!(s.kv_list("mix/", None).0 >= 5);
    assert!(s.kv_keys("mix/", None, None).0 >= 5);
    // dir/ is empty now: the table's index, as before the reap.
    assert_eq!(s.kv_list("dir/", None).0, 6);
    assert!(s.kv_list("live/", None).0 >= 4);
    assert_eq!(s.kv_tombstone_max(), 6, "the GC's hint survives the reap");

    // Snapshots carry the floor.
    let mut r = StateStore::new();
    r.restore(s.snapshot());
    assert_eq!(r.kv_tombstones(), 0);
    assert!(r.kv_list("mix/", None).0 >= 5);
}

#[test]
fn reap_is_a_raft_command() {
    let mut s = StateStore::new();
    s.kv_set(1, "k", vec![], 0);
    s.kv_delete(2, "k");
    assert_eq!(
        apply(&mut s, 3, &Command::KvReapTombstones { reap_index: 2 }),
        CommandResult::Bool(true)
    );
    assert_eq!(s.kv_tombstones(), 0);
    assert_eq!(s.last_index(), 3);
}

#[test]
fn usage_counts_the_tables() {
    let mut s = StateStore::new();
    assert_eq!(s.usage(), super::Usage::default());
    s.ensure_registration(
        1,
        &reg(
            "n1",
            "10.0.0.1",
            Some(("web1", "web", &[])),
            vec![check("c1", "web1", HealthStatus::Passing)],
        ),
    )
    .unwrap();
    s.ensure_registration(
        2,
        &reg(
            "n2",
            "10.0.0.2",
            Some(("web2", "web", &[])),
            vec![check("c2", "web2", HealthStatus::Critical)],
        ),
    )
    .unwrap();
    s.kv_set(3, "a", b"1".to_vec(), 0);
    s.kv_set(4, "b", b"2".to_vec(), 0);
    let u = s.usage();
    assert_eq!((u.nodes, u.services, u.service_instances), (2, 1, 2));
    assert_eq!(u.kv_entries, 2);
    assert_eq!(
        (u.checks_passing, u.checks_warning, u.checks_critical),
        (1, 0, 1)
    );
}

#[test]
fn dns_service_is_health_service_without_checks_or_unhealthy_instances() {
    use super::structs::DnsInstance;
    let mut s = StateStore::new();
    let regs = [
        reg(
            "n1",
            "10.0.0.1",
            Some(("web", "web", &["v1"])),
            vec![check("serfHealth", "", HealthStatus::Passing)],
        ),
        reg(
            "n2",
            "10.0.0.2",
            Some(("web", "web", &[])),
            vec![check("svc", "web", HealthStatus::Warning)],
        ),
        reg(
            "n3",
            "10.0.0.3",
            Some(("web", "web", &[])),
            vec![check("serfHealth", "", HealthStatus::Critical)],
        ),
        // A critical check of another service on the node does not count.
        reg("n4", "10.0.0.4", Some(("web", "web", &[])), vec![]),
        reg(
            "n4",
            "10.0.0.4",
            Some(("db", "db", &[])),
            vec![check("db-check", "db", HealthStatus::Critical)],
        ),
    ];
    for (i, r) in regs.iter().enumerate() {
        s.ensure_registration(i as u64 + 1, r).unwrap();
    }
    let (full_idx, full) = s.health_service("web", &[], false, None);
    let expected: Vec<DnsInstance> = full
        .iter()
        .filter(|n| n.aggregate_status() != HealthStatus::Critical)
        .map(DnsInstance::from)
        .collect();
    let (idx, lean) = s.dns_service("web", &[], false, None);
    assert_eq!(idx, full_idx);
    assert_eq!(lean, expected);
    let nodes: Vec<&str> = lean.iter().map(|i| i.node.as_str()).collect();
    assert_eq!(nodes, ["n1", "n2", "n4"]);
    assert_eq!(lean[1].status, HealthStatus::Warning);
    let (_, passing) = s.dns_service("web", &[], true, None);
    let nodes: Vec<&str> = passing.iter().map(|i| i.node.as_str()).collect();
    assert_eq!(nodes, ["n1", "n4"]);
    let (_, tagged) = s.dns_service("web", &["v1".to_string()], false, None);
    assert_eq!(tagged.len(), 1);

    // The same watch as health_service: a check going critical wakes it.
    let w = waiter();
    let before = match execute(
        &s,
        &Query::DnsService {
            name: "web".into(),
            tags: vec![],
            only_passing: false,
        },
        Some(&w),
    ) {
        (i, QueryResult::DnsInstances { service, instances }) => {
            assert_eq!((service.as_str(), instances.len()), ("web", 3));
            i
        }
        other => panic!("unexpected {other:?}"),
    };
    s.ensure_registration(
        9,
        &reg(
            "n1",
            "10.0.0.1",
            None,
            vec![check("serfHealth", "", HealthStatus::Critical)],
        ),
    )
    .unwrap();
    assert!(fired(&w));
    let (after, lean) = s.dns_service("web", &[], false, None);
    assert!(after > before);
    assert_eq!(lean.len(), 2);
}
