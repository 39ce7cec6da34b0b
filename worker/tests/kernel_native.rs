//! WGSL kernels natively, through wgpu on Vulkan: Mesa's lavapipe on a
//! machine without a GPU (scripts/setup.sh installs it). The same runner and
//! the same shaders as the browser's worker.

use manifest::kernel::{KernelOutput, KernelTask};
use potluck_worker::kernel::Gpu;

const MANDELBROT: &str = include_str!("../../static/kernels/mandelbrot.wgsl");

fn gpu() -> Gpu {
    pollster::block_on(Gpu::open()).expect("a Vulkan adapter (install mesa-vulkan-drivers for lavapipe)")
}

/// Escape-time grey levels for one tile, in f32 like the shader.
fn reference_tile(tx: u32, ty: u32, size: u32, tiles: u32, max_iter: u32) -> Vec<u8> {
    let span = 3.0f32;
    let step = span / (size * tiles) as f32;
    let mut grey = Vec::new();
    for row in 0..size {
        for col in 0..size {
            let x = -0.5 - span / 2.0 + (tx * size + col) as f32 * step;
            let y = -span / 2.0 + (ty * size + row) as f32 * step;
            let (mut zx, mut zy, mut i) = (0.0f32, 0.0f32, 0);
            while i < max_iter && zx * zx + zy * zy <= 4.0 {
                let next = zx * zx - zy * zy + x;
                zy = 2.0 * zx * zy + y;
                zx = next;
                i += 1;
            }
            grey.push((i * 255 / max_iter) as u8);
        }
    }
    grey
}

fn mandelbrot(size: u32, tiles: u32, max_iter: u32) -> KernelTask {
    let cx = (-500_000i32) as u32; // -0.5, in millionths, as WGSL's i32 bits
    KernelTask {
        wgsl: MANDELBROT.into(),
        entry: "main".into(),
        workgroups: [size.div_ceil(8), size.div_ceil(8), 1],
        output_words: size * size / 4,
        chunks: (0..tiles * tiles)
            .map(|i| vec![i % tiles, i / tiles, size, tiles, cx, 0, 3_000_000, max_iter])
            .collect(),
        output: KernelOutput::Tile { size },
    }
}

#[test]
fn the_mandelbrot_kernel_renders_the_tiles_the_cpu_renders() {
    let gpu = gpu();
    println!("adapter: {}", gpu.name);
    let task = mandelbrot(32, 4, 200);
    task.validate(16).unwrap();
    let (mut same, mut total) = (0, 0);
    for i in [0, 5, 6, 15] {
        let chunk = task.chunk(i);
        let bytes = pollster::block_on(gpu.run(&chunk)).unwrap();
        let expected = reference_tile(i % 4, i / 4, 32, 4, 200);
        assert_eq!(bytes.len(), expected.len());
        same += bytes.iter().zip(&expected).filter(|(a, b)| a == b).count();
        total += expected.len();
        // The tile is not blank: the set's edge runs through the middle tiles.
        if i == 5 {
            assert!(bytes.contains(&255) && bytes.iter().any(|&g| g < 50), "tile 5 shows the set's edge");
        }
    }
    // f32 on two implementations: fused multiply-adds may move a pixel or two
    // on the set's chaotic edge, nothing more.
    let share = same as f64 / total as f64;
    println!("pixels equal to the CPU's: {:.4}", share);
    assert!(share > 0.99, "only {share:.4} of the pixels match the CPU's");
}

#[test]
fn a_shader_that_does_not_compile_is_an_error_and_the_gpu_stays_usable() {
    let gpu = gpu();
    let broken = KernelTask {
        wgsl: "@compute @workgroup_size(1) fn main() { let x: u32 = ; }".into(),
        ..mandelbrot(8, 1, 10).chunk(0)
    };
    let error = pollster::block_on(gpu.run(&broken)).unwrap_err();
    assert!(error.contains("WebGPU refused the kernel"), "{error}");
    let wrong_entry = KernelTask {
        entry: "nowhere".into(),
        ..mandelbrot(8, 1, 10).chunk(0)
    };
    assert!(pollster::block_on(gpu.run(&wrong_entry)).is_err());
    let fine = pollster::block_on(gpu.run(&mandelbrot(8, 1, 10).chunk(0))).unwrap();
    assert_eq!(fine.len(), 64);
}
