//! The Tendermint state machine of one validator: Algorithm 1 of Buchman, Kwon and
//! Milosevic, "The latest gossip on BFT consensus" (2018). Each rule cites its line of the
//! paper as `// L22` and so on.
//!
//! The machine is pure: [`Consensus::handle`] takes one [`Input`] and returns the
//! [`Action`]s the host must perform, in order. It reads no clock, draws no random number
//! and does no IO.
//!
//! Where it departs from the paper, and why:
//! - `getValue()` and `valid(v)` are asynchronous: the machine asks with
//!   [`Action::RequestValue`] and [`Action::ValidateValue`], and the host answers with
//!   [`Input::ProposeValue`] and [`Input::ProposalVerdict`]. A rule that needs an unknown
//!   verdict waits for it; the round's timeouts still run.
//! - A proposer waiting for its value also schedules the propose timeout (line 21 schedules
//!   it only for the others), so a slow host cannot stall the round.
//! - Moving to the next height (lines 52–54) waits for [`Input::NewHeight`], because only
//!   the host knows the next validator set. A host that missed a decision (its node was
//!   down) decides through [`Input::CommitCertificate`] instead (block sync).
//! - Before signing anything the machine checks its persisted [`SigningState`]: it never
//!   signs two different messages for one height, round and step, also across restarts.
//!   The lock and the valid value are persisted with every signature, so a restarted
//!   validator keeps its lock.

use std::collections::{BTreeMap, BTreeSet};

use crate::certificate::{CommitCertificate, verify_commit_certificate};
use crate::error::ConfigError;
use crate::limits::{
    MAX_BUFFERED_MESSAGES_PER_VALIDATOR, MAX_BUFFERED_MESSAGES_TOTAL, MAX_CHAIN_ID_BYTES,
    MAX_HEIGHT_LOOKAHEAD, MAX_LOGGED_MESSAGES_PER_HEIGHT, MAX_LOGGED_ROUNDS_PER_HEIGHT,
    MAX_PROPOSALS_PER_ROUND, MAX_ROUND, MAX_ROUND_LOOKAHEAD, MAX_TIMEOUT_MS, MAX_VALUE_BYTES,
    MAX_VOTES_PER_VALIDATOR_PER_STEP,
};
use crate::messages::{Evidence, Proposal, SignedMessage, SignedProposal, SignedVote, Vote};
use crate::mutants::{self, Mutant};
use crate::signing::{SignatureVerifier, Signer};
use crate::types::{Height, Round, Step, ValidatorId, VoteType};
use crate::validator_set::ValidatorSet;
use crate::value::ConsensusValue;
use crate::vote_keeper::{AddVoteOutcome, VoteKeeper};

/// Timeouts, in milliseconds. The timeout of a step in round `r` is
/// `base + r * increment`, capped at [`MAX_TIMEOUT_MS`], so that after the network
/// stabilises the rounds eventually last long enough for a correct proposer to succeed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    pub timeout_propose_base_ms: u64,
    pub timeout_propose_increment_ms: u64,
    pub timeout_prevote_base_ms: u64,
    pub timeout_prevote_increment_ms: u64,
    pub timeout_precommit_base_ms: u64,
    pub timeout_precommit_increment_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_propose_base_ms: 3000,
            timeout_propose_increment_ms: 500,
            timeout_prevote_base_ms: 1000,
            timeout_prevote_increment_ms: 500,
            timeout_precommit_base_ms: 1000,
            timeout_precommit_increment_ms: 500,
        }
    }
}

impl Config {
    /// The duration of `step`'s timeout in `round` (the paper's `timeoutPropose(r)`,
    /// `timeoutPrevote(r)` and `timeoutPrecommit(r)`).
    pub fn timeout_ms(&self, step: Step, round: Round) -> u64 {
        let (base_ms, increment_ms) = match step {
            Step::Propose => (
                self.timeout_propose_base_ms,
                self.timeout_propose_increment_ms,
            ),
            Step::Prevote => (
                self.timeout_prevote_base_ms,
                self.timeout_prevote_increment_ms,
            ),
            Step::Precommit => (
                self.timeout_precommit_base_ms,
                self.timeout_precommit_increment_ms,
            ),
        };
        base_ms
            .saturating_add(increment_ms.saturating_mul(u64::from(round)))
            .min(MAX_TIMEOUT_MS)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (step, base_ms) in [
            ("propose", self.timeout_propose_base_ms),
            ("prevote", self.timeout_prevote_base_ms),
            ("precommit", self.timeout_precommit_base_ms),
        ] {
            if base_ms == 0 {
                return Err(ConfigError::ZeroTimeout { step });
            }
        }
        Ok(())
    }
}

/// A value with the round in which it was locked or seen valid (the paper's
/// `lockedValue`/`lockedRound` and `validValue`/`validRound`).
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoundValue<V> {
    pub round: Round,
    pub value: V,
}

/// What a validator must remember across a crash so that it never signs conflicting
/// messages and can carry on: a write-ahead log of every message it signed at its latest
/// height (the last one in `last_signed`, the earlier ones in `signed_before`), and its lock
/// and valid value at that time, with the prevotes that justify the valid value (without
/// them a restarted validator could stay locked on a value that nobody can show a quorum for
/// any more, and the height would stall).
///
/// The whole log matters, not only the last message: a validator whose last message was
/// its precommit must still re-send its prevote of that round after a restart, or, when
/// every validator restarts at once, the prevotes that others need for a quorum are gone
/// for good and the height stalls with every validator correct.
///
/// The host receives it in [`Action::PersistSigningState`] and must store it durably
/// (written and flushed) **before** it performs any later action of the same list, because
/// those broadcast the message this state records. After a restart the host builds the
/// machine with [`Consensus::restore`] from the last state it stored, and the machine sends
/// every logged message again.
///
/// Bounded: the log keeps the messages of the last [`MAX_LOGGED_ROUNDS_PER_HEIGHT`] rounds
/// signed in, at most [`MAX_LOGGED_MESSAGES_PER_HEIGHT`] in all.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SigningState<V> {
    /// The last message this validator signed.
    pub last_signed: SignedMessage<V>,
    /// The messages it signed at the same height before `last_signed`, oldest first (each
    /// for an earlier height, round and step). Absent in states written before the log
    /// existed, which read as an empty log.
    #[cfg_attr(feature = "serde", serde(default))]
    pub signed_before: Vec<SignedMessage<V>>,
    /// The lock when it was signed.
    pub locked: Option<RoundValue<V>>,
    /// The valid value when it was signed (or when it last changed).
    pub valid: Option<RoundValue<V>>,
    /// The prevotes for the valid value in its round: more than two thirds of the power.
    pub valid_round_prevotes: Vec<SignedVote<V>>,
}

impl<V> SigningState<V> {
    /// The height of the last signed message.
    pub fn height(&self) -> Height {
        self.last_signed.height()
    }

    /// The round of the last signed message.
    pub fn round(&self) -> Round {
        self.last_signed.round()
    }

    /// The step of the last signed message (a proposal is [`Step::Propose`]).
    pub fn step(&self) -> Step {
        match &self.last_signed {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(vote) => vote.vote.vote_type.into(),
        }
    }

    fn slot(&self) -> (Height, Round, Step) {
        (self.height(), self.round(), self.step())
    }

    /// Every logged message of the height, oldest first, the last signed one last.
    pub fn signed_messages(&self) -> impl Iterator<Item = &SignedMessage<V>> {
        self.signed_before
            .iter()
            .chain(std::iter::once(&self.last_signed))
    }

    /// The logged message for `slot`, if this validator signed one.
    fn signed_for(&self, slot: (Height, Round, Step)) -> Option<&SignedMessage<V>> {
        self.signed_messages()
            .find(|message| message_slot(message) == slot)
    }

    /// Why this state cannot be restored, if it is malformed: messages of another signer or
    /// height in the log, slots out of order, or more than the bound.
    fn defect(&self) -> Option<&'static str> {
        let signer = self.last_signed.signer();
        let height = self.height();
        if self.signed_before.len() >= MAX_LOGGED_MESSAGES_PER_HEIGHT {
            return Some("the log holds more messages than a height may keep");
        }
        let mut previous: Option<(Height, Round, Step)> = None;
        for message in self.signed_messages() {
            if message.signer() != signer {
                return Some("the log holds messages of another signer");
            }
            if message.height() != height {
                return Some("the log holds messages of another height");
            }
            let slot = message_slot(message);
            if previous.is_some_and(|previous| previous >= slot) {
                return Some("the log's messages are not in the order they were signed");
            }
            previous = Some(slot);
        }
        None
    }
}

/// The (height, round, step) a signed message occupies; a proposal is [`Step::Propose`].
fn message_slot<V>(message: &SignedMessage<V>) -> (Height, Round, Step) {
    let step = match message {
        SignedMessage::Proposal(_) => Step::Propose,
        SignedMessage::Vote(vote) => vote.vote.vote_type.into(),
    };
    (message.height(), message.round(), step)
}

/// What the host feeds the state machine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Input<V> {
    /// Start `height` with its validators. Feed it first, and after each decision (or a
    /// restart) with the next height. Buffered messages for `height` are processed then.
    NewHeight {
        height: Height,
        validator_set: ValidatorSet,
    },
    /// A proposal received from the network (its signature is checked here).
    Proposal(SignedProposal<V>),
    /// A vote received from the network (its signature is checked here).
    Vote(SignedVote<V>),
    /// A timeout the machine scheduled with [`Action::ScheduleTimeout`] has expired.
    Timeout {
        height: Height,
        round: Round,
        step: Step,
    },
    /// The value to propose, answering [`Action::RequestValue`] (the paper's `getValue()`).
    ProposeValue {
        height: Height,
        round: Round,
        value: V,
    },
    /// The application's verdict on a proposed value, answering [`Action::ValidateValue`]
    /// (the paper's `valid(v)`). The first verdict for a value at a height is final.
    ProposalVerdict {
        height: Height,
        value: V,
        valid: bool,
    },
    /// A commit certificate obtained by block sync for the current height: checked against
    /// the height's validator set, and if it holds, the height is decided.
    CommitCertificate(CommitCertificate<V>),
}

/// What the state machine asks the host to do, in the order given.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action<V> {
    /// Store this state durably before performing any later action of the same list (they
    /// broadcast the message it records). Keep only the latest.
    PersistSigningState(SigningState<V>),
    /// Send this proposal to every validator (the machine already counts it itself).
    BroadcastProposal(SignedProposal<V>),
    /// Send this vote to every validator (the machine already counts it itself).
    BroadcastVote(SignedVote<V>),
    /// After `duration_ms`, feed back [`Input::Timeout`] with the same height, round and
    /// step. Timeouts are never cancelled: a stale one is ignored when it fires.
    ScheduleTimeout {
        height: Height,
        round: Round,
        step: Step,
        duration_ms: u64,
    },
    /// This validator proposes in `round`: feed back [`Input::ProposeValue`] with the value
    /// (for the node, the hash of a block it built).
    RequestValue { height: Height, round: Round },
    /// Check whether `value` may be decided at `height` (for the node, whether the block is
    /// valid) and feed back [`Input::ProposalVerdict`]. Asked once per value and height.
    ValidateValue { height: Height, value: V },
    /// The height is decided: the certificate carries the height, round, value and the
    /// precommits that prove it. Then feed [`Input::NewHeight`] for the next height.
    Decide { certificate: CommitCertificate<V> },
    /// A validator equivocated: record the evidence (on the ledger).
    Evidence(Evidence<V>),
}

/// Counts of messages the machine refused, and of other notable events, for metrics.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Messages for a height below the current one.
    pub stale: u64,
    /// Messages for a height or round beyond the lookahead limits.
    pub far_ahead: u64,
    /// Of those, messages of the current height more than [`MAX_ROUND_LOOKAHEAD`] rounds
    /// ahead of the current round (the future-round window). A correct validator that far
    /// ahead is joined by round skipping instead (line 55).
    pub beyond_round_window: u64,
    /// Messages signed by a validator not in the set.
    pub unknown_validator: u64,
    /// Messages whose signature did not verify.
    pub bad_signature: u64,
    /// Proposals by someone other than the round's proposer.
    pub wrong_proposer: u64,
    /// Messages that break the format's rules (a valid round not below the round, a value
    /// too long).
    pub malformed: u64,
    /// Future messages dropped because the buffer was full.
    pub buffer_full: u64,
    /// Copies of messages already held.
    pub duplicate: u64,
    /// Conflicting proposals of a round beyond [`MAX_PROPOSALS_PER_ROUND`], dropped.
    pub excess_proposals: u64,
    /// Messages received before the first height started.
    pub before_start: u64,
    /// Messages of the current height received after it was decided.
    pub after_decision: u64,
    /// Equivocations detected (each reported once as [`Action::Evidence`]).
    pub equivocations: u64,
    /// Certificates given by the host that did not verify.
    pub bad_certificates: u64,
    /// Times the machine declined to sign because it had already signed for that slot (or a
    /// later one) before a restart.
    pub signing_refused: u64,
}

#[derive(Clone, Debug)]
struct HeightState<V> {
    height: Height,
    round: Round,
    step: Step,
    locked: Option<RoundValue<V>>,
    valid: Option<RoundValue<V>>,
    decision: Option<CommitCertificate<V>>,
    votes: VoteKeeper<V>,
    /// The proposals of each round from its proposer, in the order received: the first one,
    /// and conflicting ones (evidence, and candidates too), at most
    /// [`MAX_PROPOSALS_PER_ROUND`].
    proposals: BTreeMap<Round, Vec<SignedProposal<V>>>,
    conflicting_proposals_reported: BTreeSet<Round>,
    verdicts: BTreeMap<V, bool>,
    validation_requested: BTreeSet<V>,
    // The paper's "for the first time" conditions of the current round.
    prevote_timeout_scheduled: bool,
    precommit_timeout_scheduled: bool,
    line_36_done: bool,
    value_requested: bool,
}

impl<V: ConsensusValue> HeightState<V> {
    fn validator_set(&self) -> &ValidatorSet {
        self.votes.validator_set()
    }

    /// The value and valid round of every proposal kept for `round`, in the order received.
    fn proposal_values(&self, round: Round) -> impl Iterator<Item = (&V, Option<Round>)> {
        self.proposals
            .get(&round)
            .into_iter()
            .flatten()
            .map(|signed| (&signed.proposal.value, signed.proposal.valid_round))
    }

    /// The value of a proposal kept for `round` that is valid and has a quorum of `vote_type`
    /// votes, if any (lines 36 and 49 fire on any proposal of the round, not only the first).
    fn valid_proposal_with_quorum(&self, round: Round, vote_type: VoteType) -> Option<V> {
        self.proposal_values(round)
            .map(|(value, _)| value)
            .find(|value| {
                self.verdict(value) == Some(true)
                    && self.votes.has_quorum_for(round, vote_type, Some(*value))
            })
            .cloned()
    }

    fn has_proposal(&self, round: Round) -> bool {
        self.proposals
            .get(&round)
            .is_some_and(|proposals| !proposals.is_empty())
    }

    /// Keeps `proposal` (one this validator signed) as a proposal of its round.
    fn keep_own_proposal(&mut self, proposal: SignedProposal<V>) {
        let kept = self.proposals.entry(proposal.proposal.round).or_default();
        if !kept.contains(&proposal) {
            kept.push(proposal);
        }
    }

    fn verdict(&self, value: &V) -> Option<bool> {
        self.verdicts.get(value).copied()
    }
}

/// Future-height messages, bounded per validator and in total (see [`crate::limits`]).
#[derive(Clone, Debug)]
struct FutureBuffer<V> {
    by_height: BTreeMap<Height, BTreeSet<SignedMessage<V>>>,
    count_by_validator: BTreeMap<ValidatorId, usize>,
    count_total: usize,
}

impl<V: ConsensusValue> FutureBuffer<V> {
    fn new() -> Self {
        FutureBuffer {
            by_height: BTreeMap::new(),
            count_by_validator: BTreeMap::new(),
            count_total: 0,
        }
    }

    fn contains(&self, message: &SignedMessage<V>) -> bool {
        self.by_height
            .get(&message.height())
            .is_some_and(|messages| messages.contains(message))
    }

    fn has_room_for(&self, validator: &ValidatorId) -> bool {
        self.count_total < MAX_BUFFERED_MESSAGES_TOTAL
            && self.count_by_validator.get(validator).copied().unwrap_or(0)
                < MAX_BUFFERED_MESSAGES_PER_VALIDATOR
    }

    fn insert(&mut self, message: SignedMessage<V>) {
        let signer = message.signer();
        if self
            .by_height
            .entry(message.height())
            .or_default()
            .insert(message)
        {
            *self.count_by_validator.entry(signer).or_insert(0) += 1;
            self.count_total += 1;
        }
    }

    /// Removes every message of `height` and below; returns those of `height`.
    fn take_up_to(&mut self, height: Height) -> Vec<SignedMessage<V>> {
        let later = match height.checked_add(1) {
            Some(next) => self.by_height.split_off(&next),
            None => BTreeMap::new(),
        };
        let removed = std::mem::replace(&mut self.by_height, later);
        let mut taken = Vec::new();
        for (message_height, messages) in removed {
            for message in messages {
                let signer = message.signer();
                if let Some(count) = self.count_by_validator.get_mut(&signer) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.count_by_validator.remove(&signer);
                    }
                }
                self.count_total = self.count_total.saturating_sub(1);
                if message_height == height {
                    taken.push(message);
                }
            }
        }
        taken
    }
}

enum Permission<'a, V> {
    Sign,
    Resend(&'a SignedMessage<V>),
    Refuse,
}

/// One validator's Tendermint state machine. See the module documentation.
#[derive(Debug)]
pub struct Consensus<V, S, C> {
    config: Config,
    chain_id: String,
    signer: S,
    verifier: C,
    id: ValidatorId,
    signing_state: Option<SigningState<V>>,
    state: Option<HeightState<V>>,
    buffer: FutureBuffer<V>,
    counters: Counters,
    lock_rule_ignored: bool,
    /// A seeded bug, for mutation testing only (`mutants` feature); `None` otherwise.
    mutant: Option<Mutant>,
}

impl<V: ConsensusValue, S: Signer, C: SignatureVerifier> Consensus<V, S, C> {
    /// A validator that has never signed anything on this chain. Feed
    /// [`Input::NewHeight`] to start.
    pub fn new(
        config: Config,
        chain_id: impl Into<String>,
        signer: S,
        verifier: C,
    ) -> Result<Self, ConfigError> {
        let chain_id = chain_id.into();
        if chain_id.is_empty() || chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(ConfigError::ChainIdLength {
                length_bytes: chain_id.len(),
                max_bytes: MAX_CHAIN_ID_BYTES,
            });
        }
        config.check()?;
        let id = signer.id();
        Ok(Consensus {
            config,
            chain_id,
            signer,
            verifier,
            id,
            signing_state: None,
            state: None,
            buffer: FutureBuffer::new(),
            counters: Counters::default(),
            lock_rule_ignored: false,
            mutant: None,
        })
    }

    /// A validator restarting after a crash, from the last [`SigningState`] it persisted.
    /// It will not sign anything that conflicts with what it signed before. Feed
    /// [`Input::NewHeight`] for the height after the last one the node committed; if that
    /// is the height of the signing state, the validator rejoins in the round it had
    /// reached, with its lock, and sends its last message again.
    pub fn restore(
        config: Config,
        chain_id: impl Into<String>,
        signer: S,
        verifier: C,
        signing_state: SigningState<V>,
    ) -> Result<Self, ConfigError> {
        let mut consensus = Self::new(config, chain_id, signer, verifier)?;
        let found = signing_state.last_signed.signer();
        if found != consensus.id {
            return Err(ConfigError::ForeignSigningState {
                expected: consensus.id,
                found,
            });
        }
        if let Some(reason) = signing_state.defect() {
            return Err(ConfigError::MalformedSigningState { reason });
        }
        consensus.signing_state = Some(signing_state);
        Ok(consensus)
    }

    /// Makes this validator forget its lock: it prevotes as if it held none (lines 23 and
    /// 29 without their lock condition) and, as proposer, proposes a new value instead of
    /// its valid value (lines 15–16). A deliberately broken validator, for the simulation to
    /// show that its checks catch the forks this causes. Never use it outside tests.
    #[cfg(any(test, feature = "sim"))]
    pub fn ignore_lock_rule_for_fault_injection(&mut self) {
        self.lock_rule_ignored = true;
    }

    /// Turns on one seeded bug (see [`Mutant`]), for the simulation to show that it catches
    /// it. Only with the `mutants` feature, which is never enabled by default; never use it
    /// outside mutation testing.
    #[cfg(feature = "mutants")]
    pub fn inject_mutant(&mut self, mutant: Mutant) {
        self.mutant = Some(mutant);
        if let Some(state) = self.state.as_mut() {
            state.votes.set_mutant(self.mutant);
        }
    }

    fn is_mutant(&self, mutant: Mutant) -> bool {
        mutants::is(self.mutant, mutant)
    }

    /// This validator's id.
    pub fn id(&self) -> ValidatorId {
        self.id
    }

    /// The chain id that goes into every sign bytes.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The current height, round and step, once a height has started.
    pub fn position(&self) -> Option<(Height, Round, Step)> {
        self.state
            .as_ref()
            .map(|state| (state.height, state.round, state.step))
    }

    /// The decision of the current height, if made.
    pub fn decision(&self) -> Option<&CommitCertificate<V>> {
        self.state
            .as_ref()
            .and_then(|state| state.decision.as_ref())
    }

    /// The lock (`lockedValue`, `lockedRound`) of the current height.
    pub fn locked(&self) -> Option<&RoundValue<V>> {
        self.state.as_ref().and_then(|state| state.locked.as_ref())
    }

    /// The valid value (`validValue`, `validRound`) of the current height.
    pub fn valid(&self) -> Option<&RoundValue<V>> {
        self.state.as_ref().and_then(|state| state.valid.as_ref())
    }

    /// The last signing state handed out for persistence (or given to
    /// [`Consensus::restore`]).
    pub fn signing_state(&self) -> Option<&SigningState<V>> {
        self.signing_state.as_ref()
    }

    /// Counts of refused messages and notable events.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The messages worth sending again to peers that may have missed them: for the
    /// current height, the proposals and votes of the current and the previous round, and
    /// the prevotes that justify the current proposal's valid round; once decided, the
    /// decided proposal and its precommits. Bounded by three rounds of the set's messages.
    /// The host sends them when its validator seems stuck (nothing new for a while).
    pub fn gossip_messages(&self) -> Vec<SignedMessage<V>> {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        if let Some(decision) = &state.decision {
            if let Some(proposal) = state
                .proposals
                .get(&decision.round)
                .into_iter()
                .flatten()
                .find(|proposal| proposal.proposal.value == decision.value)
            {
                messages.push(SignedMessage::Proposal(proposal.clone()));
            }
            messages.extend(decision.precommits().into_iter().map(SignedMessage::Vote));
            return messages;
        }
        let mut rounds = vec![state.round];
        if let Some(previous) = state.round.checked_sub(1) {
            rounds.push(previous);
        }
        for (_, valid_round) in state.proposal_values(state.round) {
            if let Some(valid_round) = valid_round
                && !rounds.contains(&valid_round)
            {
                rounds.push(valid_round);
            }
        }
        for round in rounds {
            for proposal in state.proposals.get(&round).into_iter().flatten() {
                messages.push(SignedMessage::Proposal(proposal.clone()));
            }
            messages.extend(
                state
                    .votes
                    .votes_of_round(round)
                    .cloned()
                    .map(SignedMessage::Vote),
            );
        }
        messages
    }

    /// Feeds one input and returns the actions the host must perform, in order.
    pub fn handle(&mut self, input: Input<V>) -> Vec<Action<V>> {
        let mut actions = Vec::new();
        match input {
            Input::NewHeight {
                height,
                validator_set,
            } => self.on_new_height(height, validator_set, &mut actions),
            Input::Proposal(proposal) => self.on_proposal(proposal, false, &mut actions),
            Input::Vote(vote) => self.on_vote(vote, false, &mut actions),
            Input::Timeout {
                height,
                round,
                step,
            } => self.on_timeout(height, round, step, &mut actions),
            Input::ProposeValue {
                height,
                round,
                value,
            } => self.on_propose_value(height, round, value, &mut actions),
            Input::ProposalVerdict {
                height,
                value,
                valid,
            } => self.on_verdict(height, value, valid, &mut actions),
            Input::CommitCertificate(certificate) => self.on_certificate(certificate, &mut actions),
        }
        actions
    }

    // ----- inputs -----

    fn on_new_height(
        &mut self,
        height: Height,
        validator_set: ValidatorSet,
        actions: &mut Vec<Action<V>>,
    ) {
        if let Some(state) = &self.state
            && height <= state.height
        {
            // The host moves forward only; an old or repeated height changes nothing.
            return;
        }
        let mut votes = VoteKeeper::new(validator_set);
        votes.set_mutant(self.mutant);
        let mut state = HeightState {
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            decision: None,
            votes,
            proposals: BTreeMap::new(),
            conflicting_proposals_reported: BTreeSet::new(),
            verdicts: BTreeMap::new(),
            validation_requested: BTreeSet::new(),
            prevote_timeout_scheduled: false,
            precommit_timeout_scheduled: false,
            line_36_done: false,
            value_requested: false,
        };
        let mut start_round = 0;
        let mut logged = Vec::new();
        if let Some(signing_state) = self
            .signing_state
            .as_ref()
            .filter(|signing| signing.height() == height)
        {
            // Recovery: rejoin the round we had reached, with the lock we held and the
            // prevotes that justify our valid value (checked when they first arrived).
            if !self.is_mutant(Mutant::ForgetLockOnRestart) {
                state.locked = signing_state.locked.clone();
            }
            state.valid = signing_state.valid.clone();
            for prevote in &signing_state.valid_round_prevotes {
                state.votes.add_vote(prevote.clone());
            }
            start_round = signing_state.round();
            logged = signing_state.signed_messages().cloned().collect();
        }
        self.state = Some(state);
        self.start_round(start_round, actions);
        // Every message of the write-ahead log goes out again, and counts as our own: the
        // peers that held them may have restarted too.
        for message in logged {
            self.resend_logged(message, start_round, actions);
        }
        for message in self.buffer.take_up_to(height) {
            match message {
                SignedMessage::Proposal(proposal) => self.on_proposal(proposal, true, actions),
                SignedMessage::Vote(vote) => self.on_vote(vote, true, actions),
            }
        }
        self.run_rules(&[], actions);
    }

    /// Sends a message of the write-ahead log again after a restart and counts it as
    /// received. The proposal of the round we rejoin is sent by `start_round` already.
    fn resend_logged(
        &mut self,
        message: SignedMessage<V>,
        start_round: Round,
        actions: &mut Vec<Action<V>>,
    ) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match message {
            SignedMessage::Proposal(proposal) => {
                let round = proposal.proposal.round;
                if round == start_round || state.has_proposal(round) {
                    return;
                }
                state
                    .verdicts
                    .entry(proposal.proposal.value.clone())
                    .or_insert(true);
                state.votes.add_participant(round, self.id);
                state.keep_own_proposal(proposal.clone());
                actions.push(Action::BroadcastProposal(proposal));
            }
            SignedMessage::Vote(vote) => {
                if vote.vote.round == start_round {
                    state.step = state.step.max(vote.vote.vote_type.into());
                }
                state.votes.add_vote(vote.clone());
                actions.push(Action::BroadcastVote(vote));
            }
        }
    }

    fn on_proposal(
        &mut self,
        signed: SignedProposal<V>,
        signature_checked: bool,
        actions: &mut Vec<Action<V>>,
    ) {
        let Some(state) = self.state.as_ref() else {
            self.counters.before_start += 1;
            return;
        };
        let proposal = &signed.proposal;
        if proposal.height < state.height {
            self.counters.stale += 1;
            return;
        }
        if proposal.height > state.height {
            self.buffer_future(SignedMessage::Proposal(signed), signature_checked);
            return;
        }
        if state.decision.is_some() {
            self.counters.after_decision += 1;
            return;
        }
        if proposal.round > state.round.saturating_add(MAX_ROUND_LOOKAHEAD) {
            self.counters.far_ahead += 1;
            self.counters.beyond_round_window += 1;
            return;
        }
        if proposal.proposer != state.validator_set().proposer(state.height, proposal.round) {
            self.counters.wrong_proposer += 1;
            return;
        }
        if proposal
            .valid_round
            .is_some_and(|valid_round| valid_round >= proposal.round)
            || proposal.value.canonical_bytes().len() > MAX_VALUE_BYTES
        {
            self.counters.malformed += 1;
            return;
        }
        let round = proposal.round;
        let kept = state.proposals.get(&round).map_or(&[][..], Vec::as_slice);
        if kept.iter().any(|existing| existing.proposal == *proposal) {
            self.counters.duplicate += 1;
            return;
        }
        if kept.len() >= MAX_PROPOSALS_PER_ROUND {
            self.counters.excess_proposals += 1;
            return;
        }
        if !signature_checked && !signed.verify_signature(&self.chain_id, &self.verifier) {
            self.counters.bad_signature += 1;
            return;
        }
        // A second proposal of the round is equivocation evidence (reported once per round)
        // and, like the first, a candidate: lines 36 and 49 fire for whichever value has the
        // quorum.
        let evidence = match kept.first() {
            Some(first) if !state.conflicting_proposals_reported.contains(&round) => {
                Some(Evidence::ConflictingProposals {
                    first: first.clone(),
                    second: signed.clone(),
                })
            }
            _ => None,
        };
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if let Some(evidence) = evidence {
            state.conflicting_proposals_reported.insert(round);
            self.counters.equivocations += 1;
            actions.push(Action::Evidence(evidence));
        }
        let value = signed.proposal.value.clone();
        state.votes.add_participant(round, signed.proposal.proposer);
        state.proposals.entry(round).or_default().push(signed);
        if state.verdict(&value).is_none() && state.validation_requested.insert(value.clone()) {
            actions.push(Action::ValidateValue {
                height: state.height,
                value,
            });
        }
        self.run_rules(&[round], actions);
    }

    fn on_vote(
        &mut self,
        signed: SignedVote<V>,
        signature_checked: bool,
        actions: &mut Vec<Action<V>>,
    ) {
        let Some(state) = self.state.as_ref() else {
            self.counters.before_start += 1;
            return;
        };
        let vote = &signed.vote;
        if vote.height < state.height {
            self.counters.stale += 1;
            return;
        }
        if vote.height > state.height {
            self.buffer_future(SignedMessage::Vote(signed), signature_checked);
            return;
        }
        if state.decision.is_some() {
            self.counters.after_decision += 1;
            return;
        }
        if vote.round > state.round.saturating_add(MAX_ROUND_LOOKAHEAD) {
            self.counters.far_ahead += 1;
            self.counters.beyond_round_window += 1;
            return;
        }
        if !state.validator_set().contains(&vote.validator)
            && !self.is_mutant(Mutant::AcceptNonValidator)
        {
            self.counters.unknown_validator += 1;
            return;
        }
        if vote
            .value
            .as_ref()
            .is_some_and(|value| value.canonical_bytes().len() > MAX_VALUE_BYTES)
        {
            self.counters.malformed += 1;
            return;
        }
        // A copy costs no signature check; a conflicting vote is checked below, since only a
        // genuinely signed one counts or is evidence.
        if state.votes.contains(vote)
            || state
                .votes
                .vote_count(vote.round, vote.vote_type, &vote.validator)
                >= MAX_VOTES_PER_VALIDATOR_PER_STEP
        {
            self.counters.duplicate += 1;
            return;
        }
        if !signature_checked && !signed.verify_signature(&self.chain_id, &self.verifier) {
            self.counters.bad_signature += 1;
            return;
        }
        let round = signed.vote.round;
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match state.votes.add_vote(signed) {
            AddVoteOutcome::Counted | AddVoteOutcome::CountedConflicting => {
                self.run_rules(&[round], actions)
            }
            AddVoteOutcome::Equivocation(evidence) => {
                self.counters.equivocations += 1;
                actions.push(Action::Evidence(*evidence));
                self.run_rules(&[round], actions);
            }
            AddVoteOutcome::Duplicate | AddVoteOutcome::TooManyConflicting => {
                self.counters.duplicate += 1
            }
            AddVoteOutcome::UnknownValidator => self.counters.unknown_validator += 1,
        }
    }

    fn buffer_future(&mut self, message: SignedMessage<V>, signature_checked: bool) {
        let Some(state) = self.state.as_ref() else {
            self.counters.before_start += 1;
            return;
        };
        if message.height() > state.height.saturating_add(MAX_HEIGHT_LOOKAHEAD)
            || message.round() > MAX_ROUND_LOOKAHEAD
        {
            self.counters.far_ahead += 1;
            return;
        }
        let signer = message.signer();
        // The next heights' sets are not known yet; the current one is the best guess, and
        // it keeps strangers from filling the buffer.
        if !state.validator_set().contains(&signer) {
            self.counters.unknown_validator += 1;
            return;
        }
        if self.buffer.contains(&message) {
            self.counters.duplicate += 1;
            return;
        }
        if !self.buffer.has_room_for(&signer) {
            self.counters.buffer_full += 1;
            return;
        }
        let authentic = signature_checked
            || match &message {
                SignedMessage::Proposal(proposal) => {
                    proposal.verify_signature(&self.chain_id, &self.verifier)
                }
                SignedMessage::Vote(vote) => vote.verify_signature(&self.chain_id, &self.verifier),
            };
        if !authentic {
            self.counters.bad_signature += 1;
            return;
        }
        self.buffer.insert(message);
    }

    fn on_timeout(
        &mut self,
        height: Height,
        round: Round,
        step: Step,
        actions: &mut Vec<Action<V>>,
    ) {
        let Some(state) = self.state.as_ref() else {
            return;
        };
        if height != state.height || round != state.round || state.decision.is_some() {
            return;
        }
        match step {
            // L57: OnTimeoutPropose(h, r): if step = propose, prevote nil.
            Step::Propose if state.step == Step::Propose => {
                self.vote(VoteType::Prevote, None, actions);
                self.set_step(Step::Prevote);
            }
            // L61: OnTimeoutPrevote(h, r): if step = prevote, precommit nil.
            Step::Prevote if state.step == Step::Prevote => {
                self.vote(VoteType::Precommit, None, actions);
                self.set_step(Step::Precommit);
            }
            // L65: OnTimeoutPrecommit(h, r): StartRound(r + 1).
            Step::Precommit => {
                if round < MAX_ROUND {
                    self.start_round(round + 1, actions);
                }
            }
            Step::Propose | Step::Prevote => return,
        }
        self.run_rules(&[], actions);
    }

    fn on_propose_value(
        &mut self,
        height: Height,
        round: Round,
        value: V,
        actions: &mut Vec<Action<V>>,
    ) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let expected = height == state.height
            && round == state.round
            && state.step == Step::Propose
            && state.value_requested
            && state.decision.is_none()
            && !state.has_proposal(round);
        if !expected {
            return;
        }
        if value.canonical_bytes().len() > MAX_VALUE_BYTES {
            self.counters.malformed += 1;
            return;
        }
        state.value_requested = false;
        // The host built this value itself: it is valid by construction.
        state.verdicts.entry(value.clone()).or_insert(true);
        // L19: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩ (validRound_p = -1).
        self.propose(value, None, actions);
        self.run_rules(&[], actions);
    }

    fn on_verdict(&mut self, height: Height, value: V, valid: bool, actions: &mut Vec<Action<V>>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if height != state.height || state.verdicts.contains_key(&value) {
            return;
        }
        state.verdicts.insert(value.clone(), valid);
        let rounds: Vec<Round> = state
            .proposals
            .iter()
            .filter(|(_, proposals)| {
                proposals
                    .iter()
                    .any(|proposal| proposal.proposal.value == value)
            })
            .map(|(round, _)| *round)
            .collect();
        self.run_rules(&rounds, actions);
    }

    fn on_certificate(&mut self, certificate: CommitCertificate<V>, actions: &mut Vec<Action<V>>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if certificate.height != state.height || state.decision.is_some() {
            return;
        }
        if verify_commit_certificate(
            &certificate,
            state.validator_set(),
            &self.chain_id,
            &self.verifier,
        )
        .is_err()
        {
            self.counters.bad_certificates += 1;
            return;
        }
        state.decision = Some(certificate.clone());
        actions.push(Action::Decide { certificate });
    }

    // ----- Algorithm 1 -----

    /// L11–L21: StartRound(round).
    fn start_round(&mut self, round: Round, actions: &mut Vec<Action<V>>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        // L11–L12: round_p ← round; step_p ← propose.
        state.round = round;
        state.step = Step::Propose;
        state.prevote_timeout_scheduled = false;
        state.precommit_timeout_scheduled = false;
        state.line_36_done = false;
        state.value_requested = false;
        let height = state.height;
        // L14: if proposer(h_p, round_p) = p.
        if state.validator_set().proposer(height, round) == self.id {
            let resend = match self
                .signing_state
                .as_ref()
                .and_then(|signing| signing.signed_for((height, round, Step::Propose)))
            {
                Some(SignedMessage::Proposal(proposal)) => Some(proposal.clone()),
                _ => None,
            };
            if let Some(proposal) = resend {
                // We proposed in this round before a restart: send that proposal again,
                // never a different one.
                state
                    .verdicts
                    .entry(proposal.proposal.value.clone())
                    .or_insert(true);
                state.votes.add_participant(round, self.id);
                state.keep_own_proposal(proposal.clone());
                actions.push(Action::BroadcastProposal(proposal));
            } else if let Some(valid) = state.valid.clone().filter(|_| !self.lock_rule_ignored) {
                // L15–L16: proposal ← validValue_p, with validRound_p; L19: broadcast it.
                self.propose(valid.value, Some(valid.round), actions);
            } else {
                // L17–L18: proposal ← getValue(), asked of the host.
                state.value_requested = true;
                actions.push(Action::RequestValue { height, round });
                // Not in the paper (see the module documentation): a proposer whose host
                // does not answer still leaves the propose step.
                actions.push(self.timeout_action(height, round, Step::Propose));
            }
        } else {
            // L21: schedule OnTimeoutPropose(h_p, round_p) after timeoutPropose(round_p).
            actions.push(self.timeout_action(height, round, Step::Propose));
        }
    }

    /// Evaluates the `upon` rules until none fires. `touched` are the rounds whose messages
    /// just changed (for lines 49 and 55, which look beyond the current round).
    fn run_rules(&mut self, touched: &[Round], actions: &mut Vec<Action<V>>) {
        for round in touched {
            if self.try_decide(*round, actions) {
                return;
            }
        }
        // L55: upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p: StartRound(round).
        let skip_to = self.state.as_ref().and_then(|state| {
            touched
                .iter()
                .copied()
                .filter(|round| {
                    *round > state.round && state.votes.has_one_third_participation(*round)
                })
                .max()
        });
        if let Some(round) = skip_to {
            self.start_round(round, actions);
        }
        loop {
            let Some(round) = self
                .state
                .as_ref()
                .filter(|state| state.decision.is_none())
                .map(|state| state.round)
            else {
                return;
            };
            if self.try_decide(round, actions) {
                return;
            }
            let fired = self.line_22(actions)
                || self.line_28(actions)
                || self.line_34(actions)
                || self.line_36(actions)
                || self.line_44(actions)
                || self.line_47(actions);
            if !fired {
                return;
            }
        }
    }

    /// L22: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p) while
    /// step_p = propose.
    fn line_22(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_ref() else {
            return false;
        };
        if state.step != Step::Propose {
            return false;
        }
        // Any proposal of the round with no valid round, in the order received; one whose
        // verdict is awaited does not hold up a later one that can fire.
        let mut choice = None;
        for (value, valid_round) in state.proposal_values(state.round) {
            if valid_round.is_some() {
                continue;
            }
            // L23: if valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v). When the lock
            // already forbids v the verdict cannot change the outcome, so it is not awaited.
            let lock_allows = self.lock_rule_ignored
                || self.is_mutant(Mutant::Line23IgnoresLock)
                || state
                    .locked
                    .as_ref()
                    .is_none_or(|locked| locked.value == *value);
            let valid = match state.verdict(value) {
                Some(valid) => valid,
                None if lock_allows => continue,
                None => false,
            };
            choice = Some((valid && lock_allows).then(|| value.clone()));
            break;
        }
        let Some(choice) = choice else {
            return false;
        };
        // L24 prevote id(v), or L26 prevote nil; L27: step_p ← prevote.
        self.vote(VoteType::Prevote, choice, actions);
        self.set_step(Step::Prevote);
        true
    }

    /// L28: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) AND
    /// 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p).
    fn line_28(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_ref() else {
            return false;
        };
        if state.step != Step::Propose {
            return false;
        }
        let mut choice = None;
        for (value, valid_round) in state.proposal_values(state.round) {
            let Some(valid_round) = valid_round else {
                continue;
            };
            if valid_round >= state.round
                || !state
                    .votes
                    .has_quorum_for(valid_round, VoteType::Prevote, Some(value))
            {
                continue;
            }
            // L29: if valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v); as on line 23,
            // the verdict is not awaited when the lock already forbids v.
            let lock_allows = self.lock_rule_ignored
                || self.is_mutant(Mutant::Line29IgnoresLock)
                || state
                    .locked
                    .as_ref()
                    .is_none_or(|locked| locked.round <= valid_round || locked.value == *value);
            let valid = match state.verdict(value) {
                Some(valid) => valid,
                None if lock_allows => continue,
                None => false,
            };
            choice = Some((valid && lock_allows).then(|| value.clone()));
            break;
        }
        let Some(choice) = choice else {
            return false;
        };
        // L30 prevote id(v), or L32 prevote nil; L33: step_p ← prevote.
        self.vote(VoteType::Prevote, choice, actions);
        self.set_step(Step::Prevote);
        true
    }

    /// L34: upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the first time.
    fn line_34(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_mut() else {
            return false;
        };
        if state.step != Step::Prevote
            || state.prevote_timeout_scheduled
            || !state
                .votes
                .has_quorum_of_any(state.round, VoteType::Prevote)
        {
            return false;
        }
        state.prevote_timeout_scheduled = true;
        let (height, round) = (state.height, state.round);
        // L35: schedule OnTimeoutPrevote(h_p, round_p) after timeoutPrevote(round_p).
        actions.push(self.timeout_action(height, round, Step::Prevote));
        true
    }

    /// L36: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) AND
    /// 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote for the
    /// first time.
    fn line_36(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_mut() else {
            return false;
        };
        if state.step < Step::Prevote || state.line_36_done {
            return false;
        }
        let (height, round) = (state.height, state.round);
        // Any proposal of the round: the one whose value has the polka.
        let Some(value) = state.valid_proposal_with_quorum(round, VoteType::Prevote) else {
            return false;
        };
        state.line_36_done = true;
        // L42–L43: validValue_p ← v; validRound_p ← round_p (set before signing, so that
        // the persisted signing state carries it).
        state.valid = Some(RoundValue {
            round,
            value: value.clone(),
        });
        // L37: if step_p = prevote.
        if state.step == Step::Prevote {
            // L38–L39: lockedValue_p ← v; lockedRound_p ← round_p.
            state.locked = Some(RoundValue {
                round,
                value: value.clone(),
            });
            // L40: broadcast ⟨PRECOMMIT, h_p, round_p, id(v)⟩; L41: step_p ← precommit.
            self.vote(VoteType::Precommit, Some(value), actions);
            self.set_step(Step::Precommit);
        } else if let Some(last_signed) = self
            .signing_state
            .as_ref()
            .filter(|signing| signing.height() == height)
            .map(|signing| signing.last_signed.clone())
        {
            // Not in the paper: the new valid value and its prevotes are persisted too, so
            // that a restart does not lose them (see `SigningState`).
            self.persist(last_signed, actions);
        }
        true
    }

    /// L44: upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote.
    fn line_44(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_ref() else {
            return false;
        };
        if state.step != Step::Prevote
            || !state
                .votes
                .has_quorum_for(state.round, VoteType::Prevote, None)
        {
            return false;
        }
        // L45: broadcast ⟨PRECOMMIT, h_p, round_p, nil⟩; L46: step_p ← precommit.
        self.vote(VoteType::Precommit, None, actions);
        self.set_step(Step::Precommit);
        true
    }

    /// L47: upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time.
    fn line_47(&mut self, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_mut() else {
            return false;
        };
        if state.precommit_timeout_scheduled
            || !state
                .votes
                .has_quorum_of_any(state.round, VoteType::Precommit)
        {
            return false;
        }
        state.precommit_timeout_scheduled = true;
        let (height, round) = (state.height, state.round);
        // L48: schedule OnTimeoutPrecommit(h_p, round_p) after timeoutPrecommit(round_p).
        actions.push(self.timeout_action(height, round, Step::Precommit));
        true
    }

    /// L49: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r) AND
    /// 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil.
    fn try_decide(&mut self, round: Round, actions: &mut Vec<Action<V>>) -> bool {
        let Some(state) = self.state.as_mut() else {
            return false;
        };
        if state.decision.is_some() {
            return false;
        }
        // Any proposal of the round (the first, or a conflicting one): the one whose value has
        // the precommits. L50: if valid(v).
        let Some(value) = state.valid_proposal_with_quorum(round, VoteType::Precommit) else {
            return false;
        };
        let signatures = state.votes.precommit_signatures(round, &value);
        let certificate = CommitCertificate {
            height: state.height,
            round,
            value,
            signatures,
        };
        // L51: decision_p[h_p] = v. L52–L54 wait for Input::NewHeight.
        state.decision = Some(certificate.clone());
        actions.push(Action::Decide { certificate });
        true
    }

    // ----- signing -----

    fn set_step(&mut self, step: Step) {
        if let Some(state) = self.state.as_mut() {
            state.step = step;
        }
    }

    fn timeout_action(&self, height: Height, round: Round, step: Step) -> Action<V> {
        Action::ScheduleTimeout {
            height,
            round,
            step,
            duration_ms: self.config.timeout_ms(step, round),
        }
    }

    fn is_validator(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|state| state.validator_set().contains(&self.id))
    }

    /// Whether signing a message for `slot` is safe given what was signed before: only a
    /// later slot may be signed; the same slot only by sending the very same message again.
    fn permission(&self, slot: (Height, Round, Step)) -> Permission<'_, V> {
        match &self.signing_state {
            None => Permission::Sign,
            Some(signing_state) if slot > signing_state.slot() => Permission::Sign,
            Some(signing_state) => match signing_state.signed_for(slot) {
                Some(message) => Permission::Resend(message),
                None => Permission::Refuse,
            },
        }
    }

    fn persist(&mut self, last_signed: SignedMessage<V>, actions: &mut Vec<Action<V>>) {
        let (locked, valid, valid_round_prevotes) = match &self.state {
            Some(state) => {
                let prevotes = state.valid.as_ref().map_or_else(Vec::new, |valid| {
                    state
                        .votes
                        .votes_for(valid.round, VoteType::Prevote, Some(&valid.value))
                });
                (state.locked.clone(), state.valid.clone(), prevotes)
            }
            None => (None, None, Vec::new()),
        };
        // The write-ahead log: what was signed at this height before, within the rounds
        // kept; a new height starts a new log.
        let signed_before = match &self.signing_state {
            Some(previous) if previous.height() == last_signed.height() => {
                let mut log = previous.signed_before.clone();
                if previous.last_signed != last_signed {
                    log.push(previous.last_signed.clone());
                }
                let oldest_kept = last_signed
                    .round()
                    .saturating_sub(MAX_LOGGED_ROUNDS_PER_HEIGHT - 1);
                log.retain(|message| message.round() >= oldest_kept);
                // Rounds grow one at a time or skip ahead, and each round holds at most one
                // message per step, so the window bounds the log.
                assert!(
                    log.len() < MAX_LOGGED_MESSAGES_PER_HEIGHT,
                    "the write-ahead log outgrew its bound"
                );
                log
            }
            _ => Vec::new(),
        };
        let signing_state = SigningState {
            last_signed,
            signed_before,
            locked,
            valid,
            valid_round_prevotes,
        };
        self.signing_state = Some(signing_state.clone());
        actions.push(Action::PersistSigningState(signing_state));
    }

    /// Signs and broadcasts a proposal for the current round, and counts it as received.
    fn propose(&mut self, value: V, valid_round: Option<Round>, actions: &mut Vec<Action<V>>) {
        let Some(state) = self.state.as_ref() else {
            return;
        };
        if !self.is_validator() {
            return;
        }
        let proposal = Proposal {
            height: state.height,
            round: state.round,
            value,
            valid_round,
            proposer: self.id,
        };
        let signed = match self.permission((proposal.height, proposal.round, Step::Propose)) {
            Permission::Sign => {
                let signature = self.signer.sign(&proposal.sign_bytes(&self.chain_id));
                let signed = SignedProposal {
                    proposal,
                    signature,
                };
                self.persist(SignedMessage::Proposal(signed.clone()), actions);
                signed
            }
            Permission::Resend(SignedMessage::Proposal(previous))
                if previous.proposal == proposal =>
            {
                previous.clone()
            }
            Permission::Resend(_) | Permission::Refuse => {
                self.counters.signing_refused += 1;
                return;
            }
        };
        self.push_broadcast(Action::BroadcastProposal(signed.clone()), actions);
        if let Some(state) = self.state.as_mut() {
            state
                .verdicts
                .entry(signed.proposal.value.clone())
                .or_insert(true);
            state.votes.add_participant(signed.proposal.round, self.id);
            state.keep_own_proposal(signed);
        }
    }

    /// Signs and broadcasts a vote of the current round, and counts it as received.
    fn vote(&mut self, vote_type: VoteType, value: Option<V>, actions: &mut Vec<Action<V>>) {
        let Some(state) = self.state.as_ref() else {
            return;
        };
        if !self.is_validator() {
            return;
        }
        let vote = Vote {
            vote_type,
            height: state.height,
            round: state.round,
            value,
            validator: self.id,
        };
        let signed = match self.permission((vote.height, vote.round, vote_type.into())) {
            Permission::Sign => {
                let signature = self.signer.sign(&vote.sign_bytes(&self.chain_id));
                let signed = SignedVote { vote, signature };
                self.persist(SignedMessage::Vote(signed.clone()), actions);
                signed
            }
            Permission::Resend(SignedMessage::Vote(previous)) if previous.vote == vote => {
                previous.clone()
            }
            Permission::Resend(_) | Permission::Refuse => {
                self.counters.signing_refused += 1;
                return;
            }
        };
        self.push_broadcast(Action::BroadcastVote(signed.clone()), actions);
        if let Some(state) = self.state.as_mut() {
            state.votes.add_vote(signed);
        }
    }

    /// Appends the broadcast of a message just signed (or signed before and sent again),
    /// after the persist that records it.
    fn push_broadcast(&self, broadcast: Action<V>, actions: &mut Vec<Action<V>>) {
        let persisted_last = matches!(actions.last(), Some(Action::PersistSigningState(_)));
        if persisted_last && self.is_mutant(Mutant::BroadcastBeforePersist) {
            actions.insert(actions.len() - 1, broadcast);
        } else {
            actions.push(broadcast);
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
