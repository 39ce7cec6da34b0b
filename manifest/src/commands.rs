//! Tasks started from plain chat: `!run <name> <split> [parameters]`, so a
//! friend without the widget (or on a phone) can use the pool.
//!
//! Every node sees the message; only the coordinator turns it into a task,
//! and the ledger accepts one task per message (see `ledger.rs`), so it runs
//! exactly once however many nodes see it.

use crate::allowlist::Allowlist;
use crate::events::{ChatCommand, TaskSpec};
use crate::limits::MAX_CHUNKS;
use crate::task_kind::{ScriptTask, Split, TaskKind, DEFAULT_SCRIPT_SECONDS};
use serde_json::Value;
use thiserror::Error;

/// What a `!run` message starts with.
pub const RUN: &str = "!run";

/// Is this chat message a command for Potluck at all?
pub fn is_command(body: &str) -> bool {
    body.split_whitespace().next() == Some(RUN)
}

/// Why a `!run` message starts no task.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunError {
    #[error("not a !run command")]
    NotACommand,
    #[error("usage: !run <script> <start> <end> <size> [parameters as JSON]")]
    Usage,
    #[error("no script named '{name}' is allowed in this room")]
    UnknownScript { name: String },
    #[error("expected a JSON list of chunks")]
    NoList,
    /// What serde says is wrong with the list.
    #[error("the list of chunks is not JSON: {0}")]
    ListNotJson(String),
    #[error("'{word}' is not a whole number: !run {script} <start> <end> <size>")]
    NotANumber { word: String, script: String },
    #[error("the chunk size must be positive")]
    SizeNotPositive,
    /// What serde says is wrong with the parameters.
    #[error("the parameters are not JSON: {0}")]
    ParametersNotJson(String),
    #[error("that makes {0} chunks; use 1 to {MAX_CHUNKS}")]
    Chunks(u64),
}

/// Reads `!run <name> <start> <end> <size> [JSON parameters]` or
/// `!run <name> <JSON list> [JSON parameters]` into a task, or says what is wrong.
pub fn parse_run(
    body: &str,
    allowlist: &Allowlist,
    command: ChatCommand,
) -> Result<TaskSpec, RunError> {
    let rest = body
        .trim()
        .strip_prefix(RUN)
        .ok_or(RunError::NotACommand)?
        .trim_start();
    let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(RunError::Usage);
    }
    let script = allowlist
        .by_name(name)
        .ok_or_else(|| RunError::UnknownScript { name: name.into() })?;
    let rest = rest.trim();
    let (split, rest) = if rest.starts_with('[') {
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Vec<Value>>();
        let items = stream
            .next()
            .ok_or(RunError::NoList)?
            .map_err(|e| RunError::ListNotJson(e.to_string()))?;
        (Split::List(items), rest[stream.byte_offset()..].trim())
    } else {
        let mut words = rest.splitn(4, char::is_whitespace);
        let mut number = || -> Result<i64, RunError> {
            let word = words.next().unwrap_or_default();
            word.parse().map_err(|_| RunError::NotANumber {
                word: word.into(),
                script: name.into(),
            })
        };
        let (start, end, size) = (number()?, number()?, number()?);
        let size = u64::try_from(size).map_err(|_| RunError::SizeNotPositive)?;
        (
            Split::Range { start, end, size },
            words.next().unwrap_or_default().trim(),
        )
    };
    let args = if rest.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(rest).map_err(|e| RunError::ParametersNotJson(e.to_string()))?
    };
    let chunks = split.len();
    if chunks == 0 || chunks > u64::from(MAX_CHUNKS) {
        return Err(RunError::Chunks(chunks));
    }
    let mut spec = TaskSpec::new(
        TaskKind::Script(ScriptTask {
            url: script.url.clone(),
            integrity: script.integrity.clone(),
            args,
            split,
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        }),
        chunks as u32,
    );
    spec.command = Some(command);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::AllowedScript;
    use crate::ids::{EventId, UserId};
    use serde_json::json;

    fn room() -> Allowlist {
        Allowlist {
            kernels: vec![],
            scripts: vec![AllowedScript {
                name: "squares".into(),
                url: "https://x.org/squares.js".into(),
                integrity: format!("sha384-{}", "A".repeat(64)),
                description: String::new(),
            }],
        }
    }

    fn command() -> ChatCommand {
        ChatCommand {
            event_id: EventId::parse("$msg").unwrap(),
            sender: UserId::parse("@dan:hs").unwrap(),
        }
    }

    fn run(body: &str) -> Result<TaskSpec, RunError> {
        parse_run(body, &room(), command())
    }

    #[test]
    fn a_range_or_a_list_with_parameters_becomes_a_task_on_the_senders_behalf() {
        let spec = run(r#"!run squares 0 20000 1000 {"power": 3}"#).unwrap();
        assert_eq!(spec.chunks, 20);
        assert_eq!(spec.command, Some(command()));
        let TaskKind::Script(script) = &spec.kind else {
            panic!()
        };
        assert_eq!(script.args, json!({"power": 3}));
        let list = run(r#"!run squares ["a", "b"] {"k": 1}"#).unwrap();
        assert_eq!(list.chunks, 2);
        assert!(run("!run squares 0 10 5").is_ok());
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(run("!run").unwrap_err(), RunError::Usage);
        assert_eq!(
            run("!run miner 0 10 1").unwrap_err(),
            RunError::UnknownScript {
                name: "miner".into()
            }
        );
        assert_eq!(
            run("!run squares 0 ten 1").unwrap_err(),
            RunError::NotANumber {
                word: "ten".into(),
                script: "squares".into()
            }
        );
        assert!(matches!(
            run("!run squares 0 10 1 {oops").unwrap_err(),
            RunError::ParametersNotJson(_)
        ));
        assert!(matches!(
            run(r#"!run squares [1, oops]"#).unwrap_err(),
            RunError::ListNotJson(_)
        ));
        assert_eq!(
            run("!run squares 0 10 -1").unwrap_err(),
            RunError::SizeNotPositive
        );
        assert_eq!(run("!run squares 5 5 1").unwrap_err(), RunError::Chunks(0));
        assert!(is_command("!run squares"));
        assert!(!is_command("!running late"));
    }

    #[test]
    fn run_errors_say_what_to_type() {
        assert_eq!(
            run("!run squares 0 ten 1").unwrap_err().to_string(),
            "'ten' is not a whole number: !run squares <start> <end> <size>"
        );
        assert_eq!(
            RunError::Chunks(0).to_string(),
            format!("that makes 0 chunks; use 1 to {MAX_CHUNKS}")
        );
        assert_eq!(
            RunError::Usage.to_string(),
            "usage: !run <script> <start> <end> <size> [parameters as JSON]"
        );
    }
}
