//! The router's state: the store, the node, the limits, and the small caches and counters the
//! handlers share.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hutong_core::hash::Hash32;
use hutong_core::records::{AuthorityId, Height, Record, RecordKey, Role, TimeMs};
use hutong_core::tx::{Transaction, TxBody};
use hutong_ledger::store::{Store, StoreError};
use tokio::sync::Semaphore;

use crate::config::{ApiConfig, ConfigError};
use crate::limits::ACTIONS_PAGE;
use crate::node::NodeControl;

/// A source of the current time (ms since the Unix epoch): the wall clock in a node, a fixed
/// value in tests.
pub type Clock = Arc<dyn Fn() -> TimeMs + Send + Sync>;

/// What the router serves from. Cloning is cheap (one shared allocation).
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub store: Arc<Store>,
    pub node: Arc<dyn NodeControl>,
    pub config: ApiConfig,
    pub clock: Clock,
    pub limiter: RateLimiter,
    pub concurrency: Arc<Semaphore>,
    /// The probes' own pool (`/healthz`, `/readyz`, `/metrics`).
    pub probe_concurrency: Arc<Semaphore>,
    /// Request bodies being received.
    pub body_reads: Arc<Semaphore>,
    pub metrics: ApiMetrics,
    pub changes: Mutex<ChangeIndex>,
    /// The accepted witnesses' cosignatures (ADR 0038).
    pub cosignatures: Mutex<crate::cosignatures::CosignaturePool>,
}

fn wall_clock() -> TimeMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as TimeMs)
}

impl ApiState {
    /// State for a node: the wall clock.
    pub fn new(
        store: Arc<Store>,
        node: Arc<dyn NodeControl>,
        config: ApiConfig,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(store, node, config, Arc::new(wall_clock))
    }

    /// State with a given clock (tests and benchmarks pin the time).
    pub fn with_clock(
        store: Arc<Store>,
        node: Arc<dyn NodeControl>,
        config: ApiConfig,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(ApiState {
            inner: Arc::new(Inner {
                store,
                node,
                limiter: RateLimiter::new(&config),
                concurrency: Arc::new(Semaphore::new(config.concurrent_requests_max)),
                probe_concurrency: Arc::new(Semaphore::new(config.probe_requests_max)),
                body_reads: Arc::new(Semaphore::new(config.body_reads_max)),
                config,
                clock,
                metrics: ApiMetrics::default(),
                changes: Mutex::new(ChangeIndex::default()),
                cosignatures: Mutex::new(Default::default()),
            }),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn node(&self) -> &dyn NodeControl {
        self.inner.node.as_ref()
    }

    pub(crate) fn now(&self) -> TimeMs {
        (self.inner.clock)()
    }
}

/// Counters the API adds to the node's metrics.
#[derive(Debug, Default)]
pub(crate) struct ApiMetrics {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub overloaded: AtomicU64,
    pub timeouts: AtomicU64,
    pub stale: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    pub verifications: AtomicU64,
    pub bundles: AtomicU64,
    pub transactions_submitted: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_evicted: AtomicU64,
    pub connections_closed_idle: AtomicU64,
    pub connections_closed_slow_head: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Gauges: connections open now, and the cap.
    pub connections_open: AtomicU64,
    pub connections_max: AtomicU64,
}

impl ApiMetrics {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let lines = [
            (
                "hutong_api_requests_total",
                "Requests received.",
                &self.requests,
            ),
            (
                "hutong_api_rate_limited_total",
                "Requests refused by the per-client rate limit.",
                &self.rate_limited,
            ),
            (
                "hutong_api_overloaded_total",
                "Requests refused because the concurrency limit was reached.",
                &self.overloaded,
            ),
            (
                "hutong_api_timeouts_total",
                "Requests that ran past the timeout.",
                &self.timeouts,
            ),
            (
                "hutong_api_stale_total",
                "Licence requests refused 503 stale: the node may be cut off from the chain.",
                &self.stale,
            ),
            (
                "hutong_api_client_errors_total",
                "Answers with a 4xx status.",
                &self.client_errors,
            ),
            (
                "hutong_api_server_errors_total",
                "Answers with a 5xx status.",
                &self.server_errors,
            ),
            (
                "hutong_api_verifications_total",
                "Verification requests answered.",
                &self.verifications,
            ),
            (
                "hutong_api_proof_bundles_total",
                "Proof bundles built.",
                &self.bundles,
            ),
            (
                "hutong_api_transactions_submitted_total",
                "Transactions admitted to the mempool.",
                &self.transactions_submitted,
            ),
            (
                "hutong_api_body_timeouts_total",
                "Requests whose body did not arrive within body_read_timeout_ms.",
                &self.body_timeouts,
            ),
            (
                "hutong_api_connections_accepted_total",
                "Connections accepted.",
                &self.connections_accepted,
            ),
            (
                "hutong_api_connections_refused_total",
                "Connections closed at once: the cap was reached and every open connection was serving.",
                &self.connections_refused,
            ),
            (
                "hutong_api_connections_evicted_total",
                "Connections closed to make room: at the cap, the one waiting longest for a request.",
                &self.connections_evicted,
            ),
            (
                "hutong_api_connections_closed_idle_total",
                "Connections closed after waiting idle_timeout_ms for a request.",
                &self.connections_closed_idle,
            ),
            (
                "hutong_api_connections_closed_slow_head_total",
                "Connections closed because a request head took longer than header_read_timeout_ms.",
                &self.connections_closed_slow_head,
            ),
            (
                "hutong_api_accept_errors_total",
                "Failed accepts (out of file descriptors, most often).",
                &self.accept_errors,
            ),
        ];
        let mut out = String::new();
        for (name, help, counter) in lines {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        for (name, help, gauge) in [
            (
                "hutong_api_connections_open",
                "API connections open now.",
                &self.connections_open,
            ),
            (
                "hutong_api_connections_max",
                "The cap on open API connections.",
                &self.connections_max,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}\n",
                gauge.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// A token bucket per client, in a bounded map.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// Clients that arrive when the map is full and nobody can be forgotten share this one.
    overflow: Mutex<Bucket>,
    rate_per_second: f64,
    burst: f64,
    clients_max: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate_per_second: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate_per_second).min(burst);
        self.updated = now;
    }

    /// Takes a token, or says in how many whole seconds one will be there.
    fn take(&mut self, rate_per_second: f64) -> Result<(), u64> {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / rate_per_second).ceil().max(1.0) as u64)
        }
    }
}

impl RateLimiter {
    fn new(config: &ApiConfig) -> Self {
        let burst = f64::from(config.client_burst);
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
            overflow: Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }),
            rate_per_second: f64::from(config.client_requests_per_second),
            burst,
            clients_max: config.clients_tracked_max,
        }
    }

    /// Lets one request of `client` through, or answers after how many seconds to retry.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if !buckets.contains_key(&client) && buckets.len() >= self.clients_max {
            // Forget the clients whose buckets have refilled: they lose nothing by it.
            let full_after = self.burst / self.rate_per_second;
            buckets.retain(|_, bucket| {
                now.saturating_duration_since(bucket.updated).as_secs_f64() < full_after
            });
            if buckets.len() >= self.clients_max {
                drop(buckets);
                let Ok(mut overflow) = self.overflow.lock() else {
                    return Ok(());
                };
                overflow.refill(now, self.rate_per_second, self.burst);
                return overflow.take(self.rate_per_second);
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.refill(now, self.rate_per_second, self.burst);
        bucket.take(self.rate_per_second)
    }
}

/// Where the validator set changed, and the `ChangeValidators` transactions behind each
/// change, found by scanning forward from what was scanned before (the scan runs once per
/// block, on demand).
#[derive(Debug, Default)]
pub(crate) struct ChangeIndex {
    /// Headers up to this height were compared.
    headers_scanned_through: Height,
    last_validators_hash: Option<Hash32>,
    /// Heights at which a new voting set signed its first block.
    pub change_heights: Vec<Height>,
    /// Per governor, the last action scanned.
    actions_scanned: BTreeMap<AuthorityId, (Height, u32)>,
    /// `ChangeValidators` transactions by effective height: `(log index, transaction)`.
    pub transactions: BTreeMap<Height, BTreeMap<u64, Transaction>>,
}

impl ChangeIndex {
    /// Brings the index up to `head`.
    pub fn update(&mut self, store: &Store, head: Height) -> Result<(), StoreError> {
        if self.last_validators_hash.is_none() {
            self.last_validators_hash = store.header(0)?.map(|header| header.validators_hash);
        }
        let mut found_change = false;
        while self.headers_scanned_through < head {
            let height = self.headers_scanned_through + 1;
            let header = store
                .header(height)?
                .ok_or_else(|| StoreError::Corrupt(format!("header {height} is missing")))?;
            if Some(header.validators_hash) != self.last_validators_hash {
                self.change_heights.push(height);
                self.last_validators_hash = Some(header.validators_hash);
                found_change = true;
            }
            self.headers_scanned_through = height;
        }
        if found_change || self.actions_scanned.is_empty() {
            self.scan_governor_actions(store)?;
        }
        Ok(())
    }

    /// Governance records are signed by governors; reading what each governor (now or at
    /// genesis) signed finds the `ChangeValidators` transactions without reading every block.
    fn scan_governor_actions(&mut self, store: &Store) -> Result<(), StoreError> {
        let mut governors: Vec<AuthorityId> = match store.record(&RecordKey::Governors)? {
            Some(Record::Governors(list)) => list,
            _ => Vec::new(),
        };
        for draft in store.genesis()?.authorities {
            if draft.roles.contains(&Role::Governor) && !governors.contains(&draft.id) {
                governors.push(draft.id);
            }
        }
        for governor in governors {
            loop {
                let after = self.actions_scanned.get(&governor).copied();
                let page = store.actions_of(&governor, after, ACTIONS_PAGE)?;
                let Some(&(last_height, last_index, _)) = page.last() else {
                    break;
                };
                for (_, _, id) in &page {
                    if let Some((transaction, location)) = store.transaction(id)?
                        && let TxBody::ChangeValidators {
                            effective_height, ..
                        } = &transaction.payload.body
                    {
                        self.transactions
                            .entry(*effective_height)
                            .or_default()
                            .insert(location.log_index, transaction);
                    }
                }
                self.actions_scanned
                    .insert(governor.clone(), (last_height, last_index));
                if page.len() < ACTIONS_PAGE {
                    break;
                }
            }
        }
        Ok(())
    }
}
