//! A signed transaction's canonical bytes, as the API, the gossip and the blocks carry them
//! (`hutong_core::tx::Transaction::decode`): whatever decodes is exactly its own encoding,
//! within the size limit, and decodes again to the same value.
#![no_main]

use hutong_core::limits::TX_BYTES_MAX;
use hutong_core::tx::Transaction;
use hutong_fuzz::heap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(transaction) = heap::bounded(data, Transaction::decode) else {
        return;
    };
    assert!(data.len() <= TX_BYTES_MAX);
    let encoded = transaction.encode();
    assert_eq!(
        encoded.bytes(),
        data,
        "a decoded transaction re-encodes to other bytes"
    );
    assert!(data.starts_with(encoded.payload_bytes()));
    assert_eq!(transaction.to_bytes(), data);
    assert_eq!(
        Transaction::decode(&transaction.to_bytes()).ok(),
        Some(transaction)
    );
});
