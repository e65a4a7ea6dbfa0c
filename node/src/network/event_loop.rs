//! The task that owns the libp2p `Swarm`: it runs the composed behaviours, answers
//! commands, forwards events, enforces the allow list and bans, and re-dials registered
//! peers that dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hutong_core::crypto::PublicKey;
use hutong_core::hash::blake3_parts;
use libp2p::core::ConnectedPoint;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::TransportError;
use libp2p::core::transport::timeout::TransportTimeoutError;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionDenied, ListenError, NetworkBehaviour, Swarm, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, allow_block_list, connection_limits,
    gossipsub, identify, noise, ping, tcp, yamux,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::admission::{self, HandshakeRefused, SlotLimits, ip_of};
use super::codec::{BytesCodec, FrameTooLarge};
use super::identity::{keypair_of, peer_id_of, public_key_of};
use super::types::{
    Command, Counters, Misbehaviour, NetworkConfig, NetworkError, NetworkEvent, NetworkLimits,
    Refusal, RequestId, Topic, increment,
};
use crate::limits::{
    ADDRESSES_PER_PEER_MAX, CONNECTIONS_PER_PEER_MAX, GOSSIP_ENVELOPE_BYTES,
    IDLE_CONNECTION_TIMEOUT, REPEATED_LOG_INTERVAL, REPEATED_LOG_LINES_MAX,
};
use crate::repeated_log::RepeatedLog;

/// Gossipsub mesh degree. A permissioned network has a handful to a few dozen nodes, so
/// the mesh is sized for that: with 3 peers (a 4-node network) every peer is in the mesh
/// and none is missing, and the mesh stops growing at 8, past which forwarding gains
/// little but bandwidth.
const MESH_N_LOW: usize = 2;
const MESH_N: usize = 4;
const MESH_N_HIGH: usize = 8;
/// Outbound mesh peers kept at least (gossipsub requires `2 * this <= MESH_N`). Outbound
/// peers resist eclipse by inbound floods; here every peer is registered, so one suffices.
const MESH_OUTBOUND_MIN: usize = 1;
/// Heartbeats a published message stays in the cache that answers IWANT requests: 3 s at
/// the default 150 ms heartbeat, long enough for a lagging mesh peer to ask for it.
const GOSSIP_HISTORY_HEARTBEATS: usize = 20;
/// Heartbeats whose messages are advertised in IHAVE gossip.
const GOSSIP_ADVERTISED_HEARTBEATS: usize = 3;

/// Gossipsub's score weight for each message libp2p itself refused (bad signature,
/// undecodable frame, a message claiming to be ours). The penalty grows with the square of
/// the count: one refused message scores -10, two -40.
const GOSSIP_INVALID_MESSAGE_WEIGHT: f64 = -10.0;
/// Fraction of the invalid-message count kept each second.
const GOSSIP_INVALID_MESSAGE_DECAY: f64 = 0.5;
/// At or below this gossipsub score the peer is banned: two refused messages in quick
/// succession. One may be a race at a key rotation; two are not.
const GOSSIP_SCORE_BAN: f64 = -20.0;

/// How often bans expire, penalties are forgiven, gossip scores are checked and dropped
/// peers are re-dialled.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(200);
/// Domain tag of gossip message ids.
const GOSSIP_MESSAGE_ID_TAG: &[u8] = b"hutong/gossip-message-id/v1";

const _: () = assert!(MESH_OUTBOUND_MIN <= MESH_N_LOW);
const _: () = assert!(MESH_N_LOW <= MESH_N && MESH_N <= MESH_N_HIGH);
const _: () = assert!(2 * MESH_OUTBOUND_MIN <= MESH_N);
const _: () = assert!(GOSSIP_ADVERTISED_HEARTBEATS <= GOSSIP_HISTORY_HEARTBEATS);

/// The behaviours, in the order the swarm consults them: handshake slots first (ADR 0018),
/// then the allow list and the ban list, so that a refused connection never reaches the
/// protocols behind them.
#[derive(NetworkBehaviour)]
struct Behaviour {
    admission: admission::Behaviour,
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    banned: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossip: gossipsub::Behaviour,
    sync: request_response::Behaviour<BytesCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// What we know about one registered peer.
#[derive(Debug)]
struct PeerRecord {
    key: PublicKey,
    /// Where to dial it, newest first.
    addresses: VecDeque<Multiaddr>,
    /// When the re-dial loop may next dial it, if it is not connected.
    next_dial_at: Instant,
    /// The wait after the next failed dial.
    backoff: Duration,
    /// The address its last inbound connection came from.
    connected_from: Option<IpAddr>,
}

impl PeerRecord {
    fn new(key: PublicKey, now: Instant, backoff: Duration) -> Self {
        Self {
            key,
            addresses: VecDeque::new(),
            next_dial_at: now,
            backoff,
            connected_from: None,
        }
    }

    /// The IP addresses it is known at: where it is dialled and where it connected from.
    fn ip_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses
            .iter()
            .filter_map(ip_of)
            .chain(self.connected_from)
            .map(|ip| ip.to_canonical())
            .filter(|ip| !ip.is_unspecified())
    }

    fn remember(&mut self, address: Multiaddr) {
        let address = without_peer_id(address);
        if !is_tcp_address(&address) {
            return;
        }
        self.addresses.retain(|known| *known != address);
        self.addresses.push_front(address);
        self.addresses.truncate(ADDRESSES_PER_PEER_MAX);
    }
}

/// An inbound request waiting for the node's answer.
#[derive(Debug)]
struct PendingInbound {
    libp2p_id: request_response::InboundRequestId,
    channel: ResponseChannel<Vec<u8>>,
}

pub(super) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    counters: Arc<Counters>,
    limits: NetworkLimits,
    local_peer: PeerId,
    identify_protocol: String,
    topics: [(Topic, gossipsub::IdentTopic); 2],
    /// The registered peers, except ourselves.
    peers: HashMap<PeerId, PeerRecord>,
    /// Penalty points of peers not (yet) banned.
    penalties: HashMap<PeerId, u32>,
    /// Banned peers and when their ban ends.
    bans: HashMap<PeerId, Instant>,
    outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetworkError>>>,
    inbound: HashMap<RequestId, PendingInbound>,
    inbound_ids: HashMap<request_response::InboundRequestId, RequestId>,
    next_request_id: u64,
    listen_addresses: Vec<Multiaddr>,
    last_forgiveness: Instant,
    /// Limits the log lines of refused connections, which any host can cause.
    refusal_log: RepeatedLog,
}

impl EventLoop {
    pub(super) fn new(
        config: NetworkConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self, NetworkError> {
        let NetworkConfig {
            node_key,
            chain_id,
            listen,
            bootstrap,
            allowed,
            limits,
        } = config;
        let keypair = keypair_of(&node_key)?;
        let local_peer = keypair.public().to_peer_id();
        let now = Instant::now();

        let mut peers = HashMap::new();
        for key in allowed {
            let peer = peer_id_of(&key)?;
            if peer != local_peer {
                peers.insert(
                    peer,
                    PeerRecord::new(key, now, limits.redial_backoff_initial),
                );
            }
        }
        for (key, address) in bootstrap {
            let peer = peer_id_of(&key)?;
            if peer == local_peer {
                continue;
            }
            let record =
                peers
                    .get_mut(&peer)
                    .ok_or_else(|| NetworkError::BootstrapPeerNotAllowed {
                        key_hex: key.to_hex(),
                    })?;
            record.remember(address);
        }

        let topics =
            Topic::ALL.map(|topic| (topic, gossipsub::IdentTopic::new(topic.name(&chain_id))));
        let setup = |reason: String| NetworkError::Setup { reason };

        let mut gossip_config = gossipsub::ConfigBuilder::default();
        gossip_config
            .heartbeat_interval(limits.gossip_heartbeat)
            .heartbeat_initial_delay(limits.gossip_heartbeat)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .message_id_fn(message_id)
            .max_transmit_size(
                limits
                    .gossip_transactions_bytes_max
                    .max(limits.gossip_consensus_bytes_max)
                    + GOSSIP_ENVELOPE_BYTES,
            )
            .mesh_n_low(MESH_N_LOW)
            .mesh_n(MESH_N)
            .mesh_n_high(MESH_N_HIGH)
            .mesh_outbound_min(MESH_OUTBOUND_MIN)
            .history_length(GOSSIP_HISTORY_HEARTBEATS)
            .history_gossip(GOSSIP_ADVERTISED_HEARTBEATS)
            // Our own messages go to every subscribed peer at once, not only the mesh: a
            // vote reaches everyone in one hop.
            .flood_publish(true);
        for (topic, ident) in &topics {
            gossip_config.max_transmit_size_for_topic(
                limits.gossip_bytes_max(*topic) + GOSSIP_ENVELOPE_BYTES,
                ident.hash(),
            );
        }
        let gossip_config = gossip_config
            .build()
            .map_err(|error| setup(format!("gossipsub config: {error}")))?;
        let mut gossip = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(|reason| setup(format!("gossipsub: {reason}")))?;
        gossip
            .with_peer_score(
                gossip_score_params(&topics),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(|reason| setup(format!("gossipsub score: {reason}")))?;
        for (_, ident) in &topics {
            gossip
                .subscribe(ident)
                .map_err(|error| setup(format!("gossipsub subscribe: {error}")))?;
        }

        let sync_protocol = StreamProtocol::try_from_owned(format!("/hutong/{chain_id}/sync/1"))
            .map_err(|error| setup(format!("request protocol name: {error}")))?;
        let sync = request_response::Behaviour::with_codec(
            BytesCodec {
                request_bytes_max: limits.request_bytes_max,
                response_bytes_max: limits.response_bytes_max,
            },
            [(sync_protocol, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(limits.request_timeout)
                .with_max_concurrent_streams(limits.inbound_requests_pending_max),
        );

        let identify_protocol = format!("/hutong/{chain_id}/1");
        let identify = identify::Behaviour::new(
            identify::Config::new(identify_protocol.clone(), keypair.public())
                .with_agent_version(concat!("hutong/", env!("CARGO_PKG_VERSION")).to_owned()),
        );

        let mut allow_list =
            allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
        for peer in peers.keys() {
            allow_list.allow_peer(*peer);
        }
        // Pending inbound connections are bounded by `admission`, by address.
        let connection_limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(limits.connections_established_max))
                .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX)),
        );

        let behaviour = Behaviour {
            admission: admission::Behaviour::new(SlotLimits {
                pending_max: limits.connections_pending_incoming_max,
                reserved: limits.handshake_slots_reserved,
                per_address_max: limits.handshakes_per_address_max,
            }),
            allowed: allow_list,
            banned: allow_block_list::Behaviour::default(),
            limits: connection_limits,
            gossip,
            sync,
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
        };
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|error| setup(format!("transport: {error}")))?
            .with_behaviour(|_| behaviour)
            .map_err(|error| setup(format!("behaviour: {error}")))?
            .with_swarm_config(|swarm_config| {
                swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
            })
            .with_connection_timeout(limits.handshake_timeout)
            .build();
        for address in listen {
            swarm
                .listen_on(address.clone())
                .map_err(|error| NetworkError::Listen {
                    address: address.to_string(),
                    reason: error.to_string(),
                })?;
        }

        let mut event_loop = Self {
            swarm,
            commands,
            events,
            counters,
            limits,
            local_peer,
            identify_protocol,
            topics,
            peers,
            penalties: HashMap::new(),
            bans: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            inbound_ids: HashMap::new(),
            next_request_id: 0,
            listen_addresses: Vec::new(),
            last_forgiveness: now,
            refusal_log: RepeatedLog::new(REPEATED_LOG_LINES_MAX, REPEATED_LOG_INTERVAL),
        };
        event_loop.refresh_registered_addresses();
        Ok(event_loop)
    }

    /// Tells the handshake slots which addresses are registered peers': every address a
    /// registered peer is known at (ADR 0018).
    fn refresh_registered_addresses(&mut self) {
        let addresses: HashSet<IpAddr> = self
            .peers
            .values()
            .flat_map(PeerRecord::ip_addresses)
            .collect();
        self.swarm
            .behaviour_mut()
            .admission
            .set_registered(addresses);
    }

    /// Runs until a shutdown command, or until every handle is dropped.
    pub(super) async fn run(mut self) {
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        maintenance.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown_reply = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None => break None,
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                },
                _ = maintenance.tick() => self.maintain(),
            }
        };
        info!(peer = %self.local_peer, "network stopping");
        // Dropping the swarm closes its listeners and connections; pending requests see
        // their reply channels close and report `Stopped`.
        drop(self);
        if let Some(reply) = shutdown_reply {
            let _receiver_gone = reply.send(());
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.publish(topic, bytes));
            }
            Command::Request { peer, bytes, reply } => self.request(peer, bytes, reply),
            Command::Respond {
                request_id,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.respond(request_id, bytes));
            }
            Command::SetAllowed { allowed, reply } => {
                let _ = reply.send(self.set_allowed(allowed));
            }
            Command::Penalise {
                peer,
                reason,
                reply,
            } => {
                let result = peer_id_of(&peer).map(|peer| self.penalise(peer, reason));
                let _ = reply.send(result);
            }
            Command::ConnectedPeers { reply } => {
                let mut keys: Vec<PublicKey> = self
                    .swarm
                    .connected_peers()
                    .filter_map(public_key_of)
                    .collect();
                keys.sort();
                let _ = reply.send(keys);
            }
            Command::TopicPeers { topic, reply } => {
                let hash = self.ident(topic).hash();
                let mut keys: Vec<PublicKey> = self
                    .swarm
                    .behaviour()
                    .gossip
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .filter_map(|(peer, _)| public_key_of(peer))
                    .collect();
                keys.sort();
                let _ = reply.send(keys);
            }
            Command::PeerAddresses { peer, reply } => {
                let addresses = peer_id_of(&peer)
                    .ok()
                    .and_then(|peer| self.peers.get(&peer))
                    .map(|record| record.addresses.iter().cloned().collect())
                    .unwrap_or_default();
                let _ = reply.send(addresses);
            }
            Command::ListenAddresses { reply } => {
                let _ = reply.send(self.listen_addresses.clone());
            }
            Command::Shutdown { reply } => {
                // `run` handles shutdown before dispatching here; answering keeps the
                // caller from waiting forever should that ever change.
                debug_assert!(false, "shutdown is handled by the run loop");
                let _ = reply.send(());
            }
        }
    }

    fn ident(&self, topic: Topic) -> &gossipsub::IdentTopic {
        let [transactions, consensus] = &self.topics;
        match topic {
            Topic::Transactions => &transactions.1,
            Topic::Consensus => &consensus.1,
        }
    }

    fn topic_of(&self, hash: &gossipsub::TopicHash) -> Option<Topic> {
        self.topics
            .iter()
            .find(|(_, ident)| ident.hash() == *hash)
            .map(|(topic, _)| *topic)
    }

    fn publish(&mut self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        let limit_bytes = self.limits.gossip_bytes_max(topic);
        if bytes.len() > limit_bytes {
            increment(&self.counters.messages_dropped_oversize);
            increment(&self.counters.gossip_publish_failed);
            return Err(NetworkError::PayloadTooLarge {
                what: "a gossip payload on this topic",
                size_bytes: bytes.len(),
                limit_bytes,
            });
        }
        let ident = self.ident(topic).clone();
        let size_bytes = bytes.len();
        let result = self.swarm.behaviour_mut().gossip.publish(ident, bytes);
        match result {
            Ok(_message_id) => {
                increment(&self.counters.gossip_published);
                Ok(())
            }
            Err(error) => {
                increment(&self.counters.gossip_publish_failed);
                Err(match error {
                    gossipsub::PublishError::NoPeersSubscribedToTopic => {
                        NetworkError::NoPeersForTopic { topic }
                    }
                    gossipsub::PublishError::Duplicate => NetworkError::DuplicateMessage { topic },
                    gossipsub::PublishError::MessageTooLarge => NetworkError::PayloadTooLarge {
                        what: "a gossipsub frame on this topic",
                        size_bytes,
                        limit_bytes,
                    },
                    other => NetworkError::PublishFailed {
                        reason: other.to_string(),
                    },
                })
            }
        }
    }

    fn request(
        &mut self,
        peer: PublicKey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    ) {
        increment(&self.counters.requests_outbound);
        match self.start_request(peer, bytes) {
            Ok(request_id) => {
                self.outbound.insert(request_id, reply);
            }
            Err(error) => {
                increment(&self.counters.requests_outbound_failed);
                let _ = reply.send(Err(error));
            }
        }
    }

    fn start_request(
        &mut self,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<OutboundRequestId, NetworkError> {
        let peer_id = peer_id_of(&peer)?;
        let Some(record) = self.peers.get(&peer_id) else {
            return Err(NetworkError::PeerNotAllowed {
                key_hex: peer.to_hex(),
            });
        };
        if self.bans.contains_key(&peer_id) {
            return Err(NetworkError::PeerBanned {
                key_hex: peer.to_hex(),
            });
        }
        if bytes.len() > self.limits.request_bytes_max {
            increment(&self.counters.messages_dropped_oversize);
            return Err(NetworkError::PayloadTooLarge {
                what: "a request",
                size_bytes: bytes.len(),
                limit_bytes: self.limits.request_bytes_max,
            });
        }
        if self.outbound.len() >= self.limits.outbound_requests_pending_max {
            return Err(NetworkError::TooManyPendingRequests {
                pending: self.outbound.len(),
            });
        }
        let addresses = if self.swarm.is_connected(&peer_id) {
            Vec::new()
        } else if record.addresses.is_empty() {
            return Err(NetworkError::PeerUnreachable {
                key_hex: peer.to_hex(),
            });
        } else {
            record.addresses.iter().cloned().collect()
        };
        Ok(self
            .swarm
            .behaviour_mut()
            .sync
            .send_request_with_addresses(&peer_id, bytes, addresses))
    }

    fn respond(&mut self, request_id: RequestId, bytes: Vec<u8>) -> Result<(), NetworkError> {
        let Some(pending) = self.inbound.remove(&request_id) else {
            return Err(NetworkError::UnknownRequest { request_id });
        };
        if bytes.len() > self.limits.response_bytes_max {
            increment(&self.counters.messages_dropped_oversize);
            let size_bytes = bytes.len();
            // Still answerable: the node may send something smaller.
            self.inbound.insert(request_id, pending);
            return Err(NetworkError::PayloadTooLarge {
                what: "a response",
                size_bytes,
                limit_bytes: self.limits.response_bytes_max,
            });
        }
        self.inbound_ids.remove(&pending.libp2p_id);
        self.swarm
            .behaviour_mut()
            .sync
            .send_response(pending.channel, bytes)
            .map_err(|_unsent| NetworkError::ConnectionClosed)
    }

    fn set_allowed(&mut self, allowed: Vec<PublicKey>) -> Result<(), NetworkError> {
        // Map every key first, so that a bad key changes nothing.
        let mut wanted = HashMap::new();
        for key in allowed {
            let peer = peer_id_of(&key)?;
            if peer != self.local_peer {
                wanted.insert(peer, key);
            }
        }
        let removed: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|peer| !wanted.contains_key(peer))
            .copied()
            .collect();
        for peer in removed {
            self.peers.remove(&peer);
            // Closes its connections; their `ConnectionClosed` events report the peer gone.
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            if self.swarm.is_connected(&peer) {
                increment(&self.counters.peers_disconnected_not_allowed);
                info!(%peer, "disconnecting a peer that is no longer registered");
            }
        }
        let now = Instant::now();
        for (peer, key) in wanted {
            if !self.peers.contains_key(&peer) {
                self.swarm.behaviour_mut().allowed.allow_peer(peer);
                self.peers.insert(
                    peer,
                    PeerRecord::new(key, now, self.limits.redial_backoff_initial),
                );
            }
        }
        self.refresh_registered_addresses();
        Ok(())
    }

    fn penalise(&mut self, peer: PeerId, reason: Misbehaviour) {
        if peer == self.local_peer || self.bans.contains_key(&peer) {
            return;
        }
        increment(&self.counters.peers_penalised);
        let points = self.penalties.entry(peer).or_insert(0);
        *points = points.saturating_add(reason.points());
        let points = *points;
        info!(%peer, ?reason, points, "peer penalised");
        if points >= self.limits.penalty_points_ban || reason == Misbehaviour::InvalidGossip {
            self.ban(peer);
        }
    }

    fn ban(&mut self, peer: PeerId) {
        self.penalties.remove(&peer);
        self.bans
            .insert(peer, Instant::now() + self.limits.ban_duration);
        // Closes its connections and refuses new ones until the ban is lifted.
        self.swarm.behaviour_mut().banned.block_peer(peer);
        increment(&self.counters.peers_banned);
        warn!(%peer, ban = ?self.limits.ban_duration, "peer banned for misbehaviour");
    }

    /// Delivers an event to the node without waiting: if the channel is full the event is
    /// dropped and counted. Returns whether it was delivered.
    fn emit(&mut self, event: NetworkEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                increment(&self.counters.events_dropped_channel_full);
                debug!("event channel full, event dropped");
                false
            }
            // The node stopped listening; it will shut us down or drop its handles.
            Err(TrySendError::Closed(_)) => false,
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(record) = self.peers.get_mut(&peer_id) {
                    record.backoff = self.limits.redial_backoff_initial;
                    match endpoint {
                        ConnectedPoint::Dialer { address, .. } => record.remember(address),
                        ConnectedPoint::Listener { send_back_addr, .. } => {
                            record.connected_from = ip_of(&send_back_addr);
                        }
                    }
                    self.refresh_registered_addresses();
                }
                self.update_peers_connected();
                if num_established.get() == 1
                    && let Some(key) = public_key_of(&peer_id)
                {
                    debug!(peer = %peer_id, "peer connected");
                    self.emit(NetworkEvent::PeerConnected(key));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                self.update_peers_connected();
                if num_established == 0 {
                    if let Some(record) = self.peers.get_mut(&peer_id) {
                        record.next_dial_at = Instant::now() + record.backoff;
                    }
                    debug!(peer = %peer_id, ?cause, "peer disconnected");
                    if let Some(key) = public_key_of(&peer_id) {
                        self.emit(NetworkEvent::PeerDisconnected(key));
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                peer_id,
                send_back_addr,
                ..
            } => self.count_refusal(&error, peer_id, &send_back_addr),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addresses.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addresses.retain(|known| *known != address);
            }
            _ => {}
        }
    }

    fn update_peers_connected(&self) {
        let peers = self.swarm.network_info().num_peers();
        self.counters.peers_connected.store(
            u64::try_from(peers).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Counts an inbound connection that did not become a peer's, and logs it within the
    /// limits of `refusal_log`: any host can cause these, as often as it likes.
    fn count_refusal(&mut self, error: &ListenError, peer: Option<PeerId>, from: &Multiaddr) {
        let Some(reason) = refusal_of(error) else {
            return;
        };
        self.counters.count_refusal(reason);
        if !self
            .refusal_log
            .admit(reason.label(), Instant::now().into_std())
        {
            return;
        }
        let label = reason.label();
        match reason {
            // Worth an operator's attention: someone holds the node's handshake slots, or a
            // key we do not know is trying (a registry out of step, or a stranger).
            Refusal::PendingLimit | Refusal::EstablishedLimit | Refusal::UnknownPeer => {
                warn!(reason = label, ?peer, %from, %error, "refused a connection");
            }
            _ => info!(reason = label, ?peer, %from, %error, "refused a connection"),
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Admission(never)
            | BehaviourEvent::Allowed(never)
            | BehaviourEvent::Banned(never) => match never {},
            BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Gossip(event) => self.on_gossip_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Identify(event) => self.on_identify_event(event),
            BehaviourEvent::Ping(_) => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message { message, .. } = event else {
            return;
        };
        let Some(topic) = self.topic_of(&message.topic) else {
            return;
        };
        // Strict validation refuses unsigned messages, so every delivered one has an author.
        let Some(author) = message.source else {
            return;
        };
        let Some(from) = public_key_of(&author) else {
            return;
        };
        if message.data.len() > self.limits.gossip_bytes_max(topic) {
            // Under the frame limit (which has room for the envelope) but over the payload
            // limit: the author built it, so the author answers for it.
            increment(&self.counters.messages_dropped_oversize);
            self.penalise(author, Misbehaviour::OversizeMessage);
            return;
        }
        increment(&self.counters.gossip_received);
        self.emit(NetworkEvent::Gossip {
            topic,
            from,
            bytes: message.data,
        });
    }

    fn on_sync_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.on_inbound_request(peer, request_id, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                increment(&self.counters.requests_outbound_failed);
                if let OutboundFailure::Io(io_error) = &error
                    && FrameTooLarge::find(io_error).is_some()
                {
                    // Our requests are checked before sending, so the response was too large.
                    increment(&self.counters.messages_dropped_oversize);
                    self.penalise(peer, Misbehaviour::OversizeMessage);
                }
                debug!(%peer, %error, "request failed");
                if let Some(reply) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(outbound_error(error)));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                increment(&self.counters.requests_inbound_failed);
                if let request_response::InboundFailure::Io(io_error) = &error
                    && FrameTooLarge::find(io_error).is_some()
                {
                    // Our responses are checked before sending, so the request was too large.
                    increment(&self.counters.messages_dropped_oversize);
                    self.penalise(peer, Misbehaviour::OversizeMessage);
                }
                debug!(%peer, %error, "inbound request failed");
                if let Some(request_id) = self.inbound_ids.remove(&request_id) {
                    self.inbound.remove(&request_id);
                }
            }
            request_response::Event::ResponseSent { request_id, .. } => {
                self.inbound_ids.remove(&request_id);
            }
        }
    }

    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        libp2p_id: request_response::InboundRequestId,
        bytes: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        increment(&self.counters.requests_inbound);
        let Some(from) = public_key_of(&peer) else {
            return;
        };
        if self.inbound.len() >= self.limits.inbound_requests_pending_max {
            // Dropping the channel tells the requester at once, rather than at its timeout.
            increment(&self.counters.requests_inbound_failed);
            debug!(%peer, "too many requests pending, request refused");
            return;
        }
        let request_id = RequestId(self.next_request_id);
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.inbound
            .insert(request_id, PendingInbound { libp2p_id, channel });
        self.inbound_ids.insert(libp2p_id, request_id);
        let delivered = self.emit(NetworkEvent::Request {
            from,
            request_id,
            bytes,
        });
        if !delivered {
            self.inbound.remove(&request_id);
            self.inbound_ids.remove(&libp2p_id);
            increment(&self.counters.requests_inbound_failed);
        }
    }

    fn on_identify_event(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != self.identify_protocol {
            warn!(
                peer = %peer_id,
                theirs = %info.protocol_version,
                ours = %self.identify_protocol,
                "a registered peer runs another chain or protocol version"
            );
        }
        if let Some(record) = self.peers.get_mut(&peer_id) {
            for address in info.listen_addrs.into_iter().take(ADDRESSES_PER_PEER_MAX) {
                record.remember(address);
            }
        }
    }

    /// The periodic chores: lift expired bans, forgive old penalties, ban peers whose
    /// gossip libp2p refused, and re-dial registered peers that are not connected.
    fn maintain(&mut self) {
        let now = Instant::now();

        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.bans.remove(&peer);
            self.swarm.behaviour_mut().banned.unblock_peer(peer);
            if let Some(record) = self.peers.get_mut(&peer) {
                record.next_dial_at = now;
                record.backoff = self.limits.redial_backoff_initial;
            }
            info!(%peer, "ban lifted");
        }

        let seconds = now
            .saturating_duration_since(self.last_forgiveness)
            .as_secs();
        if seconds > 0 {
            let forgiven = u32::try_from(seconds)
                .unwrap_or(u32::MAX)
                .saturating_mul(self.limits.penalty_points_forgiven_per_second);
            self.penalties.retain(|_, points| {
                *points = points.saturating_sub(forgiven);
                *points > 0
            });
            self.last_forgiveness += Duration::from_secs(seconds);
        }

        let gossip = &self.swarm.behaviour().gossip;
        let offenders: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|peer| {
                gossip
                    .peer_score(peer)
                    .is_some_and(|score| score <= GOSSIP_SCORE_BAN)
            })
            .copied()
            .collect();
        for peer in offenders {
            self.penalise(peer, Misbehaviour::InvalidGossip);
        }

        for (reason, suppressed) in self.refusal_log.take_summaries(now.into_std()) {
            warn!(
                reason,
                suppressed,
                interval = ?REPEATED_LOG_INTERVAL,
                "suppressed {suppressed} similar lines of refused connections"
            );
        }

        for (peer, record) in &mut self.peers {
            if now < record.next_dial_at
                || record.addresses.is_empty()
                || self.bans.contains_key(peer)
                || self.swarm.is_connected(peer)
            {
                continue;
            }
            let options = DialOpts::peer_id(*peer)
                .addresses(record.addresses.iter().cloned().collect())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(options) {
                debug!(%peer, %error, "dial not started");
            }
            record.next_dial_at = now + record.backoff;
            record.backoff = (record.backoff * 2).min(self.limits.redial_backoff_max);
            debug!(%peer, key = %record.key.to_hex(), "dialling a registered peer");
        }
    }
}

/// Gossipsub scoring, used for one thing only: counting the messages libp2p itself refused
/// (bad signatures, undecodable frames). Every other score component is off: mesh delivery
/// rates would punish a quiet consensus topic, and IP colocation would punish a testnet
/// whose nodes share one host.
fn gossip_score_params(topics: &[(Topic, gossipsub::IdentTopic); 2]) -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams {
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        slow_peer_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    for (_, ident) in topics {
        params.topics.insert(
            ident.hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.0,
                first_message_deliveries_weight: 0.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: GOSSIP_INVALID_MESSAGE_WEIGHT,
                invalid_message_deliveries_decay: GOSSIP_INVALID_MESSAGE_DECAY,
                ..gossipsub::TopicScoreParams::default()
            },
        );
    }
    params
}

/// A message's id is the hash of its topic and content, so the same payload published
/// twice (by one node or two) is delivered once.
fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let topic = message.topic.as_str().as_bytes();
    let topic_length = u64::try_from(topic.len()).unwrap_or(u64::MAX).to_be_bytes();
    let digest = blake3_parts(&[GOSSIP_MESSAGE_ID_TAG, &topic_length, topic, &message.data]);
    gossipsub::MessageId::new(digest.as_bytes())
}

/// Why an inbound connection did not become a peer's, or `None` when it was not refused (it
/// was aborted because we stopped, say).
fn refusal_of(error: &ListenError) -> Option<Refusal> {
    Some(match error {
        ListenError::Denied { cause } => denial_of(cause),
        ListenError::Transport(TransportError::Other(io_error)) if is_timeout(io_error) => {
            Refusal::HandshakeTimeout
        }
        ListenError::Transport(_) | ListenError::WrongPeerId { .. } => Refusal::ProtocolError,
        // Our own key on the other end: a node configured with its own address as a peer.
        ListenError::LocalPeerId { .. } => Refusal::ProtocolError,
        ListenError::Aborted => return None,
    })
}

/// Whether a failed handshake ran out of time: the swarm's connection timeout fired. Its error
/// is libp2p's `TransportTimeoutError::Timeout` over the transport's own error type, which the
/// builder does not name, so it is recognised by the variant's text (which does not depend on
/// that type).
fn is_timeout(error: &std::io::Error) -> bool {
    let timeout = TransportTimeoutError::<std::io::Error>::Timeout.to_string();
    error
        .get_ref()
        .is_some_and(|inner| inner.to_string() == timeout)
}

fn denial_of(cause: &ConnectionDenied) -> Refusal {
    if let Some(refused) = cause.downcast_ref::<HandshakeRefused>() {
        match refused {
            HandshakeRefused::PerAddress { .. } => Refusal::PerAddressLimit,
            HandshakeRefused::Slots { .. } => Refusal::PendingLimit,
        }
    } else if cause
        .downcast_ref::<allow_block_list::NotAllowed>()
        .is_some()
    {
        Refusal::UnknownPeer
    } else if cause.downcast_ref::<allow_block_list::Blocked>().is_some() {
        Refusal::Banned
    } else {
        // The only other behaviour that denies connections.
        debug_assert!(
            cause
                .downcast_ref::<connection_limits::Exceeded>()
                .is_some()
        );
        Refusal::EstablishedLimit
    }
}

fn outbound_error(error: OutboundFailure) -> NetworkError {
    match error {
        OutboundFailure::DialFailure => NetworkError::DialFailed,
        OutboundFailure::Timeout => NetworkError::RequestTimeout,
        OutboundFailure::ConnectionClosed => NetworkError::ConnectionClosed,
        OutboundFailure::UnsupportedProtocols => NetworkError::UnsupportedProtocol,
        // The responder closes the stream unanswered when it refuses the request or its
        // own answer window (the same timeout, started a little later) runs out first.
        OutboundFailure::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            NetworkError::NoResponse
        }
        OutboundFailure::Io(error) => NetworkError::RequestStream {
            reason: error.to_string(),
        },
    }
}

/// The address without a trailing `/p2p/<peer id>`: the peer id is given separately when
/// dialling, and identify reports addresses without it.
fn without_peer_id(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

/// Whether the address is one our transport can dial: an IP address and a TCP port.
fn is_tcp_address(address: &Multiaddr) -> bool {
    let mut protocols = address.iter();
    matches!(
        (protocols.next(), protocols.next(), protocols.next()),
        (
            Some(Protocol::Ip4(_) | Protocol::Ip6(_)),
            Some(Protocol::Tcp(_)),
            None
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tcp_addresses_are_remembered() {
        let key = hutong_core::crypto::SecretKey::from_seed([1; 32]).public_key();
        let peer = peer_id_of(&key).unwrap();
        let mut record = PeerRecord::new(key, Instant::now(), Duration::from_secs(1));
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        record.remember(tcp.clone().with(Protocol::P2p(peer)));
        record.remember("/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap());
        record.remember(tcp.clone());
        assert_eq!(record.addresses, VecDeque::from([tcp]));
    }

    #[test]
    fn remembered_addresses_are_bounded_and_newest_first() {
        let key = hutong_core::crypto::SecretKey::from_seed([1; 32]).public_key();
        let mut record = PeerRecord::new(key, Instant::now(), Duration::from_secs(1));
        for port in 0..20u16 {
            record.remember(format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap());
        }
        assert_eq!(record.addresses.len(), ADDRESSES_PER_PEER_MAX);
        assert_eq!(
            record.addresses.front(),
            Some(&"/ip4/127.0.0.1/tcp/19".parse().unwrap())
        );
    }
}
