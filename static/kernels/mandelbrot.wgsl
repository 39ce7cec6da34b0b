// One square tile of the Mandelbrot set, one grey byte per pixel (255: inside
// the set), four pixels packed per output word.
//
// Fixed point, not f32: integer arithmetic gives the same bits on every GPU
// (f32 does not: fused multiply-adds move pixels on the set's edge), so
// friends' GPUs agree tile for tile and replication can compare outputs.
// Numbers are i32 in 1/8192ths (13 fractional bits); while |z| <= 2 every
// product fits in 32 bits.
//
// params[0]: column, row, tile size, tiles per side;
// params[1]: centre x, centre y (i32 bits), side of the picture, max_iter.

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 2>;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<u32>>;

const FRAC: u32 = 13u;
const TWO: i32 = 2 << FRAC;
const FOUR: i32 = 4 << FRAC;

fn escape_time(x: i32, y: i32, max_iter: u32) -> u32 {
    var zx = 0;
    var zy = 0;
    var i = 0u;
    loop {
        if (i >= max_iter || abs(zx) > TWO || abs(zy) > TWO) {
            break;
        }
        let xx = (zx * zx) >> FRAC;
        let yy = (zy * zy) >> FRAC;
        if (xx + yy > FOUR) {
            break;
        }
        zy = ((zx * zy) >> (FRAC - 1u)) + y;
        zx = xx - yy + x;
        i = i + 1u;
    }
    return i;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let tile = params[0];
    let view = params[1];
    let size = tile.z;
    if (id.x >= size || id.y >= size) {
        return;
    }
    let pixels = i32(size * tile.w);
    let span = i32(view.z);
    let x = i32(view.x) - span / 2 + i32(tile.x * size + id.x) * span / pixels;
    let y = i32(view.y) - span / 2 + i32(tile.y * size + id.y) * span / pixels;
    let max_iter = max(view.w, 1u);
    let grey = escape_time(x, y, max_iter) * 255u / max_iter;
    let at = id.y * size + id.x;
    atomicOr(&out[at / 4u], grey << (8u * (at % 4u)));
}
