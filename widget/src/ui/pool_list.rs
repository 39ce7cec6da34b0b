//! Who contributes right now: each friend's machine and what it is doing,
//! in the words `view` gives them.

use crate::view::NodeView;
use crate::words;
use manifest::ids::NodeId;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub nodes: Vec<NodeView>,
    pub me: Option<NodeId>,
}

#[function_component(PoolList)]
pub fn pool_list(props: &Props) -> Html {
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
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}
