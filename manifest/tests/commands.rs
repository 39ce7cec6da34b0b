//! `!run` from plain chat: every node sees the message, the coordinator alone
//! starts its task, and the ledger takes one task per message.

use manifest::allowlist::{AllowedScript, Allowlist};
use manifest::commands::RunError;
use manifest::events::Outgoing;
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::Ledger;
use manifest::limits::COMMAND_MAX_AGE_MS;
use manifest::node::{Action, Input, NodeMachine};
use manifest::rejection::{CommandError, Reason, Refused};
mod common;

use common::{caps, raw};
use serde_json::Value;

fn node(name: &str) -> NodeId {
    NodeId::new(&UserId::parse(format!("@{name}:hs")).unwrap(), "t").unwrap()
}

/// The room so far: alice's node (the coordinator), then bob's, and the allowlist.
fn history() -> Vec<Value> {
    let list = Allowlist {
        kernels: vec![],
        scripts: vec![AllowedScript {
            name: "squares".into(),
            url: "https://x.org/squares.js".into(),
            integrity: format!("sha384-{}", "A".repeat(64)),
            description: String::new(),
        }],
    };
    vec![
        raw(
            "$alice",
            "@alice:hs",
            &Outgoing::node_online(&node("alice"), &caps()),
            1_000,
        ),
        raw(
            "$bob",
            "@bob:hs",
            &Outgoing::node_online(&node("bob"), &caps()),
            2_000,
        ),
        raw("$list", "@mod:hs", &Outgoing::allowlist(&list), 3_000),
    ]
}

fn contributing(name: &str) -> NodeMachine {
    let mut machine = NodeMachine::new(UserId::parse(format!("@{name}:hs")).unwrap());
    machine.process(
        Input::StartContributing {
            node: node(name),
            caps: caps(),
        },
        1_000,
    );
    machine.process(Input::RoomEvents(history()), 10_000);
    machine
}

fn command(sent_at: u64) -> Input {
    Input::ChatMessage {
        event_id: EventId::parse("$cmd").unwrap(),
        sender: UserId::parse("@dan:hs").unwrap(),
        body: "!run squares 0 100 10 {\"power\": 2}".into(),
        sent_at,
        reply_to: None,
    }
}

fn tasks_sent(actions: &[Action]) -> Vec<Outgoing> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { out, .. } if out.event_type == "org.potluck.task" => Some(out.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn only_the_coordinator_starts_a_task_for_a_chat_command() {
    let mut alice = contributing("alice");
    let mut bob = contributing("bob");
    let sent = tasks_sent(&alice.process(command(9_000), 10_000));
    assert!(tasks_sent(&bob.process(command(9_000), 10_000)).is_empty());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content["command"]["sender"], "@dan:hs");
    assert_eq!(sent[0].content["chunks"], 10);
    // Nothing more while its task is on its way.
    assert!(tasks_sent(&alice.process(Input::Tick, 11_000)).is_empty());
}

#[test]
fn one_task_per_command_and_in_the_senders_name() {
    let alice = {
        let mut alice = contributing("alice");
        tasks_sent(&alice.process(command(9_000), 10_000)).remove(0)
    };
    let mut ledger = Ledger::new();
    ledger.ingest_all(&history());
    ledger
        .ingest(&raw("$t1", "@alice:hs", &alice, 10_100))
        .unwrap();
    ledger
        .ingest(&raw("$t2", "@alice:hs", &alice, 10_200))
        .unwrap();
    ledger
        .ingest(&raw("$t3", "@bob:hs", &alice, 10_300))
        .unwrap();
    let tasks: Vec<_> = ledger.tasks().collect();
    assert_eq!(tasks.len(), 1, "one task for one message");
    assert_eq!(tasks[0].submitter.as_str(), "@dan:hs");
    let reasons: Vec<&Reason> = ledger.rejections().map(|r| &r.reason).collect();
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Reason::Refused(Refused::CommandAlreadyStarted { first, .. }) if first.as_str() == "$t1"
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Reason::Refused(Refused::CommandNotByCoordinator { sender }) if sender.as_str() == "@bob:hs"
        )),
        "{reasons:?}"
    );
}

#[test]
fn old_commands_and_unknown_scripts_start_nothing() {
    let mut alice = contributing("alice");
    let late = alice.process(command(9_000), 9_000 + COMMAND_MAX_AGE_MS + 1);
    assert!(tasks_sent(&late).is_empty(), "history, not a request");
    let unknown = alice.process(
        Input::ChatMessage {
            event_id: EventId::parse("$cmd2").unwrap(),
            sender: UserId::parse("@dan:hs").unwrap(),
            body: "!run miner 0 10 1".into(),
            sent_at: 20_000,
            reply_to: None,
        },
        20_000,
    );
    assert!(tasks_sent(&unknown).is_empty());
    assert!(unknown
        .iter()
        .any(|a| matches!(a, Action::Rejected(r) if matches!(
            &r.reason,
            Reason::CommandNotRun(CommandError::Run(RunError::UnknownScript { name })) if name == "miner"
        ))));
}

#[test]
fn a_coordinator_cannot_start_a_command_in_another_friends_name() {
    // Alice coordinates, and sends a task for dan's `!run` naming carol.
    let mut forged = {
        let mut alice = contributing("alice");
        tasks_sent(&alice.process(command(9_000), 10_000)).remove(0)
    };
    forged.content["command"]["sender"] = "@carol:hs".into();
    let mut bob = contributing("bob");
    bob.process(command(9_000), 10_000);
    bob.process(
        Input::RoomEvent(raw("$forged", "@alice:hs", &forged, 10_100)),
        10_200,
    );
    assert_eq!(bob.ledger().tasks().count(), 0, "no task in carol's name");
    assert!(bob.ledger().rejections().any(|r| matches!(
        &r.reason,
        Reason::Refused(Refused::CommandInAnotherName { named, actual, .. })
            if named.as_str() == "@carol:hs" && actual.as_str() == "@dan:hs"
    )));

    // The same task seen before the message (a tab's events come late and
    // out of order) is refused once the message arrives.
    let mut late = contributing("bob");
    late.process(
        Input::RoomEvent(raw("$forged", "@alice:hs", &forged, 10_100)),
        10_200,
    );
    assert_eq!(
        late.ledger().tasks().count(),
        1,
        "nothing to check it against yet"
    );
    late.process(command(9_000), 10_300);
    assert_eq!(
        late.ledger().tasks().count(),
        0,
        "refused once the message is seen"
    );
}
