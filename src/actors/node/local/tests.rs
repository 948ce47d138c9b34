//! Local state as pure data: check naming, reloads, maintenance, expiry
//! and the tokens services and checks sync with.

use super::*;

fn web(checks: Vec<CheckDefinition>) -> ServiceDefinition {
    ServiceDefinition {
        name: "web".into(),
        port: 80,
        checks,
        ..Default::default()
    }
}

fn ttl(secs: u64) -> CheckDefinition {
    CheckDefinition {
        ttl: Some(Duration::from_secs(secs)),
        ..Default::default()
    }
}

#[test]
fn check_ids_names_and_kept_state() {
    let mut l = Local::new("n1");
    l.add_service(&web(vec![ttl(10), ttl(20)]), true);
    assert!(l.checks.contains_key("service:web:1") && l.checks.contains_key("service:web:2"));
    assert_eq!(l.checks["service:web:1"].row.name, "Service 'web' check");
    l.set_status("service:web:1", HealthStatus::Passing, "ok")
        .unwrap();
    // Re-registered with one check changed: the unchanged one keeps its state.
    l.add_service(&web(vec![ttl(10), ttl(30)]), true);
    assert_eq!(l.checks["service:web:1"].row.status, HealthStatus::Passing);
    assert_eq!(l.checks["service:web:2"].row.status, HealthStatus::Critical);
    // With a single check, IDs lose the suffix and stale ones go.
    l.add_service(&web(vec![ttl(10)]), true);
    assert_eq!(l.checks.keys().collect::<Vec<_>>(), vec!["service:web"]);
}

#[test]
fn bad_checks_are_refused_with_reasons() {
    let mut l = Local::new("n1");
    let both = CheckDefinition {
        name: "x".into(),
        http: "http://a".into(),
        tcp: "a:1".into(),
        interval: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    assert!(
        matches!(l.add_check(both, false), Err(LocalError::Invalid(m)) if m.contains("http and tcp"))
    );
    let orphan = CheckDefinition {
        name: "x".into(),
        service_id: "nope".into(),
        ..ttl(5)
    };
    assert!(matches!(
        l.add_check(orphan, false),
        Err(LocalError::Invalid(m)) if m.contains("does not exist")
    ));
    let no_interval = CheckDefinition {
        name: "x".into(),
        tcp: "a:1".into(),
        ..Default::default()
    };
    assert!(matches!(
        l.add_check(no_interval, false),
        Err(LocalError::Invalid(_))
    ));
}

#[test]
fn reload_replaces_file_entries_and_keeps_api_ones() {
    let mut l = Local::new("n1");
    l.add_service(&web(vec![ttl(10)]), true);
    let api = ServiceDefinition {
        name: "api".into(),
        ..Default::default()
    };
    l.add_service(&api, false);
    l.set_status("service:web", HealthStatus::Passing, "")
        .unwrap();
    let db = ServiceDefinition {
        name: "db".into(),
        ..Default::default()
    };
    let errors = l.reload(&[web(vec![ttl(10)]), db], &[]);
    assert!(errors.is_empty());
    assert_eq!(
        l.services.keys().collect::<Vec<_>>(),
        vec!["api", "db", "web"]
    );
    assert_eq!(l.checks["service:web"].row.status, HealthStatus::Passing);
    l.reload(&[], &[]);
    assert_eq!(l.services.keys().collect::<Vec<_>>(), vec!["api"]);
    assert!(l.checks.is_empty());
}

#[test]
fn maintenance_and_aggregated_status() {
    let mut l = Local::new("n1");
    l.add_service(&web(vec![ttl(10)]), false);
    l.set_status("service:web", HealthStatus::Passing, "")
        .unwrap();
    assert_eq!(l.aggregated("web"), HealthStatus::Passing);
    l.service_maintenance("web", true, "").unwrap();
    assert_eq!(l.aggregated("web"), HealthStatus::Critical);
    assert!(l.checks["_service_maintenance:web"]
        .row
        .notes
        .contains("no reason was provided"));
    l.service_maintenance("web", false, "").unwrap();
    l.node_maintenance(true, "patching");
    assert_eq!(l.aggregated("web"), HealthStatus::Critical);
    assert_eq!(l.checks[NODE_MAINT].row.notes, "patching");
    assert!(matches!(
        l.service_maintenance("nope", true, ""),
        Err(LocalError::NotFound(_))
    ));
}

#[test]
fn critical_services_expire_after_their_deadline() {
    let mut l = Local::new("n1");
    let c = CheckDefinition {
        deregister_critical_service_after: Some(Duration::from_secs(60)),
        ..ttl(10)
    };
    l.add_service(&web(vec![c]), false);
    let now = Instant::now();
    assert!(l.expired_critical(now).is_empty());
    assert_eq!(
        l.expired_critical(now + Duration::from_secs(61)),
        vec!["web".to_string()]
    );
}

#[test]
fn each_service_and_check_syncs_with_the_token_it_was_registered_with() {
    let mut l = Local::new("n1");
    let token = |t: &str| crate::config::DefinitionToken(t.into());
    // From a file with no token: the fallbacks decide (here "file").
    l.add_service(&web(vec![ttl(10)]), true);
    // Over the API with its token; one inline check names its own.
    let own_check = CheckDefinition {
        name: "own".into(),
        token: token("check-token"),
        ..ttl(10)
    };
    let api = ServiceDefinition {
        name: "api".into(),
        checks: vec![ttl(10), own_check],
        token: token("api-token"),
        ..Default::default()
    };
    l.add_service(&api, false);
    // A node check registered with no token: the agent's.
    let mem = CheckDefinition {
        name: "mem".into(),
        ..ttl(10)
    };
    l.add_check(mem, false).unwrap();
    let fallback = |own: Option<&str>, from_file: bool| {
        Some(match (own, from_file) {
            (Some(t), _) => t.to_string(),
            (None, true) => "file".to_string(),
            (None, false) => "agent".to_string(),
        })
    };
    let node_row = RegisterRequest {
        node: "n1".into(),
        address: "10.0.0.1".into(),
        ..Default::default()
    };
    // (token, service ID, check IDs, skip_node_update) of each write.
    type Write = (Option<String>, Option<String>, Vec<String>, bool);
    let summary = |id: &str| -> Vec<Write> {
        l.registrations(id, &node_row, fallback)
            .into_iter()
            .map(|(r, t)| {
                let checks = r.checks.iter().map(|c| c.check_id.clone()).collect();
                (t, r.service.map(|s| s.id), checks, r.skip_node_update)
            })
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        summary("web"),
        [(s("file"), s("web"), vec!["service:web".into()], true)]
    );
    // The check with its own token goes apart, with the service beside
    // it (as Consul's syncCheck), so it borrows nothing from api-token.
    assert_eq!(
        summary("api"),
        [
            (s("api-token"), s("api"), vec!["service:api:1".into()], true),
            (
                s("check-token"),
                s("api"),
                vec!["service:api:2".into()],
                true
            ),
        ]
    );
    // Only the node's own entry may change the node row.
    assert_eq!(summary(""), [(s("agent"), None, vec!["mem".into()], false)]);
    // Maintenance rides with its service's token; its definition keeps
    // no token for the check runners to see.
    l.service_maintenance("api", true, "").unwrap();
    let maint = &l.checks["_service_maintenance:api"];
    assert_eq!(maint.token.as_deref(), Some("api-token"));
    let own = &l.checks["service:api:2"];
    assert!(own.def.token.get().is_none());
    assert_eq!(own.token.as_deref(), Some("check-token"));
}

#[test]
fn a_removed_service_keeps_its_token_until_re_added() {
    let mut l = Local::new("n1");
    let api = ServiceDefinition {
        name: "api".into(),
        token: crate::config::DefinitionToken("api-token".into()),
        ..Default::default()
    };
    l.add_service(&api, false);
    assert!(l.removed_tokens.is_empty());
    assert!(l.remove_service("api"));
    // Its removal goes with the token it had.
    assert_eq!(
        l.removed_tokens.get("api"),
        Some(&(Some("api-token".to_string()), false))
    );
    l.add_service(&api, false);
    assert!(l.removed_tokens.is_empty());
}

#[test]
fn a_re_registration_keeps_other_checks_unless_asked_to_replace_them() {
    let mut l = Local::new("n1");
    l.add_service_with(&web(vec![ttl(10)]), false, false);
    let extra = CheckDefinition {
        id: "extra".into(),
        service_id: "web".into(),
        ..ttl(10)
    };
    l.add_check(extra, false).expect("service exists");
    l.add_service_with(&web(vec![]), false, false);
    assert!(l.checks.contains_key("extra") && l.checks.contains_key("service:web"));
    l.add_service_with(&web(vec![]), false, true);
    assert!(l.checks.is_empty(), "{:?}", l.checks.keys());
}

#[test]
fn only_a_tag_override_service_adopts_the_catalogs_tags() {
    let mut l = Local::new("n1");
    l.add_service(&web(vec![ttl(10)]), false);
    let theirs = vec!["set-elsewhere".to_string()];
    assert!(!l.adopt_tags("web", &theirs));
    let eto = ServiceDefinition {
        enable_tag_override: true,
        ..web(vec![ttl(10)])
    };
    l.add_service(&eto, false);
    l.dirty.clear();
    assert!(l.adopt_tags("web", &theirs));
    assert_eq!(l.services["web"].service.tags, theirs);
    assert_eq!(l.checks["service:web"].row.service_tags, theirs);
    assert!(l.dirty.is_empty(), "adopting is not a local change to sync");
}

#[test]
fn a_check_for_an_unknown_service_is_a_bad_request() {
    let mut l = Local::new("n1");
    let orphan = CheckDefinition {
        id: "c".into(),
        service_id: "nope".into(),
        ..ttl(10)
    };
    match l.add_check(orphan, false) {
        Err(LocalError::Invalid(m)) => assert_eq!(m, "ServiceID \"nope\" does not exist"),
        other => panic!("{other:?}"),
    }
}
