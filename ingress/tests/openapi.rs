//! The served OpenAPI document against the code: every handler's route is in it,
//! every operation in it names a real handler, nothing is registered behind its back,
//! and every example in it validates against its own schema.

use openapi_check::{METHODS, operations, validate};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The ingress crate's sources.
fn ingress_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (method, path) of every `#[utoipa::path(...)]` in the crate's sources.
fn annotated_operations() -> BTreeSet<(String, String)> {
    let mut files = vec![];
    rust_files(&ingress_src(), &mut files);
    let mut ops = BTreeSet::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        for (i, _) in src.match_indices("#[utoipa::path(") {
            let rest = &src[i + "#[utoipa::path(".len()..];
            let method = rest
                .trim_start()
                .split(|c: char| c == ',' || c.is_whitespace())
                .next()
                .unwrap()
                .to_owned();
            let p = rest.find("path = \"").expect("a path") + "path = \"".len();
            let path = rest[p..].split('"').next().unwrap().to_owned();
            ops.insert((method, path));
        }
    }
    ops
}

fn document_operations(doc: &Value) -> BTreeSet<(String, String)> {
    operations(doc)
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect()
}

#[test]
fn every_handler_is_in_the_document_and_nothing_else_is() {
    let doc = ingress::startup::openapi_document();
    let annotated = annotated_operations();
    let documented = document_operations(&doc);
    assert!(annotated.len() >= 18, "found only {annotated:?}");
    assert_eq!(
        annotated, documented,
        "handlers annotated in src/ and operations in the document differ"
    );
}

#[test]
fn no_route_is_registered_outside_the_openapi_router() {
    let mut files = vec![];
    rust_files(&ingress_src(), &mut files);
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        for needle in [".route(", ".nest(", ".route_service("] {
            assert!(
                !src.contains(needle),
                "{} calls {needle}: register handlers with utoipa_axum::routes! so the OpenAPI document lists them",
                f.display()
            );
        }
    }
}

#[test]
fn every_operation_answers_problems_and_is_tagged() {
    let doc = ingress::startup::openapi_document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{m} {path} has no tag"
            );
            let responses = op["responses"].as_object().unwrap();
            // A redirect is the success answer of a route that sends the browser on
            // (the start of a provider sign-in).
            assert!(
                responses.keys().any(|k| k.starts_with('2') || k == "302"),
                "{m} {path} documents no success answer"
            );
            let limited = m
                .to_uppercase()
                .parse()
                .is_ok_and(|m| ingress::ratelimit::classify(&m, path).is_some());
            assert_eq!(
                responses.contains_key("429"),
                limited,
                "{m} {path}: 429 is documented exactly where the rate limit applies"
            );
            if op.get("security").is_some() {
                assert!(responses.contains_key("401"), "{m} {path} lacks 401");
            }
        }
    }
}

#[test]
fn the_rate_limit_is_documented_on_bookings_but_not_on_the_payment_webhook() {
    let doc = ingress::startup::openapi_document();
    let responses = |m: &str, p: &str| doc["paths"][p][m]["responses"].clone();
    assert!(responses("post", "/v1/bookings").get("429").is_some());
    assert!(
        responses("post", "/v1/payments/webhook")
            .get("429")
            .is_none()
    );
    assert!(responses("get", "/v1/openapi.json").get("429").is_none());
}

#[test]
fn every_example_validates_against_its_schema() {
    let doc = ingress::startup::openapi_document();
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            validate(&doc, schema, example)
                .unwrap_or_else(|e| panic!("the example of schema {name} is invalid: {e}"));
            checked += 1;
        }
        if let Some(Value::Array(examples)) = schema.get("examples") {
            for example in examples {
                validate(&doc, schema, example)
                    .unwrap_or_else(|e| panic!("an example of schema {name} is invalid: {e}"));
                checked += 1;
            }
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let bodies = op["requestBody"]["content"].as_object().into_iter().chain(
                op["responses"]
                    .as_object()
                    .into_iter()
                    .flat_map(|r| r.values().filter_map(|resp| resp["content"].as_object())),
            );
            for content in bodies {
                for media in content.values() {
                    if let Some(example) = media.get("example") {
                        validate(&doc, &media["schema"], example)
                            .unwrap_or_else(|e| panic!("an example of {m} {path} is invalid: {e}"));
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 3, "only {checked} examples found");
}

#[test]
fn a_broken_example_is_caught() {
    // The check above would pass vacuously if validation never failed.
    let doc = ingress::startup::openapi_document();
    let schema = &doc["components"]["schemas"]["SubmitBooking"];
    assert!(validate(&doc, schema, &serde_json::json!({"seats": ["A1"]})).is_err());
    assert!(validate(&doc, schema, &serde_json::json!({"show_id": 7})).is_err());
    assert!(
        validate(
            &doc,
            schema,
            &serde_json::json!({"show_id": "0193a000-0000-7000-8000-000000000001", "quantity": 2})
        )
        .is_ok()
    );
}

#[test]
fn operation_ids_are_unique() {
    let doc = ingress::startup::openapi_document();
    let mut seen = std::collections::BTreeMap::new();
    for op in operations(&doc) {
        let id = op.op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {} has no operationId", op.method, op.path))
            .to_owned();
        if let Some(other) = seen.insert(id.clone(), format!("{} {}", op.method, op.path)) {
            panic!(
                "operationId {id} names both {other} and {} {}",
                op.method, op.path
            );
        }
    }
}

/// The end of the function that starts in `text`: its body's closing brace (braces
/// in format strings come in pairs, so counting them is enough here).
fn function_end(text: &str) -> usize {
    let Some(fn_at) = text.find("async fn ") else {
        return text.len();
    };
    // The body opens at the first `{` after the signature's `->` (or `)`).
    let sig_end = text[fn_at..].find(") ->").map_or(fn_at, |i| fn_at + i);
    let Some(open) = text[sig_end..].find('{').map(|i| sig_end + i) else {
        return text.len();
    };
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The source of each annotated handler (its annotation and its body), with the
/// (method, path) it documents.
fn handler_sources() -> Vec<((String, String), String)> {
    let mut files = vec![];
    rust_files(&ingress_src(), &mut files);
    let mut out = vec![];
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let starts: Vec<usize> = src
            .match_indices("#[utoipa::path(")
            .map(|(i, _)| i)
            .collect();
        for (n, &i) in starts.iter().enumerate() {
            let next = starts.get(n + 1).copied().unwrap_or(src.len());
            let text = &src[i..next];
            let text = &text[..function_end(text)];
            let rest = &text["#[utoipa::path(".len()..];
            let method = rest
                .trim_start()
                .split(|c: char| c == ',' || c.is_whitespace())
                .next()
                .unwrap()
                .to_owned();
            let p = rest.find("path = \"").expect("a path") + "path = \"".len();
            let path = rest[p..].split('"').next().unwrap().to_owned();
            out.push(((method, path), text.to_owned()));
        }
    }
    out
}

#[test]
fn a_not_found_or_conflict_a_handler_answers_itself_is_documented() {
    // Where it can be seen from the handler's own code: an `ApiError::NotFound` or
    // `ApiError::Conflict` it builds, or a constraint it maps (`db_conflict`: a
    // duplicate is 409, a missing referenced row 404). The fuzzer finds the rest.
    let doc = ingress::startup::openapi_document();
    let mut checked = 0;
    for ((method, path), src) in handler_sources() {
        let responses = &doc["paths"][&path][&method]["responses"];
        for (needles, status) in [
            (&["ApiError::NotFound(", "db_conflict("][..], "404"),
            (&["ApiError::Conflict(", "db_conflict("][..], "409"),
        ] {
            if needles.iter().any(|n| src.contains(n)) {
                checked += 1;
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} can answer {status} but does not document it"
                );
            }
        }
    }
    assert!(checked >= 5, "only {checked} handlers checked");
}

#[test]
fn an_operation_whose_body_names_another_resource_documents_404() {
    let doc = ingress::startup::openapi_document();
    for (method, path) in [("post", "/v1/admin/shows"), ("post", "/v1/bookings")] {
        assert!(
            doc["paths"][path][method]["responses"].get("404").is_some(),
            "{method} {path}"
        );
    }
}
