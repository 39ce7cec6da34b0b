//! WebGPU kernels: a WGSL compute shader that the pool runs once per chunk on
//! friends' GPUs (wgpu on the browser's WebGPU in the worker; natively on
//! Vulkan, Mesa's lavapipe in tests).
//!
//! The binding layout is fixed, so a task author only writes the shader:
//! - `@group(0) @binding(0) var<uniform> params: array<vec4<u32>, N>`: the
//!   chunk's parameter words, zero-padded to whole `vec4`s;
//! - `@group(0) @binding(1) var<storage, read_write> out: array<u32>`: the
//!   chunk's output, `output_words` words, read back after the dispatch.
//!
//! Only nodes whose announcement says WebGPU works get these tasks: a kernel
//! task must require WebGPU.

use crate::base64;
use crate::kind_error::KindError;
use crate::limits::MAX_SCRIPT_SECONDS;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Shader source travels in the task event, which must stay under 64 KB.
pub const MAX_WGSL_BYTES: usize = 16 * 1024;
/// A chunk's parameters: at most four `vec4<u32>`.
pub const MAX_PARAM_WORDS: usize = 16;
/// Output words per chunk: their base64 must fit a chunk's 4 KiB output.
pub const MAX_OUTPUT_WORDS: u32 = 640;
/// WebGPU's guaranteed limit on workgroups per dimension.
pub const MAX_WORKGROUPS: u32 = 65_535;
/// The largest square tile whose grey bytes fit in `MAX_OUTPUT_WORDS`.
pub const MAX_TILE_SIZE: u32 = 48;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelTask {
    /// The WGSL source of a compute shader.
    pub wgsl: String,
    /// Its `@compute` entry point.
    pub entry: String,
    /// Workgroups dispatched for each chunk: `[x, y, z]`.
    pub workgroups: [u32; 3],
    /// Size of the output buffer (binding 1), in `u32` words.
    pub output_words: u32,
    /// One chunk per item: the words of its parameters (binding 0).
    pub chunks: Vec<Vec<u32>>,
    /// How a chunk's output reads.
    #[serde(default)]
    pub output: KernelOutput,
    /// A chunk that runs longer is stopped (its worker, and with it its GPU
    /// device, is dropped) and the task fails with the reason.
    #[serde(default = "default_kernel_seconds")]
    pub max_seconds: u32,
}

/// A kernel's time limit per chunk unless the task sets one: GPU work that
/// takes a minute for one chunk should be split into more chunks.
pub const DEFAULT_KERNEL_SECONDS: u32 = 60;

fn default_kernel_seconds() -> u32 {
    DEFAULT_KERNEL_SECONDS
}

/// What a chunk's output buffer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelOutput {
    /// Bytes for the submitter: `{"bytes": <base64>}`.
    #[default]
    Bytes,
    /// A square tile of a picture, one grey byte per pixel, row by row; the
    /// chunk's first two parameters are its column and row. The widget
    /// assembles such tiles live: `{"x", "y", "size", "pixels"}`.
    Tile { size: u32 },
}

impl KernelTask {
    pub fn validate(&self, chunks: u32) -> Result<(), KindError> {
        let bad = |reason: String| Err(KindError::BadKernel(reason));
        if self.wgsl.len() > MAX_WGSL_BYTES {
            return bad(format!(
                "the shader is {} bytes; the limit is {MAX_WGSL_BYTES}",
                self.wgsl.len()
            ));
        }
        let entry_ok = !self.entry.is_empty()
            && self.entry.len() <= 64
            && self
                .entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !entry_ok {
            return bad("the entry point must be a WGSL identifier".into());
        }
        if self
            .workgroups
            .iter()
            .any(|&n| n == 0 || n > MAX_WORKGROUPS)
        {
            return bad(format!(
                "workgroups {:?}: each must be 1 to {MAX_WORKGROUPS}",
                self.workgroups
            ));
        }
        if self.output_words == 0 || self.output_words > MAX_OUTPUT_WORDS {
            return bad(format!(
                "{} output words: it must be 1 to {MAX_OUTPUT_WORDS}",
                self.output_words
            ));
        }
        if let Some(params) = self.chunks.iter().find(|p| p.len() > MAX_PARAM_WORDS) {
            return bad(format!(
                "a chunk has {} parameter words; the limit is {MAX_PARAM_WORDS}",
                params.len()
            ));
        }
        if self.max_seconds == 0 || self.max_seconds > MAX_SCRIPT_SECONDS {
            return Err(KindError::BadTimeLimit(self.max_seconds));
        }
        if let KernelOutput::Tile { size } = self.output {
            if !(1..=MAX_TILE_SIZE).contains(&size) || size * size != self.output_words * 4 {
                return bad(format!(
                    "a tile of {size}×{size} needs {} output words (at most {MAX_TILE_SIZE}×{MAX_TILE_SIZE})",
                    (size * size).div_ceil(4)
                ));
            }
            if self.chunks.iter().any(|p| p.len() < 2) {
                return bad("a tile's chunk needs its column and row as parameters".into());
            }
        }
        if self.chunks.len() as u64 != u64::from(chunks) {
            return Err(KindError::ChunksMismatch {
                split: self.chunks.len() as u64,
                chunks,
            });
        }
        Ok(())
    }

    /// `sha256-` and the base64 SHA-256 of the source: what the room's
    /// allowlist pins.
    pub fn integrity(&self) -> String {
        use sha2::{Digest, Sha256};
        format!(
            "sha256-{}",
            base64::encode(&Sha256::digest(self.wgsl.as_bytes()))
        )
    }

    /// The task as chunk `index` runs it: that chunk's parameters only.
    pub fn chunk(&self, index: u32) -> KernelTask {
        KernelTask {
            chunks: self
                .chunks
                .get(index as usize)
                .cloned()
                .into_iter()
                .collect(),
            ..self.clone()
        }
    }

    /// The parameter words of a one-chunk task, padded to whole `vec4`s (a
    /// uniform buffer's layout), at least one.
    pub fn param_words(&self) -> Vec<u32> {
        let mut words = self.chunks.first().cloned().unwrap_or_default();
        words.resize(words.len().div_ceil(4).max(1) * 4, 0);
        words
    }

    /// A one-chunk task's output, from the bytes of its output buffer.
    pub fn output_from(&self, bytes: &[u8]) -> Value {
        match self.output {
            KernelOutput::Bytes => json!({ "bytes": base64::encode(bytes) }),
            KernelOutput::Tile { size } => {
                let params = self.chunks.first().map(Vec::as_slice).unwrap_or_default();
                let pixels = &bytes[..bytes.len().min((size * size) as usize)];
                json!({
                    "x": params.first().copied().unwrap_or(0),
                    "y": params.get(1).copied().unwrap_or(0),
                    "size": size,
                    "pixels": base64::encode(pixels),
                })
            }
        }
    }

    pub fn check_output(&self, output: &Value) -> Result<(), KindError> {
        let key = match self.output {
            KernelOutput::Bytes => "bytes",
            KernelOutput::Tile { .. } => "pixels",
        };
        output
            .get(key)
            .and_then(Value::as_str)
            .and_then(base64::decode)
            .map(|_| ())
            .ok_or_else(|| KindError::BadOutput(format!("expected \"{key}\" in base64")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(size: u32) -> KernelTask {
        KernelTask {
            wgsl: "@compute @workgroup_size(8, 8) fn main() {}".into(),
            entry: "main".into(),
            workgroups: [size.div_ceil(8), size.div_ceil(8), 1],
            output_words: size * size / 4,
            chunks: vec![vec![0, 0], vec![1, 0], vec![0, 1], vec![1, 1]],
            output: KernelOutput::Tile { size },
            max_seconds: DEFAULT_KERNEL_SECONDS,
        }
    }

    #[test]
    fn a_tiled_kernel_validates_and_each_chunk_gets_its_own_parameters() {
        let task = tiles(32);
        task.validate(4).unwrap();
        let chunk = task.chunk(2);
        assert_eq!(chunk.chunks, vec![vec![0, 1]]);
        assert_eq!(chunk.param_words(), vec![0, 1, 0, 0]);
        let output = chunk.output_from(&[7; 32 * 32]);
        assert_eq!(
            (output["x"].as_u64(), output["y"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(
            base64::decode(output["pixels"].as_str().unwrap()).unwrap(),
            vec![7; 1024]
        );
        chunk.check_output(&output).unwrap();
    }

    #[test]
    fn the_largest_output_fits_a_chunks_output_limit() {
        let task = KernelTask {
            output_words: MAX_OUTPUT_WORDS,
            output: KernelOutput::Bytes,
            ..tiles(32)
        };
        let output = task
            .chunk(0)
            .output_from(&vec![255; MAX_OUTPUT_WORDS as usize * 4]);
        assert!(output.to_string().len() <= crate::limits::MAX_INLINE_OUTPUT_BYTES);
        let tile = tiles(MAX_TILE_SIZE).chunk(0).output_from(&[255; 48 * 48]);
        assert!(tile.to_string().len() <= crate::limits::MAX_INLINE_OUTPUT_BYTES);
    }

    #[test]
    fn malformed_kernels_are_refused_with_the_reason() {
        let cases: Vec<(KernelTask, &str)> = vec![
            (
                KernelTask {
                    wgsl: "x".repeat(MAX_WGSL_BYTES + 1),
                    ..tiles(32)
                },
                "bytes",
            ),
            (
                KernelTask {
                    entry: "main()".into(),
                    ..tiles(32)
                },
                "identifier",
            ),
            (
                KernelTask {
                    workgroups: [0, 1, 1],
                    ..tiles(32)
                },
                "workgroups",
            ),
            (
                KernelTask {
                    output_words: MAX_OUTPUT_WORDS + 1,
                    output: KernelOutput::Bytes,
                    ..tiles(32)
                },
                "output words",
            ),
            (
                KernelTask {
                    output_words: 100,
                    ..tiles(32)
                },
                "needs 256",
            ),
            (
                KernelTask {
                    chunks: vec![vec![0; MAX_PARAM_WORDS + 1]; 4],
                    ..tiles(32)
                },
                "parameter words",
            ),
            (
                KernelTask {
                    chunks: vec![vec![0]; 4],
                    ..tiles(32)
                },
                "column and row",
            ),
            (
                KernelTask {
                    max_seconds: 0,
                    ..tiles(32)
                },
                "time limit",
            ),
        ];
        for (task, expected) in cases {
            let reason = task.validate(4).unwrap_err().to_string();
            assert!(reason.contains(expected), "{reason} should say {expected}");
        }
        assert!(matches!(
            tiles(32).validate(5),
            Err(KindError::ChunksMismatch { .. })
        ));
    }

    #[test]
    fn only_nodes_with_webgpu_run_a_kernel_whatever_its_submitter_wrote() {
        let spec = crate::TaskSpec::new(crate::TaskKind::Kernel(Box::new(tiles(32))), 4);
        assert!(!spec.requirements.webgpu);
        let caps = |webgpu| crate::NodeCaps {
            cores: 4,
            slots: 2,
            memory_mb: None,
            webgpu,
            models: vec![],
            declined: vec![],
            runs: None,
        };
        assert!(spec.runs_on(&caps(true)));
        assert!(!spec.runs_on(&caps(false)));
    }

    #[test]
    fn an_output_without_its_bytes_is_malformed() {
        let task = tiles(32).chunk(0);
        assert!(task
            .check_output(&json!({"x": 0, "y": 0, "size": 32}))
            .is_err());
        assert!(task
            .check_output(&json!({"pixels": "not base64!"}))
            .is_err());
    }
}
