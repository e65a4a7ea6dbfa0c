//! Unit tests of the engine's core: each builds cores on in-memory stores of one fixture
//! chain, calls one handler, and asserts the exact list of commands. A small deterministic
//! relay between four cores checks that every signed message is published only after a
//! signing state recording it, earlier in the same list or in an earlier one.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hutong_consensus::{SignedMessage, SigningState, Step, ValidatorId, VoteType};
use hutong_core::block::{Block, certify, validator_set};
use hutong_core::crypto::PublicKey;
use hutong_core::testkit::{Fixture, GENESIS_TIME};
use hutong_ledger::store::Mode;

use super::core::{CatchUpGauge, Command, Core, CoreStart, Event, Now, Purpose, Timer};
use super::timers::Timers;
use crate::config::ConsensusConfig;
use crate::limits::{
    CATCH_UP_BEFORE_VOTING_WAIT, CATCH_UP_PEER_SKIP, CATCH_UP_REQUEST_TIMEOUT,
    CATCH_UP_RETRIES_MAX, CATCH_UP_RETRY_FIRST, CATCH_UP_RETRY_MAX, SYNC_BLOCKS_PER_REQUEST_MAX,
};
use crate::messages::{
    self, ConsensusEnvelope, ConsensusMessage, SyncRequest, SyncResponse, TransactionBatch, Value,
};
use crate::metrics::Reason;
use crate::network::{RequestId, Topic};
use crate::penalty::{CertificateRefusal, PenaltyReason};
use crate::shared::Shared;
use crate::shared::tests::shared_for;

const VALIDATORS: usize = 4;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The time `ms` milliseconds into a test.
fn at(ms: u64) -> Now {
    Now {
        instant: base() + Duration::from_millis(ms),
        unix_ms: GENESIS_TIME + 60_000 + ms,
    }
}

/// A stopwatch that stands still: the store's work takes no time in these tests.
fn stopwatch() -> Instant {
    base()
}

struct Node {
    core: Core,
    shared: Arc<Shared>,
    key: PublicKey,
}

fn node_on(
    fixture: &Fixture,
    shared: Arc<Shared>,
    index: usize,
    signing_state: Option<SigningState<Value>>,
    resync: bool,
) -> Node {
    let key = fixture.node_keys[index].clone();
    let core = Core::new(
        shared.clone(),
        CoreStart {
            node_key: key.clone(),
            config: ConsensusConfig::default(),
            signing_state,
            resync,
            extra_allowed: Vec::new(),
            now: at(0),
            stopwatch,
        },
    )
    .expect("a core");
    Node {
        core,
        shared,
        key: key.public_key(),
    }
}

fn node(fixture: &Fixture, index: usize) -> Node {
    node_on(fixture, shared_for(fixture).0, index, None, false)
}

/// The index of the proposer of `height`, round 0.
fn proposer(fixture: &Fixture, height: u64) -> usize {
    let shared = shared_for(fixture).0;
    let set = validator_set(&shared.store.registry_for(height).unwrap()).unwrap();
    let id = set.proposer(height, 0);
    fixture
        .node_keys
        .iter()
        .position(|key| ValidatorId(key.public_key().0) == id)
        .unwrap()
}

/// The registered nodes, in the registry's (key) order.
fn registered(fixture: &Fixture) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = fixture.genesis.nodes.iter().map(|node| node.key).collect();
    keys.sort();
    keys
}

fn envelope(message: ConsensusMessage, sent_at_ms: u64) -> Vec<u8> {
    messages::encode(&ConsensusEnvelope {
        sent_at_ms,
        message,
    })
}

fn status(height: u64) -> Vec<u8> {
    envelope(ConsensusMessage::Status { height }, 0)
}

fn decode(bytes: &[u8]) -> ConsensusMessage {
    messages::decode::<ConsensusEnvelope>(bytes, usize::MAX)
        .unwrap()
        .message
}

fn signed(message: &ConsensusMessage) -> SignedMessage<Value> {
    match message {
        ConsensusMessage::Vote(vote) => SignedMessage::Vote(vote.clone()),
        ConsensusMessage::Proposal { proposal, .. } => SignedMessage::Proposal(proposal.clone()),
        ConsensusMessage::Status { .. } => panic!("a status is not signed"),
    }
}

fn rejected(shared: &Shared, label: &str) -> u64 {
    shared
        .metrics
        .rejected_messages
        .get_or_create(&Reason {
            reason: label.into(),
        })
        .get()
}

/// Checks the persist-before-send rule over one node's successive command lists: every
/// signed message published was recorded by a signing state persisted before it.
#[derive(Default)]
struct PersistBeforeSend {
    persisted: HashSet<Vec<u8>>,
}

impl PersistBeforeSend {
    fn check(&mut self, commands: &[Command]) {
        for command in commands {
            match command {
                Command::PersistSigningState(state) => {
                    for message in std::iter::once(&state.last_signed).chain(&state.signed_before) {
                        self.persisted
                            .insert(hutong_core::codec::to_canonical(message));
                    }
                }
                Command::PublishSigned { bytes } => {
                    let message = hutong_core::codec::to_canonical(&signed(&decode(bytes)));
                    assert!(
                        self.persisted.contains(&message),
                        "a signed message was published before a signing state recording it"
                    );
                }
                _ => {}
            }
        }
    }
}

/// Opens the catch-up before voting of a node on a new chain: a peer reports height 0.
fn hear_height_zero(node: &mut Node, peer: PublicKey, now: Now) -> Vec<Command> {
    node.core
        .handle(
            now,
            Event::Consensus {
                from: peer,
                bytes: status(0),
            },
        )
        .unwrap()
}

/// The proposer of height 1 on a new chain, started and past its catch-up, and the commands
/// of its proposal at the heartbeat.
fn proposal_of_height_one(fixture: &Fixture) -> (Node, Vec<Command>) {
    let index = proposer(fixture, 1);
    let mut proposer = node(fixture, index);
    let peer = fixture.node_keys[(index + 1) % VALIDATORS].public_key();
    proposer.core.handle(at(0), Event::Start).unwrap();
    let opened = hear_height_zero(&mut proposer, peer, at(0));
    let heartbeat = Duration::from_millis(ConsensusConfig::default().heartbeat_ms);
    let timeout_propose = Duration::from_millis(ConsensusConfig::default().timeout_propose_ms);
    assert_eq!(
        opened,
        vec![
            Command::Schedule {
                timer: Timer::Consensus {
                    height: 1,
                    round: 0,
                    step: Step::Propose,
                },
                at: base() + timeout_propose,
            },
            Command::Schedule {
                timer: Timer::Propose,
                at: base() + heartbeat,
            },
        ]
    );
    let commands = proposer
        .core
        .handle(at(2_000), Event::TimerFired(Timer::Propose))
        .unwrap();
    (proposer, commands)
}

#[test]
fn start_sets_the_registered_nodes_and_signs_nothing_while_catching_up() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut node = node(&fixture, 0);
    let commands = node.core.handle(at(0), Event::Start).unwrap();
    assert_eq!(commands, vec![Command::SetAllowed(registered(&fixture))]);
    assert!(node.core.catching_up());
    assert_eq!(node.shared.metrics.catching_up_before_voting.get(), 1);
}

#[test]
fn a_new_validator_signs_nothing_until_a_peer_reports_its_height_and_then_prevotes() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let (_, proposed) = proposal_of_height_one(&fixture);
    let proposal = proposed
        .iter()
        .find_map(|command| match command {
            Command::PublishSigned { bytes } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    let proposer_key = fixture.node_keys[proposer(&fixture, 1)].public_key();
    let index = (proposer(&fixture, 1) + 1) % VALIDATORS;
    let mut node = node(&fixture, index);
    node.core.handle(at(0), Event::Start).unwrap();

    // While it catches up, a valid proposal is heard and nothing is signed.
    let heard = node
        .core
        .handle(
            at(2_001),
            Event::Consensus {
                from: proposer_key,
                bytes: proposal.clone(),
            },
        )
        .unwrap();
    assert_eq!(heard, Vec::new());
    assert!(node.core.catching_up());

    // A peer reports height 0, which this node has: it starts height 1 as a non-proposer.
    let opened = hear_height_zero(&mut node, proposer_key, at(2_002));
    assert_eq!(
        opened,
        vec![Command::Schedule {
            timer: Timer::Consensus {
                height: 1,
                round: 0,
                step: Step::Propose,
            },
            at: base()
                + Duration::from_millis(2_002 + ConsensusConfig::default().timeout_propose_ms),
        }]
    );
    assert!(!node.core.catching_up());
    assert_eq!(node.shared.metrics.catching_up_before_voting.get(), 0);

    // Now the proposal is prevoted: the signing state first, then the vote.
    let commands = node
        .core
        .handle(
            at(2_003),
            Event::Consensus {
                from: proposer_key,
                bytes: proposal,
            },
        )
        .unwrap();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let Command::PersistSigningState(state) = &commands[0] else {
        panic!("the signing state comes first: {commands:?}");
    };
    let Command::PublishSigned { bytes } = &commands[1] else {
        panic!("then the vote: {commands:?}");
    };
    let ConsensusMessage::Vote(vote) = decode(bytes) else {
        panic!("a vote");
    };
    assert_eq!(vote.vote.vote_type, VoteType::Prevote);
    assert_eq!((vote.vote.height, vote.vote.round), (1, 0));
    assert!(vote.vote.value.is_some(), "the valid proposal is prevoted");
    assert_eq!(state.last_signed, SignedMessage::Vote(vote));
    PersistBeforeSend::default().check(&commands);
}

#[test]
fn the_proposer_persists_its_proposal_and_its_prevote_before_sending_each() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let (_, commands) = proposal_of_height_one(&fixture);
    let kinds: Vec<&str> = commands
        .iter()
        .map(|command| match command {
            Command::PersistSigningState(_) => "persist",
            Command::PublishSigned { .. } => "publish",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["persist", "publish", "persist", "publish"]);
    let ConsensusMessage::Proposal { proposal, block } = decode(match &commands[1] {
        Command::PublishSigned { bytes } => bytes,
        _ => unreachable!(),
    }) else {
        panic!("a proposal first");
    };
    assert_eq!((proposal.proposal.height, proposal.proposal.round), (1, 0));
    assert_eq!(block.header.height, 1);
    PersistBeforeSend::default().check(&commands);
}

#[test]
#[should_panic(expected = "published before a signing state")]
fn the_persist_before_send_checker_catches_a_send_moved_before_its_persist() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let (_, mut commands) = proposal_of_height_one(&fixture);
    // The planted bug: the proposal leaves before the state that records it.
    commands.swap(0, 1);
    PersistBeforeSend::default().check(&commands);
}

/// Four cores on four stores, relayed to each other in order until each has committed
/// height 1.
#[test]
fn four_cores_commit_height_one_and_every_signature_is_persisted_before_it_leaves() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut nodes: Vec<Node> = (0..VALIDATORS).map(|index| node(&fixture, index)).collect();
    let mut checkers: Vec<PersistBeforeSend> = (0..VALIDATORS)
        .map(|_| PersistBeforeSend::default())
        .collect();
    let keys: Vec<PublicKey> = nodes.iter().map(|node| node.key).collect();
    let mut queue: std::collections::VecDeque<(usize, Vec<u8>)> = Default::default();
    let mut proposer_timer = None;
    for (index, node) in nodes.iter_mut().enumerate() {
        node.core.handle(at(0), Event::Start).unwrap();
        let commands = hear_height_zero(node, keys[(index + 1) % VALIDATORS], at(0));
        if commands.contains(&Command::Schedule {
            timer: Timer::Propose,
            at: base() + Duration::from_millis(2_000),
        }) {
            proposer_timer = Some(index);
        }
    }
    let proposer = proposer_timer.expect("one node proposes height 1");
    assert_eq!(proposer, self::proposer(&fixture, 1));
    let commands = nodes[proposer]
        .core
        .handle(at(2_000), Event::TimerFired(Timer::Propose))
        .unwrap();
    relay(&mut queue, proposer, commands, &mut checkers[proposer]);
    let mut deliveries = 0;
    while let Some((from, bytes)) = queue.pop_front() {
        deliveries += 1;
        assert!(
            deliveries < 1_000,
            "height 1 commits within a bounded relay"
        );
        for (index, node) in nodes.iter_mut().enumerate() {
            if index == from {
                continue;
            }
            let commands = node
                .core
                .handle(
                    at(2_000 + deliveries),
                    Event::Consensus {
                        from: keys[from],
                        bytes: bytes.clone(),
                    },
                )
                .unwrap();
            relay(&mut queue, index, commands, &mut checkers[index]);
        }
    }
    let hashes: HashSet<String> = nodes
        .iter()
        .map(|node| {
            assert_eq!(node.core.height(), 2);
            node.shared
                .store
                .block(1)
                .unwrap()
                .unwrap()
                .hash(fixture.suite())
                .to_string()
        })
        .collect();
    assert_eq!(hashes.len(), 1, "every core committed the same block");
}

/// Checks one node's commands and queues what it published for the others.
fn relay(
    queue: &mut std::collections::VecDeque<(usize, Vec<u8>)>,
    from: usize,
    commands: Vec<Command>,
    checker: &mut PersistBeforeSend,
) {
    checker.check(&commands);
    for command in commands {
        if let Command::PublishSigned { bytes } = command {
            queue.push_back((from, bytes));
        }
    }
}

#[test]
fn a_round_timeout_prevotes_nil_after_persisting_and_a_stale_one_is_ignored() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let index = (proposer(&fixture, 1) + 1) % VALIDATORS;
    let mut node = node(&fixture, index);
    node.core.handle(at(0), Event::Start).unwrap();
    let peer = fixture.node_keys[proposer(&fixture, 1)].public_key();
    hear_height_zero(&mut node, peer, at(0));
    let stale = node
        .core
        .handle(
            at(10),
            Event::TimerFired(Timer::Consensus {
                height: 0,
                round: 0,
                step: Step::Propose,
            }),
        )
        .unwrap();
    assert_eq!(stale, Vec::new());
    let commands = node
        .core
        .handle(
            at(3_000),
            Event::TimerFired(Timer::Consensus {
                height: 1,
                round: 0,
                step: Step::Propose,
            }),
        )
        .unwrap();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(matches!(commands[0], Command::PersistSigningState(_)));
    let Command::PublishSigned { bytes } = &commands[1] else {
        panic!("a vote after the signing state");
    };
    let ConsensusMessage::Vote(vote) = decode(bytes) else {
        panic!("a vote");
    };
    assert_eq!(
        (vote.vote.vote_type, vote.vote.value),
        (VoteType::Prevote, None)
    );
    PersistBeforeSend::default().check(&commands);

    // A signing state written again after a failure: the latest vote is re-sent as is.
    let resent = node
        .core
        .handle(at(3_100), Event::SigningStateWritten)
        .unwrap();
    assert_eq!(resent.len(), 1, "{resent:?}");
    let Command::PublishSigned { bytes } = &resent[0] else {
        panic!("the vote again");
    };
    assert_eq!(decode(bytes), ConsensusMessage::Vote(vote));
}

#[test]
fn the_status_tick_publishes_the_committed_height_unsigned() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut node = node(&fixture, 0);
    node.core.handle(at(0), Event::Start).unwrap();
    let commands = node.core.handle(at(1_000), Event::StatusTick).unwrap();
    assert_eq!(
        commands,
        vec![Command::Publish {
            topic: Topic::Consensus,
            bytes: envelope(ConsensusMessage::Status { height: 0 }, at(1_000).unix_ms),
        }]
    );
}

#[test]
fn peer_connections_change_nothing_but_who_counts_towards_the_height() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    node.core.handle(at(0), Event::Start).unwrap();
    assert_eq!(
        node.core.handle(at(1), Event::PeerConnected(peer)).unwrap(),
        Vec::new()
    );
    let asked = node
        .core
        .handle(
            at(2),
            Event::Consensus {
                from: peer,
                bytes: status(5),
            },
        )
        .unwrap();
    assert!(matches!(
        asked.as_slice(),
        [
            Command::Request {
                purpose: Purpose::Blocks { request: 1 },
                ..
            },
            Command::Schedule {
                timer: Timer::CatchUpRequest { request: 1 },
                ..
            }
        ]
    ));
    assert_eq!(
        node.core
            .handle(at(3), Event::PeerDisconnected(peer))
            .unwrap(),
        Vec::new()
    );
    assert!(node.core.catching_up());
}

#[test]
fn undecodable_gossip_is_penalised_under_its_own_reason() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    let commands = node
        .core
        .handle(
            at(0),
            Event::Consensus {
                from: peer,
                bytes: b"not an envelope".to_vec(),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![Command::Penalise {
            peer,
            reason: PenaltyReason::MalformedConsensusMessage,
        }]
    );
    assert_eq!(rejected(&node.shared, "malformed_consensus_message"), 1);
    let commands = node
        .core
        .handle(
            at(1),
            Event::TransactionBatch {
                from: peer,
                bytes: b"not a batch".to_vec(),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![Command::Penalise {
            peer,
            reason: PenaltyReason::MalformedTransactionBatch,
        }]
    );
    assert_eq!(rejected(&node.shared, "malformed_transaction_batch"), 1);
}

#[test]
fn a_proposal_whose_block_is_not_its_value_is_penalised() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let (_, proposed) = proposal_of_height_one(&fixture);
    let Command::PublishSigned { bytes } = &proposed[1] else {
        panic!("the proposal");
    };
    let ConsensusMessage::Proposal {
        proposal,
        mut block,
    } = decode(bytes)
    else {
        panic!("a proposal");
    };
    block.header.time += 1;
    let peer = fixture.node_keys[proposer(&fixture, 1)].public_key();
    let mut node = node(&fixture, (proposer(&fixture, 1) + 1) % VALIDATORS);
    let commands = node
        .core
        .handle(
            at(2_001),
            Event::Consensus {
                from: peer,
                bytes: envelope(ConsensusMessage::Proposal { proposal, block }, 0),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![Command::Penalise {
            peer,
            reason: PenaltyReason::ProposalBlockMismatch,
        }]
    );
    assert_eq!(rejected(&node.shared, "proposal_block_mismatch"), 1);
}

#[test]
fn a_transaction_batch_is_admitted_off_the_core_and_a_bad_signature_penalised() {
    let mut fixture = Fixture::with_validators(VALIDATORS);
    let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    let batch = TransactionBatch {
        transactions: vec![transaction.encode().into_bytes(), b"{".to_vec()],
    };
    let commands = node
        .core
        .handle(
            at(0),
            Event::TransactionBatch {
                from: peer,
                bytes: messages::encode(&batch),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![
            Command::Penalise {
                peer,
                reason: PenaltyReason::MalformedTransaction,
            },
            Command::Admit {
                from: peer,
                transactions: vec![transaction],
            },
        ]
    );
    let fine = node
        .core
        .handle(
            at(1),
            Event::Admitted {
                from: peer,
                bad_signature: false,
            },
        )
        .unwrap();
    assert_eq!(fine, Vec::new());
    let bad = node
        .core
        .handle(
            at(2),
            Event::Admitted {
                from: peer,
                bad_signature: true,
            },
        )
        .unwrap();
    assert_eq!(
        bad,
        vec![Command::Penalise {
            peer,
            reason: PenaltyReason::BadSignature,
        }]
    );
    assert_eq!(rejected(&node.shared, "bad_signature"), 1);
}

#[test]
fn the_mempool_gaining_a_transaction_brings_the_proposal_forward() {
    let mut fixture = Fixture::with_validators(VALIDATORS);
    let index = proposer(&fixture, 1);
    let mut node = node(&fixture, index);
    node.core.handle(at(0), Event::Start).unwrap();
    hear_height_zero(
        &mut node,
        fixture.node_keys[(index + 1) % VALIDATORS].public_key(),
        at(0),
    );
    let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
    assert!(node.shared.admit_batch(vec![transaction], false)[0].is_ok());
    let commands = node.core.handle(at(5), Event::MempoolChanged).unwrap();
    let batch_wait = ConsensusConfig::default().batch_wait_ms;
    assert_eq!(
        commands,
        vec![Command::Schedule {
            timer: Timer::Propose,
            at: base() + Duration::from_millis(batch_wait),
        }]
    );
    // Unchanged, it is not scheduled again.
    assert_eq!(
        node.core.handle(at(6), Event::MempoolChanged).unwrap(),
        Vec::new()
    );
}

#[test]
fn sync_requests_are_answered_and_a_malformed_one_is_penalised() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    let blocks = node
        .core
        .handle(
            at(0),
            Event::SyncRequest {
                from: peer,
                request_id: RequestId(7),
                bytes: messages::encode(&SyncRequest::Blocks { from: 1, count: 4 }),
            },
        )
        .unwrap();
    assert_eq!(
        blocks,
        vec![Command::Respond {
            request_id: RequestId(7),
            bytes: messages::encode(&SyncResponse::Blocks(Vec::new())),
        }]
    );
    let malformed = node
        .core
        .handle(
            at(1),
            Event::SyncRequest {
                from: peer,
                request_id: RequestId(8),
                bytes: b"?".to_vec(),
            },
        )
        .unwrap();
    assert_eq!(
        malformed,
        vec![
            Command::Penalise {
                peer,
                reason: PenaltyReason::MalformedSyncRequest,
            },
            Command::Respond {
                request_id: RequestId(8),
                bytes: messages::encode(&SyncResponse::Refused("malformed request".into())),
            },
        ]
    );
}

/// A chain of `count` empty blocks on `shared`'s store, each certified by `signers` of the
/// fixture's validators.
fn extend(fixture: &Fixture, shared: &Shared, count: u64, signers: usize) -> Vec<Block> {
    let keys: Vec<_> = fixture.node_keys.iter().take(signers).collect();
    (0..count)
        .map(|_| {
            let head = shared.store.head().unwrap();
            let execution = shared
                .store
                .execute_with_evidence(
                    head.header.time + 1_000,
                    fixture.node_keys[0].public_key(),
                    Vec::new(),
                    Vec::new(),
                    Mode::Build,
                )
                .unwrap();
            let certificate = certify(fixture.suite(), &execution.header, 0, &keys);
            shared.store.commit(execution, certificate).unwrap()
        })
        .collect()
}

#[test]
fn a_validator_catches_up_to_its_peers_height_before_it_signs() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let served = extend(&fixture, &shared_for(&fixture).0, 3, VALIDATORS);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    node.core.handle(at(0), Event::Start).unwrap();
    let asked = node
        .core
        .handle(
            at(1),
            Event::Consensus {
                from: peer,
                bytes: status(3),
            },
        )
        .unwrap();
    assert_eq!(
        asked,
        vec![
            Command::Request {
                peer,
                bytes: messages::encode(&SyncRequest::Blocks {
                    from: 1,
                    count: SYNC_BLOCKS_PER_REQUEST_MAX,
                }),
                purpose: Purpose::Blocks { request: 1 },
            },
            Command::Schedule {
                timer: Timer::CatchUpRequest { request: 1 },
                at: at(1).instant + CATCH_UP_REQUEST_TIMEOUT,
            }
        ]
    );
    assert!(node.core.catching_up());
    let commands = node
        .core
        .handle(
            at(2),
            Event::Response {
                peer,
                purpose: Purpose::Blocks { request: 1 },
                result: Ok(messages::encode(&SyncResponse::Blocks(served.clone()))),
            },
        )
        .unwrap();
    assert_eq!(node.core.height(), 4);
    assert!(!node.core.catching_up(), "caught up to the peer's height 3");
    assert!(
        commands
            .iter()
            .all(|command| !matches!(command, Command::PersistSigningState(_))),
        "{commands:?}"
    );
    assert_eq!(node.shared.metrics.catch_up_blocks.get(), 3);
    assert_eq!(
        node.shared
            .store
            .block(3)
            .unwrap()
            .unwrap()
            .hash(fixture.suite()),
        served[2].hash(fixture.suite())
    );
}

#[test]
fn a_forged_catch_up_certificate_is_penalised_and_commits_nothing() {
    let fixture = Fixture::with_validators(VALIDATORS);
    // Two of four signers: not more than two thirds of the power.
    let forged = extend(&fixture, &shared_for(&fixture).0, 1, 2);
    let mut node = node(&fixture, 0);
    let peer = fixture.node_keys[1].public_key();
    node.core.handle(at(0), Event::Start).unwrap();
    node.core
        .handle(
            at(1),
            Event::Consensus {
                from: peer,
                bytes: status(1),
            },
        )
        .unwrap();
    let root_before = node.shared.store.head().unwrap().header.state_root;
    let commands = node
        .core
        .handle(
            at(2),
            Event::Response {
                peer,
                purpose: Purpose::Blocks { request: 1 },
                result: Ok(messages::encode(&SyncResponse::Blocks(forged))),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![
            Command::Penalise {
                peer,
                reason: PenaltyReason::BadCertificate(CertificateRefusal::InsufficientPower),
            },
            Command::Schedule {
                timer: Timer::CatchUpRetry,
                at: at(2).instant + CATCH_UP_RETRY_FIRST,
            },
        ]
    );
    assert_eq!(
        rejected(&node.shared, "bad_certificate_insufficient_power"),
        1
    );
    assert_eq!(node.shared.store.height().unwrap(), 0);
    assert_eq!(
        node.shared.store.head().unwrap().header.state_root,
        root_before
    );
    assert!(node.core.catching_up(), "a forger's height does not count");
    // A late copy of an answer to the request already settled is dropped unread.
    let late = node
        .core
        .handle(
            at(3),
            Event::Response {
                peer,
                purpose: Purpose::Blocks { request: 1 },
                result: Ok(messages::encode(&SyncResponse::Transactions(Vec::new()))),
            },
        )
        .unwrap();
    assert_eq!(late, Vec::new());
}

/// A node of four that heard `forger` report height 1 and asked it (request 1).
fn asking(fixture: &Fixture, forger: PublicKey) -> Node {
    let mut node = node(fixture, 0);
    node.core.handle(at(0), Event::Start).unwrap();
    node.core
        .handle(
            at(1),
            Event::Consensus {
                from: forger,
                bytes: status(1),
            },
        )
        .unwrap();
    node
}

fn blocks_request(peer: PublicKey, request: u64, from: u64, now: Now) -> Vec<Command> {
    vec![
        Command::Request {
            peer,
            bytes: messages::encode(&SyncRequest::Blocks {
                from,
                count: SYNC_BLOCKS_PER_REQUEST_MAX,
            }),
            purpose: Purpose::Blocks { request },
        },
        Command::Schedule {
            timer: Timer::CatchUpRequest { request },
            at: now.instant + CATCH_UP_REQUEST_TIMEOUT,
        },
    ]
}

#[test]
fn after_a_forged_answer_the_next_request_goes_to_the_honest_peer_after_the_backoff() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let forged = extend(&fixture, &shared_for(&fixture).0, 1, 2);
    let honest_blocks = extend(&fixture, &shared_for(&fixture).0, 1, VALIDATORS);
    let forger = fixture.node_keys[1].public_key();
    let honest = fixture.node_keys[2].public_key();
    let mut node = asking(&fixture, forger);
    let refused = node
        .core
        .handle(
            at(2),
            Event::Response {
                peer: forger,
                purpose: Purpose::Blocks { request: 1 },
                result: Ok(messages::encode(&SyncResponse::Blocks(forged))),
            },
        )
        .unwrap();
    assert_eq!(
        refused,
        vec![
            Command::Penalise {
                peer: forger,
                reason: PenaltyReason::BadCertificate(CertificateRefusal::InsufficientPower),
            },
            Command::Schedule {
                timer: Timer::CatchUpRetry,
                at: at(2).instant + CATCH_UP_RETRY_FIRST,
            },
        ]
    );
    // The honest peer reports within the backoff, and the forger again (its status relayed
    // by another peer): nothing is asked before the backoff has passed.
    for peer in [honest, forger] {
        let heard = node
            .core
            .handle(
                at(3),
                Event::Consensus {
                    from: peer,
                    bytes: status(1),
                },
            )
            .unwrap();
        assert_eq!(heard, Vec::new());
    }
    // The retry skips the forger, whatever the turn says.
    let retry_ms = 2 + CATCH_UP_RETRY_FIRST.as_millis() as u64;
    let retried = node
        .core
        .handle(at(retry_ms), Event::TimerFired(Timer::CatchUpRetry))
        .unwrap();
    assert_eq!(retried, blocks_request(honest, 2, 1, at(retry_ms)));
    let caught_up = node
        .core
        .handle(
            at(retry_ms + 1),
            Event::Response {
                peer: honest,
                purpose: Purpose::Blocks { request: 2 },
                result: Ok(messages::encode(&SyncResponse::Blocks(honest_blocks))),
            },
        )
        .unwrap();
    assert_eq!(node.shared.store.height().unwrap(), 1);
    assert!(!node.core.catching_up(), "caught up from the honest peer");
    assert!(
        caught_up
            .iter()
            .all(|command| !matches!(command, Command::Penalise { .. })),
        "{caught_up:?}"
    );
    assert_eq!(
        node.shared
            .metrics
            .catch_up_request_failures
            .get_or_create(&Reason {
                reason: "bad_block".into()
            })
            .get(),
        1
    );
}

/// The stall of the forged catch-up end-to-end test, in the core: a request that is never
/// answered kept the catch-up in flight for good, and the honest peer that reported later
/// was never asked.
#[test]
fn a_catch_up_request_not_answered_in_time_is_sent_to_another_peer() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let silent = fixture.node_keys[1].public_key();
    let honest = fixture.node_keys[2].public_key();
    let mut node = asking(&fixture, silent);
    let heard = node
        .core
        .handle(
            at(2),
            Event::Consensus {
                from: honest,
                bytes: status(1),
            },
        )
        .unwrap();
    assert_eq!(heard, Vec::new(), "one request in flight at a time");
    let timeout_ms = 1 + CATCH_UP_REQUEST_TIMEOUT.as_millis() as u64;
    let timed_out = node
        .core
        .handle(
            at(timeout_ms),
            Event::TimerFired(Timer::CatchUpRequest { request: 1 }),
        )
        .unwrap();
    assert_eq!(
        timed_out,
        vec![Command::Schedule {
            timer: Timer::CatchUpRetry,
            at: at(timeout_ms).instant + CATCH_UP_RETRY_FIRST,
        }]
    );
    let retry_ms = timeout_ms + CATCH_UP_RETRY_FIRST.as_millis() as u64;
    let retried = node
        .core
        .handle(at(retry_ms), Event::TimerFired(Timer::CatchUpRetry))
        .unwrap();
    assert_eq!(retried, blocks_request(honest, 2, 1, at(retry_ms)));
    // The silent peer's answer, when it comes at last, is dropped; request 2 stays.
    let late = node
        .core
        .handle(
            at(retry_ms + 1),
            Event::Response {
                peer: silent,
                purpose: Purpose::Blocks { request: 1 },
                result: Err("timeout".into()),
            },
        )
        .unwrap();
    assert_eq!(late, Vec::new());
    // A stale timeout of request 1 changes nothing either.
    let stale = node
        .core
        .handle(
            at(retry_ms + 2),
            Event::TimerFired(Timer::CatchUpRequest { request: 1 }),
        )
        .unwrap();
    assert_eq!(stale, Vec::new());
}

#[test]
fn failed_catch_up_requests_back_off_doubling_and_stop_retrying_after_the_bound() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let peers: Vec<PublicKey> = (1..VALIDATORS)
        .map(|index| fixture.node_keys[index].public_key())
        .collect();
    let mut node = asking(&fixture, peers[0]);
    let mut now = 2u64;
    let mut expected_backoff = CATCH_UP_RETRY_FIRST;
    for failure in 1..=CATCH_UP_RETRIES_MAX + 1 {
        // Every peer keeps reporting height 1 and every request fails at once.
        let mut asked = Vec::new();
        for peer in &peers {
            asked.extend(
                node.core
                    .handle(
                        at(now),
                        Event::Consensus {
                            from: *peer,
                            bytes: status(1),
                        },
                    )
                    .unwrap(),
            );
        }
        asked.extend(
            node.core
                .handle(at(now), Event::TimerFired(Timer::CatchUpRetry))
                .unwrap(),
        );
        let requests: Vec<PublicKey> = asked
            .iter()
            .filter_map(|command| match command {
                Command::Request { peer, .. } => Some(*peer),
                _ => None,
            })
            .collect();
        let peer = match requests.as_slice() {
            [peer] => *peer,
            [] if failure == 1 => peers[0],
            other => panic!("not one request at failure {failure}: {other:?}"),
        };
        let failed = node
            .core
            .handle(
                at(now),
                Event::Response {
                    peer,
                    purpose: Purpose::Blocks {
                        request: u64::from(failure),
                    },
                    result: Err("connection closed".into()),
                },
            )
            .unwrap();
        if failure <= CATCH_UP_RETRIES_MAX {
            assert_eq!(
                failed,
                vec![Command::Schedule {
                    timer: Timer::CatchUpRetry,
                    at: at(now).instant + expected_backoff,
                }],
                "failure {failure}"
            );
        } else {
            assert_eq!(failed, Vec::new(), "no retry past the bound");
        }
        now += expected_backoff.as_millis() as u64;
        expected_backoff = (expected_backoff * 2).min(CATCH_UP_RETRY_MAX);
    }
    // Past the bound a peer's status still brings a request, once the longest backoff passed.
    let heard = node
        .core
        .handle(
            at(now + CATCH_UP_RETRY_MAX.as_millis() as u64 + CATCH_UP_PEER_SKIP.as_millis() as u64),
            Event::Consensus {
                from: peers[0],
                bytes: status(1),
            },
        )
        .unwrap();
    assert!(
        matches!(heard.first(), Some(Command::Request { .. })),
        "{heard:?}"
    );
}

#[test]
fn an_observer_does_not_wait_before_following() {
    // A fifth registered node, of no voting power.
    let mut fixture = Fixture::with_validators(VALIDATORS + 1);
    fixture.genesis.nodes[VALIDATORS].power = 0;
    let shared = shared_for(&fixture).0;
    extend(&fixture, &shared, 2, VALIDATORS);
    let mut node = node_on(&fixture, shared, VALIDATORS, None, true);
    assert!(
        !node.core.catching_up(),
        "an observer signs nothing to guard"
    );
    node.core.handle(at(0), Event::Start).unwrap();
    assert_eq!(node.core.catch_up_gauge(), CatchUpGauge::Off);
    assert_eq!(node.shared.metrics.catching_up_before_voting.get(), 0);
    // It follows at once: a peer's higher height brings a catch-up request.
    let peer = fixture.node_keys[0].public_key();
    let asked = node
        .core
        .handle(
            at(1),
            Event::Consensus {
                from: peer,
                bytes: status(5),
            },
        )
        .unwrap();
    assert_eq!(asked, blocks_request(peer, 1, 3, at(1)));
}

#[test]
fn without_its_signing_state_a_validator_with_blocks_waits_for_a_peer_past_the_bound() {
    let fixture = Fixture::with_validators(VALIDATORS);
    let shared = shared_for(&fixture).0;
    extend(&fixture, &shared, 2, VALIDATORS);
    let mut node = node_on(&fixture, shared, 0, None, true);
    node.core.handle(at(0), Event::Start).unwrap();
    let wait_ms = CATCH_UP_BEFORE_VOTING_WAIT.as_millis() as u64;
    let commands = node
        .core
        .handle(at(wait_ms + 1), Event::StatusTick)
        .unwrap();
    // Past the wait it stays non-signing and asks a registered peer itself.
    let mut expected = vec![Command::Publish {
        topic: Topic::Consensus,
        bytes: envelope(
            ConsensusMessage::Status { height: 2 },
            at(wait_ms + 1).unix_ms,
        ),
    }];
    let asked = match commands.get(1) {
        Some(Command::Request { peer, .. }) => *peer,
        other => panic!("no request: {other:?}"),
    };
    assert!(registered(&fixture).contains(&asked) && asked != node.key);
    expected.extend(blocks_request(asked, 1, 3, at(wait_ms + 1)));
    assert_eq!(commands, expected);
    assert!(
        node.core.catching_up(),
        "it cannot show it never signed at height 3"
    );
    assert_eq!(node.core.catch_up_gauge(), CatchUpGauge::WaitingForPeers);
    assert_eq!(node.shared.metrics.catching_up_before_voting.get(), 2);
}

#[test]
fn a_signing_state_behind_the_store_waits_within_the_bound_and_then_signs_after_it() {
    // A real signing state of height 1, from a proposer of height 1.
    let fixture = Fixture::with_validators(VALIDATORS);
    let (proposer_node, proposed) = proposal_of_height_one(&fixture);
    let state = proposed
        .iter()
        .rev()
        .find_map(|command| match command {
            Command::PersistSigningState(state) => Some(state.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(state.height(), 1);
    let index = proposer(&fixture, 1);
    drop(proposer_node);
    let shared = shared_for(&fixture).0;
    extend(&fixture, &shared, 3, VALIDATORS);
    let mut node = node_on(&fixture, shared, index, Some(state), false);
    node.core.handle(at(0), Event::Start).unwrap();
    assert!(node.core.catching_up());
    let wait_ms = CATCH_UP_BEFORE_VOTING_WAIT.as_millis() as u64;
    node.core
        .handle(at(wait_ms - 1), Event::StatusTick)
        .unwrap();
    assert!(node.core.catching_up(), "within the bound it waits");
    let commands = node.core.handle(at(wait_ms), Event::StatusTick).unwrap();
    assert!(
        !node.core.catching_up(),
        "its restored signing state guards it"
    );
    assert!(
        matches!(
            commands.first(),
            Some(Command::Publish {
                topic: Topic::Consensus,
                ..
            })
        ),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|command| matches!(command, Command::Schedule { .. })),
        "height 4 starts: {commands:?}"
    );
}

#[test]
fn missing_transactions_of_a_proposal_are_fetched_from_its_proposer() {
    let mut fixture = Fixture::with_validators(VALIDATORS);
    let index = proposer(&fixture, 1);
    let mut proposer_node = node(&fixture, index);
    proposer_node.core.handle(at(0), Event::Start).unwrap();
    hear_height_zero(
        &mut proposer_node,
        fixture.node_keys[(index + 1) % VALIDATORS].public_key(),
        at(0),
    );
    let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
    assert!(proposer_node.shared.admit_batch(vec![transaction], false)[0].is_ok());
    let proposed = proposer_node
        .core
        .handle(at(2_000), Event::TimerFired(Timer::Propose))
        .unwrap();
    let Command::PublishSigned { bytes } = &proposed[1] else {
        panic!("the proposal: {proposed:?}");
    };
    let ConsensusMessage::Proposal { block, .. } = decode(bytes) else {
        panic!("a proposal");
    };
    let value = block.header.hash(fixture.suite()).0;
    let proposer_key = fixture.node_keys[index].public_key();
    let mut node = node(&fixture, (index + 1) % VALIDATORS);
    node.core.handle(at(0), Event::Start).unwrap();
    hear_height_zero(&mut node, proposer_key, at(1));
    let commands = node
        .core
        .handle(
            at(2_001),
            Event::Consensus {
                from: proposer_key,
                bytes: bytes.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        commands,
        vec![Command::Request {
            peer: proposer_key,
            bytes: messages::encode(&SyncRequest::Transactions {
                ids: block.transaction_ids.clone(),
            }),
            purpose: Purpose::Transactions(value),
        }]
    );
    // A transaction not asked for is penalised.
    let stranger = fixture.issue_business_licence("qd-approval", "370200", 2);
    let answered = node
        .core
        .handle(
            at(2_002),
            Event::Response {
                peer: proposer_key,
                purpose: Purpose::Transactions(value),
                result: Ok(messages::encode(&SyncResponse::Transactions(vec![
                    stranger.encode().into_bytes(),
                ]))),
            },
        )
        .unwrap();
    assert_eq!(
        answered.first(),
        Some(&Command::Penalise {
            peer: proposer_key,
            reason: PenaltyReason::UnaskedTransaction,
        })
    );
}

/// Performs the schedules of `commands` on `timers`, as the runtime does.
fn schedule_all(timers: &mut Timers, commands: &[Command]) {
    for command in commands {
        if let Command::Schedule { timer, at } = command {
            timers.schedule(*timer, *at);
        }
    }
}

/// The stall of the forged catch-up end-to-end test, at its root: a lone validator (all the
/// power) whose heartbeat is shorter than a block's work has its next proposal due again
/// when each commit ends. The runtime's loop fired timers while the clock said one was due,
/// so it never came back to the network's events, the status tick or the shutdown; a turn
/// now fires only the timers due when it began.
#[test]
fn a_lone_validator_proposing_faster_than_it_commits_leaves_each_turn_to_other_events() {
    let fixture = Fixture::with_validators(1);
    let config = ConsensusConfig {
        heartbeat_ms: 1,
        ..ConsensusConfig::default()
    };
    let mut core = Core::new(
        shared_for(&fixture).0,
        CoreStart {
            node_key: fixture.node_keys[0].clone(),
            config,
            signing_state: None,
            resync: false,
            extra_allowed: Vec::new(),
            now: at(0),
            stopwatch,
        },
    )
    .unwrap();
    let mut timers = Timers::default();
    schedule_all(&mut timers, &core.handle(at(0), Event::Start).unwrap());
    // Alone among the registered nodes, it signs once the wait has passed.
    let wait_ms = CATCH_UP_BEFORE_VOTING_WAIT.as_millis() as u64;
    schedule_all(
        &mut timers,
        &core.handle(at(wait_ms), Event::StatusTick).unwrap(),
    );
    assert!(!core.catching_up());
    // Each step takes the core 5 ms here: five heartbeats.
    let mut clock = wait_ms + 5;
    for turn in 1..=3 {
        let height = core.height();
        let due = timers.take_due(at(clock).instant);
        assert_eq!(due, vec![Timer::Propose], "turn {turn}");
        for timer in due {
            let commands = core.handle(at(clock), Event::TimerFired(timer)).unwrap();
            schedule_all(&mut timers, &commands);
            clock += 5;
        }
        assert_eq!(core.height(), height + 1, "turn {turn} committed a block");
        // The next proposal is due already; it waits for the next turn of the loop.
        assert!(
            timers
                .next_at()
                .is_some_and(|next| next <= at(clock).instant),
            "turn {turn}"
        );
    }
}

/// The forged catch-up stall through the runtime's loop itself, on a real (peerless) network:
/// a lone validator (all the power) proposing back to back, with a heartbeat of zero so that
/// its next proposal is due whenever a commit ends, while a registered peer gossips absurd
/// heights (its catch-up requests failing, so that they back off). Each absurd status must
/// still be heard within a bound while blocks keep committing, and the shutdown must end the
/// loop within a bound. The loop that fired timers while the clock said one was due never came
/// back to its select, so it heard no event, no status tick and no shutdown.
#[test]
fn a_lone_validator_proposing_back_to_back_keeps_hearing_absurd_heights_and_stops_on_shutdown() {
    use crate::network::{NetworkConfig, NetworkEvent};
    use tokio::sync::{mpsc, watch};

    let mut fixture = Fixture::with_validators(2);
    fixture.genesis.nodes[1].power = 0;
    let (shared, _gossiped) = shared_for(&fixture);
    let peer = fixture.node_keys[1].public_key();
    let home = tempfile::tempdir().expect("a directory");
    let start = super::EngineStart {
        node_key: fixture.node_keys[0].clone(),
        config: ConsensusConfig {
            heartbeat_ms: 0,
            ..ConsensusConfig::default()
        },
        signing_state_path: home.path().join("signing_state.json"),
        extra_allowed: Vec::new(),
        resync: false,
        faults: crate::faults::Faults::default(),
    };
    let mut network_config =
        NetworkConfig::new(fixture.node_keys[0].clone(), shared.store.chain_id());
    network_config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("an address")];
    network_config.allowed = vec![peer];
    let (events, events_received) = mpsc::channel(64);
    let (shutdown, shutdown_received) = watch::channel(false);
    let (stopped, stopped_received) = std::sync::mpsc::channel();
    let engine_shared = shared.clone();
    // The engine runs on a runtime of its own thread: a loop that never yields cannot hang
    // this test, which gives up on it after the bound.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let result = runtime.block_on(async move {
            let (network, _network_events) =
                crate::network::spawn(network_config).map_err(|error| error.to_string())?;
            let engine =
                super::Engine::new(engine_shared, start).map_err(|error| error.to_string())?;
            engine
                .run(network, events_received, shutdown_received)
                .await
                .map_err(|error| error.to_string())
        });
        let _ = stopped.send(result);
    });
    let gossip = |height: u64| NetworkEvent::Gossip {
        topic: Topic::Consensus,
        from: peer,
        bytes: status(height),
    };
    let wait_until = |what: &str, bound: Duration, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + bound;
        while !check() {
            assert!(Instant::now() < deadline, "{what} within {bound:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let height = || shared.store.height().expect("a height");

    // The peer's height 0 ends the catch-up before voting: it proposes back to back.
    events.blocking_send(gossip(0)).expect("the engine hears");
    wait_until("ten blocks", Duration::from_secs(20), &|| height() >= 10);
    let before = height();
    for absurd in 0..20u64 {
        let reported = u64::MAX / 2 + absurd;
        events
            .blocking_send(gossip(reported))
            .expect("the engine hears");
        wait_until(
            &format!("the absurd height {reported} heard"),
            Duration::from_secs(5),
            &|| {
                shared
                    .status
                    .best_peer_height
                    .load(std::sync::atomic::Ordering::Relaxed)
                    == reported
            },
        );
    }
    assert!(height() > before, "blocks kept committing meanwhile");
    assert!(
        shared
            .metrics
            .catch_up_request_failures
            .get_or_create(&Reason {
                reason: "failed".into()
            })
            .get()
            >= 1,
        "the requests to the peer that cannot serve its heights failed"
    );
    shutdown.send(true).expect("the engine listens");
    let result = stopped_received
        .recv_timeout(Duration::from_secs(5))
        .expect("the engine stopped within 5 s of the shutdown");
    assert_eq!(result, Ok(()));
}
