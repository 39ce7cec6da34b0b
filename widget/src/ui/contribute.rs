//! The "Contribute compute" switch and how many workers to give.

use crate::words;
use manifest::ids::EventId;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub contributing: bool,
    pub busy: bool,
    pub workers: u32,
    pub max: u32,
    pub idle_reason: Option<String>,
    /// What this browser runs now: task, piece, its words, how far.
    pub local_jobs: Vec<LocalJob>,
    /// What the workers say about the Whisper model: downloading, ready.
    pub model_notice: Option<String>,
    pub on_toggle: Callback<bool>,
    pub on_workers: Callback<u32>,
}

#[function_component(Contribute)]
pub fn contribute(props: &Props) -> Html {
    let toggle = {
        let on_toggle = props.on_toggle.clone();
        let on = !props.contributing;
        Callback::from(move |_| on_toggle.emit(on))
    };
    let change_workers = {
        let on_workers = props.on_workers.clone();
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            if let Ok(n) = select.value().parse() {
                on_workers.emit(n);
            }
        })
    };
    html! {
        <section class="contribute" aria-label="Contribute compute">
            <div class="switch-row">
                // A switch, as Element's settings are: its name stays, its state is aria-checked.
                <button class={classes!("toggle", props.contributing.then_some("on"))} onclick={toggle}
                    role="switch" aria-checked={props.contributing.to_string()} disabled={props.busy}
                    data-testid="contribute">
                    <span class="track" aria-hidden="true"><span class="thumb" /></span>
                    { "Contribute compute" }
                </button>
                <label>
                    { "Workers" }
                    <select onchange={change_workers} disabled={props.contributing} data-testid="workers">
                        { for (1..=props.max).map(|n| html! {
                            <option value={n.to_string()} selected={n == props.workers}>{ n }</option>
                        }) }
                    </select>
                    <span class="hint">{ format!("of {} cores", props.max) }</span>
                </label>
            </div>
            if !props.contributing {
                <p class="hint">{ "While this room is open, your browser runs friends' tasks in the background, sandboxed. Switch it off at any time." }</p>
            } else if props.local_jobs.is_empty() {
                <p class="idle" role="status" data-testid="idle-reason">{ idle_words(props.idle_reason.as_deref()) }</p>
            } else {
                <ul class="local-jobs" aria-live="polite">
                    { for props.local_jobs.iter().map(|job| html! {
                        <li data-testid="local-job" data-task-id={job.task.to_string()} data-chunk={job.chunk.to_string()}>
                            { &job.words }
                            <progress max="100" value={words::whole_percent(job.fraction).to_string()} aria-label={job.words.clone()} />
                        </li>
                    }) }
                </ul>
            }
            if let Some(notice) = &props.model_notice {
                <p class="hint" role="status" data-testid="worker-notice">{ notice }</p>
            }
        </section>
    }
}

/// A piece of work running in this browser, as the contribute box shows it.
#[derive(Clone, PartialEq)]
pub struct LocalJob {
    pub task: EventId,
    pub chunk: u32,
    /// "Counting primes — 40%".
    pub words: String,
    pub fraction: f32,
}

/// What an idle contributor reads: why there is nothing to do, never an empty "Idle:".
fn idle_words(reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => format!("Ready, nothing to run: {reason}"),
        None => "Ready: your browser takes the next task that comes.".into(),
    }
}
