//! `/console`: the ops console's files ([`crate::console`]), with its security
//! headers. Mounted only when `[console] enabled = true`; the page itself talks to
//! the admin API.

use axum::Router;
use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::console::{self, Asset};
use crate::error::problem_response;
use crate::state::AppState;

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/{name}", get(file))
        .layer(map_response(secure))
}

async fn index() -> Response {
    serve(&console::INDEX)
}

async fn file(Path(name): Path<String>) -> Response {
    match console::asset(&name) {
        Some(asset) => serve(asset),
        None => problem_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
    }
}

fn serve(asset: &Asset) -> Response {
    ([(CONTENT_TYPE, asset.content_type)], asset.body).into_response()
}

/// Adds [`console::HEADERS`] to every answer under `/console`, errors included.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in console::HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}
