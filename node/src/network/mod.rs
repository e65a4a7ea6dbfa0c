//! The node's peer-to-peer network: the only place in hutong that knows libp2p.
//!
//! Transport is TCP, secured by Noise and multiplexed by Yamux; the node key is the libp2p
//! identity. Gossipsub carries two topics (transaction batches and consensus messages);
//! one request-response protocol carries catch-up and missing-transaction requests;
//! identify and ping keep the peer table honest. Why these choices, and what they cost, is
//! in `docs/adr/0003-network.md`.
//!
//! The module moves bounded byte payloads and nothing else: the node encodes and decodes
//! its own messages, decides whether a payload is valid, and calls
//! [`NetworkHandle::penalise`] when it is not. Peers appear to the rest of the node only as
//! ledger [`PublicKey`]s; libp2p's `PeerId` never leaves this module.
//!
//! One task (started by [`spawn`]) owns the libp2p `Swarm`. The node talks to it through a
//! [`NetworkHandle`] (commands over a bounded channel, each answered through its own
//! one-shot reply) and hears from it through a bounded [`NetworkEvent`] receiver. The task
//! never waits on the node: when the event channel is full the event is dropped and counted
//! (see [`NetworkStats::events_dropped_channel_full`]), so a slow consumer cannot stall
//! keep-alives and cascade into disconnections, and the two channels cannot deadlock.
//!
//! Only registered peers may connect: a connection from any other key is closed right after
//! the Noise handshake (the first moment its key is known) and counted.
//!
//! ```ignore
//! // `node` is a binary crate, so this example is compiled only as part of its docs.
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use hutong_core::crypto::SecretKey;
//! use hutong_node::network::{NetworkConfig, NetworkEvent, Topic, spawn};
//!
//! let peer = SecretKey::from_seed([2; 32]).public_key();
//! let mut config = NetworkConfig::new(SecretKey::from_seed([1; 32]), "hutong-testnet");
//! config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
//! config.allowed = vec![peer];
//! config.bootstrap = vec![(peer, "/ip4/127.0.0.1/tcp/26656".parse()?)];
//! let (network, mut events) = spawn(config)?;
//! network.publish(Topic::Transactions, b"a batch".to_vec()).await.ok();
//! while let Some(event) = events.recv().await {
//!     if let NetworkEvent::Request { request_id, .. } = event {
//!         network.respond(request_id, b"blocks".to_vec()).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod codec;
mod event_loop;
mod identity;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::limits::{GOSSIP_ENVELOPE_BYTES, REQUEST_REPLY_SLACK};
use hutong_core::crypto::{PublicKey, SecretKey};
use tokio::sync::{mpsc, oneshot};

pub use libp2p::Multiaddr;

/// Every bound the network enforces, in one place. [`NetworkLimits::default`] holds the
/// production values; tests shorten the timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Largest payload on the transaction topic. Transactions travel in batches; a batch is
    /// cut by the node before it reaches this size.
    pub gossip_transactions_bytes_max: usize,
    /// Largest payload on the consensus topic, which carries proposals with their block.
    pub gossip_consensus_bytes_max: usize,
    /// Largest request payload (a height range, a list of missing transaction hashes).
    pub request_bytes_max: usize,
    /// Largest response payload (blocks with their commit certificates). The node's sync
    /// responder cuts its height range to fit.
    pub response_bytes_max: usize,
    /// Commands the handle may queue before its callers wait.
    pub command_channel_capacity: usize,
    /// Events queued for the node before further events are dropped and counted.
    pub event_channel_capacity: usize,
    /// How long an outbound request waits for its response; also how long an inbound
    /// request stays answerable.
    pub request_timeout: Duration,
    /// Outbound requests in flight at once; more fail at once with
    /// [`NetworkError::TooManyPendingRequests`].
    pub outbound_requests_pending_max: usize,
    /// Inbound requests awaiting the node's answer; more are refused (the requester sees a
    /// failure) and counted.
    pub inbound_requests_pending_max: usize,
    /// Established connections in total.
    pub connections_established_max: u32,
    /// Connections still in their handshake (before the remote key is known): the bound on
    /// what an unregistered host can make us spend.
    pub connections_pending_incoming_max: u32,
    /// Gossipsub heartbeat: how often meshes are repaired and gossip is emitted. Short,
    /// because consensus messages must not wait for a slow mesh.
    pub gossip_heartbeat: Duration,
    /// First wait before re-dialling a disconnected allowed peer; doubled after each failed
    /// attempt up to `redial_backoff_max`, reset once connected.
    pub redial_backoff_initial: Duration,
    /// Longest wait between two dials of one disconnected peer.
    pub redial_backoff_max: Duration,
    /// Penalty points at which a peer is disconnected and refused for `ban_duration`.
    pub penalty_points_ban: u32,
    /// Points forgiven each second, so that rare faults do not add up to a ban over weeks.
    pub penalty_points_forgiven_per_second: u32,
    /// How long a banned peer is refused.
    pub ban_duration: Duration,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        Self {
            gossip_transactions_bytes_max: 1024 * 1024,
            gossip_consensus_bytes_max: hutong_core::limits::BLOCK_BYTES_MAX + 64 * 1024,
            request_bytes_max: 1024 * 1024,
            response_bytes_max: 2 * hutong_core::limits::BLOCK_BYTES_MAX + 1024 * 1024,
            command_channel_capacity: 1024,
            event_channel_capacity: 4096,
            request_timeout: Duration::from_secs(10),
            outbound_requests_pending_max: 256,
            inbound_requests_pending_max: 256,
            connections_established_max: 2 * hutong_core::limits::NODES_MAX as u32,
            connections_pending_incoming_max: 64,
            gossip_heartbeat: Duration::from_millis(150),
            redial_backoff_initial: Duration::from_secs(1),
            redial_backoff_max: Duration::from_secs(10),
            penalty_points_ban: 100,
            penalty_points_forgiven_per_second: 1,
            ban_duration: Duration::from_secs(10 * 60),
        }
    }
}

impl NetworkLimits {
    /// Checks the relations between the limits; the first one broken is named.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let fail = |what: &'static str| Err(NetworkError::InvalidLimits { what });
        // Gossipsub refuses frame limits under 100 bytes; a payload limit that small is a
        // configuration mistake in any case.
        if self.gossip_transactions_bytes_max < 100 || self.gossip_consensus_bytes_max < 100 {
            return fail("gossip payload limits are at least 100 bytes");
        }
        if self.request_bytes_max == 0 || self.response_bytes_max == 0 {
            return fail("request and response limits are at least 1 byte");
        }
        if u32::try_from(self.request_bytes_max).is_err()
            || u32::try_from(self.response_bytes_max).is_err()
        {
            return fail("request and response limits fit the 4-byte length prefix");
        }
        if self.command_channel_capacity == 0 || self.event_channel_capacity == 0 {
            return fail("channel capacities are at least 1");
        }
        if self.request_timeout.is_zero() {
            return fail("the request timeout is not zero");
        }
        if self.outbound_requests_pending_max == 0 || self.inbound_requests_pending_max == 0 {
            return fail("pending request bounds are at least 1");
        }
        if self.connections_established_max == 0 || self.connections_pending_incoming_max == 0 {
            return fail("connection bounds are at least 1");
        }
        if self.gossip_heartbeat.is_zero() {
            return fail("the gossip heartbeat is not zero");
        }
        if self.redial_backoff_initial.is_zero()
            || self.redial_backoff_initial > self.redial_backoff_max
        {
            return fail("0 < redial_backoff_initial <= redial_backoff_max");
        }
        if self.penalty_points_ban == 0 {
            return fail("the ban threshold is at least 1 point");
        }
        Ok(())
    }

    fn gossip_bytes_max(&self, topic: Topic) -> usize {
        match topic {
            Topic::Transactions => self.gossip_transactions_bytes_max,
            Topic::Consensus => self.gossip_consensus_bytes_max,
        }
    }
}

/// What [`spawn`] needs to start the network.
#[derive(Debug)]
pub struct NetworkConfig {
    /// The node key; its seed is the libp2p identity.
    pub node_key: SecretKey,
    /// Names the gossip topics and the request protocol, so that two chains never mix.
    pub chain_id: String,
    /// Addresses to listen on, such as `/ip4/0.0.0.0/tcp/26656`; `tcp/0` takes a free port,
    /// which [`NetworkHandle::listen_addresses`] reports once bound.
    pub listen: Vec<Multiaddr>,
    /// Where to find some registered peers at start. Each key must also be in `allowed`.
    pub bootstrap: Vec<(PublicKey, Multiaddr)>,
    /// The registered nodes (validators and observers from genesis, the ledger and the
    /// operator's config): the only keys that may connect. Our own key may be included.
    pub allowed: Vec<PublicKey>,
    pub limits: NetworkLimits,
}

impl NetworkConfig {
    /// A config with no listen address, no peers and the default limits.
    pub fn new(node_key: SecretKey, chain_id: impl Into<String>) -> Self {
        Self {
            node_key,
            chain_id: chain_id.into(),
            listen: Vec::new(),
            bootstrap: Vec::new(),
            allowed: Vec::new(),
            limits: NetworkLimits::default(),
        }
    }
}

/// The two gossip topics. Their names carry the chain id: `hutong/<chain_id>/tx/1` and
/// `hutong/<chain_id>/consensus/1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Batches of transactions waiting for a block.
    Transactions,
    /// Proposals, votes and status messages.
    Consensus,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    fn name(self, chain_id: &str) -> String {
        match self {
            Topic::Transactions => format!("hutong/{chain_id}/tx/1"),
            Topic::Consensus => format!("hutong/{chain_id}/consensus/1"),
        }
    }
}

/// Names one inbound request until the node answers it with [`NetworkHandle::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request #{}", self.0)
    }
}

/// What the network tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A gossip payload, delivered once per distinct content (duplicates are dropped by
    /// content hash). `from` is the author, whose libp2p signature over the message was
    /// checked; the node still validates `bytes` and calls `penalise(from, ..)` if they are
    /// bad. Our own publications are never delivered back.
    Gossip {
        topic: Topic,
        from: PublicKey,
        bytes: Vec<u8>,
    },
    /// A request the node must answer with [`NetworkHandle::respond`] within the request
    /// timeout; unanswered, the requester sees a timeout.
    Request {
        from: PublicKey,
        request_id: RequestId,
        bytes: Vec<u8>,
    },
    /// The first connection to this peer opened.
    PeerConnected(PublicKey),
    /// The last connection to this peer closed.
    PeerDisconnected(PublicKey),
}

/// Why the node penalises a peer. Each reason weighs a number of points (see
/// [`Misbehaviour::points`]); at [`NetworkLimits::penalty_points_ban`] the peer is
/// disconnected and refused for [`NetworkLimits::ban_duration`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// Bytes that do not decode as the message the topic or protocol carries.
    MalformedMessage,
    /// A message that decodes but whose signature does not verify.
    InvalidSignature,
    /// A well-formed, correctly signed message that breaks a rule (a block that does not
    /// match its certificate, a response to a question not asked).
    InvalidContent,
    /// A payload over the limit of its topic or protocol (the network reports these itself).
    OversizeMessage,
    /// Gossip that libp2p itself refused (bad gossipsub signature, undecodable frame),
    /// found by the network itself in gossipsub's peer score. Bans at once, whatever the
    /// threshold: the score only gets this low after repeated refusals.
    InvalidGossip,
}

impl Misbehaviour {
    /// Points this misbehaviour weighs, with the default ban at 100: two malformed or
    /// badly signed messages, or five rule violations, within a short time.
    pub fn points(self) -> u32 {
        match self {
            Misbehaviour::MalformedMessage => 50,
            Misbehaviour::InvalidSignature => 50,
            Misbehaviour::InvalidContent => 20,
            Misbehaviour::OversizeMessage => 50,
            Misbehaviour::InvalidGossip => 100,
        }
    }
}

/// A snapshot of the network's counters, for metrics. Totals since start, except
/// `peers_connected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Peers with at least one open connection now.
    pub peers_connected: u64,
    /// Inbound connections closed because the remote key is not registered.
    pub connections_refused_not_allowed: u64,
    /// Inbound connections closed because the remote key is banned.
    pub connections_refused_banned: u64,
    /// Connections refused by the connection limits.
    pub connections_refused_limit: u64,
    /// Penalties applied (each call of `penalise`, and each fault the network saw itself).
    pub peers_penalised: u64,
    /// Peers disconnected and banned for their penalties.
    pub peers_banned: u64,
    /// Connected peers disconnected because `set_allowed` removed them.
    pub peers_disconnected_not_allowed: u64,
    /// Payloads over their limit: refused for publication, sending or responding, or
    /// received and dropped.
    pub messages_dropped_oversize: u64,
    pub gossip_published: u64,
    /// Publications refused (no subscribed peer, duplicate, queue full).
    pub gossip_publish_failed: u64,
    pub gossip_received: u64,
    pub requests_inbound: u64,
    /// Inbound requests refused because too many were pending, or that failed before the
    /// node's answer was sent.
    pub requests_inbound_failed: u64,
    pub requests_outbound: u64,
    /// Outbound requests that got no response (timeout, dial failure, closed connection, ...).
    pub requests_outbound_failed: u64,
    /// Events dropped because the node's event channel was full.
    pub events_dropped_channel_full: u64,
}

/// Counters shared between the event loop (which writes) and the handles (which read).
#[derive(Debug, Default)]
struct Counters {
    peers_connected: AtomicU64,
    connections_refused_not_allowed: AtomicU64,
    connections_refused_banned: AtomicU64,
    connections_refused_limit: AtomicU64,
    peers_penalised: AtomicU64,
    peers_banned: AtomicU64,
    peers_disconnected_not_allowed: AtomicU64,
    messages_dropped_oversize: AtomicU64,
    gossip_published: AtomicU64,
    gossip_publish_failed: AtomicU64,
    gossip_received: AtomicU64,
    requests_inbound: AtomicU64,
    requests_inbound_failed: AtomicU64,
    requests_outbound: AtomicU64,
    requests_outbound_failed: AtomicU64,
    events_dropped_channel_full: AtomicU64,
}

fn increment(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> NetworkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NetworkStats {
            peers_connected: read(&self.peers_connected),
            connections_refused_not_allowed: read(&self.connections_refused_not_allowed),
            connections_refused_banned: read(&self.connections_refused_banned),
            connections_refused_limit: read(&self.connections_refused_limit),
            peers_penalised: read(&self.peers_penalised),
            peers_banned: read(&self.peers_banned),
            peers_disconnected_not_allowed: read(&self.peers_disconnected_not_allowed),
            messages_dropped_oversize: read(&self.messages_dropped_oversize),
            gossip_published: read(&self.gossip_published),
            gossip_publish_failed: read(&self.gossip_publish_failed),
            gossip_received: read(&self.gossip_received),
            requests_inbound: read(&self.requests_inbound),
            requests_inbound_failed: read(&self.requests_inbound_failed),
            requests_outbound: read(&self.requests_outbound),
            requests_outbound_failed: read(&self.requests_outbound_failed),
            events_dropped_channel_full: read(&self.events_dropped_channel_full),
        }
    }
}

/// Everything that can go wrong in the network module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("chain id {chain_id:?} is not usable in topic names: {reason}")]
    InvalidChainId {
        chain_id: String,
        reason: &'static str,
    },
    #[error("network limits are inconsistent: {what}")]
    InvalidLimits { what: &'static str },
    #[error("public key {key_hex} is not an ed25519 curve point, so it cannot be a peer")]
    InvalidPublicKey { key_hex: String },
    #[error("the node key seed was refused as an ed25519 libp2p identity")]
    InvalidNodeKey,
    #[error("bootstrap peer {key_hex} is not in the allowed list, so it could never connect")]
    BootstrapPeerNotAllowed { key_hex: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("cannot build the libp2p swarm: {reason}")]
    Setup { reason: String },
    #[error("the network has stopped")]
    Stopped,
    #[error("payload of {size_bytes} bytes exceeds the {limit_bytes}-byte limit of {what}")]
    PayloadTooLarge {
        what: &'static str,
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("no connected peer subscribes to {topic:?} yet, so the message went nowhere")]
    NoPeersForTopic { topic: Topic },
    #[error(
        "the same payload was already published on {topic:?} recently (message ids are content hashes)"
    )]
    DuplicateMessage { topic: Topic },
    #[error("gossipsub refused to publish: {reason}")]
    PublishFailed { reason: String },
    #[error("peer {key_hex} is not in the allowed list")]
    PeerNotAllowed { key_hex: String },
    #[error("peer {key_hex} is banned for misbehaviour")]
    PeerBanned { key_hex: String },
    #[error("peer {key_hex} is not connected and no address for it is known")]
    PeerUnreachable { key_hex: String },
    #[error("{pending} outbound requests are already in flight, the most allowed")]
    TooManyPendingRequests { pending: usize },
    #[error("{request_id} is unknown: already answered, expired, or never issued")]
    UnknownRequest { request_id: RequestId },
    #[error("no response within the request timeout")]
    RequestTimeout,
    #[error("could not dial the peer to send the request")]
    DialFailed,
    #[error("the connection closed before the response arrived")]
    ConnectionClosed,
    #[error(
        "the peer closed the request without answering (it refused it, or its own answer window ran out first)"
    )]
    NoResponse,
    #[error("the peer does not speak this chain's request protocol")]
    UnsupportedProtocol,
    #[error("the request stream failed: {reason}")]
    RequestStream { reason: String },
}

/// A request to the event loop. Every command that can fail carries its reply channel.
#[derive(Debug)]
enum Command {
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Request {
        peer: PublicKey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    },
    Respond {
        request_id: RequestId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    SetAllowed {
        allowed: Vec<PublicKey>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Penalise {
        peer: PublicKey,
        reason: Misbehaviour,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PublicKey>>,
    },
    TopicPeers {
        topic: Topic,
        reply: oneshot::Sender<Vec<PublicKey>>,
    },
    ListenAddresses {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    PeerAddresses {
        peer: PublicKey,
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The node's side of the network. Cheap to clone; every clone talks to the same event
/// loop. Methods wait only for room in the command channel and for the loop's answer, which
/// the loop gives without waiting on anything else.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    local_key: PublicKey,
    request_timeout: Duration,
}

impl NetworkHandle {
    /// Our own key, as peers see it.
    pub fn local_public_key(&self) -> PublicKey {
        self.local_key
    }

    /// Counters since start, read without asking the event loop.
    pub fn stats(&self) -> NetworkStats {
        self.counters.snapshot()
    }

    /// Gossips `bytes` on `topic` to every connected peer subscribed to it. Fails if the
    /// payload is over the topic's limit, if no peer subscribes yet, or if the same bytes
    /// were published within gossipsub's duplicate window (about a minute).
    pub async fn publish(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Publish {
            topic,
            bytes,
            reply,
        })
        .await?
    }

    /// Sends `bytes` to `peer` on the request protocol and waits for its answer, at most
    /// the request timeout. A peer that is not connected is dialled if an address is known.
    pub async fn request(&self, peer: PublicKey, bytes: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request { peer, bytes, reply }).await?;
        match tokio::time::timeout(self.request_timeout + REQUEST_REPLY_SLACK, answer).await {
            Err(_elapsed) => Err(NetworkError::RequestTimeout),
            Ok(Err(_closed)) => Err(NetworkError::Stopped),
            Ok(Ok(result)) => result,
        }
    }

    /// Answers the inbound request `request_id`. Each request is answered at most once.
    pub async fn respond(&self, request_id: RequestId, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Respond {
            request_id,
            bytes,
            reply,
        })
        .await?
    }

    /// Replaces the set of registered peers. Connected peers no longer in the set are
    /// disconnected at once; newly added peers may connect from now on.
    pub async fn set_allowed(&self, allowed: Vec<PublicKey>) -> Result<(), NetworkError> {
        self.ask(|reply| Command::SetAllowed { allowed, reply })
            .await?
    }

    /// Adds `reason.points()` to the peer's penalty; at the ban threshold the peer is
    /// disconnected and refused for the ban duration.
    pub async fn penalise(
        &self,
        peer: PublicKey,
        reason: Misbehaviour,
    ) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Penalise {
            peer,
            reason,
            reply,
        })
        .await?
    }

    /// Peers with at least one open connection, in key order.
    pub async fn connected_peers(&self) -> Result<Vec<PublicKey>, NetworkError> {
        self.ask(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Connected peers known to subscribe to `topic`, in key order: those a publication
    /// reaches directly.
    pub async fn topic_peers(&self, topic: Topic) -> Result<Vec<PublicKey>, NetworkError> {
        self.ask(|reply| Command::TopicPeers { topic, reply }).await
    }

    /// The addresses we listen on, once bound (a `tcp/0` listen address appears here with
    /// its port).
    pub async fn listen_addresses(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|reply| Command::ListenAddresses { reply }).await
    }

    /// The addresses the network would dial to reach `peer` (from the bootstrap list, our
    /// own dials, and what the peer reports through identify), newest first; empty for a
    /// peer that is not registered.
    pub async fn peer_addresses(&self, peer: PublicKey) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|reply| Command::PeerAddresses { peer, reply })
            .await
    }

    /// Stops the event loop, closing every connection and listener, and returns once they
    /// are closed. Later calls on any clone fail with [`NetworkError::Stopped`].
    pub async fn shutdown(&self) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_closed| NetworkError::Stopped)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_closed| NetworkError::Stopped)
    }
}

/// Starts the network on the current tokio runtime: binds the listen addresses, dials the
/// bootstrap peers, and returns the handle and the event receiver. Fails, having started
/// nothing, if the config is unusable or a listen address cannot be bound.
pub fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    config.limits.validate()?;
    validate_chain_id(&config.chain_id)?;
    let local_key = config.node_key.public_key();
    let request_timeout = config.limits.request_timeout;
    let (command_sender, command_receiver) = mpsc::channel(config.limits.command_channel_capacity);
    let (event_sender, event_receiver) = mpsc::channel(config.limits.event_channel_capacity);
    let counters = Arc::new(Counters::default());
    let event_loop = event_loop::EventLoop::new(
        config,
        command_receiver,
        event_sender,
        Arc::clone(&counters),
    )?;
    tokio::spawn(event_loop.run());
    let handle = NetworkHandle {
        commands: command_sender,
        counters,
        local_key,
        request_timeout,
    };
    Ok((handle, event_receiver))
}

/// A chain id names topics and a stream protocol, so it must be short and free of `/` and
/// whitespace; the ledger's own bound applies.
fn validate_chain_id(chain_id: &str) -> Result<(), NetworkError> {
    let fail = |reason| {
        Err(NetworkError::InvalidChainId {
            chain_id: chain_id.to_owned(),
            reason,
        })
    };
    if chain_id.is_empty() || chain_id.len() > hutong_core::limits::CHAIN_ID_BYTES_MAX {
        return fail("it is 1 to CHAIN_ID_BYTES_MAX bytes");
    }
    let allowed =
        |character: char| character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.');
    if !chain_id.chars().all(allowed) {
        return fail("only ASCII letters, digits, '-', '_' and '.' may appear");
    }
    Ok(())
}
