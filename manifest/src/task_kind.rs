//! The kinds of work Potluck knows, how each splits into chunks and how the
//! chunks' outputs merge into the task's result.

use crate::kernel::KernelTask;
use crate::kind_error::KindError;
use crate::limits::MAX_SCRIPT_SECONDS;
use crate::transcription::{TranscribeTask, WhisperModel};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Largest number a `primes` task may reach: the worker's sieve needs
/// `sqrt(end)` bytes of memory, which stays small up to here.
pub const PRIMES_MAX_END: u64 = 1 << 50;

/// Read by hand (`events::read`), written with serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "params", rename_all = "snake_case")]
pub enum TaskKind {
    /// Count the primes `p` with `start <= p < end`. Needs no model and no
    /// input file, so it exercises the pool on its own.
    Primes { start: u64, end: u64 },
    /// Run a Web Worker script that the room allowed on each chunk of a split
    /// (see `docs/writing-tasks.md`).
    Script(ScriptTask),
    /// Speech to text with Whisper: a plan, then one chunk per span of audio
    /// (see `transcription`).
    Transcribe(Box<TranscribeTask>),
    /// A WGSL compute shader, one dispatch per chunk, on nodes with WebGPU
    /// (see `kernel`).
    Kernel(Box<KernelTask>),
}

impl TaskKind {
    /// The kind's name, as a task's `kind` and a node's `runs` write it.
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Primes { .. } => "primes",
            TaskKind::Script(_) => "script",
            TaskKind::Transcribe(_) => "transcribe",
            TaskKind::Kernel(_) => "kernel",
        }
    }
}

/// A task that runs a friend's own Web Worker script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptTask {
    /// Where the script is served: `https://`, or `http://` on this machine.
    pub url: String,
    /// Subresource Integrity of the script's bytes (`sha256-…`, `sha384-…`,
    /// `sha512-…`): a node checks it before running a single line.
    pub integrity: String,
    /// Parameters every chunk receives, small JSON.
    #[serde(default)]
    pub args: Value,
    pub split: Split,
    /// A chunk still running after this long is stopped and fails the task.
    #[serde(default = "default_max_seconds")]
    pub max_seconds: u32,
}

/// Five minutes: long enough for real work, short enough that a script that
/// loops forever does not hold a friend's worker for long.
pub const DEFAULT_SCRIPT_SECONDS: u32 = 300;

fn default_max_seconds() -> u32 {
    DEFAULT_SCRIPT_SECONDS
}

/// How a script task is cut into chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// One chunk per item; the chunk receives its item.
    List(Vec<Value>),
    /// `start..end` in steps of `size`; each chunk receives `{"start", "end"}`.
    Range { start: i64, end: i64, size: u64 },
}

impl Split {
    /// Chunks this split makes.
    pub fn len(&self) -> u64 {
        match *self {
            Split::List(ref items) => items.len() as u64,
            Split::Range { start, end, size } => {
                let span = i128::from(end) - i128::from(start);
                if span <= 0 || size == 0 {
                    0
                } else {
                    span.div_euclid(i128::from(size)) as u64
                        + u64::from(span % i128::from(size) != 0)
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The split of chunk `index` alone: one item, or one step of the range.
    fn part(&self, index: u32) -> Split {
        match *self {
            Split::List(ref items) => {
                Split::List(items.get(index as usize).cloned().into_iter().collect())
            }
            Split::Range { start, end, size } => {
                let from = i128::from(start) + i128::from(index) * i128::from(size);
                let to = (from + i128::from(size)).min(i128::from(end));
                let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
                Split::Range {
                    start: clamp(from),
                    end: clamp(to),
                    size,
                }
            }
        }
    }

    /// What the script receives as its chunk: the item, or `{"start", "end"}`.
    pub fn chunk_value(&self) -> Value {
        match self {
            Split::List(items) => items.first().cloned().unwrap_or(Value::Null),
            Split::Range { start, end, .. } => json!({ "start": start, "end": end }),
        }
    }
}

/// Integrity strings a browser's `integrity` attribute accepts, as
/// (prefix, base64 length of the digest).
const INTEGRITY_FORMS: [(&str, usize); 3] = [("sha256-", 44), ("sha384-", 64), ("sha512-", 88)];

pub(crate) fn check_integrity(integrity: &str) -> Result<(), KindError> {
    let valid = INTEGRITY_FORMS.iter().any(|(prefix, len)| {
        integrity.strip_prefix(prefix).is_some_and(|digest| {
            digest.len() == *len
                && digest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        })
    });
    if valid {
        Ok(())
    } else {
        Err(KindError::BadIntegrity(
            integrity.chars().take(100).collect(),
        ))
    }
}

/// Scripts come over `https://`, or `http://` from this machine (a friend
/// testing their own task).
fn check_script_url(url: &str) -> Result<(), KindError> {
    let local = [
        "http://localhost:",
        "http://localhost/",
        "http://127.0.0.1:",
        "http://127.0.0.1/",
    ];
    let valid = url.len() <= 2_000
        && !url.contains(char::is_whitespace)
        && (url.starts_with("https://") || local.iter().any(|p| url.starts_with(p)));
    if valid {
        Ok(())
    } else {
        Err(KindError::BadScriptUrl(url.chars().take(100).collect()))
    }
}

impl TaskKind {
    /// Whether the coordinator may run a chunk of this kind without an
    /// assignment event, its result standing for the claim: a
    /// transcription's plan, which a friend waits for and which is done in
    /// seconds (see `Ledger`'s own claims).
    pub fn claimed_by_coordinator(&self) -> bool {
        matches!(self, TaskKind::Transcribe(task) if task.is_plan())
    }

    /// The Whisper model a chunk of this kind may run.
    pub fn whisper_model(&self) -> Option<WhisperModel> {
        match self {
            TaskKind::Transcribe(task) => Some(task.model),
            TaskKind::Primes { .. } | TaskKind::Script(_) | TaskKind::Kernel(_) => None,
        }
    }

    /// How long one chunk may run before its runner is stopped (a worker
    /// terminated, a sandbox torn down): a script's and a kernel's own limit.
    /// The built-in kinds are bounded by their leases.
    pub fn time_limit_s(&self) -> Option<u32> {
        match self {
            TaskKind::Script(script) => Some(script.max_seconds),
            TaskKind::Kernel(kernel) => Some(kernel.max_seconds),
            TaskKind::Primes { .. } | TaskKind::Transcribe(_) => None,
        }
    }

    /// Checks parameters against what a worker can do.
    pub fn validate(&self, chunks: u32) -> Result<(), KindError> {
        match *self {
            TaskKind::Primes { start, end } => {
                if start >= end {
                    return Err(KindError::EmptyRange { start, end });
                }
                if end > PRIMES_MAX_END {
                    return Err(KindError::TooLarge {
                        end,
                        max: PRIMES_MAX_END,
                    });
                }
                if u64::from(chunks) > end - start {
                    return Err(KindError::TooManyChunks {
                        chunks,
                        len: end - start,
                    });
                }
                Ok(())
            }
            TaskKind::Script(ref script) => {
                check_script_url(&script.url)?;
                check_integrity(&script.integrity)?;
                if script.max_seconds == 0 || script.max_seconds > MAX_SCRIPT_SECONDS {
                    return Err(KindError::BadTimeLimit(script.max_seconds));
                }
                let split = script.split.len();
                if split != u64::from(chunks) {
                    return Err(KindError::ChunksMismatch { split, chunks });
                }
                Ok(())
            }
            TaskKind::Transcribe(ref task) => task.validate(chunks),
            TaskKind::Kernel(ref kernel) => kernel.validate(chunks),
        }
    }

    /// The part of the work that chunk `index` of `chunks` does.
    pub fn chunk(&self, index: u32, chunks: u32) -> TaskKind {
        match *self {
            TaskKind::Primes { start, end } => {
                let len = end - start;
                let at =
                    |i: u32| start + (u128::from(len) * u128::from(i) / u128::from(chunks)) as u64;
                TaskKind::Primes {
                    start: at(index),
                    end: at(index + 1),
                }
            }
            TaskKind::Script(ref script) => TaskKind::Script(ScriptTask {
                split: script.split.part(index),
                ..script.clone()
            }),
            TaskKind::Transcribe(ref task) => TaskKind::Transcribe(Box::new(task.chunk(index))),
            TaskKind::Kernel(ref kernel) => TaskKind::Kernel(Box::new(kernel.chunk(index))),
        }
    }

    /// Checks that one chunk's output has the shape this kind produces.
    pub fn check_output(&self, output: &Value) -> Result<(), KindError> {
        match self {
            TaskKind::Primes { .. } => output
                .get("count")
                .and_then(Value::as_u64)
                .map(|_| ())
                .ok_or_else(|| KindError::BadOutput("expected {\"count\": <integer>}".into())),
            // A script's output is its author's business; validation bounds its size.
            TaskKind::Script(_) => Ok(()),
            TaskKind::Transcribe(task) => task.check_output(output),
            TaskKind::Kernel(kernel) => kernel.check_output(output),
        }
    }

    /// Merges the outputs of all chunks, in chunk order, into the task's result.
    pub fn merge<'a>(
        &self,
        outputs: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Value, KindError> {
        match self {
            TaskKind::Primes { .. } => {
                let mut total: u64 = 0;
                for output in outputs {
                    self.check_output(output)?;
                    total += output["count"].as_u64().unwrap_or_default();
                }
                Ok(json!({ "count": total }))
            }
            TaskKind::Script(_) => {
                Ok(json!({ "outputs": outputs.into_iter().collect::<Vec<_>>() }))
            }
            TaskKind::Kernel(kernel) => {
                let outputs = outputs.into_iter().collect::<Vec<_>>();
                for output in &outputs {
                    kernel.check_output(output)?;
                }
                Ok(json!({ "outputs": outputs }))
            }
            TaskKind::Transcribe(task) => task.merge(outputs),
        }
    }

    /// Merges a task's own result with the results of the parts it was split
    /// into (subtasks, in the order they were submitted).
    pub fn merge_parts(&self, own: &Value, parts: &[Value]) -> Result<Value, KindError> {
        match self {
            TaskKind::Primes { .. } => self.merge(std::iter::once(own).chain(parts)),
            TaskKind::Script(_) | TaskKind::Kernel(_) => {
                let outputs = std::iter::once(own)
                    .chain(parts)
                    .flat_map(|r| r["outputs"].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>();
                Ok(json!({ "outputs": outputs }))
            }
            TaskKind::Transcribe(task) => task.merge_parts(own, parts),
        }
    }

    /// One line a person reads in the task list.
    pub fn describe(&self) -> String {
        match self {
            TaskKind::Primes { start, end } => format!("Count primes in [{start}, {end})"),
            TaskKind::Script(script) => {
                let file = script.url.rsplit('/').next().unwrap_or(&script.url);
                format!("Run {file}")
            }
            TaskKind::Transcribe(task) if task.is_plan() => {
                format!("Transcribe a voice message ({})", task.model.name())
            }
            TaskKind::Transcribe(task) => format!(
                "Transcribe {} pieces of a voice message ({})",
                task.spans().len(),
                task.model.name()
            ),
            TaskKind::Kernel(kernel) => format!(
                "Run the WebGPU kernel {} in {} pieces",
                kernel.entry,
                kernel.chunks.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_exactly_once() {
        let kind = TaskKind::Primes {
            start: 10,
            end: 1_000_003,
        };
        let mut next = 10;
        for i in 0..7 {
            let TaskKind::Primes { start, end } = kind.chunk(i, 7) else {
                panic!("a primes task splits into primes chunks")
            };
            assert_eq!(start, next);
            assert!(end > start);
            next = end;
        }
        assert_eq!(next, 1_000_003);
    }

    #[test]
    fn impossible_ranges_are_refused_with_a_reason() {
        let empty = TaskKind::Primes { start: 5, end: 5 };
        assert_eq!(
            empty.validate(1),
            Err(KindError::EmptyRange { start: 5, end: 5 })
        );
        let tiny = TaskKind::Primes { start: 0, end: 3 };
        assert!(matches!(
            tiny.validate(4),
            Err(KindError::TooManyChunks { .. })
        ));
        let huge = TaskKind::Primes {
            start: 0,
            end: u64::MAX,
        };
        assert!(matches!(huge.validate(1), Err(KindError::TooLarge { .. })));
    }

    #[test]
    fn merge_sums_chunk_counts_and_rejects_malformed_outputs() {
        let kind = TaskKind::Primes { start: 0, end: 100 };
        let merged = kind
            .merge([&json!({"count": 10}), &json!({"count": 15})])
            .unwrap();
        assert_eq!(merged, json!({"count": 25}));
        assert!(kind.merge([&json!({"count": "ten"})]).is_err());
    }

    fn script(split: Split) -> TaskKind {
        TaskKind::Script(ScriptTask {
            url: "https://example.org/tile.js".into(),
            integrity: format!("sha384-{}", "A".repeat(64)),
            args: json!({"width": 64}),
            split,
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        })
    }

    #[test]
    fn a_range_split_covers_the_range_in_steps_with_a_short_last_chunk() {
        let kind = script(Split::Range {
            start: -5,
            end: 20,
            size: 10,
        });
        assert!(kind.validate(3).is_ok());
        let chunks: Vec<Value> = (0..3)
            .map(|i| match kind.chunk(i, 3) {
                TaskKind::Script(s) => s.split.chunk_value(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            chunks,
            [
                json!({"start": -5, "end": 5}),
                json!({"start": 5, "end": 15}),
                json!({"start": 15, "end": 20})
            ]
        );
        assert_eq!(
            kind.validate(2),
            Err(KindError::ChunksMismatch {
                split: 3,
                chunks: 2
            })
        );
    }

    #[test]
    fn a_list_split_gives_each_chunk_its_item_and_outputs_merge_in_order() {
        let kind = script(Split::List(vec![json!("a"), json!({"b": 2})]));
        let TaskKind::Script(second) = kind.chunk(1, 2) else {
            panic!()
        };
        assert_eq!(second.split.chunk_value(), json!({"b": 2}));
        assert_eq!(second.args, json!({"width": 64}));
        assert_eq!(
            kind.merge([&json!(1), &json!("two")]).unwrap(),
            json!({"outputs": [1, "two"]})
        );
    }

    #[test]
    fn scripts_need_a_real_integrity_and_a_safe_address() {
        let with = |url: &str, integrity: &str| {
            TaskKind::Script(ScriptTask {
                url: url.into(),
                integrity: integrity.into(),
                args: Value::Null,
                split: Split::List(vec![json!(1)]),
                max_seconds: DEFAULT_SCRIPT_SECONDS,
            })
            .validate(1)
        };
        let good = format!("sha256-{}=", "a".repeat(43));
        assert!(with("https://x.org/t.js", &good).is_ok());
        assert!(with("http://localhost:8081/t.js", &good).is_ok());
        assert!(matches!(
            with("http://evil.org/t.js", &good),
            Err(KindError::BadScriptUrl(_))
        ));
        assert!(matches!(
            with("javascript:alert(1)", &good),
            Err(KindError::BadScriptUrl(_))
        ));
        assert!(matches!(
            with("https://x.org/t.js", "md5-abc"),
            Err(KindError::BadIntegrity(_))
        ));
    }

    #[test]
    fn kind_serialises_with_a_tag_and_params() {
        let kind = TaskKind::Primes { start: 1, end: 2 };
        let value = serde_json::to_value(&kind).unwrap();
        assert_eq!(
            value,
            json!({"kind": "primes", "params": {"start": 1, "end": 2}})
        );
    }
}
