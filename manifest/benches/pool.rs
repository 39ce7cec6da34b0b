//! The pool under Synapse's default rate limits, in the room simulation:
//! room events per task and per node-minute under load, and the largest task
//! rate the limits allow. Prints figures; asserts nothing.
//!
//! `cargo bench -p potluck-manifest --bench pool`

#[path = "../tests/sim/mod.rs"]
mod sim;

use sim::{run, Config};

/// 8 nodes of 4 slots, 60 tasks of 8 chunks of 30-90 s, on top of `base`.
fn busy(base: Config) -> Config {
    Config {
        contributors: 8,
        slots: 4,
        flood_tasks: 60,
        chunks: 8,
        chunk_ms: (30_000, 90_000),
        ..base
    }
}

/// `tests/e2e/scale.test.mjs`: 20 one-worker native nodes, 20 friends
/// submitting 10 tasks each of two short chunks.
fn scale_check(base: Config) -> Config {
    Config {
        contributors: 20,
        slots: 1,
        flood_tasks: 200,
        flood_friends: 20,
        chunks: 2,
        chunk_ms: (30, 150),
        ..base
    }
}

fn main() {
    println!(
        "{:<44} {:>8} {:>10} {:>12} {:>12} {:>11}",
        "scenario", "tasks", "events", "events/task", "events/node-min", "tasks/min"
    );
    let calm = |seed| Config {
        crash_percent_per_s: 0,
        crash_coordinator: false,
        max_lag_ms: 500,
        duplicate_percent: 0,
        ..Config::hostile(seed)
    };
    let scenarios = [
        (
            "3 nodes x 2 slots, 30 tasks x 3 chunks of 20-60 s",
            Config {
                flood_tasks: 30,
                chunk_ms: (20_000, 60_000),
                ..calm(1)
            },
        ),
        (
            "8 nodes x 4 slots, 60 tasks x 8 chunks of 30-90 s",
            busy(calm(2)),
        ),
        (
            "the same, with crashes, lag and duplicates",
            busy(Config::hostile(3)),
        ),
        (
            "max task rate: 8 nodes x 4 slots, 1-chunk tasks of 1 s",
            Config {
                contributors: 8,
                slots: 4,
                flood_tasks: 120,
                chunks: 1,
                chunk_ms: (1_000, 1_000),
                ..calm(4)
            },
        ),
        (
            "the scale check: 20 nodes x 1 slot, 20 friends x 10 tasks x 2 chunks of 0.1 s",
            scale_check(calm(5)),
        ),
        (
            "the same, all 200 tasks from one friend",
            Config {
                flood_friends: 1,
                ..scale_check(calm(5))
            },
        ),
    ];
    for (name, config) in scenarios {
        let started = std::time::Instant::now();
        let report = run(&config);
        let minutes = report.finished_at_ms as f64 / 60_000.0;
        println!(
            "{:<44} {:>8} {:>10} {:>12.2} {:>12.2} {:>11.1}   ({} crashes; simulated {:.1} min in {:.2} s)",
            name,
            report.tasks,
            report.events_total,
            report.events_total as f64 / report.tasks as f64,
            report.events_total as f64 / report.node_minutes,
            report.tasks as f64 / minutes,
            report.crashes,
            minutes,
            started.elapsed().as_secs_f64(),
        );
    }
}
