//! The consensus engine's core: a synchronous driver of the Tendermint machine, in the style
//! of openraft's engine. The runtime (`super::Engine`) feeds it one [`Event`] at a time, with
//! the time of the event ([`Now`]), and performs the [`Command`]s it returns, in order,
//! feeding their results back as events. The core holds no channel, no timer and no task,
//! and reads no clock: time comes in with the events.
//!
//! The store's work (executing, verifying and committing a block) and the mempool's are
//! called synchronously through [`Shared`], whose store is a synchronous library: a verdict
//! or a commit is part of the step that asks for it, as the machine expects (ADR 0027). The
//! runtime runs each step where blocking is allowed. The only clock the core touches besides
//! [`Now`] is the injected [`Stopwatch`] that times the store's work for its histograms.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hutong_consensus::{
    Action, CommitCertificate as ConsensusCertificate, Config as MachineConfig, Consensus, Input,
    Round, SignedMessage, SigningState, Step, ValidatorId,
};
use hutong_core::block::{Block, validator_set, verify_block_certificate};
use hutong_core::crypto::{PublicKey, SecretKey};
use hutong_core::evidence::{Evidence, EvidenceKey};
use hutong_core::hash::Hash32;
use hutong_core::rules::{EvidenceRuleError, RuleError};
use hutong_core::suite::{Suite, SuiteSigner};
use hutong_core::tx::Transaction;
use hutong_ledger::store::{BlockError, Execution, Mode};

use crate::config::ConsensusConfig;
use crate::faults::{CatchUpForger, Equivocator};
use crate::limits::{
    CANDIDATES_MAX, CATCH_UP_BEFORE_VOTING_WAIT, CATCH_UP_PEER_SKIP, CATCH_UP_REQUEST_TIMEOUT,
    CATCH_UP_RETRIES_MAX, CATCH_UP_RETRY_FIRST, CATCH_UP_RETRY_MAX, CONSENSUS_MESSAGE_BYTES_MAX,
    PENDING_EVIDENCE_MAX, STATUS_INTERVAL, SYNC_BLOCKS_PER_REQUEST_MAX, SYNC_REQUEST_BYTES_MAX,
    SYNC_RESPONSE_BYTES_MAX, TRANSACTION_BATCH_BYTES_MAX, TRANSACTION_BATCH_COUNT_MAX,
    TRANSACTION_FETCH_ATTEMPTS_MAX,
};
use crate::messages::{
    self, CompactBlock, ConsensusEnvelope, ConsensusMessage, ProposedBlock, SyncRequest,
    SyncResponse, TransactionBatch, Value,
};
use crate::network::{RequestId, Topic};
use crate::penalty::{CertificateRefusal, PenaltyReason};
use crate::shared::Shared;

/// The time of an event: the monotonic instant for timers and the wall clock (milliseconds
/// since the Unix epoch) for block times and message envelopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub unix_ms: u64,
}

/// Reads a monotonic clock, only to time the store's work for the metrics.
pub type Stopwatch = fn() -> Instant;

/// What a request asks for, so that its answer finds its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Blocks with their certificates, from this node's next height (catch-up): the answer
    /// to catch-up request number `request`, so that a late answer to a request given up on
    /// is told apart from the current one.
    Blocks { request: u64 },
    /// The missing transactions of the proposed block `Value`.
    Transactions(Value),
}

/// A timer the core asked for with [`Command::Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The machine's round timeout of this height, round and step.
    Consensus {
        height: u64,
        round: Round,
        step: Step,
    },
    /// The moment this node, as proposer, builds its block. There is at most one: a new
    /// schedule replaces the previous one.
    Propose,
    /// The catch-up request number `request` has had [`CATCH_UP_REQUEST_TIMEOUT`] to be
    /// answered.
    CatchUpRequest { request: u64 },
    /// The backoff after failed catch-up requests has passed: ask again (ADR 0036).
    CatchUpRetry,
}

/// What the runtime feeds the core.
#[derive(Debug)]
pub enum Event {
    /// The node starts: the first event, once.
    Start,
    /// Gossip on the consensus topic (`from` is its author).
    Consensus {
        from: PublicKey,
        bytes: Vec<u8>,
    },
    /// Gossip on the transaction topic.
    TransactionBatch {
        from: PublicKey,
        bytes: Vec<u8>,
    },
    /// A peer's request, to be answered with [`Command::Respond`] under `request_id`.
    SyncRequest {
        from: PublicKey,
        request_id: RequestId,
        bytes: Vec<u8>,
    },
    /// The answer to a [`Command::Request`], or why there is none.
    Response {
        peer: PublicKey,
        purpose: Purpose,
        result: Result<Vec<u8>, String>,
    },
    /// The outcome of a [`Command::Admit`]: whether any transaction's signature failed.
    Admitted {
        from: PublicKey,
        bad_signature: bool,
    },
    /// A timer of [`Command::Schedule`] is due.
    TimerFired(Timer),
    /// The periodic status tick, every [`STATUS_INTERVAL`].
    StatusTick,
    /// The mempool gained transactions (a waiting proposer may propose sooner).
    MempoolChanged,
    /// A signing state write that had failed succeeded on a retry: what it records may
    /// leave now.
    SigningStateWritten,
    PeerConnected(PublicKey),
    PeerDisconnected(PublicKey),
}

/// What the core asks the runtime to do. The runtime performs a step's commands in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Write this signing state durably (write-temp, fsync, rename, fsync-directory) before
    /// performing any later command of the list: the [`Command::PublishSigned`] after it
    /// carries the message it records. If the write fails, the runtime keeps the state to
    /// retry, drops every `PublishSigned` until a retry succeeds, and then feeds
    /// [`Event::SigningStateWritten`].
    PersistSigningState(SigningState<Value>),
    /// Publish a message this node signed (a proposal or a vote) on the consensus topic;
    /// only if every `PersistSigningState` before it has been written (see there). Nothing
    /// is fed back.
    PublishSigned { bytes: Vec<u8> },
    /// Publish unsigned bytes (a status) on `topic`. Nothing is fed back.
    Publish { topic: Topic, bytes: Vec<u8> },
    /// Answer the peer's request `request_id`. Nothing is fed back.
    Respond {
        request_id: RequestId,
        bytes: Vec<u8>,
    },
    /// Send `bytes` to `peer` as a request; feed back [`Event::Response`] with the same
    /// peer and purpose, with the answer or the reason there is none. Exactly one response
    /// comes back for each request.
    Request {
        peer: PublicKey,
        bytes: Vec<u8>,
        purpose: Purpose,
    },
    /// Feed back [`Event::TimerFired`] with `timer` at `at` (at once if it has passed).
    /// A [`Timer::Propose`] replaces the one scheduled before.
    Schedule { timer: Timer, at: Instant },
    /// Tell the network that `peer` misbehaved (`reason.misbehaviour()` sets the weight).
    /// The core has already counted it under `reason.label()`. Nothing is fed back.
    Penalise {
        peer: PublicKey,
        reason: PenaltyReason,
    },
    /// Only these keys may stay connected (the registered nodes changed). Nothing is fed
    /// back.
    SetAllowed(Vec<PublicKey>),
    /// Admit these gossiped transactions into the mempool (signature checks: off the
    /// engine's task); feed back [`Event::Admitted`].
    Admit {
        from: PublicKey,
        transactions: Vec<Transaction>,
    },
}

/// The engine's own failures (the store's): they stop the node, which restarts cleanly.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(String),
    #[error("signing state file {path}: {error}")]
    SigningState {
        path: std::path::PathBuf,
        error: String,
    },
    #[error("consensus: {0}")]
    Consensus(String),
}

fn store_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Store(error.to_string())
}

/// Why the node catches up before it votes (ADR 0028).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUpCause {
    /// No signing state: a new validator, or one whose file was lost.
    NoSigningState,
    /// The operator started the node with `--resync`.
    Resync,
    /// The signing state is of a height below the store's head.
    SigningStateBehindStore,
}

/// The catch-up before voting in progress.
#[derive(Debug)]
struct CatchUp {
    cause: CatchUpCause,
    since: Instant,
    /// Whether a signing state was restored: the machine then refuses by itself anything
    /// that conflicts with what it signed.
    signing_state_restored: bool,
    /// When the wait without any peer's height was last logged.
    warned_at: Option<Instant>,
    /// The wait passed without a peer's height and nothing showed signing safe: the node
    /// stays non-signing and asks the registered peers itself.
    waited_out: bool,
}

/// The state of the catch-up before voting, as `hutong_catching_up_before_voting` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUpGauge {
    /// Not catching up: the node signs (a validator) or follows (an observer).
    Off = 0,
    /// Catching up to the height its peers report; nothing is signed.
    CatchingUp = 1,
    /// No registered peer reported a height within [`CATCH_UP_BEFORE_VOTING_WAIT`] and
    /// nothing shows that signing is safe: the node stays non-signing and keeps asking.
    WaitingForPeers = 2,
}

/// The catch-up request in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    request: u64,
    peer: PublicKey,
}

/// The catch-up requests: the one in flight, the failures in a row and the backoff they
/// set, the peers skipped after a failed answer (ADR 0036).
#[derive(Debug, Default)]
struct CatchUpRequests {
    in_flight: Option<InFlight>,
    /// Requests sent so far: the number of the next one, and whose turn it is among the
    /// peers able to serve, so that no single peer (one that answers with forgeries, say)
    /// is asked every time.
    sent: u64,
    /// Failed requests since the last one that advanced the chain.
    failures: u32,
    /// No request before this (the backoff after a failure).
    retry_at: Option<Instant>,
    /// Peers whose answer failed, not asked again before the time given while another
    /// peer can be.
    skipped: HashMap<PublicKey, Instant>,
}

/// A proposed block we hold, with its execution once we ran it.
#[derive(Debug)]
struct Candidate {
    block: ProposedBlock,
    /// The ids of `block.transactions`, in order.
    ids: Vec<Hash32>,
    execution: Option<Execution>,
    verdict: Option<bool>,
}

impl Candidate {
    fn compact(&self) -> CompactBlock {
        CompactBlock {
            header: self.block.header.clone(),
            transaction_ids: self.ids.clone(),
            evidence: self.block.evidence.clone(),
        }
    }
}

/// A proposed block some of whose transactions are not here yet: they are asked for by
/// request-response, from the proposer first.
#[derive(Debug)]
struct Incomplete {
    block: CompactBlock,
    have: HashMap<Hash32, Transaction>,
    /// The peers asked so far.
    asked: Vec<PublicKey>,
    /// The peer that relayed the proposal (it holds the block's transactions if it checked it).
    relay: PublicKey,
}

impl Incomplete {
    /// The ids of the block's transactions not here yet.
    fn missing(&self) -> Vec<Hash32> {
        self.block
            .transaction_ids
            .iter()
            .filter(|id| !self.have.contains_key(*id))
            .copied()
            .collect()
    }
}

/// How the core starts.
#[derive(Debug)]
pub struct CoreStart {
    pub node_key: SecretKey,
    pub config: ConsensusConfig,
    /// The signing state read from disk, if there is one.
    pub signing_state: Option<SigningState<Value>>,
    /// The operator asked for a resynchronisation (`hutong run --resync`).
    pub resync: bool,
    pub extra_allowed: Vec<PublicKey>,
    /// The time of construction.
    pub now: Now,
    pub stopwatch: Stopwatch,
}

/// The pure consensus driver.
pub struct Core {
    shared: Arc<Shared>,
    machine: Consensus<Value, SuiteSigner, Suite>,
    config: ConsensusConfig,
    key: PublicKey,
    candidates: HashMap<Value, Candidate>,
    /// Proposed blocks waiting for some of their transactions.
    incomplete: HashMap<Value, Incomplete>,
    awaiting_validation: HashSet<Value>,
    awaiting_value: Option<(u64, Round, Instant)>,
    /// When the [`Timer::Propose`] last scheduled is due.
    propose_at: Option<Instant>,
    height: u64,
    last_commit: Instant,
    /// The catch-up requests (ADR 0036).
    sync: CatchUpRequests,
    /// The machine's count of excess proposals already added to the metric.
    excess_proposals_counted: u64,
    peer_heights: HashMap<PublicKey, u64>,
    allowed: Vec<PublicKey>,
    extra_allowed: Vec<PublicKey>,
    /// Evidence seen by this node and not yet recorded on the ledger, for its next proposal.
    pending_evidence: Vec<Evidence>,
    /// Test-only: the signer of conflicting votes (see `faults`).
    equivocator: Option<Equivocator>,
    /// Test-only: the forger of the certificates this node serves in catch-up (see `faults`).
    catch_up_forger: Option<CatchUpForger>,
    /// While some, the machine is not started at any height and nothing is signed.
    catch_up: Option<CatchUp>,
    /// The height the catch-up before voting ended at, until the first signature after it
    /// is logged.
    caught_up_at: Option<u64>,
    now: Now,
    stopwatch: Stopwatch,
    /// The commands of the step being handled.
    out: Vec<Command>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("height", &self.height)
            .field("catching_up", &self.catch_up.is_some())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Builds the core at the store's next height, restoring the signing state if there is
    /// one (a restart never signs anything conflicting with what it signed). A validator
    /// without its signing state for the chain catches up before it votes (ADR 0028).
    pub fn new(shared: Arc<Shared>, start: CoreStart) -> Result<Self, EngineError> {
        let CoreStart {
            node_key,
            config,
            signing_state,
            resync,
            extra_allowed,
            now,
            stopwatch,
        } = start;
        let machine_config = MachineConfig {
            timeout_propose_base_ms: config.timeout_propose_ms,
            timeout_propose_increment_ms: config.timeout_propose_increment_ms,
            timeout_prevote_base_ms: config.timeout_prevote_ms,
            timeout_prevote_increment_ms: config.timeout_prevote_increment_ms,
            timeout_precommit_base_ms: config.timeout_precommit_ms,
            timeout_precommit_increment_ms: config.timeout_precommit_increment_ms,
        };
        let chain_id = shared.store.chain_id().to_owned();
        let key = node_key.public_key();
        let suite = shared.store.suite();
        let signer = suite.signer(node_key);
        let committed = shared.store.height().map_err(store_error)?;
        // The metrics of the last block hold from the start, not only from the next commit.
        let head = shared.store.head().map_err(store_error)?;
        shared.metrics.height.set(head.header.height as i64);
        shared.metrics.known_height.set(head.header.height as i64);
        shared
            .metrics
            .last_block_time_seconds
            .set(head.header.time as f64 / 1000.0);
        let signed_height = signing_state.as_ref().map(SigningState::height);
        // An observer, or a node of no voting power at its next height, signs nothing there
        // whatever it does: it follows at once (ADR 0036).
        let votes = shared
            .store
            .registry_for(committed + 1)
            .map_err(store_error)?
            .validators()
            .any(|node| node.key == key);
        let cause = match signed_height {
            _ if !votes => None,
            None => Some(CatchUpCause::NoSigningState),
            Some(_) if resync => Some(CatchUpCause::Resync),
            Some(signed) if signed < committed => Some(CatchUpCause::SigningStateBehindStore),
            Some(_) => None,
        };
        let machine = match signing_state {
            Some(state) => Consensus::restore(machine_config, chain_id, signer, suite, state),
            None => Consensus::new(machine_config, chain_id, signer, suite),
        }
        .map_err(|error| EngineError::Consensus(error.to_string()))?;
        let catch_up = cause.map(|cause| CatchUp {
            cause,
            since: now.instant,
            signing_state_restored: signed_height.is_some(),
            warned_at: None,
            waited_out: false,
        });
        Ok(Core {
            shared,
            machine,
            config,
            key,
            candidates: HashMap::new(),
            incomplete: HashMap::new(),
            awaiting_validation: HashSet::new(),
            awaiting_value: None,
            propose_at: None,
            height: committed + 1,
            last_commit: now.instant,
            sync: CatchUpRequests::default(),
            excess_proposals_counted: 0,
            peer_heights: HashMap::new(),
            allowed: Vec::new(),
            extra_allowed,
            pending_evidence: Vec::new(),
            equivocator: None,
            catch_up_forger: None,
            catch_up,
            caught_up_at: None,
            now,
            stopwatch,
            out: Vec::new(),
        })
    }

    /// Test-only fault injection: also sign and send a conflicting vote for every vote.
    pub fn with_equivocator(mut self, equivocator: Option<Equivocator>) -> Self {
        self.equivocator = equivocator;
        self
    }

    /// Test-only fault injection: serve catch-up blocks with forged certificates.
    pub fn with_catch_up_forger(mut self, forger: Option<CatchUpForger>) -> Self {
        self.catch_up_forger = forger;
        self
    }

    /// The next height to commit.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Whether the node is catching up before it votes (it signs nothing meanwhile).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn catching_up(&self) -> bool {
        self.catch_up.is_some()
    }

    /// The state of the catch-up before voting, as its gauge shows it.
    pub fn catch_up_gauge(&self) -> CatchUpGauge {
        match &self.catch_up {
            None => CatchUpGauge::Off,
            Some(catch_up) if catch_up.waited_out => CatchUpGauge::WaitingForPeers,
            Some(_) => CatchUpGauge::CatchingUp,
        }
    }

    /// Handles one event at `now`; returns the commands to perform, in order. An error is
    /// the store's and stops the node.
    pub fn handle(&mut self, now: Now, event: Event) -> Result<Vec<Command>, EngineError> {
        self.now = now;
        debug_assert!(self.out.is_empty());
        let result = self.dispatch(event);
        if result.is_ok() {
            self.schedule_proposal();
            self.shared
                .metrics
                .catching_up_before_voting
                .set(self.catch_up_gauge() as i64);
        }
        let commands = std::mem::take(&mut self.out);
        result.map(|()| commands)
    }

    fn dispatch(&mut self, event: Event) -> Result<(), EngineError> {
        match event {
            Event::Start => self.on_start(),
            Event::Consensus { from, bytes } => self.on_consensus_message(from, &bytes),
            Event::TransactionBatch { from, bytes } => {
                self.on_transaction_batch(from, &bytes);
                Ok(())
            }
            Event::SyncRequest {
                from,
                request_id,
                bytes,
            } => {
                self.on_sync_request(from, request_id, &bytes);
                Ok(())
            }
            Event::Response {
                peer,
                purpose: Purpose::Blocks { request },
                result,
            } => self.on_sync_response(peer, request, result),
            Event::Response {
                peer,
                purpose: Purpose::Transactions(value),
                result,
            } => self.on_transactions_fetched(value, peer, result),
            Event::Admitted {
                from,
                bad_signature,
            } => {
                if bad_signature {
                    self.penalise(from, PenaltyReason::BadSignature);
                }
                Ok(())
            }
            Event::TimerFired(timer) => self.on_timer(timer),
            Event::StatusTick => self.on_status_tick(),
            Event::MempoolChanged => Ok(()),
            Event::SigningStateWritten => {
                self.resend_latest();
                Ok(())
            }
            Event::PeerConnected(peer) => {
                tracing::debug!(%peer, "peer connected");
                Ok(())
            }
            Event::PeerDisconnected(peer) => {
                // A peer gone no longer counts towards the height to catch up to; it is
                // heard of again at its next status.
                self.peer_heights.remove(&peer);
                self.end_catch_up_if_done()
            }
        }
    }

    fn on_start(&mut self) -> Result<(), EngineError> {
        if let Some(catch_up) = &self.catch_up {
            tracing::warn!(
                cause = ?catch_up.cause,
                height = self.height - 1,
                "catching up before voting: nothing is signed until this node has reached its peers' height"
            );
        }
        self.start_height(self.height)
    }

    fn on_timer(&mut self, timer: Timer) -> Result<(), EngineError> {
        match timer {
            Timer::Consensus {
                height,
                round,
                step,
            } => {
                // A timeout of an earlier height is stale: the height has moved on.
                if height != self.height || self.catch_up.is_some() {
                    return Ok(());
                }
                self.feed(Input::Timeout {
                    height,
                    round,
                    step,
                })
            }
            Timer::Propose => {
                self.propose_at = None;
                self.maybe_propose()
            }
            Timer::CatchUpRequest { request } => {
                let Some(in_flight) = self.sync.in_flight else {
                    return Ok(());
                };
                if in_flight.request != request {
                    return Ok(());
                }
                tracing::info!(peer = %in_flight.peer, request, "catch-up request not answered in time; asking another peer");
                self.catch_up_request_failed(in_flight.peer, "timeout");
                self.end_catch_up_if_done()
            }
            Timer::CatchUpRetry => {
                if self.sync.retry_at.is_some_and(|at| at <= self.now.instant) {
                    self.sync.retry_at = None;
                    self.request_sync();
                }
                Ok(())
            }
        }
    }

    /// Schedules the proposer's build when it waits for a value and its deadline moved.
    fn schedule_proposal(&mut self) {
        let Some(at) = self.value_deadline() else {
            self.propose_at = None;
            return;
        };
        if self.propose_at != Some(at) {
            self.propose_at = Some(at);
            self.out.push(Command::Schedule {
                timer: Timer::Propose,
                at,
            });
        }
    }

    /// When a proposer waiting for a value proposes: soon after transactions arrive, or at
    /// the heartbeat when there are none.
    fn value_deadline(&self) -> Option<Instant> {
        let (_, _, requested) = self.awaiting_value?;
        let shared = &self.shared;
        let pending = shared
            .mempool
            .lock()
            .map(|mempool| {
                mempool.has_ready_within(
                    |signer| shared.committed_next_nonce(signer),
                    |signer| shared.quota_room(signer),
                )
            })
            .unwrap_or(false);
        Some(if pending {
            requested + Duration::from_millis(self.config.batch_wait_ms)
        } else {
            (self.last_commit + Duration::from_millis(self.config.heartbeat_ms)).max(requested)
        })
    }

    fn start_height(&mut self, height: u64) -> Result<(), EngineError> {
        self.height = height;
        self.awaiting_value = None;
        self.awaiting_validation.clear();
        self.candidates
            .retain(|_, candidate| candidate.block.header.height >= height);
        self.incomplete
            .retain(|_, incomplete| incomplete.block.header.height >= height);
        let registry = self
            .shared
            .store
            .registry_for(height)
            .map_err(store_error)?;
        let mut allowed: Vec<PublicKey> = registry.nodes.iter().map(|node| node.key).collect();
        allowed.extend(self.extra_allowed.iter().copied());
        if allowed != self.allowed {
            self.allowed = allowed.clone();
            self.out.push(Command::SetAllowed(allowed));
        }
        let set =
            validator_set(&registry).map_err(|error| EngineError::Consensus(error.to_string()))?;
        self.shared
            .status
            .validator
            .store(set.contains(&ValidatorId(self.key.0)), Ordering::Relaxed);
        if self.catch_up.is_some() {
            // The machine starts no height, so it signs nothing, until the catch-up ends.
            return self.end_catch_up_if_done();
        }
        self.feed(Input::NewHeight {
            height,
            validator_set: set,
        })
    }

    /// Ends the catch-up before voting when this node has committed the highest height its
    /// registered peers report, or when none has reported within
    /// [`CATCH_UP_BEFORE_VOTING_WAIT`] and signing is safe without them (ADR 0028). Past the
    /// wait without a report and without that safety, the node stays non-signing and asks
    /// the registered peers itself (ADR 0036).
    fn end_catch_up_if_done(&mut self) -> Result<(), EngineError> {
        let Some(catch_up) = self.catch_up.as_mut() else {
            return Ok(());
        };
        let committed = self.height - 1;
        let best = self.peer_heights.values().copied().max();
        let done = match best {
            Some(best) => committed >= best,
            None => {
                let waited = self.now.instant.saturating_duration_since(catch_up.since);
                if waited < CATCH_UP_BEFORE_VOTING_WAIT {
                    false
                } else {
                    let others = self.allowed.iter().any(|key| *key != self.key);
                    // Without a peer's word, the node may sign only where it can show it
                    // never signed: after its own signing state (which the machine keeps
                    // to), or on a chain with nobody else to hear from.
                    let safe = catch_up.signing_state_restored || !others;
                    catch_up.waited_out = !safe;
                    if !safe
                        && catch_up.warned_at.is_none_or(|at| {
                            self.now.instant.saturating_duration_since(at)
                                >= CATCH_UP_BEFORE_VOTING_WAIT
                        })
                    {
                        catch_up.warned_at = Some(self.now.instant);
                        tracing::warn!(
                            height = committed,
                            waited_ms = waited.as_millis() as u64,
                            "catching up before voting: no registered peer has reported its height; \
                             without its signing state this node signs nothing until one does, \
                             and keeps asking them"
                        );
                    }
                    safe
                }
            }
        };
        let cause = catch_up.cause;
        if !done {
            if self
                .catch_up
                .as_ref()
                .is_some_and(|catch_up| catch_up.waited_out)
            {
                self.request_sync();
            }
            return Ok(());
        }
        tracing::info!(
            height = committed,
            peers_height = best,
            ?cause,
            "caught up before voting; signing from height {}",
            committed + 1
        );
        self.catch_up = None;
        self.caught_up_at = Some(committed);
        self.start_height(self.height)
    }

    /// Hands one input to the machine and performs the actions it returns, in order.
    fn feed(&mut self, input: Input<Value>) -> Result<(), EngineError> {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let summary = input_summary(&input);
            let actions = self.machine.handle(input);
            tracing::debug!(input = %summary, actions = actions.len(), position = ?self.machine.position(), "consensus step");
            for action in actions {
                if let Some(next) = self.perform(action)? {
                    queue.push_back(next);
                }
            }
        }
        if let Some((_, round, _)) = self.machine.position() {
            self.shared
                .status
                .round
                .store(u64::from(round), Ordering::Relaxed);
            self.shared.metrics.round.set(i64::from(round));
        }
        self.shared
            .metrics
            .signing_refused
            .set(self.machine.counters().signing_refused as i64);
        self.shared
            .metrics
            .messages_beyond_round_window
            .set(self.machine.counters().beyond_round_window as i64);
        // The machine counts for its lifetime; the metric is a counter of the same.
        let excess = self.machine.counters().excess_proposals;
        if excess > self.excess_proposals_counted {
            self.shared
                .metrics
                .excess_proposals
                .inc_by(excess - self.excess_proposals_counted);
            self.excess_proposals_counted = excess;
        }
        Ok(())
    }

    fn perform(&mut self, action: Action<Value>) -> Result<Option<Input<Value>>, EngineError> {
        match action {
            Action::PersistSigningState(state) => {
                // Invariant: the machine is started only after the catch-up before voting.
                assert!(
                    self.catch_up.is_none(),
                    "a signature while catching up before voting"
                );
                if let Some(caught_up_at) = self.caught_up_at.take() {
                    tracing::info!(
                        height = state.height(),
                        round = state.round(),
                        caught_up_at,
                        "first signature after catching up"
                    );
                }
                self.out.push(Command::PersistSigningState(state));
                Ok(None)
            }
            Action::BroadcastProposal(proposal) => {
                let Some(candidate) = self.candidates.get(&proposal.proposal.value) else {
                    tracing::warn!("the machine proposed a value whose block is unknown");
                    return Ok(None);
                };
                let message = ConsensusMessage::Proposal {
                    proposal,
                    block: Box::new(candidate.compact()),
                };
                self.publish_consensus(message);
                Ok(None)
            }
            Action::BroadcastVote(vote) => {
                let twin = self
                    .equivocator
                    .as_ref()
                    .map(|equivocator| equivocator.twin(&vote, self.shared.store.chain_id()));
                self.publish_consensus(ConsensusMessage::Vote(vote));
                if let Some(twin) = twin {
                    tracing::warn!(
                        height = twin.vote.height,
                        round = twin.vote.round,
                        "testing: sending a conflicting vote"
                    );
                    self.publish_consensus(ConsensusMessage::Vote(twin));
                }
                Ok(None)
            }
            Action::ScheduleTimeout {
                height,
                round,
                step,
                duration_ms,
            } => {
                self.out.push(Command::Schedule {
                    timer: Timer::Consensus {
                        height,
                        round,
                        step,
                    },
                    at: self.now.instant + Duration::from_millis(duration_ms),
                });
                Ok(None)
            }
            Action::RequestValue { height, round } => {
                self.awaiting_value = Some((height, round, self.now.instant));
                Ok(None)
            }
            Action::ValidateValue { height, value } => Ok(self.validate(height, value)),
            Action::Decide { certificate } => {
                self.decide(certificate)?;
                Ok(None)
            }
            Action::Evidence(evidence) => {
                self.shared.metrics.equivocations_seen.inc();
                self.hold_evidence(evidence);
                Ok(None)
            }
        }
    }

    /// Keeps evidence for this node's next proposal (ADR 0009), unless it is held already or
    /// recorded; when the pool is full, the oldest item makes room.
    fn hold_evidence(&mut self, evidence: Evidence) {
        let key = EvidenceKey::of(&evidence);
        tracing::warn!(
            validator = %key.validator,
            height = key.height,
            round = key.round,
            kind = key.kind.as_str(),
            "equivocation detected"
        );
        let recorded = matches!(self.shared.store.evidence(&key), Ok(Some(_)));
        if recorded
            || self
                .pending_evidence
                .iter()
                .any(|held| EvidenceKey::of(held) == key)
        {
            return;
        }
        if self.pending_evidence.len() == PENDING_EVIDENCE_MAX {
            self.pending_evidence.remove(0);
        }
        self.pending_evidence.push(evidence);
    }

    fn publish_consensus(&mut self, message: ConsensusMessage) {
        let signed = matches!(
            message,
            ConsensusMessage::Vote(_) | ConsensusMessage::Proposal { .. }
        );
        let envelope = ConsensusEnvelope {
            sent_at_ms: self.now.unix_ms,
            message,
        };
        let bytes = messages::encode(&envelope);
        self.out.push(if signed {
            Command::PublishSigned { bytes }
        } else {
            Command::Publish {
                topic: Topic::Consensus,
                bytes,
            }
        });
    }

    fn penalise(&mut self, peer: PublicKey, reason: PenaltyReason) {
        tracing::debug!(%peer, %reason, "penalising a peer");
        self.shared.metrics.reject_message(reason.label());
        self.out.push(Command::Penalise { peer, reason });
    }

    fn maybe_propose(&mut self) -> Result<(), EngineError> {
        let Some(deadline) = self.value_deadline() else {
            return Ok(());
        };
        if self.now.instant < deadline {
            return Ok(());
        }
        let Some((height, round, _)) = self.awaiting_value.take() else {
            return Ok(());
        };
        if height != self.height {
            return Ok(());
        }
        let shared = &self.shared;
        let transactions = shared
            .mempool
            .lock()
            .map(|mempool| {
                mempool.candidates_within(
                    self.config.block_transactions_max,
                    self.config.block_signer_transactions_max(),
                    |signer| shared.committed_next_nonce(signer),
                    |signer| shared.quota_room(signer),
                )
            })
            .unwrap_or_default();
        let head = self.shared.store.head().map_err(store_error)?;
        let time = self.now.unix_ms.max(head.header.time + 1);
        let started = (self.stopwatch)();
        let evidence = self.pending_evidence.clone();
        let execution = self.shared.store.execute_with_evidence(
            time,
            self.key,
            transactions,
            evidence,
            Mode::Build,
        );
        let execution = match execution {
            Ok(execution) => execution,
            Err(BlockError::Stale) => return Ok(()),
            Err(error) => return Err(store_error(error)),
        };
        self.shared
            .metrics
            .block_execute_seconds
            .observe(((self.stopwatch)() - started).as_secs_f64());
        if !execution.rejected.is_empty()
            && let Ok(mut mempool) = self.shared.mempool.lock()
        {
            // A transaction after one of its signer's that the block left out waits for
            // that nonce again (it may be submitted anew), and one beyond its signer's write
            // quota waits for the next window; the others are refused for good.
            let refused: Vec<&(Hash32, RuleError)> = execution
                .rejected
                .iter()
                .filter(|(_, error)| {
                    !matches!(
                        error,
                        RuleError::NonceGap { .. } | RuleError::WriteQuotaExceeded { .. }
                    )
                })
                .collect();
            let ids: Vec<Hash32> = refused.iter().map(|(id, _)| *id).collect();
            mempool.remove(&ids);
            for (id, error) in refused {
                mempool.remember_rejection(*id, error.code(), error.to_string());
                self.shared.metrics.reject_transaction(error.code());
            }
        }
        // Evidence the rules refuse for good is dropped; evidence of the current height (not
        // committed yet) and beyond the block's limit waits for a later block.
        for (key, error) in &execution.rejected_evidence {
            if !matches!(
                error,
                EvidenceRuleError::NotYetCommitted { .. } | EvidenceRuleError::TooMany { .. }
            ) {
                tracing::info!(height = key.height, validator = %key.validator, %error, "evidence dropped");
                self.pending_evidence
                    .retain(|held| EvidenceKey::of(held) != *key);
            }
        }
        let value = execution.header.hash(self.shared.store.suite()).0;
        tracing::debug!(
            height,
            round,
            transactions = execution.transactions.len(),
            "proposing"
        );
        self.candidates.insert(
            value,
            Candidate {
                block: ProposedBlock {
                    header: execution.header.clone(),
                    transactions: execution.transactions.clone(),
                    evidence: execution.evidence.clone(),
                },
                ids: execution.ids().to_vec(),
                execution: Some(execution),
                verdict: Some(true),
            },
        );
        self.feed(Input::ProposeValue {
            height,
            round,
            value,
        })
    }

    /// Checks a proposed block (header, transactions, roots) by executing it; answers the
    /// machine now if the block is here, or when it arrives.
    fn validate(&mut self, height: u64, value: Value) -> Option<Input<Value>> {
        let Some(candidate) = self.candidates.get_mut(&value) else {
            self.awaiting_validation.insert(value);
            return None;
        };
        if let Some(valid) = candidate.verdict {
            return Some(Input::ProposalVerdict {
                height,
                value,
                valid,
            });
        }
        let header = &candidate.block.header;
        let registry = self.shared.store.registry_for(height).ok();
        let proposer_known = registry.as_ref().is_some_and(|registry| {
            registry
                .validators()
                .any(|node| node.key == header.proposer)
        });
        let in_time = header.time <= self.now.unix_ms + self.config.clock_drift_ms_max;
        let valid = if header.height != height
            || header.chain_id != self.shared.store.chain_id()
            || !proposer_known
            || !in_time
        {
            tracing::warn!(
                height,
                proposer_known,
                in_time,
                "proposed block refused before execution"
            );
            false
        } else {
            let block = Block {
                header: header.clone(),
                transactions: candidate.block.transactions.clone(),
                certificate: ConsensusCertificate {
                    height,
                    round: 0,
                    value,
                    signatures: Vec::new(),
                },
                evidence: candidate.block.evidence.clone(),
            };
            let started = (self.stopwatch)();
            match self.shared.store.verify_block(&block) {
                Ok(execution) => {
                    self.shared
                        .metrics
                        .block_execute_seconds
                        .observe(((self.stopwatch)() - started).as_secs_f64());
                    candidate.execution = Some(execution);
                    true
                }
                Err(error) => {
                    tracing::warn!(height, %error, "proposed block is invalid");
                    false
                }
            }
        };
        candidate.verdict = Some(valid);
        Some(Input::ProposalVerdict {
            height,
            value,
            valid,
        })
    }

    fn decide(&mut self, certificate: ConsensusCertificate<Value>) -> Result<(), EngineError> {
        let height = certificate.height;
        if height != self.height {
            return Ok(());
        }
        let value = certificate.value;
        let Some(mut candidate) = self.candidates.remove(&value) else {
            // Decided on a block we never received: fetch it with its certificate.
            tracing::info!(height, "decided a block not received; catching up");
            self.request_sync();
            return Ok(());
        };
        let execution = match candidate.execution.take() {
            Some(execution) => execution,
            None => {
                let block = Block {
                    header: candidate.block.header.clone(),
                    transactions: candidate.block.transactions.clone(),
                    certificate: certificate.clone(),
                    evidence: candidate.block.evidence.clone(),
                };
                self.shared
                    .store
                    .verify_block(&block)
                    .map_err(store_error)?
            }
        };
        self.commit(execution, certificate)
    }

    fn commit(
        &mut self,
        execution: Execution,
        certificate: ConsensusCertificate<Value>,
    ) -> Result<(), EngineError> {
        let ids: Vec<Hash32> = execution.ids().to_vec();
        let started = (self.stopwatch)();
        let block = self
            .shared
            .store
            .commit(execution, certificate)
            .map_err(store_error)?;
        self.shared
            .metrics
            .block_commit_seconds
            .observe(((self.stopwatch)() - started).as_secs_f64());
        self.after_commit(&block, &ids);
        self.start_height(block.header.height + 1)
    }

    fn after_commit(&mut self, block: &Block, ids: &[Hash32]) {
        self.last_commit = self.now.instant;
        for evidence in &block.evidence {
            let key = EvidenceKey::of(evidence);
            tracing::warn!(
                height = block.header.height,
                validator = %key.validator,
                equivocation_height = key.height,
                round = key.round,
                kind = key.kind.as_str(),
                "equivocation recorded on the ledger"
            );
            self.pending_evidence
                .retain(|held| EvidenceKey::of(held) != key);
        }
        let horizon = block
            .header
            .height
            .saturating_sub(hutong_core::limits::EVIDENCE_AGE_BLOCKS_MAX);
        self.pending_evidence.retain(|held| held.height() > horizon);
        if let Ok(mut mempool) = self.shared.mempool.lock() {
            mempool.remove(ids);
            // What a committed nonce made stale, and what waited too long for a gap to fill.
            let shared = &self.shared;
            for id in mempool.prune(self.now.unix_ms, |signer| {
                shared.committed_next_nonce(signer)
            }) {
                mempool.remember_rejection(
                    id,
                    "nonce_not_increasing",
                    "another transaction of the signer with the same nonce was committed".into(),
                );
            }
            self.shared
                .metrics
                .mempool_transactions
                .set(mempool.len() as i64);
            self.shared
                .metrics
                .mempool_bytes
                .set(mempool.bytes() as i64);
        }
        let metrics = &self.shared.metrics;
        metrics.height.set(block.header.height as i64);
        let best_peer = self.shared.status.best_peer_height.load(Ordering::Relaxed);
        metrics
            .known_height
            .set(best_peer.max(block.header.height) as i64);
        metrics
            .last_block_time_seconds
            .set(block.header.time as f64 / 1000.0);
        metrics.committed_blocks.inc();
        metrics.committed_transactions.inc_by(ids.len() as u64);
        // A block of transactions at the info level; an empty one (a heartbeat, one every
        // few seconds on an idle chain) only at debug, so that a day's log is not made of them.
        if ids.is_empty() {
            tracing::debug!(
                height = block.header.height,
                transactions = 0,
                hash = %block.hash(self.shared.store.suite()),
                "committed"
            );
        } else {
            tracing::info!(
                height = block.header.height,
                transactions = ids.len(),
                hash = %block.hash(self.shared.store.suite()),
                "committed"
            );
        }
    }

    fn on_consensus_message(&mut self, from: PublicKey, bytes: &[u8]) -> Result<(), EngineError> {
        let message =
            match messages::decode::<ConsensusEnvelope>(bytes, CONSENSUS_MESSAGE_BYTES_MAX) {
                Ok(envelope) => envelope.message,
                Err(error) => {
                    tracing::debug!(%error, size = bytes.len(), "undecodable consensus message");
                    self.penalise(from, PenaltyReason::MalformedConsensusMessage);
                    return Ok(());
                }
            };
        match message {
            ConsensusMessage::Proposal { proposal, block } => {
                let value = proposal.proposal.value;
                if block.header.hash(self.shared.store.suite()).0 != value {
                    self.penalise(from, PenaltyReason::ProposalBlockMismatch);
                    return Ok(());
                }
                if block.transaction_ids.len() > hutong_core::limits::BLOCK_TRANSACTIONS_MAX {
                    self.penalise(from, PenaltyReason::ProposalTooLarge);
                    return Ok(());
                }
                if self.catch_up.is_some() {
                    // The machine has no height yet; the block comes by catch-up if decided.
                    return Ok(());
                }
                if block.header.height == self.height
                    && !self.candidates.contains_key(&value)
                    && !self.incomplete.contains_key(&value)
                    && self.candidates.len() + self.incomplete.len() < CANDIDATES_MAX
                {
                    self.assemble(value, *block, from);
                }
                self.feed(Input::Proposal(proposal))?;
                self.validate_if_awaited(value)
            }
            ConsensusMessage::Vote(vote) => {
                if self.catch_up.is_some() {
                    return Ok(());
                }
                self.feed(Input::Vote(vote))
            }
            ConsensusMessage::Status { height } => {
                self.peer_heights.insert(from, height);
                let best = self.peer_heights.values().copied().max().unwrap_or(0);
                self.shared
                    .status
                    .best_peer_height
                    .store(best, Ordering::Relaxed);
                self.shared
                    .metrics
                    .known_height
                    .set(best.max(self.height.saturating_sub(1)) as i64);
                if height >= self.height {
                    self.shared
                        .metrics
                        .catch_up_target_height
                        .set(height as i64);
                    self.request_sync();
                }
                self.end_catch_up_if_done()
            }
        }
    }

    fn on_transaction_batch(&mut self, from: PublicKey, bytes: &[u8]) {
        let batch = match messages::decode::<TransactionBatch>(bytes, TRANSACTION_BATCH_BYTES_MAX) {
            Ok(batch) if batch.transactions.len() <= TRANSACTION_BATCH_COUNT_MAX => batch,
            _ => {
                self.penalise(from, PenaltyReason::MalformedTransactionBatch);
                return;
            }
        };
        let mut transactions = Vec::with_capacity(batch.transactions.len());
        let mut malformed = false;
        for encoded in batch.transactions {
            match Transaction::decode(&encoded) {
                Ok(transaction) => transactions.push(transaction),
                Err(error) => {
                    tracing::debug!(%error, "malformed transaction in a batch");
                    malformed = true;
                }
            }
        }
        if malformed {
            self.penalise(from, PenaltyReason::MalformedTransaction);
        }
        if !transactions.is_empty() {
            self.out.push(Command::Admit { from, transactions });
        }
    }

    fn on_sync_request(&mut self, from: PublicKey, request_id: RequestId, bytes: &[u8]) {
        let response = match messages::decode::<SyncRequest>(bytes, SYNC_REQUEST_BYTES_MAX) {
            Ok(SyncRequest::Blocks { from: first, count }) => {
                let mut blocks = Vec::new();
                let mut size = 0usize;
                let last = first.saturating_add(u64::from(count.min(SYNC_BLOCKS_PER_REQUEST_MAX)));
                for height in first.max(1)..last {
                    match self.shared.store.block(height) {
                        Ok(Some(block)) => {
                            size += hutong_core::codec::to_canonical(&block).len();
                            blocks.push(block);
                            if size >= SYNC_RESPONSE_BYTES_MAX / 2 {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                if let Some(forger) = &self.catch_up_forger {
                    let forgery = forger.forge(&mut blocks, |height| {
                        self.shared
                            .store
                            .block(height)
                            .ok()
                            .flatten()
                            .map(|block| block.certificate)
                    });
                    tracing::warn!(%from, first, count = blocks.len(), ?forgery, "TESTING: serving forged certificates");
                }
                SyncResponse::Blocks(blocks)
            }
            Ok(SyncRequest::Transactions { ids }) => {
                SyncResponse::Transactions(self.transactions_held(&ids))
            }
            Err(_) => {
                self.penalise(from, PenaltyReason::MalformedSyncRequest);
                SyncResponse::Refused("malformed request".into())
            }
        };
        self.out.push(Command::Respond {
            request_id,
            bytes: messages::encode(&response),
        });
    }

    /// Asks a peer that reported our next height for the blocks we miss: each request the
    /// next such peer in key order, so that requests go round them, leaving out the peers
    /// whose answer failed lately while another can be asked. While catching up before
    /// voting past its wait without any report, any registered peer is asked. One request
    /// is in flight at a time, bounded by [`CATCH_UP_REQUEST_TIMEOUT`]; after a failure the
    /// next waits for the backoff (ADR 0036).
    fn request_sync(&mut self) {
        if self.sync.in_flight.is_some()
            || self.sync.retry_at.is_some_and(|at| at > self.now.instant)
        {
            return;
        }
        let now = self.now.instant;
        self.sync.skipped.retain(|_, until| *until > now);
        let mut able: Vec<PublicKey> = self
            .peer_heights
            .iter()
            .filter(|(_, height)| **height >= self.height)
            .map(|(peer, _)| *peer)
            .collect();
        if able.is_empty() && self.catch_up.as_ref().is_some_and(|c| c.waited_out) {
            able = self
                .allowed
                .iter()
                .copied()
                .filter(|key| *key != self.key)
                .collect();
        }
        let fresh: Vec<PublicKey> = able
            .iter()
            .copied()
            .filter(|peer| !self.sync.skipped.contains_key(peer))
            .collect();
        let mut able = if fresh.is_empty() { able } else { fresh };
        if able.is_empty() {
            return;
        }
        able.sort_unstable();
        let turn = usize::try_from(self.sync.sent % able.len() as u64).unwrap_or(0);
        let peer = able[turn];
        self.sync.sent = self.sync.sent.wrapping_add(1);
        let request = self.sync.sent;
        self.sync.in_flight = Some(InFlight { request, peer });
        self.shared.status.syncing.store(true, Ordering::Relaxed);
        let message = SyncRequest::Blocks {
            from: self.height,
            count: SYNC_BLOCKS_PER_REQUEST_MAX,
        };
        self.out.push(Command::Request {
            peer,
            bytes: messages::encode(&message),
            purpose: Purpose::Blocks { request },
        });
        self.out.push(Command::Schedule {
            timer: Timer::CatchUpRequest { request },
            at: now + CATCH_UP_REQUEST_TIMEOUT,
        });
    }

    /// A catch-up request to `peer` failed (`why` labels it in
    /// `hutong_catch_up_request_failures_total`): the peer is skipped for
    /// [`CATCH_UP_PEER_SKIP`] and no longer counts towards the height to reach until its
    /// next status; the next request waits for the backoff, doubled at each failure in a
    /// row, and after [`CATCH_UP_RETRIES_MAX`] of them for a peer's next status.
    fn catch_up_request_failed(&mut self, peer: PublicKey, why: &str) {
        self.sync.in_flight = None;
        self.shared.metrics.catch_up_request_failed(why);
        self.sync
            .skipped
            .insert(peer, self.now.instant + CATCH_UP_PEER_SKIP);
        self.peer_heights.remove(&peer);
        self.sync.failures = self.sync.failures.saturating_add(1);
        let doublings = self.sync.failures.saturating_sub(1).min(16);
        let backoff = CATCH_UP_RETRY_FIRST
            .saturating_mul(1 << doublings)
            .min(CATCH_UP_RETRY_MAX);
        let at = self.now.instant + backoff;
        self.sync.retry_at = Some(at);
        if self.sync.failures <= CATCH_UP_RETRIES_MAX {
            self.out.push(Command::Schedule {
                timer: Timer::CatchUpRetry,
                at,
            });
        } else if self.sync.failures == CATCH_UP_RETRIES_MAX + 1 {
            tracing::warn!(
                failures = self.sync.failures,
                height = self.height,
                "catch-up requests keep failing; asking again when a peer reports its height"
            );
        }
    }

    fn on_sync_response(
        &mut self,
        peer: PublicKey,
        request: u64,
        result: Result<Vec<u8>, String>,
    ) -> Result<(), EngineError> {
        if self
            .sync
            .in_flight
            .is_none_or(|in_flight| in_flight.request != request || in_flight.peer != peer)
        {
            // The answer to a request given up on (timed out): another is in flight or
            // waits for its backoff.
            tracing::debug!(%peer, request, "late catch-up answer dropped");
            return Ok(());
        }
        self.sync.in_flight = None;
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::debug!(%peer, %error, "catch-up request failed");
                self.catch_up_request_failed(peer, "failed");
                return self.end_catch_up_if_done();
            }
        };
        let blocks = match messages::decode::<SyncResponse>(&bytes, SYNC_RESPONSE_BYTES_MAX) {
            Ok(SyncResponse::Blocks(blocks)) => blocks,
            Ok(SyncResponse::Refused(reason)) => {
                tracing::debug!(%peer, %reason, "catch-up refused");
                self.catch_up_request_failed(peer, "refused");
                return self.end_catch_up_if_done();
            }
            Ok(SyncResponse::Transactions(_)) => {
                self.penalise(peer, PenaltyReason::UnexpectedSyncResponse);
                self.catch_up_request_failed(peer, "bad_answer");
                return self.end_catch_up_if_done();
            }
            Err(_) => {
                self.penalise(peer, PenaltyReason::MalformedSyncResponse);
                self.catch_up_request_failed(peer, "bad_answer");
                return self.end_catch_up_if_done();
            }
        };
        let mut advanced = false;
        let mut refused = false;
        for block in blocks {
            if block.header.height != self.height {
                continue;
            }
            let registry = self
                .shared
                .store
                .registry_for(block.header.height)
                .map_err(store_error)?;
            if let Err(error) = verify_block_certificate(
                self.shared.store.suite(),
                &block.header,
                &block.certificate,
                &registry,
            ) {
                tracing::warn!(%peer, height = block.header.height, %error, "catch-up block has a bad certificate; peer penalised");
                self.penalise(
                    peer,
                    PenaltyReason::BadCertificate(CertificateRefusal::of(&error)),
                );
                refused = true;
                break;
            }
            let execution = match self.shared.store.verify_block(&block) {
                Ok(execution) => execution,
                Err(error) => {
                    tracing::warn!(%peer, height = block.header.height, %error, "catch-up block does not re-execute; peer penalised");
                    self.penalise(peer, PenaltyReason::BadBlock);
                    refused = true;
                    break;
                }
            };
            let ids: Vec<Hash32> = execution.ids().to_vec();
            let committed = self
                .shared
                .store
                .commit(execution, block.certificate.clone())
                .map_err(store_error)?;
            self.shared.metrics.catch_up_blocks.inc();
            self.after_commit(&committed, &ids);
            self.height = committed.header.height + 1;
            advanced = true;
        }
        if refused {
            // A forgery, penalised above: another peer is asked after the backoff, and this
            // one no longer counts towards the height to reach before voting until its next
            // status.
            self.catch_up_request_failed(peer, "bad_block");
        } else if !advanced {
            // Nothing at the height asked for, from a peer that reported it: the same.
            self.catch_up_request_failed(peer, "empty");
        } else {
            self.sync.failures = 0;
            self.sync.retry_at = None;
        }
        if advanced {
            self.candidates.clear();
            self.incomplete.clear();
            self.start_height(self.height)?;
        }
        let best = self.peer_heights.values().copied().max().unwrap_or(0);
        let behind = best >= self.height;
        self.shared.status.syncing.store(behind, Ordering::Relaxed);
        if behind && advanced && !refused {
            self.request_sync();
        }
        self.end_catch_up_if_done()
    }

    /// Completes a compact proposal from the mempool; asks the proposer for what is missing.
    fn assemble(&mut self, value: Value, block: CompactBlock, relay: PublicKey) {
        let mut have = HashMap::new();
        if let Ok(mempool) = self.shared.mempool.lock() {
            for id in &block.transaction_ids {
                if let Some(transaction) = mempool.get(id) {
                    have.insert(*id, transaction.clone());
                }
            }
        }
        let mut incomplete = Incomplete {
            block,
            have,
            asked: Vec::new(),
            relay,
        };
        if incomplete.missing().is_empty() {
            self.complete(value, incomplete);
            return;
        }
        self.fetch_missing(value, &mut incomplete);
        self.incomplete.insert(value, incomplete);
    }

    /// Asks the next peer (the proposer, then the relay, then any validator not asked yet)
    /// for a proposal's missing transactions. After [`TRANSACTION_FETCH_ATTEMPTS_MAX`] peers
    /// the block stays incomplete: the round times out and moves on without it.
    fn fetch_missing(&mut self, value: Value, incomplete: &mut Incomplete) {
        if incomplete.asked.len() >= TRANSACTION_FETCH_ATTEMPTS_MAX {
            tracing::warn!(
                height = incomplete.block.header.height,
                missing = incomplete.missing().len(),
                "a proposal's transactions could not be fetched"
            );
            return;
        }
        let proposer = incomplete.block.header.proposer;
        let others = self.allowed.iter().copied();
        let Some(peer) = [proposer, incomplete.relay]
            .into_iter()
            .chain(others)
            .find(|peer| *peer != self.key && !incomplete.asked.contains(peer))
        else {
            return;
        };
        incomplete.asked.push(peer);
        let request = SyncRequest::Transactions {
            ids: incomplete.missing(),
        };
        self.shared.metrics.proposal_transaction_fetches.inc();
        self.out.push(Command::Request {
            peer,
            bytes: messages::encode(&request),
            purpose: Purpose::Transactions(value),
        });
    }

    fn on_transactions_fetched(
        &mut self,
        value: Value,
        peer: PublicKey,
        result: Result<Vec<u8>, String>,
    ) -> Result<(), EngineError> {
        let Some(mut incomplete) = self.incomplete.remove(&value) else {
            return Ok(());
        };
        match result.map(|bytes| messages::decode::<SyncResponse>(&bytes, SYNC_RESPONSE_BYTES_MAX))
        {
            Ok(Ok(SyncResponse::Transactions(transactions))) => {
                let missing: HashSet<Hash32> = incomplete.missing().into_iter().collect();
                for bytes in transactions {
                    let id = hutong_core::tx::tx_id_of_bytes(self.shared.store.suite(), &bytes);
                    if !missing.contains(&id) {
                        self.penalise(peer, PenaltyReason::UnaskedTransaction);
                        continue;
                    }
                    match Transaction::decode(&bytes) {
                        Ok(transaction) => {
                            incomplete.have.insert(id, transaction);
                        }
                        Err(_) => self.penalise(peer, PenaltyReason::MalformedTransaction),
                    }
                }
            }
            Ok(Ok(_)) | Ok(Err(_)) => self.penalise(peer, PenaltyReason::MalformedSyncResponse),
            Err(error) => tracing::debug!(%error, "transaction request failed"),
        }
        if incomplete.missing().is_empty() {
            self.complete(value, incomplete);
            return self.validate_if_awaited(value);
        }
        self.fetch_missing(value, &mut incomplete);
        self.incomplete.insert(value, incomplete);
        Ok(())
    }

    /// A proposal whose transactions are all here becomes a candidate.
    fn complete(&mut self, value: Value, mut incomplete: Incomplete) {
        let transactions = incomplete
            .block
            .transaction_ids
            .iter()
            .filter_map(|id| incomplete.have.remove(id))
            .collect();
        let CompactBlock {
            header,
            transaction_ids,
            evidence,
        } = incomplete.block;
        self.candidates.insert(
            value,
            Candidate {
                block: ProposedBlock {
                    header,
                    transactions,
                    evidence,
                },
                ids: transaction_ids,
                execution: None,
                verdict: None,
            },
        );
    }

    /// Answers the machine about `value` if it waits for that block's check.
    fn validate_if_awaited(&mut self, value: Value) -> Result<(), EngineError> {
        if self.candidates.contains_key(&value)
            && self.awaiting_validation.remove(&value)
            && let Some(input) = self.validate(self.height, value)
        {
            self.feed(input)?;
        }
        Ok(())
    }

    /// The transactions of `ids` this node holds (waiting in its mempool, or in a block it
    /// proposed or received), as canonical bytes, within the response's size bound.
    fn transactions_held(&self, ids: &[Hash32]) -> Vec<Vec<u8>> {
        let wanted: HashSet<&Hash32> = ids.iter().collect();
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut size = 0usize;
        let mut push = |transaction: &Transaction| {
            let bytes = transaction.encode().into_bytes();
            size += bytes.len();
            found.push(bytes);
            size < SYNC_RESPONSE_BYTES_MAX / 2
        };
        for candidate in self.candidates.values() {
            for (id, transaction) in candidate.ids.iter().zip(&candidate.block.transactions) {
                if wanted.contains(id) && !push(transaction) {
                    return found;
                }
            }
        }
        if let Ok(mempool) = self.shared.mempool.lock() {
            for id in ids {
                if let Some(transaction) = mempool.get(id)
                    && !push(transaction)
                {
                    break;
                }
            }
        }
        found
    }

    fn on_status_tick(&mut self) -> Result<(), EngineError> {
        let committed = self.height.saturating_sub(1);
        self.publish_consensus(ConsensusMessage::Status { height: committed });
        if self.catch_up.is_some() {
            return self.end_catch_up_if_done();
        }
        // When the height is stuck, re-send our latest messages of it: after a partition
        // heals or a peer restarts, they are what lets the round finish.
        if self.now.instant.saturating_duration_since(self.last_commit) < STATUS_INTERVAL * 2 {
            return Ok(());
        }
        self.resend_latest();
        Ok(())
    }

    /// Re-sends this node's latest signed messages of the height.
    fn resend_latest(&mut self) {
        for message in self.machine.gossip_messages() {
            let message = match message {
                SignedMessage::Vote(vote) => ConsensusMessage::Vote(vote),
                SignedMessage::Proposal(proposal) => {
                    match self.candidates.get(&proposal.proposal.value) {
                        Some(candidate) => ConsensusMessage::Proposal {
                            proposal,
                            block: Box::new(candidate.compact()),
                        },
                        None => continue,
                    }
                }
            };
            self.publish_consensus(message);
        }
    }
}

fn input_summary(input: &Input<Value>) -> String {
    match input {
        Input::NewHeight { height, .. } => format!("new height {height}"),
        Input::Proposal(proposal) => format!(
            "proposal h{} r{}",
            proposal.proposal.height, proposal.proposal.round
        ),
        Input::Vote(vote) => format!(
            "{:?} h{} r{} from {}",
            vote.vote.vote_type,
            vote.vote.height,
            vote.vote.round,
            &hex::encode(vote.vote.validator.0)[..8]
        ),
        Input::Timeout {
            height,
            round,
            step,
        } => format!("timeout {step:?} h{height} r{round}"),
        Input::ProposeValue { height, round, .. } => format!("propose value h{height} r{round}"),
        Input::ProposalVerdict { height, valid, .. } => format!("verdict h{height} {valid}"),
        Input::CommitCertificate(certificate) => format!("certificate h{}", certificate.height),
    }
}
