//! The rules of the validator set and of equivocation evidence: scheduling node changes
//! (`ChangeValidators`), applying the changes that fall due when a block begins
//! ([`begin_block`]), and checking and recording the evidence a block carries
//! ([`apply_evidence`], ADR 0009).

use hutong_consensus::{EvidenceError, ValidatorSet, verify_evidence};

use super::error::{RuleError, StateError};
use super::state::{Context, Overlay, Scratch, StateReader};
use crate::crypto::PublicKey;
use crate::evidence::{Evidence, EvidenceKey, EvidenceRecord};
use crate::limits;
use crate::records::{
    Height, NodeChange, NodeEntry, NodeRegistry, PendingNodeChange, Record, RecordKey,
};
use crate::suite::Suite;

/// `ChangeValidators`: node changes that take effect at `effective_height`, checked against
/// the set as it will be then (the changes already pending up to that height applied), so
/// that no schedule of changes can leave the network without a validator.
pub(super) fn change_validators<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    context: &Context<'_>,
    changes: &[NodeChange],
    effective_height: Height,
) -> Result<(), RuleError> {
    if effective_height <= context.height
        || effective_height - context.height > limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX
    {
        return Err(RuleError::BadEffectiveHeight {
            height: context.height,
            effective_height,
            limit: limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX,
        });
    }
    let mut registry = state.nodes()?;
    if registry.pending.len() >= limits::PENDING_VALIDATOR_CHANGES_MAX {
        return Err(RuleError::TooManyPendingChanges {
            limit: limits::PENDING_VALIDATOR_CHANGES_MAX,
        });
    }
    let mut future: Vec<NodeEntry> = registry.nodes.clone();
    for pending in registry
        .pending
        .iter()
        .filter(|pending| pending.effective_height <= effective_height)
    {
        for change in &pending.changes {
            NodeRegistry::apply_change(&mut future, change);
        }
    }
    for change in changes {
        match change {
            NodeChange::Set(entry) => {
                entry.key.validate().map_err(RuleError::KeyRejected)?;
                state.require_named_authority(&entry.authority)?;
            }
            NodeChange::Remove(key) => {
                if !future.iter().any(|node| node.key == *key) {
                    return Err(RuleError::UnknownNode(*key));
                }
            }
        }
        NodeRegistry::apply_change(&mut future, change);
    }
    if future.len() > limits::NODES_MAX {
        return Err(RuleError::TooManyNodes {
            count: future.len(),
            limit: limits::NODES_MAX,
        });
    }
    if !future.iter().any(|node| node.power > 0) {
        return Err(RuleError::NoValidatorLeft);
    }
    let position = registry
        .pending
        .partition_point(|pending| pending.effective_height <= effective_height);
    registry.pending.insert(
        position,
        PendingNodeChange {
            effective_height,
            changes: changes.to_vec(),
        },
    );
    state.put(Record::Nodes(registry));
    Ok(())
}

/// Applies every validator-set change scheduled for `context.height`, before the block's
/// transactions run. The registry after it is the set that signs this block.
pub fn begin_block<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
) -> Result<(), StateError> {
    let mut registry = match overlay.record(&RecordKey::Nodes)? {
        Some(Record::Nodes(registry)) => registry,
        Some(_) => return Err(StateError("node registry has the wrong kind".into())),
        None => return Ok(()),
    };
    if registry
        .pending
        .first()
        .is_none_or(|pending| pending.effective_height > context.height)
    {
        return Ok(());
    }
    let (due, later): (Vec<PendingNodeChange>, Vec<PendingNodeChange>) = registry
        .pending
        .drain(..)
        .partition(|pending| pending.effective_height <= context.height);
    for pending in due {
        for change in &pending.changes {
            NodeRegistry::apply_change(&mut registry.nodes, change);
        }
    }
    registry.pending = later;
    overlay.write(Record::Nodes(registry));
    Ok(())
}

/// Why a block's evidence item is refused. A block in verify mode with such an item is
/// invalid; a proposer building a block leaves the item out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRuleError {
    #[error("the block carries {count} evidence items; the limit is {limit}")]
    TooMany { count: usize, limit: usize },
    #[error(
        "evidence of height {height} is not older than the block recording it (height {block_height})"
    )]
    NotYetCommitted {
        height: Height,
        block_height: Height,
    },
    #[error(
        "evidence of height {height} is too old for block {block_height}: at most {max_age} blocks back"
    )]
    TooOld {
        height: Height,
        block_height: Height,
        max_age: u64,
    },
    #[error(
        "the validator set of height {height} is no longer known to the state (the validators changed since); \
         evidence of that height cannot be checked"
    )]
    ValidatorSetUnavailable { height: Height },
    #[error("the evidence does not prove an equivocation: {0}")]
    Invalid(#[from] EvidenceError),
    #[error(
        "an equivocation of {validator} at height {height}, round {round} ({kind}) is already recorded"
    )]
    AlreadyRecorded {
        validator: PublicKey,
        height: Height,
        round: u32,
        kind: &'static str,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl EvidenceRuleError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceRuleError::TooMany { .. } => "evidence_too_many",
            EvidenceRuleError::NotYetCommitted { .. } => "evidence_not_yet_committed",
            EvidenceRuleError::TooOld { .. } => "evidence_too_old",
            EvidenceRuleError::ValidatorSetUnavailable { .. } => {
                "evidence_validator_set_unavailable"
            }
            EvidenceRuleError::Invalid(_) => "evidence_invalid",
            EvidenceRuleError::AlreadyRecorded { .. } => "evidence_already_recorded",
            EvidenceRuleError::State(_) => "state",
        }
    }
}

/// Checks the age of `evidence` and its signatures against `set`, the validator set of its
/// height, for block `block_height` on `chain_id`. Whether it is already recorded is the
/// caller's to check (it needs the state). Returns its key.
pub fn check_evidence(
    suite: Suite,
    evidence: &Evidence,
    chain_id: &str,
    block_height: Height,
    set: &ValidatorSet,
) -> Result<EvidenceKey, EvidenceRuleError> {
    let key = EvidenceKey::of(evidence);
    check_evidence_age(key.height, block_height)?;
    verify_evidence(evidence, set, chain_id, &suite)?;
    Ok(key)
}

/// Evidence of `height` may be recorded from the block after it up to
/// [`limits::EVIDENCE_AGE_BLOCKS_MAX`] blocks later: a height is judged only once committed,
/// and the bound keeps how far back the rules must look, and what the node must remember, finite.
pub fn check_evidence_age(height: Height, block_height: Height) -> Result<(), EvidenceRuleError> {
    if height >= block_height {
        return Err(EvidenceRuleError::NotYetCommitted {
            height,
            block_height,
        });
    }
    if block_height - height > limits::EVIDENCE_AGE_BLOCKS_MAX {
        return Err(EvidenceRuleError::TooOld {
            height,
            block_height,
            max_age: limits::EVIDENCE_AGE_BLOCKS_MAX,
        });
    }
    Ok(())
}

/// Records one equivocation carried by the block (ADR 0009). The evidence authenticates
/// itself: its age is checked against the block's height, both signatures against
/// `validator_set_at(height)` (the validator set in force at the equivocation's height, or
/// `None` when the state no longer knows it), and its slot must not be recorded yet (in the
/// state or earlier in this block). On error nothing is written.
pub fn apply_evidence<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
    evidence: &Evidence,
    validator_set_at: impl Fn(Height) -> Result<Option<ValidatorSet>, StateError>,
) -> Result<EvidenceKey, EvidenceRuleError> {
    let key = EvidenceKey::of(evidence);
    // The age first, so that the validator set is never asked for a height outside the window.
    check_evidence_age(key.height, context.height)?;
    let Some(set) = validator_set_at(key.height)? else {
        return Err(EvidenceRuleError::ValidatorSetUnavailable { height: key.height });
    };
    let key = check_evidence(
        context.suite,
        evidence,
        context.chain_id,
        context.height,
        &set,
    )?;
    if overlay.record(&RecordKey::Evidence(key.clone()))?.is_some() {
        return Err(EvidenceRuleError::AlreadyRecorded {
            validator: key.validator,
            height: key.height,
            round: key.round,
            kind: key.kind.as_str(),
        });
    }
    overlay.write(Record::Evidence(EvidenceRecord {
        key: key.clone(),
        evidence: evidence.clone(),
        recorded_at: context.height,
    }));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use hutong_consensus::{Signature, SignedVote, ValidatorId, ValidatorSet, Vote, VoteType};

    use super::super::testing::{Chain, entry, id, writes};
    use super::{EvidenceRuleError, apply_evidence, begin_block, check_evidence_age};
    use crate::block::validator_set;
    use crate::crypto::{PublicKey, SecretKey, SignatureError};
    use crate::evidence::{EquivocationKind, Evidence, EvidenceKey, EvidenceRecord};
    use crate::limits;
    use crate::records::{
        NodeChange, NodeEntry, NodeRegistry, PendingNodeChange, Record, RecordKey,
    };
    use crate::rules::{Context, Overlay, RuleError, StateError};
    use crate::testkit::{self, CHAIN_ID};
    use crate::tx::TxBody;

    fn registry(chain: &Chain) -> NodeRegistry {
        match chain.state.records.get(&RecordKey::Nodes) {
            Some(Record::Nodes(registry)) => registry.clone(),
            other => panic!("no node registry: {other:?}"),
        }
    }

    fn new_node(name: &str, power: u64) -> NodeEntry {
        NodeEntry {
            key: testkit::secret(name).public_key(),
            authority: id("gov-a"),
            power,
        }
    }

    fn change(changes: Vec<NodeChange>, effective_height: u64) -> TxBody {
        TxBody::ChangeValidators {
            changes,
            effective_height,
        }
    }

    #[test]
    fn a_validator_change_is_scheduled_in_order_of_its_height() {
        let mut chain = Chain::new();
        let mut expected = registry(&chain);
        let later = vec![NodeChange::Set(new_node("node-4", 1))];
        let scheduled = chain.governance(change(later.clone(), 10));
        let signer = chain.signer_after_next("gov-a");
        expected.pending = vec![PendingNodeChange {
            effective_height: 10,
            changes: later.clone(),
        }];
        assert_eq!(
            chain.apply(&scheduled).unwrap(),
            writes([signer, entry(Record::Nodes(expected.clone()))])
        );

        let sooner = vec![NodeChange::Remove(chain.fixture.node_keys[3].public_key())];
        let scheduled = chain.governance(change(sooner.clone(), 5));
        let signer = chain.signer_after_next("gov-a");
        expected.pending.insert(
            0,
            PendingNodeChange {
                effective_height: 5,
                changes: sooner,
            },
        );
        assert_eq!(
            chain.apply(&scheduled).unwrap(),
            writes([signer, entry(Record::Nodes(expected))])
        );
    }

    #[test]
    fn a_validator_change_takes_effect_ahead_within_the_delay() {
        let mut chain = Chain::new();
        let set = || vec![NodeChange::Set(new_node("node-4", 1))];
        let now = chain.governance(change(set(), 1));
        assert_eq!(
            chain.apply(&now),
            Err(RuleError::BadEffectiveHeight {
                height: 1,
                effective_height: 1,
                limit: limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX,
            })
        );
        let too_far = 2 + limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX;
        let far = chain.governance(change(set(), too_far));
        assert_eq!(
            chain.apply(&far),
            Err(RuleError::BadEffectiveHeight {
                height: 1,
                effective_height: too_far,
                limit: limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX,
            })
        );
    }

    #[test]
    fn pending_changes_stop_at_their_limit() {
        let mut chain = Chain::new();
        let mut full = registry(&chain);
        full.pending = (0..limits::PENDING_VALIDATOR_CHANGES_MAX as u64)
            .map(|index| PendingNodeChange {
                effective_height: 100 + index,
                changes: Vec::new(),
            })
            .collect();
        chain.put(Record::Nodes(full));
        let one_more = chain.governance(change(vec![NodeChange::Set(new_node("node-4", 1))], 10));
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyPendingChanges {
                limit: limits::PENDING_VALIDATOR_CHANGES_MAX
            })
        );
    }

    #[test]
    fn a_node_change_names_a_usable_key_a_known_authority_and_a_node_that_will_be_there() {
        let mut chain = Chain::new();
        let mut small_order = new_node("node-4", 1);
        small_order.key = PublicKey({
            let mut bytes = [0u8; 32];
            bytes[0] = 1;
            bytes
        });
        let unusable = chain.governance(change(vec![NodeChange::Set(small_order)], 10));
        assert_eq!(
            chain.apply(&unusable),
            Err(RuleError::KeyRejected(SignatureError::SmallOrderKey))
        );

        let mut orphan = new_node("node-4", 1);
        orphan.authority = id("nobody");
        let orphan = chain.governance(change(vec![NodeChange::Set(orphan)], 10));
        assert_eq!(
            chain.apply(&orphan),
            Err(RuleError::UnknownNamedAuthority(id("nobody")))
        );

        let stranger = testkit::secret("stranger").public_key();
        let unknown = chain.governance(change(vec![NodeChange::Remove(stranger)], 10));
        assert_eq!(chain.apply(&unknown), Err(RuleError::UnknownNode(stranger)));

        // A node that a pending change removes by then is no longer there to remove.
        let leaving = chain.fixture.node_keys[3].public_key();
        let first = chain.governance(change(vec![NodeChange::Remove(leaving)], 5));
        chain.apply(&first).unwrap();
        let twice = chain.governance(change(vec![NodeChange::Remove(leaving)], 10));
        assert_eq!(chain.apply(&twice), Err(RuleError::UnknownNode(leaving)));
    }

    #[test]
    fn the_set_keeps_a_validator_and_stays_within_the_node_limit() {
        let mut chain = Chain::new();
        let everyone: Vec<NodeChange> = chain
            .fixture
            .node_keys
            .iter()
            .map(|key| {
                NodeChange::Set(NodeEntry {
                    key: key.public_key(),
                    authority: id("gov-a"),
                    power: 0,
                })
            })
            .collect();
        let silenced = chain.governance(change(everyone, 10));
        assert_eq!(chain.apply(&silenced), Err(RuleError::NoValidatorLeft));

        let mut full = registry(&chain);
        let mut observer = 0;
        while full.nodes.len() < limits::NODES_MAX {
            NodeRegistry::apply_change(
                &mut full.nodes,
                &NodeChange::Set(new_node(&format!("observer-{observer}"), 0)),
            );
            observer += 1;
        }
        chain.put(Record::Nodes(full));
        let one_more = chain.governance(change(vec![NodeChange::Set(new_node("node-4", 1))], 10));
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyNodes {
                count: limits::NODES_MAX + 1,
                limit: limits::NODES_MAX,
            })
        );
    }

    fn context(height: u64) -> Context<'static> {
        Context {
            chain_id: CHAIN_ID,
            suite: crate::testkit::SUITE,
            height,
            time: Chain::time_at(height),
        }
    }

    #[test]
    fn a_block_begins_by_applying_the_changes_due_at_its_height() {
        let mut chain = Chain::new();
        let mut scheduled = registry(&chain);
        let joining = new_node("node-4", 2);
        let leaving = chain.fixture.node_keys[0].public_key();
        scheduled.pending = vec![
            PendingNodeChange {
                effective_height: 3,
                changes: vec![NodeChange::Set(joining.clone())],
            },
            PendingNodeChange {
                effective_height: 3,
                changes: vec![NodeChange::Remove(leaving)],
            },
            PendingNodeChange {
                effective_height: 4,
                changes: vec![NodeChange::Remove(joining.key)],
            },
        ];
        chain.put(Record::Nodes(scheduled.clone()));

        let mut overlay = Overlay::new(&chain.state);
        begin_block(&mut overlay, &context(2)).unwrap();
        assert!(overlay.writes().is_empty(), "nothing is due at height 2");

        begin_block(&mut overlay, &context(3)).unwrap();
        let mut after = scheduled.clone();
        NodeRegistry::apply_change(&mut after.nodes, &NodeChange::Set(joining.clone()));
        NodeRegistry::apply_change(&mut after.nodes, &NodeChange::Remove(leaving));
        after.pending = scheduled.pending[2..].to_vec();
        assert_eq!(overlay.writes(), &writes([entry(Record::Nodes(after))]));
    }

    fn signed_prevote(
        key: &SecretKey,
        height: u64,
        value: Option<[u8; 32]>,
    ) -> SignedVote<[u8; 32]> {
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height,
            round: 0,
            value,
            validator: ValidatorId(key.public_key().0),
        };
        let signature = Signature(key.sign(&vote.sign_bytes(CHAIN_ID)).0);
        SignedVote { vote, signature }
    }

    fn conflicting_prevotes(key: &SecretKey, height: u64) -> Evidence {
        Evidence::ConflictingVotes {
            first: signed_prevote(key, height, Some([1; 32])),
            second: signed_prevote(key, height, None),
        }
    }

    fn genesis_set(chain: &Chain) -> ValidatorSet {
        validator_set(&registry(chain)).unwrap()
    }

    #[test]
    fn an_equivocation_is_recorded_once_under_its_slot() {
        let chain = Chain::new();
        let set = genesis_set(&chain);
        let offender = &chain.fixture.node_keys[1];
        let evidence = conflicting_prevotes(offender, 2);
        let key = EvidenceKey {
            validator: offender.public_key(),
            height: 2,
            round: 0,
            kind: EquivocationKind::Prevote,
        };
        let mut overlay = Overlay::new(&chain.state);
        let recorded = apply_evidence(&mut overlay, &context(3), &evidence, |_| {
            Ok(Some(set.clone()))
        });
        assert_eq!(recorded, Ok(key.clone()));
        assert_eq!(
            overlay.writes(),
            &writes([entry(Record::Evidence(EvidenceRecord {
                key: key.clone(),
                evidence: evidence.clone(),
                recorded_at: 3,
            }))])
        );

        let writes_before = overlay.writes().clone();
        assert_eq!(
            apply_evidence(&mut overlay, &context(3), &evidence, |_| Ok(Some(
                set.clone()
            ))),
            Err(EvidenceRuleError::AlreadyRecorded {
                validator: offender.public_key(),
                height: 2,
                round: 0,
                kind: "prevote",
            })
        );
        assert_eq!(overlay.writes(), &writes_before);
    }

    #[test]
    fn evidence_is_refused_outside_its_window_without_its_set_or_without_a_validator() {
        let chain = Chain::new();
        let set = genesis_set(&chain);
        let offender = &chain.fixture.node_keys[1];
        let refuse =
            |evidence: &Evidence,
             height: u64,
             set_at: &dyn Fn(u64) -> Result<Option<ValidatorSet>, StateError>| {
                let mut overlay = Overlay::new(&chain.state);
                let refusal = apply_evidence(&mut overlay, &context(height), evidence, set_at)
                    .expect_err("the evidence is refused");
                assert!(
                    overlay.writes().is_empty(),
                    "a refusal wrote {:?}",
                    overlay.writes()
                );
                refusal
            };
        let known = |_| Ok(Some(set.clone()));

        assert_eq!(
            refuse(&conflicting_prevotes(offender, 3), 3, &known),
            EvidenceRuleError::NotYetCommitted {
                height: 3,
                block_height: 3,
            }
        );
        let too_late = 2 + limits::EVIDENCE_AGE_BLOCKS_MAX;
        assert_eq!(
            refuse(&conflicting_prevotes(offender, 1), too_late, &known),
            EvidenceRuleError::TooOld {
                height: 1,
                block_height: too_late,
                max_age: limits::EVIDENCE_AGE_BLOCKS_MAX,
            }
        );
        assert_eq!(
            refuse(&conflicting_prevotes(offender, 1), 2, &|_| Ok(None)),
            EvidenceRuleError::ValidatorSetUnavailable { height: 1 }
        );
        let outsider = testkit::secret("outsider");
        assert!(matches!(
            refuse(&conflicting_prevotes(&outsider, 1), 2, &known),
            EvidenceRuleError::Invalid(_)
        ));
        let unreadable = |_| Err(StateError("disk gone".into()));
        assert_eq!(
            refuse(&conflicting_prevotes(offender, 1), 2, &unreadable),
            EvidenceRuleError::State(StateError("disk gone".into()))
        );
    }

    #[test]
    fn the_evidence_window_opens_after_the_height_and_closes_at_the_age_limit() {
        assert!(check_evidence_age(4, 5).is_ok());
        assert!(check_evidence_age(1, 1 + limits::EVIDENCE_AGE_BLOCKS_MAX).is_ok());
        assert_eq!(
            check_evidence_age(5, 5),
            Err(EvidenceRuleError::NotYetCommitted {
                height: 5,
                block_height: 5
            })
        );
        assert_eq!(
            check_evidence_age(1, 2 + limits::EVIDENCE_AGE_BLOCKS_MAX),
            Err(EvidenceRuleError::TooOld {
                height: 1,
                block_height: 2 + limits::EVIDENCE_AGE_BLOCKS_MAX,
                max_age: limits::EVIDENCE_AGE_BLOCKS_MAX,
            })
        );
    }
}
