//! Every task in the room, newest first, with its progress and result.

use super::tiles::TileImage;
use crate::view::TaskView;
use manifest::ids::EventId;
use manifest::ledger::TaskStatus;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub tasks: Vec<TaskView>,
    pub me: String,
    pub on_cancel: Callback<EventId>,
}

fn status_text(status: &TaskStatus) -> (String, &'static str) {
    match status {
        TaskStatus::Queued => ("queued".into(), "queued"),
        TaskStatus::Running { done, total } => {
            (format!("running ({done}/{total} chunks)"), "running")
        }
        TaskStatus::Done { result } => (
            match (
                result.get("count"),
                result.get("outputs").and_then(|o| o.as_array()),
                result.get("waiting"),
            ) {
                (Some(count), _, _) => format!("done: {count} primes"),
                (None, Some(outputs), _) => format!("done: {} outputs", outputs.len()),
                (None, None, Some(waiting)) => {
                    format!("done: {waiting} private outputs still on their way to you")
                }
                _ if result.get("private").is_some() => "done: private result".into(),
                _ => "done".into(),
            },
            "done",
        ),
        TaskStatus::Failed { reason } => (format!("failed: {reason}"), "failed"),
        TaskStatus::Cancelled { .. } => ("cancelled".into(), "cancelled"),
    }
}

#[function_component(TaskList)]
pub fn task_list(props: &Props) -> Html {
    html! {
        <section class="tasks" aria-label="Tasks">
            <h2>{ format!("Tasks ({})", props.tasks.len()) }</h2>
            <ul>
                { for props.tasks.iter().map(|t| {
                    let (text, class) = status_text(&t.status);
                    let mine = t.submitter.as_str() == props.me;
                    let cancel = {
                        let on_cancel = props.on_cancel.clone();
                        let id = t.id.clone();
                        Callback::from(move |_| on_cancel.emit(id.clone()))
                    };
                    html! {
                        <li class={classes!("task", class)} data-testid="task" data-task-id={t.id.to_string()} data-status={class}
                            data-done-by={t.done_by.iter().map(|n| n.owner().to_string()).collect::<Vec<_>>().join(",")}>
                            <div class="what">{ &t.description }<span class="who">{ format!(" · {}", t.submitter.localpart()) }</span></div>
                            <progress max="1" value={t.progress.to_string()} />
                            <span class="status" data-testid="task-status">{ text }</span>
                            if !t.outvoted.is_empty() {
                                <p class="outvoted" data-testid="task-outvoted">{ format!(
                                    "Outvoted (another answer, or an error): {}. The majority's answer counts.",
                                    t.outvoted.iter().map(|u| u.localpart().to_owned()).collect::<Vec<_>>().join(", ")
                                ) }</p>
                            }
                            if !t.tiles.is_empty() {
                                <TileImage tiles={t.tiles.clone()} chunks={t.chunks_total} />
                            }
                            if let TaskStatus::Done { result } = &t.status {
                                if result.get("count").is_none() {
                                    <details><summary>{ "Result" }</summary>
                                        <pre data-testid="task-result">{ result.to_string() }</pre></details>
                                }
                            }
                            if mine && !t.status.is_terminal() {
                                <button class="cancel" onclick={cancel}>{ "Cancel" }</button>
                            }
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}
