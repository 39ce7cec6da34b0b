//! Downloads a Whisper model's files into the worker, checks each against its
//! pinned sha256 before anything reads it, and keeps them in the browser's
//! Cache Storage so the next task does not download them again.
//!
//! Where the browser refuses the widget storage (a widget on another site
//! than its host page gets no Cache Storage or IndexedDB in Chromium), the
//! files are downloaded for this worker only, and `ModelStore::no_cache`
//! says why, for the UI to show.

use crate::catalog::{ModelFile, ModelSource, FILES};
use js_sys::{ArrayBuffer, Uint8Array};
use manifest::digest::to_hex;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response, WorkerGlobalScope};
use whisper::transcribe::{Engine, LoadError};

/// The Cache Storage bucket; a new format gets a new name.
const CACHE_NAME: &str = "potluck-models-v1";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("could not download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "{url} is not the file Potluck expects (sha256 {got}, expected {want}); it was not used"
    )]
    Integrity {
        url: String,
        got: String,
        want: String,
    },
    #[error("{0}")]
    Source(String),
    #[error("the model does not load: {0}")]
    Load(#[from] LoadError),
    #[error("this browser offers no {0} to the worker")]
    NoBrowserApi(&'static str),
}

/// What loading a model did, for the UI and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Files read from Cache Storage rather than downloaded.
    pub from_cache: usize,
    pub downloaded_bytes: u64,
    /// Why the files could not be kept for next time, if they could not.
    pub not_kept: Option<String>,
}

pub struct ModelStore {
    scope: WorkerGlobalScope,
    cache: Option<Cache>,
    /// Why there is no cache (the browser refused the widget storage).
    pub no_cache: Option<String>,
}

fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

async fn wait(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| describe(&e))
}

impl ModelStore {
    /// Opens the model cache, or says why there is none.
    pub async fn open() -> Result<Self, ModelError> {
        let scope: WorkerGlobalScope = js_sys::global()
            .dyn_into()
            .map_err(|_| ModelError::NoBrowserApi("worker scope"))?;
        let opened = match scope.caches() {
            Ok(caches) => wait(caches.open(CACHE_NAME)).await,
            Err(e) => Err(describe(&e)),
        };
        let (cache, no_cache) = match opened {
            Ok(cache) => (Some(cache.unchecked_into::<Cache>()), None),
            Err(reason) => (
                None,
                Some(format!(
                    "the browser keeps no files for this widget ({reason}), so the model is downloaded again for every new worker"
                )),
            ),
        };
        Ok(Self {
            scope,
            cache,
            no_cache,
        })
    }

    /// Downloads (or reads from the cache) all of a model's files and loads
    /// it. `progress` hears, while a file downloads, how many of its bytes
    /// have come and how many there are (0 when the server does not say).
    pub async fn load_engine(
        &self,
        source: &ModelSource,
        progress: &dyn Fn(Download),
    ) -> Result<(Engine, LoadReport), ModelError> {
        let mut report = LoadReport {
            not_kept: self.no_cache.clone(),
            ..LoadReport::default()
        };
        let mut contents = Vec::with_capacity(FILES.len());
        for name in FILES {
            let file = source
                .file(name)
                .ok_or_else(|| ModelError::Source(format!("the model names no {name}")))?;
            contents.push(self.fetch_verified(file, &mut report, progress).await?);
        }
        let text = |bytes: &[u8], name: &str| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| ModelError::Source(format!("{name} is not UTF-8 text")))
        };
        let config = text(&contents[1], FILES[1])?;
        let vocabulary = text(&contents[2], FILES[2])?;
        let engine = Engine::from_ct2(&contents[0], &config, &vocabulary)?;
        Ok((engine, report))
    }

    /// Forgets a model's cached files (a friend who wants the space back).
    pub async fn forget(&self, source: &ModelSource) {
        if let Some(cache) = &self.cache {
            for file in &source.files {
                let _ = wait(cache.delete_with_str(&file.url)).await;
            }
        }
    }

    /// One file's bytes, checked against its sha256. A cached copy that does
    /// not match (a half-written or tampered entry) is dropped and fetched anew.
    async fn fetch_verified(
        &self,
        file: &ModelFile,
        report: &mut LoadReport,
        progress: &dyn Fn(Download),
    ) -> Result<Vec<u8>, ModelError> {
        if let Some(buffer) = self.cached(file).await {
            if self.sha256(&buffer).await? == file.sha256 {
                report.from_cache += 1;
                return Ok(Uint8Array::new(&buffer).to_vec());
            }
            if let Some(cache) = &self.cache {
                let _ = wait(cache.delete_with_str(&file.url)).await;
            }
        }
        let download = |reason: String| ModelError::Download {
            url: file.url.clone(),
            reason,
        };
        let response: Response = wait(self.scope.fetch_with_str(&file.url))
            .await
            .map_err(download)?
            .unchecked_into();
        if !response.ok() {
            return Err(download(format!("HTTP {}", response.status())));
        }
        let bytes = read_body(&response, |received, total| {
            progress(Download {
                file: &file.name,
                received,
                total,
            })
        })
        .await
        .map_err(download)?;
        let buffer = Uint8Array::from(bytes.as_slice()).buffer();
        let got = self.sha256(&buffer).await?;
        if got != file.sha256 {
            return Err(ModelError::Integrity {
                url: file.url.clone(),
                got,
                want: file.sha256.clone(),
            });
        }
        report.downloaded_bytes += bytes.len() as u64;
        if let Err(reason) = self.keep(file, &buffer).await {
            report.not_kept = Some(reason);
        }
        // The bytes are already here: no third copy back out of the buffer.
        Ok(bytes)
    }

    async fn cached(&self, file: &ModelFile) -> Option<ArrayBuffer> {
        let cache = self.cache.as_ref()?;
        let hit = wait(cache.match_with_str(&file.url)).await.ok()?;
        let response = hit.dyn_into::<Response>().ok()?;
        let buffer = wait(response.array_buffer().ok()?).await.ok()?;
        buffer.dyn_into().ok()
    }

    /// Stores a verified file. Running out of quota is not an error: the
    /// model still runs, it is just downloaded again next time.
    async fn keep(&self, file: &ModelFile, buffer: &ArrayBuffer) -> Result<(), String> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        let response =
            Response::new_with_opt_buffer_source(Some(buffer)).map_err(|e| describe(&e))?;
        wait(cache.put_with_str(&file.url, &response))
            .await
            .map(|_| ())
            .map_err(|reason| format!("the browser did not keep {} ({reason})", file.name))
    }

    async fn sha256(&self, buffer: &ArrayBuffer) -> Result<String, ModelError> {
        let subtle = self
            .scope
            .crypto()
            .map_err(|_| ModelError::NoBrowserApi("WebCrypto"))?
            .subtle();
        let digest = subtle
            .digest_with_str_and_buffer_source("SHA-256", buffer)
            .map_err(|e| ModelError::Source(describe(&e)))?;
        let digest = wait(digest).await.map_err(ModelError::Source)?;
        Ok(to_hex(&Uint8Array::new(&digest).to_vec()))
    }
}

/// How far one file's download got.
#[derive(Debug, Clone, Copy)]
pub struct Download<'a> {
    pub file: &'a str,
    pub received: u64,
    /// From `Content-Length`; 0 when the server does not say.
    pub total: u64,
}

/// Reports at most this often, in bytes: a 76 MB model gives about 40 reports.
const PROGRESS_EVERY_BYTES: u64 = 2 * 1024 * 1024;

/// A response's body, read as it arrives, with `progress(received, total)`
/// every `PROGRESS_EVERY_BYTES` and at the end.
async fn read_body(response: &Response, progress: impl Fn(u64, u64)) -> Result<Vec<u8>, String> {
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let Some(body) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    // The server's length is a hint for the allocation, never trusted beyond it.
    let mut bytes = Vec::with_capacity(total.min(1 << 30) as usize);
    let mut reported = 0;
    loop {
        let chunk = wait(reader.read()).await?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            break;
        }
        if let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) {
            // Straight into the buffer, without a Vec per chunk on the way.
            let piece: Uint8Array = value.unchecked_into();
            let at = bytes.len();
            bytes.resize(at + piece.length() as usize, 0);
            piece.copy_to(&mut bytes[at..]);
        }
        let received = bytes.len() as u64;
        if received >= reported + PROGRESS_EVERY_BYTES {
            progress(received, total);
            reported = received;
        }
    }
    progress(bytes.len() as u64, total);
    Ok(bytes)
}
