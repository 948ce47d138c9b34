//! The web UI's serving side: `/` and `/ui` lead to `/ui/`, every page URL
//! answers the app's HTML, the assets come from the binary, and an agent
//! without `-ui` serves none of it. The pages themselves are tested in a
//! browser (tests/python/test_ui.py).

mod common;

use common::*;

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn a_dev_agent_serves_the_ui_and_a_plain_server_does_not() {
    let dev = TestAgent::dev(&[]);
    let c = no_redirects();
    for path in ["/", "/ui"] {
        let r = c.get(dev.url(path)).send().unwrap();
        assert_eq!(r.status(), 301, "{path}");
        assert_eq!(r.headers()["location"], "/ui/");
    }
    for path in [
        "/ui/",
        "/ui/dc1/services",
        "/ui/dc1/services/web",
        "/ui/dc1/nodes/n1",
        "/ui/dc1/kv/a/b/edit",
    ] {
        let r = c.get(dev.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = r.text().unwrap();
        assert!(
            body.contains("/ui/assets/app.js") && body.contains("Meridian"),
            "{path}"
        );
    }
    let js = c.get(dev.url("/ui/assets/app.js")).send().unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    assert!(js.text().unwrap().contains("/v1/catalog/services"));
    // The token field's script, which app.js's calls read the token from.
    let token_js = c.get(dev.url("/ui/assets/token.js")).send().unwrap();
    assert_eq!(token_js.status(), 200);
    assert!(token_js.text().unwrap().contains("X-Consul-Token"));
    let css = c.get(dev.url("/ui/assets/app.css")).send().unwrap();
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    // The API is still the API.
    assert_eq!(c.get(dev.url("/v1/nothing")).send().unwrap().status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let plain = TestAgent::server(dir.path());
    assert_eq!(c.get(plain.url("/ui/")).send().unwrap().status(), 404);
    let root = c.get(plain.url("/")).send().unwrap().text().unwrap();
    assert!(root.contains("web UI is not enabled"), "{root}");
    let dir2 = tempfile::tempdir().unwrap();
    let with_ui = TestAgent::server_with(dir2.path(), &["-ui"]);
    assert_eq!(
        c.get(with_ui.url("/ui/dc1/nodes")).send().unwrap().status(),
        200
    );
}
