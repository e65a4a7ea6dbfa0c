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

/// Most events one run may process; a run that needs more has gone wrong.
pub const MAX_EVENTS_PER_RUN: u64 = 3_000_000;

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
        scenarios.push(Scenario {
            voting_powers: vec![1, 2, 3, 5, 8, 13, 21],
            byzantine: vec![Byzantine::Equivocate],
            crashes: true,
            ..Scenario::base("weighted-7", 7).hostile(8000)
        });
        scenarios
    }

    /// The scenario called `name`, among [`Scenario::all`] and the broken-lock one.
    pub fn named(name: &str) -> Option<Scenario> {
        Scenario::all()
            .into_iter()
            .chain([Scenario::broken_lock()])
            .find(|scenario| scenario.name == name)
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

    /// The most rounds a height may take, counted from when every correct validator had
    /// reached it, once the network has stabilised: n + 1. A round fails when its proposer
    /// is Byzantine, and also when a correct proposer does not know the value that another
    /// correct validator locked before everyone reached the height (a lock that an
    /// equivocator helped to form). Within n rounds every correct validator proposes once,
    /// the locked one included, re-proposing its valid value with the prevotes that
    /// justify it, which gossip has delivered to all by then.
    pub fn liveness_round_bound(&self) -> Round {
        self.validators as Round + 1
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
            if byzantine_power * 3 < total_power {
                break;
            }
        }
        let byzantine_power: u64 = byzantine_indexes.iter().map(|index| power_of(*index)).sum();
        if byzantine_power * 3 >= total_power {
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
        })
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
            if self.report.events > MAX_EVENTS_PER_RUN {
                return Err(self.fail(format!("more than {MAX_EVENTS_PER_RUN} events")));
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
        if node.machine.is_some() || node.role == Role::Byzantine(Byzantine::Silent) {
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
        if ignore_lock && node.role == Role::Correct {
            machine.ignore_lock_rule_for_fault_injection();
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
            let Some(machine) = node.machine.as_mut() else {
                return Ok(());
            };
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
            if crash_armed {
                // A crash between two actions: those after the cut never happen. A
                // broadcast after a persist may be lost, never the other way round.
                let cut = self.rng.below(actions.len() as u64 + 1) as usize;
                actions.truncate(cut);
            }
            for action in actions {
                self.apply(index, action, &mut inputs)?;
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
                if role == Role::Byzantine(Byzantine::Equivocate) {
                    let mut other = proposal.proposal.clone();
                    other.value[13] ^= 0xff;
                    self.proposed.insert(other.value);
                    let signature = self.sign(index, &other.sign_bytes(SIM_CHAIN_ID));
                    let other = SignedProposal {
                        proposal: other,
                        signature,
                    };
                    self.split_send(
                        index,
                        NetMessage::Proposal(proposal),
                        NetMessage::Proposal(other),
                    );
                } else {
                    self.broadcast(index, &NetMessage::Proposal(proposal));
                }
            }
            Action::BroadcastVote(vote) => {
                if role == Role::Correct {
                    self.record_signed(index, SignedMessage::Vote(vote.clone()))?;
                }
                if role == Role::Byzantine(Byzantine::Equivocate) {
                    let mut other = vote.vote.clone();
                    other.value = match other.value {
                        Some(_) => None,
                        None => self.proposed.iter().next_back().copied(),
                    };
                    let signature = self.sign(index, &other.sign_bytes(SIM_CHAIN_ID));
                    let other = SignedVote {
                        vote: other,
                        signature,
                    };
                    self.split_send(index, NetMessage::Vote(vote), NetMessage::Vote(other));
                } else {
                    self.broadcast(index, &NetMessage::Vote(vote));
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
        let persisted_slot = self
            .nodes
            .get(index)
            .and_then(|node| node.persisted.as_ref())
            .map(|state| (state.height(), state.round(), state.step()));
        if persisted_slot.is_none_or(|slot| slot < (key.1, key.2, key.3)) {
            return Err(self.fail(format!(
                "validator {index} broadcast {message:?} before persisting a signing state that covers it \
                 (persisted: {persisted_slot:?})"
            )));
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

    fn check_liveness(&mut self) -> Result<(), Failure> {
        let settled_ms = self.scenario.gst_ms
            + if self.scenario.gst_ms > 0 {
                2 * GOSSIP_INTERVAL_MS
            } else {
                0
            };
        let bound = self.scenario.liveness_round_bound();
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
