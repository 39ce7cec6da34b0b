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
    use manifest::events::Input;

    #[test]
    fn reads_a_type_and_says_why_not_when_it_is_not_one() {
        let input: Input = read_json(r#"{"mxc":"mxc://hs/a","size":7,"sha256":"ab"}"#).unwrap();
        assert_eq!(input.size, 7);
        let wrong = read_json::<Input>(r#"{"mxc":"mxc://hs/a"}"#).unwrap_err();
        assert!(wrong.to_string().contains("missing field"), "{wrong}");
        assert!(read_json::<Input>("not json").is_err());
    }
}
