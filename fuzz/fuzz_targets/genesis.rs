//! A genesis file (`hutong_core::genesis::Genesis::from_json`), which every node and verifier
//! reads: within its size limit, and what is accepted is accepted again from the JSON the
//! node writes for it, with the same hash (the chain's name).
#![no_main]

use hutong_core::genesis::Genesis;
use hutong_core::limits::GENESIS_BYTES_MAX;
use hutong_fuzz::heap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(genesis) = heap::bounded(data, Genesis::from_json) else {
        return;
    };
    assert!(data.len() <= GENESIS_BYTES_MAX);
    let again = Genesis::from_json(genesis.to_json().as_bytes()).expect("written genesis reads");
    assert_eq!(again.hash(), genesis.hash());
    assert_eq!(again, genesis);
});
