//! Whatever a client sends, the decoders and verifiers answer with an error and never panic:
//! random bytes and texts for QR payloads, and bundles with random bytes changed.

use std::sync::OnceLock;

use hutong_core::genesis::Genesis;
use hutong_verify::qr::QrPayload;
use hutong_verify::{self, VerifyOptions, base32};
use proptest::prelude::*;

/// The valid bundle of the vectors and their genesis file.
fn vectors() -> &'static (Vec<u8>, Genesis, String) {
    static VECTORS: OnceLock<(Vec<u8>, Genesis, String)> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verify/tests/vectors/proofs.json"
        );
        let vectors: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let genesis = serde_json::from_value(vectors["genesis"].clone()).unwrap();
        let bundle = serde_json::to_vec(&vectors["valid"][0]["bundle"]).unwrap();
        let qr = vectors["qr"]["valid"]["text"].as_str().unwrap().to_owned();
        (bundle, genesis, qr)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn qr_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = QrPayload::from_bytes(&bytes);
        let _ = QrPayload::from_text(&format!("HT1:{}", base32::encode(&bytes)));
    }

    #[test]
    fn qr_texts_never_panic(text in "\\PC{0,300}") {
        let _ = QrPayload::from_text(&text);
    }

    #[test]
    fn changed_qr_payload_is_refused(position in 4usize..500, replacement in "[A-Z2-7]") {
        let (_, genesis, qr) = vectors();
        let position = position.min(qr.len() - 1);
        let mut text = qr.clone();
        text.replace_range(position..position + 1, &replacement);
        let outcome = QrPayload::from_text(&text).and_then(|payload| payload.verify_with_genesis(genesis));
        if let Ok(mut verified) = outcome {
            // Only the issued height is outside the signature (it selects the issuer's key):
            // whatever else verifies is exactly what the issuer signed.
            let original = QrPayload::from_text(qr).unwrap().verify_with_genesis(genesis).unwrap();
            verified.issued_height = original.issued_height;
            prop_assert_eq!(verified, original);
        }
    }

    #[test]
    fn changed_bundle_bytes_never_panic_and_rarely_verify(
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
    ) {
        let (bundle, genesis, _) = vectors();
        let mut document = bundle.clone();
        for (index, byte) in &changes {
            let position = index.index(document.len());
            document[position] = *byte;
        }
        if let Ok(hutong_verify::Verified::Licence(verified)) =
            hutong_verify::verify_json(&document, genesis, &VerifyOptions::historical())
        {
            // Only changes that leave every hashed value as it was (white space, the order
            // or spelling of JSON that decodes to the same values) may still verify.
            let original = hutong_verify::verify_json(bundle, genesis, &VerifyOptions::historical()).unwrap();
            prop_assert_eq!(hutong_verify::Verified::Licence(verified), original);
        }
    }
}
