//! `count-primes START END`: the worker's prime counter, natively. The
//! end-to-end tests use it to know what the pool's answer must be.

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [start, end] = args[..] else {
        eprintln!("usage: count-primes START END");
        std::process::exit(2);
    };
    println!(
        "{}",
        potluck_worker::primes::count_primes(start, end, |_| {})
    );
}
