//! A proof document a verifier is handed (`hutong_verify::verify_json`: a licence bundle, a
//! transaction proof or a checkpoint, by its `format`), checked against the genesis of the
//! proof vectors. Each document type that decodes decodes again from its own JSON to the same
//! value; nothing panics, however the document is damaged.
#![no_main]

use std::sync::OnceLock;

use hutong_core::genesis::Genesis;
use hutong_fuzz::heap;
use hutong_verify::{
    CheckpointDocument, PROOF_DOCUMENT_BYTES_MAX, ProofBundle, TransactionProof, VerifyOptions,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The genesis the vectors' documents were made for.
fn genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(|| {
        Genesis::from_json(include_bytes!("../../verify/tests/vectors/genesis.json"))
            .expect("the vectors' genesis reads")
    })
}

fn round_trips<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(document) = serde_json::from_slice::<T>(data) {
        let json = serde_json::to_vec(&document).expect("a decoded document serialises");
        let again: T = serde_json::from_slice(&json).expect("its own JSON reads");
        assert_eq!(again, document);
    }
}

fuzz_target!(|data: &[u8]| {
    let genesis = genesis();
    let verified = heap::bounded(data, |bytes| {
        hutong_verify::verify_json(bytes, genesis, &VerifyOptions::historical())
    });
    if verified.is_ok() {
        assert!(data.len() <= PROOF_DOCUMENT_BYTES_MAX);
    }
    round_trips::<ProofBundle>(data);
    round_trips::<TransactionProof>(data);
    round_trips::<CheckpointDocument>(data);
});
