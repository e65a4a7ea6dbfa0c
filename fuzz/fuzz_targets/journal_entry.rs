//! A store journal entry read back at opening (`ledger/src/store/journal.rs`): what decodes
//! is exactly its own encoding (the format has one spelling per batch), and decoding takes
//! memory in proportion to the entry, never to the counts it claims.
#![no_main]

use hutong_fuzz::heap;
use hutong_ledger::store::{decode_entry_for_fuzzing, encode_entry_for_fuzzing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = heap::bounded(data, decode_entry_for_fuzzing) else {
        return;
    };
    let encoded = encode_entry_for_fuzzing(&batch).expect("a decoded batch encodes");
    assert_eq!(
        encoded, data,
        "a decoded journal entry re-encodes to other bytes"
    );
});
