//! Media as bytes, through the host (MSC4039): a message's audio (for an
//! encrypted attachment, checked against its SHA-256 and decrypted here) and
//! a task's input files, checked against the size and SHA-256 the task names.
//!
//! In an encrypted room the host decrypts events but not media: a voice
//! message's `file` carries the AES-CTR key, counter and the ciphertext's
//! hash, and the widget must verify and decrypt the bytes itself
//! (Matrix spec, "Sending encrypted attachments").

use crate::host::room::{call, describe_error, Room};
use js_sys::{Array, Object, Reflect, Uint8Array};
use manifest::base64;
use manifest::events::Input;
use manifest::transcription::{AudioRef, EncryptedFile};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CryptoKey, SubtleCrypto};

/// The audio file of `audio`, in the clear.
pub async fn fetch_audio(room: &Room, audio: &AudioRef) -> Result<Vec<u8>, String> {
    let mxc = audio.media().ok_or("the message names no media")?;
    if let Some(size) = audio.size {
        AudioRef::check_size(size)?;
    }
    let bytes = room
        .download(mxc.as_str())
        .await
        .map_err(|e| format!("could not download the audio: {e}"))?;
    // The message's size may understate it.
    AudioRef::check_size(bytes.len() as u64)?;
    match &audio.file {
        None => Ok(bytes),
        Some(file) => decrypt_attachment(&bytes, file).await,
    }
}

/// A task's input file, exactly as its submitter uploaded it: a file whose
/// size or SHA-256 differs is refused, never handed to a script.
pub async fn fetch_input(room: &Room, input: &Input) -> Result<Vec<u8>, String> {
    let bytes = room
        .download(input.mxc.as_str())
        .await
        .map_err(|e| format!("could not download the input {}: {e}", input.mxc))?;
    let sha256 = sha256_hex(&bytes).await?;
    if bytes.len() as u64 != input.size || sha256 != input.sha256 {
        return Err(format!(
            "the input {} is not the file the task names ({} bytes, sha256 {sha256}; expected {} bytes, sha256 {}): it was not used",
            input.mxc,
            bytes.len(),
            input.size,
            input.sha256
        ));
    }
    Ok(bytes)
}

/// Lowercase hex SHA-256, by WebCrypto.
pub async fn sha256_hex(bytes: &[u8]) -> Result<String, String> {
    let digest =
        wait(subtle()?.digest_with_str_and_buffer_source("SHA-256", &Uint8Array::from(bytes)))
            .await?;
    Ok(manifest::digest::to_hex(&Uint8Array::new(&digest).to_vec()))
}

fn subtle() -> Result<SubtleCrypto, String> {
    gloo::utils::window()
        .crypto()
        .map(|c| c.subtle())
        .map_err(|_| "this browser offers no WebCrypto".into())
}

/// Awaits a WebCrypto call, which may also throw before returning a promise.
async fn wait(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, String> {
    call(promise.map_err(|e| describe_error(&e))?).await
}

/// Checks the ciphertext's SHA-256, then decrypts it with AES-CTR.
pub async fn decrypt_attachment(
    ciphertext: &[u8],
    file: &EncryptedFile,
) -> Result<Vec<u8>, String> {
    let subtle = subtle()?;
    let data = Uint8Array::from(ciphertext);
    let digest = wait(subtle.digest_with_str_and_buffer_source("SHA-256", &data)).await?;
    let got = base64::encode(&Uint8Array::new(&digest).to_vec())
        .trim_end_matches('=')
        .to_owned();
    let want = file.hashes.get("sha256").map(|h| h.trim_end_matches('='));
    if want != Some(got.as_str()) {
        return Err(format!(
            "the encrypted audio does not match its hash (sha256 {got}, expected {}): it was not used",
            want.unwrap_or("none")
        ));
    }
    let jwk = Object::new();
    for (key, value) in [
        ("kty", &file.key.kty),
        ("alg", &file.key.alg),
        ("k", &file.key.k),
    ] {
        Reflect::set(&jwk, &key.into(), &JsValue::from_str(value))
            .map_err(|e| describe_error(&e))?;
    }
    Reflect::set(&jwk, &"ext".into(), &JsValue::TRUE).map_err(|e| describe_error(&e))?;
    let usages = Array::of1(&"decrypt".into());
    let key: CryptoKey = wait(subtle.import_key_with_str("jwk", &jwk, "AES-CTR", false, &usages))
        .await
        .map_err(|e| format!("the attachment's key is unusable: {e}"))?
        .unchecked_into();
    let iv = base64::decode(&file.iv).ok_or_else(|| format!("'{}' is not base64", file.iv))?;
    let counter = Uint8Array::from(iv.as_slice());
    if counter.length() != 16 {
        return Err("the attachment's iv is not 16 bytes".into());
    }
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"AES-CTR".into()).map_err(|e| describe_error(&e))?;
    Reflect::set(&algorithm, &"counter".into(), &counter).map_err(|e| describe_error(&e))?;
    // Matrix uses the iv's low 64 bits as the block counter.
    Reflect::set(&algorithm, &"length".into(), &JsValue::from(64))
        .map_err(|e| describe_error(&e))?;
    let plain = wait(subtle.decrypt_with_object_and_buffer_source(&algorithm, &key, &data))
        .await
        .map_err(|e| format!("the audio could not be decrypted: {e}"))?;
    Ok(Uint8Array::new(&plain).to_vec())
}
