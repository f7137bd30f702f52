//! The OpenAPI document as test data ([`openapi_check`]: operations, `$ref`
//! resolution, validation) and random values shaped by a schema for the API fuzzer.

pub use openapi_check::{METHODS, Operation, operations, resolve, validate};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

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
