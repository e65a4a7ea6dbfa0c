//! The signing state file a validator reads at start (`node/src/signing_state.rs`): within
//! its size limit, and what decodes decodes again from its own encoding to the same value.
#![no_main]

use hutong_fuzz::heap;
use hutong_fuzz::limits::SIGNING_STATE_BYTES_MAX;
use hutong_fuzz::signing_state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = heap::bounded(data, signing_state::decode) else {
        return;
    };
    assert!(data.len() <= SIGNING_STATE_BYTES_MAX);
    let encoded = signing_state::encode(&state);
    assert_eq!(signing_state::decode(&encoded).ok(), Some(state));
});
