//! Property tests: whatever JSON arrives, validation and the ledger answer
//! with a value or a reason, never a panic, and the ledger's verdict does not
//! depend on the order events arrive in.

use manifest::ledger::Ledger;
use manifest::validate::{json_size, parse_event, Invalid};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\/\\x7f\u{2028}é]{0,8}".prop_map(Value::from),
        prop_oneof![
            Just("@a:hs"),
            Just("$e1"),
            Just("t|@a:hs"),
            Just("mxc://hs/x"),
            Just("m.reference"),
            Just("primes")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                "[a-z_.]{1,12}|v|kind|params|chunks|online|caps|assignments|outcomes|m.relates_to",
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A well-formed envelope around arbitrary content, with one of our types.
fn arb_event() -> impl Strategy<Value = Value> {
    let types = prop_oneof![
        Just("org.potluck.node"),
        Just("org.potluck.task"),
        Just("org.potluck.assign"),
        Just("org.potluck.result"),
        Just("org.potluck.cancel"),
        Just("m.room.message"),
    ];
    (
        types,
        arb_json(),
        0u64..1_000,
        0u32..50,
        prop::option::of("t|@[ab]:hs"),
        prop_oneof![Just("@a:hs"), Just("@b:hs")],
    )
        .prop_map(|(ty, content, ts, id, key, sender)| {
            let mut event = json!({"type": ty, "event_id": format!("$e{id}"), "sender": sender,
                "origin_server_ts": ts, "content": content});
            if let Some(key) = key {
                event["state_key"] = json!(key);
            }
            event
        })
}

/// A valid task's content with one field replaced by arbitrary JSON.
fn arb_mutated_task() -> impl Strategy<Value = Value> {
    let fields = prop_oneof![
        Just("v"),
        Just("kind"),
        Just("params"),
        Just("chunks"),
        Just("priority"),
        Just("requirements"),
        Just("inputs"),
        Just("deadline_ms"),
        Just("replication"),
        Just("parent")
    ];
    (fields, arb_json()).prop_map(|(field, value)| {
        let mut content = json!({"v": 1, "kind": "primes", "params": {"start": 0, "end": 100}, "chunks": 2});
        content[field] = value;
        json!({"type": "org.potluck.task", "event_id": "$t", "sender": "@a:hs", "origin_server_ts": 1, "content": content})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_size_limit_counts_what_serde_json_writes(value in arb_json()) {
        prop_assert_eq!(json_size(&value), serde_json::to_vec(&value).unwrap().len());
    }

    #[test]
    fn validation_never_panics_on_any_json(raw in arb_json()) {
        let _ = parse_event(&raw);
    }

    #[test]
    fn validation_never_panics_on_our_types_with_any_content(raw in arb_event()) {
        // The envelope is well formed: what is wrong is in the content or
        // the type, and the rejection names the event.
        if let Err(rejection) = parse_event(&raw) {
            prop_assert_eq!(rejection.event_id.as_deref(), raw["event_id"].as_str());
            prop_assert!(
                !matches!(rejection.problem, Invalid::Envelope(_) | Invalid::Id(_)),
                "{:?}", rejection.problem
            );
        }
    }

    #[test]
    fn a_mutated_task_is_accepted_or_rejected_with_a_reason(raw in arb_mutated_task()) {
        match parse_event(&raw) {
            Ok(seen) => prop_assert_eq!(seen.event_id.as_str(), "$t"),
            Err(rejection) => {
                prop_assert_eq!(rejection.event_id.as_deref(), Some("$t"));
                prop_assert!(
                    matches!(
                        rejection.problem,
                        Invalid::Task(_) | Invalid::UnsupportedVersion(_) | Invalid::MissingVersion
                    ),
                    "{:?}", rejection.problem
                );
            }
        }
    }

    #[test]
    fn the_ledger_agrees_whatever_the_arrival_order(
        (events, arrived) in prop::collection::vec(arb_event(), 0..40)
            .prop_map(with_unique_ids)
            .prop_flat_map(|events| (Just(events.clone()), Just(events).prop_shuffle()))
    ) {
        let fold = |events: &[Value]| {
            let mut ledger = Ledger::new();
            for e in events {
                let _ = ledger.ingest(e);
            }
            let tasks: Vec<String> = ledger.tasks().map(|t| format!("{:?}", ledger.task_status(t, 2_000))).collect();
            for task in ledger.tasks() {
                let _ = ledger.task_status(task, u64::MAX);
            }
            let nodes: Vec<String> = ledger.nodes().map(|n| format!("{:?}", n)).collect();
            (tasks, nodes)
        };
        prop_assert_eq!(fold(&events), fold(&arrived));
    }
}

/// A homeserver never gives two events one id.
fn with_unique_ids(mut events: Vec<Value>) -> Vec<Value> {
    for (i, e) in events.iter_mut().enumerate() {
        e["event_id"] = json!(format!("$u{i}"));
    }
    events
}
