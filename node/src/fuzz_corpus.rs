//! The seed corpus of the fuzz targets (`fuzz/corpus/<target>/`, docs/fuzzing.md), made from
//! real data: the fixture chain's genesis and signed transactions, messages the node would send,
//! a store's journal entries, the proof vectors of `verify/tests/vectors`, and the file
//! `hutong init` writes. Written by
//!
//! ```sh
//! HUTONG_FUZZ_CORPUS=fuzz/corpus cargo test -p hutong-node --bin hutong -- --ignored write_fuzz_corpus
//! ```
//!
//! (a relative directory is taken from the node's crate directory, so `../fuzz/corpus` from the
//! repository's root is what the line above means; the test resolves it either way).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hutong_consensus::{
    Proposal, SignedMessage, SignedProposal, SignedVote, Signer, SigningState, Vote, VoteType,
};
use hutong_core::block::{Block, BlockHeader};
use hutong_core::hash::Hash32;
use hutong_core::testkit::Fixture;
use hutong_core::tx::{Transaction, TxBody};
use hutong_ledger::store::{Backend, JournalLimits, Journaled, MemoryBackend, Mode, Store};

use crate::config::Config;
use crate::messages::{
    self, CompactBlock, ConsensusEnvelope, ConsensusMessage, SyncRequest, SyncResponse,
    TransactionBatch, Value,
};

/// Seeds above this size are left out: libFuzzer mutates small inputs best, and the corpus is
/// committed.
const SEED_BYTES_MAX: usize = 64 * 1024;

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        if bytes.len() > SEED_BYTES_MAX {
            return;
        }
        let directory = self.root.join(target);
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join(name), bytes).unwrap();
    }
}

fn transactions(fixture: &mut Fixture) -> Vec<(String, Transaction)> {
    let mut transactions = Vec::new();
    for kind in crate::tx_examples::KINDS {
        let example = crate::tx_examples::example(kind).unwrap();
        let body: TxBody = serde_json::from_value(example).unwrap();
        let transaction = if crate::tx_examples::signer_of(kind).starts_with("a governor") {
            fixture.governance(body, 3)
        } else {
            fixture.tx("qd-market", body)
        };
        transactions.push((kind.to_owned(), transaction));
    }
    transactions
}

fn frame(side: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![side];
    bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn signed_vote(fixture: &Fixture, vote_type: VoteType, value: Option<Value>) -> SignedVote<Value> {
    let signer = fixture.suite().signer(fixture.node_keys[0].clone());
    let vote = Vote {
        vote_type,
        height: 1,
        round: 0,
        value,
        validator: signer.id(),
    };
    let signature = signer.sign(&vote.sign_bytes(&fixture.genesis.chain_id));
    SignedVote { vote, signature }
}

/// A committed block after genesis, with the fixture's certificate, from a store whose journal
/// entries are kept.
fn store_data(fixture: &mut Fixture, transactions: &[Transaction]) -> (Block, Vec<Vec<u8>>) {
    let engine = Arc::new(MemoryBackend::new());
    let journaled = Journaled::open(Box::new(engine.clone()), JournalLimits::default()).unwrap();
    let store = Store::create_with(Box::new(journaled), &fixture.genesis).unwrap();
    let head = store.header(0).unwrap().unwrap();
    let proposer = fixture.node_keys[0].public_key();
    let execution = store
        .execute(head.time + 1, proposer, transactions.to_vec(), Mode::Build)
        .unwrap();
    let certificate = fixture.certify(&execution.header);
    let block = store.commit(execution, certificate).unwrap();
    let entries = engine
        .scan(b"\xffjournal", None, 16)
        .unwrap()
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    (block, entries)
}

fn vectors() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../verify/tests/vectors/proofs.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
#[ignore = "writes the fuzz targets' seed corpus; run with HUTONG_FUZZ_CORPUS set"]
fn write_fuzz_corpus() {
    let root =
        std::env::var_os("HUTONG_FUZZ_CORPUS").expect("HUTONG_FUZZ_CORPUS names a directory");
    let root = PathBuf::from(root);
    let root = if root.is_absolute() || root.starts_with("..") {
        root
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(root)
    };
    let corpus = Corpus { root };
    let mut fixture = Fixture::new();
    let suite = fixture.suite();

    let signed = transactions(&mut fixture);
    for (kind, transaction) in &signed {
        corpus.put("transaction", kind, &transaction.to_bytes());
    }

    let issuances: Vec<Transaction> = (1..=3)
        .map(|number| fixture.issue_business_licence("qd-market", "370200", number))
        .collect();
    let (block, journal_entries) = store_data(&mut fixture, &issuances);
    for (index, entry) in journal_entries.iter().enumerate() {
        corpus.put("journal_entry", &format!("entry-{index}"), entry);
    }

    // Gossip: a status, votes, a proposal in compact form, a batch of transactions.
    let header: BlockHeader = block.header.clone();
    let value: Value = header.hash(suite).0;
    let signer = suite.signer(fixture.node_keys[0].clone());
    let proposal = Proposal {
        height: header.height,
        round: 0,
        value,
        valid_round: None,
        proposer: signer.id(),
    };
    let signature = signer.sign(&proposal.sign_bytes(&fixture.genesis.chain_id));
    let signed_proposal = SignedProposal {
        proposal,
        signature,
    };
    let prevote = signed_vote(&fixture, VoteType::Prevote, Some(value));
    let envelopes = [
        ("status", ConsensusMessage::Status { height: 7 }),
        ("prevote", ConsensusMessage::Vote(prevote.clone())),
        (
            "nil-precommit",
            ConsensusMessage::Vote(signed_vote(&fixture, VoteType::Precommit, None)),
        ),
        (
            "proposal",
            ConsensusMessage::Proposal {
                proposal: signed_proposal.clone(),
                block: Box::new(CompactBlock {
                    header: header.clone(),
                    transaction_ids: block
                        .transactions
                        .iter()
                        .map(|transaction| transaction.id(suite))
                        .collect(),
                    evidence: Vec::new(),
                }),
            },
        ),
    ];
    for (name, message) in envelopes {
        let envelope = ConsensusEnvelope {
            sent_at_ms: 1_767_225_600_000,
            message,
        };
        let mut bytes = vec![0];
        bytes.extend_from_slice(&messages::encode(&envelope));
        corpus.put("gossip_message", &format!("consensus-{name}"), &bytes);
    }
    let batch = TransactionBatch {
        transactions: issuances.iter().map(Transaction::to_bytes).collect(),
    };
    let mut bytes = vec![1];
    bytes.extend_from_slice(&messages::encode(&batch));
    corpus.put("gossip_message", "transaction-batch", &bytes);

    // Request-response: requests (side 0) and answers (side 1), framed.
    let ids: Vec<Hash32> = issuances.iter().map(|t| t.id(suite)).collect();
    let requests = [
        ("blocks", SyncRequest::Blocks { from: 1, count: 32 }),
        ("transactions", SyncRequest::Transactions { ids }),
    ];
    for (name, request) in requests {
        corpus.put(
            "sync_frame",
            &format!("request-{name}"),
            &frame(0, &messages::encode(&request)),
        );
    }
    let responses = [
        ("blocks", SyncResponse::Blocks(vec![block.clone()])),
        (
            "transactions",
            SyncResponse::Transactions(batch.transactions.clone()),
        ),
        (
            "refused",
            SyncResponse::Refused("height 9 is not committed".into()),
        ),
    ];
    for (name, response) in responses {
        corpus.put(
            "sync_frame",
            &format!("response-{name}"),
            &frame(1, &messages::encode(&response)),
        );
    }

    // Signing states: after a prevote, and after a proposal with a lock and a valid value.
    let round_value = hutong_consensus::RoundValue { round: 0, value };
    let states = [
        (
            "prevote",
            SigningState {
                last_signed: SignedMessage::Vote(prevote.clone()),
                signed_before: Vec::new(),
                locked: None,
                valid: None,
                valid_round_prevotes: Vec::new(),
            },
        ),
        (
            "proposal-locked",
            SigningState {
                last_signed: SignedMessage::Proposal(signed_proposal),
                signed_before: Vec::new(),
                locked: Some(round_value.clone()),
                valid: Some(round_value),
                valid_round_prevotes: vec![prevote],
            },
        ),
    ];
    for (name, state) in states {
        corpus.put("signing_state", name, &crate::signing_state::encode(&state));
    }

    // Genesis: the fixture's and the proof vectors'.
    corpus.put("genesis", "fixture", fixture.genesis.to_json().as_bytes());
    let vectors = vectors();
    corpus.put(
        "genesis",
        "proof-vectors",
        serde_json::to_string_pretty(&vectors["genesis"])
            .unwrap()
            .as_bytes(),
    );

    // QR payloads: the vectors' texts, and the bytes under the valid ones' base32.
    let valid = &vectors["qr"]["valid"];
    let text = valid["text"].as_str().unwrap();
    corpus.put("qr_payload", "text-valid", text.as_bytes());
    let payload = hutong_verify::qr::QrPayload::from_text(text).unwrap();
    corpus.put("qr_payload", "bytes-valid", &payload.to_bytes());
    for case in vectors["qr"]["tampered"].as_array().unwrap().iter().take(4) {
        let name = case["name"].as_str().unwrap();
        corpus.put(
            "qr_payload",
            &format!("tampered-{name}"),
            case["text"].as_str().unwrap().as_bytes(),
        );
    }

    // Proof documents: the vectors' valid bundles and a few tampered ones.
    for (index, case) in vectors["valid"].as_array().unwrap().iter().enumerate() {
        let bytes = serde_json::to_vec(&case["bundle"]).unwrap();
        corpus.put("proof_document", &format!("valid-{index}"), &bytes);
    }
    for case in vectors["tampered"].as_array().unwrap().iter().take(4) {
        let name = case["name"].as_str().unwrap_or("case");
        let bytes = serde_json::to_vec(&case["bundle"]).unwrap();
        corpus.put("proof_document", &format!("tampered-{name}"), &bytes);
    }

    // Configurations: the file `hutong init` writes, with peers, and with a test switch.
    let key = hex::encode(fixture.node_keys[1].public_key().as_bytes());
    let mut config = Config::new(
        "/ip4/127.0.0.1/tcp/26656".into(),
        "127.0.0.1:8080".into(),
        vec![format!("{key}@/ip4/127.0.0.1/tcp/26657")],
    );
    corpus.put("config", "init", config.to_commented_toml().as_bytes());
    config.testing.enabled = true;
    config.testing.equivocate = true;
    corpus.put(
        "config",
        "testing",
        toml::to_string(&config).unwrap().as_bytes(),
    );
}
