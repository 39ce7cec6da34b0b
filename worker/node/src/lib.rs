//! The `potluck` command's library: `potluck node`, an always-on friend. A
//! native process that joins the room as a Matrix user (matrix-sdk, end-to-end encrypted like Element) and
//! contributes exactly as a widget does: it drives the same `NodeMachine`,
//! and runs chunks on threads with the same runners a browser's workers run.
//! It runs no browser scripts, and says so in its capabilities.
//!
//! - `options`: the command line;
//! - `session`: login once, then the stored session;
//! - `room`: events in and out, the leave notice, media;
//! - `driver`: the loop between the machine and all of that;
//! - `workers`: the threads that run chunks; `models`: Whisper's files;
//!   `kernel_process`: a WebGPU kernel's chunk in a process of its own;
//! - `private`, `status`: private results, the status line.
//!
//! A crate of its own, apart from the worker's runners: its Matrix client
//! compiles unoptimised in test builds, where the runners' crate is
//! optimised (a Whisper test takes minutes otherwise).

// Native only: in a browser, the widget is the node.
#![cfg(not(target_arch = "wasm32"))]

mod driver;
pub mod kernel_process;
mod models;
pub mod options;
mod private;
mod room;
pub mod session;
mod status;
mod workers;

use driver::{Driver, Event};
use manifest::agreement::Agreement;
use manifest::events::NodeCaps;
use manifest::ids::{NodeId, UserId};
use manifest::node::{Input, NodeMachine};
use manifest::transcription::WhisperModel;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::client::sync::sync_events;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use options::Options;
use potluck_worker::kernel::Gpu;
use serde_json::Value;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use workers::Workers;

/// How long a sync waits for news before the homeserver answers empty.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the node's clock ticks (leases, heartbeats, batches).
const TICK: Duration = Duration::from_secs(1);
/// How often the status line is logged.
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// How long a clean shutdown waits for the leave notice and queued events.
const LEAVE_WITHIN: Duration = Duration::from_secs(15);

pub use options::USAGE;

pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let options = match options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("potluck node: {e}\nusage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POTLUCK_LOG")
        .unwrap_or_else(|_| "info,matrix_sdk=warn,matrix_sdk::encryption::backups=error,matrix_sdk_crypto=warn,matrix_sdk_crypto::backups=error,matrix_sdk_base=warn".into());
    // Colours only for a person at a terminal, not in a journal or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(options)),
        Err(e) => Err(format!("no async runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let client = session::connect(&options).await?;
    let me = client.user_id().ok_or("the session names no user")?;
    let me = UserId::parse(me.as_str()).map_err(|e| e.to_string())?;
    // The first sync uploads the device's keys and learns the account's rooms.
    let first = client
        .sync_once(SyncSettings::default())
        .await
        .map_err(|e| format!("the first sync failed: {e}"))?;
    let room = room::join(&client, &options.room).await?;
    let caps = caps(&options).await;

    let (events, mut inbox) = mpsc::unbounded_channel();
    let reports = events.clone();
    let (hub, runtime) = (options.models.clone(), tokio::runtime::Handle::current());
    // Worker threads are not the runtime's: they may wait on a download.
    let find_model: workers::FindModel =
        Arc::new(move |model| runtime.block_on(models::ensure(model, &hub)));
    let workers = Workers::start(options.workers, find_model, move |job, event| {
        let _ = reports.send(Event::Job(job, event));
    });
    tokio::spawn(sync_live(
        client.clone(),
        room.room_id().to_owned(),
        first.next_batch,
        events.clone(),
    ));
    let machine = NodeMachine::new(me.clone());
    let mut driver = Driver::new(machine, client, room.clone(), events, workers);
    driver.handle(Input::ReadHistory);
    let node = NodeId::new(&me, &node_tag()).map_err(|e| e.to_string())?;
    tracing::info!(room = %room.room_id(), node = %node, runs = ?caps.runs, slots = caps.slots, models = ?caps.models, gpu = caps.webgpu, "contributing");
    driver.handle(Input::StartContributing { node, caps });

    let mut tick = tokio::time::interval(TICK);
    let mut status = tokio::time::interval(STATUS_EVERY);
    status.tick().await;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            Some(event) = inbox.recv() => driver.on_event(event),
            _ = tick.tick() => driver.handle(Input::Tick),
            _ = status.tick() => log_status(&mut driver),
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }

    // Hand the leases back now: the leave notice fires, and the queued
    // events (results already computed) go out, for a while at most.
    log_status(&mut driver);
    tracing::info!("leaving the pool");
    driver.handle(Input::StopContributing);
    let deadline = tokio::time::Instant::now() + LEAVE_WITHIN;
    while driver.machine.unanswered_sends() > 0
        || driver.leaving
        || driver.machine.queued_sends() > 0
    {
        tokio::select! {
            Some(event) = inbox.recv() => driver.on_event(event),
            _ = tick.tick() => driver.handle(Input::Tick),
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(queued = driver.machine.queued_sends(), "left before every event went out");
                break;
            }
        }
    }
    tracing::info!("left");
    Ok(())
}

fn log_status(driver: &mut Driver) {
    driver.status.running = driver.running();
    driver.status.queued_sends = driver.machine.queued_sends();
    driver.status.models_loaded = driver.workers.loaded_models();
    driver.status.ledger = Some(Agreement::of(driver.machine.ledger(), driver::now_ms()));
    tracing::info!("{}", driver.status);
}

/// What this machine offers, as the room's scheduler reads it. A kind of
/// work it cannot do here (no model on disk, no GPU) is left out, with the
/// reason in the log. (The GPU opened here is only a probe: each kernel runs
/// in a process of its own, see `kernel_process`.)
async fn caps(options: &Options) -> NodeCaps {
    let mut runs = options.accept.clone();
    if runs.iter().any(|k| k == "transcribe") {
        // The default model before the node joins: the first voice message
        // should not wait for a download. Others come when a task asks.
        if let Err(e) = models::ensure(WhisperModel::default(), &options.models).await {
            tracing::warn!("{e}: this node takes no transcriptions");
            runs.retain(|k| k != "transcribe");
        }
    }
    let models = models::on_disk();
    let mut webgpu = false;
    if runs.iter().any(|k| k == "kernel") {
        match tokio::task::spawn_blocking(|| pollster::block_on(Gpu::open())).await {
            Ok(Ok(gpu)) => {
                tracing::info!(adapter = %gpu.name, "kernels run on this GPU");
                webgpu = true;
            }
            Ok(Err(e)) => tracing::warn!("{e}: this node takes no kernels"),
            Err(e) => tracing::warn!("the GPU probe stopped ({e}): this node takes no kernels"),
        }
        if !webgpu {
            runs.retain(|k| k != "kernel");
        }
    }
    NodeCaps {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        slots: options.workers,
        memory_mb: options.memory_mb,
        webgpu,
        models,
        declined: Vec::new(),
        runs: Some(runs),
    }
}

/// A fresh name for this run of the node: a restarted node is a new node,
/// and the one before it leaves the pool by its own leave notice.
fn node_tag() -> String {
    use std::hash::BuildHasher;
    let seed = std::collections::hash_map::RandomState::new().hash_one(driver::now_ms());
    format!("native-{:08x}", seed as u32)
}

/// Timeline events per room in one sync: Synapse's default is 10, fewer
/// than twenty busy nodes send between two syncs, and each limited sync
/// costs a read of the gap, during which the node's view falls behind.
const SYNC_TIMELINE_EVENTS: u32 = 100;

/// What each sync asks for: more of the room's timeline than the default.
fn live_filter() -> sync_events::v3::Filter {
    let mut filter = FilterDefinition::default();
    filter.room.timeline.limit = Some(SYNC_TIMELINE_EVENTS.into());
    sync_events::v3::Filter::FilterDefinition(filter)
}

/// Feeds the room's live events to the loop, sync after sync.
async fn sync_live(
    client: Client,
    room: OwnedRoomId,
    mut token: String,
    events: mpsc::UnboundedSender<Event>,
) {
    // The newest timeline event handed on: where a gap ends.
    let mut last_seen: Option<String> = None;
    loop {
        let settings = SyncSettings::default()
            .token(token.clone())
            .timeout(SYNC_TIMEOUT)
            .filter(live_filter());
        let response = match client.sync_once(settings).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!("sync failed, trying again: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        token = response.next_batch.clone();
        let Some(update) = response.rooms.joined.get(&room) else {
            continue;
        };
        let Some(joined) = client.get_room(&room) else {
            continue;
        };
        let timeline: Vec<Value> = (update.timeline.events.iter())
            .filter_map(|e| room::event_json(e.raw(), &joined))
            .collect();
        // State changed outside the timeline (a gap) comes first.
        let state = match &update.state {
            matrix_sdk::sync::State::Before(state) | matrix_sdk::sync::State::After(state) => state,
        };
        let mut batch: Vec<Value> = state
            .iter()
            .filter_map(|e| room::event_json(e, &joined))
            .filter(|e| !timeline.iter().any(|t| t["event_id"] == e["event_id"]))
            .collect();
        // More events came than one sync carries (a burst of tasks): the
        // ones it left out are read back, or the node would never see them.
        if let (true, Some(prev_batch)) = (update.timeline.limited, &update.timeline.prev_batch) {
            match room::read_gap(&joined, prev_batch.clone(), last_seen.as_deref()).await {
                Ok(gap) => {
                    tracing::debug!(events = gap.len(), "read back a gap in the timeline");
                    // One also in the state above is harmless: the machine
                    // takes an event seen twice as seen once.
                    batch.extend(gap);
                }
                Err(e) => tracing::warn!("a gap in the timeline could not be read back: {e}"),
            }
        }
        if let Some(id) = timeline.last().and_then(|e| e["event_id"].as_str()) {
            last_seen = Some(id.to_owned());
        }
        batch.extend(timeline);
        if !batch.is_empty() && events.send(Event::Room(batch)).is_err() {
            return;
        }
    }
}
