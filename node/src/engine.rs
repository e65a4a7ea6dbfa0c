//! The consensus driver: it feeds the pure Tendermint machine with messages, timeouts and
//! verdicts, performs the actions it asks for (persist, broadcast, schedule, propose,
//! validate, decide), applies decided blocks to the store, and catches up from peers.
//!
//! One task owns the machine and the timers. The store's heavy calls (executing and
//! committing a block) run on the same task in `block_in_place`, so that nothing else
//! touches the machine meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use hutong_consensus::{
    Action, CommitCertificate as ConsensusCertificate, Config as MachineConfig, Consensus, Input,
    Round, SigningState, Step, ValidatorId,
};
use hutong_core::block::{Block, BlockCertificateError, validator_set, verify_block_certificate};
use hutong_core::crypto::{PublicKey, SecretKey};
use hutong_core::evidence::{Evidence, EvidenceKey};
use hutong_core::hash::Hash32;
use hutong_core::rules::{EvidenceRuleError, RuleError};
use hutong_core::tx::Transaction;
use hutong_ledger::store::{BlockError, Execution, Mode};

use crate::config::ConsensusConfig;
use crate::faults::{CatchUpForger, Equivocator};
use crate::limits::{
    CANDIDATES_MAX, CONSENSUS_MESSAGE_BYTES_MAX, PENDING_EVIDENCE_MAX, STATUS_INTERVAL,
    SYNC_BLOCKS_PER_REQUEST_MAX, SYNC_REQUEST_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX,
    TRANSACTION_BATCH_BYTES_MAX, TRANSACTION_BATCH_COUNT_MAX, TRANSACTION_FETCH_ATTEMPTS_MAX,
};
use crate::messages::{
    self, CompactBlock, ConsensusEnvelope, ConsensusMessage, ProposedBlock, SyncRequest,
    SyncResponse, TransactionBatch, Value,
};
use crate::network::{Misbehaviour, RequestId, Topic};
use crate::shared::{Shared, now_ms};
use crate::signing_file::SigningStateFile;
use hutong_core::suite::{Suite, SuiteSigner};

/// What the engine asks of the network.
#[derive(Debug)]
pub enum Outgoing {
    /// The registered nodes changed: only these may stay connected.
    SetAllowed(Vec<PublicKey>),
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
    },
    Penalise {
        peer: PublicKey,
        reason: Misbehaviour,
    },
    Respond {
        request_id: RequestId,
        bytes: Vec<u8>,
    },
    Request {
        peer: PublicKey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
}

/// What the network tells the engine.
#[derive(Debug)]
pub enum Incoming {
    Gossip {
        topic: Topic,
        from: PublicKey,
        bytes: Vec<u8>,
    },
    Request {
        from: PublicKey,
        request_id: RequestId,
        bytes: Vec<u8>,
    },
    PeerConnected,
    PeerDisconnected,
}

/// A peer's answer to a catch-up request.
type SyncResult = (PublicKey, Result<Vec<u8>, String>);
/// A peer's answer to a request for a proposal's transactions.
type FetchResult = (Value, PublicKey, Result<Vec<u8>, String>);

/// A proposed block we hold, with its execution once we ran it.
#[derive(Debug)]
struct Candidate {
    block: ProposedBlock,
    /// The ids of `block.transactions`, in order.
    ids: Vec<Hash32>,
    execution: Option<Execution>,
    verdict: Option<bool>,
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

/// The engine's own failures (the store's): they stop the node, which restarts cleanly.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(String),
    #[error("signing state file {path}: {error}")]
    SigningState { path: PathBuf, error: String },
    #[error("consensus: {0}")]
    Consensus(String),
}

/// The consensus driver.
pub struct Engine {
    shared: Arc<Shared>,
    machine: Consensus<Value, SuiteSigner, Suite>,
    config: ConsensusConfig,
    key: PublicKey,
    outgoing: mpsc::Sender<Outgoing>,
    timers: BTreeMap<(Instant, u64), (u64, Round, Step)>,
    timer_sequence: u64,
    candidates: HashMap<Value, Candidate>,
    /// Proposed blocks waiting for some of their transactions.
    incomplete: HashMap<Value, Incomplete>,
    fetch_results: (mpsc::Sender<FetchResult>, mpsc::Receiver<FetchResult>),
    awaiting_validation: HashSet<Value>,
    awaiting_value: Option<(u64, Round, Instant)>,
    height: u64,
    last_commit: Instant,
    /// Written before anything it records leaves; while it lags, nothing signed leaves.
    signing_file: SigningStateFile<SigningState<Value>>,
    sync_in_flight: bool,
    sync_results: (mpsc::Sender<SyncResult>, mpsc::Receiver<SyncResult>),
    peer_heights: HashMap<PublicKey, u64>,
    allowed: Vec<PublicKey>,
    extra_allowed: Vec<PublicKey>,
    /// Evidence seen by this node and not yet recorded on the ledger, for its next proposal.
    pending_evidence: Vec<Evidence>,
    /// Test-only: the signer of conflicting votes (see `faults`).
    equivocator: Option<Equivocator>,
    /// Test-only: the forger of the certificates this node serves in catch-up (see `faults`).
    catch_up_forger: Option<CatchUpForger>,
    /// Catch-up requests sent so far: which of the peers able to serve the next block is
    /// asked next, so that the requests go round them and no single peer (one that answers
    /// with forgeries, say) is asked every time.
    sync_requests_sent: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn store_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Store(error.to_string())
}

impl Engine {
    /// Builds the engine at the store's next height, restoring the persisted signing state
    /// if there is one (a restart never signs anything conflicting with what it signed).
    pub fn new(
        shared: Arc<Shared>,
        node_key: SecretKey,
        config: ConsensusConfig,
        signing_state_path: PathBuf,
        outgoing: mpsc::Sender<Outgoing>,
        extra_allowed: Vec<PublicKey>,
    ) -> Result<Self, EngineError> {
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
        let machine = match read_signing_state(&signing_state_path)? {
            Some(state) => Consensus::restore(machine_config, chain_id, signer, suite, state),
            None => Consensus::new(machine_config, chain_id, signer, suite),
        }
        .map_err(|error| EngineError::Consensus(error.to_string()))?;
        let height = shared.store.height().map_err(store_error)? + 1;
        let engine = Engine {
            shared,
            machine,
            config,
            key,
            outgoing,
            timers: BTreeMap::new(),
            timer_sequence: 0,
            candidates: HashMap::new(),
            incomplete: HashMap::new(),
            fetch_results: mpsc::channel(CANDIDATES_MAX),
            awaiting_validation: HashSet::new(),
            awaiting_value: None,
            height,
            last_commit: Instant::now(),
            signing_file: SigningStateFile::new(signing_state_path),
            sync_in_flight: false,
            sync_results: mpsc::channel(4),
            peer_heights: HashMap::new(),
            allowed: Vec::new(),
            extra_allowed,
            pending_evidence: Vec::new(),
            equivocator: None,
            catch_up_forger: None,
            sync_requests_sent: 0,
        };
        Ok(engine)
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

    /// Runs until `shutdown` turns true. Returns an error only when the store fails.
    pub async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        self.start_height(self.height)?;
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.shared.clone();
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                }
                event = incoming.recv() => match event {
                    Some(event) => self.on_incoming(event)?,
                    None => break,
                },
                Some((peer, result)) = self.sync_results.1.recv() => self.on_sync_response(peer, result)?,
                Some((value, peer, result)) = self.fetch_results.1.recv() => self.on_transactions_fetched(value, peer, result)?,
                _ = shared.mempool_changed.notified() => {}
                _ = status_tick.tick() => self.on_status_tick(),
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            if self
                .signing_file
                .retry_if_due(Instant::now(), &self.shared.metrics)
            {
                self.resend_latest();
            }
            self.fire_due_timers()?;
            self.maybe_propose()?;
        }
        tracing::info!(height = self.height, "consensus engine stopped");
        Ok(())
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let timer = self.timers.keys().next().map(|(at, _)| *at).unwrap_or(far);
        let value = self.value_deadline().unwrap_or(far);
        let retry = self.signing_file.retry_at().unwrap_or(far);
        timer.min(value).min(retry)
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
        self.timers.clear();
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
            let _ = self.outgoing.try_send(Outgoing::SetAllowed(allowed));
        }
        let set =
            validator_set(&registry).map_err(|error| EngineError::Consensus(error.to_string()))?;
        self.shared
            .status
            .validator
            .store(set.contains(&ValidatorId(self.key.0)), Ordering::Relaxed);
        self.feed(Input::NewHeight {
            height,
            validator_set: set,
        })
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
        Ok(())
    }

    fn perform(&mut self, action: Action<Value>) -> Result<Option<Input<Value>>, EngineError> {
        match action {
            Action::PersistSigningState(state) => {
                // Before the message it records leaves this node (the next actions): if the
                // write fails, nothing signed leaves until a retry succeeds (signing_file).
                self.signing_file
                    .persist(state, Instant::now(), &self.shared.metrics);
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
                self.timer_sequence += 1;
                let at = Instant::now() + Duration::from_millis(duration_ms);
                self.timers
                    .insert((at, self.timer_sequence), (height, round, step));
                Ok(None)
            }
            Action::RequestValue { height, round } => {
                self.awaiting_value = Some((height, round, Instant::now()));
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

    fn publish_consensus(&self, message: ConsensusMessage) {
        if self.signing_file.is_behind()
            && matches!(
                message,
                ConsensusMessage::Vote(_) | ConsensusMessage::Proposal { .. }
            )
        {
            self.shared
                .metrics
                .reject_message("signing_state_not_written");
            return;
        }
        let envelope = ConsensusEnvelope {
            sent_at_ms: now_ms(),
            message,
        };
        self.publish(Topic::Consensus, messages::encode(&envelope));
    }

    fn publish(&self, topic: Topic, bytes: Vec<u8>) {
        if self
            .outgoing
            .try_send(Outgoing::Publish { topic, bytes })
            .is_err()
        {
            self.shared.metrics.reject_message("outgoing_queue_full");
        }
    }

    fn penalise(&self, peer: PublicKey, reason: &str) {
        tracing::debug!(%peer, reason, "penalising a peer");
        self.shared.metrics.reject_message(reason);
        let misbehaviour = if reason.starts_with("malformed") {
            Misbehaviour::MalformedMessage
        } else if reason == "bad_signature" {
            Misbehaviour::InvalidSignature
        } else {
            Misbehaviour::InvalidContent
        };
        let _ = self.outgoing.try_send(Outgoing::Penalise {
            peer,
            reason: misbehaviour,
        });
    }

    fn fire_due_timers(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        while let Some(((at, _), _)) = self.timers.first_key_value() {
            if *at > now {
                break;
            }
            if let Some((_, (height, round, step))) = self.timers.pop_first() {
                self.feed(Input::Timeout {
                    height,
                    round,
                    step,
                })?;
            }
        }
        Ok(())
    }

    fn maybe_propose(&mut self) -> Result<(), EngineError> {
        let Some(deadline) = self.value_deadline() else {
            return Ok(());
        };
        if Instant::now() < deadline {
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
        let time = now_ms().max(head.header.time + 1);
        let started = Instant::now();
        let evidence = self.pending_evidence.clone();
        let execution = tokio::task::block_in_place(|| {
            self.shared.store.execute_with_evidence(
                time,
                self.key,
                transactions,
                evidence,
                Mode::Build,
            )
        });
        let execution = match execution {
            Ok(execution) => execution,
            Err(BlockError::Stale) => return Ok(()),
            Err(error) => return Err(store_error(error)),
        };
        self.shared
            .metrics
            .block_execute_seconds
            .observe(started.elapsed().as_secs_f64());
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
        let in_time = header.time <= now_ms() + self.config.clock_drift_ms_max;
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
            let started = Instant::now();
            match tokio::task::block_in_place(|| self.shared.store.verify_block(&block)) {
                Ok(execution) => {
                    self.shared
                        .metrics
                        .block_execute_seconds
                        .observe(started.elapsed().as_secs_f64());
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
                tokio::task::block_in_place(|| self.shared.store.verify_block(&block))
                    .map_err(store_error)?
            }
        };
        self.commit(execution, certificate)?;
        Ok(())
    }

    fn commit(
        &mut self,
        execution: Execution,
        certificate: ConsensusCertificate<Value>,
    ) -> Result<(), EngineError> {
        let ids: Vec<Hash32> = execution.ids().to_vec();
        let started = Instant::now();
        let block =
            tokio::task::block_in_place(|| self.shared.store.commit(execution, certificate))
                .map_err(store_error)?;
        self.shared
            .metrics
            .block_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.after_commit(&block, &ids);
        self.start_height(block.header.height + 1)
    }

    fn after_commit(&mut self, block: &Block, ids: &[Hash32]) {
        self.last_commit = Instant::now();
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
            for id in mempool.prune(now_ms(), |signer| shared.committed_next_nonce(signer)) {
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
        metrics.committed_blocks.inc();
        metrics.committed_transactions.inc_by(ids.len() as u64);
        tracing::info!(
            height = block.header.height,
            transactions = ids.len(),
            hash = %block.hash(self.shared.store.suite()),
            "committed"
        );
    }

    fn on_incoming(&mut self, event: Incoming) -> Result<(), EngineError> {
        match event {
            Incoming::Gossip {
                topic: Topic::Consensus,
                from,
                bytes,
            } => self.on_consensus_message(from, &bytes),
            Incoming::Gossip {
                topic: Topic::Transactions,
                from,
                bytes,
            } => {
                self.on_transaction_batch(from, &bytes);
                Ok(())
            }
            Incoming::Request {
                from,
                request_id,
                bytes,
            } => {
                self.on_sync_request(from, request_id, &bytes);
                Ok(())
            }
            Incoming::PeerConnected | Incoming::PeerDisconnected => Ok(()),
        }
    }

    fn on_consensus_message(&mut self, from: PublicKey, bytes: &[u8]) -> Result<(), EngineError> {
        let message =
            match messages::decode::<ConsensusEnvelope>(bytes, CONSENSUS_MESSAGE_BYTES_MAX) {
                Ok(envelope) => envelope.message,
                Err(error) => {
                    tracing::debug!(%error, size = bytes.len(), "undecodable consensus message");
                    self.penalise(from, "malformed_consensus_message");
                    return Ok(());
                }
            };
        match message {
            ConsensusMessage::Proposal { proposal, block } => {
                let value = proposal.proposal.value;
                if block.header.hash(self.shared.store.suite()).0 != value {
                    self.penalise(from, "proposal_block_mismatch");
                    return Ok(());
                }
                if block.transaction_ids.len() > hutong_core::limits::BLOCK_TRANSACTIONS_MAX {
                    self.penalise(from, "proposal_too_large");
                    return Ok(());
                }
                if block.header.height == self.height
                    && !self.candidates.contains_key(&value)
                    && !self.incomplete.contains_key(&value)
                    && self.candidates.len() + self.incomplete.len() < CANDIDATES_MAX
                {
                    self.assemble(value, *block, from)?;
                }
                self.feed(Input::Proposal(proposal))?;
                self.validate_if_awaited(value)
            }
            ConsensusMessage::Vote(vote) => self.feed(Input::Vote(vote)),
            ConsensusMessage::Status { height } => {
                self.peer_heights.insert(from, height);
                let best = self.peer_heights.values().copied().max().unwrap_or(0);
                self.shared
                    .status
                    .best_peer_height
                    .store(best, Ordering::Relaxed);
                if height >= self.height {
                    self.shared
                        .metrics
                        .catch_up_target_height
                        .set(height as i64);
                    self.request_sync();
                }
                Ok(())
            }
        }
    }

    fn on_transaction_batch(&self, from: PublicKey, bytes: &[u8]) {
        let batch = match messages::decode::<TransactionBatch>(bytes, TRANSACTION_BATCH_BYTES_MAX) {
            Ok(batch) if batch.transactions.len() <= TRANSACTION_BATCH_COUNT_MAX => batch,
            _ => {
                self.penalise(from, "malformed_transaction_batch");
                return;
            }
        };
        let shared = self.shared.clone();
        let outgoing = self.outgoing.clone();
        // Admission checks signatures (one batch) and rules: off the consensus task.
        tokio::task::spawn_blocking(move || {
            let mut transactions = Vec::with_capacity(batch.transactions.len());
            for encoded in batch.transactions {
                match hutong_core::tx::Transaction::decode(&encoded) {
                    Ok(transaction) => transactions.push(transaction),
                    Err(error) => {
                        tracing::debug!(%error, "malformed transaction in a batch");
                        shared.metrics.reject_message("malformed_transaction");
                        let _ = outgoing.try_send(Outgoing::Penalise {
                            peer: from,
                            reason: Misbehaviour::MalformedMessage,
                        });
                    }
                }
            }
            let bad_signature = shared
                .admit_batch(transactions, false)
                .iter()
                .any(|result| {
                    matches!(
                        result,
                        Err(crate::shared::AdmissionError::Rule(
                            hutong_core::rules::RuleError::BadSignature { .. },
                        ))
                    )
                });
            if bad_signature {
                shared.metrics.reject_message("bad_signature");
                let _ = outgoing.try_send(Outgoing::Penalise {
                    peer: from,
                    reason: Misbehaviour::InvalidSignature,
                });
            }
        });
    }

    fn on_sync_request(&self, from: PublicKey, request_id: RequestId, bytes: &[u8]) {
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
                self.penalise(from, "malformed_sync_request");
                SyncResponse::Refused("malformed request".into())
            }
        };
        let _ = self.outgoing.try_send(Outgoing::Respond {
            request_id,
            bytes: messages::encode(&response),
        });
    }

    /// Asks a peer that reported our next height for the blocks we miss: each request the
    /// next such peer in key order, so that requests go round them.
    fn request_sync(&mut self) {
        if self.sync_in_flight {
            return;
        }
        let mut able: Vec<PublicKey> = self
            .peer_heights
            .iter()
            .filter(|(_, height)| **height >= self.height)
            .map(|(peer, _)| *peer)
            .collect();
        if able.is_empty() {
            return;
        }
        able.sort_unstable();
        let turn = usize::try_from(self.sync_requests_sent % able.len() as u64).unwrap_or(0);
        let peer = able[turn];
        self.sync_requests_sent = self.sync_requests_sent.wrapping_add(1);
        self.sync_in_flight = true;
        self.shared.status.syncing.store(true, Ordering::Relaxed);
        let request = SyncRequest::Blocks {
            from: self.height,
            count: SYNC_BLOCKS_PER_REQUEST_MAX,
        };
        let results = self.sync_results.0.clone();
        if !self.request(peer, &request, results, move |result| (peer, result)) {
            self.sync_in_flight = false;
        }
    }

    /// Sends `request` to `peer`; its answer, or why there is none, arrives on `results`
    /// (wrapped by `wrap`). False when the network's queue is full.
    fn request<T: Send + 'static>(
        &self,
        peer: PublicKey,
        request: &SyncRequest,
        results: mpsc::Sender<T>,
        wrap: impl FnOnce(Result<Vec<u8>, String>) -> T + Send + 'static,
    ) -> bool {
        let (reply, answer) = oneshot::channel();
        if self
            .outgoing
            .try_send(Outgoing::Request {
                peer,
                bytes: messages::encode(request),
                reply,
            })
            .is_err()
        {
            return false;
        }
        tokio::spawn(async move {
            let result = answer
                .await
                .unwrap_or_else(|_| Err("network stopped".into()));
            let _ = results.send(wrap(result)).await;
        });
        true
    }

    fn on_sync_response(
        &mut self,
        peer: PublicKey,
        result: Result<Vec<u8>, String>,
    ) -> Result<(), EngineError> {
        self.sync_in_flight = false;
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::debug!(%error, "catch-up request failed");
                // Forgotten until its next status, so the next request goes to another peer:
                // each failure takes one peer out, so these retries end.
                self.peer_heights.remove(&peer);
                self.request_sync();
                return Ok(());
            }
        };
        let blocks = match messages::decode::<SyncResponse>(&bytes, SYNC_RESPONSE_BYTES_MAX) {
            Ok(SyncResponse::Blocks(blocks)) => blocks,
            Ok(SyncResponse::Refused(reason)) => {
                tracing::debug!(%reason, "catch-up refused");
                return Ok(());
            }
            Ok(SyncResponse::Transactions(_)) => {
                self.penalise(peer, "unexpected_sync_response");
                return Ok(());
            }
            Err(_) => {
                self.penalise(peer, "malformed_sync_response");
                return Ok(());
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
                self.penalise(peer, certificate_refusal(&error));
                refused = true;
                break;
            }
            let execution = match tokio::task::block_in_place(|| {
                self.shared.store.verify_block(&block)
            }) {
                Ok(execution) => execution,
                Err(error) => {
                    tracing::warn!(%peer, height = block.header.height, %error, "catch-up block does not re-execute; peer penalised");
                    self.penalise(peer, "bad_block");
                    refused = true;
                    break;
                }
            };
            let ids: Vec<Hash32> = execution.ids().to_vec();
            let committed = tokio::task::block_in_place(|| {
                self.shared
                    .store
                    .commit(execution, block.certificate.clone())
            })
            .map_err(store_error)?;
            self.shared.metrics.catch_up_blocks.inc();
            self.after_commit(&committed, &ids);
            self.height = committed.header.height + 1;
            advanced = true;
        }
        if advanced {
            self.candidates.clear();
            self.incomplete.clear();
            self.start_height(self.height)?;
        }
        let best = self.peer_heights.values().copied().max().unwrap_or(0);
        let behind = best >= self.height;
        self.shared.status.syncing.store(behind, Ordering::Relaxed);
        // After a refused answer, ask again at once: the turn has passed to the next peer.
        if behind && (advanced || refused) {
            self.request_sync();
        }
        Ok(())
    }

    /// Completes a compact proposal from the mempool; asks the proposer for what is missing.
    fn assemble(
        &mut self,
        value: Value,
        block: CompactBlock,
        relay: PublicKey,
    ) -> Result<(), EngineError> {
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
            return Ok(());
        }
        self.fetch_missing(value, &mut incomplete);
        self.incomplete.insert(value, incomplete);
        Ok(())
    }

    /// Asks the next peer (the proposer, then the relay, then any validator not asked yet)
    /// for a proposal's missing transactions. After [`TRANSACTION_FETCH_ATTEMPTS_MAX`] peers
    /// the block stays incomplete: the round times out and moves on without it.
    fn fetch_missing(&self, value: Value, incomplete: &mut Incomplete) {
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
        let results = self.fetch_results.0.clone();
        if self.request(peer, &request, results, move |result| (value, peer, result)) {
            self.shared.metrics.proposal_transaction_fetches.inc();
        }
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
                        self.penalise(peer, "unasked_transaction");
                        continue;
                    }
                    match Transaction::decode(&bytes) {
                        Ok(transaction) => {
                            incomplete.have.insert(id, transaction);
                        }
                        Err(_) => self.penalise(peer, "malformed_transaction"),
                    }
                }
            }
            Ok(Ok(_)) | Ok(Err(_)) => self.penalise(peer, "malformed_sync_response"),
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

    fn on_status_tick(&mut self) {
        let committed = self.height.saturating_sub(1);
        self.publish_consensus(ConsensusMessage::Status { height: committed });
        // When the height is stuck, re-send our latest messages of it: after a partition
        // heals or a peer restarts, they are what lets the round finish.
        if self.last_commit.elapsed() < STATUS_INTERVAL * 2 {
            return;
        }
        self.resend_latest();
    }

    /// Re-sends this node's latest signed messages of the height.
    fn resend_latest(&self) {
        for message in self.machine.gossip_messages() {
            let message = match message {
                hutong_consensus::SignedMessage::Vote(vote) => ConsensusMessage::Vote(vote),
                hutong_consensus::SignedMessage::Proposal(proposal) => {
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

/// The reason a catch-up block's certificate is refused under, in metrics: the forgeries a
/// Byzantine peer can make have names of their own.
fn certificate_refusal(error: &BlockCertificateError) -> &'static str {
    use hutong_consensus::CertificateError;
    match error {
        BlockCertificateError::Certificate(CertificateError::InsufficientPower { .. }) => {
            "bad_certificate_insufficient_power"
        }
        BlockCertificateError::Certificate(CertificateError::UnknownValidator { .. }) => {
            "bad_certificate_unknown_signer"
        }
        BlockCertificateError::Certificate(CertificateError::BadSignature { .. }) => {
            "bad_certificate_bad_signature"
        }
        _ => "bad_certificate",
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

pub(crate) fn read_signing_state(
    path: &std::path::Path,
) -> Result<Option<SigningState<Value>>, EngineError> {
    crate::signing_state::read(path).map_err(|error| EngineError::SigningState {
        path: path.to_path_buf(),
        error: format!("{error}; it must never be deleted or edited while the node's key votes"),
    })
}
