// One square tile of the Mandelbrot set, one grey byte per pixel (255: inside
// the set), four pixels packed per output word. The picture is `tiles` ×
// `tiles` tiles of `size` × `size` pixels covering the square of side `span`
// (in 1/1_000_000ths) centred on (cx, cy) (signed, same unit).
//
// params[0]: column, row, size, tiles; params[1]: cx, cy, span, max_iter.

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 2>;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<u32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let tile = params[0];
    let view = params[1];
    let size = tile.z;
    if (id.x >= size || id.y >= size) {
        return;
    }
    let pixels = f32(size * tile.w);
    let span = f32(view.z) / 1e6;
    let step = span / pixels;
    let x = f32(i32(view.x)) / 1e6 - span / 2.0 + f32(tile.x * size + id.x) * step;
    let y = f32(i32(view.y)) / 1e6 - span / 2.0 + f32(tile.y * size + id.y) * step;
    let max_iter = view.w;
    var zx = 0.0;
    var zy = 0.0;
    var i = 0u;
    while (i < max_iter && zx * zx + zy * zy <= 4.0) {
        let next = zx * zx - zy * zy + x;
        zy = 2.0 * zx * zy + y;
        zx = next;
        i = i + 1u;
    }
    let grey = i * 255u / max(max_iter, 1u);
    let at = id.y * size + id.x;
    atomicOr(&out[at / 4u], grey << (8u * (at % 4u)));
}
