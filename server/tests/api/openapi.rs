//! docs/openapi.json against the server (issue 15 §6): the document lists exactly the
//! routes the routers register, and every answer the running server gives to a set of
//! probes (no credentials, wrong content type, a JSON array, an unknown member, an
//! oversized body, a bad path id) is an answer the document declares for that
//! operation. A route added, removed or changed without the document fails here.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

const DOC: &str = include_str!("../../../docs/openapi.json");
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// `(method, path)` of every `.route(…)` in a router source file, with the prefix the
/// router is nested under. Path parameters keep their `{name}` form (axum 0.8 syntax
/// is OpenAPI's).
fn source_routes(src: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        // the call's text up to its matching parenthesis
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced route call");
        let text = &call[..end];
        let path = text.split('"').nth(1).expect("route path literal");
        let full = match (prefix, path) {
            (p, "/") if !p.is_empty() => p.to_owned(),
            (p, path) => format!("{p}{path}"),
        };
        for m in METHODS {
            let needle = format!("{m}(");
            if text.match_indices(&needle).any(|(i, _)| {
                i == 0
                    || !text.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && text.as_bytes()[i - 1] != b'_'
            }) {
                out.insert((m.to_owned(), full.clone()));
            }
        }
        rest = &call[end..];
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_lists_exactly_the_registered_routes() {
    let mut code = source_routes(include_str!("../../src/routes/admin/mod.rs"), "/v1/admin");
    code.extend(source_routes(
        include_str!("../../src/routes/device/mod.rs"),
        "/v1/device",
    ));
    code.extend(source_routes(include_str!("../../src/routes/ops.rs"), ""));
    assert!(
        code.len() > 30,
        "the route parser found too little: {code:?}"
    );
    let doc = documented();
    let missing: Vec<_> = code.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "routes not in docs/openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes the server does not register: {extra:?}"
    );
}

#[test]
fn request_schemas_are_closed_and_bodies_declare_their_refusals() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(body) = op.get("requestBody") else {
                continue;
            };
            let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
            assert_eq!(
                schema["additionalProperties"],
                json!(false),
                "{method} {path}: the server refuses unknown members; the schema must say so"
            );
            for status in ["400", "413", "415"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path}: no {status} answer documented"
                );
            }
        }
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// One probe: what the server answered must be documented for the operation
/// (mismatches are collected, so one run lists them all).
#[allow(
    clippy::too_many_arguments,
    reason = "one probe, every part named at the call"
)]
async fn probe(
    app: &TestApp,
    wrong: &mut Vec<String>,
    holder: &str,
    doc: &Value,
    method: &str,
    path: &str,
    admin: bool,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
    what: &str,
) -> u16 {
    let concrete = concrete(path, holder);
    probe_at(
        app,
        wrong,
        doc,
        method,
        path,
        &concrete,
        admin,
        content_type,
        body,
        what,
    )
    .await
}

/// A probe of a documented operation at an explicit URL (query strings).
#[allow(
    clippy::too_many_arguments,
    reason = "one probe, every part named at the call"
)]
async fn probe_raw(
    app: &TestApp,
    wrong: &mut Vec<String>,
    holder: &str,
    doc: &Value,
    method: &str,
    path: &str,
    url: &str,
    admin: bool,
    what: &str,
) -> u16 {
    probe_at(
        app,
        wrong,
        doc,
        method,
        path,
        &concrete(url, holder),
        admin,
        None,
        None,
        what,
    )
    .await
}

/// `path` with its parameters filled: a real cardholder for cardholder paths (so the
/// probes reach the body checks), an unknown id elsewhere (404 is then documented).
fn concrete(path: &str, holder: &str) -> String {
    let path = path.replacen(
        "/v1/admin/cardholders/{id}",
        &format!("/v1/admin/cardholders/{holder}"),
        1,
    );
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "7e0c3a3c-0d55-4a5e-9b1e-1c1f5f0b9a11"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[allow(
    clippy::too_many_arguments,
    reason = "one probe, every part named at the call"
)]
async fn probe_at(
    app: &TestApp,
    wrong: &mut Vec<String>,
    doc: &Value,
    method: &str,
    path: &str,
    concrete: &str,
    admin: bool,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
    what: &str,
) -> u16 {
    let mut req = app
        .http
        .request(method.to_uppercase().parse().unwrap(), app.url(concrete));
    if admin {
        req = req.bearer_auth(ADMIN_KEY);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let op = &doc["paths"][path][method];
    if op["responses"].get(status.to_string()).is_none() {
        wrong.push(format!(
            "{method} {path} ({what}): answered {status}, not declared"
        ));
    }
    if status >= 400 && !ct.starts_with("application/problem+json") {
        wrong.push(format!(
            "{method} {path} ({what}): {status} is {ct}, not problem+json"
        ));
    }
    status
}

async fn every_answer_is_documented(app: TestApp) {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let limit = app.server.state.config.server.body_limit_bytes;
    let mut wrong = Vec::new();
    let holder = app.create_cardholder().await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op
                .get("security")
                .is_some_and(|s| !s.as_array().unwrap().is_empty());
            let is_admin = path.starts_with("/v1/admin");
            let has_body = op.get("requestBody").is_some();
            if secured {
                let s = probe(
                    &app,
                    &mut wrong,
                    &holder,
                    &doc,
                    method,
                    path,
                    false,
                    None,
                    None,
                    "no credentials",
                )
                .await;
                assert!(
                    s == 401 || s == 400,
                    "{method} {path}: {s} without credentials"
                );
            }
            if path == "/v1/device/stream" {
                continue; // an event stream: its success answer never ends
            }
            if !has_body {
                probe(
                    &app,
                    &mut wrong,
                    &holder,
                    &doc,
                    method,
                    path,
                    is_admin,
                    None,
                    None,
                    "as documented",
                )
                .await;
                let params = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(q) = params
                    .iter()
                    .find(|p| p["in"] == "query" && p["schema"]["type"] == "integer")
                {
                    let bad = format!("{path}?{}=not-a-number", q["name"].as_str().unwrap());
                    let s = probe_raw(
                        &app,
                        &mut wrong,
                        &holder,
                        &doc,
                        method,
                        path,
                        &bad,
                        is_admin,
                        "bad query",
                    )
                    .await;
                    assert_eq!(s, 400, "{method} {path}: a malformed query parameter");
                }
                continue;
            }
            // JSON-body operations: the admin key gets past authentication, so these
            // reach the body's checks; device operations answer with their own order.
            let big = format!(r#"{{"label":"{}"}}"#, "a".repeat(limit + 1)).into_bytes();
            let bodies: [(&str, Vec<u8>, &str, u16); 4] = [
                ("text/plain", b"{}".to_vec(), "a text/plain body", 415),
                ("application/json", b"[]".to_vec(), "a JSON array", 400),
                (
                    "application/json",
                    br#"{"surely_not_a_member":1}"#.to_vec(),
                    "an unknown member",
                    400,
                ),
                ("application/json", big, "a body over the limit", 413),
            ];
            for (content_type, body, what, expected) in bodies {
                let s = probe(
                    &app,
                    &mut wrong,
                    &holder,
                    &doc,
                    method,
                    path,
                    is_admin,
                    Some(content_type),
                    Some(body),
                    what,
                )
                .await;
                if is_admin {
                    assert_eq!(s, expected, "{method} {path}: {what}");
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/openapi.json disagrees with the server:\n{}",
        wrong.join("\n")
    );
}

crate::on_both_backends!(every_answer_is_documented);
