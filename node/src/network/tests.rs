//! Loopback tests of whole nodes: real TCP on 127.0.0.1, ports chosen by the OS, every test
//! bounded by a deadline.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use hutong_core::crypto::{PublicKey, SecretKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{SwarmBuilder, gossipsub, noise, tcp, yamux};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use super::*;

const CHAIN: &str = "hutong-test";
/// Every test finishes well within this, or fails.
const TEST_DEADLINE: Duration = Duration::from_secs(15);
/// How long a test waits for one expected thing to happen.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens for something that must not happen.
const QUIET_WINDOW: Duration = Duration::from_millis(600);

fn limits() -> NetworkLimits {
    NetworkLimits {
        request_timeout: Duration::from_secs(1),
        gossip_heartbeat: Duration::from_millis(100),
        redial_backoff_initial: Duration::from_millis(100),
        redial_backoff_max: Duration::from_millis(400),
        request_bytes_max: 1024,
        response_bytes_max: 4096,
        ..NetworkLimits::default()
    }
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn public(seed: u8) -> PublicKey {
    secret(seed).public_key()
}

async fn bounded<F: Future>(test: F) -> F::Output {
    timeout(TEST_DEADLINE, test)
        .await
        .expect("the test did not finish within its deadline")
}

/// Polls `condition` until it holds; panics with `what` after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug)]
struct TestNode {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    key: PublicKey,
    address: Multiaddr,
}

impl TestNode {
    async fn start(
        seed: u8,
        allowed: &[u8],
        bootstrap: &[(PublicKey, Multiaddr)],
        port: u16,
    ) -> Self {
        Self::start_with_limits(seed, allowed, bootstrap, port, limits()).await
    }

    async fn start_with_limits(
        seed: u8,
        allowed: &[u8],
        bootstrap: &[(PublicKey, Multiaddr)],
        port: u16,
        limits: NetworkLimits,
    ) -> Self {
        let mut config = NetworkConfig::new(secret(seed), CHAIN);
        config.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
        config.allowed = allowed.iter().map(|seed| public(*seed)).collect();
        config.bootstrap = bootstrap.to_vec();
        config.limits = limits;
        let (handle, events) = spawn(config).unwrap();
        let deadline = Instant::now() + WAIT;
        let address = loop {
            if let Some(address) = handle.listen_addresses().await.unwrap().first() {
                break address.clone();
            }
            assert!(
                Instant::now() < deadline,
                "node {seed} never bound its port"
            );
            sleep(Duration::from_millis(10)).await;
        };
        Self {
            handle,
            events,
            key: public(seed),
            address,
        }
    }

    fn port(&self) -> u16 {
        self.address
            .iter()
            .find_map(|protocol| match protocol {
                libp2p::core::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap()
    }

    async fn wait_connected(&self, peers: &[PublicKey]) {
        eventually("the expected peers are connected", || async {
            let connected = self.handle.connected_peers().await.unwrap();
            peers.iter().all(|peer| connected.contains(peer))
        })
        .await;
    }

    async fn wait_topic_peers(&self, topic: Topic, count: usize) {
        eventually("enough peers subscribe to the topic", || async {
            self.handle.topic_peers(topic).await.unwrap().len() >= count
        })
        .await;
    }

    /// Waits for the first event that `wanted` accepts, discarding the others.
    async fn wait_event(&mut self, what: &str, wanted: impl Fn(&NetworkEvent) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match timeout(remaining, self.events.recv()).await {
                Ok(Some(event)) if wanted(&event) => return,
                Ok(Some(_other)) => {}
                Ok(None) => panic!("event channel closed while waiting for {what}"),
                Err(_) => panic!("gave up waiting for {what}"),
            }
        }
    }

    /// Gossip events until `count` arrived, then for a quiet window more, so that a
    /// duplicate would be seen.
    async fn gossip_received(&mut self, count: usize) -> Vec<(Topic, PublicKey, Vec<u8>)> {
        let mut received = Vec::new();
        let deadline = Instant::now() + WAIT;
        let mut quiet_until = None;
        loop {
            if received.len() >= count && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + QUIET_WINDOW);
            }
            let until = quiet_until.unwrap_or(deadline);
            match timeout(
                until.saturating_duration_since(Instant::now()),
                self.events.recv(),
            )
            .await
            {
                Ok(Some(NetworkEvent::Gossip { topic, from, bytes })) => {
                    received.push((topic, from, bytes))
                }
                Ok(Some(_other)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        received.sort();
        received
    }
}

/// Three registered nodes 1, 2 and 3, fully connected: 2 bootstraps from 1, 3 from 1 and 2.
async fn three_nodes() -> [TestNode; 3] {
    let registered = [1, 2, 3];
    let first = TestNode::start(1, &registered, &[], 0).await;
    let second = TestNode::start(2, &registered, &[(first.key, first.address.clone())], 0).await;
    let third = TestNode::start(
        3,
        &registered,
        &[
            (first.key, first.address.clone()),
            (second.key, second.address.clone()),
        ],
        0,
    )
    .await;
    first.wait_connected(&[second.key, third.key]).await;
    second.wait_connected(&[first.key, third.key]).await;
    third.wait_connected(&[first.key, second.key]).await;
    [first, second, third]
}

#[tokio::test]
async fn gossip_on_each_topic_reaches_every_other_node_exactly_once() {
    bounded(async {
        let [mut first, mut second, mut third] = three_nodes().await;
        for topic in Topic::ALL {
            first.wait_topic_peers(topic, 2).await;
        }
        first
            .handle
            .publish(Topic::Transactions, b"batch of transactions".to_vec())
            .await
            .unwrap();
        first
            .handle
            .publish(Topic::Consensus, b"a precommit".to_vec())
            .await
            .unwrap();

        let mut expected = vec![
            (
                Topic::Transactions,
                first.key,
                b"batch of transactions".to_vec(),
            ),
            (Topic::Consensus, first.key, b"a precommit".to_vec()),
        ];
        expected.sort();
        assert_eq!(second.gossip_received(2).await, expected);
        assert_eq!(third.gossip_received(2).await, expected);
        assert_eq!(
            first.gossip_received(0).await,
            vec![],
            "own gossip came back"
        );

        // Ids are content hashes: the same bytes again are refused, not sent twice.
        assert_eq!(
            first
                .handle
                .publish(Topic::Consensus, b"a precommit".to_vec())
                .await,
            Err(NetworkError::DuplicateMessage {
                topic: Topic::Consensus
            })
        );
        let oversize = vec![0; limits().gossip_transactions_bytes_max + 1];
        assert!(matches!(
            first.handle.publish(Topic::Transactions, oversize).await,
            Err(NetworkError::PayloadTooLarge { .. })
        ));

        let publisher = first.handle.stats();
        assert_eq!(publisher.gossip_published, 2);
        assert_eq!(publisher.gossip_publish_failed, 2);
        assert_eq!(publisher.messages_dropped_oversize, 1);
        assert_eq!(publisher.gossip_received, 0);
        assert_eq!(publisher.peers_connected, 2);
        assert_eq!(second.handle.stats().gossip_received, 2);
        assert_eq!(third.handle.stats().gossip_received, 2);
    })
    .await
}

/// Four validators, the smallest network that tolerates a fault: each hears every other
/// one's vote once, over a mesh of three peers each.
#[tokio::test]
async fn four_validators_form_a_full_mesh_and_hear_every_vote() {
    bounded(async {
        let registered = [1, 2, 3, 4];
        let mut nodes: Vec<TestNode> = Vec::new();
        for seed in registered {
            let bootstrap: Vec<(PublicKey, Multiaddr)> = nodes
                .iter()
                .map(|node| (node.key, node.address.clone()))
                .collect();
            nodes.push(TestNode::start(seed, &registered, &bootstrap, 0).await);
        }
        let keys: Vec<PublicKey> = nodes.iter().map(|node| node.key).collect();
        for node in &nodes {
            let others: Vec<PublicKey> = keys
                .iter()
                .filter(|key| **key != node.key)
                .copied()
                .collect();
            node.wait_connected(&others).await;
            node.wait_topic_peers(Topic::Consensus, 3).await;
        }
        for node in &nodes {
            let vote = format!("prevote from {}", node.key.to_hex()).into_bytes();
            node.handle.publish(Topic::Consensus, vote).await.unwrap();
        }
        for node in &mut nodes {
            let received = node.gossip_received(3).await;
            let mut expected: Vec<(Topic, PublicKey, Vec<u8>)> = keys
                .iter()
                .filter(|key| **key != node.key)
                .map(|key| {
                    let vote = format!("prevote from {}", key.to_hex()).into_bytes();
                    (Topic::Consensus, *key, vote)
                })
                .collect();
            expected.sort();
            assert_eq!(received, expected);
        }

        // Publish-to-delivery latency over loopback, a figure to read with --nocapture and
        // not a bound: timing asserts make flaky tests.
        let mut latencies = Vec::new();
        for round in 0..20u32 {
            let vote = format!("precommit {round}").into_bytes();
            let published_at = Instant::now();
            nodes[0]
                .handle
                .publish(Topic::Consensus, vote.clone())
                .await
                .unwrap();
            nodes[3]
                .wait_event(
                    "the precommit",
                    |event| matches!(event, NetworkEvent::Gossip { bytes, .. } if *bytes == vote),
                )
                .await;
            latencies.push(published_at.elapsed());
        }
        latencies.sort();
        eprintln!(
            "four validators, consensus gossip latency over loopback: median {:?}, max {:?}",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
    })
    .await
}

#[tokio::test]
async fn requests_are_answered_and_failures_are_typed_and_bounded() {
    bounded(async {
        let [first, mut second, third] = three_nodes().await;
        let responder = second.handle.clone();
        let requester_key = first.key;
        let answering = tokio::spawn(async move {
            while let Some(event) = second.events.recv().await {
                if let NetworkEvent::Request {
                    from,
                    request_id,
                    bytes,
                } = event
                {
                    assert_eq!(from, requester_key);
                    if bytes == b"answer too large" {
                        let refused = responder.respond(request_id, vec![0; 4097]).await;
                        assert!(
                            matches!(refused, Err(NetworkError::PayloadTooLarge { .. })),
                            "{refused:?}"
                        );
                        // Still answerable, with something that fits.
                        responder
                            .respond(request_id, b"fits".to_vec())
                            .await
                            .unwrap();
                    } else if bytes != b"stay silent" {
                        let answer: Vec<u8> = bytes.iter().rev().copied().collect();
                        responder.respond(request_id, answer).await.unwrap();
                        assert_eq!(
                            responder.respond(request_id, Vec::new()).await,
                            Err(NetworkError::UnknownRequest { request_id }),
                            "a request is answered once"
                        );
                    }
                }
            }
        });

        let answer = first
            .handle
            .request(second.key, b"blocks 1..10".to_vec())
            .await;
        assert_eq!(answer, Ok(b"01..1 skcolb".to_vec()));

        let started = Instant::now();
        let unanswered = first
            .handle
            .request(second.key, b"stay silent".to_vec())
            .await;
        // Both sides time the request; whichever gives up first decides the error.
        assert!(
            matches!(
                unanswered,
                Err(NetworkError::RequestTimeout | NetworkError::NoResponse)
            ),
            "{unanswered:?}"
        );
        assert!(started.elapsed() < limits().request_timeout + Duration::from_millis(900));

        let oversize = first.handle.request(second.key, vec![0; 1025]).await;
        assert!(
            matches!(oversize, Err(NetworkError::PayloadTooLarge { .. })),
            "{oversize:?}"
        );
        let answer = first
            .handle
            .request(second.key, b"answer too large".to_vec())
            .await;
        assert_eq!(answer, Ok(b"fits".to_vec()));

        let stranger = public(99);
        assert_eq!(
            first.handle.request(stranger, b"hello".to_vec()).await,
            Err(NetworkError::PeerNotAllowed {
                key_hex: stranger.to_hex()
            })
        );

        let mut first = first;
        third.handle.shutdown().await.unwrap();
        let gone = third.key;
        first
            .wait_event("the stopped node to disconnect", |event| {
                *event == NetworkEvent::PeerDisconnected(gone)
            })
            .await;
        let started = Instant::now();
        let to_stopped = first.handle.request(third.key, b"hello".to_vec()).await;
        assert_eq!(to_stopped, Err(NetworkError::DialFailed));
        assert!(started.elapsed() < limits().request_timeout);
        assert_eq!(
            third.handle.request(first.key, Vec::new()).await,
            Err(NetworkError::Stopped)
        );

        let stats = first.handle.stats();
        assert_eq!(stats.requests_outbound, 6);
        assert_eq!(stats.requests_outbound_failed, 4);
        assert_eq!(stats.messages_dropped_oversize, 1);
        answering.abort();
    })
    .await
}

#[tokio::test]
async fn an_unregistered_key_is_refused_and_its_gossip_never_arrives() {
    bounded(async {
        let registered = [1, 2];
        let mut first = TestNode::start(1, &registered, &[], 0).await;
        let mut second =
            TestNode::start(2, &registered, &[(first.key, first.address.clone())], 0).await;
        first.wait_connected(&[second.key]).await;

        // The outsider knows the registered nodes, but they do not know it.
        let outsider = TestNode::start(
            9,
            &[1, 2],
            &[
                (first.key, first.address.clone()),
                (second.key, second.address.clone()),
            ],
            0,
        )
        .await;
        eventually("both registered nodes refused the outsider", || async {
            first
                .handle
                .stats()
                .connections_refused
                .get(Refusal::UnknownPeer)
                >= 1
                && second
                    .handle
                    .stats()
                    .connections_refused
                    .get(Refusal::UnknownPeer)
                    >= 1
        })
        .await;
        let published = outsider
            .handle
            .publish(Topic::Transactions, b"from nowhere".to_vec())
            .await;
        assert_eq!(
            published,
            Err(NetworkError::NoPeersForTopic {
                topic: Topic::Transactions
            })
        );
        assert_eq!(first.gossip_received(0).await, vec![]);
        assert_eq!(second.gossip_received(0).await, vec![]);
        assert_eq!(first.handle.connected_peers().await, Ok(vec![second.key]));
        assert!(
            !second
                .handle
                .connected_peers()
                .await
                .unwrap()
                .contains(&outsider.key)
        );
    })
    .await
}

#[tokio::test]
async fn penalties_past_the_threshold_disconnect_and_ban_the_peer() {
    bounded(async {
        let [mut first, second, third] = three_nodes().await;
        first
            .handle
            .penalise(second.key, Misbehaviour::InvalidSignature)
            .await
            .unwrap();
        assert_eq!(first.handle.stats().peers_banned, 0);
        first
            .handle
            .penalise(second.key, Misbehaviour::MalformedMessage)
            .await
            .unwrap();
        let banned = second.key;
        first
            .wait_event("the penalised peer to be disconnected", |event| {
                *event == NetworkEvent::PeerDisconnected(banned)
            })
            .await;
        let stats = first.handle.stats();
        assert_eq!(stats.peers_penalised, 2);
        assert_eq!(stats.peers_banned, 1);

        // It keeps re-dialling, and keeps being refused.
        eventually("the banned peer's re-dial is refused", || async {
            first
                .handle
                .stats()
                .connections_refused
                .get(Refusal::Banned)
                >= 1
        })
        .await;
        assert_eq!(first.handle.connected_peers().await, Ok(vec![third.key]));
        assert_eq!(
            first.handle.request(second.key, Vec::new()).await,
            Err(NetworkError::PeerBanned {
                key_hex: second.key.to_hex()
            })
        );
    })
    .await
}

#[tokio::test]
async fn a_peer_removed_from_the_allowed_list_is_disconnected() {
    bounded(async {
        let [mut first, second, third] = three_nodes().await;
        first
            .handle
            .set_allowed(vec![first.key, third.key])
            .await
            .unwrap();
        let removed = second.key;
        first
            .wait_event("the removed peer to be disconnected", |event| {
                *event == NetworkEvent::PeerDisconnected(removed)
            })
            .await;
        assert_eq!(first.handle.stats().peers_disconnected_not_allowed, 1);
        eventually("the removed peer's re-dial is refused", || async {
            first
                .handle
                .stats()
                .connections_refused
                .get(Refusal::UnknownPeer)
                >= 1
        })
        .await;
        assert_eq!(first.handle.connected_peers().await, Ok(vec![third.key]));

        // A key that is not a curve point is refused, and changes nothing.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(matches!(
            first.handle.set_allowed(vec![PublicKey(not_a_point)]).await,
            Err(NetworkError::InvalidPublicKey { .. })
        ));
        assert_eq!(first.handle.connected_peers().await, Ok(vec![third.key]));
    })
    .await
}

#[tokio::test]
async fn a_restarted_node_is_reconnected() {
    bounded(async {
        let [mut first, mut second, third] = three_nodes().await;
        let restarted = third.key;
        let registered = [1, 2, 3];

        // On a new port: the restarted node finds the others through its bootstrap list.
        third.handle.shutdown().await.unwrap();
        first
            .wait_event("the stopped node to disconnect", |event| {
                *event == NetworkEvent::PeerDisconnected(restarted)
            })
            .await;
        let bootstrap = [
            (first.key, first.address.clone()),
            (second.key, second.address.clone()),
        ];
        let third = TestNode::start(3, &registered, &bootstrap, 0).await;
        for node in [&mut first, &mut second] {
            node.wait_event("the restarted node to reconnect", |event| {
                *event == NetworkEvent::PeerConnected(restarted)
            })
            .await;
        }
        third.wait_connected(&[first.key, second.key]).await;

        // On the same port, with no bootstrap list: the others re-dial it, once identify
        // has told them where it listens.
        let port = third.port();
        for node in [&first, &second] {
            eventually(
                "the others know where the restarted node listens",
                || async {
                    let known = node.handle.peer_addresses(restarted).await.unwrap();
                    known.contains(&third.address)
                },
            )
            .await;
        }
        third.handle.shutdown().await.unwrap();
        first
            .wait_event("the stopped node to disconnect again", |event| {
                *event == NetworkEvent::PeerDisconnected(restarted)
            })
            .await;
        let third = TestNode::start(3, &registered, &[], port).await;
        for node in [&mut first, &mut second] {
            node.wait_event("the others to re-dial the restarted node", |event| {
                *event == NetworkEvent::PeerConnected(restarted)
            })
            .await;
        }
        third.wait_connected(&[first.key, second.key]).await;
    })
    .await
}

/// A registered peer whose gossip libp2p refuses (here: unsigned, which strict validation
/// treats like a bad signature) is scored by gossipsub and banned by the network.
#[tokio::test]
async fn a_peer_sending_unsigned_gossip_is_banned() {
    bounded(async {
        let registered = [1, 7];
        let mut node = TestNode::start(1, &registered, &[], 0).await;

        let keypair = identity::keypair_of(&secret(7)).unwrap();
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::None)
            // Anonymous messages have no author or sequence number, so the default ids
            // (built from those) would make every message a duplicate of the first.
            .message_id_fn(|message| gossipsub::MessageId::new(&message.data))
            .heartbeat_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        let gossip: gossipsub::Behaviour =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).unwrap();
        let mut rogue = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| gossip)
            .unwrap()
            .build();
        let topic = gossipsub::IdentTopic::new(Topic::Transactions.name(CHAIN));
        rogue.behaviour_mut().subscribe(&topic).unwrap();
        rogue.dial(node.address.clone()).unwrap();

        let rogue_key = public(7);
        let mut sent = 0u32;
        let deadline = Instant::now() + WAIT;
        while node.handle.stats().peers_banned == 0 {
            assert!(
                Instant::now() < deadline,
                "the rogue peer was never banned: sent {sent}, stats {:?}, peers {:?}",
                node.handle.stats(),
                node.handle.connected_peers().await
            );
            // Drive the rogue swarm for a moment, then try to publish.
            let _ = timeout(Duration::from_millis(50), async {
                loop {
                    if let SwarmEvent::ConnectionClosed { .. } = rogue.select_next_some().await {
                        break;
                    }
                }
            })
            .await;
            let payload = format!("unsigned {sent}").into_bytes();
            if rogue
                .behaviour_mut()
                .publish(topic.clone(), payload)
                .is_ok()
            {
                sent += 1;
            }
        }
        node.wait_event("the rogue peer to be disconnected", |event| {
            *event == NetworkEvent::PeerDisconnected(rogue_key)
        })
        .await;
        assert_eq!(
            node.gossip_received(0).await,
            vec![],
            "unsigned gossip was delivered"
        );
        assert!(sent >= 2);
    })
    .await
}

/// A TCP connection to `port` on 127.0.0.1 from the loopback address `127.0.0.{source}`.
async fn connect_from(source: u8, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
        .unwrap();
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

#[tokio::test]
async fn strangers_get_bounded_handshake_slots_and_registered_peers_still_connect() {
    bounded(async {
        let limits = NetworkLimits {
            connections_pending_incoming_max: 8,
            handshake_slots_reserved: 3,
            handshakes_per_address_max: 2,
            handshake_timeout: Duration::from_secs(3),
            ..limits()
        };
        let refused = |node: &TestNode, reason| node.handle.stats().connections_refused.get(reason);
        // The first node knows the second at an address of 127.0.0.1 where nothing listens
        // (its dials there fail), so connections from 127.0.0.1 are a registered peer's.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stale_address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{closed_port}").parse().unwrap();
        let first = TestNode::start_with_limits(
            1,
            &[1, 2],
            &[(public(2), stale_address)],
            0,
            limits.clone(),
        )
        .await;
        let port = first.port();

        // One address holds at most two handshakes; strangers together at most 8 - 3.
        let mut held = Vec::new();
        for source in [9, 9, 9] {
            held.push(connect_from(source, port).await);
        }
        eventually(
            "the third connection from one address is refused",
            || async { refused(&first, Refusal::PerAddressLimit) == 1 },
        )
        .await;
        for source in [10, 10, 11, 11, 12, 12] {
            held.push(connect_from(source, port).await);
        }
        eventually("strangers past their share are refused", || async {
            refused(&first, Refusal::PendingLimit) == 3
        })
        .await;

        // The registered peer dials in and takes a reserved slot.
        let second = TestNode::start_with_limits(
            2,
            &[1, 2],
            &[(first.key, first.address.clone())],
            0,
            limits.clone(),
        )
        .await;
        first.wait_connected(&[second.key]).await;

        // Idle sockets end at the handshake timeout; garbage ends a handshake at once.
        eventually("idle handshakes time out", || async {
            refused(&first, Refusal::HandshakeTimeout) >= 5
        })
        .await;
        let mut garbage = connect_from(13, port).await;
        // Not a length-prefixed protocol name: a varint that never ends.
        tokio::io::AsyncWriteExt::write_all(&mut garbage, &[0xff; 64])
            .await
            .unwrap();
        eventually("the garbage is refused as a protocol error", || async {
            refused(&first, Refusal::ProtocolError) >= 1
        })
        .await;
        // Their slots are free again.
        let _again = connect_from(9, port).await;
        sleep(QUIET_WINDOW).await;
        assert_eq!(refused(&first, Refusal::PerAddressLimit), 1);
        assert_eq!(refused(&first, Refusal::PendingLimit), 3);
        assert_eq!(refused(&first, Refusal::UnknownPeer), 0);
        drop(held);
    })
    .await;
}
