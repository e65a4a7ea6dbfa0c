//! The validators of one height, their voting power, the proposer rule and the thresholds.

use std::collections::BTreeMap;

use crate::error::ValidatorSetError;
use crate::limits::{MAX_TOTAL_VOTING_POWER, MAX_VALIDATORS};
use crate::types::{Height, Round, ValidatorId};

/// One validator and its voting power.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Validator {
    pub id: ValidatorId,
    pub voting_power: u64,
}

/// The ordered list of validators of a height. The order is the ledger's and matters: it is
/// the round-robin order of proposers and the order of the canonical encoding.
///
/// Invariants (checked by [`ValidatorSet::new`], so every value of this type holds them):
/// between 1 and [`MAX_VALIDATORS`] validators, no id twice, every power at least 1, total
/// power at most [`MAX_TOTAL_VOTING_POWER`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    #[cfg_attr(feature = "serde", serde(skip))]
    index_by_id: BTreeMap<ValidatorId, usize>,
    #[cfg_attr(feature = "serde", serde(skip))]
    total_voting_power: u64,
}

impl ValidatorSet {
    /// Checks the invariants and builds the set, keeping the given order.
    pub fn new(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
                max: MAX_VALIDATORS,
            });
        }
        let mut index_by_id = BTreeMap::new();
        let mut total_voting_power: u64 = 0;
        for (index, validator) in validators.iter().enumerate() {
            if validator.voting_power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    validator: validator.id,
                });
            }
            if index_by_id.insert(validator.id, index).is_some() {
                return Err(ValidatorSetError::Duplicate {
                    validator: validator.id,
                });
            }
            total_voting_power = total_voting_power
                .checked_add(validator.voting_power)
                .filter(|total| *total <= MAX_TOTAL_VOTING_POWER)
                .ok_or(ValidatorSetError::TotalPowerTooLarge {
                    max: MAX_TOTAL_VOTING_POWER,
                })?;
        }
        Ok(ValidatorSet {
            validators,
            index_by_id,
            total_voting_power,
        })
    }

    /// A set where every validator has voting power 1.
    pub fn with_equal_power(
        ids: impl IntoIterator<Item = ValidatorId>,
    ) -> Result<Self, ValidatorSetError> {
        Self::new(
            ids.into_iter()
                .map(|id| Validator {
                    id,
                    voting_power: 1,
                })
                .collect(),
        )
    }

    /// The validators, in the set's order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true for a constructed set; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The sum of all voting powers.
    pub fn total_voting_power(&self) -> u64 {
        self.total_voting_power
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &ValidatorId) -> bool {
        self.index_by_id.contains_key(id)
    }

    /// The voting power of `id`, or `None` when it is not in the set.
    pub fn voting_power(&self, id: &ValidatorId) -> Option<u64> {
        let index = *self.index_by_id.get(id)?;
        self.validators
            .get(index)
            .map(|validator| validator.voting_power)
    }

    /// The position of `id` in the set's order.
    pub fn position(&self, id: &ValidatorId) -> Option<usize> {
        self.index_by_id.get(id).copied()
    }

    /// The proposer of `round` at `height`: round-robin over the set's order, starting at
    /// position `(height + round) mod n`. Every validator with the same set computes the
    /// same proposer, and consecutive rounds (and heights) move to the next validator.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorId {
        let count = self.validators.len() as u128;
        // `count` is at least 1 by the invariant, and the position is below it.
        let position = ((u128::from(height) + u128::from(round)) % count) as usize;
        match self.validators.get(position) {
            Some(validator) => validator.id,
            None => unreachable_empty_set(),
        }
    }

    /// Whether `power` is more than two thirds of the total (the paper's 2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_voting_power) * 2
    }

    /// Whether `power` is more than one third of the total (the paper's f+1): at least one
    /// correct validator is among those who hold it.
    pub fn is_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_voting_power)
    }

    /// The smallest power that is a quorum (more than two thirds of the total).
    pub fn quorum_power(&self) -> u64 {
        // floor(2 total / 3) + 1; fits in u64 because total <= MAX_TOTAL_VOTING_POWER.
        ((u128::from(self.total_voting_power) * 2 / 3) + 1) as u64
    }

    /// The largest total power of faulty validators the set tolerates: any power below a
    /// third of the total, that is the largest f with 3f < total.
    pub fn max_faulty_power(&self) -> u64 {
        (self.total_voting_power - 1) / 3
    }

    /// The canonical byte encoding of the set, for the node to hash (no hash is taken here):
    ///
    /// `count: u32 big-endian`, then for each validator in order
    /// `id: 32 bytes || voting_power: u64 big-endian`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(4 + self.validators.len() * 40);
        // The count is at most MAX_VALIDATORS, far below u32::MAX.
        bytes.extend_from_slice(&(self.validators.len() as u32).to_be_bytes());
        for validator in &self.validators {
            bytes.extend_from_slice(&validator.id.0);
            bytes.extend_from_slice(&validator.voting_power.to_be_bytes());
        }
        bytes
    }
}

#[cold]
fn unreachable_empty_set() -> ! {
    // A constructed ValidatorSet is never empty, so the position is always in range.
    unreachable!("a validator set is never empty")
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            validators: Vec<Validator>,
        }
        let raw = Raw::deserialize(deserializer)?;
        ValidatorSet::new(raw.validators).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> ValidatorId {
        ValidatorId([byte; 32])
    }

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(index, power)| Validator {
                    id: id(index as u8 + 1),
                    voting_power: *power,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_sets_with_the_reason() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert_eq!(
            ValidatorSet::new(vec![Validator {
                id: id(1),
                voting_power: 0
            }]),
            Err(ValidatorSetError::ZeroPower { validator: id(1) })
        );
        assert_eq!(
            ValidatorSet::new(vec![
                Validator {
                    id: id(1),
                    voting_power: 1
                },
                Validator {
                    id: id(1),
                    voting_power: 2
                }
            ]),
            Err(ValidatorSetError::Duplicate { validator: id(1) })
        );
        assert_eq!(
            ValidatorSet::new(vec![
                Validator {
                    id: id(1),
                    voting_power: MAX_TOTAL_VOTING_POWER
                },
                Validator {
                    id: id(2),
                    voting_power: 1
                }
            ]),
            Err(ValidatorSetError::TotalPowerTooLarge {
                max: MAX_TOTAL_VOTING_POWER
            })
        );
        let too_many = (0..=MAX_VALIDATORS).map(|index| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(index as u64).to_be_bytes());
            ValidatorId(bytes)
        });
        assert_eq!(
            ValidatorSet::with_equal_power(too_many),
            Err(ValidatorSetError::TooMany {
                count: MAX_VALIDATORS + 1,
                max: MAX_VALIDATORS
            })
        );
    }

    #[test]
    fn thresholds_are_strictly_more_than_two_thirds_and_one_third() {
        let four = set(&[1, 1, 1, 1]);
        assert_eq!(four.total_voting_power(), 4);
        assert!(!four.is_quorum(2));
        assert!(four.is_quorum(3));
        assert!(!four.is_one_third(1));
        assert!(four.is_one_third(2));
        assert_eq!(four.quorum_power(), 3);
        assert_eq!(four.max_faulty_power(), 1);

        let three = set(&[1, 1, 1]);
        assert!(!three.is_quorum(2), "exactly two thirds is not a quorum");
        assert!(three.is_quorum(3));
        assert!(
            !three.is_one_third(1),
            "exactly one third is not more than a third"
        );
        assert_eq!(three.quorum_power(), 3);

        let weighted = set(&[10, 20, 30, 40]);
        assert!(!weighted.is_quorum(66));
        assert!(weighted.is_quorum(67));
        assert_eq!(weighted.quorum_power(), 67);
        assert_eq!(weighted.max_faulty_power(), 33);
        for total in 1..200u64 {
            let one = ValidatorSet::new(vec![Validator {
                id: id(1),
                voting_power: total,
            }])
            .unwrap();
            assert!(one.is_quorum(one.quorum_power()));
            assert!(!one.is_quorum(one.quorum_power() - 1));
            assert!(3 * one.max_faulty_power() < total);
            assert!(3 * (one.max_faulty_power() + 1) >= total);
        }
    }

    #[test]
    fn proposer_is_round_robin_over_height_plus_round() {
        let four = set(&[1, 1, 1, 1]);
        assert_eq!(four.proposer(0, 0), id(1));
        assert_eq!(four.proposer(0, 1), id(2));
        assert_eq!(four.proposer(1, 0), id(2));
        assert_eq!(four.proposer(1, 3), id(1));
        assert_eq!(
            four.proposer(u64::MAX, u32::MAX),
            four.proposer(u64::MAX % 4 + u64::from(u32::MAX % 4), 0)
        );
    }

    #[test]
    fn lookup_and_canonical_bytes() {
        let set = set(&[5, 7]);
        assert_eq!(set.voting_power(&id(2)), Some(7));
        assert_eq!(set.voting_power(&id(9)), None);
        assert_eq!(set.position(&id(2)), Some(1));
        assert!(set.contains(&id(1)));
        let bytes = set.canonical_bytes();
        let mut expected = vec![0, 0, 0, 2];
        expected.extend_from_slice(&[1u8; 32]);
        expected.extend_from_slice(&5u64.to_be_bytes());
        expected.extend_from_slice(&[2u8; 32]);
        expected.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_checks_invariants() {
        let original = set(&[3, 4]);
        let json = serde_json::to_string(&original).unwrap();
        let back: ValidatorSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
        assert_eq!(back.total_voting_power(), 7);
        assert_eq!(back.position(&id(2)), Some(1));
        let duplicate = format!(
            "{{\"validators\":[{{\"id\":\"{0}\",\"voting_power\":1}},{{\"id\":\"{0}\",\"voting_power\":1}}]}}",
            "01".repeat(32)
        );
        assert!(serde_json::from_str::<ValidatorSet>(&duplicate).is_err());
    }
}
