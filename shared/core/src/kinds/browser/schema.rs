//! JSON Schema checks of extracted values: compiled at create (a schema that does not compile is
//! a `400` naming it), checked when the value comes back. Remote references are never fetched.

use serde_json::Value;

/// The most schema errors one message lists.
const MAX_LISTED: usize = 5;

/// Checks that `schema` compiles.
pub fn compile(schema: &Value) -> Result<(), String> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| format!("is not a JSON Schema that compiles: {e}"))
}

/// Checks `value` against `schema`; the error lists what is wrong where, for the model to fix.
pub fn check(schema: &Value, value: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(MAX_LISTED)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_that_meets_the_schema_passes_and_one_that_does_not_says_where() {
        let schema = json!({"type": "object", "required": ["price"],
                            "properties": {"price": {"type": "number"}}});
        assert!(check(&schema, &json!({"price": 3.5})).is_ok());
        let why = check(&schema, &json!({"price": "3.50"})).unwrap_err();
        assert!(why.contains("/price"), "{why}");
        assert!(check(&schema, &json!({})).unwrap_err().contains("price"));
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused() {
        assert!(compile(&json!({"type": "no-such-type"})).is_err());
        assert!(compile(&json!({"type": "string"})).is_ok());
    }
}
