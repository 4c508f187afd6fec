//! [`Map`]: a JSON object as a list of members in input order, indexed by name past
//! [`SCAN`] members.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    ops::{Index, IndexMut},
};

use hashbrown::HashTable;

use super::{SCAN, Value};

/// A JSON object: members in input order. Only `Map<String, Value>` is used; the
/// parameters keep the spelling of `serde_json::Map<String, Value>`.
#[derive(Clone)]
pub struct Map<K, V> {
    entries: Vec<(K, V)>,
    /// When there are more than [`SCAN`] members: their positions by name. Boxed so that
    /// a map, and so a value, is four words (serde_json's value is nine) and a member
    /// seven; most maps have no index.
    index: Option<Box<NameIndex>>,
}

/// Member positions by name, hashed with a per-map random key (as std's `HashMap`, so
/// that no request can choose names that collide).
#[derive(Clone)]
struct NameIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl NameIndex {
    /// The index of `entries`, whose names are all different.
    fn of(entries: &[(String, Value)]) -> Self {
        let hasher = RandomState::new();
        let mut table = HashTable::with_capacity(entries.len());
        for (i, (k, _)) in entries.iter().enumerate() {
            let hash = hasher.hash_one(k.as_str());
            table.insert_unique(hash, position_u32(i), |&j| {
                hasher.hash_one(entries[j as usize].0.as_str())
            });
        }
        NameIndex { table, hasher }
    }

    fn find(&self, entries: &[(String, Value)], key: &str) -> Option<usize> {
        self.table
            .find(self.hasher.hash_one(key), |&i| entries[i as usize].0 == key)
            .map(|&i| i as usize)
    }

    /// Records that member `i` of `entries` (its last) is new.
    fn add(&mut self, entries: &[(String, Value)], i: usize) {
        let NameIndex { table, hasher } = self;
        let hash = hasher.hash_one(entries[i].0.as_str());
        table.insert_unique(hash, position_u32(i), |&j| {
            hasher.hash_one(entries[j as usize].0.as_str())
        });
    }
}

impl Default for Map<String, Value> {
    fn default() -> Self {
        Map::new()
    }
}

impl Map<String, Value> {
    /// An empty object.
    #[inline]
    pub const fn new() -> Self {
        Map {
            entries: Vec::new(),
            index: None,
        }
    }

    /// The number of members.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no members.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
    }

    /// The position of member `key`.
    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            None => self.entries.iter().position(|(k, _)| k == key),
            Some(index) => index.find(&self.entries, key),
        }
    }

    /// The value of member `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value of member `key`, to change it.
    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// The value of member `key`, `make()` inserted last when it is absent: one search,
    /// and the name is copied only when it is inserted (unlike [`Map::entry`], which
    /// takes an owned name).
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Value) -> &mut Value {
        let at = match self.position(key) {
            Some(at) => at,
            None => {
                self.push_new(key.to_string(), make());
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    /// Whether member `key` is present.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets member `key`: a present member keeps its place and gets the new value (the
    /// old one is returned); a new member goes last.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        if let Some(i) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        self.push_new(key, value);
        None
    }

    /// Adds a member whose name is not present yet, last.
    fn push_new(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
        let last = self.entries.len() - 1;
        match &mut self.index {
            Some(index) => index.add(&self.entries, last),
            None if self.entries.len() > SCAN => self.reindex(),
            None => {}
        }
    }

    /// Removes member `key`, keeping the order of the others.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let (_, v) = self.entries.remove(i);
        self.reindex();
        Some(v)
    }

    /// Removes member `key`, keeping the order of the others (as [`Map::shift_remove`]).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.shift_remove(key)
    }

    /// The place of member `key`, to fill it when absent.
    pub fn entry(&mut self, key: impl Into<String>) -> Entry<'_> {
        Entry {
            map: self,
            key: key.into(),
        }
    }

    /// Keeps the members for which `keep` returns `true`, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.reindex();
    }

    /// The members, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The members, in order, their values to change.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// The member names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Rebuilds the name index after members moved (none for small objects).
    fn reindex(&mut self) {
        self.index = (self.entries.len() > SCAN).then(|| Box::new(NameIndex::of(&self.entries)));
    }

    /// The object read from `entries` in input order, a repeated name keeping its first
    /// place and its last value, as inserting them one by one would.
    pub(super) fn from_read(mut entries: Vec<(String, Value)>) -> Self {
        if entries.len() <= SCAN {
            let mut i = 1;
            while i < entries.len() {
                if let Some(first) = entries[..i].iter().position(|(k, _)| *k == entries[i].0) {
                    let (_, v) = entries.remove(i);
                    entries[first].1 = v;
                } else {
                    i += 1;
                }
            }
            return Map { entries, index: None };
        }
        // Index the names as they come; a repeated one hands its value to the first.
        let hasher = RandomState::new();
        let mut table: HashTable<u32> = HashTable::with_capacity(entries.len());
        let mut repeated = vec![false; entries.len()];
        let mut any = false;
        for i in 0..entries.len() {
            let hash = hasher.hash_one(entries[i].0.as_str());
            let first = table
                .find(hash, |&j| entries[j as usize].0 == entries[i].0)
                .map(|&j| j as usize);
            match first {
                Some(first) => {
                    entries[first].1 = std::mem::take(&mut entries[i].1);
                    repeated[i] = true;
                    any = true;
                }
                None => {
                    table.insert_unique(hash, position_u32(i), |&j| {
                        hasher.hash_one(entries[j as usize].0.as_str())
                    });
                }
            }
        }
        if !any {
            return Map {
                entries,
                index: Some(Box::new(NameIndex { table, hasher })),
            };
        }
        let mut i = 0;
        entries.retain(|_| {
            i += 1;
            !repeated[i - 1]
        });
        let mut map = Map { entries, index: None };
        map.reindex();
        map
    }
}

/// The place of a member in a [`Map`] ([`Map::entry`]).
pub struct Entry<'a> {
    map: &'a mut Map<String, Value>,
    key: String,
}

impl<'a> Entry<'a> {
    /// The member's value, `default` inserted last when it is absent.
    pub fn or_insert(self, default: Value) -> &'a mut Value {
        self.or_insert_with(|| default)
    }

    /// The member's value, `make()` inserted last when it is absent.
    pub fn or_insert_with(self, make: impl FnOnce() -> Value) -> &'a mut Value {
        let at = match self.map.position(&self.key) {
            Some(at) => at,
            None => {
                self.map.push_new(self.key, make());
                self.map.len() - 1
            }
        };
        &mut self.map.entries[at].1
    }
}

/// A member position as stored in the index: objects are far smaller than 4 G members
/// (a request body is bounded long before).
fn position_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl fmt::Debug for Map<String, Value> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Map<String, Value> {
    /// Same members with equal values, in any order (as `serde_json::Map`).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Map<String, Value> {}

/// The members of a [`Map`], in order.
pub struct Iter<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The members of a [`Map`], in order, their values to change.
pub struct IterMut<'a>(std::slice::IterMut<'a, (String, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a String, &'a mut Value);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for IterMut<'_> {}

impl<'a> IntoIterator for &'a Map<String, Value> {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map<String, Value> {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl IntoIterator for Map<String, Value> {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for Map<String, Value> {
    /// The members in order, a repeated name keeping its first place and its last value.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Map::from_read(iter.into_iter().collect())
    }
}

impl Extend<(String, Value)> for Map<String, Value> {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl Index<&str> for Map<String, Value> {
    type Output = Value;

    /// The value of member `key`, which the caller knows is present; panics when it is
    /// absent, as `serde_json::Map` (use [`Map::get`] when it may be).
    #[expect(
        clippy::expect_used,
        reason = "indexing a member known to be present, as serde_json"
    )]
    fn index(&self, key: &str) -> &Value {
        self.get(key).expect("no entry found for key")
    }
}

impl IndexMut<&str> for Map<String, Value> {
    /// [`Map`]'s `index`, to change the value.
    #[expect(
        clippy::expect_used,
        reason = "indexing a member known to be present, as serde_json"
    )]
    fn index_mut(&mut self, key: &str) -> &mut Value {
        self.get_mut(key).expect("no entry found for key")
    }
}
