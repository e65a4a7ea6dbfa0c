//! The rules of recognition attestations (跨地区互通互认): a recognizer attests, on behalf of
//! a region within its own, that licence types issued in another region or by an authority
//! are recognised there; a recognizer of that region withdraws it.

use super::authorities::{require_region, require_role};
use super::error::RuleError;
use super::state::wrong_kind;
use super::state::{Origin, Scratch, StateReader};
use super::window::require_within_window;
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::limits::{RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX, RECOGNITIONS_PER_SET_MAX};
use crate::records::{
    IssuedBy, Recognition, RecognitionEntry, RecognitionSet, Record, RecordKey, Role, TimeMs,
    TypeCode, Withdrawal,
};

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
    let recognition = Recognition {
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
    };
    let mut named: Vec<&TypeCode> = Vec::with_capacity(type_codes.len());
    for code in type_codes {
        if named.contains(&code) {
            continue;
        }
        named.push(code);
        let mut set = recognition_set(state, recognizing_region, code)?;
        make_room(&mut set, &recognition.recognizer, origin.context.time)?;
        set.entries.push(RecognitionEntry {
            id: recognition.id,
            recognizer: recognition.recognizer.clone(),
            issued_by: recognition.issued_by.clone(),
            ends_at: recognition.ends_at(),
        });
        state.put(Record::RecognitionSet(set));
    }
    state.put(Record::Recognition(recognition));
    Ok(())
}

/// The set of `region`'s recognitions of `type_code` (ADR 0039), empty when none was attested.
fn recognition_set<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    region: &RegionCode,
    type_code: &TypeCode,
) -> Result<RecognitionSet, RuleError> {
    let key = RecordKey::RecognitionSet(region.clone(), type_code.clone());
    match state.get(&key)? {
        Some(Record::RecognitionSet(set)) => Ok(set),
        Some(_) => Err(wrong_kind(&key).into()),
        None => Ok(RecognitionSet {
            recognizing_region: region.clone(),
            type_code: type_code.clone(),
            entries: Vec::new(),
            pruned_before: 0,
        }),
    }
}

/// Room in `set` for one more entry of `recognizer`: when the set or the recognizer's share
/// of it is full, the entries that ended by `now` are dropped first (the set then says from
/// when on it is whole, `pruned_before`); if it is still full, the attestation is refused.
fn make_room(
    set: &mut RecognitionSet,
    recognizer: &crate::records::AuthorityId,
    now: TimeMs,
) -> Result<(), RuleError> {
    let share = |set: &RecognitionSet| {
        set.entries
            .iter()
            .filter(|entry| entry.recognizer == *recognizer)
            .count()
    };
    let full = |set: &RecognitionSet| {
        set.entries.len() >= RECOGNITIONS_PER_SET_MAX
            || share(set) >= RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX
    };
    if full(set) {
        let mut pruned_before = set.pruned_before;
        set.entries.retain(|entry| match entry.ends_at {
            Some(end) if end <= now => {
                pruned_before = pruned_before.max(end);
                false
            }
            _ => true,
        });
        set.pruned_before = pruned_before;
    }
    if set.entries.len() >= RECOGNITIONS_PER_SET_MAX {
        return Err(RuleError::RecognitionSetFull {
            region: set.recognizing_region.clone(),
            type_code: set.type_code.clone(),
            limit: RECOGNITIONS_PER_SET_MAX,
        });
    }
    if share(set) >= RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX {
        return Err(RuleError::RecognitionShareFull {
            recognizer: recognizer.clone(),
            region: set.recognizing_region.clone(),
            type_code: set.type_code.clone(),
            limit: RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX,
        });
    }
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
    // Each set it is in learns its new end.
    let mut named: Vec<&TypeCode> = Vec::with_capacity(recognition.type_codes.len());
    for code in &recognition.type_codes {
        if named.contains(&code) {
            continue;
        }
        named.push(code);
        let mut set = recognition_set(state, &recognition.recognizing_region, code)?;
        if let Some(entry) = set
            .entries
            .iter_mut()
            .find(|entry| entry.id == *recognition_id)
        {
            entry.ends_at = recognition.ends_at();
            state.put(Record::RecognitionSet(set));
        }
    }
    state.put(Record::Recognition(recognition));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, entry, id, writes};
    use crate::hash::Hash32;
    use crate::limits;
    use crate::records::{
        Authority, IssuedBy, KeyEpoch, Recognition, RecognitionEntry, RecognitionSet, Record,
        RecordKey, Role, Withdrawal,
    };
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
        // The recognition joins the set of its region and type (ADR 0039).
        let mut set = RecognitionSet {
            recognizing_region: region("650100"),
            type_code: "business-licence".into(),
            entries: vec![RecognitionEntry {
                id: recognition.id,
                recognizer: id("xj-recognizer"),
                issued_by: shandong(),
                ends_at: None,
            }],
            pruned_before: 0,
        };
        assert_eq!(
            chain.apply(&attest).unwrap(),
            writes([
                signer,
                entry(Record::Recognition(recognition.clone())),
                entry(Record::RecognitionSet(set.clone())),
            ])
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
        // The set learns when it ends.
        set.entries[0].ends_at = Some(GENESIS_TIME + 60_000);
        assert_eq!(
            chain.apply(&withdraw).unwrap(),
            writes([
                signer,
                entry(Record::Recognition(recognition)),
                entry(Record::RecognitionSet(set)),
            ])
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
        register_recognizer(&mut chain, "sd-recognizer", "370000", 7);
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

    fn set_of(chain: &Chain, recognizing_region: &str) -> RecognitionSet {
        match chain.state.records.get(&RecordKey::RecognitionSet(
            region(recognizing_region),
            "business-licence".into(),
        )) {
            Some(Record::RecognitionSet(set)) => set.clone(),
            other => panic!("no recognition set: {other:?}"),
        }
    }

    /// Registers a recognizer of `region_code` named `name` (its key derived from the name).
    fn register_recognizer(chain: &mut Chain, name: &str, region_code: &str, serial: u64) {
        let key = testkit::secret(name);
        chain.put(Record::Authority(Authority {
            id: id(name),
            name_zh: format!("{name}（互认机构）"),
            name_en: format!("{name} (recognizer)"),
            region: region(region_code),
            uscc: testkit::uscc(region_code, serial),
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
        chain.fixture.keys.insert(id(name), key);
    }

    /// One recognizer (or a thief with its key) fills its share of a region's set and no
    /// more: its next attestation is refused and changes nothing, and another recognizer of
    /// the region still finds room.
    #[test]
    fn one_recognizer_cannot_fill_a_regions_set() {
        let mut chain = Chain::new();
        for _ in 0..limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX {
            let junk = chain
                .fixture
                .tx("xj-recognizer", attestation("650000", shandong()));
            chain.apply(&junk).unwrap();
        }
        let before = chain.state.records.clone();
        let one_more = chain
            .fixture
            .tx("xj-recognizer", attestation("650000", shandong()));
        assert_eq!(
            chain.refuse(&one_more, "recognition_share_full"),
            RuleError::RecognitionShareFull {
                recognizer: id("xj-recognizer"),
                region: region("650000"),
                type_code: "business-licence".into(),
                limit: limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX,
            }
        );
        assert_eq!(chain.state.records, before);

        register_recognizer(&mut chain, "xj-second", "650000", 8);
        let honest = chain
            .fixture
            .tx("xj-second", attestation("650000", shandong()));
        chain.apply(&honest).unwrap();
        let set = set_of(&chain, "650000");
        assert_eq!(
            set.entries.len(),
            limits::RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX + 1
        );
        assert_eq!(
            set.entries.last().map(|entry| entry.id),
            Some(honest.id(crate::testkit::SUITE))
        );
    }

    /// A full set makes room by dropping the entries that ended, and says from when it is
    /// whole; with none ended, the attestation is refused.
    #[test]
    fn a_full_set_drops_ended_entries_first_and_then_refuses() {
        let mut chain = Chain::new();
        let recognizers: Vec<String> = (0..3).map(|n| format!("xj-recognizer-{n}")).collect();
        for (n, name) in recognizers.iter().enumerate() {
            register_recognizer(&mut chain, name, "650000", 10 + n as u64);
        }
        let mut first = None;
        for n in 0..limits::RECOGNITIONS_PER_SET_MAX {
            let name = &recognizers[n % 2];
            let attest = chain.fixture.tx(name, attestation("650000", shandong()));
            chain.apply(&attest).unwrap();
            first.get_or_insert(attest.id(crate::testkit::SUITE));
        }
        let before = chain.state.records.clone();
        let third = chain
            .fixture
            .tx(&recognizers[2], attestation("650000", shandong()));
        assert_eq!(
            chain.refuse(&third, "recognition_set_full"),
            RuleError::RecognitionSetFull {
                region: region("650000"),
                type_code: "business-licence".into(),
                limit: limits::RECOGNITIONS_PER_SET_MAX,
            }
        );
        assert_eq!(chain.state.records, before);

        // The first one is withdrawn, from now on: it has ended, and makes room.
        let first = first.unwrap();
        let now = chain.next_context().time;
        let withdraw = chain.fixture.tx(
            &recognizers[0],
            TxBody::WithdrawRecognition {
                id: first,
                effective_at: now,
                reason: "the agreement ended".into(),
            },
        );
        chain.apply(&withdraw).unwrap();
        let third = chain
            .fixture
            .tx(&recognizers[2], attestation("650000", shandong()));
        chain.apply(&third).unwrap();
        let set = set_of(&chain, "650000");
        assert_eq!(set.entries.len(), limits::RECOGNITIONS_PER_SET_MAX);
        assert!(set.entries.iter().all(|entry| entry.id != first));
        assert_eq!(set.pruned_before, now);
    }
}
