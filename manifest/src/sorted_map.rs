//! Ordered maps and sets kept as sorted `Vec`s, with the part of
//! `BTreeMap`'s and `BTreeSet`'s API that Potluck uses.
//!
//! Why not the standard ones: every key and value type instantiates the
//! B-tree's code afresh, about 250 bytes of wasm per method per type, and the
//! widget's UI (which every friend downloads) used ~45 of them: 98 KB of its
//! 1 MB. The maps here hold what a room has *now* (nodes, friends, running
//! chunks: tens of entries), where a binary search over one allocation is as
//! fast as a tree and its code a fraction of the size. Maps that grow with a
//! room's whole history stay in hash maps (see `Ledger`).
//!
//! Iteration is in key order, as with the B-tree ones, so every node that
//! folds the same events walks the same maps in the same order.

use crate::sort;
use std::borrow::Borrow;
use std::fmt;
use std::ops::{Bound, Index, RangeBounds};

/// An ordered map: `BTreeMap`'s behaviour, a sorted `Vec`'s code size.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K, V> SortedMap<K, V> {
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` says yes, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// Where `key` is (`Ok`), or where it would go (`Err`).
    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.position(key).ok()?;
        Some(&self.entries[at].1)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let at = self.position(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// The entry for `key`, to read, change or fill in one lookup.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let at = self.position(&key);
        Entry { map: self, key, at }
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range(
        &self,
        range: impl RangeBounds<K>,
    ) -> impl DoubleEndedIterator<Item = (&K, &V)> + Clone {
        let (from, to) = bounds(&self.entries, |(k, _)| k, range);
        self.entries[from..to].iter().map(|(k, v)| (k, v))
    }
}

/// The slice of `sorted` (by `key_of`) that `range` covers.
fn bounds<T, K: Ord>(
    sorted: &[T],
    key_of: impl Fn(&T) -> &K,
    range: impl RangeBounds<K>,
) -> (usize, usize) {
    let from = match range.start_bound() {
        Bound::Included(start) => sorted.partition_point(|item| key_of(item) < start),
        Bound::Excluded(start) => sorted.partition_point(|item| key_of(item) <= start),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(end) => sorted.partition_point(|item| key_of(item) <= end),
        Bound::Excluded(end) => sorted.partition_point(|item| key_of(item) < end),
        Bound::Unbounded => sorted.len(),
    };
    (from, to.max(from))
}

/// One key's place in a `SortedMap`, found once.
pub struct Entry<'a, K, V> {
    map: &'a mut SortedMap<K, V>,
    key: K,
    at: Result<usize, usize>,
}

impl<'a, K, V> Entry<'a, K, V> {
    /// The value, inserting `make()` first if the key had none.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let at = match self.at {
            Ok(at) => at,
            Err(at) => {
                self.map.entries.insert(at, (self.key, make()));
                at
            }
        };
        &mut self.map.entries[at].1
    }

    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    pub fn and_modify(self, change: impl FnOnce(&mut V)) -> Self {
        if let Ok(at) = self.at {
            change(&mut self.map.entries[at].1);
        }
        self
    }

    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for SortedMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key)
            .expect("no entry for this key in the SortedMap")
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut map = Self::new();
        map.extend(items);
        map
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    /// As `BTreeMap`: a later value for the same key replaces the earlier.
    /// Sorts once for the whole batch, not once per item: a view collects
    /// thousands of a room's tasks in no particular order.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, items: I) {
        self.entries.extend(items);
        // Stable, so of each run of equal keys the last one added is last.
        sort::sort_by(&mut self.entries, |a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(K, V)> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        self.entries = kept;
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// An ordered set: `BTreeSet`'s behaviour, a sorted `Vec`'s code size.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SortedSet<T> {
    items: Vec<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> SortedSet<T> {
    pub const fn new() -> Self {
        Self { items: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }

    pub fn last(&self) -> Option<&T> {
        self.items.last()
    }
}

impl<T: Ord> SortedSet<T> {
    fn position<Q: Ord + ?Sized>(&self, item: &Q) -> Result<usize, usize>
    where
        T: Borrow<Q>,
    {
        self.items.binary_search_by(|it| it.borrow().cmp(item))
    }

    pub fn contains<Q: Ord + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.position(item).is_ok()
    }

    /// Adds `item`; false if it was there already.
    pub fn insert(&mut self, item: T) -> bool {
        match self.position(&item) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, item);
                true
            }
        }
    }

    /// Takes `item` out; false if it was not there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.position(item) {
            Ok(at) => {
                self.items.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The items that fall in `range`, in order.
    pub fn range(&self, range: impl RangeBounds<T>) -> std::slice::Iter<'_, T> {
        let (from, to) = bounds(&self.items, |item| item, range);
        self.items[from..to].iter()
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut set = Self::new();
        set.extend(items);
        set
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    /// Sorts once for the whole batch; an item already there stays, as with
    /// `BTreeSet::insert`.
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        self.items.extend(items);
        sort::sort(&mut self.items);
        self.items.dedup();
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A deterministic stream of small keys with repeats, to compare against
    /// the standard B-tree collections step by step.
    fn keys(seed: u64, n: usize) -> Vec<u16> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u16
            })
            .collect()
    }

    #[test]
    fn a_map_behaves_as_a_btreemap_under_inserts_removes_and_entries() {
        for seed in 0..20 {
            let mut ours = SortedMap::new();
            let mut std = BTreeMap::new();
            for (step, key) in keys(seed, 400).into_iter().enumerate() {
                match step % 5 {
                    0 | 1 => assert_eq!(ours.insert(key, step), std.insert(key, step)),
                    2 => assert_eq!(ours.remove(&key), std.remove(&key)),
                    3 => *ours.entry(key).or_default() += 1,
                    _ => {
                        ours.entry(key).and_modify(|v| *v *= 2).or_insert(7);
                        std.entry(key).and_modify(|v| *v *= 2).or_insert(7);
                    }
                }
                if step % 5 == 3 {
                    *std.entry(key).or_default() += 1;
                }
                assert_eq!(ours.get(&key), std.get(&key));
            }
            assert!(
                ours.iter().eq(std.iter()),
                "seed {seed}: same entries in the same order"
            );
            let (lo, hi) = (40, 120);
            assert!(ours.range(lo..hi).eq(std.range(lo..hi)));
            assert!(ours.range(lo..=hi).eq(std.range(lo..=hi)));
            assert!(ours.range(hi..).eq(std.range(hi..)));
            ours.retain(|k, _| k % 3 == 0);
            std.retain(|k, _| k % 3 == 0);
            assert!(ours.into_iter().eq(std));
        }
    }

    #[test]
    fn a_later_value_for_the_same_key_wins_when_collecting_or_extending() {
        let mut map: SortedMap<_, _> = [(2, "b"), (1, "a"), (2, "c")].into_iter().collect();
        assert_eq!(map.iter().collect::<Vec<_>>(), [(&1, &"a"), (&2, &"c")]);
        map.extend([(3, "d"), (1, "e")]);
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [(&1, &"e"), (&2, &"c"), (&3, &"d")]
        );
        let mut std: BTreeMap<_, _> = [(2, "b"), (1, "a"), (2, "c")].into_iter().collect();
        std.extend([(3, "d"), (1, "e")]);
        assert!(map.iter().eq(std.iter()));
    }

    #[test]
    fn collecting_a_set_keeps_each_item_once_in_order() {
        let mut set: SortedSet<_> = [3, 1, 3, 2].into_iter().collect();
        set.extend([2, 0]);
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn a_set_behaves_as_a_btreeset() {
        for seed in 0..20 {
            let mut ours = SortedSet::new();
            let mut std = BTreeSet::new();
            for (step, key) in keys(seed, 300).into_iter().enumerate() {
                if step % 3 == 2 {
                    assert_eq!(ours.remove(&key), std.remove(&key));
                } else {
                    assert_eq!(ours.insert(key), std.insert(key));
                }
                assert_eq!(ours.contains(&key), std.contains(&key));
            }
            assert!(ours.iter().eq(std.iter()));
            assert!(ours.range(100..).eq(std.range(100..)));
            assert_eq!((ours.first(), ours.last()), (std.first(), std.last()));
        }
    }
}
