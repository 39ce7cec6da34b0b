//! The Whisper models a node can load, each file pinned by its sha256.
//!
//! A model is the three files of a CTranslate2 package (faster-whisper's
//! format): the worker downloads them, checks every byte against the pinned
//! hash before using it, and converts them in memory. Where the files are
//! fetched from is configurable (a base URL); what they must contain is not.

use serde::{Deserialize, Serialize};

/// One file of a model, where to fetch it and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    pub name: String,
    pub url: String,
    /// Lowercase hex.
    pub sha256: String,
}

/// The files of one model, as a worker fetches them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSource {
    pub model: String,
    pub files: Vec<ModelFile>,
}

/// The files a model consists of, in the order `Engine::from_ct2` takes them.
pub const FILES: [&str; 3] = ["model.bin", "config.json", "vocabulary.txt"];

/// The models Potluck knows, with the sha256 of each of `FILES`: the
/// CTranslate2 packages on PyPI that `scripts/fetch-models.sh` verifies too.
const PINNED: [(&str, [&str; 3]); 2] = [
    (
        "tiny.en",
        [
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        ],
    ),
    (
        "base",
        [
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        ],
    ),
];

/// The model a transcription uses unless the friend picks another.
pub const DEFAULT_MODEL: &str = "tiny.en";

/// Where `scripts/fetch-models.sh` keeps models on this machine, one folder
/// per model: `$POTLUCK_MODELS`, else `~/.cache/potluck/models`.
pub fn local_models_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    std::env::var_os("POTLUCK_MODELS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/potluck/models")
        },
        PathBuf::from,
    )
}

impl ModelSource {
    /// A known model's files under `base_url`, one folder per model
    /// (`{base_url}/tiny.en/model.bin`, …).
    pub fn pinned(model: &str, base_url: &str) -> Result<Self, String> {
        let (_, hashes) = PINNED
            .iter()
            .find(|(name, _)| *name == model)
            .ok_or_else(|| {
                let known: Vec<&str> = PINNED.iter().map(|(name, _)| *name).collect();
                format!(
                    "no Whisper model is called '{model}' (known: {})",
                    known.join(", ")
                )
            })?;
        let base = base_url.trim_end_matches('/');
        let files = FILES
            .iter()
            .zip(hashes)
            .map(|(name, sha256)| ModelFile {
                name: (*name).into(),
                url: format!("{base}/{model}/{name}"),
                sha256: (*sha256).into(),
            })
            .collect();
        Ok(Self {
            model: model.into(),
            files,
        })
    }

    /// A model from anywhere, as long as each of `FILES` is named with a
    /// well-formed sha256.
    pub fn custom(model: &str, files: Vec<ModelFile>) -> Result<Self, String> {
        for name in FILES {
            let file = files
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| format!("model '{model}' names no {name}"))?;
            check_sha256_hex(&file.sha256).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(Self {
            model: model.into(),
            files,
        })
    }

    pub fn file(&self, name: &str) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

fn check_sha256_hex(hex: &str) -> Result<(), String> {
    let well_formed = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if well_formed {
        Ok(())
    } else {
        Err(format!("'{hex}' is not a sha256 (64 lowercase hex digits)"))
    }
}

/// Lowercase hex of a digest.
pub fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_model_names_its_three_files_under_the_base_url() {
        let source = ModelSource::pinned("tiny.en", "https://host/models/").unwrap();
        let urls: Vec<&str> = source.files.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://host/models/tiny.en/model.bin",
                "https://host/models/tiny.en/config.json",
                "https://host/models/tiny.en/vocabulary.txt"
            ]
        );
        assert!(source
            .files
            .iter()
            .all(|f| check_sha256_hex(&f.sha256).is_ok()));
    }

    #[test]
    fn an_unknown_model_or_a_bad_hash_is_refused_with_a_reason() {
        let err = ModelSource::pinned("large-v3", "/models").unwrap_err();
        assert_eq!(
            err,
            "no Whisper model is called 'large-v3' (known: tiny.en, base)"
        );
        let mut files = ModelSource::pinned("base", "/m").unwrap().files;
        files[1].sha256 = "ABC".into();
        let err = ModelSource::custom("mine", files).unwrap_err();
        assert!(
            err.starts_with("config.json: 'ABC' is not a sha256"),
            "{err}"
        );
        let mut files = ModelSource::pinned("base", "/m").unwrap().files;
        files.remove(2);
        let err = ModelSource::custom("mine", files).unwrap_err();
        assert_eq!(err, "model 'mine' names no vocabulary.txt");
    }

    #[test]
    fn digests_print_as_lowercase_hex() {
        assert_eq!(to_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
