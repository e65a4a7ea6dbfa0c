//! `hutong run`: opens and checks the store, starts the network, the consensus engine and the
//! HTTP API, and stops them cleanly on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::{Notify, mpsc, watch};

use hutong_core::crypto::PublicKey;
use hutong_core::genesis::Genesis;

use crate::admitter::Admitter;
use crate::config::Config;
use crate::engine::{Engine, EngineStart};
use crate::faults::Faults;
use crate::limits::{GOSSIP_BATCH_WAIT, GOSSIP_QUEUE_CAPACITY, TRANSACTION_BATCH_COUNT_MAX};
use crate::mempool::{Mempool, MempoolLimits};
use crate::messages::{self, TransactionBatch};
use crate::metrics::Metrics;
use crate::network::{self, NetworkConfig, NetworkHandle, Topic};
use crate::service::NodeService;
use crate::shared::{Shared, Status};
use crate::{Failure, WithCode, exit, keys, store_open};

pub fn run(home: &Path, resync: bool) -> Result<(), Failure> {
    let config = Config::load(home).code(exit::CONFIG)?;
    init_logging(&config).code(exit::CONFIG)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hutong")
        .build()
        .context("starting the runtime")
        .code(exit::RUNTIME)?;
    runtime.block_on(run_node(home, config, resync))
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?} is not a valid filter", config.log.level))?;
    // Colours only for a terminal: a log file or a journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|error| anyhow!("logging: {error}"))
}

/// Checks that the API's address is a socket address, or a host name and a port that resolve
/// to one; binding it (a port in use) is still only tried once the node has started.
fn check_api_address(listen: &str) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs;
    let resolved = listen
        .to_socket_addrs()
        .with_context(|| format!("api.listen {listen:?} is not an address and port"))?;
    if resolved.count() == 0 {
        return Err(anyhow!("api.listen {listen:?} names no address"));
    }
    Ok(())
}

fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    text.trim()
        .parse::<PublicKey>()
        .map_err(|error| anyhow!("{text:?} is not a node public key: {error}"))
}

async fn run_node(home: &Path, config: Config, resync: bool) -> Result<(), Failure> {
    // Before anything opens a file: the API's cap must fit under the file limit.
    let file_limit = crate::files::raise_file_limit().code(exit::RUNTIME)?;
    let api_connections_max =
        crate::files::api_connections_max(file_limit.soft, config.api.connections_max)
            .code(exit::CONFIG)?;
    tracing::info!(
        soft_at_start = file_limit.soft_at_start,
        soft = file_limit.soft,
        hard = file_limit.hard,
        reserved = crate::limits::FILE_DESCRIPTORS_RESERVED,
        api_connections_max,
        "open-file limit"
    );
    let genesis_path = Config::resolve(home, &config.genesis);
    let genesis_bytes = std::fs::read(&genesis_path)
        .with_context(|| format!("reading {}", genesis_path.display()))
        .code(exit::CONFIG)?;
    let genesis = Genesis::from_json(&genesis_bytes)
        .with_context(|| format!("checking {}", genesis_path.display()))
        .code(exit::CONFIG)?;
    if config.consensus.heartbeat_ms > genesis.freshness.heartbeat_ms_max {
        return Err(anyhow!(
            "consensus.heartbeat_ms ({}) exceeds the chain's promised heartbeat, \
             freshness.heartbeat_ms_max ({}) of {}: verifiers would take this node's idle \
             blocks for a stopped chain; lower it",
            config.consensus.heartbeat_ms,
            genesis.freshness.heartbeat_ms_max,
            genesis_path.display()
        ))
        .code(exit::CONFIG);
    }
    let node_key = keys::read(&Config::resolve(home, &config.node_key)).code(exit::CONFIG)?;
    let faults = Faults::from_config(&config.testing, home)
        .map_err(|problem| anyhow!(problem))
        .code(exit::CONFIG)?;
    // Every address, peer and API limit of the configuration is read before the store opens
    // or the network starts, so that a typo stops the node at once (exit 3) with nothing begun.
    let extra_allowed: Vec<PublicKey> = config
        .p2p
        .extra_allowed
        .iter()
        .map(|text| parse_key(text))
        .collect::<anyhow::Result<_>>()
        .code(exit::CONFIG)?;
    let mut network_config = NetworkConfig::new(node_key.clone(), genesis.chain_id.clone());
    for address in &config.p2p.listen {
        network_config.listen.push(
            address
                .parse()
                .with_context(|| format!("p2p.listen {address:?} is not a multiaddress"))
                .code(exit::CONFIG)?,
        );
    }
    for peer in &config.p2p.peers {
        let (key, address) = peer.split_once('@').unwrap_or(("", peer));
        let key = parse_key(key)
            .with_context(|| format!("p2p.peers entry {peer:?}"))
            .code(exit::CONFIG)?;
        let address = address
            .parse()
            .with_context(|| format!("p2p.peers entry {peer:?}: not a multiaddress"))
            .code(exit::CONFIG)?;
        network_config.bootstrap.push((key, address));
    }
    let mut api_config = config.api.limits(api_connections_max);
    api_config.witnesses = config.witnesses.clone();
    api_config
        .validate()
        .context("the API configuration")
        .code(exit::CONFIG)?;
    check_api_address(&config.api.listen).code(exit::CONFIG)?;

    let data_dir = Config::resolve(home, &config.data_dir);
    // Held until the node stops: no other process runs on this home meanwhile.
    let store_open::Opened {
        store,
        lock: _home_lock,
    } = store_open::open(&store_open::Opening {
        home,
        data_dir: &data_dir,
        storage: &config.storage,
        genesis: &genesis,
        resync,
    })?;
    let store = Arc::new(store);
    tracing::info!(
        chain = %genesis.chain_id,
        height = store.height().unwrap_or(0),
        node = %node_key.public_key(),
        "store opened and checked"
    );

    // The network.
    let registry = store
        .registry_for(store.height().code(exit::STORE)? + 1)
        .code(exit::STORE)?;
    network_config.allowed = registry
        .nodes
        .iter()
        .map(|node| node.key)
        .chain(extra_allowed.iter().copied())
        .collect();
    for (key, _) in &network_config.bootstrap {
        if !network_config.allowed.contains(key) {
            network_config.allowed.push(*key);
        }
    }
    let (network, network_events) = network::spawn(network_config)
        .context("starting the network")
        .code(exit::CONFIG)?;

    // Shared state, the engine, the glue between them.
    let (gossip_sender, gossip_receiver) = mpsc::channel(GOSSIP_QUEUE_CAPACITY);
    let shared = Arc::new(Shared {
        store: store.clone(),
        mempool: Mutex::new(Mempool::new(MempoolLimits::with_signer_share(
            config.mempool.transactions_max,
            config.mempool.bytes_max,
            config.mempool.signer_share_percent,
        ))),
        mempool_changed: Notify::new(),
        metrics: Metrics::new(),
        status: Status::default(),
        gossip: gossip_sender,
        accepting: AtomicBool::new(true),
    });
    shared
        .metrics
        .height
        .set(store.height().unwrap_or(0) as i64);
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let signing_state_path = data_dir.join("signing_state.json");
    let engine = Engine::new(
        shared.clone(),
        EngineStart {
            node_key: node_key.clone(),
            config: config.consensus.clone(),
            signing_state_path,
            extra_allowed,
            resync,
            faults: faults.clone(),
        },
    )
    .code(exit::STORE)?;

    let peers = Arc::new(RwLock::new(Vec::new()));
    let network_metrics = Arc::new(RwLock::new(String::new()));
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(batch_gossip(gossip_receiver, network.clone(), faults));
    tokio::spawn(refresh_network_view(
        network.clone(),
        peers.clone(),
        network_metrics.clone(),
        shared.clone(),
    ));
    let engine_task =
        tokio::spawn(engine.run(network.clone(), network_events, shutdown_receiver.clone()));

    // The HTTP API.
    let service = Arc::new(NodeService {
        shared: shared.clone(),
        key: node_key.public_key(),
        peers,
        network_metrics,
        ready: ready.clone(),
        proof_age_ms_max: genesis.freshness.proof_age_ms_max,
        admitter: Admitter::start(&shared)
            .context("starting the admission thread")
            .code(exit::RUNTIME)?,
    });
    let api_state = hutong_api::ApiState::new(store.clone(), service, api_config)
        .context("the API configuration")
        .code(exit::CONFIG)?;
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .with_context(|| format!("binding the API address {}", config.api.listen))
        .code(exit::CONFIG)?;
    tracing::info!(address = %config.api.listen, "API listening");
    let mut http_shutdown = shutdown_receiver.clone();
    let http_task = tokio::spawn(hutong_api::serve(listener, api_state, async move {
        while !*http_shutdown.borrow() {
            if http_shutdown.changed().await.is_err() {
                break;
            }
        }
    }));
    ready.store(true, Ordering::Relaxed);

    // Run until a signal or a failure.
    let mut engine_task = engine_task;
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutdown requested: finishing");
            Ok(())
        }
        result = &mut engine_task => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Failure::new(exit::STORE, anyhow!("consensus engine stopped: {error}"))),
            Err(error) => Err(Failure::new(exit::RUNTIME, anyhow!("consensus engine panicked: {error}"))),
        },
    };
    shared.accepting.store(false, Ordering::Relaxed);
    ready.store(false, Ordering::Relaxed);
    let _ = shutdown_sender.send(true);
    if !engine_task.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(10), engine_task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    let _ = network.shutdown().await;
    // Every committed block is already durable (commit syncs before it returns); dropping
    // the store closes it.
    drop(shared);
    tracing::info!("stopped");
    outcome
}

/// Collects admitted transactions and gossips them in batches.
async fn batch_gossip(mut queue: mpsc::Receiver<Vec<u8>>, network: NetworkHandle, faults: Faults) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GOSSIP_BATCH_WAIT;
        while batch.len() < TRANSACTION_BATCH_COUNT_MAX {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(bytes)) => batch.push(bytes),
                Ok(None) | Err(_) => break,
            }
        }
        // Test-only: the node keeps its transactions to itself (its peers learn of them
        // only from its proposals), or says nothing at all while partitioned.
        if faults.withholds_transactions() || faults.partitioned() {
            continue;
        }
        let message = messages::encode(&TransactionBatch {
            transactions: batch,
        });
        if let Err(error) = network.publish(Topic::Transactions, message).await {
            tracing::debug!(%error, "a transaction batch was not gossiped");
            if matches!(error, network::NetworkError::Stopped) {
                break;
            }
        }
    }
}

/// Keeps the API's view of the peers and the network counters current.
async fn refresh_network_view(
    network: NetworkHandle,
    peers: Arc<RwLock<Vec<PublicKey>>>,
    text: Arc<RwLock<String>>,
    shared: Arc<Shared>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Ok(connected) = network.connected_peers().await else {
            break;
        };
        shared.metrics.peers.set(connected.len() as i64);
        shared
            .status
            .peers
            .store(connected.len() as u64, Ordering::Relaxed);
        if let Ok(mut view) = peers.write() {
            *view = connected;
        }
        let stats = network.stats();
        if let Ok(mut view) = text.write() {
            *view = crate::network_metrics::render(&stats);
        }
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
