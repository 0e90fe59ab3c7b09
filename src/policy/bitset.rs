//! A small fixed-size bit set over catalogue indices.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// The empty set (no indices, usable in statics).
    pub const EMPTY: BitSet = BitSet { words: Vec::new() };

    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
        }
    }
    pub fn insert(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Indices in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, w)| {
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| wi * 64 + b)
        })
    }
    /// Keeps only indices also in `other`.
    pub fn intersect_with(&mut self, other: &BitSet) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }
    /// Removes every index that is in `other`.
    pub fn subtract(&mut self, other: &BitSet) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= !other.words.get(i).copied().unwrap_or(0);
        }
    }
    /// Adds every index of `other` (within this set's size).
    pub fn union_with(&mut self, other: &BitSet) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w |= other.words.get(i).copied().unwrap_or(0);
        }
    }
    pub fn from_indices(len: usize, idx: impl IntoIterator<Item = usize>) -> Self {
        let mut s = Self::new(len);
        for i in idx {
            s.insert(i);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn basic_ops() {
        let mut a = BitSet::from_indices(130, [0, 63, 64, 129]);
        assert!(a.contains(63) && a.contains(64) && a.contains(129) && !a.contains(1));
        assert_eq!(a.len(), 4);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        a.intersect_with(&BitSet::from_indices(130, [63, 129]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![63, 129]);
        let mut b = BitSet::from_indices(130, [1, 63, 129]);
        b.subtract(&BitSet::from_indices(130, [63]));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![1, 129]);
        b.union_with(&BitSet::from_indices(130, [2]));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![1, 2, 129]);
        a.insert(500); // out of range: ignored, never panics
        assert!(!a.contains(500));
    }
}
