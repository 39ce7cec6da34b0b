//! Words that members write and other friends read: error reasons, script
//! descriptions, file names, transcripts. Any member can put characters in
//! them that change how the text around them reads (right-to-left
//! overrides, invisible isolates, zero-width spaces) to make one name look
//! like another; they are refused where a node checks an event, and
//! dropped from what Potluck shows or posts itself.

use crate::limits::MAX_REASON_CHARS;
use thiserror::Error;

/// Why a reason or description may not be shown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("a reason is longer than {MAX_REASON_CHARS} characters")]
    TooLong,
    #[error("a reason holds invisible characters that reorder or hide text")]
    HiddenControls,
}

/// Characters that reorder or hide text: bidi embeddings, overrides and
/// isolates, zero-width characters and marks, and the byte-order mark.
fn is_hidden_control(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}')
}

/// Checks a reason or description: at most `MAX_REASON_CHARS`, nothing hidden.
pub fn check_shown_text(text: &str) -> Result<(), TextError> {
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(TextError::TooLong);
    }
    if text.chars().any(is_hidden_control) {
        return Err(TextError::HiddenControls);
    }
    Ok(())
}

/// `text` without the characters that reorder or hide it.
pub fn without_hidden_controls(text: &str) -> String {
    text.chars().filter(|&c| !is_hidden_control(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_zero_width_characters_are_refused_or_dropped() {
        let spoofed = "carol\u{202E}3pm.exe";
        assert_eq!(check_shown_text(spoofed), Err(TextError::HiddenControls));
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(check_shown_text(&long), Err(TextError::TooLong));
        assert!(check_shown_text("out of memory").is_ok());
        // Right-to-left text itself is fine; only the controls go.
        assert!(check_shown_text("שלום").is_ok());
        assert_eq!(
            without_hidden_controls("a\u{200B}b\u{2067}c\u{FEFF}"),
            "abc"
        );
    }

    #[test]
    fn text_errors_read_as_the_reason_a_friend_sees() {
        assert_eq!(
            TextError::TooLong.to_string(),
            format!("a reason is longer than {MAX_REASON_CHARS} characters")
        );
        assert_eq!(
            TextError::HiddenControls.to_string(),
            "a reason holds invisible characters that reorder or hide text"
        );
    }
}
