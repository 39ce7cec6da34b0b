//! Prints one tile natively as base64, as the browser task does: how tests
//! check that the wasm in a friend's browser computed the same pixels.
//!
//! `mandelbrot-tile <cx> <cy> <span> <tiles> <size> <max_iter> <tx> <ty>`

use potluck_example_mandelbrot::{render_tile, View};
use std::process::ExitCode;

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let float = |i: usize| args.get(i).and_then(|a| a.parse::<f64>().ok());
    let int = |i: usize| args.get(i).and_then(|a| a.parse::<u32>().ok());
    let parsed = (|| {
        let view = View {
            cx: float(0)?,
            cy: float(1)?,
            span: float(2)?,
            tiles: int(3)?,
            size: int(4)?,
            max_iter: int(5)?,
        };
        Some((view, int(6)?, int(7)?))
    })();
    let Some((view, tx, ty)) = parsed else {
        eprintln!("usage: mandelbrot-tile <cx> <cy> <span> <tiles> <size> <max_iter> <tx> <ty>");
        return ExitCode::FAILURE;
    };
    println!("{}", base64(&render_tile(&view, tx, ty)));
    ExitCode::SUCCESS
}
