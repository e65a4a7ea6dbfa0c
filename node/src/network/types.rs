//! The network's vocabulary, shared by the handle (`mod.rs`) and the event loop
//! (`event_loop.rs`): its limits and configuration, topics, request ids, the events it
//! reports, the misbehaviours it penalises, its counters and errors, and the commands the
//! handle sends the event loop.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hutong_core::crypto::{PublicKey, SecretKey};
use libp2p::Multiaddr;
use tokio::sync::oneshot;

use crate::limits::{
    HANDSHAKE_SLOTS_RESERVED, HANDSHAKE_TIMEOUT, HANDSHAKES_PENDING_MAX, HANDSHAKES_PER_ADDRESS_MAX,
};

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
    /// Of those, the slots only connections from a registered peer's address may take.
    pub handshake_slots_reserved: u32,
    /// Handshakes one address that is not a registered peer's may hold at once.
    pub handshakes_per_address_max: u32,
    /// How long a connection may take to be authenticated and multiplexed, inbound or
    /// outbound, before it is closed.
    pub handshake_timeout: Duration,
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
            connections_pending_incoming_max: HANDSHAKES_PENDING_MAX,
            handshake_slots_reserved: HANDSHAKE_SLOTS_RESERVED,
            handshakes_per_address_max: HANDSHAKES_PER_ADDRESS_MAX,
            handshake_timeout: HANDSHAKE_TIMEOUT,
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
        if self.handshake_slots_reserved >= self.connections_pending_incoming_max
            || self.handshakes_per_address_max == 0
            || self.handshakes_per_address_max
                > self.connections_pending_incoming_max - self.handshake_slots_reserved
        {
            return fail(
                "handshake_slots_reserved < connections_pending_incoming_max, and \
                 1 <= handshakes_per_address_max <= the slots left to unregistered addresses",
            );
        }
        if self.handshake_timeout.is_zero() {
            return fail("the handshake timeout is not zero");
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

    pub(super) fn gossip_bytes_max(&self, topic: Topic) -> usize {
        match topic {
            Topic::Transactions => self.gossip_transactions_bytes_max,
            Topic::Consensus => self.gossip_consensus_bytes_max,
        }
    }
}

/// What [`spawn`](super::spawn) needs to start the network.
#[derive(Debug)]
pub struct NetworkConfig {
    /// The node key; its seed is the libp2p identity.
    pub node_key: SecretKey,
    /// Names the gossip topics and the request protocol, so that two chains never mix.
    pub chain_id: String,
    /// Addresses to listen on, such as `/ip4/0.0.0.0/tcp/26656`; `tcp/0` takes a free port,
    /// which [`NetworkHandle::listen_addresses`](super::NetworkHandle::listen_addresses) reports once bound.
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

    pub(super) fn name(self, chain_id: &str) -> String {
        match self {
            Topic::Transactions => format!("hutong/{chain_id}/tx/1"),
            Topic::Consensus => format!("hutong/{chain_id}/consensus/1"),
        }
    }
}

/// Names one inbound request until the node answers it with [`NetworkHandle::respond`](super::NetworkHandle::respond).
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
    /// A request the node must answer with [`NetworkHandle::respond`](super::NetworkHandle::respond) within the request
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

/// Why an inbound connection was refused, or failed, before it became a registered peer's
/// connection. Each is counted (see [`NetworkStats::connections_refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// The handshake failed: bytes that are not Noise or Yamux, a closed socket, a wrong key.
    ProtocolError,
    /// The handshake did not finish within `handshake_timeout` (an idle socket, say).
    HandshakeTimeout,
    /// Every handshake slot open to the connection's address was taken.
    PendingLimit,
    /// The connection's address already held `handshakes_per_address_max` handshakes.
    PerAddressLimit,
    /// The connection limits of established connections (in total, per peer) were reached.
    EstablishedLimit,
    /// The handshake proved a key that is not registered.
    UnknownPeer,
    /// The handshake proved a key that is banned for misbehaviour.
    Banned,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::ProtocolError,
        Refusal::HandshakeTimeout,
        Refusal::PendingLimit,
        Refusal::PerAddressLimit,
        Refusal::EstablishedLimit,
        Refusal::UnknownPeer,
        Refusal::Banned,
    ];

    /// The reason's label in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ProtocolError => "protocol_error",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::PendingLimit => "pending_limit",
            Refusal::PerAddressLimit => "per_address_limit",
            Refusal::EstablishedLimit => "established_limit",
            Refusal::UnknownPeer => "unknown_peer",
            Refusal::Banned => "banned",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Refused connections since start, by [`Refusal`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusalCounts([u64; Refusal::ALL.len()]);

impl RefusalCounts {
    /// Connections refused for `reason`.
    pub fn get(&self, reason: Refusal) -> u64 {
        self.0[reason.index()]
    }

    /// Each reason with its count, in the order of [`Refusal::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL
            .into_iter()
            .map(|reason| (reason, self.get(reason)))
    }
}

/// A snapshot of the network's counters, for metrics. Totals since start, except
/// `peers_connected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Peers with at least one open connection now.
    pub peers_connected: u64,
    /// Inbound connections refused or failed before they became a peer's, by reason.
    pub connections_refused: RefusalCounts,
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
pub(super) struct Counters {
    pub(super) peers_connected: AtomicU64,
    pub(super) connections_refused: [AtomicU64; Refusal::ALL.len()],
    pub(super) peers_penalised: AtomicU64,
    pub(super) peers_banned: AtomicU64,
    pub(super) peers_disconnected_not_allowed: AtomicU64,
    pub(super) messages_dropped_oversize: AtomicU64,
    pub(super) gossip_published: AtomicU64,
    pub(super) gossip_publish_failed: AtomicU64,
    pub(super) gossip_received: AtomicU64,
    pub(super) requests_inbound: AtomicU64,
    pub(super) requests_inbound_failed: AtomicU64,
    pub(super) requests_outbound: AtomicU64,
    pub(super) requests_outbound_failed: AtomicU64,
    pub(super) events_dropped_channel_full: AtomicU64,
}

pub(super) fn increment(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn count_refusal(&self, reason: Refusal) {
        increment(&self.connections_refused[reason.index()]);
    }
}

impl Counters {
    pub(super) fn snapshot(&self) -> NetworkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NetworkStats {
            peers_connected: read(&self.peers_connected),
            connections_refused: RefusalCounts(self.connections_refused.each_ref().map(read)),
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
pub(super) enum Command {
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
