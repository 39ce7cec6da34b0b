//! Whisper models on this machine: the same pinned files a browser's worker
//! fetches (`catalog`), downloaded once from the Hugging Face Hub (or a
//! server with its path shape) into the models folder, every byte checked
//! against the pinned sha256 before it is kept.

use manifest::transcription::WhisperModel;
use potluck_worker::catalog::{local_models_dir, ModelFile, ModelSource, FILES};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Models whose files are all on this machine.
pub fn on_disk() -> Vec<String> {
    WhisperModel::ALL
        .iter()
        .filter(|m| is_complete(&local_models_dir().join(m.name())))
        .map(|m| m.name().to_owned())
        .collect()
}

fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|name| dir.join(name).is_file())
}

/// The folder holding `model`'s files, fetched from `hub` first if any is missing.
pub async fn ensure(model: WhisperModel, hub: &str) -> Result<PathBuf, String> {
    let dir = local_models_dir().join(model.name());
    if is_complete(&dir) {
        return Ok(dir);
    }
    let source = ModelSource::from_hub(model.name(), hub)?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let http = matrix_sdk::reqwest::Client::new();
    for file in &source.files {
        let path = dir.join(&file.name);
        if !path.is_file() {
            tracing::info!(model = model.name(), file = %file.name, from = %file.url, "downloading");
            fetch(&http, file, &path).await?;
        }
    }
    Ok(dir)
}

/// One file, kept only once its bytes hash as pinned: written beside its
/// final name and renamed, so an interrupted download leaves nothing half-written.
async fn fetch(
    http: &matrix_sdk::reqwest::Client,
    file: &ModelFile,
    path: &Path,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("{} could not be downloaded: {e}", file.url);
    let bytes = http
        .get(&file.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| failed(&e))?
        .bytes()
        .await
        .map_err(|e| failed(&e))?;
    let digest = sha256_hex(&bytes);
    if digest != file.sha256 {
        return Err(format!(
            "{} is not the pinned file (sha256 {digest}, expected {}); it was not kept",
            file.url, file.sha256
        ));
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_lowercase_hex_as_the_catalog_pins_it() {
        // sha256("abc"), from FIPS 180-2.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
