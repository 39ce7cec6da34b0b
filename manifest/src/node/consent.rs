//! A friend's consent to running other friends' scripts: asked once per
//! script, before their machine first runs it.

use super::action::Action;
use crate::allowlist::{AllowedScript, Allowlist};
use crate::events::NodeCaps;
use crate::sorted_map::SortedSet;
use crate::task_kind::TaskKind;

/// A friend's answer about running a kind of work on their machine.
pub enum Consent {
    Given,
    Declined,
    /// Not answered yet; the script to show them, if they were not asked already.
    Pending(Option<AllowedScript>),
}

#[derive(Debug, Default)]
pub struct Consents {
    /// Scripts (by integrity) the friend agreed to run.
    approved: SortedSet<String>,
    /// Scripts already put to them.
    asked: SortedSet<String>,
}

impl Consents {
    pub fn approve(&mut self, integrity: String) {
        self.approved.insert(integrity);
    }

    /// Whether the friend lets this machine run work of this kind: only
    /// friends' scripts need a yes, once per script. Declining is in `caps`.
    pub fn of(&self, kind: &TaskKind, caps: &NodeCaps, allowlist: &Allowlist) -> Consent {
        let TaskKind::Script(script) = kind else {
            return Consent::Given;
        };
        if caps.declined.contains(&script.integrity) {
            return Consent::Declined;
        }
        if self.approved.contains(&script.integrity) {
            return Consent::Given;
        }
        let not_yet_asked = !self.asked.contains(&script.integrity);
        let ask = allowlist
            .allows(script)
            .ok()
            .filter(|_| not_yet_asked)
            .cloned();
        Consent::Pending(ask)
    }

    /// Asks about each script once.
    pub fn ask(&mut self, scripts: Vec<AllowedScript>, actions: &mut Vec<Action>) {
        for script in scripts {
            if self.asked.insert(script.integrity.clone()) {
                actions.push(Action::AskConsent { script });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_kind::{ScriptTask, Split, DEFAULT_SCRIPT_SECONDS};
    use serde_json::json;

    const URL: &str = "https://friends.example/sum.js";

    fn script() -> TaskKind {
        TaskKind::Script(ScriptTask {
            url: URL.into(),
            integrity: format!("sha384-{}", "A".repeat(64)),
            args: json!({}),
            split: Split::List(vec![json!(1)]),
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        })
    }

    fn room_allows_it() -> Allowlist {
        Allowlist {
            kernels: vec![],
            scripts: vec![AllowedScript {
                name: "sum".into(),
                url: URL.into(),
                integrity: format!("sha384-{}", "A".repeat(64)),
                description: String::new(),
            }],
        }
    }

    fn caps(declined: &[&str]) -> NodeCaps {
        NodeCaps {
            cores: 2,
            slots: 1,
            memory_mb: None,
            webgpu: false,
            models: vec![],
            declined: declined.iter().map(|d| d.to_string()).collect(),
            runs: None,
        }
    }

    fn asked(consents: &mut Consents, consent: Consent) -> Vec<String> {
        let Consent::Pending(ask) = consent else {
            panic!("not pending")
        };
        let mut actions = Vec::new();
        consents.ask(ask.into_iter().collect(), &mut actions);
        actions
            .iter()
            .map(|a| match a {
                Action::AskConsent { script } => script.name.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn only_scripts_the_room_allowed_are_put_to_the_friend_once_until_they_answer() {
        let mut consents = Consents::default();
        let builtin = TaskKind::Primes { start: 0, end: 10 };
        assert!(matches!(
            consents.of(&builtin, &caps(&[]), &Allowlist::default()),
            Consent::Given
        ));

        let unlisted = consents.of(&script(), &caps(&[]), &Allowlist::default());
        assert!(
            asked(&mut consents, unlisted).is_empty(),
            "not on the list: not asked"
        );
        let first = consents.of(&script(), &caps(&[]), &room_allows_it());
        assert_eq!(asked(&mut consents, first), ["sum"]);
        let again = consents.of(&script(), &caps(&[]), &room_allows_it());
        assert!(asked(&mut consents, again).is_empty(), "asked once");

        consents.approve(format!("sha384-{}", "A".repeat(64)));
        assert!(matches!(
            consents.of(&script(), &caps(&[]), &room_allows_it()),
            Consent::Given
        ));
        let declined = caps(&[&format!("sha384-{}", "A".repeat(64))]);
        assert!(matches!(
            Consents::default().of(&script(), &declined, &room_allows_it()),
            Consent::Declined
        ));
    }
}
