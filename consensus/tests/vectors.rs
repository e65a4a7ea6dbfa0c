//! Test vectors that pin the sign bytes and certificate verification, for other
//! implementations (an auditor's verifier, a light client) to check themselves against:
//! `consensus/tests/vectors/sign_bytes.json` and `consensus/tests/vectors/certificates.json`.
//!
//! The files are checked here; `HUTONG_WRITE_VECTORS=1` rewrites them (only when the format
//! changes on purpose, which also needs a new domain tag).

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hutong_consensus::{
    CertificateError, CommitCertificate, CommitSignature, Signature, SignatureVerifier, Validator,
    ValidatorId, ValidatorSet, VoteType, proposal_sign_bytes, verify_commit_certificate,
    vote_sign_bytes,
};
use serde_json::{Value as Json, json};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn check_or_write(name: &str, computed: &Json) {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(computed).unwrap() + "\n";
    if std::env::var("HUTONG_WRITE_VECTORS").is_ok_and(|value| value == "1") {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let stored: Json = serde_json::from_str(&stored).unwrap();
    assert_eq!(&stored, computed, "{path} no longer matches the code");
}

#[test]
fn sign_bytes_vectors() {
    let value = [0xabu8; 32];
    let mut cases = Vec::new();
    for (name, vote_type, voted) in [
        ("prevote-nil", VoteType::Prevote, None),
        ("prevote-value", VoteType::Prevote, Some(&value)),
        ("precommit-nil", VoteType::Precommit, None),
        ("precommit-value", VoteType::Precommit, Some(&value)),
    ] {
        let bytes = vote_sign_bytes("hutong-vectors", 42, 3, vote_type, voted);
        cases.push(json!({
            "name": name,
            "kind": "vote",
            "chain_id": "hutong-vectors",
            "height": 42,
            "round": 3,
            "vote_type": format!("{vote_type:?}").to_lowercase(),
            "value": voted.map(|value| hex(value)),
            "sign_bytes": hex(&bytes),
        }));
    }
    for (name, valid_round) in [
        ("proposal-without-valid-round", None),
        ("proposal-valid-round-1", Some(1)),
    ] {
        let bytes = proposal_sign_bytes("hutong-vectors", 42, 3, &value, valid_round);
        cases.push(json!({
            "name": name,
            "kind": "proposal",
            "chain_id": "hutong-vectors",
            "height": 42,
            "round": 3,
            "valid_round": valid_round,
            "value": hex(&value),
            "sign_bytes": hex(&bytes),
        }));
    }
    check_or_write("sign_bytes.json", &json!({ "cases": cases }));
}

struct Ed25519Verifier;

impl SignatureVerifier for Ed25519Verifier {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
        VerifyingKey::from_bytes(&id.0).is_ok_and(|key| {
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                .is_ok()
        })
    }
}

fn error_name(result: &Result<(), CertificateError>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(CertificateError::UnknownValidator { .. }) => "unknown-validator".to_string(),
        Err(CertificateError::DuplicateSigner { .. }) => "duplicate-signer".to_string(),
        Err(CertificateError::BadSignature { .. }) => "bad-signature".to_string(),
        Err(CertificateError::InsufficientPower { .. }) => "insufficient-power".to_string(),
        Err(CertificateError::ValueTooLarge { .. }) => "value-too-large".to_string(),
    }
}

#[test]
fn certificate_vectors() {
    // Five keys from fixed seeds; the first four are the validator set, the fifth a stranger.
    let keys: Vec<SigningKey> = (1..=5u8)
        .map(|seed| SigningKey::from_bytes(&[seed; 32]))
        .collect();
    let ids: Vec<ValidatorId> = keys
        .iter()
        .map(|key| ValidatorId(key.verifying_key().to_bytes()))
        .collect();
    let powers = [10u64, 20, 30, 40];
    let set = ValidatorSet::new(
        ids.iter()
            .zip(powers)
            .map(|(id, voting_power)| Validator {
                id: *id,
                voting_power,
            })
            .collect(),
    )
    .unwrap();
    let chain_id = "hutong-vectors";
    let sign = |certificate: &CommitCertificate<[u8; 32]>, signer: usize| CommitSignature {
        validator: ids[signer],
        signature: Signature(
            keys[signer]
                .sign(&certificate.sign_bytes(chain_id))
                .to_bytes(),
        ),
    };
    let base = CommitCertificate {
        height: 7,
        round: 1,
        value: [0x5au8; 32],
        signatures: vec![],
    };
    let good = CommitCertificate {
        signatures: vec![sign(&base, 1), sign(&base, 2), sign(&base, 3)],
        ..base.clone()
    };

    let mut cases: Vec<(&str, CommitCertificate<[u8; 32]>, &str)> =
        vec![("valid", good.clone(), chain_id)];
    let mut flipped = good.clone();
    flipped.signatures[0].signature.0[0] ^= 1;
    cases.push(("modified-signature[0]-bit", flipped, chain_id));
    let mut other_value = good.clone();
    other_value.value[31] ^= 1;
    cases.push(("modified-value", other_value, chain_id));
    cases.push(("other-chain-id", good.clone(), "hutong-other"));
    let mut duplicate = good.clone();
    duplicate.signatures.push(duplicate.signatures[0]);
    cases.push(("duplicate-signer", duplicate, chain_id));
    let mut stranger = good.clone();
    stranger.signatures.push(sign(&base, 4));
    cases.push(("unknown-signer", stranger, chain_id));
    let two_thirds_exactly = CommitCertificate {
        signatures: vec![sign(&base, 0), sign(&base, 1), sign(&base, 2)],
        ..base.clone()
    };
    cases.push(("insufficient-power-60-of-100", two_thirds_exactly, chain_id));
    let mut dropped = good.clone();
    dropped.signatures.truncate(2);
    cases.push(("dropped-signature", dropped, chain_id));

    let set_json: Vec<Json> = set
        .validators()
        .iter()
        .map(|validator| json!({ "id": hex(&validator.id.0), "voting_power": validator.voting_power }))
        .collect();
    let case_json: Vec<Json> = cases
        .iter()
        .map(|(name, certificate, chain)| {
            let result = verify_commit_certificate(certificate, &set, chain, &Ed25519Verifier);
            json!({
                "name": name,
                "chain_id": chain,
                "height": certificate.height,
                "round": certificate.round,
                "value": hex(&certificate.value),
                "sign_bytes": hex(&certificate.sign_bytes(chain)),
                "signatures": certificate.signatures.iter().map(|signature| json!({
                    "validator": hex(&signature.validator.0),
                    "signature": hex(&signature.signature.0),
                })).collect::<Vec<_>>(),
                "expected": error_name(&result),
            })
        })
        .collect();
    assert_eq!(case_json[0]["expected"], "ok");
    assert!(case_json[1..].iter().all(|case| case["expected"] != "ok"));
    check_or_write(
        "certificates.json",
        &json!({
            "validator_set": set_json,
            "validator_set_canonical_bytes": hex(&set.canonical_bytes()),
            "cases": case_json,
        }),
    );
}

/// `consensus/tests/vectors/proposer_priority.json`, computed by
/// `scripts/vectors/proposer_priority.py` (an implementation of CometBFT's proposer-priority
/// algorithm written from its publication, not from this crate): the selection powers, the
/// period and the proposers of the library must be the same.
#[test]
fn proposer_priority_vectors() {
    let path = format!(
        "{}/tests/vectors/proposer_priority.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let vectors: Json = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let powers: Vec<u64> = case["powers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|power| power.as_u64().unwrap())
            .collect();
        let set = ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(index, power)| Validator {
                    id: ValidatorId([index as u8 + 1; 32]),
                    voting_power: *power,
                })
                .collect(),
        )
        .unwrap();
        let expected_powers: Vec<u64> = case["selection_powers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|power| power.as_u64().unwrap())
            .collect();
        assert_eq!(set.proposer_powers(), expected_powers, "{name}");
        assert_eq!(
            set.proposer_schedule().len() as u64,
            case["period"].as_u64().unwrap(),
            "{name}"
        );
        let position = |height: u64, round: u32| {
            set.position(&set.proposer(height, round))
                .map(|position| position as u64)
        };
        for (step, expected) in case["first_steps"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                position(step as u64, 0),
                expected.as_u64(),
                "{name} step {step}"
            );
        }
        for lookup in case["lookups"].as_array().unwrap() {
            let height = lookup["height"].as_u64().unwrap();
            let round = u32::try_from(lookup["round"].as_u64().unwrap()).unwrap();
            assert_eq!(
                position(height, round),
                lookup["proposer"].as_u64(),
                "{name} height {height} round {round}"
            );
        }
    }
}
