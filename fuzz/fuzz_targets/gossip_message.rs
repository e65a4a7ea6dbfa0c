//! What arrives on the gossip topics (`node/src/messages.rs`): consensus envelopes and
//! transaction batches, each decoded with the node's limit, then each batch's transactions as
//! the admission decodes them. The first byte picks the topic. Whatever decodes decodes again
//! from its own encoding to the same value.
#![no_main]

use hutong_core::tx::Transaction;
use hutong_fuzz::heap;
use hutong_fuzz::limits::{
    CONSENSUS_MESSAGE_BYTES_MAX, TRANSACTION_BATCH_BYTES_MAX, TRANSACTION_BATCH_COUNT_MAX,
};
use hutong_fuzz::messages::{self, ConsensusEnvelope, TransactionBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((topic, message)) = data.split_first() else {
        return;
    };
    if topic % 2 == 0 {
        let decoded = heap::bounded(message, |bytes| {
            messages::decode::<ConsensusEnvelope>(bytes, CONSENSUS_MESSAGE_BYTES_MAX)
        });
        if let Ok(envelope) = decoded {
            let again = messages::decode::<ConsensusEnvelope>(
                &messages::encode(&envelope),
                CONSENSUS_MESSAGE_BYTES_MAX,
            );
            assert_eq!(again.ok(), Some(envelope));
        }
    } else {
        let decoded = heap::bounded(message, |bytes| {
            messages::decode::<TransactionBatch>(bytes, TRANSACTION_BATCH_BYTES_MAX)
        });
        if let Ok(batch) = decoded {
            let again = messages::decode::<TransactionBatch>(
                &messages::encode(&batch),
                TRANSACTION_BATCH_BYTES_MAX,
            );
            assert_eq!(again.as_ref().ok(), Some(&batch));
            // The node drops a batch over the count before admitting any of it.
            for bytes in batch.transactions.iter().take(TRANSACTION_BATCH_COUNT_MAX) {
                if let Ok(transaction) = heap::bounded(bytes, Transaction::decode) {
                    assert_eq!(&transaction.to_bytes(), bytes);
                }
            }
        }
    }
});
