//! Stable sorting that compiles to one copy of the standard sort however
//! many places sort.
//!
//! `slice::sort_by` is instantiated afresh for every element type and
//! comparison, about 3.5 KB of wasm each; the widget's UI sorted in nine
//! places. Here the standard sort runs once, on indices with a comparison
//! behind `dyn`, and the elements are then moved into that order: each call
//! site adds a few hundred bytes. For lists of a room's size (tasks, friends,
//! voice messages); the ledger's event log, sorted on every fold, keeps the
//! standard sort.

use std::cmp::Ordering;

/// Sorts `items` by `compare`, keeping equal items in their order.
pub fn sort_by<T>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    let shared: &[T] = items;
    let order = sorted_order(shared.len(), &mut |a, b| compare(&shared[a], &shared[b]));
    apply_order(items, order);
}

/// Sorts `items` by the key `key_of` gives each, keeping equal keys in order.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], mut key_of: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key_of(a).cmp(&key_of(b)));
}

/// Sorts `items` in ascending order, keeping equal items in their order.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, T::cmp);
}

/// The indices `0..len` in the order `compare` puts them: the one
/// instantiation of the standard sort.
fn sorted_order(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

/// Moves `items` so that position `i` holds what was at `order[i]`, one
/// permutation cycle at a time (each item moves once).
fn apply_order<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut here = start;
        loop {
            let from = order[here];
            // Marks `here` as filled, so the cycle is not walked twice.
            order[here] = here;
            if from == start || from == here {
                break;
            }
            items.swap(here, from);
            here = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_the_standard_stable_sort_does() {
        let mut x: u64 = 7;
        for len in [0, 1, 2, 3, 10, 100, 1000] {
            let pairs: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 60) as u8, i)
                })
                .collect();
            let mut ours = pairs.clone();
            let mut std = pairs;
            sort_by_key(&mut ours, |p| p.0);
            std.sort_by_key(|p| p.0);
            assert_eq!(ours, std, "{len} items: equal keys keep their order");
        }
    }

    #[test]
    fn sorts_descending_input_and_owned_values() {
        let mut words: Vec<String> = (0..50).rev().map(|i| format!("{i:02}")).collect();
        sort(&mut words);
        let expected: Vec<String> = (0..50).map(|i| format!("{i:02}")).collect();
        assert_eq!(words, expected);
    }
}
