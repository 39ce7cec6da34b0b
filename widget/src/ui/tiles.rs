//! A picture that the pool renders tile by tile, assembled as the tiles
//! arrive, each tinted with the colour of the friend whose machine computed
//! it: the pool at work, at a glance. Any task whose chunks answer
//! `{"x", "y", "size", "pixels"}` (grey levels, base64) is shown this way.

use crate::view::Tile;
use manifest::base64;
use manifest::ids::UserId;
use manifest::sort;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};
use yew::prelude::*;

/// A friend's colour: a hue from their user id, the same on every node.
pub fn friend_hue(user: &UserId) -> u32 {
    user.as_str()
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360
}

/// RGB of a grey level tinted with a hue: HSL with the grey as lightness,
/// kept off pure black and white, where no hue would show.
fn tint(grey: u8, hue: u32) -> [u8; 3] {
    let l = 0.15 + 0.7 * f32::from(grey) / 255.0;
    let s = 0.65;
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let h = hue as f32 / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [r, g, b].map(|v| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// RGBA pixels of one tile, or `None` if its pixels are not `size²` bytes of base64.
pub fn tile_rgba(tile: &Tile) -> Option<Vec<u8>> {
    let grey = base64::decode(&tile.pixels)?;
    if grey.len() != (tile.size * tile.size) as usize {
        return None;
    }
    let hue = friend_hue(&tile.by);
    Some(
        grey.iter()
            .flat_map(|&g| {
                let [r, gr, b] = tint(g, hue);
                [r, gr, b, 255]
            })
            .collect(),
    )
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub tiles: Vec<Tile>,
    /// Chunks of the task, so the picture has its full size before all tiles arrive.
    pub chunks: u32,
}

#[function_component(TileImage)]
pub fn tile_image(props: &Props) -> Html {
    let canvas = use_node_ref();
    let size = props.tiles.first().map_or(1, |t| t.size);
    let side = (f64::from(props.chunks).sqrt().ceil() as u32).max(
        props
            .tiles
            .iter()
            .map(|t| t.x.max(t.y) + 1)
            .max()
            .unwrap_or(1),
    );
    {
        let canvas = canvas.clone();
        let tiles = props.tiles.clone();
        use_effect_with(tiles, move |tiles| {
            let context = canvas
                .cast::<HtmlCanvasElement>()
                .and_then(|c| c.get_context("2d").ok().flatten())
                .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok());
            if let Some(context) = context {
                for tile in tiles {
                    let Some(rgba) = tile_rgba(tile) else {
                        continue;
                    };
                    if let Ok(image) = ImageData::new_with_u8_clamped_array_and_sh(
                        Clamped(&rgba),
                        tile.size,
                        tile.size,
                    ) {
                        let at = |i: u32| f64::from(i * tile.size);
                        let _ = context.put_image_data(&image, at(tile.x), at(tile.y));
                    }
                }
            }
        });
    }
    let mut friends: Vec<&UserId> = props.tiles.iter().map(|t| &t.by).collect();
    sort::sort(&mut friends);
    friends.dedup();
    html! {
        <figure class="tiles" data-testid="tile-image" data-tiles={props.tiles.len().to_string()}>
            <canvas ref={canvas} width={(side * size).to_string()} height={(side * size).to_string()} />
            <figcaption data-testid="tile-legend">
                { for friends.iter().map(|f| {
                    let count = props.tiles.iter().filter(|t| &t.by == *f).count();
                    html! {
                        <span class="friend">
                            <span class="swatch" style={format!("background: hsl({}, 65%, 50%)", friend_hue(f))} />
                            { format!("{} ({count})", f.localpart()) }
                        </span>
                    }
                }) }
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_is_tinted_by_its_friend_and_checked_for_size() {
        let tile = |by: &str, pixels: &str| Tile {
            x: 0,
            y: 0,
            size: 2,
            pixels: pixels.into(),
            by: UserId::parse(by).unwrap(),
        };
        // Four mid-grey pixels.
        let alice = tile_rgba(&tile("@alice:hs", "gICAgA==")).unwrap();
        let bob = tile_rgba(&tile("@bob:hs", "gICAgA==")).unwrap();
        assert_eq!(alice.len(), 16);
        assert_ne!(alice[..3], bob[..3], "two friends, two tints");
        assert!(
            tile_rgba(&tile("@alice:hs", "gICA")).is_none(),
            "3 bytes for 4 pixels"
        );
    }
}
