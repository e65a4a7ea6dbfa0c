//! `hutong run` with a heartbeat longer than its genesis file promises stops at once with exit
//! code 3 and names both values (ADR 0037): verifiers would take the node's idle blocks for a
//! stopped chain.

use std::process::Command;
use std::time::{Duration, Instant};

use hutong_core::genesis::Freshness;
use hutong_core::testkit::Fixture;

const CONFIG_EXIT: i32 = 3;
/// The node must refuse before it starts anything: far less than this.
const REFUSAL_WAIT: Duration = Duration::from_secs(60);
/// The genesis file's bound, below the configuration's default heartbeat of 2 s.
const HEARTBEAT_MS_MAX: u64 = 1_000;

#[test]
fn a_heartbeat_above_the_genesis_bound_stops_the_node_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let genesis_path = dir.path().join("genesis.json");
    let mut genesis = Fixture::new().genesis;
    genesis.freshness = Freshness {
        heartbeat_ms_max: HEARTBEAT_MS_MAX,
        proof_age_ms_max: 60_000,
    };
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("init")
        .arg("--home")
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains("heartbeat_ms = 2000"), "{config}");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("run")
        .arg("--home")
        .arg(&home)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > REFUSAL_WAIT {
            child.kill().unwrap();
            panic!("the node did not refuse its heartbeat within {REFUSAL_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(CONFIG_EXIT), "{stderr}");
    assert!(
        stderr.contains("consensus.heartbeat_ms (2000)")
            && stderr.contains(&format!("freshness.heartbeat_ms_max ({HEARTBEAT_MS_MAX})")),
        "{stderr}"
    );
}
