//! The web UI (`-ui`, `ui_config.enabled`, on by default with `-dev`): a
//! single-page app served at `/ui/` with Consul's page URLs. The assets are
//! compiled into the binary (no files, no network at run time); every
//! page path answers the same HTML and the app draws the page from the
//! /v1 API in the browser.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const TOKEN_JS: &str = include_str!("assets/token.js");
const APP_CSS: &str = include_str!("assets/app.css");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_ui))
        .route("/ui", web::get().to(to_ui))
        .route("/ui/assets/app.js", web::get().to(app_js))
        .route("/ui/assets/token.js", web::get().to(token_js))
        .route("/ui/assets/app.css", web::get().to(app_css))
        .route("/ui/{tail:.*}", web::get().to(index));
}

async fn to_ui() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page is a shell; what it shows comes from the API.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

async fn app_js() -> HttpResponse {
    javascript(APP_JS)
}

async fn token_js() -> HttpResponse {
    javascript(TOKEN_JS)
}

fn javascript(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

async fn app_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(APP_CSS)
}
