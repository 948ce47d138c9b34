//! Raft log, vote and snapshot persistence in redb. (Being written.)
