//! `hutong run` with a heartbeat longer than its genesis file promises stops at once with exit
//! code 3 and names both values (ADR 0037): verifiers would take the node's idle blocks for a
//! stopped chain.

mod common;

use hutong_core::genesis::Freshness;
use hutong_core::testkit::Fixture;

const CONFIG_EXIT: i32 = 3;
/// The genesis file's bound, below the configuration's default heartbeat of 2 s.
const HEARTBEAT_MS_MAX: u64 = 1_000;

#[test]
fn a_heartbeat_above_the_genesis_bound_stops_the_node_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut genesis = Fixture::new().genesis;
    genesis.freshness = Freshness {
        heartbeat_ms_max: HEARTBEAT_MS_MAX,
        proof_age_ms_max: 60_000,
    };
    let home = common::init_home(dir.path(), &genesis);
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains("heartbeat_ms = 2000"), "{config}");

    let (status, stderr) = common::run_until_exit(&home);
    assert_eq!(status.code(), Some(CONFIG_EXIT), "{stderr}");
    assert!(
        stderr.contains("consensus.heartbeat_ms (2000)")
            && stderr.contains(&format!("freshness.heartbeat_ms_max ({HEARTBEAT_MS_MAX})")),
        "{stderr}"
    );
}
