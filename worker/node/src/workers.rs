//! The node's workers: threads that run chunks with the same runners a
//! browser's Web Workers run (primes, Whisper, WGSL kernels), at native speed.

use crate::kernel_process;
use manifest::task_kind::TaskKind;
use manifest::transcription::{TranscribeTask, WhisperModel};
use manifest::worker_protocol::JobId;
use potluck_worker::primes::count_primes;
use potluck_worker::speech::transcribe_span;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use whisper::transcribe::Engine;

/// What a worker says about a job.
#[derive(Debug)]
pub enum JobEvent {
    /// How far it is, from 0 to 1.
    Progress(f32),
    /// Its output, or why it failed.
    Finished(Result<Value, String>),
}

enum Work {
    Chunk {
        job: JobId,
        work: TaskKind,
    },
    Transcribe {
        job: JobId,
        task: Box<TranscribeTask>,
        samples: Vec<f32>,
        previous: Vec<u32>,
    },
    Warm(WhisperModel),
}

/// Finds a model's folder on this machine, fetching it first if need be.
pub type FindModel = Arc<dyn Fn(WhisperModel) -> Result<PathBuf, String> + Send + Sync>;

impl Work {
    fn job(&self) -> Option<JobId> {
        match self {
            Work::Chunk { job, .. } | Work::Transcribe { job, .. } => Some(*job),
            Work::Warm(_) => None,
        }
    }
}

/// Whisper engines, loaded once and shared by every worker thread.
struct Engines {
    loaded: Mutex<BTreeMap<&'static str, Arc<Engine>>>,
    find: FindModel,
}

impl Engines {
    fn get(&self, model: WhisperModel) -> Result<Arc<Engine>, String> {
        // Held while loading: two spans never load the same model twice.
        let mut loaded = (self.loaded.lock()).map_err(|_| "a worker failed loading a model")?;
        if let Some(engine) = loaded.get(model.name()) {
            return Ok(engine.clone());
        }
        let dir = (self.find)(model)?;
        let started = Instant::now();
        let engine = Arc::new(Engine::from_dir(&dir).map_err(|e| {
            format!(
                "the {} model did not load from {}: {e}",
                model.name(),
                dir.display()
            )
        })?);
        tracing::info!(
            model = model.name(),
            seconds = started.elapsed().as_secs_f32(),
            "model loaded"
        );
        loaded.insert(model.name(), engine.clone());
        Ok(engine)
    }

    fn loaded(&self) -> Vec<String> {
        let loaded = (self.loaded.lock()).map(|l| l.keys().map(|k| k.to_string()).collect());
        loaded.unwrap_or_default()
    }
}

/// Threads that run the node's chunks, one at a time each.
pub struct Workers {
    queue: mpsc::Sender<Work>,
    /// Jobs the machine took back: their results are dropped, and a primes
    /// count stops at its next step.
    aborted: Arc<Mutex<BTreeSet<JobId>>>,
    engines: Arc<Engines>,
}

type Report = Arc<dyn Fn(JobId, JobEvent) + Send + Sync>;

impl Workers {
    /// `count` threads; `report` hears from each job (on a worker thread),
    /// `find` gives a model's folder.
    pub fn start(
        count: u32,
        find: FindModel,
        report: impl Fn(JobId, JobEvent) + Send + Sync + 'static,
    ) -> Self {
        let (queue, jobs) = mpsc::channel::<Work>();
        let jobs = Arc::new(Mutex::new(jobs));
        let aborted = Arc::new(Mutex::new(BTreeSet::new()));
        let engines = Arc::new(Engines {
            loaded: Mutex::default(),
            find,
        });
        let report: Report = Arc::new(report);
        for n in 0..count {
            let (jobs, aborted, engines, report) = (
                jobs.clone(),
                aborted.clone(),
                engines.clone(),
                report.clone(),
            );
            std::thread::Builder::new()
                .name(format!("potluck-worker-{n}"))
                .spawn(move || {
                    loop {
                        let next = jobs.lock().map(|j| j.recv());
                        let Ok(Ok(work)) = next else { return };
                        let job = work.job();
                        // A bug in a runner fails its chunk, not the node.
                        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            run(work, &aborted, &engines, &*report)
                        }));
                        if let (Err(_), Some(job)) = (ran, job) {
                            report(
                                job,
                                JobEvent::Finished(Err("the node's worker failed on it".into())),
                            );
                        }
                    }
                })
                .expect("a worker thread starts");
        }
        Self {
            queue,
            aborted,
            engines,
        }
    }

    pub fn run_chunk(&self, job: JobId, work: TaskKind) {
        let _ = self.queue.send(Work::Chunk { job, work });
    }

    pub fn transcribe(
        &self,
        job: JobId,
        task: TranscribeTask,
        samples: Vec<f32>,
        previous: Vec<u32>,
    ) {
        let _ = self.queue.send(Work::Transcribe {
            job,
            task: Box::new(task),
            samples,
            previous,
        });
    }

    /// Loads `model` now, before a span needs it.
    pub fn warm(&self, model: WhisperModel) {
        let _ = self.queue.send(Work::Warm(model));
    }

    pub fn abort(&self, job: JobId) {
        if let Ok(mut aborted) = self.aborted.lock() {
            aborted.insert(job);
        }
    }

    /// The models loaded in memory, for the status line.
    pub fn loaded_models(&self) -> Vec<String> {
        self.engines.loaded()
    }
}

fn run(
    work: Work,
    aborted: &Mutex<BTreeSet<JobId>>,
    engines: &Engines,
    report: &dyn Fn(JobId, JobEvent),
) {
    let is_aborted = |job| aborted.lock().is_ok_and(|a| a.contains(&job));
    let (job, outcome) = match work {
        Work::Warm(model) => {
            if let Err(e) = engines.get(model) {
                tracing::warn!("{e}");
            }
            return;
        }
        Work::Chunk { job, work } => (job, run_chunk(job, work, &is_aborted, report)),
        Work::Transcribe {
            job,
            task,
            samples,
            previous,
        } => (job, transcribe(&task, &samples, &previous, engines)),
    };
    // Taken back while it ran: the machine no longer waits for it.
    let was_aborted = aborted.lock().is_ok_and(|mut a| a.remove(&job));
    if !was_aborted {
        report(job, JobEvent::Finished(outcome));
    }
}

/// Steps a primes count is cut into, to report progress and to stop early.
const PRIMES_STEPS: u64 = 50;

fn run_chunk(
    job: JobId,
    work: TaskKind,
    is_aborted: &dyn Fn(JobId) -> bool,
    report: &dyn Fn(JobId, JobEvent),
) -> Result<Value, String> {
    match work {
        TaskKind::Primes { start, end } => {
            let step = (end.saturating_sub(start) / PRIMES_STEPS).max(1);
            let mut count = 0;
            let mut low = start;
            while low < end {
                if is_aborted(job) {
                    return Err("taken back".into());
                }
                let high = low.saturating_add(step).min(end);
                count += count_primes(low, high, |_| {});
                low = high;
                report(
                    job,
                    JobEvent::Progress((low - start) as f32 / (end - start) as f32),
                );
            }
            Ok(json!({ "count": count }))
        }
        TaskKind::Kernel(task) => kernel_process::run(&task, &|| is_aborted(job)),
        // The node never takes these (its `caps.runs`), and a transcription's
        // chunk runs once its audio is decoded (`transcribe`).
        TaskKind::Script(_) => Err("a native node runs no browser scripts".into()),
        TaskKind::Transcribe(_) => Err("a span is transcribed with its samples".into()),
    }
}

fn transcribe(
    task: &TranscribeTask,
    samples: &[f32],
    previous: &[u32],
    engines: &Engines,
) -> Result<Value, String> {
    let span = task
        .spans()
        .first()
        .ok_or("a worker transcribes spans; planning happens in the node")?;
    let engine = engines.get(task.model)?;
    let started = Instant::now();
    let mut transcript = transcribe_span(&engine, samples, span, previous)?;
    transcript.inference_ms = started.elapsed().as_millis() as u64;
    serde_json::to_value(transcript).map_err(|e| e.to_string())
}
