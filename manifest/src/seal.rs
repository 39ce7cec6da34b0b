//! Seals: what the room sees of a private task's chunk output. A node that
//! finishes a private chunk puts `{"sealed": <SHA-256 of the output's JSON>}`
//! in the room and sends the output itself to the submitter (see `private`).

use crate::digest::{is_sha256_hex, sha256_hex};
use crate::kind_error::KindError;
use serde_json::{json, Value};

/// The seal of `output`: serde_json writes object keys in order, so every
/// node seals the same output the same way.
pub fn seal(output: &Value) -> Value {
    json!({ "sealed": seal_digest(output) })
}

/// The SHA-256 inside `output`'s seal.
pub fn seal_digest(output: &Value) -> String {
    sha256_hex(output.to_string().as_bytes())
}

/// Whether `output` is a seal, as a private task's chunks must report.
pub fn check_sealed(output: &Value) -> Result<(), KindError> {
    let ok = output.as_object().is_some_and(|o| o.len() == 1)
        && output["sealed"].as_str().is_some_and(is_sha256_hex);
    if ok {
        Ok(())
    } else {
        Err(KindError::BadOutput(
            "a private task's chunk reports only {\"sealed\": <SHA-256>}".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_is_the_same_for_the_same_output_and_hides_it() {
        let output = json!({"count": 5133, "more": [1, 2]});
        let again = serde_json::from_str::<Value>(r#"{"more":[1,2],"count":5133}"#).unwrap();
        assert_eq!(seal(&output), seal(&again));
        assert_ne!(seal(&output), seal(&json!({"count": 5134, "more": [1, 2]})));
        check_sealed(&seal(&output)).unwrap();
        assert!(!seal(&output).to_string().contains("5133"));
        assert!(check_sealed(&json!({"count": 5133})).is_err());
        assert!(check_sealed(&json!({"sealed": "abc"})).is_err());
        let upper = seal(&output)["sealed"].as_str().unwrap().to_uppercase();
        assert!(check_sealed(&json!({ "sealed": upper })).is_err());
    }
}
