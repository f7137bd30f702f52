//! The OpenAPI document as test data: its operations, `$ref` resolution, and
//! validation of a JSON value against one of its schemas (JSON Schema 2020-12, which
//! OpenAPI 3.1 schemas are). Shared by ingress's static checks of its document and
//! the API fuzzer of the end-to-end tests, neither of which links the other.

use serde_json::{Value, json};
pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub op: Value,
}

impl Operation {
    /// The documented parameters located `in` (`path`, `query`, `header`).
    pub fn params(&self, location: &str) -> Vec<&Value> {
        self.op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == location).collect())
            .unwrap_or_default()
    }

    /// Whether the operation documents answering `status`.
    pub fn documents_status(&self, status: u16) -> bool {
        let r = &self.op["responses"];
        r.get(status.to_string()).is_some() || r.get("default").is_some()
    }

    /// The JSON schema of the `status` answer, if it is JSON.
    pub fn response_schema<'a>(&'a self, doc: &'a Value, status: u16) -> Option<&'a Value> {
        let resp = resolve(doc, self.op["responses"].get(status.to_string())?);
        resp["content"]["application/json"].get("schema")
    }
}

/// Every operation of `doc`, in document order.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push(Operation {
                    method: m.to_owned(),
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    out
}

/// Follows `$ref`s (`#/components/...`) until a concrete value.
pub fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => match doc.pointer(r.trim_start_matches('#')) {
                Some(target) => v = target,
                None => return v,
            },
            None => return v,
        }
    }
    v
}

/// Validates `instance` against `schema`, a schema inside `doc` (its `$ref`s resolve
/// against the document).
pub fn validate(doc: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$defs"] = json!({"under_test": schema});
    root["$ref"] = json!("#/$defs/under_test");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .map_err(|e| format!("schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
