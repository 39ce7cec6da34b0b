//! The root: connects to the host, then renders the snapshot the driver publishes.

use super::contribute::{Contribute, LocalJob};
use super::gpu_demo::GpuDemo;
use super::pool_list::PoolList;
use super::scripts::{ConsentPrompt, Scripts};
use super::submit_form::SubmitForm;
use super::task_list::TaskList;
use super::voice_list::VoiceList;
use crate::driver::{Driver, Snapshot, Trouble};
use crate::host::params::{self, Theme};
use crate::pool::machine_info;
use crate::words;
use manifest::allowlist::{AllowedKernel, AllowedScript};
use manifest::events::TaskSpec;
use manifest::ids::EventId;
use manifest::transcription::WhisperModel;
use manifest::voice::VoiceMessage;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
enum Phase {
    Connecting,
    /// Opened outside a host, or the host refused: a message, and nothing is sent.
    Stopped(String),
    /// Boxed: a snapshot is large, and phases are moved around.
    Running(Box<Snapshot>),
}

fn url_pairs() -> Vec<(String, String)> {
    let search = gloo::utils::window()
        .location()
        .search()
        .unwrap_or_default();
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()
        .map(|params| {
            js_sys::try_iter(&params)
                .ok()
                .flatten()
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    let pair = js_sys::Array::from(&entry.ok()?);
                    Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[function_component(App)]
pub fn app() -> Html {
    let pairs = use_memo((), |_| url_pairs());
    let parsed = use_memo((), {
        let pairs = pairs.clone();
        move |_| params::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    });
    let phase = use_state(|| Phase::Connecting);
    let driver = use_state(|| None::<Rc<Driver>>);
    let cores = machine_info::logical_cores();
    let workers = use_state(|| machine_info::default_slots(cores));
    let busy = use_state(|| false);

    {
        let phase = phase.clone();
        let driver = driver.clone();
        let parsed = parsed.clone();
        use_effect_with((), move |_| match (*parsed).clone() {
            Err(e) => phase.set(Phase::Stopped(e.to_string())),
            Ok(params) => wasm_bindgen_futures::spawn_local(async move {
                let on_change = {
                    let phase = phase.clone();
                    move |snapshot| phase.set(Phase::Running(Box::new(snapshot)))
                };
                match Driver::connect(params, on_change).await {
                    Ok(d) => {
                        let leaving = d.clone();
                        gloo::events::EventListener::new(
                            &gloo::utils::window(),
                            "pagehide",
                            move |_| leaving.leave(),
                        )
                        .forget();
                        driver.set(Some(d));
                    }
                    Err(e) => phase.set(Phase::Stopped(e)),
                }
            }),
        });
    }

    let client_theme = match &*phase {
        Phase::Running(snapshot) => snapshot.theme,
        _ => None,
    };
    let theme =
        client_theme.unwrap_or_else(|| parsed.as_ref().as_ref().map_or(Theme::Light, |p| p.theme));
    let body = match &*phase {
        Phase::Connecting => {
            html! { <p class="notice" data-testid="connecting">{ "Connecting to the room…" }</p> }
        }
        Phase::Stopped(message) => html! {
            <div class="notice stopped" role="alert" data-testid="stopped">
                <h2>{ "Potluck is not running" }</h2>
                { for message.lines().map(|line| html! { <p>{ line }</p> }) }
            </div>
        },
        Phase::Running(snapshot) => {
            let contributing = snapshot.node.is_some();
            let on_toggle = {
                let driver = driver.clone();
                let workers = workers.clone();
                let busy = busy.clone();
                Callback::from(move |on: bool| {
                    let Some(d) = (*driver).clone() else { return };
                    if on {
                        let busy = busy.clone();
                        let count = *workers;
                        busy.set(true);
                        wasm_bindgen_futures::spawn_local(async move {
                            if let Err(e) = d.contribute(count).await {
                                web_sys::console::error_1(&e.into());
                            }
                            busy.set(false);
                        });
                    } else {
                        d.stop_contributing();
                    }
                })
            };
            let on_workers = {
                let workers = workers.clone();
                Callback::from(move |n: u32| workers.set(n))
            };
            let on_submit = {
                let driver = driver.clone();
                Callback::from(move |spec: TaskSpec| {
                    if let Some(d) = &*driver {
                        d.submit(spec);
                    }
                })
            };
            let on_submit_files = {
                let driver = driver.clone();
                Callback::from(move |(spec, files): (TaskSpec, Vec<web_sys::File>)| {
                    let Some(d) = (*driver).clone() else { return };
                    wasm_bindgen_futures::spawn_local(async move {
                        match d.submit_with_files(spec, files).await {
                            Ok(()) => d.resolved(Trouble::Submitting),
                            Err(e) => d.report(
                                Trouble::Submitting,
                                format!("Your task was not submitted: {e}."),
                            ),
                        }
                    });
                })
            };
            let on_allow_kernel = {
                let driver = driver.clone();
                Callback::from(move |kernel: AllowedKernel| {
                    if let Some(d) = &*driver {
                        d.allow_kernel(kernel);
                    }
                })
            };
            let on_answer = {
                let driver = driver.clone();
                Callback::from(move |(integrity, allow): (String, bool)| {
                    if let Some(d) = &*driver {
                        d.answer_consent(integrity, allow);
                    }
                })
            };
            let on_allow = {
                let driver = driver.clone();
                Callback::from(move |script: AllowedScript| {
                    if let Some(d) = &*driver {
                        d.allow_script(script);
                    }
                })
            };
            let on_transcribe = {
                let driver = driver.clone();
                Callback::from(move |(message, model): (VoiceMessage, WhisperModel)| {
                    if let Some(d) = &*driver {
                        d.transcribe(&message, model);
                    }
                })
            };
            let on_cancel = {
                let driver = driver.clone();
                Callback::from(move |task: EventId| {
                    if let Some(d) = &*driver {
                        d.cancel(task);
                    }
                })
            };
            html! {
                <>
                    if let Some(problem) = &snapshot.history_problem {
                        <p class="notice problem" role="status" data-testid="history-problem">{ problem }</p>
                    }
                    { for snapshot.problems.iter().map(|problem| html! {
                        <p class="notice problem" role="status" data-testid="problem">{ problem }</p>
                    }) }
                    <ConsentPrompt asks={snapshot.consent_asks.clone()} {on_answer} />
                    // The first screen answers: am I contributing, who else is, what can I do here.
                    <div class="columns">
                        <div>
                            <Contribute {contributing} busy={*busy} workers={*workers} max={cores}
                                idle_reason={snapshot.view.idle_reason.clone()}
                                local_jobs={snapshot.local_jobs.iter().map(|(task, chunk, fraction)| LocalJob {
                                    task: task.clone(), chunk: *chunk, fraction: *fraction,
                                    words: snapshot.view.job_words(task, *fraction),
                                }).collect::<Vec<_>>()}
                                model_notice={snapshot.worker_notice.clone()}
                                {on_toggle} {on_workers} />
                            <PoolList nodes={snapshot.view.nodes.clone()} me={snapshot.node.clone()} today={snapshot.work_today.clone()} />
                        </div>
                        <div>
                            <VoiceList rows={snapshot.voices.clone()} {on_transcribe} />
                            if snapshot.queued_sends > 0 {
                                <p class="notice" role="status" data-testid="queued">
                                    { queued_words(snapshot.queued_sends) }
                                </p>
                            }
                            <TaskList tasks={snapshot.view.tasks.clone()} me={snapshot.me.clone()} {on_cancel} />
                        </div>
                    </div>
                    // Power users' and moderators' tools, one click away.
                    <details class="more" data-testid="more">
                        <summary>{ "More" }<span class="hint">{ "count primes, WebGPU kernels, scripts, the room's allowlist" }</span></summary>
                        <SubmitForm on_submit={on_submit.clone()} capacity={snapshot.view.capacity()} />
                        <GpuDemo on_submit={on_submit.clone()} allowed={snapshot.kernels.clone()}
                            on_allow={on_allow_kernel} allow_error={snapshot.allowlist_problem.clone()} />
                        <Scripts allowed={snapshot.allowlist.clone()} {on_submit} {on_submit_files} {on_allow} allow_error={snapshot.allowlist_problem.clone()} />
                    </details>
                </>
            }
        }
    };
    // Element's design tokens style the whole page by a class on <html>.
    use_effect_with(theme, |theme| {
        if let Some(root) = gloo::utils::document().document_element() {
            root.set_class_name(theme.class());
        }
    });
    html! {
        <div class="potluck">
            <header class="top"><h1>{ "Potluck" }</h1><span class="tagline">{ "friends' idle computers, pooled" }</span></header>
            { body }
        </div>
    }
}

/// Events this browser holds back for the homeserver's rate limit.
fn queued_words(count: usize) -> String {
    format!(
        "{} waiting to be sent: the homeserver lets each friend send one every few seconds.",
        words::count(count as u64, "update is", "updates are")
    )
}
