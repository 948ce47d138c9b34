//! The coordinate table: each node's LAN network coordinate (per network
//! segment, always `""` here), written in batches by the servers from
//! what agents send them, and read by `/v1/coordinate/*` and by every
//! `?near=` sort. A coordinate lives as long as its node: updates for a
//! node the catalog does not know are dropped (a late update must not
//! resurrect a deregistered node's row), and deleting a node deletes its
//! coordinates.

use super::query::QueryResult;
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_COORDINATES};
use crate::structs::coordinate::{Coordinate, CoordinateEntry};

impl StateStore {
    /// Stores the valid updates for known nodes; returns how many were.
    pub fn coordinate_batch_update(&mut self, index: u64, updates: &[CoordinateEntry]) -> usize {
        let mut stored = 0;
        for u in updates {
            // Dimensions are checked against the defaults: a coordinate
            // that cannot be compared with the others is as bad as a NaN.
            if !self.nodes.contains_key(&u.node)
                || !u.coord.is_valid()
                || !u.coord.is_compatible_with(&Coordinate::default())
            {
                continue;
            }
            self.coordinates
                .insert((u.node.clone(), u.segment.clone()), u.coord.clone());
            stored += 1;
        }
        if stored > 0 {
            self.bump(T_COORDINATES, index);
            self.fire(WatchKey::Coordinates);
        }
        stored
    }

    /// A node's rows go with it (called from the node's deletion).
    pub(super) fn coordinates_delete_node(&mut self, index: u64, node: &str) {
        let before = self.coordinates.len();
        self.coordinates.retain(|(n, _), _| n != node);
        if self.coordinates.len() != before {
            self.bump(T_COORDINATES, index);
            self.fire(WatchKey::Coordinates);
        }
    }

    /// Every node's coordinates, by node name then segment.
    pub fn coordinates(&self, waiter: Option<&Waiter>) -> (u64, Vec<CoordinateEntry>) {
        self.watch(waiter, WatchKey::Coordinates);
        (self.table_index(T_COORDINATES), self.coordinate_rows(None))
    }

    /// One node's coordinates (one per segment; none when unknown).
    pub fn coordinate_node(
        &self,
        node: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<CoordinateEntry>) {
        self.watch(waiter, WatchKey::Coordinates);
        (
            self.table_index(T_COORDINATES),
            self.coordinate_rows(Some(node)),
        )
    }

    fn coordinate_rows(&self, node: Option<&str>) -> Vec<CoordinateEntry> {
        let entry = |((node, segment), coord): (&(String, String), &Coordinate)| CoordinateEntry {
            node: node.clone(),
            segment: segment.clone(),
            coord: coord.clone(),
        };
        match node {
            Some(n) => self
                .coordinates
                .range((n.to_string(), String::new())..)
                .take_while(|((k, _), _)| k == n)
                .map(entry)
                .collect(),
            None => self.coordinates.iter().map(entry).collect(),
        }
    }

    /// Every row, for snapshots.
    pub(super) fn coordinate_rows_all(&self) -> Vec<CoordinateEntry> {
        self.coordinate_rows(None)
    }

    /// The coordinate a node has in the default segment.
    pub fn coordinate_of(&self, node: &str) -> Option<&Coordinate> {
        self.coordinates.get(&(node.to_string(), String::new()))
    }

    /// Consul's `?near=`: a list answer sorted by the estimated round
    /// trip from `near`'s coordinate, nodes without one last, the order
    /// otherwise kept (a stable sort). Nothing moves when `near` has no
    /// coordinate: there is nothing to measure from.
    pub fn sort_by_distance(&self, near: &str, result: &mut QueryResult) {
        let Some(from) = self.coordinate_of(near) else {
            return;
        };
        let dist = |node: &str| -> f64 {
            match self.coordinate_of(node) {
                Some(c) if c.is_compatible_with(from) => from.distance_secs(c),
                _ => f64::INFINITY,
            }
        };
        // Cached per element: a distance is eight multiplications and a
        // square root, a map lookup more than that.
        fn by<T>(v: &mut Vec<T>, key: impl Fn(&T) -> f64) {
            let mut keyed: Vec<(f64, T)> = std::mem::take(v)
                .into_iter()
                .map(|x| (key(&x), x))
                .collect();
            // Stable, and infinity (no coordinate) after every distance.
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            *v = keyed.into_iter().map(|(_, x)| x).collect();
        }
        match result {
            QueryResult::Nodes(v) => by(v, |n| dist(&n.node)),
            QueryResult::ServiceNodes(v) => by(v, |s| dist(&s.node)),
            QueryResult::CheckServiceNodes(v) => by(v, |c| dist(&c.node.node)),
            QueryResult::Checks(v) => by(v, |c| dist(&c.node)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{apply, Command};
    use crate::structs::catalog::{DeregisterRequest, RegisterRequest};

    fn at(x: f64) -> Coordinate {
        let mut c = Coordinate::default();
        c.vec[0] = x;
        c
    }

    fn row(node: &str, x: f64) -> CoordinateEntry {
        CoordinateEntry {
            node: node.into(),
            segment: String::new(),
            coord: at(x),
        }
    }

    fn store_with(nodes: &[&str]) -> StateStore {
        let mut s = StateStore::new();
        for (i, n) in nodes.iter().enumerate() {
            let r = RegisterRequest {
                node: n.to_string(),
                address: "10.0.0.1".into(),
                ..Default::default()
            };
            apply(&mut s, i as u64 + 1, &Command::Register(r));
        }
        s
    }

    #[test]
    fn updates_for_unknown_nodes_or_bad_coordinates_are_dropped() {
        let mut s = store_with(&["a", "b"]);
        let mut nan = row("b", 0.0);
        nan.coord.adjustment = f64::NAN;
        let mut short = row("a", 0.0);
        short.coord.vec.truncate(3);
        let rows = vec![row("a", 0.1), row("ghost", 0.2), nan, short];
        assert_eq!(s.coordinate_batch_update(10, &rows), 1);
        let (idx, all) = s.coordinates(None);
        assert_eq!(idx, 10);
        assert_eq!(all, vec![row("a", 0.1)]);
        // Nothing stored: the table index stays.
        assert_eq!(s.coordinate_batch_update(11, &[row("ghost", 0.0)]), 0);
        assert_eq!(s.coordinates(None).0, 10);
    }

    #[test]
    fn a_node_takes_its_coordinates_along_and_snapshots_keep_them() {
        let mut s = store_with(&["a", "b"]);
        apply(
            &mut s,
            5,
            &Command::CoordinateBatchUpdate(vec![row("a", 0.1), row("b", 0.2)]),
        );
        let snap = s.snapshot();
        assert_eq!(snap.coordinates.len(), 2);
        let mut restored = StateStore::new();
        restored.restore(snap);
        assert_eq!(restored.coordinate_node("b", None).1, vec![row("b", 0.2)]);

        let w = std::sync::Arc::new(tokio::sync::Notify::new());
        let _ = s.coordinates(Some(&w));
        let dereg = DeregisterRequest {
            node: "a".into(),
            ..Default::default()
        };
        apply(&mut s, 6, &Command::Deregister(dereg));
        assert_eq!(s.coordinates(None), (6, vec![row("b", 0.2)]));
        assert!(s.coordinate_node("a", None).1.is_empty());
        // The blocked reader of the table was woken.
        let fut = w.notified();
        futures::pin_mut!(fut);
        assert!(fut.as_mut().enable());
    }

    #[test]
    fn near_sorts_nearest_first_and_nodes_without_coordinates_last() {
        let mut s = store_with(&["a", "b", "c", "d", "e"]);
        s.coordinate_batch_update(
            9,
            &[
                row("a", 0.0),
                row("b", 0.002),
                row("c", 0.010),
                row("e", 0.030),
            ],
        );
        let (_, mut r) =
            crate::state::query::execute(&s, &crate::state::query::Query::CatalogNodes, None);
        s.sort_by_distance("c", &mut r);
        let QueryResult::Nodes(nodes) = &r else {
            panic!("{r:?}")
        };
        let order: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(order, vec!["c", "b", "a", "e", "d"]);
        // From a node without a coordinate nothing moves.
        let (_, mut plain) =
            crate::state::query::execute(&s, &crate::state::query::Query::CatalogNodes, None);
        let before = plain.clone();
        s.sort_by_distance("d", &mut plain);
        assert_eq!(plain, before);
    }
}
