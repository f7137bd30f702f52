//! The OpenAPI document as test data: its operations, `$ref` resolution, validation
//! of a JSON value against one of its schemas (JSON Schema 2020-12, which OpenAPI
//! 3.1 schemas are), and random values shaped by a schema for the API fuzzer.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

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

/// Values the generator draws ids and names from: ids that exist make requests
/// reach deeper code than random ones.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    pub uuids: Vec<String>,
    pub strings: Vec<String>,
}

/// Random values shaped by a schema, mostly plausible and sometimes hostile: wrong
/// types, out-of-range numbers, huge or odd strings, missing and unknown fields.
pub struct Generator<'a> {
    pub doc: &'a Value,
    pub pools: &'a Pools,
    /// Chance that any one node is replaced by a value of a random type.
    pub chaos: f64,
}

impl Generator<'_> {
    pub fn value(&self, rng: &mut StdRng, schema: &Value, depth: usize) -> Value {
        if depth > 6 {
            return Value::Null;
        }
        if rng.random_bool(self.chaos) {
            return self.any(rng, depth);
        }
        let schema = resolve(self.doc, schema);
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alts)) = schema.get(key)
                && let Some(alt) = alts.choose(rng)
            {
                return self.value(rng, alt, depth + 1);
            }
        }
        if let Some(Value::Array(parts)) = schema.get("allOf") {
            let mut merged = Map::new();
            for p in parts {
                if let Value::Object(m) = self.value(rng, p, depth + 1) {
                    merged.extend(m);
                }
            }
            return Value::Object(merged);
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && let Some(v) = options.choose(rng)
        {
            return v.clone();
        }
        let ty = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => ts
                .choose(rng)
                .and_then(Value::as_str)
                .unwrap_or("null")
                .to_owned(),
            _ if schema.get("properties").is_some() => "object".to_owned(),
            _ => return self.any(rng, depth),
        };
        match ty.as_str() {
            "string" => Value::String(self.string(rng, schema)),
            "integer" => json!(self.integer(rng, schema)),
            "number" => json!(*[0.0, -1.5, 3.25, 1e300, -1e300].choose(rng).unwrap_or(&0.0)),
            "boolean" => json!(rng.random_bool(0.5)),
            "array" => {
                let n = if rng.random_bool(0.05) {
                    60
                } else {
                    rng.random_range(0..4)
                };
                Value::Array(
                    (0..n)
                        .map(|_| self.value(rng, &schema["items"], depth + 1))
                        .collect(),
                )
            }
            "object" => self.object(rng, schema, depth),
            _ => Value::Null,
        }
    }

    fn object(&self, rng: &mut StdRng, schema: &Value, depth: usize) -> Value {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            let keep = if required.contains(&name.as_str()) {
                rng.random_bool(0.95)
            } else {
                rng.random_bool(0.5)
            };
            if keep {
                out.insert(name.clone(), self.value(rng, prop, depth + 1));
            }
        }
        if rng.random_bool(0.05) {
            out.insert("unexpected_field".to_owned(), json!(1));
        }
        Value::Object(out)
    }

    /// Any JSON value of a random type.
    pub fn any(&self, rng: &mut StdRng, depth: usize) -> Value {
        match rng.random_range(0..7) {
            0 => Value::Null,
            1 => json!(rng.random_bool(0.5)),
            2 => json!(*[0_i64, -1, 7, i64::MAX, i64::MIN].choose(rng).unwrap_or(&0)),
            3 => json!(1.5e10),
            4 if depth < 4 => Value::Array(vec![self.any(rng, depth + 1)]),
            5 if depth < 4 => json!({"k": self.any(rng, depth + 1)}),
            _ => Value::String(hostile_string(rng)),
        }
    }

    fn integer(&self, rng: &mut StdRng, schema: &Value) -> i64 {
        let min = schema["minimum"].as_i64();
        let max = schema["maximum"].as_i64();
        match (rng.random_range(0..6), min, max) {
            (0 | 1, Some(lo), Some(hi)) if lo <= hi => rng.random_range(lo..=hi),
            (2, Some(lo), _) => lo.saturating_sub(1),
            (3, _, Some(hi)) => hi.saturating_add(1),
            _ => *[0, 1, 2, 3, 10, 100, -1, 1 << 31, i64::MAX, i64::MIN]
                .choose(rng)
                .unwrap_or(&1),
        }
    }

    pub fn string(&self, rng: &mut StdRng, schema: &Value) -> String {
        let format = schema["format"].as_str().unwrap_or("");
        match (format, rng.random_range(0..10)) {
            ("uuid", 0..=5) => self
                .pools
                .uuids
                .choose(rng)
                .cloned()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ("uuid", 6..=7) => uuid::Uuid::new_v4().to_string(),
            ("date-time", 0..=6) => {
                let t = time::OffsetDateTime::now_utc()
                    + time::Duration::minutes(rng.random_range(-20_000..40_000));
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            }
            ("date", 0..=6) => format!(
                "2026-{:02}-{:02}",
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            ),
            (_, 0..=3) => self
                .pools
                .strings
                .choose(rng)
                .cloned()
                .unwrap_or_else(|| "x".to_owned()),
            (_, 4..=5) => {
                let seat = ["A1", "A2", "B3", "C10", "Z99"];
                seat.choose(rng).copied().unwrap_or("A1").to_owned()
            }
            _ => hostile_string(rng),
        }
    }
}

/// A string chosen to break naive code: empty, huge, unicode, control characters,
/// SQL and path fragments, numbers and dates in odd forms.
pub fn hostile_string(rng: &mut StdRng) -> String {
    let samples = [
        String::new(),
        " ".to_owned(),
        "a".repeat(300),
        "é".repeat(100),
        "💥🎟️".to_owned(),
        "\u{0}".to_owned(),
        "line\nbreak".to_owned(),
        "' or 1=1 --".to_owned(),
        "%".to_owned(),
        "_".to_owned(),
        "\\".to_owned(),
        "../../etc/passwd".to_owned(),
        "-1".to_owned(),
        "99999999999999999999".to_owned(),
        "1e309".to_owned(),
        "2026-13-45".to_owned(),
        "null".to_owned(),
        "true".to_owned(),
        "<script>".to_owned(),
        "a:b:c".to_owned(),
        "UPPER lower".to_owned(),
    ];
    samples.choose(rng).cloned().unwrap_or_default()
}
