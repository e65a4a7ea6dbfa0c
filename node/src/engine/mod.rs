//! The consensus engine: a pure core ([`core::Core`]) that turns events into commands, and
//! this runtime, which feeds it the network's events, its timers and the answers to its
//! requests, and performs its commands in order (ADR 0005, ADR 0027).
//!
//! The runtime owns the signing state's file, the timers and the queue to the network's
//! sender; the network's events become the core's events in [`Engine::event_of`] and the
//! core's commands become calls of the [`NetworkHandle`] in [`send_to_network`]: one mapping
//! each way. A core step may execute or commit a block (the store's work), so it runs in
//! `block_in_place`.

pub mod core;
#[cfg(test)]
mod tests;
pub mod timers;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use hutong_consensus::SigningState;
use hutong_core::crypto::{PublicKey, SecretKey};

use crate::config::ConsensusConfig;
use crate::faults::Faults;
use crate::limits::{ENGINE_EVENT_QUEUE_CAPACITY, ENGINE_NETWORK_QUEUE_CAPACITY, STATUS_INTERVAL};
use crate::messages::Value;
use crate::network::{NetworkEvent, NetworkHandle, Topic};
use crate::shared::{Shared, now_ms};
use crate::signing_file::SigningStateFile;

pub use self::core::EngineError;
use self::core::{Command, Core, CoreStart, Event, Now};
use self::timers::Timers;

/// What the engine needs to start.
#[derive(Debug)]
pub struct EngineStart {
    pub node_key: SecretKey,
    pub config: ConsensusConfig,
    pub signing_state_path: PathBuf,
    pub extra_allowed: Vec<PublicKey>,
    /// The operator asked for a resynchronisation (`hutong run --resync`): the node catches
    /// up before it votes whatever its signing state says.
    pub resync: bool,
    pub faults: Faults,
}

/// The consensus engine's runtime.
pub struct Engine {
    shared: Arc<Shared>,
    core: Core,
    faults: Faults,
    /// Written before anything it records leaves; while it lags, nothing signed leaves.
    signing_file: SigningStateFile<SigningState<Value>>,
    /// What the core scheduled; each loop turn fires those due at its start (ADR 0036).
    timers: Timers,
    /// Events the runtime itself owes the core (the failure of a request it could not
    /// queue), fed before the next outside event.
    owed: VecDeque<Event>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

fn now() -> Now {
    Now {
        instant: Instant::now(),
        unix_ms: now_ms(),
    }
}

impl Engine {
    /// Builds the engine at the store's next height, restoring the persisted signing state
    /// if there is one.
    pub fn new(shared: Arc<Shared>, start: EngineStart) -> Result<Self, EngineError> {
        let EngineStart {
            node_key,
            config,
            signing_state_path,
            extra_allowed,
            resync,
            faults,
        } = start;
        let suite = shared.store.suite();
        let core = Core::new(
            shared.clone(),
            CoreStart {
                signing_state: read_signing_state(&signing_state_path)?,
                node_key: node_key.clone(),
                config,
                resync,
                extra_allowed,
                now: now(),
                stopwatch: Instant::now,
            },
        )?
        .with_equivocator(faults.equivocator(suite, &node_key))
        .with_catch_up_forger(faults.catch_up_forger(suite));
        Ok(Engine {
            shared,
            core,
            faults,
            signing_file: SigningStateFile::new(signing_state_path),
            timers: Timers::default(),
            owed: VecDeque::new(),
        })
    }

    /// Runs until `shutdown` turns true. Returns an error only when the store fails.
    pub async fn run(
        mut self,
        network: NetworkHandle,
        mut network_events: mpsc::Receiver<NetworkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        let (to_network, network_commands) = mpsc::channel(ENGINE_NETWORK_QUEUE_CAPACITY);
        let (answers, mut answers_received) = mpsc::channel(ENGINE_EVENT_QUEUE_CAPACITY);
        tokio::spawn(send_to_network(
            network,
            network_commands,
            answers.clone(),
            self.faults.clone(),
        ));
        self.step(Event::Start, &to_network, &answers)?;
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.shared.clone();
        loop {
            while let Some(event) = self.owed.pop_front() {
                self.step(event, &to_network, &answers)?;
            }
            let deadline = self.next_deadline();
            let event = tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                    None
                }
                event = network_events.recv() => match event {
                    Some(event) => self.event_of(event),
                    None => break,
                },
                Some(event) = answers_received.recv() => Some(event),
                _ = shared.mempool_changed.notified() => Some(Event::MempoolChanged),
                _ = status_tick.tick() => Some(Event::StatusTick),
                _ = tokio::time::sleep_until(deadline.into()) => None,
            };
            if let Some(event) = event {
                self.step(event, &to_network, &answers)?;
            }
            if self
                .signing_file
                .retry_if_due(Instant::now(), &self.shared.metrics)
            {
                self.step(Event::SigningStateWritten, &to_network, &answers)?;
            }
            // The timers due now, and not those their handling schedules: a timer already
            // due again waits for the next turn, after the select above had its chance.
            for timer in self.timers.take_due(Instant::now()) {
                self.step(Event::TimerFired(timer), &to_network, &answers)?;
            }
        }
        tracing::info!(height = self.core.height(), "consensus engine stopped");
        Ok(())
    }

    /// The core's event for a network event, or none for what the core does not hear (all
    /// peer traffic while the test-only partition is on).
    fn event_of(&self, event: NetworkEvent) -> Option<Event> {
        if self.faults.partitioned()
            && matches!(
                event,
                NetworkEvent::Gossip { .. } | NetworkEvent::Request { .. }
            )
        {
            return None;
        }
        Some(match event {
            NetworkEvent::Gossip {
                topic: Topic::Consensus,
                from,
                bytes,
            } => Event::Consensus { from, bytes },
            NetworkEvent::Gossip {
                topic: Topic::Transactions,
                from,
                bytes,
            } => Event::TransactionBatch { from, bytes },
            NetworkEvent::Request {
                from,
                request_id,
                bytes,
            } => Event::SyncRequest {
                from,
                request_id,
                bytes,
            },
            NetworkEvent::PeerConnected(peer) => Event::PeerConnected(peer),
            NetworkEvent::PeerDisconnected(peer) => Event::PeerDisconnected(peer),
        })
    }

    /// Feeds one event to the core and performs its commands in order.
    fn step(
        &mut self,
        event: Event,
        to_network: &mpsc::Sender<Command>,
        answers: &mpsc::Sender<Event>,
    ) -> Result<(), EngineError> {
        let core = &mut self.core;
        let commands = tokio::task::block_in_place(|| core.handle(now(), event))?;
        for command in commands {
            self.perform(command, to_network, answers);
        }
        Ok(())
    }

    fn perform(
        &mut self,
        command: Command,
        to_network: &mpsc::Sender<Command>,
        answers: &mpsc::Sender<Event>,
    ) {
        match command {
            Command::PersistSigningState(state) => {
                // Completes (or fails, and is retried) before the next command runs: the
                // PublishSigned that follows carries what it records.
                self.signing_file
                    .persist(state, Instant::now(), &self.shared.metrics);
            }
            Command::PublishSigned { .. } if self.signing_file.is_behind() => {
                self.shared
                    .metrics
                    .reject_message("signing_state_not_written");
            }
            Command::Schedule { timer, at } => self.timers.schedule(timer, at),
            Command::Admit { from, transactions } => {
                let shared = self.shared.clone();
                let answers = answers.clone();
                // Admission checks signatures (one batch) and rules: off the engine's task.
                tokio::task::spawn_blocking(move || {
                    let bad_signature =
                        shared
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
                    let _ = answers.blocking_send(Event::Admitted {
                        from,
                        bad_signature,
                    });
                });
            }
            network_command @ (Command::PublishSigned { .. }
            | Command::Publish { .. }
            | Command::Respond { .. }
            | Command::Request { .. }
            | Command::Penalise { .. }
            | Command::SetAllowed(_)) => {
                if let Err(mpsc::error::TrySendError::Full(refused)) =
                    to_network.try_send(network_command)
                {
                    self.shared.metrics.reject_message("outgoing_queue_full");
                    // Every request is answered: its failure now.
                    if let Command::Request { peer, purpose, .. } = refused {
                        self.owed.push_back(Event::Response {
                            peer,
                            purpose,
                            result: Err("the network's queue is full".into()),
                        });
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let timer = self.timers.next_at().unwrap_or(far);
        let retry = self.signing_file.retry_at().unwrap_or(far);
        timer.min(retry)
    }
}

/// Performs the core's network commands in order, each as one call of the network's handle;
/// the answer to a request comes back to the engine as [`Event::Response`].
async fn send_to_network(
    network: NetworkHandle,
    mut commands: mpsc::Receiver<Command>,
    answers: mpsc::Sender<Event>,
    faults: Faults,
) {
    while let Some(command) = commands.recv().await {
        // Test-only partition: nothing the engine says leaves the node.
        if faults.partitioned() {
            match command {
                Command::Request { peer, purpose, .. } => {
                    let failure = Event::Response {
                        peer,
                        purpose,
                        result: Err("partitioned (testing switch)".into()),
                    };
                    if answers.send(failure).await.is_err() {
                        break;
                    }
                    continue;
                }
                Command::Penalise { .. } | Command::SetAllowed(_) => {}
                _ => continue,
            }
        }
        let result = match command {
            Command::PublishSigned { bytes } => network.publish(Topic::Consensus, bytes).await,
            Command::Publish { topic, bytes } => network.publish(topic, bytes).await,
            Command::Respond { request_id, bytes } => network.respond(request_id, bytes).await,
            Command::SetAllowed(allowed) => network.set_allowed(allowed).await,
            Command::Penalise { peer, reason } => {
                network.penalise(peer, reason.misbehaviour()).await
            }
            Command::Request {
                peer,
                bytes,
                purpose,
            } => {
                let network = network.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let result = network
                        .request(peer, bytes)
                        .await
                        .map_err(|error| error.to_string());
                    let _ = answers
                        .send(Event::Response {
                            peer,
                            purpose,
                            result,
                        })
                        .await;
                });
                Ok(())
            }
            Command::PersistSigningState(_) | Command::Schedule { .. } | Command::Admit { .. } => {
                tracing::error!(
                    ?command,
                    "a command of the engine's own reached the network"
                );
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "network command failed");
        }
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
