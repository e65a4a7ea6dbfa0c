//! The conformance vectors of `docs/vectors/` (docs/proofs.md section 10): every honest vector
//! verifies and gives what its file records, and every tampered one is refused with the error
//! code its file records. The files are written by `HUTONG_WRITE_VECTORS=1 cargo test -p
//! hutong-api --test offline`; this test reads them as a verifier written elsewhere would,
//! with the genesis file beside them and nothing else.

use std::path::{Path, PathBuf};

use hutong_core::genesis::Genesis;
use hutong_core::ident::RegionCode;
use hutong_core::records::{Licence, Record};
use hutong_core::verdict::VerdictRecords;
use hutong_verify::qr::QrPayload;
use hutong_verify::{CheckpointDocument, VerifyOptions};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The options a vector records (`historical`, `region`, `at`).
fn options_of(vector: &Value) -> Result<VerifyOptions, String> {
    let options = &vector["options"];
    let region = match options["region"].as_str() {
        Some(text) => Some(RegionCode::parse(text).map_err(|error| error.to_string())?),
        None => None,
    };
    Ok(VerifyOptions {
        at: options["at"].as_u64(),
        region,
        historical: options["historical"].as_bool().unwrap_or(true),
        ..VerifyOptions::default()
    })
}

/// What checking one vector gave: `Ok(value)` for what verified, `Err(code)` for a refusal.
fn outcome(vector: &Value, genesis: &Genesis) -> Result<Result<Value, String>, String> {
    match vector["kind"].as_str() {
        Some("licence-bundle" | "history" | "transaction-proof" | "checkpoint") => {
            let document = serde_json::to_vec(&vector["document"]).map_err(|e| e.to_string())?;
            Ok(
                hutong_verify::verify_json(&document, genesis, &options_of(vector)?)
                    .map(|verified| to_json(&verified))
                    .map_err(|error| error.code()),
            )
        }
        Some("consistency") => Ok(consistency(&vector["document"], genesis)),
        Some("qr") => {
            let text = vector["text"].as_str().ok_or("a QR vector has a text")?;
            Ok(QrPayload::from_text(text)
                .and_then(|payload| payload.verify_with_genesis(genesis))
                .map(|verified| to_json(&verified))
                .map_err(|error| error.code().to_owned()))
        }
        Some("verdict") => {
            let licence: Licence =
                serde_json::from_value(vector["licence"].clone()).map_err(|e| e.to_string())?;
            let records: Vec<Record> =
                serde_json::from_value(vector["records"].clone()).map_err(|e| e.to_string())?;
            let region = match vector["region"].as_str() {
                Some(text) => Some(RegionCode::parse(text).map_err(|error| error.to_string())?),
                None => None,
            };
            let at = vector["at"].as_u64().ok_or("a verdict vector has a time")?;
            let verdict = VerdictRecords::collect(&licence, region.as_ref(), records)
                .verdict(&licence, region.as_ref(), at)
                .ok_or("the records hold no issuer")?;
            Ok(Ok(to_json(&verdict)))
        }
        Some("encoding") => Ok(Ok(encoding(vector)?)),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// An encoding vector: the value re-encoded canonically and hashed, as a verifier does with
/// what it reads. Gives the vector with what was computed in place of what it records.
fn encoding(vector: &Value) -> Result<Value, String> {
    use hutong_core::codec::to_canonical;
    let suite = hutong_core::suite::Suite::Ed25519Blake3;
    let value = vector["value"].clone();
    let parse = |error: serde_json::Error| error.to_string();
    let mut computed = vector.clone();
    match vector["type"].as_str() {
        Some("Genesis") => {
            let genesis: Genesis = serde_json::from_value(value).map_err(parse)?;
            computed["canonical_hex"] = Value::String(to_hex(&to_canonical(&genesis)));
            computed["hash"] = Value::String(genesis.hash().to_hex());
        }
        Some("BlockHeader") => {
            let header: hutong_core::block::BlockHeader =
                serde_json::from_value(value).map_err(parse)?;
            computed["canonical_hex"] = Value::String(to_hex(&to_canonical(&header)));
            computed["hash"] = Value::String(header.hash(suite).to_hex());
        }
        Some("Record") => {
            let record: Record = serde_json::from_value(value).map_err(parse)?;
            computed["canonical_hex"] = Value::String(to_hex(&record.to_bytes()));
            computed["hash"] = Value::String(record.state_hash(suite).to_hex());
            computed["key_position"] = Value::String(record.key().state_hash(suite).to_hex());
        }
        other => return Err(format!("no encoding vector of type {other:?}")),
    }
    Ok(computed)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A consistency vector: two checkpoint documents, each verified, and the consistency answer
/// between their logs, whose sizes and roots must be theirs.
fn consistency(document: &Value, genesis: &Genesis) -> Result<Value, String> {
    let checkpoint = |value: &Value| -> Result<hutong_verify::VerifiedCheckpoint, String> {
        let document: CheckpointDocument =
            serde_json::from_value(value.clone()).map_err(|error| error.to_string())?;
        hutong_verify::verify_checkpoint(&document.checkpoint, genesis)
            .map_err(|error| error.code())
    };
    let first = checkpoint(&document["first_checkpoint"])?;
    let second = checkpoint(&document["second_checkpoint"])?;
    let answer = &document["consistency"];
    let proof: hutong_core::log::ConsistencyProof =
        serde_json::from_value(answer["proof"].clone()).map_err(|error| error.to_string())?;
    if (proof.first_size, proof.second_size) != (first.log_size, second.log_size) {
        return Err("sizes-not-the-checkpoints".into());
    }
    let roots = (
        answer["first_root"].as_str().unwrap_or_default(),
        answer["second_root"].as_str().unwrap_or_default(),
    );
    if roots
        != (
            first.log_root.to_hex().as_str(),
            second.log_root.to_hex().as_str(),
        )
    {
        return Err("roots-not-the-checkpoints".into());
    }
    hutong_verify::verify_log_consistency(genesis.suite, &proof, &first.log_root, &second.log_root)
        .map_err(|error| error.code())?;
    Ok(serde_json::json!({ "consistent": true }))
}

/// Checks one vector: an honest one (with `expected`) must verify and give exactly that; a
/// tampered one (with `error`) must be refused with exactly that code.
fn check(vector: &Value, genesis: &Genesis) -> Result<(), String> {
    let outcome = outcome(vector, genesis)?;
    if vector["kind"] == "encoding" {
        return match outcome {
            Ok(computed) if computed == *vector => Ok(()),
            Ok(computed) => Err(format!("encodes otherwise: {computed}")),
            Err(code) => Err(code),
        };
    }
    match (&vector["expected"], vector["error"].as_str(), outcome) {
        (expected, None, Ok(found)) if !expected.is_null() => {
            if *expected == found {
                Ok(())
            } else {
                Err(format!(
                    "verified, but not as recorded: expected {expected}, found {found}"
                ))
            }
        }
        (_, None, Err(code)) => Err(format!("an honest vector is refused ({code})")),
        (_, Some(expected), Err(code)) if code == expected => Ok(()),
        (_, Some(expected), Err(code)) => {
            Err(format!("refused with {code}, the file records {expected}"))
        }
        (_, Some(expected), Ok(_)) => {
            Err(format!("a tampered vector verifies (expected {expected})"))
        }
        (_, None, Ok(_)) => Err("the vector records neither expected nor error".into()),
    }
}

/// Every vector file of the folder but the genesis file, by name.
fn vector_files() -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .filter(|path| path.file_name().is_some_and(|name| name != "genesis.json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, read_json(&path))
        })
        .collect();
    files.sort_by(|first, second| first.0.cmp(&second.0));
    files
}

fn genesis() -> Genesis {
    let bytes = std::fs::read(vectors_dir().join("genesis.json")).unwrap();
    Genesis::from_json(&bytes).unwrap()
}

#[test]
fn every_vector_verifies_or_is_refused_as_its_file_records() {
    let genesis = genesis();
    let files = vector_files();
    let mut failures = Vec::new();
    for (name, vector) in &files {
        // The name says which it is: `<kind>.honest.<case>.json` or `<kind>.tampered.<case>.json`.
        let tampered = name.contains(".tampered.");
        assert_eq!(
            tampered,
            vector.get("error").is_some(),
            "{name}: a tampered vector records an error code, an honest one does not"
        );
        if let Err(failure) = check(vector, &genesis) {
            failures.push(format!("{name}: {failure}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kind of document the spec names has honest and tampered vectors (verdicts are
    // honest only: a verdict is computed, not proved).
    for prefix in [
        "bundle",
        "absence",
        "history",
        "transaction-proof",
        "checkpoint",
        "consistency",
        "qr",
    ] {
        for half in ["honest", "tampered"] {
            assert!(
                files
                    .iter()
                    .any(|(name, _)| name.starts_with(&format!("{prefix}.{half}"))),
                "no {prefix}.{half} vector"
            );
        }
    }
    assert!(
        files
            .iter()
            .any(|(name, _)| name.starts_with("verdict.honest."))
    );
}

/// The check catches a vector that records the wrong outcome: a tampered vector with another
/// error code, a tampered vector marked honest, and an honest one whose expected answer was
/// changed.
#[test]
fn a_vector_recording_the_wrong_outcome_is_caught() {
    let genesis = genesis();
    let files = vector_files();
    let find = |name: &str| {
        files
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, vector)| vector.clone())
            .unwrap_or_else(|| panic!("{name} is among the vectors"))
    };
    let mut wrong_code = find("history.tampered.event-zh-relabelled.json");
    assert_eq!(check(&wrong_code, &genesis), Ok(()));
    wrong_code["error"] = Value::String("history-step-mismatch".into());
    assert!(check(&wrong_code, &genesis).is_err());

    let mut said_honest = find("bundle.tampered.licence-status-changed.json");
    let expected = said_honest["error"].take();
    said_honest.as_object_mut().unwrap().remove("error");
    said_honest["expected"] = expected;
    assert!(check(&said_honest, &genesis).is_err());

    let mut wrong_verdict = find("verdict.honest.revoked.json");
    assert_eq!(check(&wrong_verdict, &genesis), Ok(()));
    wrong_verdict["expected"]["status"] = Value::String("active".into());
    assert!(check(&wrong_verdict, &genesis).is_err());

    let mut wrong_reason = find("verdict.honest.recognised.json");
    let reasons = wrong_reason["expected"]["reasons"].as_array_mut().unwrap();
    let last = reasons.len() - 1;
    reasons[last]["detail_zh"] = Value::String("正常".into());
    assert!(check(&wrong_reason, &genesis).is_err());

    let mut wrong_bytes = find("encoding.honest.header.json");
    assert_eq!(check(&wrong_bytes, &genesis), Ok(()));
    let hex = wrong_bytes["canonical_hex"]
        .as_str()
        .unwrap()
        .replacen("01", "02", 1);
    wrong_bytes["canonical_hex"] = Value::String(hex);
    assert!(check(&wrong_bytes, &genesis).is_err());

    let mut wrong_qr = find("qr.tampered.signature-flipped.json");
    wrong_qr["error"] = Value::String("truncated".into());
    assert!(check(&wrong_qr, &genesis).is_err());
}

/// What verified, as JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
