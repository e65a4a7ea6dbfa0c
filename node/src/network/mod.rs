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

mod admission;
mod codec;
mod event_loop;
mod identity;
#[cfg(test)]
mod tests;
mod types;

use std::sync::Arc;
use std::time::Duration;

use crate::limits::REQUEST_REPLY_SLACK;
use hutong_core::crypto::PublicKey;
use tokio::sync::{mpsc, oneshot};

pub use libp2p::Multiaddr;
// The type of `NetworkConfig::limits`: part of the module's interface, though the node itself
// runs the defaults (its tests shorten the timers).
#[allow(unused_imports)]
pub use types::NetworkLimits;
use types::{Command, Counters};
pub use types::{
    Misbehaviour, NetworkConfig, NetworkError, NetworkEvent, NetworkStats, Refusal, RequestId,
    Topic,
};

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
