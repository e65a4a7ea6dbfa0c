//! A deterministic simulator: many validators in one process, one seeded random number
//! generator, a virtual clock, and a network that delays, drops, duplicates and reorders
//! messages, splits into partitions and heals; validators that crash (even halfway through
//! the actions of one input) and restart from their persisted signing state; and Byzantine
//! validators that equivocate, stay silent, or propose and vote for invalid values.
//!
//! Every run checks, as it goes and at its end:
//! - **agreement**: no two correct validators decide different values at one height;
//! - **validity**: every value a correct validator decides was proposed and is valid, and
//!   its commit certificate verifies;
//! - **no conflicting signatures**: no correct validator signs two different messages for
//!   one height, round and step, across crashes too; no evidence ever accuses one;
//! - **liveness**: after the global stabilisation time (GST) every correct validator
//!   decides every height up to the target, and heights that start after GST are decided
//!   within a bounded number of rounds.
//!
//! A failed run returns a [`Failure`] whose `Display` names the scenario and seed and a
//! one-line command that replays it. Available with the `sim` feature (and in the crate's
//! own tests); not for production builds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::certificate::{CommitCertificate, verify_commit_certificate};
use crate::machine::{Action, Config, Consensus, Input, SigningState};
use crate::messages::{SignedMessage, SignedProposal, SignedVote, verify_evidence};
use crate::signing::{InsecureTestSigner, InsecureTestVerifier, SignatureVerifier, Signer};
use crate::types::{Height, Round, Step, ValidatorId};
use crate::validator_set::{Validator, ValidatorSet};

/// The value the simulation agrees on: 32 bytes, like the node's block hash. Byte 0 is the
/// proposer's index, bytes 1..9 the height, 9..13 the round, 13..21 random; a value whose
/// last byte is [`INVALID_MARK`] is invalid for the simulated application.
pub type SimValue = [u8; 32];

/// The last byte of an invalid value.
pub const INVALID_MARK: u8 = 0xbd;

/// The chain id of every simulated network.
pub const SIM_CHAIN_ID: &str = "hutong-sim";

/// How often (virtual milliseconds) a validator whose position has not moved sends its
/// gossip messages again.
pub const GOSSIP_INTERVAL_MS: u64 = 500;

/// Most events one run of up to [`EVENTS_BOUND_VALIDATORS`] validators may process; a run
/// that needs more has gone wrong. Larger networks get this times the square of their size
/// over that (every message goes to every validator), see [`Scenario::max_events`].
pub const MAX_EVENTS_PER_RUN: u64 = 3_000_000;

/// The network size up to which [`MAX_EVENTS_PER_RUN`] applies as it is.
pub const EVENTS_BOUND_VALIDATORS: u64 = 16;

/// Whether the simulated application accepts `value`.
pub fn is_valid_value(value: &SimValue) -> bool {
    value[31] != INVALID_MARK
}

/// splitmix64: small, fast and good enough to drive a simulation from one seed.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that produces the same sequence for the same seed.
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed ^ 0x5851_f42d_4c95_7f2d,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Byzantine {
    /// Sends nothing at all.
    Silent,
    /// Runs the protocol, but every proposal and vote it sends goes to half of the
    /// validators, and a conflicting one to the other half.
    Equivocate,
    /// Proposes invalid values, and prevotes and precommits for any value, valid or not.
    InvalidValues,
    /// Split votes: as proposer it shows one value to one side of the validators and
    /// another value to the other side (the sides change with every height and round);
    /// every prevote and precommit it sends to a validator is for the value that validator
    /// was shown in that round, so that each side sees Byzantine power behind its own value
    /// and validators lock on different values.
    SplitVotes,
    /// Hidden locks: proposes to everyone, but its prevotes and precommits for a value go
    /// to one side only (the other side gets nil), so that a polka is seen by some only and
    /// the locks it makes are hidden from the rest; later it proposes and prevotes fresh
    /// values as if it held no lock.
    HiddenLock,
    /// Amnesia: runs a machine that forgets its lock (prevotes as if it held none and
    /// proposes fresh values instead of its valid value), and before GST, when it decides,
    /// forgets the decision and everything it signed and rejoins the height afresh.
    Amnesia,
    /// Forged valid rounds: as proposer in a round above 0 it re-proposes a value that
    /// correct validators prevoted in an earlier round (one below a correct validator's lock
    /// on another value when it can find one), claiming that round as its valid round,
    /// relays those prevotes, and every validator of this kind signs prevotes for it in that
    /// round; its other votes are split as with [`Byzantine::SplitVotes`].
    ForgedValidRound,
    /// Floods of far-future rounds: besides running the protocol, on every gossip tick it
    /// signs prevotes for the last round inside the round window and for a round beyond
    /// it, to push the others into skipping rounds.
    FutureRoundFlood,
    /// Equivocating proposer: as proposer it sends up to four different proposals, each to
    /// a part of the validators; its votes are split as with [`Byzantine::SplitVotes`].
    EquivocatingProposer,
    /// Revived polka: builds, before GST, the situation that line 29's lock condition
    /// exists for. It runs no machine; it signs its messages itself and schedules the
    /// network between correct validators (a delay that outlasts the round is a loss, which
    /// gossip repairs):
    /// 1. in round 0 every correct validator prevotes the proposal w, but each is shown only
    ///    a few of the others' prevotes for it, and nil from the adversary: enough to leave
    ///    the round, not enough to lock; the signed prevotes form a polka nobody saw whole;
    /// 2. in round 1 the correct validators lock on the new proposal v, and one of them,
    ///    the decider (drawn from the seed), gets the precommits and decides v, while its
    ///    own precommit (and the adversary's votes for v, which only it gets) are kept from
    ///    the others;
    /// 3. in the first later round it proposes, it re-proposes w with valid round 0, relays
    ///    the round-0 prevotes for w, and every validator of its kind prevotes and
    ///    precommits w. A correct validator locked on v in round 1 must prevote nil (line
    ///    29: its lock is above the valid round); one that prevotes w forks the chain.
    ///
    /// Its other votes are nil, sent to each correct validator as it enters a step, so
    /// that rounds keep moving; after GST it is silent.
    RevivedPolka,
}

impl Byzantine {
    /// Whether its votes go to each validator for the value that validator was shown.
    fn splits_votes(self) -> bool {
        matches!(
            self,
            Byzantine::SplitVotes | Byzantine::ForgedValidRound | Byzantine::EquivocatingProposer
        )
    }
}

/// One kind of run: the network, the faults and the target.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub validators: usize,
    /// Voting power of each validator, in order; empty means 1 each.
    pub voting_powers: Vec<u64>,
    /// Byzantine behaviours, one per Byzantine validator; which validators misbehave is
    /// drawn from the seed, among the choices whose power is below a third of the total.
    pub byzantine: Vec<Byzantine>,
    /// Heights every correct validator must decide.
    pub heights: Height,
    /// The global stabilisation time: before it the network is hostile, after it every
    /// message between correct validators arrives within `delay_after_gst_ms`.
    pub gst_ms: u64,
    pub delay_before_gst_ms: (u64, u64),
    pub delay_after_gst_ms: (u64, u64),
    pub drop_per_mille_before_gst: u32,
    pub duplicate_per_mille: u32,
    /// Partitions form and heal before GST.
    pub partitions: bool,
    /// Correct validators crash and restart before GST (any number at once).
    pub crashes: bool,
    /// Every correct validator ignores its lock: a deliberately broken protocol, to show
    /// that the checks catch forks.
    pub ignore_lock: bool,
    /// Before GST, every correct validator crashes at once, at a moment when one of them has
    /// just entered a given step (propose, prevote or precommit, drawn from the seed), and
    /// all restart together: a site-wide restart.
    pub site_restarts: bool,
    /// Before GST a validator that has decided a height does not reach those still at it
    /// (no block sync, no later messages): the adversary keeps its decision from the others
    /// while it works on their locks.
    pub isolate_deciders: bool,
    /// Keys outside the validator set that sign a prevote and a precommit for every proposal
    /// they see; a correct validator must not count them.
    pub outsiders: usize,
    /// A negative control: the Byzantine validators may hold a third of the power or more,
    /// where the checks must find a violation in some seed.
    pub control: bool,
    pub config: Config,
}

impl Scenario {
    fn base(name: &'static str, validators: usize) -> Self {
        Scenario {
            name,
            validators,
            voting_powers: Vec::new(),
            byzantine: Vec::new(),
            heights: 4,
            gst_ms: 0,
            delay_before_gst_ms: (1, 50),
            delay_after_gst_ms: (1, 50),
            drop_per_mille_before_gst: 0,
            duplicate_per_mille: 0,
            partitions: false,
            crashes: false,
            ignore_lock: false,
            site_restarts: false,
            isolate_deciders: false,
            outsiders: 0,
            control: false,
            config: Config {
                timeout_propose_base_ms: 1000,
                timeout_propose_increment_ms: 250,
                timeout_prevote_base_ms: 500,
                timeout_prevote_increment_ms: 250,
                timeout_precommit_base_ms: 500,
                timeout_precommit_increment_ms: 250,
            },
        }
    }

    fn hostile(mut self, gst_ms: u64) -> Self {
        self.gst_ms = gst_ms;
        self.delay_before_gst_ms = (1, 1500);
        self.drop_per_mille_before_gst = 250;
        self.duplicate_per_mille = 100;
        self
    }

    /// The scenarios `cargo test` runs, by name.
    pub fn all() -> Vec<Scenario> {
        let f = |validators: usize| (validators - 1) / 3;
        let mut scenarios = vec![
            Scenario::base("healthy-4", 4),
            Scenario::base("healthy-10", 10),
        ];
        scenarios.push(Scenario::base("lossy-7", 7).hostile(6000));
        scenarios.push(Scenario {
            partitions: true,
            ..Scenario::base("partitions-7", 7).hostile(8000)
        });
        scenarios.push(Scenario {
            crashes: true,
            ..Scenario::base("crashes-4", 4).hostile(8000)
        });
        scenarios.push(Scenario {
            crashes: true,
            partitions: true,
            ..Scenario::base("crashes-partitions-7", 7).hostile(8000)
        });
        for validators in [4, 7, 10] {
            let name = match validators {
                4 => "equivocators-4",
                7 => "equivocators-7",
                _ => "equivocators-10",
            };
            scenarios.push(Scenario {
                byzantine: vec![Byzantine::Equivocate; f(validators)],
                ..Scenario::base(name, validators).hostile(5000)
            });
        }
        scenarios.push(Scenario {
            byzantine: vec![Byzantine::Silent; 2],
            ..Scenario::base("silent-7", 7).hostile(5000)
        });
        scenarios.push(Scenario {
            byzantine: vec![Byzantine::InvalidValues; 3],
            ..Scenario::base("invalid-values-10", 10).hostile(5000)
        });
        scenarios.push(Scenario {
            byzantine: vec![
                Byzantine::Equivocate,
                Byzantine::InvalidValues,
                Byzantine::Silent,
            ],
            crashes: true,
            partitions: true,
            ..Scenario::base("everything-10", 10).hostile(10_000)
        });
        scenarios.push(Scenario::site_restarts("site-restarts-4", 4));
        scenarios.push(Scenario::site_restarts("site-restarts-7", 7));
        scenarios.push(Scenario {
            voting_powers: vec![1, 2, 3, 5, 8, 13, 21],
            byzantine: vec![Byzantine::Equivocate],
            crashes: true,
            ..Scenario::base("weighted-7", 7).hostile(8000)
        });
        scenarios
    }

    /// The scenario called `name`, among [`Scenario::all`], [`Scenario::adversaries`],
    /// [`Scenario::controls`], [`Scenario::scale`] and the broken-lock one.
    pub fn named(name: &str) -> Option<Scenario> {
        Scenario::all()
            .into_iter()
            .chain(Scenario::adversaries())
            .chain(Scenario::controls())
            .chain(Scenario::scale())
            .chain([Scenario::broken_lock()])
            .find(|scenario| scenario.name == name)
    }

    /// Site-wide restarts: every correct validator crashes at once and restarts at once,
    /// at every step. Part of [`Scenario::all`].
    fn site_restarts(name: &'static str, validators: usize) -> Scenario {
        Scenario {
            site_restarts: true,
            ..Scenario::base(name, validators).hostile(8000)
        }
    }

    /// One targeted adversary with `byzantine` validators of one kind, the network hostile
    /// before GST and the deciders isolated from the others.
    fn adversary(
        name: &'static str,
        validators: usize,
        kind: Byzantine,
        byzantine: usize,
    ) -> Scenario {
        Scenario {
            byzantine: vec![kind; byzantine],
            isolate_deciders: true,
            heights: 6,
            delay_before_gst_ms: (1, 700),
            ..Scenario::base(name, validators).hostile(8000)
        }
    }

    /// The adversaries that target the protocol, each with f Byzantine of 3f + 1 (or less
    /// than a third of the power): the checks must find nothing.
    pub fn adversaries() -> Vec<Scenario> {
        vec![
            Scenario::adversary("split-votes-4", 4, Byzantine::SplitVotes, 1),
            Scenario::adversary("split-votes-7", 7, Byzantine::SplitVotes, 2),
            Scenario {
                voting_powers: vec![1, 1, 1, 1, 1, 4, 4],
                ..Scenario::adversary("split-votes-weighted-7", 7, Byzantine::SplitVotes, 4)
            },
            Scenario::adversary("hidden-lock-4", 4, Byzantine::HiddenLock, 1),
            Scenario::adversary("hidden-lock-7", 7, Byzantine::HiddenLock, 2),
            Scenario {
                crashes: true,
                ..Scenario::adversary("amnesia-4", 4, Byzantine::Amnesia, 1)
            },
            Scenario::adversary("forged-valid-round-4", 4, Byzantine::ForgedValidRound, 1),
            Scenario {
                heights: 20,
                gst_ms: 30_000,
                ..Scenario::adversary("forged-valid-round-7", 7, Byzantine::ForgedValidRound, 2)
            },
            Scenario {
                voting_powers: vec![1, 1, 1, 1, 10, 10, 10],
                ..Scenario::adversary(
                    "future-rounds-weighted-7",
                    7,
                    Byzantine::FutureRoundFlood,
                    4,
                )
            },
            Scenario::adversary(
                "equivocating-proposer-4",
                4,
                Byzantine::EquivocatingProposer,
                1,
            ),
            Scenario {
                outsiders: 4,
                ..Scenario::adversary("outsiders-4", 4, Byzantine::SplitVotes, 1)
            },
            Scenario {
                crashes: true,
                site_restarts: true,
                ..Scenario::adversary("split-votes-restarts-4", 4, Byzantine::SplitVotes, 1)
            },
            Scenario::revived_polka("revived-polka-4", 4, 1, 20_000),
            Scenario::revived_polka("revived-polka-7", 7, 2, 20_000),
        ]
    }

    /// The revived-polka adversary ([`Byzantine::RevivedPolka`]) with `byzantine` revivers
    /// among `validators` of power 1. It schedules the network itself before GST, so the
    /// network drops nothing at random and delays by 1 to 100 ms; GST leaves it the rounds
    /// it needs to become the proposer after round 1.
    fn revived_polka(
        name: &'static str,
        validators: usize,
        byzantine: usize,
        gst_ms: u64,
    ) -> Scenario {
        Scenario {
            gst_ms,
            delay_before_gst_ms: (1, 100),
            drop_per_mille_before_gst: 0,
            ..Scenario::adversary(name, validators, Byzantine::RevivedPolka, byzantine)
        }
    }

    /// The negative controls: each adversary with f + 1 Byzantine of 3f + 1 (a third of the
    /// power or more), where some seed must show a violation, or the checks are blind.
    pub fn controls() -> Vec<Scenario> {
        let control = |scenario: Scenario| Scenario {
            control: true,
            ..scenario
        };
        vec![
            control(Scenario::adversary(
                "split-votes-4-control",
                4,
                Byzantine::SplitVotes,
                2,
            )),
            control(Scenario::adversary(
                "hidden-lock-4-control",
                4,
                Byzantine::HiddenLock,
                2,
            )),
            control(Scenario::adversary(
                "amnesia-4-control",
                4,
                Byzantine::Amnesia,
                2,
            )),
            control(Scenario::adversary(
                "forged-valid-round-4-control",
                4,
                Byzantine::ForgedValidRound,
                2,
            )),
            control(Scenario::adversary(
                "future-rounds-4-control",
                4,
                Byzantine::FutureRoundFlood,
                2,
            )),
            control(Scenario::adversary(
                "equivocating-proposer-4-control",
                4,
                Byzantine::EquivocatingProposer,
                2,
            )),
            control(Scenario::revived_polka(
                "revived-polka-4-control",
                4,
                2,
                20_000,
            )),
        ]
    }

    /// Larger networks, for the figures in `docs/consensus.md` (not run by default): f
    /// equivocators of 3f + 1 with crashes, at 7, 16, 31 and 64 validators.
    pub fn scale() -> Vec<Scenario> {
        [
            ("scale-7", 7),
            ("scale-16", 16),
            ("scale-31", 31),
            ("scale-64", 64),
        ]
        .into_iter()
        .map(|(name, validators)| Scenario {
            byzantine: vec![Byzantine::Equivocate; (validators - 1) / 3],
            crashes: true,
            ..Scenario::base(name, validators).hostile(5000)
        })
        .collect()
    }

    /// Correct validators that ignore their locks (and so their valid values), one
    /// equivocating validator, and a long hostile period before GST: the simulation must
    /// find forks here. They are rare (a few seeds in a hundred) because block sync often
    /// hands a lagging validator the decision before it can decide otherwise.
    pub fn broken_lock() -> Scenario {
        Scenario {
            ignore_lock: true,
            byzantine: vec![Byzantine::Equivocate],
            heights: 40,
            delay_before_gst_ms: (1, 700),
            ..Scenario::base("broken-lock-4", 4).hostile(60_000)
        }
    }

    /// Most events a run of this scenario may process (see [`MAX_EVENTS_PER_RUN`]).
    pub fn max_events(&self) -> u64 {
        let validators = (self.validators as u64).max(EVENTS_BOUND_VALIDATORS);
        MAX_EVENTS_PER_RUN * validators * validators
            / (EVENTS_BOUND_VALIDATORS * EVENTS_BOUND_VALIDATORS)
    }
}

/// The signers and the verifier of a simulated network. The default is the cheap insecure
/// scheme; the benchmarks and a test plug in ed25519.
pub trait Keys {
    type Signer: Signer + Clone;
    type Verifier: SignatureVerifier + Clone;
    /// The signer of validator `index`.
    fn signer(&self, index: usize) -> Self::Signer;
    /// The verifier every validator uses.
    fn verifier(&self) -> Self::Verifier;
}

/// [`InsecureTestSigner`] keys: validator `index` has id `[index, 0x5a, 0x5a, ...]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct InsecureKeys;

impl Keys for InsecureKeys {
    type Signer = InsecureTestSigner;
    type Verifier = InsecureTestVerifier;

    fn signer(&self, index: usize) -> InsecureTestSigner {
        let mut bytes = [0x5a; 32];
        // The first byte shows in `ValidatorId`'s debug output.
        bytes[0] = index as u8;
        InsecureTestSigner::new(ValidatorId(bytes))
    }

    fn verifier(&self) -> InsecureTestVerifier {
        InsecureTestVerifier
    }
}

/// Why a run failed, with what it takes to replay it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub virtual_time_ms: u64,
    pub violation: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "simulation {} seed {} failed at {} ms: {}\nreproduce with: HUTONG_SIM_SCENARIO={} HUTONG_SIM_SEED={} \
             cargo test -p hutong-consensus --test simulation replay -- --nocapture",
            self.scenario,
            self.seed,
            self.virtual_time_ms,
            self.violation,
            self.scenario,
            self.seed
        )
    }
}

/// What a successful run measured.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Report {
    /// Heights decided (each counted once, however many validators decided it).
    pub heights_decided: u64,
    pub virtual_time_ms: u64,
    pub messages_delivered: u64,
    pub events: u64,
    /// The highest round in which any correct validator decided.
    pub max_decision_round: Round,
    /// The most rounds a height took, counted from when every correct validator had
    /// reached it, among heights reached after GST.
    pub max_decision_round_after_gst: Round,
    pub evidence_recorded: u64,
    pub crashes: u64,
    /// Validators caught by a site-wide restart, by the step they were in: propose,
    /// prevote, precommit.
    pub site_crashes_by_step: [u64; 3],
    /// Heights at which a [`Byzantine::RevivedPolka`] adversary re-proposed its round-0
    /// value to correct validators locked on another value after the decider decided.
    pub revived_polkas: u64,
    /// Decisions a correct validator made by its own rules (line 49, not block sync) for a
    /// value other than the first proposal of that round it received: a conflicting proposal
    /// of an equivocating proposer that got the precommits.
    pub decisions_on_later_proposal: u64,
}

#[derive(Clone, Debug)]
enum NetMessage {
    Proposal(SignedProposal<SimValue>),
    Vote(SignedVote<SimValue>),
    Certificate(CommitCertificate<SimValue>),
}

impl NetMessage {
    fn height(&self) -> Height {
        match self {
            NetMessage::Proposal(proposal) => proposal.proposal.height,
            NetMessage::Vote(vote) => vote.vote.height,
            NetMessage::Certificate(certificate) => certificate.height,
        }
    }
}

#[derive(Clone, Debug)]
enum EventKind {
    Deliver {
        to: usize,
        from: usize,
        message: NetMessage,
    },
    Timeout {
        node: usize,
        incarnation: u64,
        height: Height,
        round: Round,
        step: Step,
    },
    Gossip {
        node: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// Arms a site-wide crash for the moment a correct validator enters `step`.
    SiteCrash {
        step: Step,
    },
    SiteRestart,
    PartitionForm,
    PartitionHeal,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Correct,
    Byzantine(Byzantine),
}

struct Node<K: Keys> {
    id: ValidatorId,
    signer: K::Signer,
    role: Role,
    machine: Option<Consensus<SimValue, K::Signer, K::Verifier>>,
    persisted: Option<SigningState<SimValue>>,
    /// The node's ledger: what it decided, durable across crashes.
    decisions: BTreeMap<Height, CommitCertificate<SimValue>>,
    incarnation: u64,
    crash_armed: bool,
    last_gossip_position: Option<(Height, Round, Step)>,
    catch_up_sent_ms: BTreeMap<(usize, Height), u64>,
}

/// Correct validators' prevotes of one round, by the value they are for.
type PrevotesByValue = BTreeMap<SimValue, Vec<SignedVote<SimValue>>>;

/// One simulated network, driven by one seed.
pub struct Simulation<K: Keys> {
    scenario: Scenario,
    seed: u64,
    rng: Rng,
    now_ms: u64,
    next_sequence: u64,
    events: BTreeMap<(u64, u64), EventKind>,
    nodes: Vec<Node<K>>,
    validator_set: ValidatorSet,
    verifier: K::Verifier,
    partition: Option<BTreeSet<usize>>,
    /// Every message a correct validator signed, by (signer, height, round, step).
    signed_by_correct: BTreeMap<(ValidatorId, Height, Round, Step), SignedMessage<SimValue>>,
    proposed: BTreeSet<SimValue>,
    decided: BTreeMap<Height, SimValue>,
    /// For each height, when the last correct validator started it, and the highest round
    /// a correct validator of that height was in at that moment.
    joined: BTreeMap<Height, (u64, Round)>,
    lowest_correct_height: Height,
    report: Report,
    trace: bool,
    /// The first proposal value each validator was shown, by (validator, height, round):
    /// what the vote-splitting adversaries vote for towards it.
    shown: BTreeMap<(usize, Height, Round), SimValue>,
    /// The correct validators' prevotes for values, by (height, round): what the forger of
    /// valid rounds builds on.
    prevoted: BTreeMap<(Height, Round), PrevotesByValue>,
    /// A site-wide crash waits for a correct validator to enter this step.
    site_crash_on: Option<Step>,
    /// A site-wide crash has happened and its restart is due.
    site_down: bool,
    /// Signers outside the validator set (the outsiders of [`Scenario::outsiders`]).
    outsiders: Vec<K::Signer>,
    /// The [`Byzantine::RevivedPolka`] validators, by index.
    revivers: Vec<usize>,
    /// The revivers' votes already sent, by (recipient, height, round, step).
    revived_votes_sent: BTreeSet<(usize, Height, Round, Step)>,
    /// The rounds whose proposal the revivers have dealt with, by (height, round).
    revived_proposals_sent: BTreeSet<(Height, Round)>,
    /// The round and value of the revived polka, by height.
    revived_attacks: BTreeMap<Height, (Round, SimValue)>,
    /// Whether the actions being applied answer a commit certificate (block sync).
    applying_certificate: bool,
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutants::Mutant>,
}

impl<K: Keys> fmt::Debug for Simulation<K> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Simulation")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.seed)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// Runs `scenario` with `seed` and the insecure test keys.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, Failure> {
    Simulation::new(scenario.clone(), seed, InsecureKeys)?.run()
}

impl<K: Keys> Simulation<K> {
    /// Sets up the validators, the Byzantine ones drawn from the seed.
    pub fn new(scenario: Scenario, seed: u64, keys: K) -> Result<Self, Failure> {
        let mut rng = Rng::new(seed);
        let count = scenario.validators;
        let power_of = |index: usize| scenario.voting_powers.get(index).copied().unwrap_or(1);
        let total_power: u64 = (0..count).map(power_of).sum();
        let mut byzantine_indexes = Vec::new();
        for _attempt in 0..1000 {
            byzantine_indexes.clear();
            while byzantine_indexes.len() < scenario.byzantine.len().min(count) {
                let index = rng.below(count as u64) as usize;
                if !byzantine_indexes.contains(&index) {
                    byzantine_indexes.push(index);
                }
            }
            let byzantine_power: u64 = byzantine_indexes.iter().map(|index| power_of(*index)).sum();
            if scenario.control || byzantine_power * 3 < total_power {
                break;
            }
        }
        let byzantine_power: u64 = byzantine_indexes.iter().map(|index| power_of(*index)).sum();
        if !scenario.control && byzantine_power * 3 >= total_power {
            return Err(Failure {
                scenario: scenario.name.to_string(),
                seed,
                virtual_time_ms: 0,
                violation: format!(
                    "no choice of Byzantine validators holds less than a third of {total_power}"
                ),
            });
        }
        let verifier = keys.verifier();
        let revivers = (0..count)
            .filter(|index| {
                byzantine_indexes
                    .iter()
                    .position(|byzantine| byzantine == index)
                    .and_then(|position| scenario.byzantine.get(position))
                    == Some(&Byzantine::RevivedPolka)
            })
            .collect();
        let outsiders = (count..count + scenario.outsiders)
            .map(|index| keys.signer(index))
            .collect();
        let mut nodes = Vec::with_capacity(count);
        for index in 0..count {
            let signer = keys.signer(index);
            let role = match byzantine_indexes
                .iter()
                .position(|byzantine| *byzantine == index)
            {
                Some(position) => scenario
                    .byzantine
                    .get(position)
                    .map_or(Role::Correct, |kind| Role::Byzantine(*kind)),
                None => Role::Correct,
            };
            nodes.push(Node {
                id: signer.id(),
                signer,
                role,
                machine: None,
                persisted: None,
                decisions: BTreeMap::new(),
                incarnation: 0,
                crash_armed: false,
                last_gossip_position: None,
                catch_up_sent_ms: BTreeMap::new(),
            });
        }
        let validators = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| Validator {
                id: node.id,
                voting_power: power_of(index),
            })
            .collect();
        let validator_set = ValidatorSet::new(validators).map_err(|error| Failure {
            scenario: scenario.name.to_string(),
            seed,
            virtual_time_ms: 0,
            violation: format!("bad validator set: {error}"),
        })?;
        Ok(Simulation {
            scenario,
            seed,
            rng,
            now_ms: 0,
            next_sequence: 0,
            events: BTreeMap::new(),
            nodes,
            validator_set,
            verifier,
            partition: None,
            signed_by_correct: BTreeMap::new(),
            proposed: BTreeSet::new(),
            decided: BTreeMap::new(),
            joined: BTreeMap::new(),
            lowest_correct_height: 0,
            report: Report::default(),
            trace: false,
            shown: BTreeMap::new(),
            prevoted: BTreeMap::new(),
            site_crash_on: None,
            site_down: false,
            outsiders,
            revivers,
            revived_votes_sent: BTreeSet::new(),
            revived_proposals_sent: BTreeSet::new(),
            revived_attacks: BTreeMap::new(),
            applying_certificate: false,
            #[cfg(feature = "mutants")]
            mutant: None,
        })
    }

    /// Gives every correct validator the seeded bug `mutant` (mutation testing).
    #[cfg(feature = "mutants")]
    pub fn set_mutant(&mut self, mutant: crate::mutants::Mutant) {
        self.mutant = Some(mutant);
    }

    /// Prints every input and the actions it caused to standard error (for replaying a
    /// failed seed).
    pub fn set_trace(&mut self, trace: bool) {
        self.trace = trace;
    }

    fn fail(&self, violation: String) -> Failure {
        Failure {
            scenario: self.scenario.name.to_string(),
            seed: self.seed,
            virtual_time_ms: self.now_ms,
            violation,
        }
    }

    fn schedule(&mut self, at_ms: u64, kind: EventKind) {
        self.next_sequence += 1;
        self.events.insert((at_ms, self.next_sequence), kind);
    }

    fn is_correct(&self, index: usize) -> bool {
        self.nodes
            .get(index)
            .is_some_and(|node| node.role == Role::Correct)
    }

    fn deadline_ms(&self) -> u64 {
        self.scenario.gst_ms + 20_000 * self.scenario.heights + 20_000
    }

    /// Runs to the end and checks every invariant.
    pub fn run(mut self) -> Result<Report, Failure> {
        self.plan_faults();
        for index in 0..self.nodes.len() {
            self.start_node(index)?;
            let offset = self.rng.below(GOSSIP_INTERVAL_MS);
            self.schedule(
                GOSSIP_INTERVAL_MS + offset,
                EventKind::Gossip { node: index },
            );
        }
        let deadline_ms = self.deadline_ms();
        while let Some(((at_ms, _), event)) = self.events.pop_first() {
            if at_ms > deadline_ms || self.all_correct_done() {
                break;
            }
            self.now_ms = at_ms;
            self.report.events += 1;
            let max_events = self.scenario.max_events();
            if self.report.events > max_events {
                return Err(self.fail(format!("more than {max_events} events")));
            }
            self.process(event)?;
            self.note_joined_height();
        }
        self.check_liveness()?;
        self.report.virtual_time_ms = self.now_ms;
        self.report.heights_decided = self.decided.len() as u64;
        Ok(self.report)
    }

    fn all_correct_done(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.role == Role::Correct)
            .all(|node| {
                node.machine.is_some()
                    && (1..=self.scenario.heights)
                        .all(|height| node.decisions.contains_key(&height))
            })
    }

    fn plan_faults(&mut self) {
        let gst_ms = self.scenario.gst_ms;
        if self.scenario.partitions && gst_ms > 0 {
            let mut at_ms = self.rng.below(gst_ms / 2);
            while at_ms < gst_ms {
                self.schedule(at_ms, EventKind::PartitionForm);
                let heal_ms = (at_ms + self.rng.between(500, 3000)).min(gst_ms);
                self.schedule(heal_ms, EventKind::PartitionHeal);
                at_ms = heal_ms + self.rng.between(200, 2000);
            }
            self.schedule(gst_ms, EventKind::PartitionHeal);
        }
        if self.scenario.site_restarts && gst_ms > 0 {
            // One to three site-wide crashes, each at a step drawn from the seed.
            let mut at_ms = self.rng.below(gst_ms / 4);
            for _ in 0..1 + self.rng.below(3) {
                if at_ms >= gst_ms * 3 / 4 {
                    break;
                }
                let step = match self.rng.below(3) {
                    0 => Step::Propose,
                    1 => Step::Prevote,
                    _ => Step::Precommit,
                };
                self.schedule(at_ms, EventKind::SiteCrash { step });
                at_ms += self.rng.between(1500, 3000);
            }
        }
        if self.scenario.crashes && gst_ms > 0 {
            let correct: Vec<usize> = (0..self.nodes.len())
                .filter(|index| self.is_correct(*index))
                .collect();
            let crash_count = 1 + self.rng.below(correct.len() as u64 + 1);
            for _ in 0..crash_count {
                let Some(node) = correct
                    .get(self.rng.below(correct.len() as u64) as usize)
                    .copied()
                else {
                    continue;
                };
                let crash_ms = self.rng.below(gst_ms * 3 / 4);
                let restart_ms = (crash_ms + self.rng.between(100, 4000)).min(gst_ms);
                self.schedule(crash_ms, EventKind::Crash { node });
                self.schedule(restart_ms, EventKind::Restart { node });
            }
        }
    }

    fn start_node(&mut self, index: usize) -> Result<(), Failure> {
        let config = self.scenario.config;
        let ignore_lock = self.scenario.ignore_lock;
        let Some(node) = self.nodes.get_mut(index) else {
            return Ok(());
        };
        if node.machine.is_some()
            || matches!(
                node.role,
                Role::Byzantine(Byzantine::Silent | Byzantine::RevivedPolka)
            )
        {
            return Ok(());
        }
        let built = match node.persisted.clone() {
            Some(persisted) => Consensus::restore(
                config,
                SIM_CHAIN_ID,
                node.signer.clone(),
                self.verifier.clone(),
                persisted,
            ),
            None => Consensus::new(
                config,
                SIM_CHAIN_ID,
                node.signer.clone(),
                self.verifier.clone(),
            ),
        };
        let mut machine = match built {
            Ok(machine) => machine,
            Err(error) => {
                let violation = format!("validator {index} cannot start: {error}");
                return Err(self.fail(violation));
            }
        };
        if (ignore_lock && node.role == Role::Correct)
            || node.role == Role::Byzantine(Byzantine::Amnesia)
            || node.role == Role::Byzantine(Byzantine::HiddenLock)
        {
            machine.ignore_lock_rule_for_fault_injection();
        }
        #[cfg(feature = "mutants")]
        if let (Some(mutant), Role::Correct) = (self.mutant, node.role) {
            machine.inject_mutant(mutant);
        }
        node.machine = Some(machine);
        node.last_gossip_position = None;
        let height = node.decisions.keys().next_back().map_or(1, |last| last + 1);
        let validator_set = self.validator_set.clone();
        self.feed(
            index,
            Input::NewHeight {
                height,
                validator_set,
            },
        )
    }

    fn process(&mut self, event: EventKind) -> Result<(), Failure> {
        match event {
            EventKind::Deliver { to, from, message } => self.deliver(to, from, message),
            EventKind::Timeout {
                node,
                incarnation,
                height,
                round,
                step,
            } => {
                let current = self
                    .nodes
                    .get(node)
                    .is_some_and(|state| state.incarnation == incarnation);
                if current {
                    self.feed(
                        node,
                        Input::Timeout {
                            height,
                            round,
                            step,
                        },
                    )
                } else {
                    Ok(())
                }
            }
            EventKind::Gossip { node } => {
                if self
                    .nodes
                    .get(node)
                    .is_some_and(|state| state.role == Role::Byzantine(Byzantine::FutureRoundFlood))
                {
                    self.flood_future_rounds(node);
                }
                self.gossip(node);
                self.schedule(self.now_ms + GOSSIP_INTERVAL_MS, EventKind::Gossip { node });
                Ok(())
            }
            EventKind::Crash { node } => {
                if let Some(state) = self.nodes.get_mut(node) {
                    // Crash in the middle of the next action list, or right now.
                    if state.machine.is_some() {
                        state.crash_armed = true;
                    }
                }
                Ok(())
            }
            EventKind::Restart { node } => {
                if self.nodes.get(node).is_some_and(|state| state.crash_armed) {
                    self.crash_now(node);
                }
                self.start_node(node)
            }
            EventKind::SiteCrash { step } => {
                if !self.site_down {
                    self.site_crash_on = Some(step);
                }
                Ok(())
            }
            EventKind::SiteRestart => {
                self.site_down = false;
                for node in 0..self.nodes.len() {
                    if !self.is_correct(node) {
                        continue;
                    }
                    if self.nodes.get(node).is_some_and(|state| state.crash_armed) {
                        self.crash_now(node);
                    }
                    self.start_node(node)?;
                }
                Ok(())
            }
            EventKind::PartitionForm => {
                let count = self.nodes.len();
                let mut side = BTreeSet::new();
                let size = self.rng.between(1, (count as u64 - 1).max(1));
                while (side.len() as u64) < size {
                    side.insert(self.rng.below(count as u64) as usize);
                }
                self.partition = Some(side);
                Ok(())
            }
            EventKind::PartitionHeal => {
                self.partition = None;
                Ok(())
            }
        }
    }

    /// Every correct validator goes down: `trigger` now, each other one now or halfway
    /// through the actions of its next input; all restart together, by GST.
    fn crash_site(&mut self, trigger: usize) {
        self.site_crash_on = None;
        self.site_down = true;
        for index in 0..self.nodes.len() {
            if !self.is_correct(index) {
                continue;
            }
            let Some(step) = self
                .nodes
                .get(index)
                .and_then(|node| node.machine.as_ref())
                .and_then(|machine| machine.position())
                .map(|position| position.2)
            else {
                continue;
            };
            let slot = match step {
                Step::Propose => 0,
                Step::Prevote => 1,
                Step::Precommit => 2,
            };
            if let Some(count) = self.report.site_crashes_by_step.get_mut(slot) {
                *count += 1;
            }
            if index == trigger || self.rng.chance(500) {
                self.crash_now(index);
            } else if let Some(node) = self.nodes.get_mut(index) {
                node.crash_armed = true;
            }
        }
        let restart_ms = (self.now_ms + self.rng.between(100, 3000)).min(self.scenario.gst_ms);
        self.schedule(restart_ms.max(self.now_ms + 1), EventKind::SiteRestart);
    }

    fn crash_now(&mut self, index: usize) {
        if let Some(node) = self.nodes.get_mut(index) {
            node.machine = None;
            node.crash_armed = false;
            node.incarnation += 1;
            self.report.crashes += 1;
        }
    }

    fn gossip(&mut self, index: usize) {
        let Some(node) = self.nodes.get_mut(index) else {
            return;
        };
        let Some(machine) = node.machine.as_ref() else {
            return;
        };
        let position = machine.position();
        if position != node.last_gossip_position {
            node.last_gossip_position = position;
            return;
        }
        let messages = machine.gossip_messages();
        for message in messages {
            let message = match message {
                SignedMessage::Proposal(proposal) => NetMessage::Proposal(proposal),
                SignedMessage::Vote(vote) => NetMessage::Vote(vote),
            };
            self.broadcast(index, &message);
        }
    }

    fn broadcast(&mut self, from: usize, message: &NetMessage) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, message.clone());
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, message: NetMessage) {
        let before_gst = self.now_ms < self.scenario.gst_ms;
        if let Some(side) = &self.partition
            && side.contains(&from) != side.contains(&to)
        {
            return;
        }
        if before_gst && self.scenario.isolate_deciders && self.is_ahead(from, to) {
            return;
        }
        if before_gst && self.rng.chance(self.scenario.drop_per_mille_before_gst) {
            return;
        }
        let (low, high) = if before_gst {
            self.scenario.delay_before_gst_ms
        } else {
            self.scenario.delay_after_gst_ms
        };
        let copies = if self.rng.chance(self.scenario.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at_ms = self.now_ms + self.rng.between(low, high);
            self.schedule(
                at_ms,
                EventKind::Deliver {
                    to,
                    from,
                    message: message.clone(),
                },
            );
        }
    }

    /// Whether `from` has decided the height `to` is still at (or a later one).
    fn is_ahead(&self, from: usize, to: usize) -> bool {
        let decided = |index: usize| {
            self.nodes
                .get(index)
                .and_then(|node| node.decisions.keys().next_back().copied())
                .unwrap_or(0)
        };
        decided(from) > decided(to)
    }

    fn deliver(&mut self, to: usize, from: usize, message: NetMessage) -> Result<(), Failure> {
        let Some(node) = self.nodes.get(to) else {
            return Ok(());
        };
        let Some(machine) = node.machine.as_ref() else {
            return Ok(());
        };
        self.report.messages_delivered += 1;
        // Block sync, as the node does it: a peer that is behind gets the certificate of the
        // height it is at.
        let current_height = machine.position().map_or(0, |(height, _, _)| height);
        let height = message.height();
        if height < current_height && !matches!(message, NetMessage::Certificate(_)) {
            let recently = node
                .catch_up_sent_ms
                .get(&(from, height))
                .is_some_and(|sent_ms| self.now_ms < sent_ms + GOSSIP_INTERVAL_MS);
            if let (false, Some(certificate)) = (recently, node.decisions.get(&height).cloned()) {
                if let Some(node) = self.nodes.get_mut(to) {
                    node.catch_up_sent_ms.insert((from, height), self.now_ms);
                }
                self.send(to, from, NetMessage::Certificate(certificate));
            }
            return Ok(());
        }
        if self.withheld_by_reviver(to, &message) {
            return Ok(());
        }
        if let NetMessage::Proposal(proposal) = &message {
            self.shown
                .entry((to, proposal.proposal.height, proposal.proposal.round))
                .or_insert(proposal.proposal.value);
        }
        let input = match message {
            NetMessage::Proposal(proposal) => Input::Proposal(proposal),
            NetMessage::Vote(vote) => Input::Vote(vote),
            NetMessage::Certificate(certificate) => Input::CommitCertificate(certificate),
        };
        self.feed(to, input)
    }

    /// Feeds `input` to validator `index` and performs the actions, including the inputs
    /// they produce (values, verdicts, the next height).
    fn feed(&mut self, index: usize, input: Input<SimValue>) -> Result<(), Failure> {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let Some(node) = self.nodes.get_mut(index) else {
                return Ok(());
            };
            let crash_armed = node.crash_armed;
            let correct = node.role == Role::Correct;
            let Some(machine) = node.machine.as_mut() else {
                return Ok(());
            };
            let position_before = machine.position();
            self.applying_certificate = matches!(input, Input::CommitCertificate(_));
            let summary = if self.trace {
                Some(summarise_input(&input))
            } else {
                None
            };
            let mut actions = machine.handle(input);
            if let Some(summary) = summary {
                eprintln!(
                    "{:>7} v{index} {summary} -> {:?} {}",
                    self.now_ms,
                    machine.position(),
                    actions
                        .iter()
                        .map(summarise_action)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            // A site-wide crash hits when a correct validator has just entered its step.
            let position_after = machine.position();
            let site_crash = correct
                && position_after != position_before
                && self
                    .site_crash_on
                    .is_some_and(|step| position_after.is_some_and(|position| position.2 == step));
            if crash_armed || site_crash {
                // A crash between two actions: those after the cut never happen. A
                // broadcast after a persist may be lost, never the other way round.
                let cut = self.rng.below(actions.len() as u64 + 1) as usize;
                actions.truncate(cut);
            }
            for action in actions {
                self.apply(index, action, &mut inputs)?;
            }
            if correct && position_after != position_before && !self.revivers.is_empty() {
                self.revived_polka_react(index);
            }
            if site_crash {
                self.crash_site(index);
                return Ok(());
            }
            if crash_armed {
                self.crash_now(index);
                return Ok(());
            }
        }
        Ok(())
    }

    fn apply(
        &mut self,
        index: usize,
        action: Action<SimValue>,
        inputs: &mut VecDeque<Input<SimValue>>,
    ) -> Result<(), Failure> {
        let Some(role) = self.nodes.get(index).map(|node| node.role) else {
            return Ok(());
        };
        match action {
            Action::PersistSigningState(state) => {
                if let Some(node) = self.nodes.get_mut(index) {
                    node.persisted = Some(state);
                }
            }
            Action::BroadcastProposal(proposal) => {
                self.proposed.insert(proposal.proposal.value);
                if role == Role::Correct {
                    self.record_signed(index, SignedMessage::Proposal(proposal.clone()))?;
                }
                self.outsiders_vote_for(index, &proposal);
                match role {
                    Role::Byzantine(kind) => self.byzantine_proposal(index, kind, proposal),
                    Role::Correct => self.broadcast(index, &NetMessage::Proposal(proposal)),
                }
            }
            Action::BroadcastVote(vote) => {
                if role == Role::Correct {
                    self.record_signed(index, SignedMessage::Vote(vote.clone()))?;
                }
                match role {
                    Role::Byzantine(kind) => self.byzantine_vote(index, kind, vote),
                    Role::Correct => self.broadcast(index, &NetMessage::Vote(vote)),
                }
            }
            Action::ScheduleTimeout {
                height,
                round,
                step,
                duration_ms,
            } => {
                let incarnation = self.nodes.get(index).map_or(0, |node| node.incarnation);
                self.schedule(
                    self.now_ms + duration_ms,
                    EventKind::Timeout {
                        node: index,
                        incarnation,
                        height,
                        round,
                        step,
                    },
                );
            }
            Action::RequestValue { height, round } => {
                let mut value = [0u8; 32];
                value[0] = index as u8;
                value[1..9].copy_from_slice(&height.to_be_bytes());
                value[9..13].copy_from_slice(&round.to_be_bytes());
                value[13..21].copy_from_slice(&self.rng.next_u64().to_be_bytes());
                if role == Role::Byzantine(Byzantine::InvalidValues) {
                    value[31] = INVALID_MARK;
                }
                inputs.push_back(Input::ProposeValue {
                    height,
                    round,
                    value,
                });
            }
            Action::ValidateValue { height, value } => {
                let valid =
                    role == Role::Byzantine(Byzantine::InvalidValues) || is_valid_value(&value);
                inputs.push_back(Input::ProposalVerdict {
                    height,
                    value,
                    valid,
                });
            }
            Action::Decide { certificate } => {
                self.record_decision(index, role, &certificate)?;
                let forgets = matches!(
                    role,
                    Role::Byzantine(Byzantine::Amnesia | Byzantine::HiddenLock)
                );
                if forgets && self.now_ms < self.scenario.gst_ms {
                    // Amnesia: before GST it forgets the decision and all it signed, and
                    // comes back to the same height with a blank state to sign again.
                    if let Some(node) = self.nodes.get_mut(index) {
                        node.machine = None;
                        node.persisted = None;
                        node.incarnation += 1;
                    }
                    let restart_ms = self.now_ms + self.rng.between(50, 500);
                    self.schedule(restart_ms, EventKind::Restart { node: index });
                    return Ok(());
                }
                let height = certificate.height;
                if let Some(node) = self.nodes.get_mut(index) {
                    node.decisions.insert(height, certificate);
                }
                inputs.push_back(Input::NewHeight {
                    height: height + 1,
                    validator_set: self.validator_set.clone(),
                });
            }
            Action::Evidence(evidence) => {
                if let Err(error) =
                    verify_evidence(&evidence, &self.validator_set, SIM_CHAIN_ID, &self.verifier)
                {
                    return Err(self.fail(format!(
                        "validator {index} reported evidence that does not verify: {error}"
                    )));
                }
                let accused = evidence.validator();
                if self
                    .nodes
                    .iter()
                    .any(|node| node.id == accused && node.role == Role::Correct)
                {
                    return Err(self.fail(format!(
                        "evidence against correct validator {accused:?}: {evidence:?}"
                    )));
                }
                self.report.evidence_recorded += 1;
            }
        }
        Ok(())
    }

    /// Sends a proposal of a Byzantine validator, as its kind misbehaves.
    fn byzantine_proposal(
        &mut self,
        index: usize,
        kind: Byzantine,
        proposal: SignedProposal<SimValue>,
    ) {
        let (height, round) = (proposal.proposal.height, proposal.proposal.round);
        match kind {
            Byzantine::Equivocate => {
                let other = self.variant_proposal(index, &proposal, 0xff);
                self.split_send(
                    index,
                    NetMessage::Proposal(proposal),
                    NetMessage::Proposal(other),
                );
            }
            Byzantine::SplitVotes => {
                let other = self.variant_proposal(index, &proposal, 0xff);
                for to in 0..self.nodes.len() {
                    if to == index {
                        continue;
                    }
                    let message = if self.side(to, height, round) {
                        proposal.clone()
                    } else {
                        other.clone()
                    };
                    self.send(index, to, NetMessage::Proposal(message));
                }
            }
            Byzantine::EquivocatingProposer => {
                let variants: Vec<SignedProposal<SimValue>> = (0..2 + self.rng.below(3))
                    .map(|variant| self.variant_proposal(index, &proposal, variant as u8))
                    .collect();
                for to in 0..self.nodes.len() {
                    if to == index {
                        continue;
                    }
                    let pick = self.rng.below(variants.len() as u64) as usize;
                    if let Some(message) = variants.get(pick).cloned() {
                        self.send(index, to, NetMessage::Proposal(message));
                    }
                }
            }
            Byzantine::ForgedValidRound if round > 0 => {
                // Claim an earlier round as valid round for a value, and have every forger
                // prevote it in that round. The adversary sees everything: it picks a value
                // that correct validators prevoted in a round below some correct validator's
                // lock on another value (where the lock must forbid it, line 29); failing
                // that, a value someone was shown in a random earlier round.
                let (valid_round, value) = match self.lock_breaking_candidate(height, round) {
                    Some(candidate) => candidate,
                    None => {
                        let valid_round = self.rng.below(u64::from(round)) as Round;
                        let shown: Vec<SimValue> = (0..self.nodes.len())
                            .filter_map(|to| self.shown.get(&(to, height, valid_round)).copied())
                            .collect();
                        let value = match shown.len() {
                            0 => proposal.proposal.value,
                            count => shown
                                .get(self.rng.below(count as u64) as usize)
                                .copied()
                                .unwrap_or(proposal.proposal.value),
                        };
                        (valid_round, value)
                    }
                };
                let mut forged = proposal.proposal.clone();
                forged.value = value;
                forged.valid_round = Some(valid_round);
                let signature = self.sign(index, &forged.sign_bytes(SIM_CHAIN_ID));
                self.broadcast(
                    index,
                    &NetMessage::Proposal(SignedProposal {
                        proposal: forged,
                        signature,
                    }),
                );
                let forgers: Vec<usize> = (0..self.nodes.len())
                    .filter(|forger| {
                        self.nodes.get(*forger).is_some_and(|node| {
                            node.role == Role::Byzantine(Byzantine::ForgedValidRound)
                        })
                    })
                    .collect();
                // The correct validators' prevotes it builds on go along (anyone may relay
                // a signed message), so that the receivers can count the polka.
                let relayed = self
                    .prevoted
                    .get(&(height, valid_round))
                    .and_then(|by_value| by_value.get(&value))
                    .cloned()
                    .unwrap_or_default();
                for prevote in relayed {
                    self.broadcast(index, &NetMessage::Vote(prevote));
                }
                for forger in forgers {
                    let vote = self.signed_vote(
                        forger,
                        crate::types::VoteType::Prevote,
                        height,
                        valid_round,
                        Some(value),
                    );
                    self.broadcast(forger, &NetMessage::Vote(vote));
                }
            }
            _ => self.broadcast(index, &NetMessage::Proposal(proposal)),
        }
    }

    /// Sends a vote of a Byzantine validator, as its kind misbehaves.
    fn byzantine_vote(&mut self, index: usize, kind: Byzantine, vote: SignedVote<SimValue>) {
        let (height, round) = (vote.vote.height, vote.vote.round);
        match kind {
            Byzantine::Equivocate => {
                let mut other = vote.vote.clone();
                other.value = match other.value {
                    Some(_) => None,
                    None => self.proposed.iter().next_back().copied(),
                };
                let other = self.signed_vote(
                    index,
                    other.vote_type,
                    other.height,
                    other.round,
                    other.value,
                );
                self.split_send(index, NetMessage::Vote(vote), NetMessage::Vote(other));
            }
            kind if kind.splits_votes() => {
                // Each validator gets a vote for the value it was shown in this round.
                for to in 0..self.nodes.len() {
                    if to == index {
                        continue;
                    }
                    let value = self
                        .shown
                        .get(&(to, height, round))
                        .copied()
                        .or(vote.vote.value);
                    let message = if value == vote.vote.value {
                        vote.clone()
                    } else {
                        self.signed_vote(index, vote.vote.vote_type, height, round, value)
                    };
                    self.send(index, to, NetMessage::Vote(message));
                }
            }
            Byzantine::HiddenLock if vote.vote.value.is_some() => {
                // The value to one side, nil to the other: a polka only some see.
                let nil = self.signed_vote(index, vote.vote.vote_type, height, round, None);
                for to in 0..self.nodes.len() {
                    if to == index {
                        continue;
                    }
                    let message = if self.side(to, height, round) {
                        vote.clone()
                    } else {
                        nil.clone()
                    };
                    self.send(index, to, NetMessage::Vote(message));
                }
            }
            _ => self.broadcast(index, &NetMessage::Vote(vote)),
        }
    }

    /// Whether the revived-polka adversary, which schedules the network before GST, keeps
    /// this message from correct validator `to` (see [`Byzantine::RevivedPolka`]): in round
    /// 0, the correct validators' prevotes for a value from anyone but the few after `to` in
    /// a ring of the correct validators, while `to` is in round 0; in round 1, the decider's
    /// precommit for a value and the revivers' votes for a value from everyone but the
    /// decider. Only votes of the height `to` is at.
    fn withheld_by_reviver(&self, to: usize, message: &NetMessage) -> bool {
        if self.revivers.is_empty() || self.now_ms >= self.scenario.gst_ms || !self.is_correct(to) {
            return false;
        }
        let NetMessage::Vote(vote) = message else {
            return false;
        };
        let vote = &vote.vote;
        let Some((height, round, _)) = self
            .nodes
            .get(to)
            .and_then(|node| node.machine.as_ref())
            .and_then(|machine| machine.position())
        else {
            return false;
        };
        if vote.value.is_none() || vote.height != height {
            return false;
        }
        let Some(signer) = self.validator_set.position(&vote.validator) else {
            return false;
        };
        match vote.round {
            0 if vote.vote_type == crate::types::VoteType::Prevote && round == 0 => {
                let correct = self.correct_indexes();
                let ring = |index: usize| correct.iter().position(|other| *other == index);
                let (Some(from_position), Some(to_position)) = (ring(signer), ring(to)) else {
                    return false;
                };
                let distance = (from_position + correct.len() - to_position) % correct.len();
                distance != 0 && distance > self.revived_prevotes_shown()
            }
            1 => {
                let decider = self.revived_decider(height);
                Some(to) != decider
                    && (self.revivers.contains(&signer)
                        || (vote.vote_type == crate::types::VoteType::Precommit
                            && Some(signer) == decider))
            }
            _ => false,
        }
    }

    /// How many other correct validators' round-0 prevotes each correct validator is shown:
    /// with its own and the revivers' nil prevotes, a quorum of any prevotes (so that it
    /// leaves the round on its prevote timeout) and never a quorum for the value (equal
    /// powers: these scenarios give every validator power 1).
    fn revived_prevotes_shown(&self) -> usize {
        (self.validator_set.quorum_power() as usize).saturating_sub(1 + self.revivers.len())
    }

    fn correct_indexes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|index| self.is_correct(*index))
            .collect()
    }

    /// The correct validator the revived-polka adversary lets decide `height` in round 1.
    fn revived_decider(&self, height: Height) -> Option<usize> {
        let correct = self.correct_indexes();
        let mut rng = Rng::new(self.seed ^ height.wrapping_mul(0xd6e8_feb8_6659_fd93));
        correct
            .get(rng.below(correct.len() as u64) as usize)
            .copied()
    }

    /// The revivers' part when correct validator `to` has just moved (see
    /// [`Byzantine::RevivedPolka`]): the round's proposal if a reviver proposes it, and
    /// their votes of the steps `to` has reached, sent to `to`.
    fn revived_polka_react(&mut self, to: usize) {
        if self.now_ms >= self.scenario.gst_ms {
            return;
        }
        let Some((height, round, step)) = self
            .nodes
            .get(to)
            .and_then(|node| node.machine.as_ref())
            .and_then(|machine| machine.position())
        else {
            return;
        };
        let proposer = self
            .validator_set
            .position(&self.validator_set.proposer(height, round));
        if let Some(proposer) = proposer.filter(|proposer| self.revivers.contains(proposer))
            && self.revived_proposals_sent.insert((height, round))
        {
            if round <= 1 {
                let mut value = [0u8; 32];
                value[0] = proposer as u8;
                value[1..9].copy_from_slice(&height.to_be_bytes());
                value[9..13].copy_from_slice(&round.to_be_bytes());
                value[13..21].copy_from_slice(&self.rng.next_u64().to_be_bytes());
                self.revived_propose(proposer, height, round, value, None);
            } else if !self.revive_polka(proposer, height, round) {
                // Not ready (the decider has not decided yet): try again on the next move.
                self.revived_proposals_sent.remove(&(height, round));
            }
        }
        for (vote_step, vote_type) in [
            (Step::Prevote, crate::types::VoteType::Prevote),
            (Step::Precommit, crate::types::VoteType::Precommit),
        ] {
            if vote_step > step
                || !self
                    .revived_votes_sent
                    .insert((to, height, round, vote_step))
            {
                continue;
            }
            let value = match self.revived_attacks.get(&height) {
                Some((attack_round, value)) if *attack_round == round => Some(*value),
                _ if round == 1 && self.revived_decider(height) == Some(to) => {
                    self.shown.get(&(to, height, 1)).copied()
                }
                _ => None,
            };
            for reviver in self.revivers.clone() {
                let vote = self.signed_vote(reviver, vote_type, height, round, value);
                self.send(reviver, to, NetMessage::Vote(vote));
            }
        }
    }

    fn revived_propose(
        &mut self,
        proposer: usize,
        height: Height,
        round: Round,
        value: SimValue,
        valid_round: Option<Round>,
    ) {
        let Some(id) = self.nodes.get(proposer).map(|node| node.id) else {
            return;
        };
        let proposal = crate::messages::Proposal {
            height,
            round,
            value,
            valid_round,
            proposer: id,
        };
        let signature = self.sign(proposer, &proposal.sign_bytes(SIM_CHAIN_ID));
        self.proposed.insert(value);
        self.broadcast(
            proposer,
            &NetMessage::Proposal(SignedProposal {
                proposal,
                signature,
            }),
        );
    }

    /// Step 3 of [`Byzantine::RevivedPolka`]: once the decider has decided `height`, the
    /// reviver `proposer` re-proposes in `round` the value correct validators prevoted in
    /// round 0, with valid round 0, relays those prevotes, and every reviver prevotes it in
    /// round 0 and prevotes and precommits it in `round`. False when not ready.
    fn revive_polka(&mut self, proposer: usize, height: Height, round: Round) -> bool {
        let Some(decided) = self
            .revived_decider(height)
            .and_then(|decider| self.nodes.get(decider))
            .and_then(|node| node.decisions.get(&height))
            .map(|certificate| certificate.value)
        else {
            return false;
        };
        let Some((value, prevotes)) = self.prevoted.get(&(height, 0)).and_then(|by_value| {
            by_value
                .iter()
                .filter(|(value, _)| **value != decided)
                .max_by_key(|(_, prevotes)| prevotes.len())
                .map(|(value, prevotes)| (*value, prevotes.clone()))
        }) else {
            return false;
        };
        self.revived_attacks.insert(height, (round, value));
        self.report.revived_polkas += 1;
        self.revived_propose(proposer, height, round, value, Some(0));
        for prevote in prevotes {
            self.broadcast(proposer, &NetMessage::Vote(prevote));
        }
        for reviver in self.revivers.clone() {
            for (vote_type, vote_round) in [
                (crate::types::VoteType::Prevote, 0),
                (crate::types::VoteType::Prevote, round),
                (crate::types::VoteType::Precommit, round),
            ] {
                let vote = self.signed_vote(reviver, vote_type, height, vote_round, Some(value));
                self.broadcast(reviver, &NetMessage::Vote(vote));
            }
        }
        true
    }

    /// For the forger: a (round, value) below `round` that correct validators prevoted and
    /// that some correct validator's later lock on another value forbids, the value with the
    /// most correct prevotes first.
    fn lock_breaking_candidate(&self, height: Height, round: Round) -> Option<(Round, SimValue)> {
        let mut best: Option<(usize, Round, SimValue)> = None;
        for node in &self.nodes {
            if node.role != Role::Correct {
                continue;
            }
            let Some(machine) = node.machine.as_ref() else {
                continue;
            };
            if machine.position().map(|position| position.0) != Some(height) {
                continue;
            }
            let Some(locked) = machine.locked() else {
                continue;
            };
            for valid_round in 0..locked.round.min(round) {
                let Some(by_value) = self.prevoted.get(&(height, valid_round)) else {
                    continue;
                };
                for (value, voters) in by_value {
                    if *value != locked.value
                        && best.is_none_or(|(count, _, _)| voters.len() > count)
                    {
                        best = Some((voters.len(), valid_round, *value));
                    }
                }
            }
        }
        best.map(|(_, valid_round, value)| (valid_round, value))
    }

    /// A copy of `proposal` with byte 13 of its value flipped by `flip`, signed.
    fn variant_proposal(
        &mut self,
        index: usize,
        proposal: &SignedProposal<SimValue>,
        flip: u8,
    ) -> SignedProposal<SimValue> {
        if flip == 0 {
            return proposal.clone();
        }
        let mut other = proposal.proposal.clone();
        other.value[13] ^= flip;
        self.proposed.insert(other.value);
        let signature = self.sign(index, &other.sign_bytes(SIM_CHAIN_ID));
        SignedProposal {
            proposal: other,
            signature,
        }
    }

    fn signed_vote(
        &self,
        index: usize,
        vote_type: crate::types::VoteType,
        height: Height,
        round: Round,
        value: Option<SimValue>,
    ) -> SignedVote<SimValue> {
        let vote = crate::messages::Vote {
            vote_type,
            height,
            round,
            value,
            validator: self
                .nodes
                .get(index)
                .map_or_else(ValidatorId::default, |node| node.id),
        };
        let signature = self.sign(index, &vote.sign_bytes(SIM_CHAIN_ID));
        SignedVote { vote, signature }
    }

    /// Which side of the validators `to` is on for the split adversaries at this height and
    /// round: a bipartition drawn anew for each, from the seed.
    fn side(&self, to: usize, height: Height, round: Round) -> bool {
        let mut rng = Rng::new(
            self.seed
                ^ height.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ u64::from(round).wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
        );
        (rng.next_u64() >> (to % 64)) & 1 == 1
    }

    /// The outsiders (keys not in the set) prevote and precommit for every proposal.
    fn outsiders_vote_for(&mut self, from: usize, proposal: &SignedProposal<SimValue>) {
        let votes: Vec<SignedVote<SimValue>> = self
            .outsiders
            .iter()
            .flat_map(|signer| {
                [
                    crate::types::VoteType::Prevote,
                    crate::types::VoteType::Precommit,
                ]
                .map(|vote_type| {
                    let vote = crate::messages::Vote {
                        vote_type,
                        height: proposal.proposal.height,
                        round: proposal.proposal.round,
                        value: Some(proposal.proposal.value),
                        validator: signer.id(),
                    };
                    let signature = signer.sign(&vote.sign_bytes(SIM_CHAIN_ID));
                    SignedVote { vote, signature }
                })
            })
            .collect();
        for vote in votes {
            self.broadcast(from, &NetMessage::Vote(vote));
        }
    }

    /// The flood of a [`Byzantine::FutureRoundFlood`] validator: prevotes for the last round
    /// inside the others' window and for one beyond it.
    fn flood_future_rounds(&mut self, index: usize) {
        let Some((height, round, _)) = self
            .nodes
            .get(index)
            .and_then(|node| node.machine.as_ref())
            .and_then(|machine| machine.position())
        else {
            return;
        };
        let lookahead = crate::limits::MAX_ROUND_LOOKAHEAD;
        for ahead in [lookahead, lookahead + 8] {
            let vote = self.signed_vote(
                index,
                crate::types::VoteType::Prevote,
                height,
                round.saturating_add(ahead),
                None,
            );
            self.broadcast(index, &NetMessage::Vote(vote));
        }
    }

    fn sign(&self, index: usize, message: &[u8]) -> crate::types::Signature {
        match self.nodes.get(index) {
            Some(node) => node.signer.sign(message),
            None => crate::types::Signature([0; 64]),
        }
    }

    fn split_send(&mut self, from: usize, first: NetMessage, second: NetMessage) {
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let message = if self.rng.chance(500) {
                first.clone()
            } else {
                second.clone()
            };
            self.send(from, to, message);
        }
    }

    /// Records a message a correct validator broadcasts, checking that its signing state
    /// was persisted first and that it never signed a different message for the slot.
    fn record_signed(
        &mut self,
        index: usize,
        message: SignedMessage<SimValue>,
    ) -> Result<(), Failure> {
        let step = match &message {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(vote) => vote.vote.vote_type.into(),
        };
        let key = (message.signer(), message.height(), message.round(), step);
        let persisted = self
            .nodes
            .get(index)
            .and_then(|node| node.persisted.as_ref());
        let persisted_slot = persisted.map(|state| (state.height(), state.round(), state.step()));
        // Covered: the write-ahead log holds this very message, or the state is of a later
        // slot than it (the log of an earlier height was dropped for a newer one).
        let covered = persisted.is_some_and(|state| {
            state.signed_messages().any(|logged| *logged == message)
                || (state.height(), state.round(), state.step()) > (key.1, key.2, key.3)
        });
        if !covered {
            return Err(self.fail(format!(
                "validator {index} broadcast {message:?} before persisting a signing state that covers it \
                 (persisted: {persisted_slot:?})"
            )));
        }
        if let SignedMessage::Vote(vote) = &message
            && vote.vote.vote_type == crate::types::VoteType::Prevote
            && let Some(value) = vote.vote.value
        {
            self.prevoted
                .entry((vote.vote.height, vote.vote.round))
                .or_default()
                .entry(value)
                .or_default()
                .push(vote.clone());
        }
        match self.signed_by_correct.get(&key) {
            Some(previous) if *previous != message => Err(self.fail(format!(
                "correct validator {:?} signed two different messages for height {} round {} step {:?}: \
                 {previous:?} and {message:?}",
                key.0, key.1, key.2, key.3
            ))),
            Some(_) => Ok(()),
            None => {
                self.signed_by_correct.insert(key, message);
                Ok(())
            }
        }
    }

    fn record_decision(
        &mut self,
        index: usize,
        role: Role,
        certificate: &CommitCertificate<SimValue>,
    ) -> Result<(), Failure> {
        if role != Role::Correct {
            return Ok(());
        }
        let height = certificate.height;
        if let Err(error) = verify_commit_certificate(
            certificate,
            &self.validator_set,
            SIM_CHAIN_ID,
            &self.verifier,
        ) {
            return Err(self.fail(format!(
                "validator {index} decided height {height} with a bad certificate: {error}"
            )));
        }
        // The threshold once more, by the simulation's own arithmetic rather than the
        // crate's, so that a bug in the crate's counting cannot hide from it.
        let mut signers = BTreeSet::new();
        let mut signed_power: u128 = 0;
        for signature in &certificate.signatures {
            match self.validator_set.voting_power(&signature.validator) {
                Some(power) if signers.insert(signature.validator) => {
                    signed_power += u128::from(power)
                }
                _ => {
                    return Err(self.fail(format!(
                        "validator {index} decided height {height} with a certificate signed by a stranger or \
                         twice by {:?}",
                        signature.validator
                    )));
                }
            }
        }
        if !self.applying_certificate
            && self
                .shown
                .get(&(index, height, certificate.round))
                .is_some_and(|first| *first != certificate.value)
        {
            self.report.decisions_on_later_proposal += 1;
        }
        if signed_power * 3 <= u128::from(self.validator_set.total_voting_power()) * 2 {
            return Err(self.fail(format!(
                "validator {index} decided height {height} with {signed_power} of {} voting power, not more \
                 than two thirds",
                self.validator_set.total_voting_power()
            )));
        }
        let value = certificate.value;
        if let Some(earlier) = self.decided.get(&height) {
            if *earlier != value {
                return Err(self.fail(format!(
                    "agreement violated at height {height}: validator {index} decided {value:?}, another correct \
                     validator decided {earlier:?}"
                )));
            }
        } else {
            self.decided.insert(height, value);
        }
        if !self.proposed.contains(&value) || !is_valid_value(&value) {
            return Err(self.fail(format!(
                "validity violated at height {height}: validator {index} decided {value:?}, which was not proposed \
                 or is invalid"
            )));
        }
        self.report.max_decision_round = self.report.max_decision_round.max(certificate.round);
        Ok(())
    }

    fn note_joined_height(&mut self) {
        let mut lowest: Option<Height> = None;
        let mut rounds_by_height: BTreeMap<Height, Round> = BTreeMap::new();
        for node in &self.nodes {
            if node.role != Role::Correct {
                continue;
            }
            let Some((height, round, _)) =
                node.machine.as_ref().and_then(|machine| machine.position())
            else {
                return;
            };
            lowest = Some(lowest.map_or(height, |lowest| lowest.min(height)));
            let highest = rounds_by_height.entry(height).or_insert(round);
            *highest = (*highest).max(round);
        }
        if let Some(lowest) = lowest
            && lowest > self.lowest_correct_height
        {
            self.lowest_correct_height = lowest;
            let round = rounds_by_height.get(&lowest).copied().unwrap_or(0);
            self.joined.insert(lowest, (self.now_ms, round));
        }
    }

    /// The most rounds a height may take, counted from round `from_round`, in which every
    /// correct validator had reached it, once the network has stabilised: one more than the
    /// rounds it takes from there until every correct validator has been the proposer once
    /// (n + 1 at most with equal powers, where the proposer rotates). A round fails when its
    /// proposer is Byzantine, and also when a correct proposer does not know the value that
    /// another correct validator locked (with an equivocator's help) before everyone reached
    /// the height; by the time every correct validator has proposed, the locked one has too,
    /// re-proposing its valid value with the prevotes that justify it, which gossip has
    /// delivered to all by then. With weighted proposers a validator of small power proposes
    /// rarely, and the bound grows with the gap until its turn.
    fn liveness_round_bound(&self, height: Height, from_round: Round) -> Round {
        let correct: BTreeSet<ValidatorId> = self
            .nodes
            .iter()
            .filter(|node| node.role == Role::Correct)
            .map(|node| node.id)
            .collect();
        let period =
            u32::try_from(self.validator_set.proposer_schedule().len()).unwrap_or(u32::MAX);
        let mut proposed = BTreeSet::new();
        for offset in 0..period {
            let proposer = self
                .validator_set
                .proposer(height, from_round.saturating_add(offset));
            if correct.contains(&proposer) {
                proposed.insert(proposer);
            }
            if proposed.len() == correct.len() {
                return offset.saturating_add(2);
            }
        }
        // Every validator proposes within one period.
        period.saturating_add(1)
    }

    fn check_liveness(&mut self) -> Result<(), Failure> {
        let settled_ms = self.scenario.gst_ms
            + if self.scenario.gst_ms > 0 {
                2 * GOSSIP_INTERVAL_MS
            } else {
                0
            };
        let mut worst_after_gst = 0;
        let mut violation = None;
        for (index, node) in self.nodes.iter().enumerate() {
            if node.role != Role::Correct {
                continue;
            }
            let missing: Vec<Height> = (1..=self.scenario.heights)
                .filter(|height| !node.decisions.contains_key(height))
                .collect();
            if !missing.is_empty() && violation.is_none() {
                violation = Some(format!(
                    "liveness violated: correct validator {index} has not decided heights {missing:?} by {} ms \
                     (GST {} ms); position {:?}",
                    self.now_ms,
                    self.scenario.gst_ms,
                    node.machine.as_ref().and_then(|machine| machine.position())
                ));
            }
            for (height, certificate) in &node.decisions {
                // Rounds are counted from the moment every correct validator was at this
                // height, once the network had settled after GST.
                let Some((joined_ms, joined_round)) = self.joined.get(height).copied() else {
                    continue;
                };
                if joined_ms < settled_ms {
                    continue;
                }
                let rounds_taken = certificate.round.saturating_sub(joined_round);
                worst_after_gst = worst_after_gst.max(rounds_taken);
                let bound = self.liveness_round_bound(*height, joined_round);
                if rounds_taken >= bound && violation.is_none() {
                    violation = Some(format!(
                        "liveness violated: validator {index} decided height {height} in round {}, {rounds_taken} \
                         rounds after every correct validator reached it (round {joined_round}) after GST; \
                         the bound is below {bound}",
                        certificate.round
                    ));
                }
            }
        }
        self.report.max_decision_round_after_gst = worst_after_gst;
        match violation {
            Some(violation) => Err(self.fail(violation)),
            None => Ok(()),
        }
    }
}

fn short(value: &SimValue) -> String {
    format!("{:02x}{:02x}{:02x}", value[0], value[13], value[31])
}

fn short_option(value: &Option<SimValue>) -> String {
    value.as_ref().map_or_else(|| "nil".to_string(), short)
}

fn summarise_input(input: &Input<SimValue>) -> String {
    match input {
        Input::NewHeight { height, .. } => format!("new-height {height}"),
        Input::Proposal(proposal) => format!(
            "proposal h{} r{} {} vr{:?} from {:?}",
            proposal.proposal.height,
            proposal.proposal.round,
            short(&proposal.proposal.value),
            proposal.proposal.valid_round,
            proposal.proposal.proposer
        ),
        Input::Vote(vote) => format!(
            "{:?} h{} r{} {} from {:?}",
            vote.vote.vote_type,
            vote.vote.height,
            vote.vote.round,
            short_option(&vote.vote.value),
            vote.vote.validator
        ),
        Input::Timeout {
            height,
            round,
            step,
        } => format!("timeout h{height} r{round} {step:?}"),
        Input::ProposeValue { value, .. } => format!("propose-value {}", short(value)),
        Input::ProposalVerdict { value, valid, .. } => format!("verdict {} {valid}", short(value)),
        Input::CommitCertificate(certificate) => {
            format!(
                "certificate h{} r{} {}",
                certificate.height,
                certificate.round,
                short(&certificate.value)
            )
        }
    }
}

fn summarise_action(action: &Action<SimValue>) -> String {
    match action {
        Action::PersistSigningState(_) => "persist".to_string(),
        Action::BroadcastProposal(proposal) => {
            format!(
                "PROPOSE r{} {}",
                proposal.proposal.round,
                short(&proposal.proposal.value)
            )
        }
        Action::BroadcastVote(vote) => {
            format!(
                "{:?} r{} {}",
                vote.vote.vote_type,
                vote.vote.round,
                short_option(&vote.vote.value)
            )
        }
        Action::ScheduleTimeout { round, step, .. } => format!("timer r{round} {step:?}"),
        Action::RequestValue { .. } => "request-value".to_string(),
        Action::ValidateValue { .. } => "validate".to_string(),
        Action::Decide { certificate } => format!(
            "DECIDE h{} r{} {}",
            certificate.height,
            certificate.round,
            short(&certificate.value)
        ),
        Action::Evidence(evidence) => format!("evidence against {:?}", evidence.validator()),
    }
}
