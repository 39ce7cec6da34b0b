//! The widget-API capabilities Potluck asks its host for, and why, in words
//! for the friend who must approve them. Only what the pool needs: its own
//! event types in this room, its node state, and delayed events for the
//! dead-man switch. `potluck-capabilities` prints them for the widget's
//! bootstrap script, so this list is the only one.

use crate::events::event_type;
use crate::sort;

/// MSC4039: download media through the host (the widget has no token).
pub const DOWNLOAD_FILE: &str = "org.matrix.msc4039.download_file";
/// MSC4039: upload media through the host: a task's input files.
pub const UPLOAD_FILE: &str = "org.matrix.msc4039.upload_file";

pub struct Capability {
    pub id: String,
    pub why: &'static str,
}

pub fn requested() -> Vec<Capability> {
    let mut caps = Vec::new();
    for (ty, send, receive) in [
        (
            event_type::TASK,
            "submit tasks, and start those friends ask for in chat",
            "see friends' tasks",
        ),
        (
            event_type::ASSIGN,
            "hand out work when your computer coordinates the pool",
            "learn which work is your computer's",
        ),
        (
            event_type::RESULT,
            "post what your computer worked out",
            "collect the results of every task",
        ),
        (
            event_type::PROGRESS,
            "say how far your computer got with long work",
            "show how far friends' computers got",
        ),
        (
            event_type::CANCEL,
            "cancel tasks you submitted",
            "stop work that its submitter cancelled",
        ),
    ] {
        caps.push(Capability {
            id: format!("org.matrix.msc2762.send.event:{ty}"),
            why: send,
        });
        caps.push(Capability {
            id: format!("org.matrix.msc2762.receive.event:{ty}"),
            why: receive,
        });
    }
    let node = event_type::NODE;
    caps.push(Capability {
        id: format!("org.matrix.msc2762.send.state_event:{node}"),
        why: "announce this computer when you contribute",
    });
    caps.push(Capability {
        id: format!("org.matrix.msc2762.receive.state_event:{node}"),
        why: "see who contributes",
    });
    caps.push(Capability {
        id: format!(
            "org.matrix.msc2762.receive.state_event:{}",
            crate::events::MEMBER
        ),
        why: "notice when a friend leaves the room, so their computer is given no more work",
    });
    let allowlist = event_type::ALLOWLIST;
    caps.push(Capability {
        id: format!("org.matrix.msc2762.send.state_event:{allowlist}#"),
        why: "let the room's moderators choose which scripts friends' machines may run",
    });
    caps.push(Capability {
        id: format!("org.matrix.msc2762.receive.state_event:{allowlist}#"),
        why: "run only the scripts the room allowed",
    });
    caps.push(Capability {
        id: format!(
            "org.matrix.msc2762.receive.event:{}",
            crate::events::REDACTION
        ),
        why: "notice when a friend deletes a Potluck event, so every tab agrees on what happened",
    });
    caps.push(Capability {
        id: "org.matrix.msc2762.receive.event:m.room.message#m.text".into(),
        why: "start tasks that friends ask for in chat with !run and !transcribe",
    });
    caps.push(Capability {
        id: "org.matrix.msc2762.receive.event:m.room.message#m.audio".into(),
        why: "list the room's voice messages to transcribe",
    });
    caps.push(Capability {
        id: "org.matrix.msc2762.send.event:m.room.message#m.notice".into(),
        why: "post transcripts as replies in the voice message's thread",
    });
    caps.push(Capability {
        id: "org.matrix.msc2762.receive.event:m.room.message#m.notice".into(),
        why: "see which voice messages already have a transcript",
    });
    caps.push(Capability {
        id: DOWNLOAD_FILE.into(),
        why: "download the voice messages friends ask to transcribe, and tasks' input files",
    });
    caps.push(Capability {
        id: UPLOAD_FILE.into(),
        why: "upload the input files of tasks you submit",
    });
    caps.push(Capability {
        id: format!(
            "org.matrix.msc3819.send.to_device:{}",
            crate::private::OUTPUT_EVENT_TYPE
        ),
        why: "send private results to the friend who asked for them alone",
    });
    caps.push(Capability {
        id: format!(
            "org.matrix.msc3819.receive.to_device:{}",
            crate::private::OUTPUT_EVENT_TYPE
        ),
        why: "receive the results of your private tasks",
    });
    caps.push(Capability {
        id: "org.matrix.msc4157.send.delayed_event".into(),
        why: "let the homeserver say your computer left if your tab closes",
    });
    caps.push(Capability {
        id: "org.matrix.msc4157.update_delayed_event".into(),
        why: "keep that notice from going out while your tab is open",
    });
    caps
}

/// `requested()` in the order Element's approval dialog lists them: by
/// name, timeline capabilities last (Potluck asks for none).
pub fn in_element_order() -> Vec<Capability> {
    let mut caps = requested();
    sort::sort_by_key(&mut caps, |c| (c.id.contains(".timeline:"), c.id.clone()));
    caps
}

/// The README's table of what each capability is for, in Element's order.
pub fn markdown_table() -> String {
    let mut table = String::from("| # | capability, as Element's dialog lists it | what Potluck uses it for |\n|---|---|---|\n");
    for (n, cap) in in_element_order().iter().enumerate() {
        table += &format!("| {} | `{}` | {} |\n", n + 1, cap.id, cap.why);
    }
    table
}

/// The capabilities the host did not grant, each with the reason we need it.
pub fn missing(granted: impl Fn(&str) -> bool) -> Vec<Capability> {
    requested()
        .into_iter()
        .filter(|c| !granted(&c.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_only_for_potluck_types_delayed_events_chat_redactions_membership_and_media() {
        for cap in requested() {
            let chat = cap.id.contains("event:m.room.message#m.")
                || cap.id == "org.matrix.msc2762.receive.event:m.room.redaction"
                || cap.id == "org.matrix.msc2762.receive.state_event:m.room.member";
            let only_notices_are_sent =
                !cap.id.contains("send.event:m.room.message") || cap.id.ends_with("#m.notice");
            assert!(
                only_notices_are_sent,
                "{} would let Potluck speak as the friend",
                cap.id
            );
            assert!(
                cap.id.contains("org.potluck.")
                    || cap.id.starts_with("org.matrix.msc4157.")
                    || cap.id == DOWNLOAD_FILE
                    || cap.id == UPLOAD_FILE
                    || chat,
                "{} is more than Potluck needs",
                cap.id
            );
        }
    }

    #[test]
    fn reports_what_was_denied() {
        let denied = missing(|id| !id.contains("delayed_event"));
        assert_eq!(denied.len(), 2);
        assert!(missing(|_| true).is_empty());
    }
}
