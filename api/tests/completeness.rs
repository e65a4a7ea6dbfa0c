//! Bundles prove whole sets (ADR 0039): a region's recognitions of a type, a licence's open
//! objections, a holder's licences. A recognizer that crowds a region's set with attestations
//! that are never in force changes nothing for the real recognition, and a bundle with any
//! input left out is refused, whatever the node that built it wanted the verdict to say.

mod common;

use axum::http::StatusCode;
use hutong_api::testkit::{DemoChain, demo_chain, drop_records};
use hutong_core::ident::RegionCode;
use hutong_core::limits;
use hutong_core::records::{IssuedBy, Record, RecordKey};
use hutong_core::suite::Suite;
use hutong_core::testkit::{DAY_MS, GENESIS_TIME, region};
use hutong_core::tx::TxBody;
use hutong_verify::{ProofBundle, ProvedRecord, VerifyOptions};
use serde_json::Value;

async fn get(chain: &DemoChain, uri: &str) -> (StatusCode, Vec<u8>) {
    let (status, _, body) = common::get_at_head(chain, uri, None).await;
    (status, body)
}

async fn bundle(chain: &DemoChain, number: &str, region: Option<&str>) -> ProofBundle {
    let uri = match region {
        Some(region) => format!("/v1/licences/business-licence/{number}/proof?region={region}"),
        None => format!("/v1/licences/business-licence/{number}/proof"),
    };
    let (status, body) = get(chain, &uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    serde_json::from_slice(&body).unwrap()
}

/// Verified now (by the bundle's own clock), for the region the bundle was asked for.
fn verify(
    chain: &DemoChain,
    bundle: &ProofBundle,
) -> Result<hutong_verify::VerifiedLicence, hutong_verify::BundleError> {
    hutong_verify::verify_bundle_with(
        bundle,
        &chain.fixture.genesis,
        &VerifyOptions {
            now: Some(bundle.checkpoint.header.time),
            ..VerifyOptions::default()
        },
    )
}

fn code(result: Result<hutong_verify::VerifiedLicence, hutong_verify::BundleError>) -> String {
    match result {
        Ok(_) => "verified".into(),
        Err(error) => error.code(),
    }
}

/// Attestations by Xinjiang's recognizer of Shandong business licences for use in Xinjiang
/// that only start in sixty days, with the same scope as the real one: none is in force when
/// the verdict is asked.
fn junk(chain: &mut DemoChain, count: usize) -> Vec<hutong_core::tx::Transaction> {
    (0..count)
        .map(|n| {
            chain.fixture.tx(
                "xj-recognizer",
                TxBody::AttestRecognition {
                    recognizing_region: region("650000"),
                    type_codes: vec!["business-licence".into()],
                    issued_by: IssuedBy::Region(region("370000")),
                    scope: format!("政务服务 government services {n}"),
                    valid_from: GENESIS_TIME + 60 * DAY_MS,
                    valid_until: None,
                },
            )
        })
        .collect()
}

/// What a node lying by omission does: proves the bundle again without `key`'s record.
fn remove(bundle: &mut ProofBundle, key: &RecordKey) {
    let removed = drop_records(
        Suite::Ed25519Blake3,
        bundle.checkpoint.header.state_root,
        &mut bundle.records,
        &mut bundle.state_proof,
        |proved| proved == key,
    )
    .unwrap();
    assert_eq!(removed, 1, "one proof of {key:?}");
}

#[tokio::test]
async fn junk_recognitions_change_nothing_for_the_real_one() {
    let mut chain = demo_chain(3);
    let number = chain.facts.qingdao_numbers[0].to_string();
    let real = chain.facts.recognition;
    // The recognizer's share of the set holds the real recognition and as much junk as fits.
    let crowd = junk(
        &mut chain,
        limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX - 1,
    );
    chain.commit(crowd);
    let set_key = RecordKey::RecognitionSet(region("650000"), "business-licence".into());
    let Some(Record::RecognitionSet(set)) = chain.store.record(&set_key).unwrap() else {
        panic!("no recognition set");
    };
    assert_eq!(
        set.entries.len(),
        limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX
    );

    let bundle = bundle(&chain, &number, Some("650100")).await;
    assert_eq!(bundle.region, Some(region("650100")));
    let verified = verify(&chain, &bundle).unwrap();
    let verdict = verified.verdict.unwrap();
    assert_eq!(verdict.valid_in_region, Some(true), "{:?}", verdict.reasons);
    assert_eq!(verdict.recognition, Some(real));
    // Every recognition of the set is proved, the real one among them.
    let recognitions = bundle
        .records
        .iter()
        .filter(|proved| matches!(proved.key(), RecordKey::Recognition(_)))
        .count();
    assert_eq!(recognitions, limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX);

    // The node's own answer agrees.
    let (status, body) = get(
        &chain,
        &format!("/v1/licences/business-licence/{number}/verification?region=650100"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["valid_in_region"], Value::Bool(true), "{answer}");

    // A bundle without the real recognition, or without the set that lists it, is refused:
    // a node cannot make the licence look unusable by leaving it out.
    let mut hidden = bundle.clone();
    remove(&mut hidden, &RecordKey::Recognition(real));
    assert_eq!(code(verify(&chain, &hidden)), "incomplete-recognitions");
    let mut no_set = bundle.clone();
    remove(&mut no_set, &set_key);
    assert_eq!(code(verify(&chain, &no_set)), "incomplete-recognitions");
    // Nor can it answer for another region than the one its sets are proved for, even a
    // neighbouring city whose own set it does not prove.
    let mut elsewhere = bundle.clone();
    for other in ["650200", "440300"] {
        elsewhere.region = Some(region(other));
        assert_eq!(
            code(verify(&chain, &elsewhere)),
            "incomplete-recognitions",
            "{other}"
        );
    }
    let asked_elsewhere = hutong_verify::verify_bundle_with(
        &bundle,
        &chain.fixture.genesis,
        &VerifyOptions {
            now: Some(bundle.checkpoint.header.time),
            region: Some(RegionCode::parse("440300").unwrap()),
            ..VerifyOptions::default()
        },
    );
    assert_eq!(code(asked_elsewhere), "incomplete-recognitions");

    // A bundle for a region in the licence's own province needs no recognition and proves
    // none; one for no region neither.
    for asked in [Some("370800"), None] {
        let plain = self::bundle(&chain, &number, asked).await;
        assert!(
            plain.records.iter().all(|proved| !matches!(
                proved.key(),
                RecordKey::Recognition(_) | RecordKey::RecognitionSet(..)
            )),
            "{asked:?}"
        );
        assert_eq!(code(verify(&chain, &plain)), "verified");
    }
}

#[tokio::test]
async fn a_set_full_of_junk_refuses_more_and_the_state_stays_as_it_was() {
    let mut chain = demo_chain(3);
    let crowd = junk(
        &mut chain,
        limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX - 1,
    );
    chain.commit(crowd);
    let time = chain.store.head().unwrap().header.time + 1000;
    let proposer = chain.fixture.node_keys[0].public_key();
    let empty = chain
        .store
        .execute(
            time,
            proposer,
            Vec::new(),
            hutong_ledger::store::Mode::Build,
        )
        .unwrap();
    let one_more = junk(&mut chain, 1);
    let execution = chain
        .store
        .execute(time, proposer, one_more, hutong_ledger::store::Mode::Build)
        .unwrap();
    assert!(execution.transactions.is_empty());
    assert_eq!(execution.rejected.len(), 1);
    assert_eq!(execution.rejected[0].1.code(), "recognition_share_full");
    assert_eq!(execution.header.state_root, empty.header.state_root);
}

#[tokio::test]
async fn a_bundle_without_an_open_objection_is_refused() {
    let chain = demo_chain(3);
    let disputed = chain.facts.disputed.to_string();
    let bundle = bundle(&chain, &disputed, None).await;
    let verified = verify(&chain, &bundle).unwrap();
    assert_eq!(
        verified.verdict.unwrap().open_objections,
        vec![chain.facts.objection]
    );
    let mut hidden = bundle.clone();
    remove(&mut hidden, &RecordKey::Objection(chain.facts.objection));
    assert_eq!(code(verify(&chain, &hidden)), "incomplete-objections");
}

#[tokio::test]
async fn a_holder_proof_shows_the_whole_list_and_refuses_one_cut_short() {
    let chain = demo_chain(3);
    let number = chain.facts.qingdao_numbers[0].clone();
    let Some(licence) = chain
        .store
        .licence(&"business-licence".into(), &number)
        .unwrap()
    else {
        panic!("no licence");
    };
    let holder = licence.holder.to_text();
    let (status, body) = get(&chain, &format!("/v1/holders/{holder}/licences/proof")).await;
    assert_eq!(status, StatusCode::OK);
    let document = body.clone();
    let proof: hutong_verify::HolderProof = serde_json::from_slice(&body).unwrap();
    let options = VerifyOptions {
        now: Some(proof.checkpoint.header.time),
        ..VerifyOptions::default()
    };
    let verified =
        hutong_verify::verify_holder_proof(&proof, &chain.fixture.genesis, &options).unwrap();
    assert_eq!(verified.licences, vec![licence.clone()]);
    assert!(matches!(
        hutong_verify::verify_json(&document, &chain.fixture.genesis, &options),
        Ok(hutong_verify::Verified::Holder(_))
    ));

    let holder_code = |proof: &hutong_verify::HolderProof| match hutong_verify::verify_holder_proof(
        proof,
        &chain.fixture.genesis,
        &options,
    ) {
        Ok(_) => "verified".to_owned(),
        Err(error) => error.code(),
    };
    // A licence of the list left out.
    let mut cut = proof.clone();
    let mut index = 0;
    drop_records(
        Suite::Ed25519Blake3,
        cut.checkpoint.header.state_root,
        &mut cut.records,
        &mut cut.state_proof,
        |_| {
            index += 1;
            index > 1
        },
    )
    .unwrap();
    assert_eq!(cut.records.len(), 1);
    assert_eq!(holder_code(&cut), "incomplete-holder-list");
    // The list itself shortened: its hash is no longer the one under the state root.
    let mut shortened = proof.clone();
    if let ProvedRecord::Present(Record::HolderLicences(list)) = &mut shortened.records[0] {
        list.licences.clear();
    }
    assert_eq!(holder_code(&shortened), "state-proof/root-mismatch");
    // The list shown as absent.
    let mut absent = proof.clone();
    absent.records[0] = ProvedRecord::Absent(absent.records[0].key());
    assert_eq!(holder_code(&absent), "record-proof/key-present");
    // Another holder's name on the document.
    let mut renamed = proof.clone();
    renamed.holder = hutong_core::records::Holder::Person(chain.facts.person);
    assert_eq!(holder_code(&renamed), "missing-holder-list");

    // A holder with no licence: the proof shows that its list is absent.
    let (status, body) = get(&chain, "/v1/holders/91370200MA99999990/licences/proof").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let none: hutong_verify::HolderProof = serde_json::from_slice(&body).unwrap();
    let verified =
        hutong_verify::verify_holder_proof(&none, &chain.fixture.genesis, &options).unwrap();
    assert!(verified.licences.is_empty());
}
