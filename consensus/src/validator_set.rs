//! The validators of one height, their voting power, the proposer rule and the thresholds.
//!
//! The proposer is chosen by CometBFT's proposer-priority algorithm (`types/validator_set.go`,
//! `IncrementProposerPriority`), as a pure function of the set, the height and the round: the
//! proposer of (height, round) is the one the algorithm picks at step `height + round` of a
//! run that starts with every priority at zero. From zero the run repeats after one period of
//! total power steps, in which every validator proposes exactly as often as its power, so the
//! set computes one period once ([`ValidatorSet::proposer_schedule`]) and looks the step up
//! in it. See ADR 0025 for why the priorities are not carried from height to height.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::ValidatorSetError;
use crate::limits::{MAX_PROPOSER_CYCLE_POWER, MAX_TOTAL_VOTING_POWER, MAX_VALIDATORS};
use crate::types::{Height, Round, ValidatorId};

/// One validator and its voting power.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Validator {
    pub id: ValidatorId,
    pub voting_power: u64,
}

/// The ordered list of validators of a height. The order is the ledger's and matters: it
/// breaks ties between equal proposer priorities (the earlier validator wins, so that equal
/// powers rotate in this order) and it is the order of the canonical encoding.
///
/// Invariants (checked by [`ValidatorSet::new`], so every value of this type holds them):
/// between 1 and [`MAX_VALIDATORS`] validators, no id twice, every power at least 1, total
/// power at most [`MAX_TOTAL_VOTING_POWER`].
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    #[cfg_attr(feature = "serde", serde(skip))]
    index_by_id: BTreeMap<ValidatorId, usize>,
    #[cfg_attr(feature = "serde", serde(skip))]
    total_voting_power: u64,
    /// One period of proposers (positions in `validators`), computed on first use: the sets
    /// that only verify certificates never pay for it.
    #[cfg_attr(feature = "serde", serde(skip))]
    proposer_schedule: OnceLock<Arc<[u16]>>,
}

// Equality and debug output are the validators' alone: the schedule is derived from them.
impl PartialEq for ValidatorSet {
    fn eq(&self, other: &Self) -> bool {
        self.validators == other.validators
    }
}

impl Eq for ValidatorSet {}

impl fmt::Debug for ValidatorSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ValidatorSet")
            .field("validators", &self.validators)
            .field("total_voting_power", &self.total_voting_power)
            .finish_non_exhaustive()
    }
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
            proposer_schedule: OnceLock::new(),
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

    /// The proposer of `round` at `height`: the validator CometBFT's proposer-priority
    /// algorithm picks at step `height + round` from all priorities at zero (see the module
    /// documentation). Over any [`ValidatorSet::proposer_schedule`]`.len()` consecutive steps
    /// every validator proposes in proportion to its power (exactly, when the total power is
    /// at most [`MAX_PROPOSER_CYCLE_POWER`] after dividing by the powers' greatest common
    /// divisor); with equal powers the proposer is the validator at position
    /// `(height + round) mod n`, a rotation in the set's order. Every validator with the same
    /// set computes the same proposer.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorId {
        let schedule = self.proposer_schedule();
        // The schedule is never empty (the set is not) and far shorter than u64::MAX.
        let period = schedule.len() as u64;
        let step = (height % period + u64::from(round) % period) % period;
        let position = schedule.get(step as usize).copied().map(usize::from);
        match position.and_then(|position| self.validators.get(position)) {
            Some(validator) => validator.id,
            None => unreachable_empty_set(),
        }
    }

    /// One period of the proposer sequence: entry `s` is the position of the proposer at
    /// step `s` (see [`ValidatorSet::proposer`]). Computed on first use and kept.
    pub fn proposer_schedule(&self) -> &[u16] {
        self.proposer_schedule
            .get_or_init(|| proposer_schedule(&self.validators))
    }

    /// The powers the proposer selection works with: the voting powers divided by their
    /// greatest common divisor and, when the total is still above
    /// [`MAX_PROPOSER_CYCLE_POWER`], scaled to about that total (each at least 1).
    pub fn proposer_powers(&self) -> Vec<u64> {
        proposer_powers(&self.validators)
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

fn greatest_common_divisor(mut first: u64, mut second: u64) -> u64 {
    while second != 0 {
        (first, second) = (second, first % second);
    }
    first
}

fn proposer_powers(validators: &[Validator]) -> Vec<u64> {
    let divisor = validators
        .iter()
        .fold(0, |divisor, validator| {
            greatest_common_divisor(divisor, validator.voting_power)
        })
        .max(1);
    let reduced: Vec<u64> = validators
        .iter()
        .map(|validator| validator.voting_power / divisor)
        .collect();
    let total: u128 = reduced.iter().map(|power| u128::from(*power)).sum();
    if total <= u128::from(MAX_PROPOSER_CYCLE_POWER) {
        return reduced;
    }
    let scaled: Vec<u64> = reduced
        .iter()
        .map(|power| {
            // Below MAX_PROPOSER_CYCLE_POWER, so the conversion cannot fail.
            let scaled = u128::from(*power) * u128::from(MAX_PROPOSER_CYCLE_POWER) / total;
            u64::try_from(scaled)
                .unwrap_or(MAX_PROPOSER_CYCLE_POWER)
                .max(1)
        })
        .collect();
    let divisor = scaled
        .iter()
        .fold(0, |divisor, power| greatest_common_divisor(divisor, *power))
        .max(1);
    scaled.into_iter().map(|power| power / divisor).collect()
}

/// Proposer priorities as CometBFT keeps them, for one run from zero.
struct Priorities {
    powers: Vec<i64>,
    priorities: Vec<i64>,
    total: i64,
}

impl Priorities {
    /// `IncrementProposerPriority(1)`: rescale to the window of twice the total power, centre
    /// on the average, add every power, and pick the highest priority (the earlier position on
    /// a tie), which loses the total power. Returns the position picked.
    fn step(&mut self) -> usize {
        // RescalePriorities(2 * total).
        let window = 2 * self.total;
        let highest = self.priorities.iter().copied().max().unwrap_or(0);
        let lowest = self.priorities.iter().copied().min().unwrap_or(0);
        let difference = highest - lowest;
        if difference > window {
            let ratio = (difference + window - 1) / window;
            for priority in &mut self.priorities {
                *priority /= ratio;
            }
        }
        // shiftByAvgProposerPriority: the average truncated towards zero, as Go divides.
        let sum: i128 = self
            .priorities
            .iter()
            .map(|priority| i128::from(*priority))
            .sum();
        let count = self.priorities.len().max(1) as i128;
        let average = (sum / count) as i64;
        for priority in &mut self.priorities {
            *priority -= average;
        }
        // incrementProposerPriority.
        for (priority, power) in self.priorities.iter_mut().zip(&self.powers) {
            *priority += power;
        }
        let mut picked = 0;
        for (position, priority) in self.priorities.iter().enumerate() {
            if self
                .priorities
                .get(picked)
                .is_some_and(|best| priority > best)
            {
                picked = position;
            }
        }
        if let Some(priority) = self.priorities.get_mut(picked) {
            *priority -= self.total;
        }
        picked
    }
}

/// One period of proposers from all priorities at zero. The powers are at most
/// MAX_PROPOSER_CYCLE_POWER + MAX_VALIDATORS in total, so priorities (within a few times the
/// total) fit in i64 with room to spare.
fn proposer_schedule(validators: &[Validator]) -> Arc<[u16]> {
    let powers: Vec<i64> = proposer_powers(validators)
        .into_iter()
        .map(|power| i64::try_from(power).unwrap_or(i64::MAX))
        .collect();
    let total: i64 = powers.iter().sum();
    let mut run = Priorities {
        priorities: vec![0; powers.len()],
        powers,
        total,
    };
    let schedule: Vec<u16> = (0..total)
        .map(|_| u16::try_from(run.step()).unwrap_or(u16::MAX))
        .collect();
    // The period: after `total` steps every priority is back at zero (each validator was
    // picked exactly as often as its power), so the run repeats from here. The tests check
    // this for many sets; a set for which it failed would make the lookup wrong.
    assert!(
        run.priorities.iter().all(|priority| *priority == 0),
        "the proposer priorities did not return to zero after one period"
    );
    schedule.into()
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
    fn equal_powers_rotate_in_the_set_order_over_height_plus_round() {
        let four = set(&[1, 1, 1, 1]);
        assert_eq!(four.proposer(0, 0), id(1));
        assert_eq!(four.proposer(0, 1), id(2));
        assert_eq!(four.proposer(1, 0), id(2));
        assert_eq!(four.proposer(1, 3), id(1));
        assert_eq!(
            four.proposer(u64::MAX, u32::MAX),
            four.proposer(u64::MAX % 4 + u64::from(u32::MAX % 4), 0)
        );
        // Equal powers of any size are the same rotation.
        for power in [1, 7, 1 << 40] {
            let seven = set(&[power; 7]);
            for step in 0..30u64 {
                assert_eq!(seven.proposer(step, 0), id((step % 7) as u8 + 1));
                assert_eq!(
                    seven.proposer(3, step as u32),
                    id(((3 + step) % 7) as u8 + 1)
                );
            }
        }
    }

    fn proposals_in(set: &ValidatorSet, height: Height, rounds: u32) -> Vec<u64> {
        let mut counts = vec![0u64; set.len()];
        for round in 0..rounds {
            let proposer = set.proposer(height, round);
            counts[set.position(&proposer).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn proposers_are_chosen_in_proportion_to_power() {
        let powers = [1, 2, 3, 5, 8, 13, 21];
        let weighted = set(&powers);
        let total: u64 = powers.iter().sum();
        assert_eq!(weighted.proposer_schedule().len() as u64, total);
        // Over whole periods, from any height, exactly in proportion.
        for height in [0, 1, 52, 1_000_003] {
            let counts = proposals_in(&weighted, height, 10 * total as u32);
            let expected: Vec<u64> = powers.iter().map(|power| 10 * power).collect();
            assert_eq!(counts, expected, "height {height}");
        }
        // Over any window of a period's length, within one of the share (CometBFT's bound).
        for start in 0..total {
            let counts = proposals_in(&weighted, start, total as u32);
            for (count, power) in counts.iter().zip(powers) {
                assert!(count.abs_diff(power) <= 1, "{counts:?} from {start}");
            }
        }
    }

    #[test]
    fn a_validator_with_more_than_a_third_does_not_propose_every_round() {
        // 21 of 53 is more than a third, and 10 of 13 is more than two thirds.
        for powers in [&[1, 2, 3, 5, 8, 13, 21][..], &[1, 1, 1, 10]] {
            let weighted = set(powers);
            let heaviest = powers.len() - 1;
            let total: u64 = powers.iter().sum();
            let mut longest_run = 0;
            let mut run = 0;
            for step in 0..2 * total {
                let proposer = weighted.proposer(step, 0);
                if weighted.position(&proposer) == Some(heaviest) {
                    run += 1;
                    longest_run = longest_run.max(run);
                } else {
                    run = 0;
                }
            }
            // Its turns are spread over the period, never all in a row, and everyone else
            // proposes in every period.
            assert!(
                longest_run < powers[heaviest],
                "{powers:?}: {longest_run} in a row"
            );
            let counts = proposals_in(&weighted, 5, total as u32);
            assert!(counts.iter().all(|count| *count >= 1), "{counts:?}");
        }
    }

    #[test]
    fn the_schedule_repeats_and_is_deterministic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..200 {
            let count = 1 + (seed % 12) as usize;
            let powers: Vec<u64> = (0..count)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    1 + (seed >> 33) % 50
                })
                .collect();
            // Building the schedule asserts that it returns to zero after one period.
            let first = set(&powers);
            let second = set(&powers);
            let period = first.proposer_schedule().len() as u64;
            let reduced: u64 = first.proposer_powers().iter().sum();
            assert_eq!(period, reduced);
            for step in 0..period {
                assert_eq!(first.proposer(step, 0), second.proposer(step, 0));
                assert_eq!(first.proposer(step, 0), first.proposer(step + period, 0));
                assert_eq!(first.proposer(0, step as u32), first.proposer(step, 0));
            }
        }
    }

    #[test]
    fn large_totals_are_scaled_for_the_proposer_only() {
        let huge = set(&[1 << 50, 3 << 50, 1, 7]);
        let powers = huge.proposer_powers();
        assert!(powers.iter().sum::<u64>() <= MAX_PROPOSER_CYCLE_POWER + 4);
        assert!(powers.iter().all(|power| *power >= 1));
        // In proportion, up to the rounding of each scaled power.
        assert!(powers[1].abs_diff(3 * powers[0]) <= 3, "{powers:?}");
        // Quorums still count the exact powers.
        assert_eq!(huge.total_voting_power(), (4 << 50) + 8);
        let counts = proposals_in(&huge, 0, huge.proposer_schedule().len() as u32);
        assert_eq!(counts, powers);
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
