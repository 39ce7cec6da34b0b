//! `whisper-convert CT2_DIR OUT_DIR`: turns a faster-whisper (CTranslate2)
//! model directory (`model.bin`, `config.json`, `vocabulary.txt`) into what
//! the engine loads: `model.safetensors` with candle's names (fp16 kept),
//! `model.json` (dimensions, decoding options, special token ids) and a copy
//! of `vocabulary.txt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use whisper::{convert, ct2::Ct2Model};

fn run(src: &Path, out: &Path) -> Result<(), String> {
    let read = |name: &str| {
        let p = src.join(name);
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let as_text = |name: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|e| format!("{name} is not UTF-8: {e}"))
    };
    let bin = read("model.bin")?;
    let options = as_text("config.json", read("config.json")?)?;
    let vocabulary = as_text("vocabulary.txt", read("vocabulary.txt")?)?;
    let model = Ct2Model::parse(&bin).map_err(|e| e.to_string())?;
    let converted = convert::convert(&model, &options, &vocabulary).map_err(|e| e.to_string())?;
    let st = convert::to_safetensors(&converted.tensors);
    let info = serde_json::to_string_pretty(&converted.info).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = out.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("model.safetensors", &st)?;
    write("model.json", info.as_bytes())?;
    write("vocabulary.txt", vocabulary.as_bytes())?;
    let c = &converted.info.config;
    eprintln!(
        "{} tensors, {} bytes; d_model {}, {}+{} layers, {} heads, vocabulary {}",
        converted.tensors.len(),
        st.len(),
        c.d_model,
        c.encoder_layers,
        c.decoder_layers,
        c.encoder_attention_heads,
        c.vocab_size
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [src, out] = &args[..] else {
        eprintln!("usage: whisper-convert CT2_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    match run(src, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whisper-convert: {e}");
            ExitCode::FAILURE
        }
    }
}
