//! Every task in the room, newest first, named by what it does, with its
//! progress and result; the words come from `view`.

use super::tiles::TileImage;
use crate::view::TaskView;
use crate::words::{self, and_list};
use manifest::ids::{EventId, UserId};
use manifest::ledger::TaskStatus;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub tasks: Vec<TaskView>,
    pub me: String,
    pub on_cancel: Callback<EventId>,
}

#[derive(Properties, PartialEq)]
struct ByFriendProps {
    friends: Vec<(UserId, u32)>,
}

/// Who ran a task's pieces: a bar split by friend and its legend
/// ("alice 3", "bob 1"), each friend in the same colour in both.
#[function_component(ByFriend)]
fn by_friend(props: &ByFriendProps) -> Html {
    let pieces = |n: &u32| words::count(u64::from(*n), "piece", "pieces");
    let said: Vec<String> = props
        .friends
        .iter()
        .map(|(user, n)| format!("{} {}", user.localpart(), pieces(n)))
        .collect();
    html! {
        <div class="ran-by" data-testid="by-friend">
            <div class="by-friend" role="img" aria-label={format!("Run by {}", and_list(&said))}>
                { for props.friends.iter().map(|(user, n)| html! {
                    // Each friend's share of the bar: only known here.
                    <span title={format!("{}: {}", user.localpart(), pieces(n))} style={format!("flex: {n}")} />
                }) }
            </div>
            <p class="legend" aria-hidden="true">
                { for props.friends.iter().map(|(user, n)| html! {
                    <span class="friend">{ format!("{} {}", user.localpart(), words::number(u64::from(*n))) }</span>
                }) }
            </p>
        </div>
    }
}

#[function_component(TaskList)]
pub fn task_list(props: &Props) -> Html {
    html! {
        <section class="tasks" aria-label="Tasks">
            <h2>{ format!("Tasks ({})", words::number(props.tasks.len() as u64)) }</h2>
            if props.tasks.is_empty() {
                <p class="empty">{ "No tasks yet. Tasks you or your friends start show here." }</p>
            }
            <ul>
                { for props.tasks.iter().map(|t| {
                    let class = t.status_class();
                    let mine = t.submitter.as_str() == props.me;
                    let cancel = {
                        let on_cancel = props.on_cancel.clone();
                        let id = t.id.clone();
                        Callback::from(move |_| on_cancel.emit(id.clone()))
                    };
                    // The range of a prime count, for tests that check the count.
                    let start = t.range.map(|(start, _)| start.to_string());
                    let end = t.range.map(|(_, end)| end.to_string());
                    let outvoted: Vec<String> = t.outvoted.iter().map(|u| u.localpart().to_owned()).collect();
                    html! {
                        <li class={classes!("task", class)} data-testid="task" data-task-id={t.id.to_string()} data-status={class}
                            data-start={start} data-end={end}
                            data-done-by={t.done_by.iter().map(|n| n.owner().to_string()).collect::<Vec<_>>().join(",")}>
                            <div class="what">{ &t.title }<span class="who">{ format!(" · {} · {}", t.submitter.localpart(), t.submitted_ago) }</span></div>
                            <progress max="100" value={words::whole_percent(t.progress).to_string()} aria-label={format!("{}: progress", t.title)} />
                            <span class="status" role="status" data-testid="task-status">{ t.status_words() }</span>
                            if !outvoted.is_empty() {
                                <p class="outvoted" data-testid="task-outvoted">{ format!(
                                    "Outvoted: {} answered differently or failed; the majority's answer counts.",
                                    and_list(&outvoted)
                                ) }</p>
                            }
                            if !t.by_friend.is_empty() {
                                <ByFriend friends={t.by_friend.clone()} />
                            }
                            if !t.tiles.is_empty() {
                                <TileImage tiles={t.tiles.clone()} chunks={t.chunks_total} />
                            }
                            if let TaskStatus::Done { result } = &t.status {
                                if result.get("count").is_none() {
                                    <details><summary>{ "Result" }</summary>
                                        <pre class="result" data-testid="task-result">{ serde_json::to_string_pretty(result).unwrap_or_else(|_| result.to_string()) }</pre></details>
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
