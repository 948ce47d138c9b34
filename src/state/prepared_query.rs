//! The prepared-query table (Consul's `state/prepared_query.go`): set,
//! delete, get, list; resolving an ID or a name (exact, then the longest
//! template prefix) into the query to run; and running it against this
//! datacenter's health data. Queries bound to a session go with it
//! (`session_destroy` calls [`StateStore::prepared_queries_of_session_gone`]).
//!
//! Names are unique, a name may not be another query's ID, and only one
//! template may have the empty name (it matches every name).

use rand::seq::SliceRandom;
use thiserror::Error;

use crate::structs::prepared_query::{order_near, tags_pass};
pub use crate::structs::prepared_query::{ExecuteOptions, ExecuteResult, PreparedQuery, Template};

use super::structs::{aggregate, CheckServiceNode, HealthCheck, HealthStatus};
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_PREPARED_QUERIES};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PreparedQueryError {
    #[error("Cannot modify non-existent prepared query: '{0}'")]
    NotFound(String),
    #[error("Query ID already exists")]
    Exists,
    #[error("name '{0}' aliases an existing query name")]
    NameTaken(String),
    #[error("a query template with an empty name already exists")]
    EmptyTemplateTaken,
    #[error("name '{0}' aliases an existing query ID")]
    NameIsId(String),
    #[error("invalid session {0:?}")]
    UnknownSession(String),
}

impl StateStore {
    /// Creates (`create`: the ID must be new) or replaces a query; the
    /// create index survives updates.
    pub fn prepared_query_set(
        &mut self,
        index: u64,
        mut q: PreparedQuery,
        create: bool,
    ) -> Result<(), PreparedQueryError> {
        let existing = self.prepared_queries.get(&q.id);
        match (create, existing) {
            (true, Some(_)) => return Err(PreparedQueryError::Exists),
            (false, None) => return Err(PreparedQueryError::NotFound(q.id)),
            _ => {}
        }
        let create_index = existing.map_or(index, |e| e.create_index);
        for other in self.prepared_queries.values().filter(|o| o.id != q.id) {
            if !q.name.is_empty() && other.name == q.name {
                return Err(PreparedQueryError::NameTaken(q.name));
            }
            if q.name.is_empty() && q.is_template() && other.name.is_empty() && other.is_template()
            {
                return Err(PreparedQueryError::EmptyTemplateTaken);
            }
        }
        if !q.name.is_empty() && self.prepared_queries.contains_key(&q.name) {
            return Err(PreparedQueryError::NameIsId(q.name));
        }
        if !q.session.is_empty() && !self.sessions.contains_key(&q.session) {
            return Err(PreparedQueryError::UnknownSession(q.session));
        }
        q.create_index = create_index;
        q.modify_index = index;
        self.prepared_queries.insert(q.id.clone(), q);
        self.prepared_queries_changed(index);
        Ok(())
    }

    /// True when the query existed.
    pub fn prepared_query_delete(&mut self, index: u64, id: &str) -> bool {
        let gone = self.prepared_queries.remove(id).is_some();
        if gone {
            self.prepared_queries_changed(index);
        }
        gone
    }

    /// Deletes the queries bound to session `id`, which just ended.
    pub(crate) fn prepared_queries_of_session_gone(&mut self, index: u64, id: &str) {
        let before = self.prepared_queries.len();
        self.prepared_queries.retain(|_, q| q.session != id);
        if self.prepared_queries.len() != before {
            self.prepared_queries_changed(index);
        }
    }

    pub fn prepared_query_get(
        &self,
        id: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<PreparedQuery>) {
        self.watch(waiter, WatchKey::PreparedQueries);
        (
            self.table_index(T_PREPARED_QUERIES).max(1),
            self.prepared_queries.get(id).cloned(),
        )
    }

    pub fn prepared_query_list(&self, waiter: Option<&Waiter>) -> (u64, Vec<PreparedQuery>) {
        self.watch(waiter, WatchKey::PreparedQueries);
        (
            self.table_index(T_PREPARED_QUERIES).max(1),
            self.prepared_queries.values().cloned().collect(),
        )
    }

    /// The query `id_or_name` names, templates rendered for the name:
    /// by ID, then by exact name, then the template with the longest name
    /// that prefixes it (Consul's `PreparedQueryResolve`).
    pub fn prepared_query_resolve(&self, id_or_name: &str, segment: &str) -> Option<PreparedQuery> {
        if id_or_name.is_empty() {
            return None;
        }
        let found = self.prepared_queries.get(id_or_name).or_else(|| {
            self.prepared_queries
                .values()
                .find(|q| !q.name.is_empty() && q.name == id_or_name)
        });
        if let Some(q) = found {
            if !q.is_template() {
                return Some(q.clone());
            }
            // An ID names the template itself; a name is rendered.
            let name = if q.id == id_or_name {
                &q.name
            } else {
                id_or_name
            };
            return Template::compile(q)
                .ok()
                .map(|t| t.render(q, name, segment));
        }
        let q = self
            .prepared_queries
            .values()
            .filter(|q| q.is_template() && id_or_name.starts_with(&q.name))
            .max_by_key(|q| q.name.len())?;
        Template::compile(q)
            .ok()
            .map(|t| t.render(q, id_or_name, segment))
    }

    /// Runs a resolved query here: the service's instances without the
    /// critical ones (and the warning ones with `OnlyPassing`), checks in
    /// `IgnoreCheckIDs` not counted, filtered by tags and meta; shuffled,
    /// the `near` node first, cut to `limit`.
    pub fn prepared_query_run(
        &self,
        q: &PreparedQuery,
        opts: &ExecuteOptions,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<CheckServiceNode>) {
        let s = &q.service;
        let (index, all) = self.health_service(&s.service, &[], false, waiter);
        // Meridian has no service mesh: no instance is a Connect endpoint,
        // so a Connect query answers none, as Consul without a mesh does.
        if s.connect || opts.connect {
            return (index, Vec::new());
        }
        let mut nodes: Vec<CheckServiceNode> = all
            .into_iter()
            .filter(|n| {
                let counted: Vec<HealthCheck> = n
                    .checks
                    .iter()
                    .filter(|c| !s.ignore_check_ids.contains(&c.check_id))
                    .cloned()
                    .collect();
                match aggregate(&counted) {
                    HealthStatus::Critical => false,
                    HealthStatus::Warning => !s.only_passing,
                    _ => true,
                }
            })
            .filter(|n| tags_pass(&n.service.tags, &s.tags))
            .filter(|n| {
                s.node_meta
                    .iter()
                    .all(|(k, v)| n.node.meta.get(k) == Some(v))
            })
            .filter(|n| {
                s.service_meta
                    .iter()
                    .all(|(k, v)| n.service.meta.get(k) == Some(v))
            })
            .collect();
        nodes.shuffle(&mut rand::thread_rng());
        let near = if opts.near.is_empty() {
            s.near.as_str()
        } else {
            opts.near.as_str()
        };
        let near_node = match near {
            "_agent" => opts.agent_node.clone(),
            "_ip" => self
                .nodes
                .values()
                .find(|n| !opts.source_ip.is_empty() && n.address == opts.source_ip)
                .map(|n| n.node.clone())
                .unwrap_or_default(),
            other => other.to_string(),
        };
        order_near(&mut nodes, &near_node);
        if opts.limit > 0 {
            nodes.truncate(opts.limit);
        }
        (index, nodes)
    }

    fn prepared_queries_changed(&mut self, index: u64) {
        self.bump(T_PREPARED_QUERIES, index);
        self.fire(WatchKey::PreparedQueries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{apply, Command};
    use crate::state::session::Session;
    use crate::state::structs::{NodeService, RegisterRequest};
    use crate::structs::prepared_query::{QueryTemplate, ServiceQuery};

    fn query(id: &str, name: &str, service: &str) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            service: ServiceQuery {
                service: service.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn register(
        s: &mut StateStore,
        index: u64,
        node: &str,
        id: &str,
        tags: &[&str],
        status: HealthStatus,
    ) {
        let req = RegisterRequest {
            node: node.into(),
            address: format!("10.0.0.{index}"),
            service: Some(NodeService {
                id: id.into(),
                service: "web".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                port: 80,
                ..Default::default()
            }),
            checks: vec![HealthCheck {
                node: node.into(),
                check_id: format!("{id}-check"),
                name: "c".into(),
                status,
                service_id: id.into(),
                service_name: "web".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        s.ensure_registration(index, &req).expect("registers");
    }

    #[test]
    fn create_update_delete() {
        let mut s = StateStore::new();
        s.prepared_query_set(5, query("a", "web", "web"), true)
            .expect("created");
        let (i, got) = s.prepared_query_get("a", None);
        assert_eq!(i, 5);
        let got = got.expect("stored");
        assert_eq!((got.create_index, got.modify_index), (5, 5));
        let mut upd = query("a", "web2", "web");
        upd.service.only_passing = true;
        s.prepared_query_set(7, upd, false).expect("updated");
        let got = s.prepared_query_get("a", None).1.expect("stored");
        assert_eq!((got.create_index, got.modify_index), (5, 7));
        assert_eq!(got.name, "web2");
        assert_eq!(
            s.prepared_query_set(8, query("nope", "x", "web"), false),
            Err(PreparedQueryError::NotFound("nope".into()))
        );
        assert!(s.prepared_query_delete(9, "a"));
        assert!(!s.prepared_query_delete(10, "a"));
        assert_eq!(s.prepared_query_list(None), (9, vec![]));
    }

    #[test]
    fn names_are_unique_and_never_ids() {
        let mut s = StateStore::new();
        s.prepared_query_set(1, query("a", "web", "web"), true)
            .expect("created");
        assert_eq!(
            s.prepared_query_set(2, query("b", "web", "web"), true),
            Err(PreparedQueryError::NameTaken("web".into()))
        );
        assert_eq!(
            s.prepared_query_set(2, query("b", "a", "web"), true),
            Err(PreparedQueryError::NameIsId("a".into()))
        );
        // Any number of unnamed queries, one unnamed template.
        s.prepared_query_set(3, query("c", "", "web"), true)
            .expect("unnamed");
        s.prepared_query_set(4, query("d", "", "web"), true)
            .expect("unnamed");
        let mut t = query("e", "", "${name.full}");
        t.template.kind = "name_prefix_match".into();
        s.prepared_query_set(5, t.clone(), true).expect("template");
        t.id = "f".into();
        assert_eq!(
            s.prepared_query_set(6, t, true),
            Err(PreparedQueryError::EmptyTemplateTaken)
        );
    }

    #[test]
    fn session_bound_query_goes_with_the_session() {
        let mut s = StateStore::new();
        let mut q = query("a", "web", "web");
        q.session = "s1".into();
        assert_eq!(
            s.prepared_query_set(1, q.clone(), true),
            Err(PreparedQueryError::UnknownSession("s1".into()))
        );
        register(&mut s, 2, "n1", "web1", &[], HealthStatus::Passing);
        s.session_create(
            3,
            Session {
                id: "s1".into(),
                node: "n1".into(),
                ..Default::default()
            },
        )
        .expect("session");
        s.prepared_query_set(4, q, true).expect("bound");
        s.prepared_query_set(5, query("b", "other", "web"), true)
            .expect("free");
        // Through Raft, as the leader's TTL timer would end it.
        apply(&mut s, 6, &Command::SessionDestroy { id: "s1".into() });
        assert_eq!(s.prepared_query_get("a", None), (6, None));
        assert!(s.prepared_query_get("b", None).1.is_some());
    }

    #[test]
    fn snapshot_round_trip_keeps_queries() {
        let mut s = StateStore::new();
        let mut t = query("t", "geo-", "${match(1)}");
        t.template = QueryTemplate {
            kind: "name_prefix_match".into(),
            regexp: "^geo-(.*)$".into(),
            remove_empty_tags: false,
        };
        s.prepared_query_set(3, t, true).expect("template");
        s.prepared_query_set(4, query("a", "web", "web"), true)
            .expect("query");
        let snap = s.snapshot();
        let json = serde_json::to_vec(&snap).expect("encodes");
        let back: crate::state::StoreSnapshot = serde_json::from_slice(&json).expect("decodes");
        let mut r = StateStore::new();
        r.restore(back);
        assert_eq!(r.prepared_query_list(None), s.prepared_query_list(None));
        assert_eq!(
            r.prepared_query_resolve("geo-db", "")
                .map(|q| q.service.service),
            Some("db".into())
        );
    }

    #[test]
    fn resolves_id_then_name_then_longest_template() {
        let mut s = StateStore::new();
        let mut any = query("t0", "", "${name.full}");
        any.template.kind = "name_prefix_match".into();
        let mut geo = query("t1", "geo-", "db-${name.suffix}");
        geo.template.kind = "name_prefix_match".into();
        s.prepared_query_set(1, any, true).expect("t0");
        s.prepared_query_set(2, geo, true).expect("t1");
        s.prepared_query_set(3, query("q1", "geo-exact", "exact"), true)
            .expect("q1");
        let svc =
            |s: &StateStore, n: &str| s.prepared_query_resolve(n, "").map(|q| q.service.service);
        assert_eq!(svc(&s, "q1"), Some("exact".into()));
        assert_eq!(svc(&s, "geo-exact"), Some("exact".into()));
        assert_eq!(svc(&s, "geo-eu"), Some("db-eu".into()));
        assert_eq!(svc(&s, "redis"), Some("redis".into()));
        assert_eq!(
            svc(&s, "t1"),
            Some("db-".into()),
            "an ID renders with the template's name"
        );
        assert_eq!(svc(&s, ""), None);
        s.prepared_query_delete(4, "t0");
        assert_eq!(svc(&s, "redis"), None);
    }

    #[test]
    fn run_filters_health_tags_meta_and_limits() {
        let mut s = StateStore::new();
        register(
            &mut s,
            1,
            "n1",
            "w1",
            &["primary", "v1"],
            HealthStatus::Passing,
        );
        register(&mut s, 2, "n2", "w2", &["v1"], HealthStatus::Warning);
        register(&mut s, 3, "n3", "w3", &["v1"], HealthStatus::Critical);
        let mut q = query("a", "web", "web");
        let run = |s: &StateStore, q: &PreparedQuery, opts: &ExecuteOptions| {
            let mut v: Vec<String> = s
                .prepared_query_run(q, opts, None)
                .1
                .into_iter()
                .map(|n| n.node.node)
                .collect();
            v.sort();
            v
        };
        let o = ExecuteOptions::default();
        assert_eq!(run(&s, &q, &o), vec!["n1", "n2"]);
        q.service.only_passing = true;
        assert_eq!(run(&s, &q, &o), vec!["n1"]);
        q.service.only_passing = false;
        q.service.ignore_check_ids = vec!["w3-check".into()];
        assert_eq!(run(&s, &q, &o), vec!["n1", "n2", "n3"]);
        q.service.tags = vec!["!primary".into()];
        assert_eq!(run(&s, &q, &o), vec!["n2", "n3"]);
        q.service.tags = vec!["PRIMARY".into()];
        assert_eq!(run(&s, &q, &o), vec!["n1"]);
        q.service.tags.clear();
        q.service.node_meta.insert("rack".into(), "a".into());
        assert!(run(&s, &q, &o).is_empty());
        q.service.node_meta.clear();
        let limited = ExecuteOptions {
            limit: 1,
            near: "n2".into(),
            ..Default::default()
        };
        assert_eq!(run(&s, &q, &limited), vec!["n2"]);
        let by_agent = ExecuteOptions {
            near: "_agent".into(),
            agent_node: "n3".into(),
            ..Default::default()
        };
        assert_eq!(
            s.prepared_query_run(&q, &by_agent, None).1[0].node.node,
            "n3"
        );
        let by_ip = ExecuteOptions {
            near: "_ip".into(),
            source_ip: "10.0.0.2".into(),
            ..Default::default()
        };
        assert_eq!(s.prepared_query_run(&q, &by_ip, None).1[0].node.node, "n2");
        q.service.connect = true;
        assert!(run(&s, &q, &o).is_empty());
    }
}
