//! The witnesses' cosignatures a node collects (`POST /v1/log/cosignatures`, ADR 0038): each
//! checked by the route against the node's own log root of its size before it is kept here,
//! in memory, bounded: every accepted witness's latest, plus the most recent
//! [`COSIGNED_SIZES_MAX`] log sizes. A restart forgets them; witnesses post again when a
//! checkpoint they follow lacks their cosignature.

use std::collections::BTreeMap;

use hutong_verify::witness::Cosignature;

use crate::limits::COSIGNED_SIZES_MAX;

#[derive(Debug, Default)]
pub(crate) struct CosignaturePool {
    /// Log size → witness name → its cosignature of the note of that size.
    by_size: BTreeMap<u64, BTreeMap<String, Cosignature>>,
    /// Witness name → the largest log size it cosigned.
    latest: BTreeMap<String, u64>,
}

impl CosignaturePool {
    /// Keeps `cosignature` (already verified) of the log of `log_size`; of two by one witness
    /// for one size, the later is kept.
    pub fn insert(&mut self, log_size: u64, cosignature: Cosignature) {
        let witness = cosignature.witness.clone();
        let at_size = self.by_size.entry(log_size).or_default();
        match at_size.get(&witness) {
            Some(kept) if kept.time >= cosignature.time => {}
            _ => {
                at_size.insert(witness.clone(), cosignature);
            }
        }
        let latest = self.latest.entry(witness).or_insert(log_size);
        *latest = (*latest).max(log_size);
        self.prune();
    }

    /// Forgets the oldest sizes beyond the bound, keeping each witness's latest.
    fn prune(&mut self) {
        while self.by_size.len() > COSIGNED_SIZES_MAX {
            let mut removed_any = false;
            let sizes: Vec<u64> = self.by_size.keys().copied().collect();
            for size in sizes {
                if self.by_size.len() <= COSIGNED_SIZES_MAX {
                    break;
                }
                let Some(at_size) = self.by_size.get_mut(&size) else {
                    continue;
                };
                let before = at_size.len();
                at_size.retain(|witness, _| self.latest.get(witness) == Some(&size));
                removed_any |= at_size.len() != before;
                if at_size.is_empty() {
                    self.by_size.remove(&size);
                    removed_any = true;
                }
            }
            if !removed_any {
                // Every size left is some witness's latest: at most one per witness, which
                // the accepted witnesses' bound limits.
                break;
            }
        }
    }

    /// The cosignatures of the log of `log_size`, by witness name.
    pub fn at(&self, log_size: u64) -> Vec<Cosignature> {
        self.by_size
            .get(&log_size)
            .map(|at_size| at_size.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The largest log size from `first_size` up to `last_size` cosigned by at least
    /// `required` witnesses, with their cosignatures.
    pub fn witnessed(
        &self,
        first_size: u64,
        last_size: u64,
        required: usize,
    ) -> Option<(u64, Vec<Cosignature>)> {
        self.by_size
            .range(first_size..=last_size)
            .rev()
            .find(|(_, at_size)| at_size.len() >= required)
            .map(|(size, at_size)| (*size, at_size.values().cloned().collect()))
    }

    #[cfg(test)]
    fn sizes(&self) -> usize {
        self.by_size.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::crypto::Signature;

    fn cosignature(witness: &str, time: u64) -> Cosignature {
        Cosignature {
            witness: witness.into(),
            key_id: "00000000".into(),
            time,
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn keeps_recent_sizes_and_every_witness_latest() {
        let mut pool = CosignaturePool::default();
        // A witness that stopped at size 1.
        pool.insert(1, cosignature("slow", 1));
        for size in 2..(COSIGNED_SIZES_MAX as u64 + 50) {
            pool.insert(size, cosignature("fast", size));
        }
        assert!(pool.sizes() <= COSIGNED_SIZES_MAX + 1);
        assert_eq!(pool.at(1).len(), 1, "the slow witness's latest is kept");
        assert!(pool.at(2).is_empty(), "old sizes are forgotten first");
        let last = COSIGNED_SIZES_MAX as u64 + 49;
        assert_eq!(pool.at(last).len(), 1);
    }

    #[test]
    fn the_largest_size_with_enough_witnesses_is_chosen() {
        let mut pool = CosignaturePool::default();
        pool.insert(5, cosignature("a", 1));
        pool.insert(5, cosignature("b", 1));
        pool.insert(7, cosignature("a", 2));
        // The same witness twice at one size counts once; the later is kept.
        pool.insert(7, cosignature("a", 3));
        assert_eq!(pool.at(7).len(), 1);
        assert_eq!(pool.at(7)[0].time, 3);
        assert_eq!(pool.witnessed(5, 10, 2).map(|(size, _)| size), Some(5));
        assert_eq!(pool.witnessed(5, 10, 1).map(|(size, _)| size), Some(7));
        assert_eq!(pool.witnessed(6, 10, 2), None);
        assert_eq!(pool.witnessed(5, 6, 1).map(|(size, _)| size), Some(5));
    }
}
