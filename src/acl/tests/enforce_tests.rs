//! Which permission each request needs ([`Enforcer`]) and how list
//! answers are filtered.

use std::collections::BTreeMap;

use super::common::{compile, DENY, DENY_LIST};
use crate::acl::{Authorizer, Enforcer, Lookup};
use crate::structs::catalog::{DeregisterRequest, DirEntry, Node, NodeService, RegisterRequest};
use crate::structs::prepared_query::PreparedQuery;
use crate::structs::query::{Query, QueryResult};
use crate::structs::session::Session;
use crate::structs::txn::KvOp;
use crate::structs::Command;

const ID: &str = "6a1253d2-1785-24fd-91c2-f8e78c745511";

/// Session `s1` is on node `n1` (at 10.0.0.1 in dc1); service instance
/// `web-1` on `n1` is `web`.
struct Store;

impl Lookup for Store {
    fn session_node(&self, id: &str) -> Option<String> {
        (id == "s1").then(|| "n1".to_string())
    }
    fn service_name(&self, node: &str, service_id: &str) -> Option<String> {
        (node == "n1" && service_id == "web-1").then(|| "web".to_string())
    }
    fn node(&self, name: &str) -> Option<Node> {
        (name == "n1").then(n1_row)
    }
    fn prepared_query(&self, id: &str) -> Option<PreparedQuery> {
        (id == "pq1").then(|| PreparedQuery {
            id: "pq1".into(),
            name: "web-query".into(),
            ..Default::default()
        })
    }
}

/// Node `n1` as the store holds it.
fn n1_row() -> Node {
    Node {
        node: "n1".into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        ..Default::default()
    }
}

fn app() -> Authorizer {
    compile(
        &[(
            "app",
            r#"
key_prefix "app/" { policy = "write" }
node "n1" { policy = "read" }
service "web" { policy = "write" }
session "n1" { policy = "write" }
"#,
        )],
        DENY,
    )
}

fn enforcer(authz: &Authorizer) -> Enforcer<'_> {
    Enforcer {
        authz,
        accessor_id: ID,
    }
}

fn set(key: &str) -> Command {
    Command::KvSet {
        key: key.into(),
        value: vec![],
        flags: 0,
        ttl: None,
    }
}

#[test]
fn kv_writes_need_key_write_and_a_tree_delete_the_whole_prefix() {
    let a = app();
    let e = enforcer(&a);
    assert!(e.write(&set("app/x"), &Store).is_ok());
    let refused = e.write(&set("db/x"), &Store).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "Permission denied: token with AccessorID '{ID}' lacks permission 'key:write' \
             on \"db/x\", denied by default_policy \"deny\""
        )
    );
    let tree = |prefix: &str| Command::KvDeleteTree {
        prefix: prefix.into(),
    };
    assert!(e.write(&tree("app/"), &Store).is_ok());
    assert!(e.write(&tree("ap"), &Store).is_err());
    let batch = Command::Batch(vec![set("app/a"), set("db/a")]);
    assert!(e.write(&batch, &Store).is_err(), "every command of a batch");
}

#[test]
fn transactions_check_each_operation() {
    let a = app();
    let e = enforcer(&a);
    let op = |verb: &str, key: &str| KvOp {
        verb: verb.into(),
        key: key.into(),
        value: vec![],
        flags: 0,
        index: 0,
        session: String::new(),
        ttl: None,
    };
    assert!(e
        .write(
            &Command::Txn(vec![op("set", "app/a"), op("get", "app/b")]),
            &Store
        )
        .is_ok());
    let refused = e
        .write(
            &Command::Txn(vec![op("set", "app/a"), op("get", "db/b")]),
            &Store,
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("'key:read' on \"db/b\""),
        "{refused}"
    );
}

#[test]
fn catalog_and_session_writes_need_node_service_and_session_write() {
    let a = app();
    let e = enforcer(&a);
    let reg = RegisterRequest {
        node: "n1".into(),
        service: Some(NodeService {
            service: "web".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // node "n1" is read only.
    let refused = e.write(&Command::Register(reg), &Store).unwrap_err();
    assert!(
        refused.to_string().contains("'node:write' on \"n1\""),
        "{refused}"
    );
    // A check of a service registered with it is the service's.
    let a2 = compile(
        &[(
            "n",
            r#"node "n1" { policy = "write" }
service "web" { policy = "write" }"#,
        )],
        DENY,
    );
    let reg = RegisterRequest {
        node: "n1".into(),
        service: Some(NodeService {
            id: "web-2".into(),
            service: "web".into(),
            ..Default::default()
        }),
        check: Some(crate::structs::catalog::HealthCheck {
            node: "n1".into(),
            service_id: "web-2".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(enforcer(&a2).write(&Command::Register(reg), &Store).is_ok());
    // A service the token may write goes; the node alone does not.
    let dereg = |service_id: &str| {
        Command::Deregister(DeregisterRequest {
            node: "n1".into(),
            service_id: service_id.into(),
            ..Default::default()
        })
    };
    assert!(e.write(&dereg("web-1"), &Store).is_ok());
    assert!(e.write(&dereg(""), &Store).is_err());
    let create = Command::SessionCreate(Session {
        node: "n1".into(),
        ..Default::default()
    });
    assert!(e.write(&create, &Store).is_ok());
    let destroy = |id: &str| Command::SessionDestroy { id: id.into() };
    assert!(e.write(&destroy("s1"), &Store).is_ok());
    // Unknown: fails in the store as without ACLs.
    assert!(e.write(&destroy("nope"), &Store).is_ok());
    let other = Command::SessionCreate(Session {
        node: "n2".into(),
        ..Default::default()
    });
    assert!(e.write(&other, &Store).is_err());
}

#[test]
fn acl_and_snapshot_requests_need_acl_permissions_bootstrap_none() {
    let a = app();
    let e = enforcer(&a);
    let refused = e.read(&Query::AclPolicyList).unwrap_err();
    assert!(refused.to_string().contains("'acl:read'"), "{refused}");
    assert!(e.read(&Query::Snapshot).is_err());
    assert!(e.read(&Query::AclBootstrapState).is_ok());
    let m = Authorizer::management();
    let e = enforcer(&m);
    assert!(e.read(&Query::Snapshot).is_ok());
    assert!(e.read(&Query::AclPolicyList).is_ok());
}

#[test]
fn reads_check_the_key_and_lists_are_filtered() {
    let a = app();
    let e = enforcer(&a);
    assert!(e
        .read(&Query::KvGet {
            key: "app/x".into()
        })
        .is_ok());
    assert!(e.read(&Query::KvGet { key: "db/x".into() }).is_err());
    let list = Query::KvList { prefix: "".into() };
    assert!(e.read(&list).is_ok(), "listing is filtered, not refused");
    let entry = |k: &str| DirEntry {
        key: k.into(),
        ..Default::default()
    };
    let mut r = QueryResult::Entries(vec![entry("app/x"), entry("db/x")]);
    assert!(e.filter(&mut r));
    assert_eq!(r, QueryResult::Entries(vec![entry("app/x")]));
    let mut r = QueryResult::Entries(vec![entry("app/x")]);
    assert!(!e.filter(&mut r), "nothing dropped, nothing said");

    let node = |n: &str| Node {
        node: n.into(),
        ..Default::default()
    };
    let mut r = QueryResult::Nodes(vec![node("n1"), node("n2")]);
    assert!(e.filter(&mut r));
    assert_eq!(r, QueryResult::Nodes(vec![node("n1")]));
    let mut services = BTreeMap::new();
    services.insert("web".to_string(), vec![]);
    services.insert("db".to_string(), vec![]);
    let mut r = QueryResult::Services(services);
    assert!(e.filter(&mut r));
    let QueryResult::Services(s) = r else {
        unreachable!()
    };
    assert_eq!(s.keys().collect::<Vec<_>>(), ["web"]);

    // With enable_key_list_policy a listing needs key:list on the prefix.
    let listing = compile(
        &[("l", r#"key_prefix "app/" { policy = "list" }"#)],
        DENY_LIST,
    );
    let e = enforcer(&listing);
    assert!(e
        .read(&Query::KvList {
            prefix: "app/".into()
        })
        .is_ok());
    let refused = e.read(&list).unwrap_err();
    assert!(refused.to_string().contains("'key:list'"), "{refused}");
}

#[test]
fn token_secrets_are_hidden_from_acl_read_and_shown_to_acl_write() {
    use crate::structs::acl::AclToken;
    let token = || AclToken {
        accessor_id: ID.into(),
        secret_id: "b5d3c1a0-6f0e-4a8c-9d2e-0a1b2c3d4e5f".into(),
        ..Default::default()
    };
    let answers = || {
        [
            QueryResult::AclToken(Some(Box::new(token()))),
            QueryResult::AclTokens(vec![token().stub(), token().stub()]),
        ]
    };
    let secrets = |r: &QueryResult| -> Vec<String> {
        match r {
            QueryResult::AclToken(Some(t)) => vec![t.secret_id.clone()],
            QueryResult::AclTokens(v) => v.iter().map(|t| t.secret_id.clone()).collect(),
            other => panic!("unexpected {other:?}"),
        }
    };

    let reader = compile(&[("r", r#"acl = "read""#)], DENY);
    for mut r in answers() {
        // Hiding a secret drops nothing: no filtered header.
        assert!(!enforcer(&reader).filter(&mut r));
        assert!(secrets(&r).iter().all(|s| s == crate::acl::REDACTED_SECRET));
    }
    let writer = compile(&[("w", r#"acl = "write""#)], DENY);
    for a in [writer, Authorizer::management()] {
        for mut r in answers() {
            assert!(!enforcer(&a).filter(&mut r));
            assert!(secrets(&r).iter().all(|s| s.starts_with("b5d3c1a0")));
        }
    }
}

#[test]
fn a_service_registration_that_leaves_the_node_alone_needs_only_service_write() {
    // Consul's vetRegisterWithACL: a service token without node:write.
    let a = compile(&[("svc", r#"service "api" { policy = "write" }"#)], DENY);
    let e = enforcer(&a);
    let api = |id: &str| NodeService {
        id: id.into(),
        service: "api".into(),
        ..Default::default()
    };
    let register = |r: RegisterRequest| e.write(&Command::Register(r), &Store);
    // The node row re-posted unchanged, as anti-entropy sends it.
    let same_node = RegisterRequest {
        node: "n1".into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        service: Some(api("api-1")),
        ..Default::default()
    };
    assert!(register(same_node.clone()).is_ok());
    // SkipNodeUpdate with nothing but the node's name.
    let skip = RegisterRequest {
        node: "n1".into(),
        skip_node_update: true,
        service: Some(api("api-1")),
        ..Default::default()
    };
    assert!(register(skip.clone()).is_ok());
    // Changing the node, or creating one, still needs node:write.
    let moved = RegisterRequest {
        address: "10.0.0.2".into(),
        ..same_node.clone()
    };
    let refused = register(moved).unwrap_err().to_string();
    assert!(refused.contains("'node:write' on \"n1\""), "{refused}");
    let new_node = RegisterRequest {
        node: "n2".into(),
        ..skip.clone()
    };
    assert!(register(new_node).is_err());
    // A node-level check is the node's, whoever carries it.
    let node_check = RegisterRequest {
        check: Some(crate::structs::catalog::HealthCheck {
            node: "n1".into(),
            check_id: "mem".into(),
            ..Default::default()
        }),
        ..skip.clone()
    };
    let refused = register(node_check).unwrap_err().to_string();
    assert!(refused.contains("'node:write' on \"n1\""), "{refused}");
    // Taking over instance web-1 (a `web`) under the name `api` needs
    // write on `web` as well.
    let takeover = RegisterRequest {
        service: Some(api("web-1")),
        ..skip
    };
    let refused = register(takeover).unwrap_err().to_string();
    assert!(refused.contains("'service:write' on \"web\""), "{refused}");
}

fn pq(id: &str, name: &str, token: &str) -> PreparedQuery {
    PreparedQuery {
        id: id.into(),
        name: name.into(),
        token: token.into(),
        ..Default::default()
    }
}

fn query_rules() -> Authorizer {
    compile(
        &[(
            "queries",
            r#"
query_prefix "web-" { policy = "write" }
query_prefix "db-" { policy = "read" }
"#,
        )],
        DENY,
    )
}

#[test]
fn prepared_query_writes_need_query_write_on_the_new_and_the_stored_name() {
    let a = query_rules();
    let e = enforcer(&a);
    let set = |q: PreparedQuery| Command::PreparedQuerySet {
        query: Box::new(q),
        create: false,
    };
    assert!(e.write(&set(pq("new", "web-a", "")), &Store).is_ok());
    let refused = e.write(&set(pq("new", "db-a", "")), &Store).unwrap_err();
    assert!(refused
        .to_string()
        .contains("lacks permission 'query:write' on \"db-a\""));
    // Unnamed queries need nothing, as in Consul.
    assert!(e.write(&set(pq("new", "", "")), &Store).is_ok());
    // `pq1` is stored as `web-query`: renaming it needs write on both.
    assert!(e.write(&set(pq("pq1", "web-b", "")), &Store).is_ok());
    let b = compile(
        &[("b", r#"query_prefix "other" { policy = "write" }"#)],
        DENY,
    );
    let e = enforcer(&b);
    assert!(e.write(&set(pq("pq1", "other", "")), &Store).is_err());
    let del = Command::PreparedQueryDelete { id: "pq1".into() };
    assert!(e.write(&del, &Store).is_err());
    assert!(enforcer(&a).write(&del, &Store).is_ok());
}

#[test]
fn prepared_query_lists_keep_readable_names_and_hide_tokens() {
    let a = query_rules();
    let e = enforcer(&a);
    let mut r = QueryResult::PreparedQueries(vec![
        pq("1", "web-a", "secret"),
        pq("2", "db-a", ""),
        pq("3", "cache", ""),
        pq("4", "", ""),
    ]);
    assert!(e.filter(&mut r), "some were dropped");
    let QueryResult::PreparedQueries(v) = r else {
        panic!("still a list")
    };
    let names: Vec<&str> = v.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["web-a", "db-a"]);
    assert_eq!(v[0].token, "<hidden>");
    let mut one = QueryResult::PreparedQuery(Some(Box::new(pq("3", "cache", ""))));
    assert!(e.filter(&mut one));
    assert_eq!(one, QueryResult::PreparedQuery(None));
    // A management token sees everything, tokens too.
    let m = Authorizer::management();
    let mut r = QueryResult::PreparedQueries(vec![pq("1", "web-a", "secret"), pq("4", "", "")]);
    assert!(!enforcer(&m).filter(&mut r));
    let QueryResult::PreparedQueries(v) = r else {
        panic!("still a list")
    };
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].token, "secret");
}
