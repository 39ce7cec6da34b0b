//! Reads JSON text into Potluck's types in two steps, text to `Value` and
//! `Value` to the type, as everything else in the widget reads.
//!
//! Why: serde compiles each type's `Deserialize` once per source it reads
//! from. Reading room events, worker messages and sandbox messages all from
//! a `&Value` keeps one copy of each in the UI's wasm instead of two.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// `text` as a `T`, or why it is not one.
pub fn read_json<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    T::deserialize(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::worker_protocol::FromWorker;

    #[test]
    fn reads_a_worker_message_and_says_why_not_when_it_is_not_one() {
        let done: FromWorker = read_json(r#"{"type":"done","job":7,"output":[1,2]}"#).unwrap();
        assert_eq!(
            done,
            FromWorker::Done {
                job: 7,
                output: serde_json::json!([1, 2])
            }
        );
        let unknown = read_json::<FromWorker>(r#"{"type":"no such message"}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown variant"), "{unknown}");
        assert!(read_json::<FromWorker>("not json").is_err());
    }
}
