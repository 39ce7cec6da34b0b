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
use crate::text::check_shown_text;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a name (a-z, 0-9 and -, at most {MAX_NAME_CHARS})",
            name.chars().take(MAX_NAME_CHARS).collect::<String>()
        ))
    }
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

    /// Checks names, addresses and hashes; the reason says which entry is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.kernels.len() > MAX_ALLOWED_SCRIPTS {
            return Err(format!(
                "the allowlist has {} kernels; the limit is {MAX_ALLOWED_SCRIPTS}",
                self.kernels.len()
            ));
        }
        for (i, kernel) in self.kernels.iter().enumerate() {
            check_name(&kernel.name).map_err(|e| format!("allowlist kernel {}: {e}", i + 1))?;
            if !kernel.integrity.starts_with("sha256-") {
                return Err(format!(
                    "allowlist kernel '{}': its hash must be sha256-…",
                    kernel.name
                ));
            }
            check_integrity(&kernel.integrity)
                .map_err(|e| format!("allowlist kernel '{}': {e}", kernel.name))?;
            check_shown_text(&kernel.description)
                .map_err(|e| format!("the description of '{}': {e}", kernel.name))?;
        }
        if self.scripts.len() > MAX_ALLOWED_SCRIPTS {
            return Err(format!(
                "the allowlist has {} scripts; the limit is {MAX_ALLOWED_SCRIPTS}",
                self.scripts.len()
            ));
        }
        for (i, script) in self.scripts.iter().enumerate() {
            check_name(&script.name).map_err(|e| format!("allowlist entry {}: {e}", i + 1))?;
            if self.scripts[..i].iter().any(|s| s.name == script.name) {
                return Err(format!("the allowlist names '{}' twice", script.name));
            }
            check_shown_text(&script.description)
                .map_err(|e| format!("the description of '{}': {e}", script.name))?;
            let probe = TaskKind::Script(ScriptTask {
                url: script.url.clone(),
                integrity: script.integrity.clone(),
                args: Value::Null,
                split: Split::List(vec![Value::Null]),
                max_seconds: DEFAULT_SCRIPT_SECONDS,
            });
            probe
                .validate(1)
                .map_err(|e: KindError| format!("allowlist entry '{}': {e}", script.name))?;
        }
        Ok(())
    }

    /// The entry that allows `task`'s script, or why none does.
    pub fn allows(&self, task: &ScriptTask) -> Result<&AllowedScript, String> {
        if let Some(entry) = self
            .scripts
            .iter()
            .find(|s| s.url == task.url && s.integrity == task.integrity)
        {
            return Ok(entry);
        }
        if self.scripts.iter().any(|s| s.url == task.url) {
            return Err(format!(
                "{} is allowed in this room only with another hash: the script changed, or the task names the wrong one",
                task.url
            ));
        }
        Err(format!("{} is not on this room's allowlist", task.url))
    }

    /// The entry that allows this kernel's source, or why none does.
    pub fn allows_kernel(&self, kernel: &KernelTask) -> Result<&AllowedKernel, String> {
        let integrity = kernel.integrity();
        self.kernels
            .iter()
            .find(|k| k.integrity == integrity)
            .ok_or_else(|| {
                format!("this WebGPU kernel ({integrity}) is not on this room's allowlist")
            })
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
        let changed = list
            .allows(&task("https://x.org/tiles.js", 'B'))
            .unwrap_err();
        assert!(changed.contains("another hash"), "{changed}");
        let unknown = list
            .allows(&task("https://x.org/other.js", 'A'))
            .unwrap_err();
        assert!(
            unknown.contains("not on this room's allowlist"),
            "{unknown}"
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
        assert!(twice.validate().unwrap_err().contains("twice"));
        let shouty = Allowlist {
            kernels: vec![],
            scripts: vec![entry("Tiles!", "https://x.org/a.js", 'A')],
        };
        assert!(shouty.validate().unwrap_err().contains("not a name"));
        let plain_http = Allowlist {
            kernels: vec![],
            scripts: vec![entry("tiles", "http://x.org/a.js", 'A')],
        };
        assert!(plain_http.validate().unwrap_err().contains("'tiles'"));
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
        assert!(edited.unwrap_err().contains("not on this room's allowlist"));
        let sha384 = Allowlist {
            scripts: vec![],
            kernels: vec![AllowedKernel {
                integrity: format!("sha384-{}", "A".repeat(64)),
                ..list.kernels[0].clone()
            }],
        };
        assert!(sha384.validate().unwrap_err().contains("sha256"));
    }
}
