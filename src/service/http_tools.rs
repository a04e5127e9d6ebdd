//! Declared HTTP tools of a workflow: the arguments a model produced are
//! checked against the tool's JSON Schema (a strict subset: typed
//! properties, `required`, `enum`, no unknown properties) before anything
//! is sent, the URL was checked against the workflow's allow-list when the
//! configuration was read, and the answer is cut to a bounded size.

use std::time::Duration;

use serde_json::Value;

use crate::config::HttpToolConfig;

/// Largest answer passed on to a model, in bytes.
const MAX_ANSWER: usize = 64 * 1024;

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// Checks `v` against `schema` at `path`; the first violation.
fn check(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        if !type_ok(ty, v) {
            return Err(format!("{path}: expected {ty}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            return Err(format!("{path}: not one of the allowed values"));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(items, x, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                return Err(format!("{path}: missing {r:?}"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(s, x, &format!("{path}.{k}"))?,
                // Unknown properties are refused unless the schema says otherwise.
                None if schema.get("additionalProperties") != Some(&Value::Bool(true)) => {
                    return Err(format!("{path}: unknown property {k:?}"))
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Whether `args` fit the tool's schema.
pub fn check_args(t: &HttpToolConfig, args: &Value) -> Result<(), String> {
    let schema = serde_json::to_value(&t.parameters).map_err(|e| e.to_string())?;
    check(&schema, args, "arguments")
}

/// POSTs `args` to the tool; its answer as text (bounded).
pub async fn call(t: &HttpToolConfig, args: &Value) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(t.timeout_s))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut rb = client.post(&t.url).json(args);
    if let Some(var) = &t.token_env {
        let token = std::env::var(var).map_err(|_| format!("{var} (token_env) is not set"))?;
        rb = rb.bearer_auth(token);
    }
    let resp = rb.send().await.map_err(|e| format!("{}: {e}", t.name))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let cut = &bytes[..bytes.len().min(MAX_ANSWER)];
    let text = String::from_utf8_lossy(cut).to_string();
    if !status.is_success() {
        return Err(format!("{} answered HTTP {}", t.name, status.as_u16()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_subset_refuses_what_it_should() {
        let s = json!({"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}}}});
        assert!(check(
            &s,
            &json!({"city": "Hamburg", "days": 3, "unit": "c", "tags": ["a"]}),
            "a"
        )
        .is_ok());
        for bad in [
            json!({"days": 3}),
            json!({"city": 7}),
            json!({"city": "x", "unit": "k"}),
            json!({"city": "x", "tags": [1]}),
            json!({"city": "x", "exfiltrate": "secret"}),
            json!("city"),
        ] {
            assert!(check(&s, &bad, "a").is_err(), "{bad}");
        }
    }
}
