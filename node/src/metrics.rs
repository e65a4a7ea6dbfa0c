//! The node's Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label naming why something was rejected.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub committed_transactions: Counter,
    pub committed_blocks: Counter,
    pub mempool_transactions: Gauge,
    pub mempool_bytes: Gauge,
    pub peers: Gauge,
    pub rejected_transactions: Family<Reason, Counter>,
    pub rejected_messages: Family<Reason, Counter>,
    pub block_execute_seconds: Histogram,
    pub block_commit_seconds: Histogram,
    pub catch_up_target_height: Gauge,
    /// The highest height this node knows of: its own committed height, or a higher one a
    /// registered peer reported (peers in step report nothing; consensus keeps them together).
    pub known_height: Gauge,
    /// The agreed time of the last committed block, in seconds since 1970 (its age is
    /// `time() - hutong_last_block_time_seconds`).
    pub last_block_time_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub catch_up_blocks: Counter,
    pub proposal_transaction_fetches: Counter,
    pub equivocations_seen: Counter,
    pub signing_refused: Gauge,
    pub messages_beyond_round_window: Gauge,
    pub signing_state_write_failures: Counter,
    pub signing_state_behind: Gauge,
    pub catching_up_before_voting: Gauge,
    pub catch_up_request_failures: Family<Reason, Counter>,
    pub excess_proposals: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hutong");
        let metrics = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            committed_transactions: Counter::default(),
            committed_blocks: Counter::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            peers: Gauge::default(),
            rejected_transactions: Family::default(),
            rejected_messages: Family::default(),
            block_execute_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            block_commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            catch_up_target_height: Gauge::default(),
            known_height: Gauge::default(),
            last_block_time_seconds: Gauge::default(),
            catch_up_blocks: Counter::default(),
            proposal_transaction_fetches: Counter::default(),
            equivocations_seen: Counter::default(),
            signing_refused: Gauge::default(),
            messages_beyond_round_window: Gauge::default(),
            signing_state_write_failures: Counter::default(),
            signing_state_behind: Gauge::default(),
            catching_up_before_voting: Gauge::default(),
            catch_up_request_failures: Family::default(),
            excess_proposals: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "height",
            "Height of the last committed block",
            metrics.height.clone(),
        );
        registry.register(
            "round",
            "Consensus round at the current height",
            metrics.round.clone(),
        );
        registry.register(
            "committed_transactions",
            "Transactions committed since start",
            metrics.committed_transactions.clone(),
        );
        registry.register(
            "committed_blocks",
            "Blocks committed since start",
            metrics.committed_blocks.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Transactions waiting in the mempool",
            metrics.mempool_transactions.clone(),
        );
        registry.register(
            "mempool_bytes",
            "Bytes of the transactions waiting in the mempool",
            metrics.mempool_bytes.clone(),
        );
        registry.register("peers", "Connected peers", metrics.peers.clone());
        registry.register(
            "rejected_transactions",
            "Transactions refused at admission, by reason",
            metrics.rejected_transactions.clone(),
        );
        registry.register(
            "rejected_messages",
            "Peer messages dropped, by reason",
            metrics.rejected_messages.clone(),
        );
        registry.register(
            "block_execute_seconds",
            "Time to execute a block (build or verify)",
            metrics.block_execute_seconds.clone(),
        );
        registry.register(
            "block_commit_seconds",
            "Time to make a block durable",
            metrics.block_commit_seconds.clone(),
        );
        registry.register(
            "catch_up_target_height",
            "Highest height a peer reported while this node catches up",
            metrics.catch_up_target_height.clone(),
        );
        registry.register(
            "known_height",
            "Highest height this node knows of: its own committed height or a higher one a peer reported",
            metrics.known_height.clone(),
        );
        registry.register(
            "last_block_time_seconds",
            "Agreed time of the last committed block, in seconds since 1970",
            metrics.last_block_time_seconds.clone(),
        );
        registry.register(
            "catching_up_before_voting",
            "1 while this validator catches up to its peers' height before it signs anything, 2 once no \
             registered peer reported a height within the wait and it stays non-signing and keeps asking \
             (ADR 0028, ADR 0036)",
            metrics.catching_up_before_voting.clone(),
        );
        registry.register(
            "catch_up_request_failures",
            "Catch-up requests that failed, by reason (failed, timeout, refused, bad_answer, bad_block, \
             empty); each is re-sent to another peer after a backoff (ADR 0036)",
            metrics.catch_up_request_failures.clone(),
        );
        registry.register(
            "excess_proposals",
            "Conflicting proposals of a round dropped beyond MAX_PROPOSALS_PER_ROUND",
            metrics.excess_proposals.clone(),
        );
        registry.register(
            "catch_up_blocks",
            "Blocks committed through catch-up",
            metrics.catch_up_blocks.clone(),
        );
        registry.register(
            "proposal_transaction_fetches",
            "Requests to peers for a proposed block's transactions this node lacked",
            metrics.proposal_transaction_fetches.clone(),
        );
        registry.register(
            "equivocations_seen",
            "Equivocations (conflicting signed votes) detected",
            metrics.equivocations_seen.clone(),
        );
        registry.register(
            "consensus_signing_refused",
            "Messages the consensus machine refused to sign to stay safe",
            metrics.signing_refused.clone(),
        );
        registry.register(
            "consensus_messages_beyond_round_window",
            "Consensus messages dropped for a round more than MAX_ROUND_LOOKAHEAD (16) ahead",
            metrics.messages_beyond_round_window.clone(),
        );
        registry.register(
            "signing_state_write_failures",
            "Failed writes of the signing state file (the node signs nothing until one succeeds)",
            metrics.signing_state_write_failures.clone(),
        );
        registry.register(
            "signing_state_behind",
            "1 while the signing state on disk lags the machine's and the node does not sign",
            metrics.signing_state_behind.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts a rejected transaction under its reason code.
    pub fn reject_transaction(&self, reason: &str) {
        self.rejected_transactions
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts a failed catch-up request under its reason.
    pub fn catch_up_request_failed(&self, reason: &str) {
        self.catch_up_request_failures
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts a dropped peer message under its reason.
    pub fn reject_message(&self, reason: &str) {
        self.rejected_messages
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition (format 0.0.4, what `/metrics` declares), with `extra`
    /// lines appended (network counters).
    pub fn render(&self, extra: &str) -> String {
        let mut open_metrics = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut open_metrics, &self.registry)
            .is_err()
        {
            open_metrics.clear();
        }
        let mut text = prometheus_text(&open_metrics);
        text.push_str(extra);
        text
    }
}

/// The Prometheus text format 0.0.4 of the registry's OpenMetrics encoding, which names a
/// counter's family without the `_total` its samples carry, and ends with `# EOF`: a parser of
/// the format `/metrics` declares (and the other lines of the page follow) would read such a
/// family as empty and its samples as untyped. Counter families are named as their samples,
/// and the `# UNIT` and `# EOF` lines, which that format does not have, are left out.
fn prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .filter(|name| !name.ends_with("_total"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read with a Prometheus text-format parser, every sample of the page, the node's and the
    /// network's, belongs to a family whose declared type it has: none is untyped, as the
    /// counters were when their family was named without `_total`.
    #[test]
    fn every_sample_has_its_family_type_for_a_prometheus_parser() {
        let metrics = Metrics::new();
        metrics.height.set(7);
        metrics.committed_transactions.inc_by(3);
        metrics.reject_transaction("replay");
        let page = metrics.render(&crate::network_metrics::render(
            &crate::network::NetworkStats::default(),
        ));
        assert!(!page.contains("# EOF"), "{page}");
        let scrape = prometheus_parse::Scrape::parse(page.lines().map(|line| Ok(line.to_owned())))
            .expect("the page parses");
        assert!(scrape.samples.len() > 10, "{page}");
        let untyped: Vec<&str> = scrape
            .samples
            .iter()
            .filter(|sample| matches!(sample.value, prometheus_parse::Value::Untyped(_)))
            .map(|sample| sample.metric.as_str())
            // The parser keeps a histogram's buckets and gives its sum and count untyped.
            .filter(|name| {
                let family = name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"));
                !family.is_some_and(|family| page.contains(&format!("# TYPE {family} histogram\n")))
            })
            .collect();
        assert!(untyped.is_empty(), "untyped samples {untyped:?} in\n{page}");
        let committed = scrape
            .samples
            .iter()
            .find(|sample| sample.metric == "hutong_committed_transactions_total")
            .expect("the committed transactions");
        assert!(matches!(committed.value, prometheus_parse::Value::Counter(count) if count == 3.0));
        assert!(
            scrape
                .docs
                .contains_key("hutong_committed_transactions_total")
        );
    }

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        metrics.height.set(7);
        metrics.reject_transaction("replay");
        let text = metrics.render("");
        assert!(text.contains("hutong_height 7"), "{text}");
        assert!(
            text.contains("hutong_rejected_transactions_total{reason=\"replay\"} 1"),
            "{text}"
        );
    }
}
