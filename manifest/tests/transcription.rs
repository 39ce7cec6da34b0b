//! A voice message to a threaded transcript across two friends' nodes, with
//! the machines as they run in the widget and a room that stamps and
//! delivers every event to everyone: the plan adds its part before its own
//! result, both nodes transcribe spans, and exactly one reply comes back.
//! As in Element, thread replies are not fed to widgets live: a node learns
//! of them from the host's answer to its send and by reading the thread.

mod common;

use common::{caps, raw};
use manifest::events::{NodeCaps, Outcome, Outgoing};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::TaskStatus;
use manifest::node::{Action, Input, NodeMachine};
use manifest::task_kind::TaskKind;
use manifest::transcription::{Span, TimedText, Transcript};
use manifest::voice;
use serde_json::{json, Value};

/// What a span's worker "hears": one sentence per span, so the transcript
/// shows which spans made it and in what order.
fn words_of(span: &Span) -> String {
    format!("Sentence from {} seconds.", span.start_ms / 1000)
}

/// The room: every sent event gets an id and the current time and reaches
/// every node, as live events do; chat messages reach them as the widget
/// hands them over.
struct Room {
    names: Vec<&'static str>,
    nodes: Vec<NodeMachine>,
    timeline: Vec<Value>,
    now: u64,
    /// What decoding the voice message gives (an undecodable file fails there).
    audio: Result<Vec<f32>, String>,
    /// Chunks run, by node: (task, chunk).
    ran: Vec<Vec<(EventId, u32)>>,
    /// What happens to the first transcript reply a node sends.
    first_reply: Delivery,
    /// Events the homeserver took whose delivery is late: (due, event).
    late: Vec<(u64, Value)>,
    /// Thread reads the nodes asked for.
    thread_reads: usize,
    /// Each span a worker transcribed (its start) and the prompt it was given.
    prompts: Vec<(u64, Vec<u32>)>,
    /// Worker crashes still to come: each fails the next transcription.
    crashes: usize,
}

/// Whether `event` is a reply in `root`'s thread.
fn in_thread(event: &Value, root: &str) -> bool {
    let relation = &event["content"]["m.relates_to"];
    relation["rel_type"] == "m.thread" && relation["event_id"] == root
}

#[derive(Clone, Copy, PartialEq)]
enum Delivery {
    Delivered,
    /// The host timed out but the homeserver took it: the node sees it later.
    TimedOutButSent,
    /// The host timed out and it never arrived.
    Lost,
}

impl Room {
    fn new(audio: Result<Vec<f32>, String>) -> Self {
        Self::of(vec!["alice", "bob"], caps(), audio)
    }

    /// A room whose contributors are `names`, each offering `caps`.
    fn of(names: Vec<&'static str>, caps: NodeCaps, audio: Result<Vec<f32>, String>) -> Self {
        let mut room = Self {
            ran: vec![Vec::new(); names.len()],
            nodes: names
                .iter()
                .map(|name| NodeMachine::new(user(name)))
                .collect(),
            names,
            timeline: Vec::new(),
            now: 1_000,
            audio,
            first_reply: Delivery::Delivered,
            late: Vec::new(),
            thread_reads: 0,
            prompts: Vec::new(),
            crashes: 0,
        };
        for node in 0..room.nodes.len() {
            let start = Input::StartContributing {
                node: NodeId::new(&user(room.names[node]), "tab").unwrap(),
                caps: caps.clone(),
            };
            let actions = room.nodes[node].process(start, room.now);
            room.carry_out(node, actions);
        }
        room
    }

    fn post(&mut self, sender: &str, out: &Outgoing) -> EventId {
        self.post_after(sender, out, 0)
    }

    /// Posts `out` now; every node sees it `delay_ms` later.
    fn post_after(&mut self, sender: &str, out: &Outgoing, delay_ms: u64) -> EventId {
        let id = format!("$e{}", self.timeline.len());
        let event = raw(&id, sender, out, self.now);
        self.timeline.push(event.clone());
        if delay_ms > 0 {
            self.late.push((self.now + delay_ms, event));
        } else {
            self.deliver_everywhere(&event);
        }
        EventId::parse(id).unwrap()
    }

    fn deliver_everywhere(&mut self, event: &Value) {
        if event["content"]["m.relates_to"]["rel_type"] == "m.thread" {
            return; // Hosts feed widgets the main timeline only.
        }
        for node in 0..self.nodes.len() {
            self.deliver(node, event);
        }
    }

    /// Hands `event` to a node as the widget does.
    fn deliver(&mut self, node: usize, event: &Value) {
        let input =
            Input::from_room_message(event).unwrap_or_else(|| Input::RoomEvent(event.clone()));
        let actions = self.nodes[node].process(input, self.now);
        self.carry_out(node, actions);
    }

    fn carry_out(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { request, out } => {
                    let delivery = if voice::task_of_reply(&out.content).is_some() {
                        std::mem::replace(&mut self.first_reply, Delivery::Delivered)
                    } else {
                        Delivery::Delivered
                    };
                    let sender = format!("@{}:hs", self.names[node]);
                    match delivery {
                        Delivery::Delivered => drop(self.post(&sender, &out)),
                        // Seen 20 s later: after the timeout, before a resend is due.
                        Delivery::TimedOutButSent => drop(self.post_after(&sender, &out, 20_000)),
                        Delivery::Lost => {}
                    }
                    let answer = match delivery {
                        Delivery::Delivered => Input::Sent { request },
                        _ => Input::SendFailed {
                            request,
                            retry_after_ms: None,
                            permanent: false,
                            reason: "timed out".into(),
                        },
                    };
                    let actions = self.nodes[node].process(answer, self.now);
                    self.carry_out(node, actions);
                }
                Action::ReadThread { root } => {
                    self.thread_reads += 1;
                    let replies = self
                        .timeline
                        .iter()
                        .filter(|e| in_thread(e, root.as_str()))
                        .cloned()
                        .collect();
                    let read = Input::ThreadRead {
                        root,
                        replies: Ok(replies),
                    };
                    let actions = self.nodes[node].process(read, self.now);
                    self.carry_out(node, actions);
                }
                Action::RunChunk {
                    task, chunk, work, ..
                } => {
                    assert!(
                        matches!(work, TaskKind::Transcribe(_)),
                        "only transcriptions here"
                    );
                    self.ran[node].push((task, chunk));
                }
                Action::DecodeAudio { audio } => {
                    let decoded = Input::AudioDecoded {
                        message: audio.message,
                        samples: self.audio.clone(),
                    };
                    let actions = self.nodes[node].process(decoded, self.now);
                    self.carry_out(node, actions);
                }
                Action::RunTranscription {
                    job,
                    work,
                    previous,
                    ..
                } => {
                    let span = work.spans()[0];
                    self.prompts.push((span.start_ms, previous));
                    let outcome = if self.crashes > 0 {
                        self.crashes -= 1;
                        Outcome::Error {
                            reason: "the worker crashed".into(),
                            retriable: true,
                        }
                    } else {
                        Outcome::Output(
                            json!({"segments": [TimedText {
                            start_ms: span.start_ms,
                            end_ms: span.end_ms,
                            text: format!(" {}", words_of(&span)),
                        }], "prompt": prompt_of(&span)})
                            .into(),
                        )
                    };
                    let actions =
                        self.nodes[node].process(Input::WorkerFinished { job, outcome }, self.now);
                    self.carry_out(node, actions);
                }
                Action::Rejected(r) => println!("REJ {r:?}"),
                _ => {}
            }
        }
    }

    /// A second of room life: every node ticks.
    fn tick(&mut self) {
        self.now += 1_000;
        let now = self.now;
        let (due, later) = std::mem::take(&mut self.late)
            .into_iter()
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        self.late = later;
        for (_, event) in due {
            self.deliver_everywhere(&event);
        }
        for node in 0..self.nodes.len() {
            let actions = self.nodes[node].process(Input::Tick, self.now);
            self.carry_out(node, actions);
        }
    }

    fn ticks(&mut self, seconds: usize) {
        for _ in 0..seconds {
            self.tick();
        }
    }

    /// carol's voice message and dan's `!transcribe` reply to it; the message.
    fn ask_to_transcribe(&mut self) -> EventId {
        let message = self.post("@carol:hs", &voice_message());
        self.post("@dan:hs", &transcribe_reply(&message));
        message
    }

    fn replies(&self) -> Vec<&Value> {
        self.timeline
            .iter()
            .filter(|e| voice::replied_task(e).is_some())
            .collect()
    }
}

/// The tokens a span hands the next one: which span it was, so that a test
/// sees which prompt reached which span.
fn prompt_of(span: &Span) -> Vec<u32> {
    vec![span.start_ms as u32 / 1000, 50257]
}

fn user(name: &str) -> UserId {
    UserId::parse(format!("@{name}:hs")).unwrap()
}

fn voice_message() -> Outgoing {
    Outgoing {
        event_type: "m.room.message",
        state_key: None,
        content: json!({
            "msgtype": "m.audio", "body": "Voice message", "url": "mxc://hs/voice",
            "info": {"duration": 70_000, "mimetype": "audio/ogg"},
            "org.matrix.msc3245.voice": {}
        }),
    }
}

fn transcribe_reply(to: &EventId) -> Outgoing {
    Outgoing {
        event_type: "m.room.message",
        state_key: None,
        content: json!({"msgtype": "m.text", "body": "!transcribe",
            "m.relates_to": {"m.in_reply_to": {"event_id": to.as_str()}}}),
    }
}

/// Seventy seconds of sound with a silent second at 25 s and at 50 s: the
/// plan cuts there, into three spans.
fn seventy_seconds() -> Vec<f32> {
    let rate = manifest::transcription::SAMPLE_RATE;
    (0..70)
        .flat_map(|second| {
            let loud = second != 25 && second != 50;
            (0..rate).map(move |i| {
                if loud {
                    ((i % 50) as f32 - 25.0) / 25.0
                } else {
                    0.0
                }
            })
        })
        .collect()
}

#[test]
fn a_transcribe_reply_gives_one_threaded_transcript_made_by_both_nodes() {
    let mut room = Room::new(Ok(seventy_seconds()));
    room.ticks(5); // Both announce; alice, first, settles as coordinator.
    let message = room.ask_to_transcribe();
    room.ticks(120);

    let ledger = room.nodes[1].ledger();
    let tasks: Vec<_> = ledger.tasks().filter(|t| t.spec.parent.is_none()).collect();
    assert_eq!(tasks.len(), 1, "one task for the command, whoever saw it");
    let task = tasks[0];
    assert_eq!(task.submitter.as_str(), "@dan:hs");
    assert_eq!(task.children.len(), 1, "the plan added one part");
    let part = ledger.task(&task.children[0]).unwrap();
    assert_eq!(part.chunks.len(), 3, "one chunk per span");

    let TaskStatus::Done { result } = ledger.task_status(task, room.now) else {
        panic!("{:?}", ledger.task_status(task, room.now))
    };
    let transcript: Transcript = serde_json::from_value(result).unwrap();
    let expected = "Sentence from 0 seconds. Sentence from 25 seconds. Sentence from 50 seconds.";
    assert_eq!(transcript.text, expected);

    let replies = room.replies();
    assert_eq!(replies.len(), 1, "exactly one reply");
    let reply = replies[0];
    assert_eq!(reply["content"]["body"], expected);
    assert_eq!(reply["content"]["msgtype"], "m.notice");
    assert_eq!(reply["content"]["m.relates_to"]["rel_type"], "m.thread");
    assert_eq!(
        reply["content"]["m.relates_to"]["event_id"],
        message.as_str()
    );

    let spans_ran: Vec<usize> = room
        .ran
        .iter()
        .map(|ran| ran.iter().filter(|(t, _)| t == &part.id).count())
        .collect();
    assert!(
        spans_ran.iter().all(|&n| n > 0),
        "both nodes transcribed: {spans_ran:?}"
    );
    assert_eq!(spans_ran.iter().sum::<usize>(), 3, "each span once");
}

#[test]
fn audio_that_cannot_be_decoded_gets_one_failure_reply() {
    let mut room = Room::new(Err("the audio could not be decoded: EncodingError".into()));
    room.ticks(5);
    room.ask_to_transcribe();
    room.ticks(60);
    let replies = room.replies();
    assert_eq!(replies.len(), 1);
    let body = replies[0]["content"]["body"].as_str().unwrap();
    assert!(body.contains("could not be decoded"), "{body}");
}

#[test]
fn a_transcribe_command_that_replies_to_no_audio_starts_nothing() {
    let mut room = Room::new(Ok(seventy_seconds()));
    room.ticks(5);
    let text = room.post(
        "@carol:hs",
        &Outgoing {
            event_type: "m.room.message",
            state_key: None,
            content: json!({"msgtype": "m.text", "body": "hello"}),
        },
    );
    room.post("@dan:hs", &transcribe_reply(&text));
    room.ticks(10);
    assert_eq!(room.nodes[0].ledger().tasks().count(), 0);
}

#[test]
fn a_reply_whose_send_timed_out_is_posted_once_whether_or_not_it_arrived() {
    for delivery in [
        Delivery::Delivered,
        Delivery::TimedOutButSent,
        Delivery::Lost,
    ] {
        let mut room = Room::new(Ok(seventy_seconds()));
        room.first_reply = delivery;
        for _ in 0..5 {
            room.tick();
        }
        let message = room.post("@carol:hs", &voice_message());
        room.post("@dan:hs", &transcribe_reply(&message));
        // Ten minutes: every resend timer has run out many times over.
        for _ in 0..600 {
            room.tick();
        }
        assert_eq!(
            room.replies().len(),
            1,
            "one reply after a {} send",
            match delivery {
                Delivery::Delivered => "confirmed",
                Delivery::TimedOutButSent => "late",
                Delivery::Lost => "lost",
            }
        );
    }
}

#[test]
fn a_new_coordinator_reads_the_thread_and_does_not_post_the_reply_again() {
    let mut room = Room::new(Ok(seventy_seconds()));
    room.ticks(5);
    room.ask_to_transcribe();
    while room.replies().is_empty() {
        room.tick();
        assert!(room.now < 300_000, "no reply");
    }
    // Alice, who coordinated and replied, leaves; bob takes over.
    assert_eq!(room.replies()[0]["sender"], "@alice:hs");
    let reads_before = room.thread_reads;
    let actions = room.nodes[0].process(Input::StopContributing, room.now);
    room.carry_out(0, actions);
    let gone = Outgoing::node_gone(&NodeId::new(&user("alice"), "tab").unwrap());
    room.post("@alice:hs", &gone);
    room.ticks(600);
    assert!(
        room.thread_reads > reads_before,
        "bob read the thread before replying"
    );
    assert_eq!(room.replies().len(), 1, "bob found alice's reply");
}

#[test]
fn a_fake_transcript_from_someone_who_ran_nothing_does_not_block_the_real_one() {
    let mut room = Room::new(Ok(seventy_seconds()));
    room.ticks(5);
    let message = room.ask_to_transcribe();
    room.ticks(3);
    let task = room.nodes[0]
        .ledger()
        .tasks()
        .find(|t| t.spec.parent.is_none())
        .map(|t| t.id.clone())
        .expect("the command started a task");
    // Mallory posts a "transcript" for it in the thread, and as a plain message.
    let fake = voice::reply(&message, &task, Err("nothing to hear"));
    room.post("@mallory:hs", &fake);
    let mut in_main_timeline = fake.clone();
    in_main_timeline.content["m.relates_to"] = json!({});
    room.post("@mallory:hs", &in_main_timeline);
    room.ticks(300);
    let real: Vec<_> = room
        .replies()
        .into_iter()
        .filter(|e| e["sender"] != "@mallory:hs")
        .collect();
    assert_eq!(real.len(), 1, "the real transcript came once");
    assert!(real[0]["content"]["body"]
        .as_str()
        .unwrap()
        .starts_with("Sentence from 0 seconds."));
}

/// Five seconds of sound: one window.
fn five_seconds() -> Vec<f32> {
    seventy_seconds()[..manifest::transcription::SAMPLE_RATE as usize * 5].to_vec()
}

#[test]
fn a_message_that_fits_one_window_is_transcribed_by_the_coordinator_in_three_events() {
    let mut room = Room::new(Ok(five_seconds()));
    room.ticks(5);
    let message = room.post("@carol:hs", &voice_message());
    let from = room.timeline.len() + 1; // What follows the command.
    let command = room.post("@dan:hs", &transcribe_reply(&message));
    room.ticks(60);

    let ledger = room.nodes[1].ledger();
    let task = ledger.tasks().next().expect("the command's task");
    assert!(task.children.is_empty(), "no part: the plan transcribed it");
    let TaskStatus::Done { result } = ledger.task_status(task, room.now) else {
        panic!("{:?}", ledger.task_status(task, room.now))
    };
    let transcript: Transcript = serde_json::from_value(result).unwrap();
    assert_eq!(transcript.text, "Sentence from 0 seconds.");
    assert_eq!(transcript.duration_ms, 5_000);
    let replies = room.replies();
    assert_eq!(replies.len(), 1, "exactly one reply");
    assert_eq!(replies[0]["content"]["body"], "Sentence from 0 seconds.");

    // What the room carried from the command to the reply, all of it.
    let sent: Vec<&str> = room.timeline[from..]
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        sent,
        ["org.potluck.task", "org.potluck.result", "m.room.message"],
        "the command {command} costs the task, the plan's result with the words, and the reply: \
         the coordinator claimed the plan without an assignment"
    );
    let senders: Vec<&str> = room.timeline[from..]
        .iter()
        .map(|e| e["sender"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(senders, ["@alice:hs"; 3], "alice coordinates, and ran it");
    let ran: usize = room.ran.iter().map(Vec::len).sum();
    assert_eq!(ran, 1, "one chunk ran, once");
}

#[test]
fn a_node_running_a_messages_spans_one_after_another_prompts_each_with_the_words_before() {
    let one_worker = NodeCaps { slots: 1, ..caps() };
    let mut room = Room::of(vec!["alice"], one_worker, Ok(seventy_seconds()));
    room.ticks(5);
    room.ask_to_transcribe();
    room.ticks(120);

    let given = room.prompts.clone();
    let span = |at: usize| Span {
        start_ms: given[at].0,
        end_ms: given[at].0 + 1,
    };
    assert_eq!(given.len(), 3, "each span once: {given:?}");
    assert_eq!(
        given
            .iter()
            .map(|(_, prompt)| prompt.clone())
            .collect::<Vec<_>>(),
        [vec![], prompt_of(&span(0)), prompt_of(&span(1))],
        "the first span has no words before it; each later one gets the span before's"
    );
    let replies = room.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0]["content"]["body"],
        "Sentence from 0 seconds. Sentence from 25 seconds. Sentence from 50 seconds.",
        "prompts are not words of the transcript"
    );
}

#[test]
fn a_plan_the_coordinator_claimed_runs_again_after_its_worker_crashed() {
    let mut room = Room::new(Ok(five_seconds()));
    room.crashes = 1;
    room.ticks(5);
    room.ask_to_transcribe();
    room.ticks(60);
    let replies = room.replies();
    assert_eq!(replies.len(), 1, "the transcript came, once");
    assert_eq!(replies[0]["content"]["body"], "Sentence from 0 seconds.");
    assert_eq!(
        room.prompts.len(),
        2,
        "run twice: the crash, then the retry"
    );
}
