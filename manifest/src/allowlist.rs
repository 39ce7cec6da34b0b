//! The room's allowlist: the only scripts and WebGPU kernels a Potluck node
//! will run.
//!
//! It is one state event (`org.potluck.allowlist`, empty state key). Custom
//! state needs power level 50 in a default room (`state_default`), so only the
//! room's moderators can change it; the homeserver enforces that, and every
//! node trusts what the room state holds. A task naming a script or kernel
//! that is not on the list fails in every node's ledger before any node runs it.

use crate::kernel::KernelTask;
use crate::kind_error::KindError;
use crate::task_kind::{check_integrity, ScriptTask, Split, TaskKind, DEFAULT_SCRIPT_SECONDS};
use crate::text::{check_shown_text, TextError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// Scripts one room may allow; more belong in separate rooms.
pub const MAX_ALLOWED_SCRIPTS: usize = 100;
/// Characters of a script's short name, which `!run <name>` uses.
pub const MAX_NAME_CHARS: usize = 40;

/// One script the room allows, by address and by the hash of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedScript {
    /// Short name for people and for `!run <name>`: `a-z`, `0-9`, `-`.
    pub name: String,
    pub url: String,
    pub integrity: String,
    /// What it does, in a sentence, shown before a contributor runs it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// One WebGPU kernel the room allows, by the hash of its WGSL source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedKernel {
    /// Short name for people: `a-z`, `0-9`, `-`.
    pub name: String,
    /// `sha256-` and the base64 SHA-256 of the source (`KernelTask::integrity`).
    pub integrity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowlist {
    pub scripts: Vec<AllowedScript>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<AllowedKernel>,
}

/// Why a list cannot be the room's allowlist; each names the entry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AllowlistError {
    #[error("the allowlist has {count} kernels; the limit is {MAX_ALLOWED_SCRIPTS}")]
    TooManyKernels { count: usize },
    #[error("the allowlist has {count} scripts; the limit is {MAX_ALLOWED_SCRIPTS}")]
    TooManyScripts { count: usize },
    /// `position` counts from 1; `name` is cut to `MAX_NAME_CHARS`.
    #[error("allowlist kernel {position}: '{name}' is not a name (a-z, 0-9 and -, at most {MAX_NAME_CHARS})")]
    KernelName { position: usize, name: String },
    #[error("allowlist entry {position}: '{name}' is not a name (a-z, 0-9 and -, at most {MAX_NAME_CHARS})")]
    ScriptName { position: usize, name: String },
    #[error("allowlist kernel '{name}': its hash must be sha256-…")]
    KernelNotSha256 { name: String },
    #[error("allowlist kernel '{name}': {error}")]
    Kernel { name: String, error: KindError },
    #[error("the allowlist names '{name}' twice")]
    Twice { name: String },
    #[error("allowlist entry '{name}': {error}")]
    Script { name: String, error: KindError },
    #[error("the description of '{name}': {error}")]
    Description { name: String, error: TextError },
}

/// Why the room's allowlist does not allow a task's script or kernel.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotAllowed {
    #[error("{url} is allowed in this room only with another hash: the script changed, or the task names the wrong one")]
    OtherHash { url: String },
    #[error("{url} is not on this room's allowlist")]
    Script { url: String },
    /// Friends read no hash: a moderator allows the kernel by its name.
    #[error("this WebGPU kernel is not on this room's allowlist yet; a moderator can allow it under More")]
    Kernel { integrity: String },
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// As much of a name as an error repeats.
fn shown_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

impl Allowlist {
    /// This list with `script` allowed, in place of any entry of its name.
    pub fn with_script(&self, script: AllowedScript) -> Allowlist {
        let mut list = self.clone();
        list.scripts.retain(|s| s.name != script.name);
        list.scripts.push(script);
        list
    }

    /// This list with `kernel` allowed, in place of any entry of its name.
    pub fn with_kernel(&self, kernel: AllowedKernel) -> Allowlist {
        let mut list = self.clone();
        list.kernels.retain(|k| k.name != kernel.name);
        list.kernels.push(kernel);
        list
    }

    /// Checks names, addresses and hashes; the error says which entry is wrong.
    pub fn validate(&self) -> Result<(), AllowlistError> {
        if self.kernels.len() > MAX_ALLOWED_SCRIPTS {
            return Err(AllowlistError::TooManyKernels {
                count: self.kernels.len(),
            });
        }
        for (i, kernel) in self.kernels.iter().enumerate() {
            let name = || kernel.name.clone();
            if !is_name(&kernel.name) {
                return Err(AllowlistError::KernelName {
                    position: i + 1,
                    name: shown_name(&kernel.name),
                });
            }
            if !kernel.integrity.starts_with("sha256-") {
                return Err(AllowlistError::KernelNotSha256 { name: name() });
            }
            check_integrity(&kernel.integrity).map_err(|error| AllowlistError::Kernel {
                name: name(),
                error,
            })?;
            check_shown_text(&kernel.description).map_err(|error| AllowlistError::Description {
                name: name(),
                error,
            })?;
        }
        if self.scripts.len() > MAX_ALLOWED_SCRIPTS {
            return Err(AllowlistError::TooManyScripts {
                count: self.scripts.len(),
            });
        }
        for (i, script) in self.scripts.iter().enumerate() {
            let name = || script.name.clone();
            if !is_name(&script.name) {
                return Err(AllowlistError::ScriptName {
                    position: i + 1,
                    name: shown_name(&script.name),
                });
            }
            if self.scripts[..i].iter().any(|s| s.name == script.name) {
                return Err(AllowlistError::Twice { name: name() });
            }
            check_shown_text(&script.description).map_err(|error| AllowlistError::Description {
                name: name(),
                error,
            })?;
            let probe = TaskKind::Script(ScriptTask {
                url: script.url.clone(),
                integrity: script.integrity.clone(),
                args: Value::Null,
                split: Split::List(vec![Value::Null]),
                max_seconds: DEFAULT_SCRIPT_SECONDS,
            });
            probe.validate(1).map_err(|error| AllowlistError::Script {
                name: name(),
                error,
            })?;
        }
        Ok(())
    }

    /// The entry that allows `task`'s script, or why none does.
    pub fn allows(&self, task: &ScriptTask) -> Result<&AllowedScript, NotAllowed> {
        if let Some(entry) = self
            .scripts
            .iter()
            .find(|s| s.url == task.url && s.integrity == task.integrity)
        {
            return Ok(entry);
        }
        let url = task.url.clone();
        if self.scripts.iter().any(|s| s.url == task.url) {
            return Err(NotAllowed::OtherHash { url });
        }
        Err(NotAllowed::Script { url })
    }

    /// The entry that allows this kernel's source, or why none does.
    pub fn allows_kernel(&self, kernel: &KernelTask) -> Result<&AllowedKernel, NotAllowed> {
        let integrity = kernel.integrity();
        match self.kernels.iter().find(|k| k.integrity == integrity) {
            Some(entry) => Ok(entry),
            None => Err(NotAllowed::Kernel { integrity }),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&AllowedScript> {
        self.scripts.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, url: &str, digest: char) -> AllowedScript {
        AllowedScript {
            name: name.into(),
            url: url.into(),
            integrity: format!("sha384-{}", digest.to_string().repeat(64)),
            description: String::new(),
        }
    }

    fn task(url: &str, digest: char) -> ScriptTask {
        ScriptTask {
            url: url.into(),
            integrity: format!("sha384-{}", digest.to_string().repeat(64)),
            args: json!({}),
            split: Split::List(vec![json!(1)]),
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        }
    }

    #[test]
    fn only_the_listed_address_with_the_listed_hash_is_allowed() {
        let list = Allowlist {
            kernels: vec![],
            scripts: vec![entry("tiles", "https://x.org/tiles.js", 'A')],
        };
        assert_eq!(
            list.allows(&task("https://x.org/tiles.js", 'A'))
                .unwrap()
                .name,
            "tiles"
        );
        assert_eq!(
            list.allows(&task("https://x.org/tiles.js", 'B')),
            Err(NotAllowed::OtherHash {
                url: "https://x.org/tiles.js".into()
            })
        );
        assert_eq!(
            list.allows(&task("https://x.org/other.js", 'A')),
            Err(NotAllowed::Script {
                url: "https://x.org/other.js".into()
            })
        );
    }

    #[test]
    fn malformed_entries_are_refused_with_the_entry_named() {
        let twice = Allowlist {
            kernels: vec![],
            scripts: vec![
                entry("tiles", "https://x.org/a.js", 'A'),
                entry("tiles", "https://x.org/b.js", 'B'),
            ],
        };
        assert_eq!(
            twice.validate(),
            Err(AllowlistError::Twice {
                name: "tiles".into()
            })
        );
        let shouty = Allowlist {
            kernels: vec![],
            scripts: vec![entry("Tiles!", "https://x.org/a.js", 'A')],
        };
        assert_eq!(
            shouty.validate(),
            Err(AllowlistError::ScriptName {
                position: 1,
                name: "Tiles!".into()
            })
        );
        let plain_http = Allowlist {
            kernels: vec![],
            scripts: vec![entry("tiles", "http://x.org/a.js", 'A')],
        };
        assert!(matches!(
            plain_http.validate(),
            Err(AllowlistError::Script {
                name,
                error: KindError::BadScriptUrl(_)
            }) if name == "tiles"
        ));
    }

    #[test]
    fn a_kernel_is_allowed_by_the_hash_of_its_exact_source() {
        let kernel = |wgsl: &str| crate::kernel::KernelTask {
            wgsl: wgsl.into(),
            entry: "main".into(),
            workgroups: [1, 1, 1],
            output_words: 1,
            chunks: vec![vec![]],
            output: Default::default(),
            max_seconds: crate::kernel::DEFAULT_KERNEL_SECONDS,
        };
        let source = "@compute @workgroup_size(1) fn main() {}";
        let list = Allowlist {
            scripts: vec![],
            kernels: vec![AllowedKernel {
                name: "noop".into(),
                integrity: kernel(source).integrity(),
                description: String::new(),
            }],
        };
        list.validate().unwrap();
        assert_eq!(list.allows_kernel(&kernel(source)).unwrap().name, "noop");
        let edited = list.allows_kernel(&kernel(&format!("{source} ")));
        assert!(matches!(edited, Err(NotAllowed::Kernel { .. })));
        let sha384 = Allowlist {
            scripts: vec![],
            kernels: vec![AllowedKernel {
                integrity: format!("sha384-{}", "A".repeat(64)),
                ..list.kernels[0].clone()
            }],
        };
        assert_eq!(
            sha384.validate(),
            Err(AllowlistError::KernelNotSha256 {
                name: "noop".into()
            })
        );
    }

    #[test]
    fn allowlist_errors_name_the_entry_in_words() {
        let long = "a".repeat(MAX_NAME_CHARS + 5);
        let list = Allowlist {
            kernels: vec![],
            scripts: vec![entry(&long, "https://x.org/a.js", 'A')],
        };
        let error = list.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "allowlist entry 1: '{}' is not a name (a-z, 0-9 and -, at most {MAX_NAME_CHARS})",
                "a".repeat(MAX_NAME_CHARS)
            )
        );
        let spoofed = Allowlist {
            kernels: vec![],
            scripts: vec![AllowedScript {
                description: "carol\u{202E}3pm".into(),
                ..entry("tiles", "https://x.org/a.js", 'A')
            }],
        };
        assert_eq!(
            spoofed.validate().unwrap_err().to_string(),
            "the description of 'tiles': a reason holds invisible characters that reorder or hide text"
        );
        assert_eq!(
            NotAllowed::OtherHash { url: "https://x.org/a.js".into() }.to_string(),
            "https://x.org/a.js is allowed in this room only with another hash: the script changed, or the task names the wrong one"
        );
        assert_eq!(
            NotAllowed::Kernel {
                integrity: "sha256-x".into()
            }
            .to_string(),
            "this WebGPU kernel is not on this room's allowlist yet; a moderator can allow it under More"
        );
    }
}
