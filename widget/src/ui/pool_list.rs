//! Who contributes right now, and what each node is doing.

use crate::view::NodeView;
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
            <h2>{ format!("Contributing now ({})", props.nodes.len()) }</h2>
            if props.nodes.is_empty() {
                <p class="empty">{ "Nobody yet. Tasks wait until a friend contributes." }</p>
            }
            <ul>
                { for props.nodes.iter().map(|n| {
                    let mine = props.me.as_ref() == Some(&n.id);
                    html! {
                        <li class="node" data-testid="node" data-owner={n.owner.to_string()}>
                            <strong>{ n.owner.localpart() }</strong>
                            if mine { <span class="badge">{ "you" }</span> }
                            if n.is_coordinator { <span class="badge" title="hands out work">{ "coordinator" }</span> }
                            <span class="caps">{ format!(" {} workers · {} cores{}", n.caps.slots, n.caps.cores,
                                if n.caps.webgpu { " · WebGPU" } else { "" }) }</span>
                            <div class="doing">{ if n.doing.is_empty() { "idle".to_string() } else { n.doing.join(", ") } }</div>
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}
