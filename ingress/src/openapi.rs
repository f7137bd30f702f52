//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations
//! (every route is registered through [`utoipa_axum::router::OpenApiRouter`], so a
//! route cannot exist without its entry), served at `GET /v1/openapi.json`, with a
//! docs page at `GET /docs`.
//!
//! The error answers every operation shares (problem+json bodies for 400, 401, 403,
//! 404, 408, 413, 415, 422, 429, 503) are added once here rather than on each handler: see
//! [`add_common_responses`].

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Booking platform API",
        version = "1",
        description = "Find a movie or event, pick seats, pay, get an e-ticket. \
Bookings are accepted with `202` and decided by a per-show sequencer; poll the \
booking's `status_url`. Errors are RFC 9457 problem+json with a stable `code`. \
Lists are cursor-paginated (`limit`, `cursor` -> `{items, next_cursor}`).",
        license(name = "Apache-2.0")
    ),
    servers((url = "/", description = "this server")),
    components(schemas(crate::problem::Problem)),
    tags(
        (name = "auth", description = "Accounts, tokens and the caller's profile"),
        (name = "catalog", description = "Movies, shows and seat maps (no auth)"),
        (name = "bookings", description = "Booking seats, paying, cancelling"),
        (name = "tickets", description = "E-tickets and their verification"),
        (name = "payments", description = "Payment gateway webhooks"),
        (name = "admin", description = "Theaters, screens, movies, shows (role admin)"),
        (name = "ops", description = "Dead letters, partitions, reconciliation (role operator)"),
        (name = "health", description = "Liveness and readiness"),
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme that operations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Adds the shared problem+json answers to every operation that can give them:
/// 400 (malformed request) and 422 (validation) where the operation takes input,
/// 408, 413 and 415 where it takes a body,
/// 401 and 403 where it needs a token, 404 where the path or the JSON body names a
/// resource (a `*_id` field: `POST /v1/admin/shows {screen_id}`), 429 and
/// 503 everywhere under `/v1`. An answer a handler documents itself is kept.
pub fn add_common_responses(doc: &mut Value) {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    let mut shared = serde_json::Map::new();
    for (name, desc) in [
        ("BadRequest", "Malformed request (problem+json)"),
        (
            "Unauthenticated",
            "Missing or invalid bearer token (problem+json)",
        ),
        (
            "Forbidden",
            "The caller's role may not do this (problem+json)",
        ),
        ("NotFound", "No such resource (problem+json)"),
        ("ValidationFailed", "The input is invalid (problem+json)"),
        (
            "PayloadTooLarge",
            "The body is larger than the limit (problem+json)",
        ),
        (
            "RequestTimeout",
            "The body did not arrive within the request deadline (problem+json)",
        ),
        (
            "UnsupportedMediaType",
            "The body is not JSON (problem+json)",
        ),
        (
            "Unavailable",
            "A dependency is unavailable; retry (problem+json)",
        ),
    ] {
        shared.insert(name.to_owned(), problem(desc));
    }
    let mut limited = problem("Over the rate limit: retry after `Retry-After` seconds");
    limited["headers"] = json!({
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
        "RateLimit-Limit": {"description": "Requests allowed per window", "schema": {"type": "integer"}},
        "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
        "RateLimit-Reset": {"description": "Seconds until the budget is full again", "schema": {"type": "integer"}}
    });
    shared.insert("RateLimited".to_owned(), limited);
    doc["components"]["responses"] = Value::Object(shared);

    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let has_path_params = path.contains('{');
        let public_api = path.starts_with("/v1/");
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let has_input = op.get("requestBody").is_some()
                || op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let mut add = Vec::new();
            if has_input {
                add.push(("400", "BadRequest"));
                add.push(("422", "ValidationFailed"));
            }
            if op.get("requestBody").is_some() {
                add.push(("413", "PayloadTooLarge"));
                add.push(("415", "UnsupportedMediaType"));
                add.push(("408", "RequestTimeout"));
            }
            if secured {
                add.push(("401", "Unauthenticated"));
                add.push(("403", "Forbidden"));
            }
            if has_path_params || body_names_a_resource(op, &schemas) {
                add.push(("404", "NotFound"));
            }
            if public_api {
                add.push(("503", "Unavailable"));
            }
            if method
                .to_uppercase()
                .parse()
                .is_ok_and(|m| crate::ratelimit::classify(&m, path).is_some())
            {
                add.push(("429", "RateLimited"));
            }
            let responses = op
                .as_object_mut()
                .map(|o| o.entry("responses").or_insert_with(|| json!({})));
            if let Some(Value::Object(responses)) = responses {
                for (status, name) in add {
                    responses.entry(status).or_insert_with(
                        || json!({"$ref": format!("#/components/responses/{name}")}),
                    );
                }
            }
        }
    }
}

/// Whether the operation's JSON body has a `*_id` field (naming another resource,
/// which may not exist: `404`). `schemas` are the document's component schemas.
fn body_names_a_resource(op: &Value, schemas: &Value) -> bool {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .map_or(&Value::Null, |name| &schemas[name]),
        None => schema,
    };
    schema["properties"]
        .as_object()
        .is_some_and(|p| p.keys().any(|k| k.ends_with("_id")))
}

/// The served document, rendered once at startup.
pub struct ServedDocs {
    json: String,
}

impl ServedDocs {
    pub fn new(doc: &Value) -> Self {
        Self {
            json: serde_json::to_string_pretty(doc).unwrap_or_default(),
        }
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(docs): Extension<Arc<ServedDocs>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        docs.json.clone(),
    )
        .into_response()
}

/// The API reference page: Redoc (served from this origin, see the `web` crate)
/// rendering `/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "health",
    responses((status = 200, description = "The docs page", content_type = "text/html", body = String))
)]
pub async fn docs_page() -> Response {
    web::docs_page()
}
