//! A map with a size cap that forgets its least recently touched entries:
//! what keeps per-source state bounded under a flood of spoofed sources.

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
};

#[derive(Debug, Clone)]
pub(crate) struct LruMap<K, V> {
    entries: HashMap<K, (u64, V)>,
    /// Touch stamp → key; the first entry is the least recently touched.
    order: BTreeMap<u64, K>,
    next_stamp: u64,
    capacity: usize,
    evicted: u64,
}

impl<K: Hash + Eq + Clone, V> LruMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        LruMap {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries dropped to respect the cap, since creation.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.entries.len() > self.capacity {
            self.evict_oldest();
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// The entry for `key`, marked as most recently touched.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let stamp = self.take_stamp();
        let (old, value) = self.entries.get_mut(key)?;
        self.order.remove(old);
        *old = stamp;
        self.order.insert(stamp, key.clone());
        Some(value)
    }

    /// The entry for `key`, created with `make` if absent (evicting the least
    /// recently touched entry when full); marked as most recently touched.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.capacity {
                self.evict_oldest();
            }
        }
        let stamp = self.take_stamp();
        let entry = self
            .entries
            .entry(key.clone())
            .or_insert_with(|| (stamp, make()));
        if entry.0 != stamp {
            self.order.remove(&entry.0);
            entry.0 = stamp;
        }
        self.order.insert(stamp, key);
        &mut entry.1
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => {
                self.get_or_insert_with(key, || value);
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let (stamp, value) = self.entries.remove(key)?;
        self.order.remove(&stamp);
        Some(value)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|k, (stamp, v)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(stamp);
            }
            kept
        });
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, (_, v))| (k, v))
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    fn take_stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.order.pop_first() {
            self.entries.remove(&key);
            self.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_entry_goes_first() {
        let mut map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.get_mut(&"a");
        map.insert("c", 3);
        assert!(map.get(&"a").is_some());
        assert!(map.get(&"b").is_none(), "b was touched least recently");
        assert_eq!(map.len(), 2);
        assert_eq!(map.evicted(), 1);
    }

    #[test]
    fn stays_bounded_and_consistent() {
        let mut map = LruMap::new(100);
        for i in 0..10_000u32 {
            *map.get_or_insert_with(i, || 0) += 1;
            if i % 3 == 0 {
                map.remove(&(i / 2));
            }
        }
        assert!(map.len() <= 100);
        assert_eq!(map.order.len(), map.entries.len());
        map.retain(|k, _| k % 2 == 0);
        assert_eq!(map.order.len(), map.entries.len());
        map.set_capacity(10);
        assert!(map.len() <= 10);
        assert_eq!(map.order.len(), map.entries.len());
    }
}
