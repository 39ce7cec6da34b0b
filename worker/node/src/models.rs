//! Whisper models on this machine: the same pinned files a browser's worker
//! fetches (`catalog`), downloaded once from the Hugging Face Hub (or a
//! server with its path shape) into the models folder, every byte checked
//! against the pinned sha256 before it is kept.

use manifest::digest::sha256_hex;
use manifest::transcription::WhisperModel;
use potluck_worker::catalog::{local_models_dir, ModelFile, ModelSource, FILES};
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
    ensure_in(&local_models_dir(), model, hub).await
}

/// `ensure`, with the models folder `models`.
async fn ensure_in(models: &Path, model: WhisperModel, hub: &str) -> Result<PathBuf, String> {
    let dir = models.join(model.name());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A stand-in for the Hub that answers every request with `body`.
    fn serve(body: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            }
        });
        url
    }

    #[tokio::test]
    async fn a_file_that_is_not_the_pinned_one_is_refused_and_nothing_is_kept() {
        let hub = serve(b"{\"not\": \"the model\"}");
        let models = std::env::temp_dir().join(format!("potluck-tampered-{}", std::process::id()));
        let error = ensure_in(&models, WhisperModel::TinyEn, &hub)
            .await
            .unwrap_err();
        assert!(error.contains("is not the pinned file"), "{error}");
        assert!(error.ends_with("it was not kept"), "{error}");
        let kept: Vec<_> = std::fs::read_dir(models.join("tiny.en")).unwrap().collect();
        assert!(kept.is_empty(), "nothing half-written: {kept:?}");
        std::fs::remove_dir_all(&models).unwrap();
    }
}
