//! The router's own decisions: datacenter names, server order.

use super::*;

struct Nobody;
impl Actor for Nobody {
    type Context = Context<Self>;
}
impl Handler<FireLocalEvent> for Nobody {
    type Result = Result<UserEvent, RequestError>;
    fn handle(&mut self, m: FireLocalEvent, _: &mut Context<Self>) -> Self::Result {
        Ok(m.0)
    }
}

fn client() -> Router {
    let config = RuntimeConfig {
        datacenter: "dc1".into(),
        ..Default::default()
    };
    Router::new(
        &config,
        None,
        None,
        None,
        Nobody.start().recipient(),
        Pool::default(),
    )
}

#[actix_rt::test]
async fn datacenter_names_compare_without_case_and_empty_is_here() {
    let r = client();
    assert_eq!(r.target(None), Target::Here);
    assert_eq!(r.target(Some("")), Target::Here);
    assert_eq!(r.target(Some("DC1")), Target::Here);
    assert_eq!(r.target(Some("Dc2")), Target::Dc("dc2".into()));
}

#[actix_rt::test]
async fn a_client_without_servers_says_so() {
    let r = client();
    let req = ReadRequest {
        opts: QueryOptions::default(),
        query: crate::structs::query::Query::CatalogNodes,
    };
    assert_eq!(r.read(req).await.unwrap_err(), RequestError::NoServers);
}

#[actix_rt::test]
async fn failed_servers_go_last_for_a_while() {
    let r = client();
    for (n, a) in [("a", "1"), ("b", "2"), ("c", "3")] {
        r.set_server(n, Some(a.into()));
    }
    r.notify_failed("1");
    let list = vec!["1".to_string(), "2".into(), "3".into()];
    let (order, _) = r.set_aside((list.clone(), RequestError::NoServers));
    assert_eq!(order, vec!["2", "3", "1"]);
    tokio::time::pause();
    tokio::time::advance(SET_ASIDE + Duration::from_secs(1)).await;
    let (order, _) = r.set_aside((list, RequestError::NoServers));
    assert_eq!(order, vec!["1", "2", "3"]);
}
