//! Ledger fold throughput and the cost of one scheduling decision.
//!
//! `cargo bench -p potluck-manifest --bench ledger`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use manifest::events::{Assignment, ChunkOutcome, NodeCaps, Outcome, Outgoing, TaskSpec};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::Ledger;
use manifest::scheduler::{plan, InFlight};
use manifest::task_kind::TaskKind;
use serde_json::{json, Value};
use std::hint::black_box;

const NODES: usize = 50;

fn event(n: &mut u64, sender: &UserId, out: &Outgoing, ts: u64) -> Value {
    *n += 1;
    let mut raw = json!({"type": out.event_type, "event_id": format!("$ev{n:08}"), "sender": sender,
        "origin_server_ts": ts, "content": out.content});
    if let Some(key) = &out.state_key {
        raw["state_key"] = json!(key);
    }
    raw
}

/// The 50 friends whose tabs contribute, each with 4 worker slots.
fn friends() -> (Vec<UserId>, NodeCaps) {
    let users = (0..NODES)
        .map(|i| UserId::parse(format!("@friend{i}:hs")).unwrap())
        .collect();
    let caps = NodeCaps {
        cores: 8,
        slots: 4,
        memory_mb: None,
        webgpu: false,
        models: vec![],
        declined: vec![],
        runs: None,
    };
    (users, caps)
}

fn spec() -> TaskSpec {
    TaskSpec::new(
        TaskKind::Primes {
            start: 0,
            end: 1_000_000,
        },
        1,
    )
}

/// A room's history: 50 nodes, then tasks each assigned and finished.
fn history(total: usize) -> Vec<Value> {
    let mut n = 0;
    let (users, caps) = friends();
    let nodes: Vec<NodeId> = users
        .iter()
        .map(|u| NodeId::new(u, "tab").unwrap())
        .collect();
    let mut events: Vec<Value> = users
        .iter()
        .zip(&nodes)
        .map(|(u, id)| event(&mut n, u, &Outgoing::node_online(id, &caps), 1))
        .collect();
    let submitter = UserId::parse("@carol:hs").unwrap();
    let mut ts = 10;
    while events.len() + 3 <= total {
        ts += 3;
        let task = event(&mut n, &submitter, &Outgoing::task(&spec()), ts);
        let id = EventId::parse(task["event_id"].as_str().unwrap()).unwrap();
        let worker = (n as usize) % NODES;
        let assignment = Assignment {
            chunk: 0,
            node: nodes[worker].clone(),
            attempt: 1,
        };
        let assign = event(
            &mut n,
            &users[0],
            &Outgoing::assign(&id, &[assignment]),
            ts + 1,
        );
        let outcome = ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: Outcome::Output(json!({"count": 78_498}).into()),
            compute_ms: None,
        };
        let result = event(
            &mut n,
            &users[worker],
            &Outgoing::result(&id, &nodes[worker], &[outcome]),
            ts + 2,
        );
        events.extend([task, assign, result]);
    }
    events
}

fn fold(c: &mut Criterion) {
    let events = history(100_000);
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    // Every measurement returns its ledger: freeing it is not folding.
    group.bench_function("fold 100k events in order", |b| {
        b.iter_with_large_drop(|| {
            let mut ledger = Ledger::new();
            for e in &events {
                let _ = ledger.ingest(e);
            }
            ledger
        })
    });
    let validated: Vec<_> = events
        .iter()
        .filter_map(|e| manifest::validate::parse_event(e).ok())
        .collect();
    group.bench_function("fold 100k validated events in order", |b| {
        b.iter_batched(
            || validated.clone(),
            |validated| {
                let mut ledger = Ledger::new();
                for e in validated {
                    ledger.insert(e);
                }
                ledger
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("validate 100k events (no fold)", |b| {
        b.iter(|| {
            for e in &events {
                let _ = black_box(manifest::validate::parse_event(e));
            }
        })
    });
    let mut reversed = events.clone();
    reversed.reverse();
    group.bench_function(
        "fold 100k events read back newest first, as one batch",
        |b| {
            b.iter_with_large_drop(|| {
                let mut ledger = Ledger::new();
                black_box(ledger.ingest_all(&reversed));
                ledger
            })
        },
    );
    group.finish();
}

fn schedule(c: &mut Criterion) {
    // 50 nodes online, 10k tasks queued, nothing assigned yet.
    let mut n = 0;
    let (users, caps) = friends();
    let mut ledger = Ledger::new();
    for u in &users {
        let _ = ledger.ingest(&event(
            &mut n,
            u,
            &Outgoing::node_online(&NodeId::new(u, "tab").unwrap(), &caps),
            1,
        ));
    }
    for i in 0..10_000u64 {
        let submitter = &users[(i % 7) as usize];
        let _ = ledger.ingest(&event(&mut n, submitter, &Outgoing::task(&spec()), 10 + i));
    }
    let now = 20_000;
    c.bench_function("one scheduling decision, 10k queued tasks, 50 nodes", |b| {
        b.iter_batched(
            InFlight::new,
            |in_flight| black_box(plan(&ledger, now, &in_flight)),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, fold, schedule);
criterion_main!(benches);
