//! The audio a node's transcription chunks need: each voice message is
//! downloaded and decoded once (by the driver, which has the decoder) however
//! many of its chunks run here, the last few are kept, and a chunk waits for
//! its message's audio without polling. Then the plan is made here, and a
//! span's samples go to a worker with the chunk. A recording that fits one
//! window goes to a worker from its plan, and the words come back in the
//! plan's output: a short message costs no part, assignment or span result.

use super::action::Action;
use crate::events::Outcome;
use crate::ids::EventId;
use crate::sorted_map::SortedMap;
use crate::transcription::{self, AudioRef, Plan, SpanTranscript, Stage, TranscribeTask};
use crate::worker_protocol::JobId;
use serde::Deserialize;
use std::sync::Arc;

/// Decoded recordings kept: a long message's spans reuse one decode, and
/// two messages transcribed back to back do not evict each other.
pub const DECODED_KEPT: usize = 2;

#[derive(Debug, Clone)]
enum Decoded {
    /// Asked of the driver (`Action::DecodeAudio`), not answered yet.
    Loading,
    Ready(Arc<Vec<f32>>),
    Failed(String),
}

/// What a transcription chunk comes to once its audio is here.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// A plan's output (or why there is none): the chunk is done.
    Planned(Result<serde_json::Value, String>),
    /// A span's samples, for a worker to transcribe (also the one window of
    /// a plan transcribed where it is planned).
    Span(Vec<f32>),
    /// The audio could not be had: the chunk fails with the reason.
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Audio {
    /// By voice message, least recently used first.
    decoded: Vec<(EventId, Decoded)>,
    /// Chunks waiting for their message's audio.
    waiting: SortedMap<JobId, TranscribeTask>,
    /// Plans of one window whose words a worker is finding.
    planned_here: SortedMap<JobId, Plan>,
}

impl Audio {
    /// A transcription chunk starts: it waits for its audio, which is asked
    /// of the driver unless it is here or on its way.
    pub fn need(&mut self, job: JobId, task: TranscribeTask, actions: &mut Vec<Action>) {
        let message = task.audio.message.clone();
        let audio: AudioRef = task.audio.clone();
        self.waiting.insert(job, task);
        if let Some(at) = self.decoded.iter().position(|(m, _)| m == &message) {
            let used = self.decoded.remove(at);
            self.decoded.push(used);
            return;
        }
        self.decoded.push((message, Decoded::Loading));
        self.evict();
        actions.push(Action::DecodeAudio { audio });
    }

    /// The driver decoded a message (or could not).
    pub fn decoded(&mut self, message: EventId, samples: Result<Vec<f32>, String>) {
        let entry = match samples {
            Ok(samples) => Decoded::Ready(Arc::new(samples)),
            Err(reason) => Decoded::Failed(reason),
        };
        match self.decoded.iter_mut().find(|(m, _)| m == &message) {
            Some(slot) => slot.1 = entry,
            None => {
                self.decoded.push((message, entry));
                self.evict();
            }
        }
    }

    /// A chunk stopped: it waits no more.
    pub fn abort(&mut self, job: JobId) {
        self.waiting.remove(&job);
        self.planned_here.remove(&job);
    }

    /// A worker finished `job`: a plan transcribed where it was planned
    /// outputs the plan with its words; anything else is as the worker said.
    pub fn finished(&mut self, job: JobId, outcome: Outcome) -> Outcome {
        let Some(plan) = self.planned_here.remove(&job) else {
            return outcome;
        };
        let Outcome::Output(output) = outcome else {
            return outcome;
        };
        let words = match SpanTranscript::deserialize(&*output) {
            Ok(words) => words,
            Err(e) => {
                return Outcome::Error {
                    reason: format!("the worker's transcript is not one: {e}"),
                    retriable: true,
                }
            }
        };
        // A plan's one window has no next span to prompt.
        let words = SpanTranscript {
            prompt: Vec::new(),
            ..words
        };
        let plan = Plan {
            words: Some(words),
            ..plan
        };
        Outcome::Output(serde_json::to_value(plan).unwrap_or_default().into())
    }

    /// Chunks whose audio is here (or failed), what each comes to, and the
    /// work a worker is to do for it.
    pub fn ready(&mut self) -> Vec<(JobId, TranscribeTask, Prepared)> {
        let decoded = &self.decoded;
        let entry = |message: &EventId| decoded.iter().find(|(m, _)| m == message).map(|e| &e.1);
        let mut ready = Vec::new();
        let planned_here = &mut self.planned_here;
        self.waiting.retain(|&job, task| {
            let prepared = match entry(&task.audio.message) {
                Some(Decoded::Ready(samples)) => {
                    let (prepared, plan) = prepare(task, samples);
                    if let Some(plan) = plan {
                        planned_here.insert(job, plan);
                    }
                    prepared
                }
                Some(Decoded::Failed(reason)) => Prepared::Failed(reason.clone()),
                Some(Decoded::Loading) | None => return true,
            };
            ready.push((job, task.clone(), prepared));
            false
        });
        ready
    }

    /// Forgets the least recently used recordings beyond `DECODED_KEPT`,
    /// but none that a chunk still waits for.
    fn evict(&mut self) {
        while self.decoded.len() > DECODED_KEPT {
            let waited_for =
                |message: &EventId| self.waiting.values().any(|t| &t.audio.message == message);
            let Some(at) = self.decoded.iter().position(|(m, _)| !waited_for(m)) else {
                return;
            };
            self.decoded.remove(at);
        }
    }
}

/// A plan chunk plans; a span chunk gets its span's samples. A plan of one
/// window turns `task` into that window's span, to transcribe here, and
/// comes back to be kept until its words do.
fn prepare(task: &mut TranscribeTask, samples: &[f32]) -> (Prepared, Option<Plan>) {
    if let Some(span) = task.spans().first() {
        let prepared = match span.samples_within(samples.len()) {
            Ok(range) => Prepared::Span(samples[range].to_vec()),
            Err(reason) => Prepared::Failed(reason),
        };
        return (prepared, None);
    }
    let plan = match transcription::plan(samples) {
        Ok(plan) => plan,
        Err(e) => return (Prepared::Planned(Err(e.to_string())), None),
    };
    let Some(span) = plan.single_window() else {
        let output = serde_json::to_value(plan).unwrap_or_default();
        return (Prepared::Planned(Ok(output)), None);
    };
    task.stage = Stage::Spans(vec![span]);
    let window = samples[span.samples(samples.len())].to_vec();
    (Prepared::Span(window), Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcription::{Span, WhisperModel};
    use serde_json::json;

    fn task(message: &str, spans: Vec<Span>) -> TranscribeTask {
        let audio: AudioRef =
            serde_json::from_value(json!({"message": message, "url": "mxc://hs/a"})).unwrap();
        TranscribeTask {
            stage: Stage::of_spans(spans),
            ..TranscribeTask::plan(audio, WhisperModel::TinyEn)
        }
    }

    fn id(text: &str) -> EventId {
        EventId::parse(text).unwrap()
    }

    fn decodes(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::DecodeAudio { .. }))
            .count()
    }

    #[test]
    fn a_message_is_decoded_once_for_all_its_chunks_and_each_gets_its_span() {
        let mut audio = Audio::default();
        let mut actions = Vec::new();
        let span = Span {
            start_ms: 1_000,
            end_ms: 2_000,
        };
        audio.need(1, task("$voice", vec![span]), &mut actions);
        audio.need(2, task("$voice", vec![span]), &mut actions);
        assert_eq!(decodes(&actions), 1);
        assert!(audio.ready().is_empty(), "waiting for the decode");

        let samples: Vec<f32> = (0..48_000).map(|i| i as f32).collect();
        audio.decoded(id("$voice"), Ok(samples.clone()));
        let ready = audio.ready();
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[0].2, Prepared::Span(samples[16_000..32_000].to_vec()));
        assert!(audio.ready().is_empty(), "each chunk once");

        audio.need(3, task("$voice", vec![]), &mut actions);
        assert_eq!(decodes(&actions), 1, "kept: not decoded again");
        let [(3, work, Prepared::Span(window))] = &audio.ready()[..] else {
            panic!("a plan of one window is transcribed here")
        };
        assert_eq!(window, &samples, "the whole recording is the window");
        assert_eq!(work.spans().len(), 1);
    }

    #[test]
    fn a_plan_of_one_window_comes_back_with_its_words_and_a_longer_one_without() {
        let mut audio = Audio::default();
        let mut actions = Vec::new();
        audio.need(1, task("$short", vec![]), &mut actions);
        audio.need(2, task("$long", vec![]), &mut actions);
        audio.decoded(id("$short"), Ok(vec![0.1; 16_000 * 5]));
        audio.decoded(id("$long"), Ok(vec![0.1; 16_000 * 70]));
        let ready = audio.ready();
        let [(1, short, Prepared::Span(_)), (2, _, Prepared::Planned(Ok(long)))] = &ready[..]
        else {
            panic!("the short message goes to a worker, the long one is planned: {ready:?}")
        };
        assert_eq!(
            short.spans(),
            [Span {
                start_ms: 0,
                end_ms: 5_000
            }]
        );
        let long: Plan = serde_json::from_value(long.clone()).unwrap();
        assert!(long.spans.len() >= 3 && long.words.is_none());

        let words = json!({"segments": [{"start_ms": 0, "end_ms": 4_000, "text": " Hello there."}], "inference_ms": 900});
        let Outcome::Output(output) = audio.finished(1, Outcome::Output(words.into())) else {
            panic!("the words are the plan's output")
        };
        let plan: Plan = serde_json::from_value((*output).clone()).unwrap();
        assert_eq!(plan.duration_ms, 5_000);
        let words = plan.words.expect("the plan carries its words");
        assert_eq!(
            (words.segments[0].text.as_str(), words.inference_ms),
            (" Hello there.", 900)
        );

        let error = Outcome::Error {
            reason: "worker crashed".into(),
            retriable: true,
        };
        assert_eq!(
            audio.finished(7, error.clone()),
            error,
            "another job's outcome is as it was"
        );
    }

    #[test]
    fn only_the_last_recordings_are_kept_and_none_a_chunk_waits_for() {
        let mut audio = Audio::default();
        let mut actions = Vec::new();
        for (job, message) in [(1, "$a"), (2, "$b"), (3, "$c")] {
            audio.need(job, task(message, vec![]), &mut actions);
        }
        assert_eq!(decodes(&actions), 3, "all three wait: none evicted");
        for message in ["$a", "$b", "$c"] {
            audio.decoded(id(message), Err("not audio".into()));
        }
        assert_eq!(audio.ready().len(), 3);
        audio.need(4, task("$d", vec![]), &mut actions);
        audio.need(5, task("$a", vec![]), &mut actions);
        assert_eq!(
            decodes(&actions),
            5,
            "$a was evicted, so it is decoded again"
        );
    }

    #[test]
    fn a_stopped_chunk_waits_no_more_and_a_failed_decode_fails_its_chunks() {
        let mut audio = Audio::default();
        let mut actions = Vec::new();
        audio.need(1, task("$voice", vec![]), &mut actions);
        audio.need(2, task("$voice", vec![]), &mut actions);
        audio.abort(1);
        audio.decoded(id("$voice"), Err("the file is not audio".into()));
        let ready: Vec<(JobId, Prepared)> =
            audio.ready().into_iter().map(|(j, _, p)| (j, p)).collect();
        assert_eq!(
            ready,
            [(2, Prepared::Failed("the file is not audio".into()))]
        );
    }
}
