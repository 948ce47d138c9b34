//! The Raft log store and state machine against openraft's own storage
//! conformance suite (`openraft::testing::Suite`: appends, truncation,
//! purging, votes, snapshots, initial state after a restart), on disk, the
//! way a server uses them; and the lazy purge seen from a reopened store.

use meridian::state::StateStore;
use meridian::storage::{self, LogStore, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = storage::open(Some(dir.path())).expect("the Raft store opens");
        let sm = StateMachine::open(&db, meridian::storage::fsm::new_shared(StateStore::new()))
            .expect("the state machine opens");
        Ok((dir, LogStore::new(&db), sm))
    }
}

type S = Suite<TypeConfig, LogStore, StateMachine, OnDisk, tempfile::TempDir>;

/// Runs one of the suite's tests on a fresh store.
fn run<F, Fut>(name: &str, test: F)
where
    F: FnOnce(LogStore, StateMachine) -> Fut,
    Fut: std::future::Future<Output = Result<(), StorageError<u64>>>,
{
    block_on(async {
        let (_dir, store, sm) = OnDisk.build().await?;
        test(store, sm).await
    })
    .unwrap_or_else(|e| panic!("openraft's storage suite, {name}: {e}"));
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Every test of `Suite::test_store` but one, in its order.
/// `get_initial_state_membership_from_log_and_sm` is left out: it appends
/// entry 1 and then entry 3, a hole that `RaftLogStorage::append`'s
/// contract forbids ("There must not be a hole in logs") and that our
/// log refuses rather than store (it would read back as a log that skips
/// an index). What it checks (membership from log against state machine)
/// is openraft's `StorageHelper`, and the neighbouring
/// `get_membership_from_log_*` tests check it with contiguous entries.
#[test]
fn log_store_and_state_machine_pass_openraft_suite() {
    macro_rules! suite {
        ($($t:ident),* $(,)?) => { $( run(stringify!($t), S::$t); )* };
    }
    suite!(
        last_membership_in_log_initial,
        last_membership_in_log,
        last_membership_in_log_multi_step,
        get_membership_initial,
        get_membership_from_log_and_empty_sm,
        get_membership_from_empty_log_and_sm,
        get_membership_from_log_le_sm_last_applied,
        get_membership_from_log_gt_sm_last_applied_1,
        get_membership_from_log_gt_sm_last_applied_2,
        get_initial_state_without_init,
        get_initial_state_with_state,
        get_initial_state_last_log_gt_sm,
        get_initial_state_last_log_lt_sm,
        get_initial_state_log_ids,
        get_initial_state_re_apply_committed,
        save_vote,
        get_log_entries,
        limited_get_log_entries,
        try_get_log_entry,
        initial_logs,
        get_log_state,
        get_log_id,
        last_id_in_log,
        last_applied_state,
        purge_logs_upto_0,
        purge_logs_upto_5,
        purge_logs_upto_20,
        delete_logs_since_11,
        delete_logs_since_0,
        append_to_log,
        snapshot_meta,
        apply_single,
        apply_multiple,
    );
    block_on(S::transfer_snapshot(&OnDisk))
        .unwrap_or_else(|e| panic!("openraft's storage suite, transfer_snapshot: {e}"));
}

fn kv_set(index: u64, key: &str) -> openraft::Entry<TypeConfig> {
    openraft::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(meridian::state::command::Command::KvSet {
            key: key.into(),
            value: b"v".to_vec(),
            flags: 0,
            ttl: None,
        }),
    }
}

/// openraft takes a snapshot builder and goes on applying while the
/// snapshot is built (in a task of its own, the copy on a blocking
/// thread): the snapshot must name the last entry its copy holds, or a
/// server restored from it applies the entries after that name a second
/// time (a CAS that succeeded would now fail, and its result differ).
#[tokio::test]
async fn a_snapshot_names_the_last_entry_it_holds_when_entries_apply_during_its_build() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = storage::open(Some(dir.path())).expect("the Raft store opens");
    let store = meridian::storage::fsm::new_shared(StateStore::new());
    let mut sm = StateMachine::open(&db, store.clone()).expect("the state machine opens");
    sm.apply([kv_set(1, "a"), kv_set(2, "b")])
        .await
        .expect("applied");
    let mut builder = sm.get_snapshot_builder().await;
    sm.apply([kv_set(3, "c")]).await.expect("applied");
    let snap = builder.build_snapshot().await.expect("built");
    let named = snap.meta.last_log_id.map(|l| l.index);

    // Restored into a fresh state machine: what it says it applied is
    // what it holds.
    let dir2 = tempfile::tempdir().expect("a temporary directory");
    let db2 = storage::open(Some(dir2.path())).expect("the Raft store opens");
    let store2 = meridian::storage::fsm::new_shared(StateStore::new());
    let mut sm2 = StateMachine::open(&db2, store2.clone()).expect("the state machine opens");
    sm2.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .expect("installed");
    let (applied, _) = sm2.applied_state().await.expect("applied state");
    let holds_c = meridian::storage::fsm::read(&store2)
        .kv_get("c", None)
        .1
        .is_some();
    assert_eq!(applied.map(|l| l.index), named);
    assert_eq!(
        (named, holds_c),
        (Some(3), true),
        "the copy was taken after entry 3 applied, and says so"
    );
}
