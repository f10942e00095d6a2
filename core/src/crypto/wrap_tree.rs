//! A hash tree over an envelope's key wraps (envelope version 2).
//!
//! Version 1 signed every wrap inline, so a receiver needed all of them to
//! check the signature: in a group of 100, every member downloaded 100 RSA
//! ciphertexts (about 50 KB) to use one. Version 2 signs the root of a hash
//! tree over the wraps instead. The server then delivers each member only its
//! own wrap plus the sibling hashes on the way to the root (7 for 100
//! members), and the member still checks that the sender signed exactly that
//! wrap at exactly that position among exactly `count` wraps.
//!
//! The tree: leaf `i` is `SHA-256(leaf domain, user id, key id, wrapped key)`
//! of the `i`-th wrap in the envelope's order (sorted by user id); each level
//! hashes neighbours pairwise (`SHA-256(node domain, left, right)`), and a
//! last node without a neighbour moves up unchanged. Leaves and nodes use
//! different domains (a node is never taken for a leaf), and the count is
//! signed beside the root (a proof's path fixes the tree's shape only along
//! its own way up), so no other set or order of wraps matches what the
//! sender signed.

use super::encode::Canonical;
use crate::b64::B64;
use crate::proto::{KeyWrap, WrapProof};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

const LEAF_DOMAIN: &[u8] = b"ferrogram/v2/wrap-leaf";
const NODE_DOMAIN: &[u8] = b"ferrogram/v2/wrap-node";

/// Deepest proof accepted: a tree of 2^32 leaves. Longer paths are malformed.
const MAX_PATH: usize = 32;

pub fn leaf_hash(wrap: &KeyWrap) -> Hash {
    let mut encoding = Canonical::new(LEAF_DOMAIN);
    encoding
        .i64(wrap.user_id.0)
        .bytes(wrap.key_id.as_slice())
        .bytes(wrap.wrapped_key.as_slice());
    Sha256::digest(encoding.finish()).into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut encoding = Canonical::new(NODE_DOMAIN);
    encoding.bytes(left).bytes(right);
    Sha256::digest(encoding.finish()).into()
}

/// Every level of the tree, leaves first, the root last.
pub struct WrapTree {
    levels: Vec<Vec<Hash>>,
}

impl WrapTree {
    pub fn new(wraps: &[KeyWrap]) -> Self {
        let mut levels = vec![wraps.iter().map(leaf_hash).collect::<Vec<Hash>>()];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    // chunks(2) yields one or two items: the one is the last.
                    _ => pair.first().copied().unwrap_or([0; 32]),
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// How many wraps the tree covers.
    pub fn count(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The root, or all zeros for an envelope without wraps (which no
    /// checked envelope is: the sender is always a recipient).
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|level| level.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// The proof for the wrap at `index`, or None past the end.
    pub fn proof(&self, index: usize) -> Option<WrapProof> {
        if index >= self.count() {
            return None;
        }
        let mut path = Vec::new();
        let mut at = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = at ^ 1;
            if let Some(hash) = level.get(sibling) {
                path.push(B64(hash.to_vec()));
            }
            at /= 2;
        }
        Some(WrapProof {
            index: u32::try_from(index).ok()?,
            count: u32::try_from(self.count()).ok()?,
            path,
        })
    }
}

/// The root that `proof` leads to from the leaf `leaf`, or None when the
/// proof does not fit its own index and count (wrong number of hashes,
/// hashes of the wrong length, an index past the count).
pub fn root_from_proof(leaf: Hash, proof: &WrapProof) -> Option<Hash> {
    let (mut at, mut width) = (proof.index as usize, proof.count as usize);
    if at >= width || proof.path.len() > MAX_PATH {
        return None;
    }
    let mut hash = leaf;
    let mut path = proof.path.iter();
    while width > 1 {
        let sibling = at ^ 1;
        if sibling < width {
            let other: &Hash = path.next()?.as_slice().try_into().ok()?;
            hash = if at % 2 == 0 {
                node_hash(&hash, other)
            } else {
                node_hash(other, &hash)
            };
        }
        at /= 2;
        width = width.div_ceil(2);
    }
    // Every hash of the path must have been used.
    path.next().is_none().then_some(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    fn wraps(n: usize) -> Vec<KeyWrap> {
        (0..n)
            .map(|i| KeyWrap {
                user_id: UserId(i as i64 + 1),
                key_id: B64(vec![i as u8; 32]),
                wrapped_key: B64(vec![(i * 7) as u8; 384]),
            })
            .collect()
    }

    #[test]
    fn every_wrap_of_every_tree_size_proves_to_the_root() {
        for n in 1..=70 {
            let wraps = wraps(n);
            let tree = WrapTree::new(&wraps);
            assert_eq!(tree.count(), n);
            for (i, wrap) in wraps.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert_eq!((proof.index as usize, proof.count as usize), (i, n));
                // At most ceil(log2(n)) hashes: 7 for a group of 100.
                assert!(proof.path.len() <= n.next_power_of_two().trailing_zeros() as usize);
                assert_eq!(
                    root_from_proof(leaf_hash(wrap), &proof),
                    Some(tree.root()),
                    "n={n} i={i}"
                );
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn a_single_wrap_is_its_own_root() {
        let wraps = wraps(1);
        let tree = WrapTree::new(&wraps);
        assert_eq!(tree.root(), leaf_hash(&wraps[0]));
        assert!(tree.proof(0).unwrap().path.is_empty());
    }

    #[test]
    fn any_change_to_a_wrap_changes_the_root() {
        let base = wraps(9);
        let root = WrapTree::new(&base).root();
        let edits: [fn(&mut KeyWrap); 3] = [
            |w| w.user_id = UserId(99),
            |w| w.key_id.0[0] ^= 1,
            |w| w.wrapped_key.0[383] ^= 1,
        ];
        for edit in edits {
            for i in 0..base.len() {
                let mut changed = base.clone();
                edit(&mut changed[i]);
                assert_ne!(WrapTree::new(&changed).root(), root);
            }
        }
        // Dropping, adding or swapping wraps changes it too.
        assert_ne!(WrapTree::new(&base[..8]).root(), root);
        assert_ne!(WrapTree::new(&wraps(10)).root(), root);
        let mut swapped = base.clone();
        swapped.swap(2, 3);
        assert_ne!(WrapTree::new(&swapped).root(), root);
    }

    #[test]
    fn a_proof_that_does_not_fit_leads_nowhere_or_elsewhere() {
        let wraps = wraps(13);
        let tree = WrapTree::new(&wraps);
        let root = tree.root();
        let good = tree.proof(5).unwrap();
        let leaf = leaf_hash(&wraps[5]);

        // Another wrap's leaf with this proof.
        assert_ne!(root_from_proof(leaf_hash(&wraps[4]), &good), Some(root));
        // Another position. (Another count can lead to the same root when
        // the wrap's path has the same shape; the count is signed beside the
        // root, and the envelope tests show a changed count fails there.)
        for index in [4, 6, 12, 0] {
            let moved = WrapProof {
                index,
                ..good.clone()
            };
            assert_ne!(root_from_proof(leaf, &moved), Some(root), "{index}");
        }
        // An index past the count, a hash too many or too few, a short hash,
        // an absurdly long path: malformed.
        let bad = |edit: &dyn Fn(&mut WrapProof)| {
            let mut proof = good.clone();
            edit(&mut proof);
            root_from_proof(leaf, &proof)
        };
        assert_eq!(bad(&|p| p.index = 13), None);
        assert_eq!(bad(&|p| p.path.push(B64(vec![0; 32]))), None);
        assert_eq!(bad(&|p| drop(p.path.pop())), None);
        assert_eq!(bad(&|p| p.path[0].0.truncate(31)), None);
        assert_eq!(
            bad(&|p| {
                p.count = u32::MAX;
                p.path = vec![B64(vec![0; 32]); 40];
            }),
            None
        );
        // A flipped bit in a sibling hash.
        assert_ne!(bad(&|p| p.path[1].0[0] ^= 1), Some(root));
    }
}
