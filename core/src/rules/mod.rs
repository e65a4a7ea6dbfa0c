//! The rules: one deterministic function that applies a transaction to the state or rejects
//! it with a typed reason (docs/design.md section 3). It is used both to admit a transaction to the
//! mempool and to execute a block, so that every node accepts exactly the same transactions.
//!
//! A rejected transaction changes nothing: [`apply_transaction`] works on a scratch copy of the
//! records it touches and merges them into the block's [`Overlay`] only when every check
//! passed.
//!
//! Signatures are checked apart from the other rules, for a whole block at once
//! ([`check_signatures`]), because the keys valid at a height never depend on transactions of
//! the same block: a registered key signs from the next height on, and a rotation takes effect
//! at a later height than the block that records it.
//!
//! This file holds what every transaction goes through (the chain, the clock, the nonce, who
//! must sign) and dispatches each body to the rules of its record family, one file each:
//!
//! | file | bodies |
//! |---|---|
//! | `authorities` | `RegisterAuthority`, `UpdateAuthority` (and the governors list) |
//! | `keys` | `RotateKey`, `ReportKeyCompromise`, and who owns each public key |
//! | `catalogue` | `DefineLicenceType`, `AmendLicenceType`, `RetireLicenceType`, `GrantIssuance`, `RevokeGrant` |
//! | `licences` | `IssueLicence`, `ChangeStatus`, `AmendLicence` (and the face-field checks) |
//! | `recognitions` | `AttestRecognition`, `WithdrawRecognition` |
//! | `objections` | `FileObjection`, `ResolveObjection` |
//! | `validators` | `ChangeValidators`, and per block [`begin_block`] and [`apply_evidence`] |
//! | `quotas` | `SetWriteQuota`, and the count of every transaction against its signer's quota ([`write_allowance`]) |
//! | `signatures` | [`check_signatures`], [`check_candidate_signatures`] |
//! | `rights` | the issuer's right to change a licence, checked at every write |
//! | `corrections` | `CorrectEvent`: the governors void or retime an event entered wrongly |
//! | `window` | the event window: how far before and after the block time an event may be dated |
//!
//! Below them sit `error` ([`RuleError`], [`StateError`]) and `state` ([`StateReader`],
//! [`Context`], [`Overlay`] and the per-transaction scratch view). The files import only
//! downwards: the families use `error` and `state` (and `licences` and `recognitions` use
//! the authority checks of `authorities`; `licences`, `recognitions` and `corrections` use
//! `window`), this file uses them all, and none of them uses this file.

mod authorities;
mod catalogue;
mod corrections;
mod error;
mod keys;
mod licences;
mod objections;
mod quotas;
mod recognitions;
mod rights;
mod signatures;
mod state;
mod validators;
mod window;

#[cfg(test)]
mod attacks_tests;
#[cfg(test)]
mod testing;

pub use crate::calendar::is_calendar_date;
pub use error::{RuleError, StateError};
pub use licences::{check_canonical_number, check_face};
pub use quotas::write_allowance;
pub use signatures::{
    NothingVerified, SignatureCandidate, SignatureCheck, VerifiedSignatures,
    check_candidate_signatures, check_signatures,
};
pub use state::{Context, Overlay, StateReader};
pub use validators::{
    EvidenceRuleError, apply_evidence, begin_block, check_evidence, check_evidence_age,
};

use crate::hash::Hash32;
use crate::limits;
use crate::records::{AuthorityId, LicenceNumber, Record, TypeCode};
use crate::tx::{Transaction, TxBody, TxPayload};
use state::{Origin, Scratch};

/// What a transaction did, for the store's indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The licence it issued or changed, if any.
    pub licence: Option<(TypeCode, LicenceNumber)>,
    /// Every authority that signed it.
    pub authorities: Vec<AuthorityId>,
}

/// Applies one transaction whose signatures [`check_signatures`] accepted. On error nothing
/// is written.
pub fn apply_transaction<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
    transaction: &Transaction,
    id: Hash32,
) -> Result<Applied, RuleError> {
    if overlay.has_applied(&id) {
        return Err(RuleError::DuplicateInBlock(id));
    }
    let mut scratch = Scratch::new(overlay);
    let applied = execute(&mut scratch, context, transaction, id)?;
    let writes = scratch.into_writes();
    overlay.merge(writes, id);
    Ok(applied)
}

/// The checks every transaction goes through, whatever its body: the chain, the clock, the
/// signer's nonce and who must sign; then the body's own rules.
fn execute<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    context: &Context<'_>,
    transaction: &Transaction,
    id: Hash32,
) -> Result<Applied, RuleError> {
    let payload = &transaction.payload;
    if payload.chain_id != context.chain_id {
        return Err(RuleError::WrongChain {
            expected: context.chain_id.to_owned(),
            found: payload.chain_id.clone(),
        });
    }
    if payload.created_at > context.time.saturating_add(limits::TX_CLOCK_SKEW_MS_MAX) {
        return Err(RuleError::CreatedInFuture {
            created_at: payload.created_at,
            block_time: context.time,
            skew_ms: limits::TX_CLOCK_SKEW_MS_MAX,
        });
    }
    if payload.created_at < context.time.saturating_sub(limits::TX_AGE_MS_MAX) {
        return Err(RuleError::CreatedTooLongAgo {
            created_at: payload.created_at,
            block_time: context.time,
            age_ms_max: limits::TX_AGE_MS_MAX,
        });
    }
    require_plain_texts(&payload.body)?;
    let mut signer = state.require_authority(&payload.signer)?;
    // Each of a signer's nonces is exactly one above its last (ADR 0011): a block can never
    // hold a signer's later transaction without the earlier ones.
    if payload.nonce <= signer.last_nonce {
        // Only here can the transaction be one already committed: it moved the signer's
        // nonce to its own, so a replay always lands in this branch, and the location index
        // is read for the few transactions that reach it rather than for every one.
        if state.is_committed(&id)? {
            return Err(RuleError::Replay(id));
        }
        return Err(RuleError::NonceNotIncreasing {
            authority: signer.id.clone(),
            last: signer.last_nonce,
            found: payload.nonce,
        });
    }
    if payload.nonce - signer.last_nonce > 1 {
        return Err(RuleError::NonceGap {
            authority: signer.id.clone(),
            expected: signer.last_nonce + 1,
            found: payload.nonce,
        });
    }
    let endorsers: Vec<AuthorityId> = transaction
        .signatures
        .iter()
        .map(|endorsement| endorsement.authority.clone())
        .collect();
    authorise(state, payload, &endorsers)?;
    // The quota after who signed, so that a forgery is refused for its signatures and never
    // spends the real signer's quota; a refusal by a later rule writes no count either.
    quotas::count(state, context.height, &payload.signer, &payload.body)?;

    // The nonce moves first, so that a body that rewrites the signer's own record (a key
    // rotation, a role change) starts from the updated nonce.
    signer.last_nonce = payload.nonce;
    state.put(Record::Authority(signer));

    let licence = execute_body(state, context, payload, id, &endorsers)?;
    Ok(Applied {
        licence,
        authorities: endorsers,
    })
}

/// No text of the body that reaches a record holds a format character (Unicode category
/// Cf): invisible, they make names that look alike differ, or turn them around (ADR 0033).
fn require_plain_texts(body: &TxBody) -> Result<(), RuleError> {
    for (field, text) in body.texts() {
        if let Some(found) = crate::tx::first_format_character(text) {
            return Err(RuleError::FormatCharacter { field, found });
        }
    }
    Ok(())
}

/// Who must sign: governance records need more than two thirds of the governors; a key
/// rotation needs the authority itself or the governors; the resolution of an objection is a
/// supervisor's alone or, signed by more than one, the governors' (ADR 0034); everything else
/// is signed by the signer alone.
fn authorise<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    payload: &TxPayload,
    endorsers: &[AuthorityId],
) -> Result<(), RuleError> {
    let by_governors = match &payload.body {
        body if body.is_governance() => true,
        TxBody::RotateKey { authority, .. } => !is_self_rotation(authority, endorsers),
        TxBody::ResolveObjection { .. } => endorsers.len() > 1,
        _ => false,
    };
    if !by_governors {
        if let Some(extra) = endorsers
            .iter()
            .find(|endorser| **endorser != payload.signer)
        {
            return Err(RuleError::UnexpectedEndorser(extra.clone()));
        }
        return Ok(());
    }
    authorities::require_governors(state, endorsers)
}

/// Whether a key rotation of `authority` is signed by the authority alone (else the governors
/// sign it, and [`authorise`] counts them).
fn is_self_rotation(authority: &AuthorityId, endorsers: &[AuthorityId]) -> bool {
    endorsers.len() == 1 && endorsers.first() == Some(authority)
}

/// Runs the rules of `payload.body`'s record family. The transaction-wide checks have passed
/// and the signer's nonce has moved. Returns the licence the body issued or changed, if any.
fn execute_body<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    context: &Context<'_>,
    payload: &TxPayload,
    id: Hash32,
    endorsers: &[AuthorityId],
) -> Result<Option<(TypeCode, LicenceNumber)>, RuleError> {
    let origin = Origin {
        context,
        signer: &payload.signer,
        id,
    };
    let licence =
        |type_code: &TypeCode, number: &LicenceNumber| Some((type_code.clone(), number.clone()));
    match &payload.body {
        TxBody::RegisterAuthority(draft) => authorities::register(state, origin, draft)?,
        TxBody::UpdateAuthority {
            id: target,
            name_zh,
            name_en,
            roles,
        } => authorities::update(
            state,
            target,
            name_zh.as_ref(),
            name_en.as_ref(),
            roles.as_deref(),
        )?,
        TxBody::RotateKey {
            authority,
            new_key,
            effective_height,
        } => keys::rotate_key(
            state,
            origin,
            authority,
            new_key,
            *effective_height,
            !is_self_rotation(authority, endorsers),
        )?,
        TxBody::ReportKeyCompromise {
            authority,
            compromised_from,
            new_key,
        } => keys::report_compromise(
            state,
            origin,
            authority,
            *compromised_from,
            new_key.as_ref(),
        )?,
        TxBody::DefineLicenceType(draft) => catalogue::define_type(state, origin, draft)?,
        TxBody::GrantIssuance {
            authority,
            type_code,
            region,
        } => catalogue::grant(state, origin, authority, type_code, region)?,
        TxBody::RevokeGrant {
            authority,
            type_code,
            region,
        } => catalogue::revoke_grant(state, origin, authority, type_code, region)?,
        TxBody::IssueLicence {
            type_code,
            number,
            holder,
            holder_name,
            region,
            face,
            valid_from,
            valid_until,
            document_hash,
        } => {
            let issuance = licences::Issuance {
                type_code,
                number,
                holder,
                holder_name,
                region,
                face,
                valid_from: *valid_from,
                valid_until,
                document_hash: *document_hash,
            };
            licences::issue(state, origin, issuance)?;
            return Ok(licence(type_code, number));
        }
        TxBody::ChangeStatus {
            type_code,
            number,
            action,
            effective_at,
            reason,
        } => {
            let dated = licences::Dated {
                effective_at: *effective_at,
                reason,
            };
            licences::change_status(state, origin, type_code, number, action, dated)?;
            return Ok(licence(type_code, number));
        }
        TxBody::AmendLicence {
            type_code,
            number,
            changes,
            effective_at,
            reason,
        } => {
            let dated = licences::Dated {
                effective_at: *effective_at,
                reason,
            };
            licences::amend(state, origin, type_code, number, changes, dated)?;
            return Ok(licence(type_code, number));
        }
        TxBody::AttestRecognition {
            recognizing_region,
            type_codes,
            issued_by,
            scope,
            valid_from,
            valid_until,
        } => {
            let attestation = recognitions::Attestation {
                recognizing_region,
                type_codes,
                issued_by,
                scope,
                valid_from: *valid_from,
                valid_until: *valid_until,
            };
            recognitions::attest(state, origin, attestation)?
        }
        TxBody::WithdrawRecognition {
            id: recognition_id,
            effective_at,
            reason,
        } => recognitions::withdraw(state, origin, recognition_id, *effective_at, reason)?,
        TxBody::FileObjection {
            type_code,
            number,
            reason,
            recognition,
        } => {
            let filing = objections::Filing {
                type_code,
                number,
                reason,
                recognition: recognition.as_ref(),
            };
            objections::file(state, origin, filing)?;
            return Ok(licence(type_code, number));
        }
        TxBody::ResolveObjection {
            id: objection_id,
            outcome,
            note,
            follow_up,
        } => {
            let settlement = objections::Settlement {
                id: objection_id,
                outcome: *outcome,
                note,
                follow_up: *follow_up,
                by_governors: endorsers.len() > 1,
            };
            let (type_code, number) = objections::resolve(state, origin, settlement)?;
            return Ok(Some((type_code, number)));
        }
        TxBody::ChangeValidators {
            changes,
            effective_height,
        } => validators::change_validators(state, context, changes, *effective_height)?,
        TxBody::SetWriteQuota { scope, quota } => {
            quotas::set(state, origin, scope, quota.as_ref())?
        }
        TxBody::CorrectEvent {
            type_code,
            number,
            event,
            action,
            reason,
        } => {
            let correction = corrections::Correction {
                type_code,
                number,
                event: *event,
                action: *action,
                reason,
            };
            corrections::correct(state, origin, correction)?;
            return Ok(licence(type_code, number));
        }
        TxBody::AmendLicenceType(draft) => catalogue::amend_type(state, origin, draft)?,
        TxBody::RetireLicenceType { type_code, .. } => {
            catalogue::retire_type(state, origin, type_code)?
        }
        TxBody::TransferLicences {
            from,
            to,
            type_code,
            numbers,
            reason,
        } => {
            let transfer = licences::Transfer {
                from,
                to,
                type_code,
                numbers,
                reason,
            };
            licences::transfer(state, origin, transfer)?
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::testing::{Chain, id};
    use super::{Applied, Overlay, RuleError, apply_transaction};
    use crate::limits;
    use crate::records::{Record, RecordKey};
    use crate::testkit::{self, GENESIS_TIME};
    use crate::tx::{TxBody, TxPayload};

    fn revoke_body() -> TxBody {
        TxBody::RevokeGrant {
            authority: id("qd-approval"),
            type_code: "business-licence".into(),
            region: testkit::region("370200"),
        }
    }

    #[test]
    fn an_applied_transaction_names_its_licence_and_its_endorsers() {
        let mut chain = Chain::new();
        let context = chain.next_context();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let governance = chain.governance(revoke_body());
        let mut overlay = Overlay::new(&chain.state);
        let TxBody::IssueLicence { number, .. } = &issuance.payload.body else {
            unreachable!()
        };
        assert_eq!(
            apply_transaction(
                &mut overlay,
                &context,
                &issuance,
                issuance.id(crate::testkit::SUITE)
            ),
            Ok(Applied {
                licence: Some(("business-licence".into(), number.clone())),
                authorities: vec![id("qd-approval")],
            })
        );
        assert_eq!(
            apply_transaction(
                &mut overlay,
                &context,
                &governance,
                governance.id(crate::testkit::SUITE)
            ),
            Ok(Applied {
                licence: None,
                authorities: vec![id("gov-a"), id("gov-b"), id("gov-c")],
            })
        );
    }

    #[test]
    fn a_transaction_is_for_this_chain_and_not_from_the_future() {
        let mut chain = Chain::new();
        let mut payload = chain.fixture.payload("gov-a", revoke_body(), GENESIS_TIME);
        payload.chain_id = "hutong-other".into();
        let foreign = chain.fixture.sign(payload, &["gov-a", "gov-b", "gov-c"]);
        assert_eq!(
            chain.apply_rules(&foreign),
            Err(RuleError::WrongChain {
                expected: testkit::CHAIN_ID.into(),
                found: "hutong-other".into(),
            })
        );

        let block_time = chain.next_context().time;
        let ahead = block_time + limits::TX_CLOCK_SKEW_MS_MAX;
        let payload = chain.fixture.payload("gov-a", revoke_body(), ahead + 1);
        let future = chain.fixture.sign(payload, &["gov-a", "gov-b", "gov-c"]);
        assert_eq!(
            chain.apply_rules(&future),
            Err(RuleError::CreatedInFuture {
                created_at: ahead + 1,
                block_time,
                skew_ms: limits::TX_CLOCK_SKEW_MS_MAX,
            })
        );
        let payload = chain.fixture.payload("gov-a", revoke_body(), ahead);
        let at_the_edge = chain.fixture.sign(payload, &["gov-a", "gov-b", "gov-c"]);
        assert!(chain.apply_rules(&at_the_edge).is_ok());
    }

    #[test]
    fn the_signer_is_registered() {
        let mut chain = Chain::new();
        chain
            .fixture
            .keys
            .insert(id("nobody"), testkit::secret("nobody"));
        let payload = chain.fixture.payload("nobody", revoke_body(), GENESIS_TIME);
        let unknown = chain.fixture.sign(payload, &["nobody"]);
        assert_eq!(
            chain.apply_rules(&unknown),
            Err(RuleError::UnknownAuthority(id("nobody")))
        );
    }

    #[test]
    fn each_nonce_is_one_above_the_last_and_a_committed_transaction_is_a_replay() {
        let mut chain = Chain::new();
        let first = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        chain.apply(&first).unwrap();
        assert_eq!(
            chain.apply(&first),
            Err(RuleError::Replay(first.id(crate::testkit::SUITE)))
        );

        chain.fixture.set_last_nonce(&id("qd-approval"), 0);
        let reused = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 2);
        assert_eq!(
            chain.apply(&reused),
            Err(RuleError::NonceNotIncreasing {
                authority: id("qd-approval"),
                last: 1,
                found: 1,
            })
        );

        chain.fixture.set_last_nonce(&id("qd-approval"), 5);
        let skipping = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 3);
        assert_eq!(
            chain.apply(&skipping),
            Err(RuleError::NonceGap {
                authority: id("qd-approval"),
                expected: 2,
                found: 6,
            })
        );
    }

    #[test]
    fn a_transaction_is_applied_once_per_block() {
        let mut chain = Chain::new();
        let context = chain.next_context();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let mut overlay = Overlay::new(&chain.state);
        apply_transaction(
            &mut overlay,
            &context,
            &issuance,
            issuance.id(crate::testkit::SUITE),
        )
        .unwrap();
        let writes = overlay.writes().clone();
        assert_eq!(
            apply_transaction(
                &mut overlay,
                &context,
                &issuance,
                issuance.id(crate::testkit::SUITE)
            ),
            Err(RuleError::DuplicateInBlock(
                issuance.id(crate::testkit::SUITE)
            ))
        );
        assert_eq!(overlay.writes(), &writes);
    }

    fn signed(
        chain: &mut Chain,
        signer: &str,
        body: TxBody,
        endorsers: &[&str],
    ) -> crate::tx::Transaction {
        let payload: TxPayload = chain.fixture.payload(signer, body, GENESIS_TIME);
        chain.fixture.sign(payload, endorsers)
    }

    #[test]
    fn governance_needs_more_than_two_thirds_of_the_governors_and_nobody_else() {
        let mut chain = Chain::new();
        let two = signed(&mut chain, "gov-a", revoke_body(), &["gov-a", "gov-b"]);
        assert_eq!(
            chain.apply(&two),
            Err(RuleError::TooFewGovernorSignatures {
                signed: 2,
                governors: 4,
                required: 3,
            })
        );
        let with_an_issuer = signed(
            &mut chain,
            "gov-a",
            revoke_body(),
            &["gov-a", "gov-b", "qd-approval"],
        );
        assert_eq!(
            chain.apply(&with_an_issuer),
            Err(RuleError::EndorserNotGovernor(id("qd-approval")))
        );
    }

    #[test]
    fn other_records_are_signed_by_the_signer_alone() {
        let mut chain = Chain::new();
        let endorsed = signed(
            &mut chain,
            "qd-approval",
            testkit::business_licence_body("370200", 1),
            &["qd-approval", "qd-market"],
        );
        assert_eq!(
            chain.apply(&endorsed),
            Err(RuleError::UnexpectedEndorser(id("qd-market")))
        );
    }

    #[test]
    fn a_key_rotation_is_signed_by_the_authority_alone_or_by_the_governors() {
        let mut chain = Chain::new();
        let rotation = |name: &str| TxBody::RotateKey {
            authority: id("qd-approval"),
            new_key: testkit::secret(name).public_key(),
            effective_height: 5,
        };
        // With anyone beside it, the authority's own signature no longer suffices: the
        // rotation is then the governors'.
        let mixed = signed(
            &mut chain,
            "qd-approval",
            rotation("qd-approval-2"),
            &["qd-approval", "gov-a"],
        );
        assert_eq!(
            chain.apply(&mixed),
            Err(RuleError::EndorserNotGovernor(id("qd-approval")))
        );
        let too_few = signed(&mut chain, "gov-a", rotation("qd-approval-2"), &["gov-a"]);
        assert_eq!(
            chain.apply(&too_few),
            Err(RuleError::TooFewGovernorSignatures {
                signed: 1,
                governors: 4,
                required: 3,
            })
        );
        let alone = signed(
            &mut chain,
            "qd-approval",
            rotation("qd-approval-2"),
            &["qd-approval"],
        );
        assert!(chain.apply(&alone).is_ok());
    }

    #[test]
    fn admission_takes_the_nonces_before_a_waiting_transaction_as_used() {
        let chain = Chain::new();
        let signer = id("qd-approval");
        let key = RecordKey::Authority(signer.clone());
        let last_nonce = |overlay: &Overlay<'_, _>| match overlay.record(&key) {
            Ok(Some(Record::Authority(authority))) => authority.last_nonce,
            other => panic!("no authority: {other:?}"),
        };

        let mut overlay = Overlay::new(&chain.state);
        overlay.assume_nonces_before(&signer, 1, 4).unwrap();
        assert!(
            overlay.writes().is_empty(),
            "the next nonce needs nothing assumed"
        );
        overlay.assume_nonces_before(&signer, 5, 4).unwrap();
        assert_eq!(last_nonce(&overlay), 4);

        let mut overlay = Overlay::new(&chain.state);
        assert_eq!(
            overlay.assume_nonces_before(&signer, 6, 4),
            Err(RuleError::NonceGap {
                authority: signer.clone(),
                expected: 1,
                found: 6,
            })
        );
        assert!(overlay.writes().is_empty());
    }

    #[test]
    fn only_a_state_failure_is_the_nodes_own() {
        let state = RuleError::State(super::StateError("disk gone".into()));
        assert!(state.is_internal());
        assert_eq!(state.code(), "state_unavailable");
        assert!(!RuleError::NoGovernorLeft.is_internal());
    }
}
