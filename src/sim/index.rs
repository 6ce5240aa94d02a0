//! Time indexes over the shop's orders, so that a page costs O(log n +
//! page size) however many orders match and however deep the page is.
//!
//! Each index keeps one sorted vector of keys per *bucket* (one bucket per
//! trade type and status, see `Trade::bucket`): a filter on types or a status
//! is then a choice of buckets, never a scan. A key packs an instant and a tid
//! into one `u128` whose order is (time, tid), which is also the order TOP
//! sorts by (descending, ties by tid descending).
//!
//! Writes are a binary search and a `memmove` of the bucket's tail: at 100 000
//! orders that moves at most 1.6 MB, far below a millisecond, and the
//! simulator writes at most a few hundred times a second.

use chrono::{DateTime, Utc};

/// An instant and a tid, ordered by the instant first.
pub(crate) type Key = u128;

const SIGN: u64 = 1 << 63;

/// The key of `tid` at `time` (whole seconds).
pub(crate) fn key(time: DateTime<Utc>, tid: i64) -> Key {
    key_secs(time.timestamp(), tid)
}

/// The key of `tid` at `secs` since the epoch. Flipping the sign bit maps
/// i64 order onto u64 order.
pub(crate) fn key_secs(secs: i64, tid: i64) -> Key {
    (u128::from(secs as u64 ^ SIGN) << 64) | u128::from(tid as u64 ^ SIGN)
}

/// The tid a key holds.
pub(crate) fn tid_of(key: Key) -> i64 {
    (key as u64 ^ SIGN) as i64
}

/// The smallest key at `time`, for inclusive range starts.
pub(crate) fn first_at(time: DateTime<Utc>) -> Key {
    key_secs(time.timestamp(), i64::MIN)
}

/// The largest key at `time`, for inclusive range ends.
pub(crate) fn last_at(time: DateTime<Utc>) -> Key {
    key_secs(time.timestamp(), i64::MAX)
}

/// Sorted keys per bucket.
#[derive(Debug, Clone)]
pub(crate) struct TimeIndex {
    buckets: Vec<Vec<Key>>,
}

impl TimeIndex {
    /// An empty index of `buckets` buckets.
    pub(crate) fn new(buckets: usize) -> Self {
        Self { buckets: vec![Vec::new(); buckets] }
    }

    /// Builds the index at once from unsorted `(bucket, key)` pairs; cheaper
    /// than inserting one by one when a whole shop is generated.
    pub(crate) fn build(buckets: usize, entries: impl IntoIterator<Item = (usize, Key)>) -> Self {
        let mut index = Self::new(buckets);
        for (bucket, key) in entries {
            index.buckets[bucket].push(key);
        }
        for bucket in &mut index.buckets {
            bucket.sort_unstable();
            bucket.dedup();
        }
        index
    }

    /// Adds `key` to `bucket` (no effect when present).
    pub(crate) fn insert(&mut self, bucket: usize, key: Key) {
        let keys = &mut self.buckets[bucket];
        if let Err(at) = keys.binary_search(&key) {
            keys.insert(at, key);
        }
    }

    /// Removes `key` from `bucket` (no effect when absent).
    pub(crate) fn remove(&mut self, bucket: usize, key: Key) {
        let keys = &mut self.buckets[bucket];
        if let Ok(at) = keys.binary_search(&key) {
            keys.remove(at);
        }
    }

    /// How many keys `bucket` holds, whatever their time.
    pub(crate) fn bucket_len(&self, bucket: usize) -> usize {
        self.buckets[bucket].len()
    }

    /// The `at`-th key of `bucket` in ascending order, for random picks.
    pub(crate) fn bucket_key(&self, bucket: usize, at: usize) -> Option<Key> {
        self.buckets[bucket].get(at).copied()
    }

    /// The keys of `buckets` within `lo..=hi`, one ascending slice per bucket.
    fn slices<'a>(&'a self, buckets: &[usize], lo: Key, hi: Key) -> Vec<&'a [Key]> {
        buckets
            .iter()
            .map(|&b| {
                let keys = &self.buckets[b];
                let start = keys.partition_point(|k| *k < lo);
                let end = keys.partition_point(|k| *k <= hi);
                &keys[start..end.max(start)]
            })
            .collect()
    }

    /// How many keys of `buckets` lie within `lo..=hi`.
    pub(crate) fn count(&self, buckets: &[usize], lo: Key, hi: Key) -> usize {
        self.slices(buckets, lo, hi).iter().map(|s| s.len()).sum()
    }

    /// Keys of `buckets` within `lo..=hi` in descending order, skipping
    /// `offset` and taking at most `limit`.
    pub(crate) fn page_desc(&self, buckets: &[usize], lo: Key, hi: Key, offset: usize, limit: usize) -> Vec<Key> {
        let slices = self.slices(buckets, lo, hi);
        let total: usize = slices.iter().map(|s| s.len()).sum();
        if offset >= total || limit == 0 {
            return Vec::new();
        }
        // `ends[i]`: slice i's elements still to take are `slices[i][..ends[i]]`.
        let mut ends: Vec<usize> = if offset == 0 {
            slices.iter().map(|s| s.len()).collect()
        } else {
            let threshold = offset_threshold(&slices, offset);
            slices.iter().map(|s| s.partition_point(|k| *k <= threshold)).collect()
        };
        let mut page = Vec::with_capacity(limit.min(total - offset));
        while page.len() < limit {
            let next = (0..slices.len()).filter(|&i| ends[i] > 0).max_by_key(|&i| slices[i][ends[i] - 1]);
            let Some(i) = next else { break };
            ends[i] -= 1;
            page.push(slices[i][ends[i]]);
        }
        page
    }
}

/// The threshold `t` such that exactly `offset` keys of `slices` are greater
/// than `t`: the smallest `t` with at most `offset` keys above it. Keys are
/// distinct integers, so lowering `t` by one adds at most one key above it,
/// and the count hits `offset` exactly. Needs `0 < offset <= total`.
fn offset_threshold(slices: &[&[Key]], offset: usize) -> Key {
    let above = |t: Key| -> usize { slices.iter().map(|s| s.len() - s.partition_point(|k| *k <= t)).sum() };
    let mut lo = Key::MIN; // may have more than `offset` keys above
    let mut hi = slices.iter().filter_map(|s| s.last()).copied().max().unwrap_or(Key::MIN); // none above
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if above(mid) <= offset {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// A set of ids with O(1) insert, remove and pick by position. Positions
/// change on removal (the last element fills the hole), but the same
/// sequence of operations always gives the same positions, which keeps
/// random picks deterministic.
#[derive(Debug, Clone, Default)]
pub(crate) struct PickSet {
    items: Vec<i64>,
    positions: std::collections::HashMap<i64, usize>,
}

impl PickSet {
    /// Adds `id` (no effect when present).
    pub(crate) fn insert(&mut self, id: i64) {
        if !self.positions.contains_key(&id) {
            self.positions.insert(id, self.items.len());
            self.items.push(id);
        }
    }

    /// Removes `id` (no effect when absent).
    pub(crate) fn remove(&mut self, id: i64) {
        if let Some(at) = self.positions.remove(&id) {
            self.items.swap_remove(at);
            if let Some(&moved) = self.items.get(at) {
                self.positions.insert(moved, at);
            }
        }
    }

    /// How many ids the set holds.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The id at position `at`.
    pub(crate) fn get(&self, at: usize) -> Option<i64> {
        self.items.get(at).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn keys_order_by_time_then_tid_and_keep_the_tid() {
        let tid = 3_900_000_000_123_456_789;
        assert_eq!(tid_of(key_secs(-5, tid)), tid);
        assert!(key_secs(-5, tid) < key_secs(0, 1));
        assert!(key_secs(7, 1) < key_secs(7, 2));
        assert!(key_secs(7, i64::MAX) < key_secs(8, i64::MIN));
    }

    #[test]
    fn pages_match_a_brute_force_sort_at_every_offset() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut entries = Vec::new();
        for tid in 0..600 {
            entries.push((rng.random_range(0..4usize), key_secs(rng.random_range(0..200), tid)));
        }
        let index = TimeIndex::build(4, entries.clone());
        for buckets in [vec![0, 1, 2, 3], vec![1, 3], vec![2]] {
            let (lo, hi) = (key_secs(20, i64::MIN), key_secs(150, i64::MAX));
            let mut expected: Vec<Key> =
                entries.iter().filter(|(b, k)| buckets.contains(b) && (lo..=hi).contains(k)).map(|e| e.1).collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(index.count(&buckets, lo, hi), expected.len());
            for offset in [0, 1, 2, 39, 40, 41, 100, expected.len() - 1, expected.len(), expected.len() + 5] {
                let page = index.page_desc(&buckets, lo, hi, offset, 40);
                let want: Vec<Key> = expected.iter().skip(offset).take(40).copied().collect();
                assert_eq!(page, want, "buckets {buckets:?} offset {offset}");
            }
        }
    }

    #[test]
    fn inserts_and_removes_keep_buckets_sorted() {
        let mut index = TimeIndex::new(2);
        for (secs, tid) in [(5, 1), (3, 2), (9, 3), (3, 1)] {
            index.insert(1, key_secs(secs, tid));
        }
        index.remove(1, key_secs(9, 3));
        index.remove(1, key_secs(9, 3));
        let page = index.page_desc(&[1], Key::MIN, Key::MAX, 0, 10);
        assert_eq!(page, vec![key_secs(5, 1), key_secs(3, 2), key_secs(3, 1)]);
        assert_eq!(index.bucket_len(0), 0);
    }

    #[test]
    fn pick_set_removes_by_swapping() {
        let mut set = PickSet::default();
        for id in [10, 20, 30] {
            set.insert(id);
        }
        set.remove(10);
        assert_eq!((set.len(), set.get(0), set.get(1)), (2, Some(30), Some(20)));
        set.remove(20);
        set.insert(30);
        assert_eq!((set.len(), set.get(0)), (1, Some(30)));
    }
}
