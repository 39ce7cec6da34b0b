//! A tab that opens later reads the room differently from tabs open all
//! along: only current state, and redacted events without their content.
//! Whatever a member overwrites or redacts, the late tab must compute what
//! the open tabs folded live. A member overwrites another member's node
//! state (any member may send `org.potluck.node`, as the README asks rooms
//! to allow): open tabs refuse it, the node puts its state back at once. A
//! member redacts a result: open tabs forget it, as the late tab never saw it.
//! A member leaves the room: their nodes leave with them, in every tab.

mod common;

use common::{caps, raw};
use manifest::events::{event_type, Outgoing};
use manifest::ids::{NodeId, UserId};
use manifest::node::{Action, Input, NodeMachine};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn user(name: &str) -> UserId {
    UserId::parse(format!("@{name}:hs")).unwrap()
}

fn node(name: &str) -> NodeId {
    NodeId::new(&user(name), "tab").unwrap()
}

/// The room's timeline, and its current state as a homeserver keeps it.
#[derive(Default)]
struct Room {
    timeline: Vec<Value>,
    state: BTreeMap<String, Value>,
}

impl Room {
    fn post(&mut self, sender: &str, out: &Outgoing, ts: u64) -> Value {
        let event = raw(&format!("$e{}", self.timeline.len()), sender, out, ts);
        if let Some(key) = &out.state_key {
            self.state
                .insert(format!("{}|{key}", out.event_type), event.clone());
        }
        self.timeline.push(event.clone());
        event
    }

    /// Sends what `machine` asks to send, as `sender`.
    fn carry_out(&mut self, sender: &str, actions: Vec<Action>, ts: u64) -> usize {
        let mut sent = 0;
        for action in actions {
            if let Action::Send { out, .. } = action {
                self.post(sender, &out, ts);
                sent += 1;
            }
        }
        sent
    }
}

#[test]
fn a_node_whose_state_someone_overwrote_announces_itself_again_and_late_tabs_agree() {
    let mut room = Room::default();
    let mut alice = NodeMachine::new(user("alice"));
    let mut bob = NodeMachine::new(user("bob"));
    let start = |name: &str| Input::StartContributing {
        node: node(name),
        caps: caps(),
    };
    let actions = alice.process(start("alice"), 1_000);
    room.carry_out("@alice:hs", actions, 1_000);
    let actions = bob.process(start("bob"), 2_000);
    room.carry_out("@bob:hs", actions, 2_000);
    for event in room.timeline.clone() {
        alice.process(Input::RoomEvent(event.clone()), 3_000);
        bob.process(Input::RoomEvent(event), 3_000);
    }
    assert_eq!(alice.ledger().coordinator(), Some(&node("alice")));

    // Mallory writes "gone" under alice's key.
    let forged = Outgoing {
        event_type: event_type::NODE,
        state_key: Some(node("alice").to_string()),
        content: json!({"v": 1, "online": false}),
    };
    let event = room.post("@mallory:hs", &forged, 10_000);
    let actions = alice.process(Input::RoomEvent(event.clone()), 10_000);
    let actions: Vec<Action> = actions
        .into_iter()
        .chain(alice.process(Input::Tick, 11_000))
        .collect();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ArmDeadManSwitch { .. })),
        "her dead-man switch still runs: only her state is put back"
    );
    let sent = room.carry_out("@alice:hs", actions, 11_000);
    assert!(sent >= 1, "alice announced herself again");
    bob.process(Input::RoomEvent(event), 10_000);
    assert_eq!(
        bob.ledger().coordinator(),
        Some(&node("alice")),
        "bob refused the forgery"
    );

    // A tab that opens now reads only the room's current state.
    let mut late = NodeMachine::new(user("carol"));
    let state: Vec<Value> = room.state.values().cloned().collect();
    late.process(Input::RoomEvents(state), 12_000);
    assert_eq!(
        late.ledger().coordinator(),
        bob.ledger().coordinator(),
        "the late tab elects the coordinator the open tabs have"
    );
}

#[test]
fn a_redacted_result_leaves_open_tabs_where_a_tab_opening_later_starts() {
    let mut room = Room::default();
    let alice_caps = caps();
    room.post(
        "@alice:hs",
        &Outgoing::node_online(&node("alice"), &alice_caps),
        1_000,
    );
    let spec = manifest::events::TaskSpec::new(
        manifest::task_kind::TaskKind::Primes { start: 0, end: 100 },
        1,
    );
    let task = room.post("@carol:hs", &Outgoing::task(&spec), 2_000);
    let task = manifest::ids::EventId::parse(task["event_id"].as_str().unwrap()).unwrap();
    let assignment = manifest::events::Assignment {
        chunk: 0,
        node: node("alice"),
        attempt: 1,
    };
    room.post("@alice:hs", &Outgoing::assign(&task, &[assignment]), 3_000);
    let outcome = manifest::events::ChunkOutcome {
        chunk: 0,
        attempt: 1,
        outcome: manifest::events::Outcome::Output(json!({"count": 25}).into()),
        compute_ms: None,
    };
    let result = room.post(
        "@alice:hs",
        &Outgoing::result(&task, &node("alice"), &[outcome]),
        4_000,
    );

    // A tab open all along sees the result, then alice redacting it.
    let mut open = NodeMachine::new(user("bob"));
    for event in room.timeline.clone() {
        open.process(Input::RoomEvent(event), 5_000);
    }
    let status = |m: &NodeMachine| {
        let t = m.ledger().task(&task).unwrap();
        (
            m.ledger().task_status(t, 6_000),
            t.chunks[0].done().is_some(),
        )
    };
    assert!(status(&open).1, "done before the redaction");
    let redaction = json!({"type": "m.room.redaction", "event_id": "$r", "sender": "@alice:hs",
        "origin_server_ts": 5_500, "redacts": result["event_id"], "content": {}});
    open.process(Input::RoomEvent(redaction), 5_500);

    // A tab opening now reads the result as the homeserver keeps it: no content.
    let mut late = NodeMachine::new(user("dan"));
    let history: Vec<Value> = room
        .timeline
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e["event_id"] == result["event_id"] {
                e["content"] = json!({});
            }
            e
        })
        .collect();
    late.process(Input::RoomEvents(history), 6_000);
    assert_eq!(status(&open), status(&late), "both tabs see the same task");
    assert!(!status(&late).1, "the chunk is no longer done");
}

#[test]
fn a_friend_who_leaves_the_room_takes_their_node_with_them_in_every_tab() {
    let mut room = Room::default();
    let membership = |who: &str, membership: &str| Outgoing {
        event_type: manifest::events::MEMBER,
        state_key: Some(format!("@{who}:hs")),
        content: json!({ "membership": membership }),
    };
    room.post("@bob:hs", &membership("bob", "join"), 500);
    room.post(
        "@bob:hs",
        &Outgoing::node_online(&node("bob"), &caps()),
        1_000,
    );
    room.post(
        "@alice:hs",
        &Outgoing::node_online(&node("alice"), &caps()),
        2_000,
    );
    let mut open = NodeMachine::new(user("carol"));
    for event in room.timeline.clone() {
        open.process(Input::RoomEvent(event), 3_000);
    }
    assert_eq!(open.ledger().coordinator(), Some(&node("bob")));

    // Bob leaves while his tab still runs: no leave notice can follow (he can
    // no longer send in the room), and his heartbeats would keep it off.
    let leave = room.post("@bob:hs", &membership("bob", "leave"), 10_000);
    open.process(Input::RoomEvent(leave), 10_000);
    let online = |m: &NodeMachine| -> Vec<NodeId> {
        m.ledger().online_nodes().map(|n| n.id.clone()).collect()
    };
    assert_eq!(online(&open), vec![node("alice")], "his node left with him");
    assert_eq!(open.ledger().coordinator(), Some(&node("alice")));

    // He comes back: his old node stays gone until it announces itself again.
    let rejoin = room.post("@bob:hs", &membership("bob", "join"), 20_000);
    open.process(Input::RoomEvent(rejoin), 20_000);
    let mut late = NodeMachine::new(user("dan"));
    late.process(
        Input::RoomEvents(room.state.values().cloned().collect()),
        21_000,
    );
    for tab in [&open, &late] {
        assert_eq!(online(tab), vec![node("alice")]);
        assert_eq!(tab.ledger().coordinator(), Some(&node("alice")));
    }
}
