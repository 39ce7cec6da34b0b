//! Contributing: announcing the node with its capabilities, keeping it alive
//! with the dead-man switch, putting back its state when another member
//! overwrites it, and leaving.

use super::action::Action;
use super::outbox::Outbox;
use crate::events::{event_type, NodeCaps, Outgoing, PotluckEvent, SeenEvent};
use crate::ids::{NodeId, UserId};
use crate::ledger::Ledger;
use crate::limits::{HEARTBEAT_MS, RESEND_AFTER_MS};
use crate::transcription::WhisperModel;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Contribution {
    node: NodeId,
    caps: NodeCaps,
    /// When the announcement was last sent (not yet seen back: `None` means "send it").
    announced_at: Option<u64>,
    last_heartbeat: u64,
    /// Another member wrote this node's state key: put it back.
    overwritten: bool,
    /// Since when it says it is online: kept from its first announcement,
    /// so that putting its state back keeps its seniority even before the
    /// first announcement came back.
    since: Option<u64>,
    /// Whether it asked for the Whisper model ahead of the first span.
    model_prepared: bool,
}

impl Contribution {
    /// A node that starts contributing at `now`: it announces itself at the next step.
    pub fn start(node: NodeId, caps: NodeCaps, now: u64) -> Self {
        Self {
            node,
            caps,
            announced_at: None,
            last_heartbeat: now,
            overwritten: false,
            since: None,
            model_prepared: false,
        }
    }

    /// Asks its driver, once, to load the default Whisper model (the one
    /// Transcribe asks for) ahead of the first span, if a voice message
    /// came recently (`recent_voice`, asked only until then).
    pub fn prepare_model(&mut self, recent_voice: impl Fn() -> bool, actions: &mut Vec<Action>) {
        if !self.model_prepared && recent_voice() {
            self.model_prepared = true;
            actions.push(Action::PrepareModel {
                model: WhisperModel::default(),
            });
        }
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    pub fn caps(&self) -> &NodeCaps {
        &self.caps
    }

    /// What its dead-man switch says: gone, and since when it was online.
    pub fn leave_notice(&self) -> Outgoing {
        match self.since {
            Some(since) => Outgoing::node_gone_after(&self.node, since, &self.caps),
            None => Outgoing::node_gone(&self.node),
        }
    }

    /// Someone else wrote this node's state key (any member may send node
    /// state): every ledger refuses it, but the room's current state now
    /// holds it, and a tab opening later reads only current state. So the
    /// node announces itself again at once, putting its own state back.
    pub fn notice_overwrite(&mut self, raw: &Value, me: Option<&UserId>) {
        let mine = raw["type"] == event_type::NODE && raw["state_key"] == self.node.as_str();
        let by_other = raw["sender"].as_str() != me.map(UserId::as_str);
        if mine && by_other {
            self.overwritten = true;
        }
    }

    /// A member redacted an event: if it was this node's own announcement,
    /// the node makes it again.
    pub fn notice_redacted(&mut self, removed: &SeenEvent) {
        if let PotluckEvent::NodeOnline { node, .. } = &removed.event {
            if node == &self.node {
                self.overwritten = true;
            }
        }
    }

    /// The friend declined a script: the node's capabilities say so, so that
    /// the coordinator sends it elsewhere. The announcement to send, once.
    pub fn decline(&mut self, integrity: String) -> Option<Outgoing> {
        if self.caps.declined.contains(&integrity) {
            return None;
        }
        self.caps.declined.push(integrity);
        Some(Outgoing::node_online_since(
            &self.node, &self.caps, self.since,
        ))
    }

    /// Announces the node (again, if the room saw it go or another member
    /// overwrote it), arms the dead-man switch, and restarts it every heartbeat.
    pub fn keep_alive(
        &mut self,
        ledger: &Ledger,
        outbox: &mut Outbox,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        let seen_online = ledger.node(&self.node).is_some_and(|n| n.online);
        let announce_due = match self.announced_at {
            None => true,
            // Not seen back, or the homeserver announced us gone while we live
            // (a throttled tab missed heartbeats): announce again.
            Some(at) => !seen_online && now >= at + RESEND_AFTER_MS,
        };
        if (announce_due || self.overwritten) && outbox.try_take(now) {
            if announce_due && ledger.node(&self.node).is_some_and(|n| !n.online) {
                // The room saw it go: it is online again from now.
                self.since = None;
            }
            let since = *self.since.get_or_insert(now);
            let announce = Outgoing::node_online_since(&self.node, &self.caps, Some(since));
            outbox.send(announce, actions);
            self.overwritten = false;
            if !announce_due {
                // Only its overwritten state is put back: its dead-man switch still runs.
                return;
            }
            actions.push(Action::ArmDeadManSwitch {
                node: self.node.clone(),
                gone: self.leave_notice(),
            });
            self.announced_at = Some(now);
            self.last_heartbeat = now;
        } else if self.announced_at.is_some() && now >= self.last_heartbeat + HEARTBEAT_MS {
            actions.push(Action::RestartDeadManSwitch);
            self.last_heartbeat = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contribution() -> Contribution {
        let caps = super::super::test_support::caps(2);
        let alice = UserId::parse("@alice:hs").unwrap();
        Contribution::start(NodeId::new(&alice, "tab1").unwrap(), caps, 0)
    }

    fn kinds(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                Action::Send { out, .. } if out.event_type == event_type::NODE => "announce",
                Action::ArmDeadManSwitch { .. } => "arm",
                Action::RestartDeadManSwitch => "heartbeat",
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn step(c: &mut Contribution, outbox: &mut Outbox, now: u64) -> Vec<&'static str> {
        let mut actions = Vec::new();
        c.keep_alive(&Ledger::new(), outbox, now, &mut actions);
        kinds(&actions)
    }

    #[test]
    fn a_node_announces_once_arms_its_switch_and_restarts_it_every_heartbeat() {
        let (mut c, mut outbox) = (contribution(), Outbox::default());
        assert_eq!(step(&mut c, &mut outbox, 0), ["announce", "arm"]);
        assert!(step(&mut c, &mut outbox, HEARTBEAT_MS - 1).is_empty());
        assert_eq!(step(&mut c, &mut outbox, HEARTBEAT_MS), ["heartbeat"]);
        // Its announcement never came back: it is made again.
        assert_eq!(
            step(&mut c, &mut outbox, RESEND_AFTER_MS),
            ["announce", "arm"]
        );
    }

    #[test]
    fn state_another_member_wrote_is_put_back_without_rearming_the_switch() {
        let (mut c, mut outbox) = (contribution(), Outbox::default());
        step(&mut c, &mut outbox, 0);
        let alice = UserId::parse("@alice:hs").unwrap();
        let node = c.node().to_string();
        let by =
            |sender: &str| json!({"type": event_type::NODE, "state_key": node, "sender": sender});
        c.notice_overwrite(&by("@alice:hs"), Some(&alice));
        assert!(
            step(&mut c, &mut outbox, 1).is_empty(),
            "its own state is not an overwrite"
        );
        c.notice_overwrite(&by("@mallory:hs"), Some(&alice));
        assert_eq!(step(&mut c, &mut outbox, 2), ["announce"]);
        assert!(step(&mut c, &mut outbox, 3).is_empty());
    }

    #[test]
    fn a_declined_script_is_announced_once_with_the_first_since() {
        let (mut c, mut outbox) = (contribution(), Outbox::default());
        step(&mut c, &mut outbox, 500);
        let announce = c.decline("sha256-x".into()).unwrap();
        assert_eq!(announce.content["caps"]["declined"], json!(["sha256-x"]));
        assert_eq!(announce.content["since"], json!(500));
        assert_eq!(c.decline("sha256-x".into()), None);
        assert_eq!(c.leave_notice().content["since"], json!(500));
    }
}
