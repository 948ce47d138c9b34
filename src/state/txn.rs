//! `/v1/txn`'s KV operations, applied all or nothing under one Raft index:
//! each operation runs in order; the first that fails undoes what the
//! earlier ones wrote and the transaction answers its errors instead.

use serde::{Deserialize, Serialize};

use super::structs::DirEntry;
use super::{StateStore, T_KVS};

/// One KV operation (Consul's `TxnKVOp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: String,
    pub key: String,
    #[serde(with = "serde_bytes", default)]
    pub value: Vec<u8>,
    pub flags: u64,
    pub index: u64,
    pub session: String,
}

/// What a transaction answers: results in order, or the errors that
/// stopped it (nothing was written then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    Results(Vec<Vec<DirEntry>>),
    Errors(Vec<(usize, String)>),
}

impl StateStore {
    pub fn txn(&mut self, index: u64, ops: &[KvOp]) -> TxnOutcome {
        // What the operations may overwrite, to put back on failure.
        let mut saved: Vec<(String, Option<DirEntry>, Option<u64>)> = Vec::new();
        let kv_index = self.table_index(T_KVS);
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let touched: Vec<String> = if op.verb == "delete-tree" {
                self.kvs
                    .range(op.key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&op.key))
                    .map(|(k, _)| k.clone())
                    .collect()
            } else {
                vec![op.key.clone()]
            };
            for k in touched {
                if !saved.iter().any(|(s, _, _)| *s == k) {
                    saved.push((
                        k.clone(),
                        self.kvs.get(&k).cloned(),
                        self.tombstones.get(&k).copied(),
                    ));
                }
            }
            match self.txn_op(index, op) {
                Ok(r) => results.push(r),
                Err(what) => {
                    for (k, entry, tomb) in saved.into_iter().rev() {
                        match entry {
                            Some(e) => self.kvs.insert(k.clone(), e),
                            None => self.kvs.remove(&k),
                        };
                        match tomb {
                            Some(t) => self.tombstones.insert(k.clone(), t),
                            None => self.tombstones.remove(&k),
                        };
                    }
                    self.indexes.insert(T_KVS.to_string(), kv_index);
                    return TxnOutcome::Errors(vec![(i, what)]);
                }
            }
        }
        TxnOutcome::Results(results)
    }

    fn txn_op(&mut self, index: u64, op: &KvOp) -> Result<Vec<DirEntry>, String> {
        let key = op.key.as_str();
        let written = |s: &StateStore| -> Vec<DirEntry> {
            s.kvs
                .get(key)
                .map(|e| DirEntry {
                    value: Vec::new(),
                    ..e.clone()
                })
                .into_iter()
                .collect()
        };
        match op.verb.as_str() {
            "set" => {
                self.kv_set(index, key, op.value.clone(), op.flags);
                Ok(written(self))
            }
            "cas" => {
                if self.kv_cas(index, key, op.value.clone(), op.flags, op.index) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to set key {key:?}, index is stale"))
                }
            }
            "lock" => {
                if !self.sessions().contains_key(&op.session) {
                    Err(format!("invalid session {:?}", op.session))
                } else if self.kv_lock(index, key, op.value.clone(), op.flags, &op.session) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to lock key {key:?}, lock is already held"))
                }
            }
            "unlock" => {
                if self.kv_unlock(index, key, op.value.clone(), op.flags, &op.session) {
                    Ok(written(self))
                } else {
                    Err(format!("failed to unlock key {key:?}, lock isn't held, or is held by another session"))
                }
            }
            "get" => match self.kvs.get(key) {
                Some(e) => Ok(vec![e.clone()]),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "get-tree" => Ok(self
                .kvs
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(_, e)| e.clone())
                .collect()),
            "check-index" => match self.kvs.get(key) {
                Some(e) if e.modify_index == op.index => Ok(Vec::new()),
                Some(e) => Err(format!(
                    "current modify index {} != {}",
                    e.modify_index, op.index
                )),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "check-session" => match self.kvs.get(key) {
                Some(e) if e.session.as_deref() == Some(op.session.as_str()) => Ok(Vec::new()),
                Some(e) => Err(format!(
                    "current session {:?} != {:?}",
                    e.session.clone().unwrap_or_default(),
                    op.session
                )),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            "check-not-exists" => match self.kvs.get(key) {
                Some(_) => Err(format!("key {key:?} exists")),
                None => Ok(Vec::new()),
            },
            "delete" => {
                self.kv_delete(index, key);
                Ok(Vec::new())
            }
            "delete-tree" => {
                self.kv_delete_tree(index, key);
                Ok(Vec::new())
            }
            "delete-cas" => {
                if self.kv_delete_cas(index, key, op.index) {
                    Ok(Vec::new())
                } else {
                    Err(format!("failed to delete key {key:?}, index is stale"))
                }
            }
            other => Err(format!("unknown KV verb {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(verb: &str, key: &str, value: &str, index: u64) -> KvOp {
        KvOp {
            verb: verb.into(),
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags: 0,
            index,
            session: String::new(),
        }
    }

    #[test]
    fn all_or_nothing_with_a_failing_check_in_the_middle() {
        let mut s = StateStore::new();
        s.kv_set(1, "a", b"old".to_vec(), 0);
        let before = s.snapshot();
        let out = s.txn(
            2,
            &[
                op("set", "a", "new", 0),
                op("set", "b", "x", 0),
                op("check-index", "a", "", 1),
                op("delete", "a", "", 0),
            ],
        );
        assert_eq!(
            out,
            TxnOutcome::Errors(vec![(2, "current modify index 2 != 1".into())])
        );
        let after = s.snapshot();
        assert_eq!(before.kvs, after.kvs, "nothing written");
        assert_eq!(before.indexes, after.indexes);

        let out = s.txn(
            3,
            &[
                op("check-index", "a", "", 1),
                op("cas", "a", "v2", 1),
                op("check-not-exists", "c", "", 0),
                op("set", "c", "z", 0),
                op("get", "a", "", 0),
            ],
        );
        let TxnOutcome::Results(r) = out else {
            panic!("{out:?}")
        };
        assert_eq!(r[4][0].value, b"v2");
        assert_eq!(r[1][0].modify_index, 3);
        assert!(r[1][0].value.is_empty(), "writes answer without the value");
        assert_eq!(s.kvs["c"].value, b"z");
    }
}
