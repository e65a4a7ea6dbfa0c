//! The audit engine: an honest chain verifies from genesis, and every way of altering an
//! export is caught with the right explanation, even when the validators re-sign the altered
//! header (a colluding majority cannot make the chain lie about re-execution).

use hutong_consensus::CertificateError;
use hutong_core::block::{Block, BlockCertificateError, certify};
use hutong_core::crypto::SecretKey;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::records::{LicenceNumber, NodeChange, NodeEntry, StatusAction};
use hutong_core::rules::{NothingVerified, RuleError, VerifiedSignatures};
use hutong_core::testkit::{self, Fixture, GENESIS_TIME};
use hutong_core::tx::{Transaction, TxBody};
use hutong_ledger::audit::{
    self, AuditOptions, Auditor, EventFilter, ExportLine, KeyDirectory, OutOfTermKey, SourceBlock,
    Violation, licence_events, licence_events_csv, parse_export_line, preverify,
};
use hutong_ledger::store::{
    AuditStore, BlockError, MemoryBackend, Mode, PreparedTransactions, Store,
};

/// Height from which qd-approval signs with its new key.
const ROTATION_HEIGHT: u64 = 4;
/// Height from which the fifth validator signs.
const NEW_VALIDATOR_HEIGHT: u64 = 5;

/// An honest chain of six blocks with a key rotation, a validator added and a revocation.
struct Chain {
    genesis: Genesis,
    blocks: Vec<Block>,
    /// The node keys that signed each block's certificate (index = height - 1).
    signers: Vec<Vec<SecretKey>>,
    old_qd_key: SecretKey,
    fixture: Fixture,
    store: Store,
}

fn block_time(height: u64) -> u64 {
    GENESIS_TIME + height * 1_000
}

impl Chain {
    fn build() -> Self {
        let mut fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        let mut all_nodes: Vec<SecretKey> = fixture.node_keys.clone();
        let new_node = testkit::secret("node-new");
        all_nodes.push(new_node.clone());
        let new_qd_key = testkit::secret("qd-approval-2");
        let old_qd_key = fixture.keys[&"qd-approval".into()].clone();
        let mut chain = Chain {
            genesis: fixture.genesis.clone(),
            blocks: Vec::new(),
            signers: Vec::new(),
            old_qd_key,
            fixture: Fixture::new(),
            store,
        };

        // 1: four issuances, one by Jining.
        let first = vec![
            fixture.issue_business_licence("qd-approval", "370200", 1),
            fixture.issue_business_licence("qd-approval", "370200", 2),
            fixture.issue_business_licence("qd-approval", "370200", 3),
            fixture.issue_business_licence("jn-approval", "370800", 4),
        ];
        // 2: qd-approval rotates its key from ROTATION_HEIGHT on.
        let second = vec![
            fixture.tx(
                "qd-approval",
                TxBody::RotateKey {
                    authority: "qd-approval".into(),
                    new_key: new_qd_key.public_key(),
                    effective_height: ROTATION_HEIGHT,
                },
            ),
            fixture.issue_business_licence("qd-approval", "370200", 5),
        ];
        // 3: the governors add a validator from NEW_VALIDATOR_HEIGHT on.
        let third = vec![
            fixture.governance(
                TxBody::ChangeValidators {
                    changes: vec![NodeChange::Set(NodeEntry {
                        key: new_node.public_key(),
                        authority: "gov-b".into(),
                        power: 1,
                    })],
                    effective_height: NEW_VALIDATOR_HEIGHT,
                },
                3,
            ),
            fixture.issue_business_licence("qd-approval", "370200", 6),
        ];
        for (index, transactions) in [first, second, third].into_iter().enumerate() {
            chain.push(transactions, &all_nodes, index as u64 + 1);
        }
        // 4: the new key signs; the market regulator revokes licence 1.
        fixture.keys.insert("qd-approval".into(), new_qd_key);
        let revoke = fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: LicenceNumber(testkit::uscc("370200", 1).to_string()),
                action: StatusAction::Revoke,
                effective_at: block_time(4),
                reason: "吊销: 虚假登记 (false registration)".into(),
            },
        );
        let t4 = vec![
            fixture.issue_business_licence("qd-approval", "370200", 7),
            revoke,
        ];
        chain.push(t4, &all_nodes, 4);
        // 5 and 6: five validators sign.
        let t5 = vec![
            fixture.issue_business_licence("qd-approval", "370200", 8),
            fixture.issue_business_licence("qd-approval", "370200", 9),
        ];
        chain.push(t5, &all_nodes, 5);
        let t6 = vec![
            fixture.issue_business_licence("qd-approval", "370200", 10),
            fixture.issue_business_licence("jn-approval", "370800", 11),
        ];
        chain.push(t6, &all_nodes, 6);
        chain.fixture = fixture;
        chain
    }

    fn push(&mut self, transactions: Vec<Transaction>, nodes: &[SecretKey], height: u64) {
        let proposer = nodes[0].public_key();
        let execution = self
            .store
            .execute(block_time(height), proposer, transactions, Mode::Verify)
            .unwrap();
        assert_eq!(execution.header.height, height);
        let registry = self.store.registry_for(height).unwrap();
        let signers: Vec<SecretKey> = nodes
            .iter()
            .filter(|key| {
                registry
                    .validators()
                    .any(|node| node.key == key.public_key())
            })
            .cloned()
            .collect();
        let refs: Vec<&SecretKey> = signers.iter().collect();
        let certificate = certify(hutong_core::testkit::SUITE, &execution.header, 0, &refs);
        let block = self.store.commit(execution, certificate).unwrap();
        self.blocks.push(block);
        self.signers.push(signers);
    }

    /// Re-signs block `height`'s header with the validators of its height, as a colluding
    /// majority would after altering it.
    fn recertify(&self, blocks: &mut [Block], height: u64) {
        let index = (height - 1) as usize;
        let refs: Vec<&SecretKey> = self.signers[index].iter().collect();
        blocks[index].certificate =
            certify(hutong_core::testkit::SUITE, &blocks[index].header, 0, &refs);
    }
}

fn sources(blocks: &[Block]) -> Vec<Result<SourceBlock, Violation>> {
    blocks
        .iter()
        .map(|block| {
            Ok(SourceBlock {
                block: block.clone(),
                claimed_hash: Some(block.hash(hutong_core::testkit::SUITE)),
            })
        })
        .collect()
}

fn run(genesis: &Genesis, blocks: &[Block]) -> Result<Auditor, audit::AuditFailure> {
    let mut calls = 0;
    let result = audit::audit(
        genesis,
        sources(blocks).into_iter(),
        AuditOptions {
            threads: 2,
            ..AuditOptions::default()
        },
        &mut |_| calls += 1,
    );
    assert!(calls <= blocks.len());
    result
}

fn violation(genesis: &Genesis, blocks: &[Block]) -> Violation {
    match run(genesis, blocks) {
        Ok(_) => panic!("the altered chain verified"),
        Err(failure) => failure.violation,
    }
}

#[test]
fn an_honest_chain_verifies_from_genesis() {
    let chain = Chain::build();
    let auditor = run(&chain.genesis, &chain.blocks).unwrap();
    let summary = auditor.summary();
    assert_eq!(summary.blocks, 6);
    assert_eq!(summary.transactions, 14);
    // Three governors endorse the validator change; every other transaction has one.
    assert_eq!(summary.endorsements, 16);
    // Four validators sign blocks 1-4, five sign blocks 5-6.
    assert_eq!(summary.certificate_signatures, 4 * 4 + 2 * 5);
    assert_eq!(summary.validator_set_changes, 1);
    // qd-approval, jn-approval, three governors, qd-market.
    assert_eq!(summary.signing_authorities, 6);
    assert_eq!(summary.genesis_hash, chain.genesis.hash());
    let head = chain.store.head().unwrap();
    assert_eq!(summary.checkpoint.height, 6);
    assert_eq!(summary.checkpoint.block_hash, head.block_hash);
    assert_eq!(summary.checkpoint.log_root, head.header.log_root);
    assert_eq!(summary.checkpoint.state_root, head.header.state_root);
    assert_eq!(summary.checkpoint.log_size, 14);
}

#[test]
fn the_audit_store_commits_the_same_chain_without_the_serving_writes() {
    let chain = Chain::build();
    let lean = Store::create_for_audit(
        Box::new(MemoryBackend::new()),
        &chain.genesis,
        AuditStore::default(),
    )
    .unwrap();
    let history = Store::create_for_audit(
        Box::new(MemoryBackend::new()),
        &chain.genesis,
        AuditStore { history: true },
    )
    .unwrap();
    assert!(lean.is_audit_store() && !lean.keeps_history());
    assert!(history.keeps_history() && chain.store.keeps_history());
    for block in &chain.blocks {
        for store in [&lean, &history] {
            let execution = store.verify_block_with(block, &NothingVerified).unwrap();
            store.commit(execution, block.certificate.clone()).unwrap();
        }
    }
    let full = chain.store.head().unwrap();
    assert_eq!(lean.head().unwrap(), full);
    assert_eq!(history.head().unwrap(), full);
    assert_eq!(lean.header(3).unwrap(), chain.store.header(3).unwrap());

    // Where each transaction is, and therefore the refusal of a replay, as in a node's store.
    // Jining's issuance: its key did not change, so only the replay rule can refuse it again.
    let first = &chain.blocks[0].transactions[3];
    let location = chain
        .store
        .transaction_location(&first.id(hutong_core::testkit::SUITE))
        .unwrap();
    assert!(location.is_some());
    assert_eq!(
        lean.transaction_location(&first.id(hutong_core::testkit::SUITE))
            .unwrap(),
        location
    );
    let proposer = chain.fixture.node_keys[0].public_key();
    let replay = lean.execute(block_time(7), proposer, vec![first.clone()], Mode::Verify);
    assert!(
        matches!(
            replay,
            Err(BlockError::InvalidTransaction {
                error: RuleError::Replay(_),
                ..
            })
        ),
        "{replay:?}"
    );

    // The serving-only writes are not there; blocks and signers only with history.
    let TxBody::IssueLicence { holder, region, .. } = &first.payload.body else {
        panic!("the first transaction issues a licence");
    };
    assert!(
        !chain
            .store
            .licences_of_holder(holder, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        lean.licences_of_holder(holder, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        lean.licences_in_region(region, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(lean.block(1).unwrap().is_none());
    assert_eq!(history.block(1).unwrap().as_ref(), Some(&chain.blocks[0]));
    let signer = &first.payload.signer;
    let actions = chain.store.actions_of(signer, None, 100).unwrap();
    assert!(!actions.is_empty());
    assert!(lean.actions_of(signer, None, 100).unwrap().is_empty());
    assert_eq!(history.actions_of(signer, None, 100).unwrap(), actions);
    assert_eq!(
        history
            .transaction(&first.id(hutong_core::testkit::SUITE))
            .unwrap()
            .map(|(tx, _)| tx),
        Some(first.clone())
    );
}

#[test]
fn prepared_transactions_other_than_the_blocks_fail_on_the_transaction_root() {
    let chain = Chain::build();
    let mut auditor = Auditor::new(&chain.genesis).unwrap();
    let source = SourceBlock {
        block: chain.blocks[0].clone(),
        claimed_hash: None,
    };
    // Jining's issuance first: every rule still holds, only the order differs.
    let mut reordered = chain.blocks[0].transactions.clone();
    reordered.rotate_right(1);
    let mut fewer = chain.blocks[0].transactions.clone();
    fewer.pop();
    for transactions in [reordered, fewer] {
        let error = auditor
            .verify_prepared(
                &source,
                PreparedTransactions::new(hutong_core::testkit::SUITE, transactions),
                &NothingVerified,
            )
            .unwrap_err();
        assert!(
            matches!(
                error,
                Violation::Header {
                    field: "tx_root",
                    height: 1,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(auditor.summary().blocks, 0);
    }
    let prepared = PreparedTransactions::new(
        hutong_core::testkit::SUITE,
        chain.blocks[0].transactions.clone(),
    );
    auditor
        .verify_prepared(&source, prepared, &NothingVerified)
        .unwrap();
    assert_eq!(auditor.summary().blocks, 1);
}

#[test]
fn the_engine_checks_every_signature_itself_when_nothing_was_verified_ahead() {
    let chain = Chain::build();
    let mut auditor = Auditor::new(&chain.genesis).unwrap();
    for block in &chain.blocks {
        let source = SourceBlock {
            block: block.clone(),
            claimed_hash: None,
        };
        auditor.verify_block(&source, &NothingVerified).unwrap();
    }
    assert_eq!(
        auditor.summary().checkpoint.block_hash,
        chain.blocks[5].hash(hutong_core::testkit::SUITE)
    );
}

#[test]
fn preverification_guesses_the_key_of_every_endorsement_across_a_rotation() {
    let chain = Chain::build();
    let mut directory = KeyDirectory::from_genesis(&chain.genesis);
    let verified = preverify(&chain.blocks, &mut directory, 2);
    assert_eq!(verified.len(), 16);
    let transaction = &chain.blocks[3].transactions[0];
    let new_key = testkit::secret("qd-approval-2").public_key();
    assert!(verified.contains(&transaction.id(hutong_core::testkit::SUITE), &new_key));
    assert!(!verified.contains(
        &transaction.id(hutong_core::testkit::SUITE),
        &chain.old_qd_key.public_key()
    ));
}

#[test]
fn an_altered_field_in_one_transaction_fails_its_signature() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    let transaction = &mut blocks[4].transactions[1];
    if let TxBody::IssueLicence { holder_name, .. } = &mut transaction.payload.body {
        *holder_name = "Someone Else Ltd".into();
    } else {
        panic!("block 5 issues licences");
    }
    let id = transaction.id(hutong_core::testkit::SUITE);
    match violation(&chain.genesis, &blocks) {
        Violation::Transaction {
            height: 5,
            index: 1,
            id: found,
            error,
        } => {
            assert_eq!(found, id);
            assert!(
                matches!(&*error, RuleError::BadSignature { authority, .. } if authority.as_str() == "qd-approval"),
                "{error}"
            );
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_removed_transaction_changes_the_transaction_root() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    blocks[0].transactions.remove(3);
    match violation(&chain.genesis, &blocks) {
        Violation::Header {
            height: 1,
            field: "tx_root",
            expected,
            found,
        } => {
            assert_eq!(found, chain.blocks[0].header.tx_root.to_hex());
            assert_ne!(expected, found);
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_removed_transaction_under_a_re_signed_header_fails_on_the_log() {
    // The validators also rewrite tx_root: re-execution still disagrees on the log.
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    blocks[0].transactions.remove(3);
    let bytes: Vec<Vec<u8>> = blocks[0]
        .transactions
        .iter()
        .map(Transaction::to_bytes)
        .collect();
    blocks[0].header.tx_root = hutong_core::block::tx_root(hutong_core::testkit::SUITE, &bytes);
    chain.recertify(&mut blocks, 1);
    let violation = violation(&chain.genesis, &blocks);
    assert!(
        matches!(
            violation,
            Violation::Header {
                height: 1,
                field: "log_root",
                ..
            }
        ),
        "{violation}"
    );
}

#[test]
fn reordered_blocks_are_out_of_sequence() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    blocks.swap(1, 2);
    assert_eq!(
        violation(&chain.genesis, &blocks),
        Violation::OutOfSequence {
            expected: 2,
            found: 3
        }
    );
    let mut missing = chain.blocks.clone();
    missing.remove(3);
    assert_eq!(
        violation(&chain.genesis, &missing),
        Violation::OutOfSequence {
            expected: 4,
            found: 5
        }
    );
}

#[test]
fn a_forged_certificate_signature_is_refused() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    blocks[2].certificate.signatures[1].signature.0[5] ^= 1;
    let validator = blocks[2].certificate.signatures[1].validator;
    match violation(&chain.genesis, &blocks) {
        Violation::Certificate {
            height: 3,
            error:
                BlockCertificateError::Certificate(CertificateError::BadSignature { validator: found }),
            validators: 4,
            total_power: 4,
        } => assert_eq!(found, validator),
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_certificate_with_too_few_signatures_is_refused() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    // Block 5 is signed by the new set of five: three signatures are not more than 2/3.
    blocks[4].certificate.signatures.truncate(3);
    match violation(&chain.genesis, &blocks) {
        Violation::Certificate {
            height: 5,
            error:
                BlockCertificateError::Certificate(CertificateError::InsufficientPower {
                    signed_power,
                    total_power,
                    ..
                }),
            validators: 5,
            ..
        } => {
            assert_eq!((signed_power, total_power), (3, 5));
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_certificate_of_the_old_validator_set_is_refused_after_the_change() {
    // Block 5 signed by three validators of before the change: more than two thirds of the
    // old set (3 of 4), not of the set in force at height 5 (3 of 5).
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    let old: Vec<&SecretKey> = chain.fixture.node_keys.iter().take(3).collect();
    blocks[4].certificate = certify(hutong_core::testkit::SUITE, &blocks[4].header, 0, &old);
    let violation = violation(&chain.genesis, &blocks);
    assert!(
        matches!(
            violation,
            Violation::Certificate {
                height: 5,
                error: BlockCertificateError::Certificate(
                    CertificateError::InsufficientPower { .. }
                ),
                ..
            }
        ),
        "{violation}"
    );
}

#[test]
fn a_transaction_signed_with_a_key_rotated_away_is_refused() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    // Block 5 carries an issuance by qd-approval; re-sign it with the key it had before
    // ROTATION_HEIGHT, and have the validators re-sign the header.
    let transaction = blocks[4].transactions[0].clone();
    let forged = Transaction::sign(
        hutong_core::testkit::SUITE,
        transaction.payload.clone(),
        &[(&"qd-approval".into(), &chain.old_qd_key)],
    )
    .unwrap();
    let id = forged.id(hutong_core::testkit::SUITE);
    blocks[4].transactions[0] = forged;
    chain.recertify(&mut blocks, 5);
    match violation(&chain.genesis, &blocks) {
        Violation::KeyNotValidAtHeight {
            height: 5,
            index: 0,
            id: found,
            key,
        } => {
            assert_eq!(found, id);
            assert_eq!(
                *key,
                OutOfTermKey {
                    authority: "qd-approval".into(),
                    key: chain.old_qd_key.public_key(),
                    valid_from: 0,
                    valid_until: Some(ROTATION_HEIGHT),
                    expected: Some(testkit::secret("qd-approval-2").public_key()),
                }
            );
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_state_root_that_re_execution_does_not_give_is_refused() {
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    let forged = Hash32([7; 32]);
    blocks[3].header.state_root = forged;
    chain.recertify(&mut blocks, 4);
    match violation(&chain.genesis, &blocks) {
        Violation::Header {
            height: 4,
            field: "state_root",
            expected,
            found,
        } => {
            assert_eq!(found, forged.to_hex());
            assert_eq!(expected, chain.blocks[3].header.state_root.to_hex());
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_re_signed_header_breaks_the_chain_of_hashes() {
    // Re-signing an altered header makes a different block: the next block's prev_hash
    // names the original.
    let chain = Chain::build();
    let mut blocks = chain.blocks.clone();
    blocks[1].header.time += 1;
    blocks[1].header.proposer = chain.fixture.node_keys[1].public_key();
    chain.recertify(&mut blocks, 2);
    match violation(&chain.genesis, &blocks) {
        Violation::PrevHash {
            height: 3,
            previous: 2,
            expected,
            found,
        } => {
            assert_eq!(expected, blocks[1].hash(hutong_core::testkit::SUITE));
            assert_eq!(found, chain.blocks[1].hash(hutong_core::testkit::SUITE));
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn another_genesis_is_another_chain() {
    let chain = Chain::build();
    let mut genesis = chain.genesis.clone();
    genesis.genesis_time += 1;
    let violation = violation(&genesis, &chain.blocks);
    assert!(
        matches!(
            violation,
            Violation::PrevHash {
                height: 1,
                previous: 0,
                ..
            }
        ),
        "{violation}"
    );
}

#[test]
fn a_wrong_hash_label_is_reported() {
    let chain = Chain::build();
    let mut lines: Vec<String> = chain
        .blocks
        .iter()
        .map(|block| ExportLine::of(hutong_core::testkit::SUITE, block.clone()).to_json())
        .collect();
    let mut line: ExportLine = serde_json::from_str(&lines[2]).unwrap();
    line.hash = Hash32([1; 32]);
    lines[2] = line.to_json();
    let parsed: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(index, line)| parse_export_line(line.as_bytes(), index as u64 + 1))
        .collect();
    let failure = audit::audit(
        &chain.genesis,
        parsed.into_iter(),
        AuditOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(
        failure.violation,
        Violation::HashLabel {
            height: 3,
            expected: chain.blocks[2].hash(hutong_core::testkit::SUITE),
            found: Hash32([1; 32]),
        }
    );
    assert_eq!(failure.verified.blocks, 2);
}

#[test]
fn an_unreadable_line_stops_the_audit_after_the_blocks_before_it() {
    let chain = Chain::build();
    let mut parsed: Vec<_> = chain
        .blocks
        .iter()
        .enumerate()
        .map(|(index, block)| {
            parse_export_line(
                ExportLine::of(hutong_core::testkit::SUITE, block.clone())
                    .to_json()
                    .as_bytes(),
                index as u64 + 1,
            )
        })
        .collect();
    parsed[4] = parse_export_line(b"{\"hash\": 5}", 5);
    let failure = audit::audit(
        &chain.genesis,
        parsed.into_iter(),
        AuditOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(failure.violation, Violation::Malformed { position: 5, .. }),
        "{}",
        failure.violation
    );
    assert_eq!(failure.verified.blocks, 4);
}

#[test]
fn the_licence_event_report_lists_events_with_their_log_position() {
    let chain = Chain::build();
    let auditor = run(&chain.genesis, &chain.blocks).unwrap();
    let filter = EventFilter {
        from: block_time(4),
        to: block_time(7),
        type_code: Some("business-licence".into()),
        region: Some(testkit::region("370200")),
    };
    let rows = licence_events(auditor.store(), &filter, 100).unwrap();
    // Licences 1-10 of Qingdao were issued effective at genesis time; only the revocation
    // falls in the range.
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event, "revoke");
    assert_eq!(rows[0].event_zh, "吊销");
    assert_eq!(rows[0].height, 4);
    assert_eq!(rows[0].log_index, 4 + 2 + 2 + 1);
    let everything = EventFilter {
        from: 0,
        to: u64::MAX,
        type_code: None,
        region: None,
    };
    let all = licence_events(auditor.store(), &everything, 100).unwrap();
    assert_eq!(all.len(), 12);
    assert!(licence_events(auditor.store(), &everything, 5).is_err());
    let csv = licence_events_csv(&rows, &filter, &auditor.summary().checkpoint);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("\u{feff}\"证照类型 type\""));
    assert!(lines[1].contains("\"吊销\""));
    assert!(lines[1].contains("\"吊销: 虚假登记 (false registration)\""));
    assert!(lines[2].contains(&auditor.summary().checkpoint.log_root.to_hex()));
    assert_eq!(audit::utc_text(GENESIS_TIME), "2026-01-01T00:00:00.000Z");
    assert_eq!(audit::utc_text(951_782_400_123), "2000-02-29T00:00:00.123Z");
}

#[test]
fn the_report_from_the_region_index_matches_a_scan_of_every_licence() {
    let chain = Chain::build();
    let auditor = run(&chain.genesis, &chain.blocks).unwrap();
    // The node's store keeps the region index; the auditor's (audit mode) does not, and
    // scans every licence: the two must select the same events.
    assert!(chain.store.keeps_licence_indexes());
    assert!(!auditor.store().keeps_licence_indexes());
    // The index read page by page gives what one read gives, in (region, type, number) order.
    let province = testkit::region("370000");
    let whole = chain
        .store
        .licences_covered_by(&province, None, 100)
        .unwrap();
    assert_eq!(whole.len(), 11);
    assert!(whole.windows(2).all(|pair| pair[0] < pair[1]));
    let mut paged = Vec::new();
    loop {
        let page = chain
            .store
            .licences_covered_by(&province, paged.last(), 2)
            .unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, whole);
    // Qingdao (370200): nine issuances and a revocation; Jining (370800): two issuances.
    for (region, events) in [
        (None, 12),
        (Some("000000"), 12),
        (Some("370000"), 12),
        (Some("370200"), 10),
        (Some("370800"), 2),
        (Some("370202"), 0),
        (Some("410000"), 0),
    ] {
        for type_code in [None, Some("business-licence"), Some("no-such-type")] {
            let filter = EventFilter {
                from: 0,
                to: u64::MAX,
                type_code: type_code.map(Into::into),
                region: region.map(testkit::region),
            };
            let indexed = licence_events(&chain.store, &filter, 100).unwrap();
            let scanned = licence_events(auditor.store(), &filter, 100).unwrap();
            assert_eq!(indexed, scanned, "{region:?} {type_code:?}");
            let expected = if type_code == Some("no-such-type") {
                0
            } else {
                events
            };
            assert_eq!(indexed.len(), expected, "{region:?} {type_code:?}");
        }
    }
}

/// A chain whose second block records one equivocation of validator 1 at height 1.
fn chain_with_evidence() -> (Genesis, Vec<Block>) {
    use hutong_consensus::{Evidence, Signature, SignedVote, ValidatorId, Vote, VoteType};
    let fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let equivocator = &fixture.node_keys[1];
    let vote = |value: Option<[u8; 32]>| {
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height: 1,
            round: 0,
            value,
            validator: ValidatorId(equivocator.public_key().0),
        };
        let signature = Signature(equivocator.sign(&vote.sign_bytes(testkit::CHAIN_ID)).0);
        SignedVote { vote, signature }
    };
    let evidence = Evidence::ConflictingVotes {
        first: vote(Some([1; 32])),
        second: vote(None),
    };
    let signers: Vec<&SecretKey> = fixture.node_keys.iter().collect();
    let mut blocks = Vec::new();
    for (height, evidence) in [(1, Vec::new()), (2, vec![evidence])] {
        let execution = store
            .execute_with_evidence(
                block_time(height),
                fixture.node_keys[0].public_key(),
                Vec::new(),
                evidence,
                Mode::Verify,
            )
            .unwrap();
        let certificate = certify(hutong_core::testkit::SUITE, &execution.header, 0, &signers);
        blocks.push(store.commit(execution, certificate).unwrap());
    }
    assert_eq!(blocks[1].evidence.len(), 1);
    (fixture.genesis.clone(), blocks)
}

#[test]
fn recorded_evidence_is_re_verified_and_cannot_be_stripped_or_forged() {
    let (genesis, blocks) = chain_with_evidence();
    run(&genesis, &blocks).unwrap();

    // Stripping the evidence leaves the header (and its certificate) valid, but the state it
    // commits to held the evidence record.
    let mut stripped = blocks.clone();
    stripped[1].evidence.clear();
    match violation(&genesis, &stripped) {
        Violation::Header {
            height: 2,
            field: "state_root",
            ..
        } => {}
        other => panic!("unexpected: {other}"),
    }

    // A forged signature in the evidence is refused as evidence.
    let mut forged = blocks.clone();
    if let hutong_consensus::Evidence::ConflictingVotes { second, .. } = &mut forged[1].evidence[0]
    {
        second.signature.0[0] ^= 1;
    } else {
        panic!("conflicting votes");
    }
    let found = violation(&genesis, &forged);
    assert!(
        matches!(
            found,
            Violation::Evidence {
                height: 2,
                index: 0,
                ..
            }
        ),
        "unexpected: {found}"
    );
    assert_eq!(found.code(), "evidence");
}
