//! The binary form of the proof documents: asked for with `Accept`, it decodes to the same
//! document as the JSON, verifies to the same answer, and refuses any byte changed, added or
//! taken away.

mod common;

use axum::http::StatusCode;
use hutong_api::testkit::{DemoChain, demo_chain};
use hutong_verify::binary::{BINARY_MAGIC, BINARY_MEDIA_TYPE, Document, verify_document};
use hutong_verify::{ProofBundle, VerifyOptions};
use serde_json::Value;

async fn get(chain: &DemoChain, uri: &str, binary: bool) -> (StatusCode, String, Vec<u8>) {
    let accept = format!("text/html, {BINARY_MEDIA_TYPE};q=0.9");
    common::get_at_head(chain, uri, binary.then_some(accept.as_str())).await
}

fn options(time: u64) -> VerifyOptions {
    VerifyOptions {
        now: Some(time),
        ..VerifyOptions::default()
    }
}

#[tokio::test]
async fn every_document_reads_the_same_in_both_forms() {
    let chain = demo_chain(3);
    let number = &chain.facts.qingdao_numbers[0];
    let licence = chain
        .store
        .licence(&"business-licence".into(), number)
        .unwrap()
        .unwrap();
    let holder = licence.holder.to_text();
    let issuance = licence.events[0].tx;
    let uris = [
        format!("/v1/licences/business-licence/{number}/proof?region=650100"),
        "/v1/licences/business-licence/91370200MA99999990/proof".to_owned(),
        format!("/v1/holders/{holder}/licences/proof"),
        format!("/v1/transactions/{issuance}"),
        "/v1/log/checkpoint".to_owned(),
    ];
    let time = chain.store.head().unwrap().header.time;
    for uri in uris {
        let (status, content_type, binary) = get(&chain, &uri, true).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(content_type, BINARY_MEDIA_TYPE, "{uri}");
        assert!(binary.starts_with(&BINARY_MAGIC), "{uri}");
        let (_, json_type, json) = get(&chain, &uri, false).await;
        assert!(json_type.starts_with("application/json"), "{uri}");
        let document = Document::from_binary(&binary).unwrap();
        // The same document: the JSON form of the one decoded from binary is the JSON served
        // (for a transaction, the proof inside the status).
        let served: Value = serde_json::from_slice(&json).unwrap();
        let served = if uri.starts_with("/v1/transactions/") {
            served["proof"].clone()
        } else {
            served
        };
        let decoded = match &document {
            Document::Bundle(bundle) => serde_json::to_value(bundle),
            Document::TransactionProof(proof) => serde_json::to_value(proof),
            Document::Checkpoint(checkpoint) => serde_json::to_value(checkpoint),
            Document::Holder(proof) => serde_json::to_value(proof),
        }
        .unwrap();
        assert_eq!(decoded, served, "{uri}");
        assert_eq!(document.to_binary(), binary, "{uri}: one encoding");
        assert!(
            binary.len() * 2 < json.len(),
            "{uri}: {} bytes binary, {} JSON",
            binary.len(),
            json.len()
        );
        let from_binary = verify_document(&binary, &chain.fixture.genesis, &options(time));
        let from_json = verify_document(
            &serde_json::to_vec(&served).unwrap(),
            &chain.fixture.genesis,
            &options(time),
        );
        assert!(from_binary.is_ok(), "{uri}: {from_binary:?}");
        assert_eq!(
            format!("{from_binary:?}"),
            format!("{from_json:?}"),
            "{uri}"
        );

        // A byte added, a byte taken away, the magic changed: refused before verification.
        let mut longer = binary.clone();
        longer.push(0);
        assert_eq!(
            verify_document(&longer, &chain.fixture.genesis, &options(time))
                .unwrap_err()
                .code(),
            "binary",
            "{uri}"
        );
        let shorter = &binary[..binary.len() - 1];
        assert_eq!(
            verify_document(shorter, &chain.fixture.genesis, &options(time))
                .unwrap_err()
                .code(),
            "binary",
            "{uri}"
        );
        assert!(Document::from_binary(&binary[1..]).is_err(), "{uri}");
    }
}

/// Every single-byte change of a bundle's binary form is refused, but a change of the region
/// the bundle was asked for to another whose recognition sets it proves whole (a region is
/// the question, not part of the answer: the verdict is then the right one for it).
#[tokio::test]
async fn a_changed_byte_of_a_binary_bundle_is_refused() {
    let chain = demo_chain(3);
    let number = &chain.facts.qingdao_numbers[0];
    let (_, _, binary) = get(
        &chain,
        &format!("/v1/licences/business-licence/{number}/proof?region=650100"),
        true,
    )
    .await;
    let time = chain.store.head().unwrap().header.time;
    let Ok(Document::Bundle(original)) = Document::from_binary(&binary) else {
        panic!("a bundle");
    };
    let mut tried = 0;
    for index in (BINARY_MAGIC.len()..binary.len()).step_by(7) {
        tried += 1;
        let mut changed = binary.clone();
        changed[index] ^= 0x01;
        if verify_document(&changed, &chain.fixture.genesis, &options(time)).is_ok() {
            let Ok(Document::Bundle(bundle)) = Document::from_binary(&changed) else {
                panic!("a bundle");
            };
            let question_only = ProofBundle {
                region: original.region.clone(),
                ..bundle.clone()
            };
            assert_eq!(
                question_only, original,
                "byte {index} changed more than the region"
            );
            let region = bundle.region.clone().expect("a region");
            assert!(
                region.covers(original.region.as_ref().expect("a region")),
                "byte {index}: {region}"
            );
        }
    }
    assert!(tried > 500, "{tried} bytes tried");
}

/// A document of the binary form's first version (a proof per record) is refused by name, by
/// the library and by the JSON-or-binary reader alike, not read as JSON.
#[tokio::test]
async fn a_document_of_the_first_binary_version_is_refused_by_name() {
    let chain = demo_chain(3);
    let number = &chain.facts.qingdao_numbers[0];
    let (_, _, binary) = get(
        &chain,
        &format!("/v1/licences/business-licence/{number}/proof"),
        true,
    )
    .await;
    assert!(binary.starts_with(b"HTB\x02"));
    let mut first_version = binary.clone();
    first_version[3] = 0x01;
    let time = chain.store.head().unwrap().header.time;
    let error = verify_document(&first_version, &chain.fixture.genesis, &options(time))
        .expect_err("refused");
    assert_eq!(error.code(), "binary");
    assert!(error.to_string().contains("first version"), "{error}");
}
