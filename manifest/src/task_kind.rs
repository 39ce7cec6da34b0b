//! The kinds of work Potluck knows, how each splits into chunks and how the
//! chunks' outputs merge into the task's result.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// Largest number a `primes` task may reach: the worker's sieve needs
/// `sqrt(end)` bytes of memory, which stays small up to here.
pub const PRIMES_MAX_END: u64 = 1 << 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "params", rename_all = "snake_case")]
pub enum TaskKind {
    /// Count the primes `p` with `start <= p < end`. Needs no model and no
    /// input file, so it exercises the pool on its own.
    Primes { start: u64, end: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KindError {
    #[error("the range is empty: start {start} is not below end {end}")]
    EmptyRange { start: u64, end: u64 },
    #[error("end {end} is above the largest supported number {max}")]
    TooLarge { end: u64, max: u64 },
    #[error("{chunks} chunks for a range of {len} numbers: each chunk needs at least one")]
    TooManyChunks { chunks: u32, len: u64 },
    #[error("a chunk's output is malformed: {0}")]
    BadOutput(String),
}

impl TaskKind {
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
        }
    }

    /// Merges a task's own result with the results of the parts it was split
    /// into (subtasks, in the order they were submitted).
    pub fn merge_parts(&self, own: &Value, parts: &[Value]) -> Result<Value, KindError> {
        match self {
            TaskKind::Primes { .. } => self.merge(std::iter::once(own).chain(parts)),
        }
    }

    /// One line a person reads in the task list.
    pub fn describe(&self) -> String {
        match self {
            TaskKind::Primes { start, end } => format!("Count primes in [{start}, {end})"),
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
            let TaskKind::Primes { start, end } = kind.chunk(i, 7);
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
