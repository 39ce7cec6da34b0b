//! An example Potluck task in Rust: one square tile of the Mandelbrot set.
//!
//! The picture is `tiles × tiles` tiles of `size × size` pixels covering the
//! square of side `span` centred on (`cx`, `cy`); each chunk renders one tile.
//! A pixel is its escape-time iteration count scaled to 0–255 (255: inside the
//! set). `render_tile` is plain Rust, tested natively; the `extern "C"`
//! exports are what `glue.js` calls in the browser.

use std::cell::RefCell;

/// Where the picture is and how fine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub cx: f64,
    pub cy: f64,
    pub span: f64,
    pub tiles: u32,
    pub size: u32,
    pub max_iter: u32,
}

/// The tile at column `tx`, row `ty`, row by row.
pub fn render_tile(view: &View, tx: u32, ty: u32) -> Vec<u8> {
    let pixels = view.tiles * view.size;
    let step = view.span / f64::from(pixels.max(1));
    let left = view.cx - view.span / 2.0;
    let top = view.cy - view.span / 2.0;
    let mut tile = Vec::with_capacity((view.size * view.size) as usize);
    for row in 0..view.size {
        let y = top + f64::from(ty * view.size + row) * step;
        for col in 0..view.size {
            let x = left + f64::from(tx * view.size + col) * step;
            tile.push(shade(escape_time(x, y, view.max_iter), view.max_iter));
        }
    }
    tile
}

fn escape_time(x: f64, y: f64, max_iter: u32) -> u32 {
    let (mut zx, mut zy) = (0.0f64, 0.0f64);
    for i in 0..max_iter {
        if zx * zx + zy * zy > 4.0 {
            return i;
        }
        let next = zx * zx - zy * zy + x;
        zy = 2.0 * zx * zy + y;
        zx = next;
    }
    max_iter
}

fn shade(iterations: u32, max_iter: u32) -> u8 {
    (u64::from(iterations) * 255 / u64::from(max_iter.max(1))) as u8
}

thread_local! {
    static TILE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Renders a tile into this module's buffer and returns where it starts; it is
/// `size * size` bytes long and valid until the next call.
#[no_mangle]
pub extern "C" fn tile(
    cx: f64,
    cy: f64,
    span: f64,
    tiles: u32,
    size: u32,
    max_iter: u32,
    tx: u32,
    ty: u32,
) -> *const u8 {
    let view = View {
        cx,
        cy,
        span,
        tiles,
        size,
        max_iter,
    };
    TILE.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        *buffer = render_tile(&view, tx, ty);
        buffer.as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: View = View {
        cx: -0.5,
        cy: 0.0,
        span: 3.0,
        tiles: 4,
        size: 8,
        max_iter: 100,
    };

    #[test]
    fn the_origin_is_inside_the_set_and_far_corners_are_outside() {
        // Pixel (0, 0) of tile (0, 0) is the top-left corner, far outside.
        assert!(render_tile(&VIEW, 0, 0)[0] < 10);
        // The point -0.5 + 0i is inside: tile (2, 2)'s first pixel lies on it.
        assert_eq!(render_tile(&VIEW, 2, 2)[0], 255);
    }

    #[test]
    fn a_tile_has_size_squared_pixels_and_renders_the_same_twice() {
        let tile = render_tile(&VIEW, 1, 3);
        assert_eq!(tile.len(), 64);
        assert_eq!(tile, render_tile(&VIEW, 1, 3));
    }
}
