//! `hutong run` on a store of another format stops at once with exit code 4 and names both
//! format versions, instead of reading the store as if it were its own.

mod common;

use hutong_core::testkit::Fixture;
use hutong_ledger::store::{Durability, Engine, STORE_FORMAT_VERSION, Store};

const STORE_EXIT: i32 = 4;

#[test]
fn a_store_of_another_format_stops_the_node_with_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Fixture::new().genesis;
    let home = common::init_home(dir.path(), &genesis);

    // A store of this chain, then marked as written before format versions were recorded.
    let store_dir = home.join("data").join("store");
    drop(Store::create(&store_dir, &genesis).unwrap());
    let backend = Engine::Redb.open(&store_dir, Durability::Synced).unwrap();
    backend.write(vec![(b"Mformat".to_vec(), None)]).unwrap();
    drop(backend);

    let (status, stderr) = common::run_until_exit(&home);
    assert_eq!(status.code(), Some(STORE_EXIT), "{stderr}");
    assert!(
        stderr.contains("format version 1")
            && stderr.contains(&format!("format version {STORE_FORMAT_VERSION}")),
        "{stderr}"
    );
}
