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

#[test]
fn log_store_and_state_machine_pass_openraft_suite() {
    Suite::test_all(OnDisk).expect("openraft's storage suite");
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
