//! The Merkle tree of a format-3 manifest, hashed as RFC 9162 (Certificate Transparency 2.0)
//! section 2.1 does: a leaf is `SHA-256(0x00 ‖ leaf bytes)`, an inner node
//! `SHA-256(0x01 ‖ left ‖ right)`, and a tree of `n` leaves splits at the largest power of
//! two below `n`. An inclusion proof (audit path) proves that one leaf is in a tree of a
//! given size and root; it holds only hashes, never another leaf.
//!
//! The tree is kept level by level: a level's last node, when it has no sibling, rises to
//! the next level unchanged, which gives exactly the RFC's root and paths.

use ring::digest;

/// One SHA-256 value.
pub type Hash = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The hash of a leaf: `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha256(&[&[0x00], leaf])
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// A whole tree, every level kept, so that a proof is read rather than computed.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// `levels[0]` are the leaf hashes in order; the last level holds the root alone.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over `leaves` (leaf hashes, in order).
    pub fn new(leaves: Vec<Hash>) -> Tree {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|l| l.len() > 1) {
            let above = next_level(below);
            levels.push(above);
        }
        Tree { levels }
    }

    /// The number of leaves.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The root: the RFC's `MTH`; for no leaves, the SHA-256 of nothing.
    pub fn root(&self) -> Hash {
        match self.levels.last().and_then(|l| l.first()) {
            Some(root) if self.size() > 0 => *root,
            _ => sha256(&[]),
        }
    }

    /// The inclusion proof of leaf `index`, bottom up (the RFC's `PATH(m, D[n])`).
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::new();
        let mut at = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = at ^ 1;
            if let Some(hash) = level.get(sibling) {
                path.push(*hash);
            }
            at /= 2;
        }
        Some(path)
    }
}

/// Each pair of `nodes` hashed into one, a last node without a sibling carried up.
fn pair_up(nodes: &[Hash]) -> Vec<Hash> {
    nodes
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [alone] => *alone,
            _ => unreachable!("chunks(2) yields one or two"),
        })
        .collect()
}

/// The level above `below`: a large level is hashed on all cores, in runs of an even
/// number of nodes, so only the last run can have a node left over.
fn next_level(below: &[Hash]) -> Vec<Hash> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if workers == 1 || below.len() < 1 << 14 {
        return pair_up(below);
    }
    let run = below.len().div_ceil(workers).next_multiple_of(2);
    std::thread::scope(|scope| {
        let runs: Vec<_> = below
            .chunks(run)
            .map(|part| (part, scope.spawn(move || pair_up(part))))
            .collect();
        let mut above = Vec::with_capacity(below.len().div_ceil(2));
        for (part, handle) in runs {
            // Were a run's thread to fail, its run is hashed here instead.
            above.extend(handle.join().unwrap_or_else(|_| pair_up(part)));
        }
        above
    })
}

/// Whether `path` proves that the leaf hashed `leaf` is leaf `index` of a tree of `size`
/// leaves whose root is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's recursive definition, written as it reads: `MTH(D[n])`.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// The largest power of two smaller than `n` (n > 1).
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// `PATH(m, D[n])`, as the RFC defines it.
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn roots_and_paths_are_the_rfcs_for_every_size_up_to_70() {
        for n in 0..=70 {
            let leaves = leaves(n);
            let tree = Tree::new(leaves.clone());
            assert_eq!(tree.size(), n);
            assert_eq!(tree.root(), mth(&leaves), "root of {n}");
            for m in 0..n {
                let proof = tree.proof(m).expect("in range");
                assert_eq!(proof, path(m, &leaves), "path of {m} in {n}");
                let size = n as u64;
                assert!(verify_inclusion(
                    &leaves[m],
                    m as u64,
                    size,
                    &proof,
                    &tree.root()
                ));
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn a_proof_proves_nothing_else() {
        let leaves = leaves(13);
        let tree = Tree::new(leaves.clone());
        let root = tree.root();
        let proof = tree.proof(5).expect("in range");
        assert!(verify_inclusion(&leaves[5], 5, 13, &proof, &root));
        // Another leaf, another index, another size, a changed hash, a hash dropped or added.
        assert!(!verify_inclusion(&leaves[6], 5, 13, &proof, &root));
        assert!(!verify_inclusion(&leaves[5], 4, 13, &proof, &root));
        assert!(!verify_inclusion(&leaves[5], 5, 8, &proof, &root));
        assert!(!verify_inclusion(&leaves[5], 5, 5, &proof, &root));
        // The path alone does not fix the size (5 of 13 and 5 of 14 take the same turns):
        // the signed tree head binds the size to the root.
        assert!(verify_inclusion(&leaves[5], 5, 14, &proof, &root));
        for i in 0..proof.len() {
            let mut changed = proof.clone();
            changed[i][0] ^= 1;
            assert!(!verify_inclusion(&leaves[5], 5, 13, &changed, &root));
        }
        assert!(!verify_inclusion(&leaves[5], 5, 13, &proof[1..], &root));
        let mut longer = proof.clone();
        longer.push(root);
        assert!(!verify_inclusion(&leaves[5], 5, 13, &longer, &root));
        // A leaf is not a node: the prefixes keep the two apart.
        assert_ne!(leaf_hash(&[1; 64]), node_hash(&[1; 32], &[1; 32]));
    }

    #[test]
    fn known_values() {
        // RFC 9162's empty tree, and one leaf of no bytes: SHA-256("") and SHA-256(0x00).
        let hex = |h: Hash| crate::common::hex::to_hex(&h);
        assert_eq!(
            hex(Tree::new(Vec::new()).root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(Tree::new(vec![leaf_hash(b"")]).root()),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn a_large_tree_hashed_on_all_cores_is_the_rfcs() {
        for n in [40_000, 40_001, 65_537] {
            let leaves = leaves(n);
            let tree = Tree::new(leaves.clone());
            assert_eq!(tree.root(), mth(&leaves), "root of {n}");
            for m in [0, n / 2, n - 1] {
                let proof = tree.proof(m).expect("in range");
                assert_eq!(proof, path(m, &leaves), "path of {m} in {n}");
            }
        }
    }
}
