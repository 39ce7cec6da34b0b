//! Who contributes right now: each friend's machine, what it is doing, in
//! the words `view` gives them, and a bar of the work it has done today.

use crate::view::NodeView;
use crate::words;
use crate::work_today::WorkDone;
use manifest::ids::NodeId;
use manifest::sorted_map::SortedMap;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub nodes: Vec<NodeView>,
    pub me: Option<NodeId>,
    /// Accepted work since midnight, per computer.
    pub today: SortedMap<NodeId, WorkDone>,
}

/// "12 pieces today, about 3 min of work", or that there was none yet.
fn today_words(work: WorkDone) -> String {
    if work.pieces == 0 {
        return "Nothing done yet today".into();
    }
    let pieces = words::count(u64::from(work.pieces), "piece", "pieces");
    format!("{pieces} today, {} of work", words::roughly(work.busy_ms))
}

#[function_component(PoolList)]
pub fn pool_list(props: &Props) -> Html {
    // Each bar is that computer's busy time against the busiest one's.
    let busiest = props
        .today
        .values()
        .map(|w| w.busy_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        <section class="pool" aria-label="Contributors">
            <h2>{ format!("Contributing now ({})", words::number(props.nodes.len() as u64)) }</h2>
            if props.nodes.is_empty() {
                <p class="empty">{ "Nobody yet. Tasks wait until a friend contributes." }</p>
            }
            <ul>
                { for props.nodes.iter().map(|n| {
                    let mine = props.me.as_ref() == Some(&n.id);
                    html! {
                        <li class="node" data-testid="node" data-owner={n.owner.to_string()}>
                            <div class="machine">
                                <strong>{ n.owner.localpart() }</strong>
                                <span class="caps">{ format!(" · {}", n.machine) }</span>
                                if mine { <span class="badge">{ "you" }</span> }
                                if n.is_coordinator { <span class="badge" title="This machine hands out the work">{ "coordinator" }</span> }
                            </div>
                            if n.doing.is_empty() {
                                <div class="doing idle">{ "Idle" }</div>
                            } else {
                                { for n.doing.iter().map(|line| html! { <div class="doing">{ line }</div> }) }
                            }
                            { today(props.today.get(&n.id).copied().unwrap_or_default(), busiest) }
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}

/// The bar of a computer's work today, and its words.
fn today(work: WorkDone, busiest: u64) -> Html {
    // Whole percent: the UI formats no floating-point numbers (that code
    // would be 12 KB of its wasm).
    let share = (work.busy_ms.saturating_mul(100))
        .checked_div(busiest)
        .unwrap_or(0);
    html! {
        <div class="today" data-testid="work-today" data-pieces={work.pieces.to_string()}>
            <span class="bar" aria-hidden="true"><span style={format!("width: {share}%")} /></span>
            <span class="hint">{ today_words(work) }</span>
        </div>
    }
}
