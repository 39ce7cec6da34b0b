//! WGSL kernels natively, through wgpu on Vulkan: Mesa's lavapipe on a
//! machine without a GPU (scripts/setup.sh installs it). The same runner and
//! the same shaders as the browser's worker.

use manifest::kernel::{KernelOutput, KernelTask, DEFAULT_KERNEL_SECONDS};
use potluck_worker::kernel::Gpu;

const MANDELBROT: &str = include_str!("../../static/kernels/mandelbrot.wgsl");

fn gpu() -> Gpu {
    pollster::block_on(Gpu::open())
        .expect("a Vulkan adapter (install mesa-vulkan-drivers for lavapipe)")
}

/// The shader's fixed point: i32 in 1/8192ths.
const FRAC: u32 = 13;

/// Escape-time grey levels for one tile, in the shader's fixed point.
fn reference_tile(tx: u32, ty: u32, size: u32, tiles: u32, view: [i32; 4]) -> Vec<u8> {
    let [cx, cy, span, max_iter] = view;
    let pixels = (size * tiles) as i32;
    let (two, four) = (2 << FRAC, 4 << FRAC);
    let mut grey = Vec::new();
    for row in 0..size {
        for col in 0..size {
            let x = cx - span / 2 + (tx * size + col) as i32 * span / pixels;
            let y = cy - span / 2 + (ty * size + row) as i32 * span / pixels;
            let (mut zx, mut zy, mut i) = (0i32, 0i32, 0);
            while i < max_iter && zx.abs() <= two && zy.abs() <= two {
                let (xx, yy) = ((zx * zx) >> FRAC, (zy * zy) >> FRAC);
                if xx + yy > four {
                    break;
                }
                zy = ((zx * zy) >> (FRAC - 1)) + y;
                zx = xx - yy + x;
                i += 1;
            }
            grey.push((i * 255 / max_iter) as u8);
        }
    }
    grey
}

/// The view the widget's demo renders: centre −0.5 + 0i, 3 wide.
const VIEW: [i32; 4] = [-4096, 0, 3 << FRAC, 200];

fn mandelbrot(size: u32, tiles: u32) -> KernelTask {
    let [cx, cy, span, max_iter] = VIEW.map(|v| v as u32);
    KernelTask {
        wgsl: MANDELBROT.into(),
        entry: "main".into(),
        workgroups: [size.div_ceil(8), size.div_ceil(8), 1],
        output_words: size * size / 4,
        chunks: (0..tiles * tiles)
            .map(|i| vec![i % tiles, i / tiles, size, tiles, cx, cy, span, max_iter])
            .collect(),
        output: KernelOutput::Tile { size },
        max_seconds: DEFAULT_KERNEL_SECONDS,
    }
}

#[test]
fn the_mandelbrot_kernel_renders_exactly_the_tiles_the_cpu_renders() {
    let gpu = gpu();
    println!("adapter: {}", gpu.name);
    let task = mandelbrot(32, 4);
    task.validate(16).unwrap();
    for i in [0, 5, 6, 15] {
        let bytes = pollster::block_on(gpu.run(&task.chunk(i))).unwrap();
        assert_eq!(bytes, reference_tile(i % 4, i / 4, 32, 4, VIEW), "tile {i}");
        // Not blank: the set's edge runs through the middle tiles.
        if i == 5 {
            assert!(
                bytes.contains(&255) && bytes.iter().any(|&g| g < 50),
                "tile 5 shows the set's edge"
            );
        }
    }
}

#[test]
fn a_shader_that_does_not_compile_is_an_error_and_the_gpu_stays_usable() {
    let gpu = gpu();
    let broken = KernelTask {
        wgsl: "@compute @workgroup_size(1) fn main() { let x: u32 = ; }".into(),
        ..mandelbrot(8, 1).chunk(0)
    };
    let error = pollster::block_on(gpu.run(&broken)).unwrap_err();
    assert!(error.contains("WebGPU refused the kernel"), "{error}");
    let wrong_entry = KernelTask {
        entry: "nowhere".into(),
        ..mandelbrot(8, 1).chunk(0)
    };
    assert!(pollster::block_on(gpu.run(&wrong_entry)).is_err());
    let fine = pollster::block_on(gpu.run(&mandelbrot(8, 1).chunk(0))).unwrap();
    assert_eq!(fine.len(), 64);
}
