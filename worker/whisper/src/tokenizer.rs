//! Whisper's token ids to text, from CTranslate2's `vocabulary.txt`.
//!
//! One token per line, in id order, including special and timestamp tokens.
//! Text tokens are GPT-2 byte-level BPE: each byte is written as one printable
//! unicode character, so decoding maps characters back to bytes and only then
//! reads UTF-8 (a multi-byte character may span tokens).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenizerError {
    #[error("vocabulary.txt has no {0} token")]
    MissingSpecial(&'static str),
    #[error("vocabulary.txt: the token after <|notimestamps|> is {0:?}, not <|0.00|>")]
    NoTimestamps(String),
}

/// Ids of the special tokens; they differ between English-only and
/// multilingual models (`shared/notes/whisper.md` §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    /// `<|nocaptions|>`: its probability at the first step is the no-speech probability.
    pub no_speech: u32,
    pub no_timestamps: u32,
    /// `<|0.00|>`; every id from here on is a timestamp (0.02 s steps).
    pub timestamp_begin: u32,
    /// `(code, id)` of each language token, e.g. `("en", 50259)` in base.
    /// English-only models list them too, but are never prompted with one.
    pub languages: Vec<(String, u32)>,
    /// Whether the model takes a language and task in its prompt.
    pub multilingual: bool,
}

impl SpecialTokens {
    pub fn language(&self, code: &str) -> Option<u32> {
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
    }
}

pub struct Tokenizer {
    tokens: Vec<String>,
    specials: SpecialTokens,
    byte_of: HashMap<char, u8>,
}

impl Tokenizer {
    pub fn from_vocabulary(text: &str) -> Result<Self, TokenizerError> {
        // Drop only the final newline: base has an empty token (id 50256).
        let body = text.strip_suffix('\n').unwrap_or(text);
        let tokens: Vec<String> = body.split('\n').map(str::to_owned).collect();
        let specials = find_specials(&tokens)?;
        let byte_of = byte_alphabet()
            .into_iter()
            .enumerate()
            .map(|(b, c)| (c, b as u8))
            .collect();
        Ok(Self {
            tokens,
            specials,
            byte_of,
        })
    }

    pub fn specials(&self) -> &SpecialTokens {
        &self.specials
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The text of `ids`, leaving out special and timestamp tokens.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if id >= self.specials.eot {
                continue;
            }
            let Some(token) = self.token(id) else {
                continue;
            };
            for c in token.chars() {
                match self.byte_of.get(&c) {
                    Some(&b) => bytes.push(b),
                    // Not byte-level text; keep it readable rather than drop it.
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The smallest vocabulary of a multilingual Whisper model.
const MULTILINGUAL_VOCAB: usize = 51_865;

fn find_specials(tokens: &[String]) -> Result<SpecialTokens, TokenizerError> {
    let find = |name: &'static str| {
        tokens
            .iter()
            .position(|t| t == name)
            .map(|i| i as u32)
            .ok_or(TokenizerError::MissingSpecial(name))
    };
    let sot = find("<|startoftranscript|>")?;
    let translate = find("<|translate|>")?;
    let no_timestamps = find("<|notimestamps|>")?;
    let timestamp_begin = no_timestamps + 1;
    match tokens.get(timestamp_begin as usize) {
        Some(t) if t == "<|0.00|>" => {}
        other => {
            return Err(TokenizerError::NoTimestamps(
                other.cloned().unwrap_or_default(),
            ))
        }
    }
    // Language tokens sit between <|startoftranscript|> and <|translate|>.
    let languages = ((sot + 1)..translate)
        .filter_map(|id| {
            let t = tokens.get(id as usize)?;
            let code = t.strip_prefix("<|")?.strip_suffix("|>")?;
            Some((code.to_owned(), id))
        })
        .collect();
    Ok(SpecialTokens {
        // openai's rule (`Whisper.is_multilingual`): English-only models have
        // the GPT-2 vocabulary, one token shorter; their prompt is just
        // <|startoftranscript|> although their vocabulary lists languages.
        multilingual: tokens.len() >= MULTILINGUAL_VOCAB,
        eot: find("<|endoftext|>")?,
        sot,
        translate,
        transcribe: find("<|transcribe|>")?,
        sot_lm: find("<|startoflm|>")?,
        sot_prev: find("<|startofprev|>")?,
        no_speech: find("<|nocaptions|>")?,
        no_timestamps,
        timestamp_begin,
        languages,
    })
}

/// GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the
/// others are shifted to code points from 256 up, in byte order.
fn byte_alphabet() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    out
}

/// The special tokens of an English-only vocabulary, in order, and its first
/// two timestamps: the tail of a small vocabulary in tests.
#[cfg(test)]
pub(crate) const TEST_SPECIAL_TOKENS: [&str; 11] = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
    "<|0.00|>",
    "<|0.02|>",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_vocabulary() -> String {
        let mut v: Vec<String> = vec!["Hello".into(), "Ġworld".into(), "Ã©".into(), "Ċ".into()];
        v.extend(TEST_SPECIAL_TOKENS.map(String::from));
        v.join("\n") + "\n"
    }

    #[test]
    fn finds_special_tokens_by_name() {
        let t = Tokenizer::from_vocabulary(&tiny_vocabulary()).unwrap();
        let s = t.specials();
        assert_eq!((s.eot, s.sot, s.translate, s.transcribe), (4, 5, 7, 8));
        assert_eq!(
            (s.no_speech, s.no_timestamps, s.timestamp_begin),
            (11, 12, 13)
        );
        assert_eq!(s.languages, vec![("en".to_owned(), 6)]);
        assert!(!s.multilingual);
        assert_eq!(t.vocab_size(), 15);
    }

    #[test]
    fn decodes_byte_level_tokens_and_skips_specials_and_timestamps() {
        let t = Tokenizer::from_vocabulary(&tiny_vocabulary()).unwrap();
        assert_eq!(t.decode(&[5, 13, 0, 1, 2, 3, 14, 4]), "Hello world\u{e9}\n");
    }

    #[test]
    fn keeps_empty_tokens_so_ids_stay_aligned() {
        let vocab = format!("a\n\n{}", tiny_vocabulary());
        let t = Tokenizer::from_vocabulary(&vocab).unwrap();
        assert_eq!(t.specials().eot, 6);
        assert_eq!(t.token(1), Some(""));
    }

    #[test]
    fn missing_special_token_is_an_error() {
        let err = Tokenizer::from_vocabulary("a\nb\n").err();
        assert_eq!(
            err,
            Some(TokenizerError::MissingSpecial("<|startoftranscript|>"))
        );
    }

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let a = byte_alphabet();
        let set: std::collections::HashSet<char> = a.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
    }
}
