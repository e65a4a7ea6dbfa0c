//! Counting votes of one height: voting power per (round, vote type, value), the +2/3 and
//! +1/3 thresholds, and equivocation.

use std::collections::{BTreeMap, BTreeSet};

use crate::certificate::CommitSignature;
use crate::limits::MAX_VOTES_PER_VALIDATOR_PER_STEP;
use crate::messages::{Evidence, SignedVote, Vote};
use crate::mutants::{self, Mutant};
use crate::types::{Round, ValidatorId, VoteType};
use crate::validator_set::ValidatorSet;
use crate::value::ConsensusValue;

/// What became of a vote given to [`VoteKeeper::add_vote`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AddVoteOutcome<V> {
    /// The validator's first vote of this type in this round: counted.
    Counted,
    /// The same vote again: ignored.
    Duplicate,
    /// A second, different vote of this type in this round: counted for its value too (the
    /// paper counts messages, and an equivocator's two messages are two messages), and here
    /// is the evidence. Returned once per validator, round and type.
    Equivocation(Box<Evidence<V>>),
    /// A further different vote from a validator already caught equivocating here: counted
    /// for its value, no new evidence.
    CountedConflicting,
    /// The validator already has [`MAX_VOTES_PER_VALIDATOR_PER_STEP`] different votes of
    /// this type in this round: ignored.
    TooManyConflicting,
    /// The validator is not in the set: ignored.
    UnknownValidator,
}

/// The votes of one type in one round.
#[derive(Clone, Debug)]
struct Tally<V> {
    /// Each validator's votes, the first one first; more than one only for equivocators.
    votes: BTreeMap<ValidatorId, Vec<SignedVote<V>>>,
    /// Per value, the power of the distinct validators that voted it.
    power_by_value: BTreeMap<Option<V>, u64>,
    /// The power of the distinct validators that voted anything (each counted once).
    total_power: u64,
}

impl<V> Default for Tally<V> {
    fn default() -> Self {
        Tally {
            votes: BTreeMap::new(),
            power_by_value: BTreeMap::new(),
            total_power: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct RoundVotes<V> {
    prevotes: Tally<V>,
    precommits: Tally<V>,
    /// Validators from whom any message of this round (proposal or vote) was counted, and
    /// their power: line 55's "f+1 ⟨∗, h_p, round, ∗, ∗⟩".
    participants: BTreeSet<ValidatorId>,
    participant_power: u64,
}

impl<V> Default for RoundVotes<V> {
    fn default() -> Self {
        RoundVotes {
            prevotes: Tally::default(),
            precommits: Tally::default(),
            participants: BTreeSet::new(),
            participant_power: 0,
        }
    }
}

impl<V> RoundVotes<V> {
    fn tally(&self, vote_type: VoteType) -> &Tally<V> {
        match vote_type {
            VoteType::Prevote => &self.prevotes,
            VoteType::Precommit => &self.precommits,
        }
    }

    fn tally_mut(&mut self, vote_type: VoteType) -> &mut Tally<V> {
        match vote_type {
            VoteType::Prevote => &mut self.prevotes,
            VoteType::Precommit => &mut self.precommits,
        }
    }
}

/// The votes of one height, against one validator set. The caller checks heights, rounds
/// and signatures first; the keeper only counts. Memory is bounded by the rounds the
/// caller admits times the validators of the set.
#[derive(Clone, Debug)]
pub struct VoteKeeper<V> {
    validator_set: ValidatorSet,
    rounds: BTreeMap<Round, RoundVotes<V>>,
    /// A seeded bug in counting, for mutation testing only; `None` otherwise.
    mutant: Option<Mutant>,
}

impl<V: ConsensusValue> VoteKeeper<V> {
    /// An empty keeper for a height whose validators are `validator_set`.
    pub fn new(validator_set: ValidatorSet) -> Self {
        VoteKeeper {
            validator_set,
            rounds: BTreeMap::new(),
            mutant: None,
        }
    }

    /// Turns on a seeded counting bug (mutation testing only; see [`Mutant`]).
    pub(crate) fn set_mutant(&mut self, mutant: Option<Mutant>) {
        self.mutant = mutant;
    }

    fn is_mutant(&self, mutant: Mutant) -> bool {
        mutants::is(self.mutant, mutant)
    }

    /// The weight a validator's vote counts with: its voting power (`None` for a stranger).
    fn weight(&self, validator: &ValidatorId) -> Option<u64> {
        match self.validator_set.voting_power(validator) {
            Some(_) if self.is_mutant(Mutant::CountByNumber) => Some(1),
            Some(power) => Some(power),
            None if self.is_mutant(Mutant::AcceptNonValidator) => Some(1),
            None => None,
        }
    }

    /// Whether `weight` is more than two thirds of the set (the paper's 2f+1).
    fn is_quorum(&self, weight: u64) -> bool {
        if self.is_mutant(Mutant::HalfQuorum) {
            return u128::from(weight) * 2 > u128::from(self.validator_set.total_voting_power());
        }
        if self.is_mutant(Mutant::CountByNumber) {
            return u128::from(weight) * 3 > self.validator_set.len() as u128 * 2;
        }
        self.validator_set.is_quorum(weight)
    }

    /// The validator set votes are counted against.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.validator_set
    }

    /// Counts `vote` (already checked for height and signature by the caller).
    pub fn add_vote(&mut self, vote: SignedVote<V>) -> AddVoteOutcome<V> {
        let validator = vote.vote.validator;
        let Some(power) = self.weight(&validator) else {
            return AddVoteOutcome::UnknownValidator;
        };
        let round_votes = self.rounds.entry(vote.vote.round).or_default();
        let tally = round_votes.tally_mut(vote.vote.vote_type);
        let existing = tally.votes.entry(validator).or_default();
        if existing.iter().any(|known| known.vote == vote.vote) {
            return AddVoteOutcome::Duplicate;
        }
        if existing.len() >= MAX_VOTES_PER_VALIDATOR_PER_STEP {
            return AddVoteOutcome::TooManyConflicting;
        }
        let evidence = match existing.first() {
            Some(first) if existing.len() == 1 => Some(Evidence::ConflictingVotes {
                first: first.clone(),
                second: vote.clone(),
            }),
            _ => None,
        };
        let first_vote = existing.is_empty();
        *tally
            .power_by_value
            .entry(vote.vote.value.clone())
            .or_insert(0) += power;
        existing.push(vote);
        if first_vote {
            tally.total_power += power;
            if round_votes.participants.insert(validator) {
                round_votes.participant_power += power;
            }
            return AddVoteOutcome::Counted;
        }
        match evidence {
            Some(evidence) => AddVoteOutcome::Equivocation(Box::new(evidence)),
            None => AddVoteOutcome::CountedConflicting,
        }
    }

    /// Records that `validator` sent a (valid, signed) proposal in `round`, for line 55.
    pub fn add_participant(&mut self, round: Round, validator: ValidatorId) {
        let Some(power) = self.weight(&validator) else {
            return;
        };
        let round_votes = self.rounds.entry(round).or_default();
        if round_votes.participants.insert(validator) {
            round_votes.participant_power += power;
        }
    }

    /// The vote of `validator` of this type in this round, if counted.
    pub fn vote(
        &self,
        round: Round,
        vote_type: VoteType,
        validator: &ValidatorId,
    ) -> Option<&SignedVote<V>> {
        self.rounds
            .get(&round)?
            .tally(vote_type)
            .votes
            .get(validator)
            .and_then(|votes| votes.first())
    }

    /// Whether exactly this vote (of any validator) is already counted.
    pub fn contains(&self, vote: &Vote<V>) -> bool {
        self.rounds.get(&vote.round).is_some_and(|round_votes| {
            round_votes
                .tally(vote.vote_type)
                .votes
                .get(&vote.validator)
                .is_some_and(|votes| votes.iter().any(|known| known.vote == *vote))
        })
    }

    /// How many different votes of this type in this round are counted from `validator`.
    pub fn vote_count(&self, round: Round, vote_type: VoteType, validator: &ValidatorId) -> usize {
        self.rounds.get(&round).map_or(0, |round_votes| {
            round_votes
                .tally(vote_type)
                .votes
                .get(validator)
                .map_or(0, Vec::len)
        })
    }

    /// Whether `validator` has a counted vote of this type in this round (a vote that
    /// conflicts with it would be equivocation).
    pub fn has_voted(&self, round: Round, vote_type: VoteType, validator: &ValidatorId) -> bool {
        self.vote(round, vote_type, validator).is_some()
    }

    /// The power that voted `value` (`None`: nil) with this type in this round.
    pub fn power_for(&self, round: Round, vote_type: VoteType, value: Option<&V>) -> u64 {
        let Some(round_votes) = self.rounds.get(&round) else {
            return 0;
        };
        let tally = round_votes.tally(vote_type);
        // Looking up `Option<&V>` in a map keyed by `Option<V>` needs an owned key.
        tally
            .power_by_value
            .get(&value.cloned())
            .copied()
            .unwrap_or(0)
    }

    /// The power that voted anything (a value or nil) with this type in this round.
    pub fn total_power(&self, round: Round, vote_type: VoteType) -> u64 {
        self.rounds
            .get(&round)
            .map_or(0, |round_votes| round_votes.tally(vote_type).total_power)
    }

    /// Whether more than two thirds voted `value` (`None`: nil) with this type in this round.
    pub fn has_quorum_for(&self, round: Round, vote_type: VoteType, value: Option<&V>) -> bool {
        self.is_quorum(self.power_for(round, vote_type, value))
    }

    /// Whether more than two thirds voted anything with this type in this round
    /// (the paper's "2f+1 ⟨·, h_p, round_p, ∗⟩").
    pub fn has_quorum_of_any(&self, round: Round, vote_type: VoteType) -> bool {
        self.is_quorum(self.total_power(round, vote_type))
    }

    /// The value (or nil, as `Some(None)`) that more than two thirds voted for, if any.
    pub fn quorum_value(&self, round: Round, vote_type: VoteType) -> Option<Option<V>> {
        let round_votes = self.rounds.get(&round)?;
        round_votes
            .tally(vote_type)
            .power_by_value
            .iter()
            .find(|(_, power)| self.is_quorum(**power))
            .map(|(value, _)| value.clone())
    }

    /// Whether the validators with any message in this round hold more than a third of the
    /// power (line 55).
    pub fn has_one_third_participation(&self, round: Round) -> bool {
        self.rounds.get(&round).is_some_and(|round_votes| {
            if self.is_mutant(Mutant::SkipByCount) {
                return round_votes.participants.len() * 3 > self.validator_set.len();
            }
            self.validator_set
                .is_one_third(round_votes.participant_power)
        })
    }

    /// The votes of this type in this round for `value` (`None`: nil), ordered by validator.
    pub fn votes_for(
        &self,
        round: Round,
        vote_type: VoteType,
        value: Option<&V>,
    ) -> Vec<SignedVote<V>> {
        let Some(round_votes) = self.rounds.get(&round) else {
            return Vec::new();
        };
        round_votes
            .tally(vote_type)
            .votes
            .values()
            .flatten()
            .filter(|vote| vote.vote.value.as_ref() == value)
            .cloned()
            .collect()
    }

    /// The precommit signatures for `value` in `round`, ordered by validator id: the body of
    /// a commit certificate.
    pub fn precommit_signatures(&self, round: Round, value: &V) -> Vec<CommitSignature> {
        let Some(round_votes) = self.rounds.get(&round) else {
            return Vec::new();
        };
        round_votes
            .precommits
            .votes
            .values()
            .flatten()
            .filter(|vote| vote.vote.value.as_ref() == Some(value))
            .map(|vote| CommitSignature {
                validator: vote.vote.validator,
                signature: vote.signature,
            })
            .collect()
    }

    /// Every counted vote of `round`, prevotes then precommits, each ordered by validator.
    pub fn votes_of_round(&self, round: Round) -> impl Iterator<Item = &SignedVote<V>> {
        self.rounds.get(&round).into_iter().flat_map(|round_votes| {
            round_votes
                .prevotes
                .votes
                .values()
                .chain(round_votes.precommits.votes.values())
                .flatten()
        })
    }

    /// The rounds that have at least one counted message.
    pub fn rounds(&self) -> impl Iterator<Item = Round> + '_ {
        self.rounds.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Vote;
    use crate::signing::{InsecureTestSigner, Signer};

    type Value = [u8; 32];

    fn id(byte: u8) -> ValidatorId {
        ValidatorId([byte; 32])
    }

    fn vote(
        validator: u8,
        round: Round,
        vote_type: VoteType,
        value: Option<u8>,
    ) -> SignedVote<Value> {
        let signer = InsecureTestSigner::new(id(validator));
        let vote = Vote {
            vote_type,
            height: 1,
            round,
            value: value.map(|byte| [byte; 32]),
            validator: id(validator),
        };
        let signature = signer.sign(&vote.sign_bytes("test"));
        SignedVote { vote, signature }
    }

    fn keeper() -> VoteKeeper<Value> {
        VoteKeeper::new(ValidatorSet::with_equal_power((1..=4).map(id)).unwrap())
    }

    #[test]
    fn counts_power_per_value_and_finds_thresholds() {
        let mut keeper = keeper();
        assert_eq!(
            keeper.add_vote(vote(1, 0, VoteType::Prevote, Some(7))),
            AddVoteOutcome::Counted
        );
        assert_eq!(
            keeper.add_vote(vote(2, 0, VoteType::Prevote, Some(7))),
            AddVoteOutcome::Counted
        );
        assert!(!keeper.has_quorum_for(0, VoteType::Prevote, Some(&[7; 32])));
        assert!(keeper.has_one_third_participation(0));
        assert_eq!(
            keeper.add_vote(vote(3, 0, VoteType::Prevote, None)),
            AddVoteOutcome::Counted
        );
        assert!(keeper.has_quorum_of_any(0, VoteType::Prevote));
        assert!(!keeper.has_quorum_for(0, VoteType::Prevote, None));
        assert_eq!(keeper.quorum_value(0, VoteType::Prevote), None);
        assert_eq!(
            keeper.add_vote(vote(4, 0, VoteType::Prevote, Some(7))),
            AddVoteOutcome::Counted
        );
        assert!(keeper.has_quorum_for(0, VoteType::Prevote, Some(&[7; 32])));
        assert_eq!(
            keeper.quorum_value(0, VoteType::Prevote),
            Some(Some([7; 32]))
        );
        assert_eq!(keeper.power_for(0, VoteType::Prevote, None), 1);
        assert_eq!(keeper.total_power(0, VoteType::Precommit), 0);
        assert_eq!(
            keeper.add_vote(vote(9, 0, VoteType::Prevote, None)),
            AddVoteOutcome::UnknownValidator
        );
    }

    #[test]
    fn a_duplicate_is_ignored_and_a_conflict_is_evidence_once() {
        let mut keeper = keeper();
        let first = vote(1, 2, VoteType::Precommit, Some(1));
        assert_eq!(keeper.add_vote(first.clone()), AddVoteOutcome::Counted);
        assert_eq!(keeper.add_vote(first.clone()), AddVoteOutcome::Duplicate);
        let second = vote(1, 2, VoteType::Precommit, None);
        assert_eq!(
            keeper.add_vote(second.clone()),
            AddVoteOutcome::Equivocation(Box::new(Evidence::ConflictingVotes {
                first: first.clone(),
                second
            }))
        );
        for (value_byte, outcome) in [
            (3, AddVoteOutcome::CountedConflicting),
            (4, AddVoteOutcome::CountedConflicting),
            (5, AddVoteOutcome::TooManyConflicting),
        ] {
            assert_eq!(
                keeper.add_vote(vote(1, 2, VoteType::Precommit, Some(value_byte))),
                outcome
            );
        }
        // Each of the equivocator's messages counts for its own value, as the paper counts
        // messages; towards "any value" the validator counts once.
        assert_eq!(keeper.power_for(2, VoteType::Precommit, Some(&[1; 32])), 1);
        assert_eq!(keeper.power_for(2, VoteType::Precommit, None), 1);
        assert_eq!(keeper.power_for(2, VoteType::Precommit, Some(&[5; 32])), 0);
        assert_eq!(keeper.total_power(2, VoteType::Precommit), 1);
        assert!(keeper.contains(&vote(1, 2, VoteType::Precommit, Some(3)).vote));
        assert!(!keeper.contains(&vote(1, 2, VoteType::Precommit, Some(5)).vote));
        assert_eq!(keeper.votes_of_round(2).count(), 4);
        // A prevote and a precommit of one round are not a conflict.
        assert_eq!(
            keeper.add_vote(vote(1, 2, VoteType::Prevote, None)),
            AddVoteOutcome::Counted
        );
    }

    #[test]
    fn one_third_participation_counts_validators_once_across_kinds() {
        let mut keeper = keeper();
        keeper.add_vote(vote(1, 5, VoteType::Prevote, None));
        keeper.add_vote(vote(1, 5, VoteType::Precommit, None));
        keeper.add_participant(5, id(1));
        assert!(!keeper.has_one_third_participation(5));
        keeper.add_participant(5, id(2));
        assert!(keeper.has_one_third_participation(5));
        assert!(!keeper.has_one_third_participation(6));
    }

    #[test]
    fn precommit_signatures_are_those_for_the_value() {
        let mut keeper = keeper();
        for validator in [3, 1, 2] {
            keeper.add_vote(vote(validator, 0, VoteType::Precommit, Some(4)));
        }
        keeper.add_vote(vote(4, 0, VoteType::Precommit, None));
        let signatures = keeper.precommit_signatures(0, &[4; 32]);
        assert_eq!(
            signatures
                .iter()
                .map(|signature| signature.validator)
                .collect::<Vec<_>>(),
            vec![id(1), id(2), id(3)]
        );
        assert_eq!(keeper.votes_of_round(0).count(), 4);
        assert_eq!(keeper.rounds().collect::<Vec<_>>(), vec![0]);
    }
}
