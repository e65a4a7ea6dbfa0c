//! The network's counters in the Prometheus text format, appended to the node's own metrics
//! at `/metrics` (the network module keeps plain counters, read without asking its task).

use std::fmt::Write;

use crate::network::NetworkStats;

/// The exposition of `stats`: the refusals by reason (ADR 0018), penalties and bans.
pub fn render(stats: &NetworkStats) -> String {
    let mut text = String::new();
    let refused = stats.connections_refused;
    let _ = write!(
        text,
        "# HELP hutong_network_connections_refused_total Connections refused because the peer is not registered\n\
         # TYPE hutong_network_connections_refused_total counter\n\
         hutong_network_connections_refused_total {}\n\
         # HELP hutong_p2p_refused_total Inbound p2p connections refused or failed before they became a registered peer's, by reason\n\
         # TYPE hutong_p2p_refused_total counter\n",
        refused.get(crate::network::Refusal::UnknownPeer)
    );
    for (reason, count) in refused.iter() {
        let _ = writeln!(
            text,
            "hutong_p2p_refused_total{{reason=\"{}\"}} {count}",
            reason.label()
        );
    }
    let _ = write!(
        text,
        "# HELP hutong_network_peers_penalised_total Penalties applied to peers for invalid messages\n\
         # TYPE hutong_network_peers_penalised_total counter\n\
         hutong_network_peers_penalised_total {}\n\
         # HELP hutong_network_peers_banned_total Peers disconnected and refused for their penalties\n\
         # TYPE hutong_network_peers_banned_total counter\n\
         hutong_network_peers_banned_total {}\n",
        stats.peers_penalised, stats.peers_banned
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_exposed_with_its_count() {
        let text = render(&NetworkStats::default());
        for reason in crate::network::Refusal::ALL {
            let line = format!(
                "hutong_p2p_refused_total{{reason=\"{}\"}} 0",
                reason.label()
            );
            assert!(text.lines().any(|shown| shown == line), "{line} in {text}");
        }
        assert!(
            text.contains("hutong_network_peers_banned_total 0"),
            "{text}"
        );
    }
}
