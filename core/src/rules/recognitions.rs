//! The rules of recognition attestations (跨地区互通互认): a recognizer attests, on behalf of
//! a region within its own, that licence types issued in another region or by an authority
//! are recognised there; a recognizer of that region withdraws it.

use super::authorities::{require_region, require_role};
use super::error::RuleError;
use super::state::{Origin, Scratch, StateReader};
use super::window::require_within_window;
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::records::{IssuedBy, Recognition, Record, Role, TimeMs, TypeCode, Withdrawal};

/// An `AttestRecognition` body, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attestation<'b> {
    pub recognizing_region: &'b RegionCode,
    pub type_codes: &'b [TypeCode],
    pub issued_by: &'b IssuedBy,
    pub scope: &'b str,
    pub valid_from: TimeMs,
    pub valid_until: Option<TimeMs>,
}

/// `AttestRecognition`: a new recognition, named by the attesting transaction's id. Every
/// type and the issuing authority it names must exist, so that a verdict never meets a
/// recognition of something the ledger does not know. Its start is an event and lies inside
/// the event window (`window`); its end is a term of validity and is not bounded.
pub(super) fn attest<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    attestation: Attestation<'_>,
) -> Result<(), RuleError> {
    let Attestation {
        recognizing_region,
        type_codes,
        issued_by,
        scope,
        valid_from,
        valid_until,
    } = attestation;
    let recognizer = state.require_authority(origin.signer)?;
    require_role(&recognizer, Role::Recognizer)?;
    require_region(&recognizer, recognizing_region)?;
    require_within_window(origin.context, "valid_from", valid_from)?;
    for code in type_codes {
        state.require_type(code)?;
    }
    if let IssuedBy::Authority(authority) = issued_by {
        state.require_named_authority(authority)?;
    }
    if let Some(until) = valid_until
        && until <= valid_from
    {
        return Err(RuleError::EmptyValidity {
            valid_from,
            valid_until: until,
        });
    }
    state.put(Record::Recognition(Recognition {
        id: origin.id,
        recognizer: origin.signer.clone(),
        recognizing_region: recognizing_region.clone(),
        type_codes: type_codes.to_vec(),
        issued_by: issued_by.clone(),
        scope: scope.to_owned(),
        valid_from,
        valid_until,
        withdrawal: None,
        attested_at: origin.context.height,
    }));
    Ok(())
}

/// `WithdrawRecognition`: the recognition stops applying from `effective_at`, a time inside
/// the event window (`window`), and keeps the withdrawal's reason, signer and place on the
/// ledger. The region recognised the licences, not one department, so any recognizer whose
/// region covers the recognizing region may withdraw it, not only the one that attested it.
pub(super) fn withdraw<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    recognition_id: &Hash32,
    effective_at: TimeMs,
    reason: &str,
) -> Result<(), RuleError> {
    let mut recognition = state
        .recognition(recognition_id)?
        .ok_or(RuleError::UnknownRecognition(*recognition_id))?;
    let actor = state.require_authority(origin.signer)?;
    require_role(&actor, Role::Recognizer)?;
    require_region(&actor, &recognition.recognizing_region)?;
    if recognition.withdrawal.is_some() {
        return Err(RuleError::AlreadyWithdrawn(*recognition_id));
    }
    require_within_window(origin.context, "effective_at", effective_at)?;
    recognition.withdrawal = Some(Withdrawal {
        effective_at,
        reason: reason.to_owned(),
        by: origin.signer.clone(),
        height: origin.context.height,
        tx: origin.id,
    });
    state.put(Record::Recognition(recognition));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, entry, id, writes};
    use crate::hash::Hash32;
    use crate::limits;
    use crate::records::{Authority, IssuedBy, KeyEpoch, Recognition, Record, Role, Withdrawal};
    use crate::rules::RuleError;
    use crate::testkit::{self, GENESIS_TIME, region};
    use crate::tx::TxBody;

    fn attestation(recognizing_region: &str, issued_by: IssuedBy) -> TxBody {
        TxBody::AttestRecognition {
            recognizing_region: region(recognizing_region),
            type_codes: vec!["business-licence".into()],
            issued_by,
            scope: "政务服务 government services".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
        }
    }

    fn shandong() -> IssuedBy {
        IssuedBy::Region(region("370000"))
    }

    fn withdrawal(recognition: Hash32) -> TxBody {
        TxBody::WithdrawRecognition {
            id: recognition,
            effective_at: GENESIS_TIME + 60_000,
            reason: "the agreement ended".into(),
        }
    }

    #[test]
    fn an_attestation_is_written_under_its_transaction_id_and_a_withdrawal_dates_its_end() {
        let mut chain = Chain::new();
        let attest = chain
            .fixture
            .tx("xj-recognizer", attestation("650100", shandong()));
        let signer = chain.signer_after_next("xj-recognizer");
        let mut recognition = Recognition {
            id: attest.id(crate::testkit::SUITE),
            recognizer: id("xj-recognizer"),
            recognizing_region: region("650100"),
            type_codes: vec!["business-licence".into()],
            issued_by: shandong(),
            scope: "政务服务 government services".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
            withdrawal: None,
            attested_at: 1,
        };
        assert_eq!(
            chain.apply(&attest).unwrap(),
            writes([signer, entry(Record::Recognition(recognition.clone()))])
        );

        let withdraw = chain.fixture.tx(
            "xj-recognizer",
            withdrawal(attest.id(crate::testkit::SUITE)),
        );
        let signer = chain.signer_after_next("xj-recognizer");
        recognition.withdrawal = Some(Withdrawal {
            effective_at: GENESIS_TIME + 60_000,
            reason: "the agreement ended".into(),
            by: id("xj-recognizer"),
            height: 2,
            tx: withdraw.id(crate::testkit::SUITE),
        });
        assert_eq!(
            chain.apply(&withdraw).unwrap(),
            writes([signer, entry(Record::Recognition(recognition))])
        );

        let again = chain.fixture.tx(
            "xj-recognizer",
            withdrawal(attest.id(crate::testkit::SUITE)),
        );
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::AlreadyWithdrawn(
                attest.id(crate::testkit::SUITE)
            ))
        );
    }

    #[test]
    fn an_attestation_is_a_recognizers_for_its_own_region_of_known_records() {
        let mut chain = Chain::new();
        let not_a_recognizer = chain
            .fixture
            .tx("qd-market", attestation("370200", shandong()));
        assert_eq!(
            chain.apply(&not_a_recognizer),
            Err(RuleError::MissingRole {
                authority: id("qd-market"),
                role: Role::Recognizer,
            })
        );

        let for_another_region = chain
            .fixture
            .tx("xj-recognizer", attestation("370000", shandong()));
        assert_eq!(
            chain.apply(&for_another_region),
            Err(RuleError::RegionOutsideAuthority {
                authority: id("xj-recognizer"),
                authority_region: region("650000"),
                region: region("370000"),
            })
        );

        let mut unknown_type = attestation("650000", shandong());
        if let TxBody::AttestRecognition { type_codes, .. } = &mut unknown_type {
            type_codes.push("fishing".into());
        }
        let unknown_type = chain.fixture.tx("xj-recognizer", unknown_type);
        assert_eq!(
            chain.apply(&unknown_type),
            Err(RuleError::UnknownType("fishing".into()))
        );

        let unknown_issuer = chain.fixture.tx(
            "xj-recognizer",
            attestation("650000", IssuedBy::Authority(id("nobody"))),
        );
        assert_eq!(
            chain.apply(&unknown_issuer),
            Err(RuleError::UnknownNamedAuthority(id("nobody")))
        );

        let mut empty = attestation("650000", shandong());
        if let TxBody::AttestRecognition { valid_until, .. } = &mut empty {
            *valid_until = Some(GENESIS_TIME);
        }
        let empty = chain.fixture.tx("xj-recognizer", empty);
        assert_eq!(
            chain.apply(&empty),
            Err(RuleError::EmptyValidity {
                valid_from: GENESIS_TIME,
                valid_until: GENESIS_TIME,
            })
        );
    }

    #[test]
    fn a_withdrawal_is_a_recognizers_of_the_recognizing_region() {
        let mut chain = Chain::new();
        let unknown = chain.fixture.tx("xj-recognizer", withdrawal(Hash32::ZERO));
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownRecognition(Hash32::ZERO))
        );

        let attest = chain
            .fixture
            .tx("xj-recognizer", attestation("650000", shandong()));
        chain.apply(&attest).unwrap();

        let not_a_recognizer = chain
            .fixture
            .tx("qd-market", withdrawal(attest.id(crate::testkit::SUITE)));
        assert_eq!(
            chain.apply(&not_a_recognizer),
            Err(RuleError::MissingRole {
                authority: id("qd-market"),
                role: Role::Recognizer,
            })
        );

        // A recognizer of Shandong may not withdraw what Xinjiang recognised.
        let key = testkit::secret("sd-recognizer");
        chain.put(Record::Authority(Authority {
            id: id("sd-recognizer"),
            name_zh: "山东省大数据局".into(),
            name_en: "Shandong Big Data Bureau".into(),
            region: region("370000"),
            uscc: testkit::uscc("370000", 7),
            roles: vec![Role::Recognizer],
            keys: vec![KeyEpoch {
                key: key.public_key(),
                valid_from: 0,
                valid_until: None,
                compromised_from: None,
            }],
            last_nonce: 0,
            registered_at: 0,
        }));
        chain.fixture.keys.insert(id("sd-recognizer"), key);
        let elsewhere = chain.fixture.tx(
            "sd-recognizer",
            withdrawal(attest.id(crate::testkit::SUITE)),
        );
        assert_eq!(
            chain.apply(&elsewhere),
            Err(RuleError::RegionOutsideAuthority {
                authority: id("sd-recognizer"),
                authority_region: region("370000"),
                region: region("650000"),
            })
        );
    }

    #[test]
    fn a_recognitions_start_and_its_withdrawal_are_dated_inside_the_event_window() {
        let mut chain = Chain::new();
        let dated = |valid_from: u64| {
            let mut body = attestation("650000", shandong());
            if let TxBody::AttestRecognition {
                valid_from: from, ..
            } = &mut body
            {
                *from = valid_from;
            }
            body
        };
        let block_time = chain.next_context().time;
        let backdated = chain.fixture.tx(
            "xj-recognizer",
            dated(block_time - limits::EVENT_BACKDATING_MS_MAX - 1),
        );
        assert_eq!(
            chain.refuse(&backdated, "effective_time_too_far_back"),
            RuleError::EffectiveTimeTooFarBack {
                field: "valid_from",
                effective_at: block_time - limits::EVENT_BACKDATING_MS_MAX - 1,
                block_time,
                limit_ms: limits::EVENT_BACKDATING_MS_MAX,
            }
        );
        let scheduled = chain.fixture.tx(
            "xj-recognizer",
            dated(block_time + limits::EVENT_SCHEDULING_MS_MAX + 1),
        );
        chain.refuse(&scheduled, "effective_time_too_far_ahead");
        let attest = chain.fixture.tx("xj-recognizer", dated(block_time));
        chain.apply(&attest).unwrap();
        let recognition = attest.id(crate::testkit::SUITE);

        let withdrawal_at = |effective_at: u64| TxBody::WithdrawRecognition {
            id: recognition,
            effective_at,
            reason: "the agreement ended".into(),
        };
        let block_time = chain.next_context().time;
        let backdated = chain.fixture.tx(
            "xj-recognizer",
            withdrawal_at(block_time - limits::EVENT_BACKDATING_MS_MAX - 1),
        );
        assert_eq!(
            chain.refuse(&backdated, "effective_time_too_far_back"),
            RuleError::EffectiveTimeTooFarBack {
                field: "effective_at",
                effective_at: block_time - limits::EVENT_BACKDATING_MS_MAX - 1,
                block_time,
                limit_ms: limits::EVENT_BACKDATING_MS_MAX,
            }
        );
        // A withdrawal parked in the far future would have kept the recognition from ever
        // being withdrawn in time (a second withdrawal is refused).
        let parked = chain.fixture.tx(
            "xj-recognizer",
            withdrawal_at(block_time + limits::EVENT_SCHEDULING_MS_MAX + 1),
        );
        chain.refuse(&parked, "effective_time_too_far_ahead");
        let earliest = chain.fixture.tx(
            "xj-recognizer",
            withdrawal_at(block_time - limits::EVENT_BACKDATING_MS_MAX),
        );
        chain.apply(&earliest).unwrap();
        let Some(Record::Recognition(withdrawn)) = chain
            .state
            .records
            .get(&crate::records::RecordKey::Recognition(recognition))
        else {
            panic!("the recognition is gone")
        };
        let withdrawal = withdrawn.withdrawal.clone().expect("withdrawn");
        assert_eq!(withdrawal.reason, "the agreement ended");
        assert_eq!(
            withdrawn.withdrawn_at(),
            Some(block_time - limits::EVENT_BACKDATING_MS_MAX)
        );
        assert!(!withdrawn.in_force_at(block_time));
    }
}
