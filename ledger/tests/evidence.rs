//! Equivocation evidence on the ledger (ADR 0009): what the rules accept and refuse, how a
//! proposer's block leaves refused items out, and that a follower re-executing the block
//! reaches the same state.

use hutong_consensus::{
    Evidence as ConsensusEvidence, Proposal, Signature, SignedProposal, SignedVote, ValidatorId,
    Vote, VoteType,
};
use hutong_core::block::Block;
use hutong_core::crypto::SecretKey;
use hutong_core::evidence::{EquivocationKind, Evidence, EvidenceKey};
use hutong_core::limits;
use hutong_core::records::{Record, RecordKey};
use hutong_core::rules::EvidenceRuleError;
use hutong_core::smt;
use hutong_core::testkit::{CHAIN_ID, Fixture, GENESIS_TIME};
use hutong_ledger::store::{BlockError, MemoryBackend, Mode, Store};

fn signed_vote(
    key: &SecretKey,
    vote_type: VoteType,
    height: u64,
    round: u32,
    value: Option<[u8; 32]>,
) -> SignedVote<[u8; 32]> {
    let vote = Vote {
        vote_type,
        height,
        round,
        value,
        validator: ValidatorId(key.public_key().0),
    };
    let signature = Signature(key.sign(&vote.sign_bytes(CHAIN_ID)).0);
    SignedVote { vote, signature }
}

fn conflicting_prevotes(key: &SecretKey, height: u64, round: u32) -> Evidence {
    ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, height, round, Some([1; 32])),
        second: signed_vote(key, VoteType::Prevote, height, round, None),
    }
}

fn store_with_blocks(fixture: &Fixture, blocks: u64) -> Store {
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    for _ in 0..blocks {
        commit(&store, fixture, Vec::new()).unwrap();
    }
    store
}

/// Executes the next (empty) block with `evidence` in verify mode and commits it.
fn commit(store: &Store, fixture: &Fixture, evidence: Vec<Evidence>) -> Result<Block, BlockError> {
    let height = store.height().unwrap() + 1;
    let execution = store.execute_with_evidence(
        GENESIS_TIME + height * 1000,
        fixture.node_keys[0].public_key(),
        Vec::new(),
        evidence,
        Mode::Verify,
    )?;
    let header = execution.header.clone();
    store.commit(execution, fixture.certify(&header))
}

fn rejection(store: &Store, fixture: &Fixture, evidence: Vec<Evidence>) -> EvidenceRuleError {
    let before = store.head().unwrap();
    match commit(store, fixture, evidence) {
        Err(BlockError::InvalidEvidence { error, .. }) => {
            assert_eq!(
                store.head().unwrap(),
                before,
                "a refused block changed the store"
            );
            error
        }
        other => panic!("expected an evidence rejection, got {other:?}"),
    }
}

#[test]
fn conflicting_votes_are_recorded_indexed_and_provable() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let offender = &fixture.node_keys[1];
    let evidence = conflicting_prevotes(offender, 2, 0);
    let block = commit(&store, &fixture, vec![evidence.clone()]).unwrap();
    assert_eq!(block.evidence, vec![evidence.clone()]);
    assert_eq!(
        store.block(3).unwrap().unwrap().evidence,
        vec![evidence.clone()]
    );

    let key = EvidenceKey {
        validator: offender.public_key(),
        height: 2,
        round: 0,
        kind: EquivocationKind::Prevote,
    };
    let record = store.evidence(&key).unwrap().expect("recorded");
    assert_eq!(record.evidence, evidence);
    assert_eq!(record.recorded_at, 3);
    let listed = store.evidence_from(0, None, 10).unwrap();
    assert_eq!(listed, vec![record.clone()]);
    assert!(store.evidence_from(4, None, 10).unwrap().is_empty());

    // Provable against the header's state root.
    let proof = store.prove(&RecordKey::Evidence(key.clone())).unwrap();
    assert_eq!(proof.record, Some(Record::Evidence(record.clone())));
    let leaf = Record::Evidence(record).state_hash(hutong_core::testkit::SUITE);
    smt::verify_membership(
        hutong_core::testkit::SUITE,
        proof.header.state_root,
        &RecordKey::Evidence(key).state_hash(hutong_core::testkit::SUITE),
        &leaf,
        &proof.proof,
    )
    .unwrap();
}

#[test]
fn conflicting_precommits_and_proposals_are_recorded_under_their_kind() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 1);
    let key = &fixture.node_keys[2];
    let precommits = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Precommit, 1, 3, Some([1; 32])),
        second: signed_vote(key, VoteType::Precommit, 1, 3, Some([2; 32])),
    };
    let proposal = |value: [u8; 32]| {
        let proposal = Proposal {
            height: 1,
            round: 1,
            value,
            valid_round: None,
            proposer: ValidatorId(key.public_key().0),
        };
        let signature = Signature(key.sign(&proposal.sign_bytes(CHAIN_ID)).0);
        SignedProposal {
            proposal,
            signature,
        }
    };
    let proposals = ConsensusEvidence::ConflictingProposals {
        first: proposal([3; 32]),
        second: proposal([4; 32]),
    };
    commit(&store, &fixture, vec![precommits, proposals]).unwrap();
    let kinds: Vec<EquivocationKind> = store
        .evidence_from(0, None, 10)
        .unwrap()
        .into_iter()
        .map(|record| record.key.kind)
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&EquivocationKind::Precommit));
    assert!(kinds.contains(&EquivocationKind::Proposal));
}

#[test]
fn the_same_slot_is_recorded_once() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let key = &fixture.node_keys[0];
    let evidence = conflicting_prevotes(key, 2, 0);
    // Twice in one block.
    assert!(matches!(
        rejection(&store, &fixture, vec![evidence.clone(), evidence.clone()]),
        EvidenceRuleError::AlreadyRecorded { .. }
    ));
    commit(&store, &fixture, vec![evidence]).unwrap();
    // Again later, even with a third conflicting vote for the same slot.
    let again = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 2, 0, Some([7; 32])),
        second: signed_vote(key, VoteType::Prevote, 2, 0, None),
    };
    assert!(matches!(
        rejection(&store, &fixture, vec![again]),
        EvidenceRuleError::AlreadyRecorded { .. }
    ));
}

#[test]
fn evidence_must_be_of_a_committed_height_and_not_too_old() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let key = &fixture.node_keys[0];
    // The block being executed is 3: evidence of height 3 or later is refused.
    assert!(matches!(
        rejection(&store, &fixture, vec![conflicting_prevotes(key, 3, 0)]),
        EvidenceRuleError::NotYetCommitted {
            height: 3,
            block_height: 3
        }
    ));
    assert!(matches!(
        hutong_core::rules::check_evidence_age(1, 2 + limits::EVIDENCE_AGE_BLOCKS_MAX),
        Err(EvidenceRuleError::TooOld { .. })
    ));
    assert!(hutong_core::rules::check_evidence_age(1, 1 + limits::EVIDENCE_AGE_BLOCKS_MAX).is_ok());
}

#[test]
fn evidence_that_proves_nothing_is_refused() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let key = &fixture.node_keys[0];
    let other = &fixture.node_keys[1];

    // Same value twice.
    let same = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
    };
    // Different validators.
    let two_signers = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: signed_vote(other, VoteType::Prevote, 1, 0, None),
    };
    // Different rounds, heights, vote types.
    let rounds = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: signed_vote(key, VoteType::Prevote, 1, 1, None),
    };
    let heights = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: signed_vote(key, VoteType::Prevote, 2, 0, None),
    };
    let types = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: signed_vote(key, VoteType::Precommit, 1, 0, None),
    };
    // A tampered signature.
    let mut forged = signed_vote(key, VoteType::Prevote, 1, 0, None);
    forged.signature.0[0] ^= 1;
    let bad_signature = ConsensusEvidence::ConflictingVotes {
        first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
        second: forged,
    };
    // Signed by a key that is not a validator.
    let stranger = hutong_core::testkit::secret("not-a-validator");
    let unknown = conflicting_prevotes(&stranger, 1, 0);
    // Signed for another chain.
    let other_chain = {
        let mut vote = signed_vote(key, VoteType::Prevote, 1, 0, None);
        vote.signature = Signature(key.sign(&vote.vote.sign_bytes("another-chain")).0);
        ConsensusEvidence::ConflictingVotes {
            first: signed_vote(key, VoteType::Prevote, 1, 0, Some([1; 32])),
            second: vote,
        }
    };
    for (name, evidence) in [
        ("same value", same),
        ("two signers", two_signers),
        ("two rounds", rounds),
        ("two heights", heights),
        ("two vote types", types),
        ("bad signature", bad_signature),
        ("unknown validator", unknown),
        ("other chain", other_chain),
    ] {
        let error = rejection(&store, &fixture, vec![evidence]);
        assert!(
            matches!(error, EvidenceRuleError::Invalid(_)),
            "{name}: {error}"
        );
    }
    assert!(store.evidence_from(0, None, 10).unwrap().is_empty());
}

#[test]
fn a_block_holds_a_bounded_number_of_items() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let items: Vec<Evidence> = (0..=limits::EVIDENCE_PER_BLOCK_MAX as u32)
        .map(|round| conflicting_prevotes(&fixture.node_keys[0], 1, round))
        .collect();
    assert!(matches!(
        rejection(&store, &fixture, items.clone()),
        EvidenceRuleError::TooMany { .. }
    ));
    // A proposer keeps the first ones and leaves the rest for a later block.
    let execution = store
        .execute_with_evidence(
            GENESIS_TIME + 10_000,
            fixture.node_keys[0].public_key(),
            Vec::new(),
            items,
            Mode::Build,
        )
        .unwrap();
    assert_eq!(execution.evidence.len(), limits::EVIDENCE_PER_BLOCK_MAX);
    assert_eq!(execution.rejected_evidence.len(), 1);
}

#[test]
fn a_proposer_leaves_bad_evidence_out_and_a_follower_agrees() {
    let fixture = Fixture::new();
    let proposer = store_with_blocks(&fixture, 2);
    let follower = store_with_blocks(&fixture, 2);
    let good = conflicting_prevotes(&fixture.node_keys[3], 2, 1);
    let future = conflicting_prevotes(&fixture.node_keys[3], 9, 0);
    let execution = proposer
        .execute_with_evidence(
            GENESIS_TIME + 10_000,
            fixture.node_keys[0].public_key(),
            Vec::new(),
            vec![future, good.clone()],
            Mode::Build,
        )
        .unwrap();
    assert_eq!(execution.evidence, vec![good.clone()]);
    assert!(matches!(
        execution.rejected_evidence.as_slice(),
        [(_, EvidenceRuleError::NotYetCommitted { .. })]
    ));
    let header = execution.header.clone();
    let block = proposer
        .commit(execution, fixture.certify(&header))
        .unwrap();

    // The follower re-executes the block and reaches the same header.
    let replay = follower.verify_block(&block).unwrap();
    assert_eq!(replay.header, block.header);
    follower.commit(replay, block.certificate.clone()).unwrap();
    assert_eq!(follower.head().unwrap(), proposer.head().unwrap());

    // A block whose evidence section was stripped (or changed) no longer matches its header.
    let fresh = store_with_blocks(&fixture, 2);
    let stripped = Block {
        evidence: Vec::new(),
        ..block.clone()
    };
    assert!(matches!(
        fresh.verify_block(&stripped),
        Err(BlockError::HeaderMismatch {
            field: "state_root",
            ..
        })
    ));
    let swapped = Block {
        evidence: vec![conflicting_prevotes(&fixture.node_keys[3], 2, 2)],
        ..block
    };
    assert!(matches!(
        fresh.verify_block(&swapped),
        Err(BlockError::HeaderMismatch {
            field: "state_root",
            ..
        })
    ));
}

#[test]
fn the_validator_set_of_the_evidence_height_is_checked() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 2);
    let set = store.validator_set_at(1).unwrap().expect("known");
    assert!(set.contains(&ValidatorId(fixture.node_keys[0].public_key().0)));
    assert!(store.validator_set_at(3).unwrap().is_some());
}

#[test]
fn the_list_pages_through_records_of_one_height() {
    let fixture = Fixture::new();
    let store = store_with_blocks(&fixture, 3);
    let items: Vec<Evidence> = (0..5)
        .map(|round| conflicting_prevotes(&fixture.node_keys[round as usize % 4], 2, round))
        .collect();
    commit(&store, &fixture, items).unwrap();
    commit(
        &store,
        &fixture,
        vec![conflicting_prevotes(&fixture.node_keys[0], 3, 0)],
    )
    .unwrap();
    let all = store.evidence_from(0, None, 100).unwrap();
    assert_eq!(all.len(), 6);
    let mut paged = Vec::new();
    let mut cursor: Option<(u64, EvidenceKey)> = None;
    loop {
        let page = store
            .evidence_from(0, cursor.as_ref().map(|(height, key)| (*height, key)), 2)
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        cursor = Some((last.recorded_at, last.key.clone()));
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(store.evidence_from(5, None, 100).unwrap().len(), 1);
}
