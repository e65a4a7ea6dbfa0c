//! The governors' correction of an event entered wrongly in a licence's history (更正,
//! ADR 0032): `CorrectEvent` voids the event or gives it its right effective time. The event
//! stays in the history, marked with the correction's reason, signer and height; a voided
//! event no longer counts for the licence's standing (status, validity, the time later events
//! must follow), which is recomputed from the events that still count. A correction is a
//! governance record: more than two thirds of the governors sign it (`authorise` in the
//! parent module), never one department alone.

use super::error::RuleError;
use super::state::{Origin, Scratch, StateReader};
use super::window::require_not_too_far_ahead;
use crate::records::{
    CorrectionAction, CorrectionOutcome, EventCorrection, Licence, LicenceEvent, LicenceEventKind,
    LicenceNumber, Record, Status, StatusAction, TimeMs, TypeCode, transition,
};

/// A `CorrectEvent` body, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Correction<'b> {
    pub type_code: &'b TypeCode,
    pub number: &'b LicenceNumber,
    pub event: u32,
    pub action: CorrectionAction,
    pub reason: &'b str,
}

/// `CorrectEvent`: voids event `event` of the licence or moves its effective time. Refused,
/// with nothing changed, when the licence or the event does not exist, when the event is the
/// issuance (its time is the licence's validity) or was voided already, when an amendment
/// would be voided (its face values would stay; the issuer amends them back), when a new time
/// would put the event out of order among those that count or beyond the scheduling window,
/// and when a voiding would leave a later event that the state machine could not have
/// recorded.
pub(super) fn correct<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    correction: Correction<'_>,
) -> Result<(), RuleError> {
    let Correction {
        type_code,
        number,
        event,
        action,
        reason,
    } = correction;
    let mut licence = state.require_licence(type_code, number)?;
    let index = usize::try_from(event).unwrap_or(usize::MAX);
    let target = licence
        .events
        .get(index)
        .ok_or_else(|| RuleError::UnknownEvent {
            type_code: type_code.clone(),
            number: number.clone(),
            event,
            events: licence.events.len(),
        })?;
    if !target.counts() {
        return Err(RuleError::EventAlreadyVoided { event });
    }
    match target.kind {
        LicenceEventKind::Issued => {
            return Err(RuleError::CorrectionNotAllowed {
                event,
                kind: "issuance",
                why: "its time is the start of the licence's validity; a licence issued wrongly is revoked or abolished",
            });
        }
        LicenceEventKind::Transferred { .. } => {
            return Err(RuleError::CorrectionNotAllowed {
                event,
                kind: "transfer",
                why: "the governors hand the licences back by another transfer",
            });
        }
        LicenceEventKind::Amended { .. } if action == CorrectionAction::Void => {
            return Err(RuleError::CorrectionNotAllowed {
                event,
                kind: "amendment",
                why: "its face values would stay on the licence; the issuer amends them back, and the governors may only retime it",
            });
        }
        _ => {}
    }
    let entered_at = target
        .correction
        .as_ref()
        .map_or(target.effective_at, |earlier| earlier.entered_at);
    let outcome = match action {
        CorrectionAction::Void => CorrectionOutcome::Voided,
        CorrectionAction::Retime { effective_at } => {
            require_not_too_far_ahead(origin.context, "effective_at", effective_at)?;
            require_in_order(&licence, index, event, effective_at)?;
            CorrectionOutcome::Retimed
        }
    };
    let marked = EventCorrection {
        outcome,
        entered_at,
        reason: reason.to_owned(),
        by: origin.signer.clone(),
        height: origin.context.height,
        tx: origin.id,
    };
    let corrected = &mut licence.events[index];
    corrected.correction = Some(marked);
    if let CorrectionAction::Retime { effective_at } = action {
        corrected.effective_at = effective_at;
    }
    if outcome == CorrectionOutcome::Voided {
        require_history_follows(&licence, event)?;
    }
    state.put(Record::Licence(licence));
    Ok(())
}

/// Refuses a new time for the event at `index` that would break the order of the events that
/// count: not before the one before it, not after the one after it.
fn require_in_order(
    licence: &Licence,
    index: usize,
    event: u32,
    effective_at: TimeMs,
) -> Result<(), RuleError> {
    let counted_time =
        |candidate: &(usize, &LicenceEvent)| candidate.0 != index && candidate.1.counts();
    let earliest = licence
        .events
        .iter()
        .enumerate()
        .take(index)
        .filter(|candidate| counted_time(candidate))
        .map(|(_, event)| event.effective_at)
        .next_back()
        .unwrap_or(licence.valid_from);
    let latest = licence
        .events
        .iter()
        .enumerate()
        .skip(index + 1)
        .find(|candidate| counted_time(candidate))
        .map(|(_, event)| event.effective_at);
    if effective_at < earliest || latest.is_some_and(|latest| effective_at > latest) {
        return Err(RuleError::CorrectionOutOfOrder {
            event,
            effective_at,
            earliest,
            latest,
        });
    }
    Ok(())
}

/// Replays the events that still count through the status state machine and the register of
/// pledges, as `change_status` checked each when it was recorded, and refuses a voiding of
/// event `event` that leaves a later one the rules could not have recorded (a reinstatement
/// of a licence no longer suspended, the release of a pledge no longer registered).
fn require_history_follows(licence: &Licence, event: u32) -> Result<(), RuleError> {
    let mut status = Status::Active;
    let mut pledges: Vec<&str> = Vec::new();
    for (index, later) in licence.events.iter().enumerate() {
        if !later.counts() {
            continue;
        }
        let broken = |problem: String| RuleError::CorrectionBreaksHistory {
            event,
            later: u32::try_from(index).unwrap_or(u32::MAX),
            problem,
        };
        let action = match &later.kind {
            LicenceEventKind::Status(action) => action,
            LicenceEventKind::Amended { .. } if status.is_terminal() => {
                return Err(broken(format!(
                    "an amendment of a licence that is {}",
                    status.name()
                )));
            }
            LicenceEventKind::Issued
            | LicenceEventKind::Amended { .. }
            | LicenceEventKind::Transferred { .. } => continue,
        };
        status = transition(status, action).map_err(|illegal| broken(illegal.to_string()))?;
        match action {
            StatusAction::PledgeRegistered { reference, .. } => {
                if pledges.contains(&reference.as_str()) {
                    return Err(broken(format!(
                        "the pledge {reference:?} would be registered twice"
                    )));
                }
                pledges.push(reference);
            }
            StatusAction::PledgeReleased { reference } => {
                if !pledges.contains(&reference.as_str()) {
                    return Err(broken(format!(
                        "the pledge {reference:?} would be released without being registered"
                    )));
                }
                pledges.retain(|existing| *existing != reference.as_str());
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, id};
    use crate::hash::Hash32;
    use crate::records::{
        CorrectionAction, CorrectionOutcome, EventCorrection, FaceValue, LicenceEvent,
        LicenceEventKind, LicenceNumber, Record, Status, StatusAction,
    };
    use crate::rules::RuleError;
    use crate::testkit::GENESIS_TIME;
    use crate::tx::TxBody;

    /// 2200-01-01T00:00Z.
    const YEAR_2200_MS: u64 = 7_258_118_400_000;

    fn correction(number: &LicenceNumber, event: u32, action: CorrectionAction) -> TxBody {
        TxBody::CorrectEvent {
            type_code: "business-licence".into(),
            number: number.clone(),
            event,
            action,
            reason: "entered on the wrong licence".into(),
        }
    }

    fn status(number: &LicenceNumber, action: StatusAction, effective_at: u64) -> TxBody {
        TxBody::ChangeStatus {
            type_code: "business-licence".into(),
            number: number.clone(),
            action,
            effective_at,
            reason: "inspection finding".into(),
        }
    }

    /// Records `kind` effective at `effective_at` on the licence straight into the state, as
    /// a ledger written before the event window was would hold it.
    fn recorded(chain: &mut Chain, number: &LicenceNumber, kind: LicenceEventKind, at: u64) {
        let mut licence = chain.licence("business-licence", number);
        licence.events.push(LicenceEvent {
            kind,
            effective_at: at,
            reason: "recorded earlier".into(),
            by: id("qd-approval"),
            height: chain.height,
            tx: Hash32::ZERO,
            correction: None,
        });
        chain.put(Record::Licence(licence));
    }

    /// Applies `body` as the issuer's, dated at the next block's time.
    fn by_issuer(chain: &mut Chain, number: &LicenceNumber, action: StatusAction) -> bool {
        let now = chain.next_context().time;
        let transaction = chain.fixture.tx("qd-approval", status(number, action, now));
        chain.apply(&transaction).is_ok()
    }

    #[test]
    fn a_voided_event_stays_marked_and_no_longer_counts() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        recorded(
            &mut chain,
            &number,
            LicenceEventKind::Status(StatusAction::AnnualInspection),
            YEAR_2200_MS,
        );
        // The inspection of year 2200 holds the history: nothing dated now follows it.
        let now = chain.next_context().time;
        let revocation = chain
            .fixture
            .tx("qd-approval", status(&number, StatusAction::Revoke, now));
        chain.refuse(&revocation, "effective_time_before_last_event");

        let void = chain.governance(correction(&number, 1, CorrectionAction::Void));
        let height = chain.height + 1;
        chain.apply(&void).unwrap();
        let licence = chain.licence("business-licence", &number);
        assert_eq!(licence.events.len(), 2, "the event stays in the history");
        assert_eq!(licence.events[1].effective_at, YEAR_2200_MS);
        assert_eq!(
            licence.events[1].correction,
            Some(EventCorrection {
                outcome: CorrectionOutcome::Voided,
                entered_at: YEAR_2200_MS,
                reason: "entered on the wrong licence".into(),
                by: id("gov-a"),
                height,
                tx: void.id(crate::testkit::SUITE),
            })
        );
        assert_eq!(licence.last_effective_at(), GENESIS_TIME);
        assert_eq!(
            licence.final_standing().last_annual_inspection,
            None,
            "the voided inspection no longer counts"
        );
        assert!(by_issuer(&mut chain, &number, StatusAction::Revoke));
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .final_standing()
                .status,
            Status::Revoked
        );
        // Once voided, an event is not corrected again.
        let again = chain.governance(correction(&number, 1, CorrectionAction::Void));
        assert_eq!(
            chain.refuse(&again, "event_already_voided"),
            RuleError::EventAlreadyVoided { event: 1 }
        );
    }

    #[test]
    fn a_retimed_event_keeps_the_time_it_was_entered_with() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        recorded(
            &mut chain,
            &number,
            LicenceEventKind::Status(StatusAction::AnnualInspection),
            YEAR_2200_MS,
        );
        let right = GENESIS_TIME + 500;
        let retime = chain.governance(correction(
            &number,
            1,
            CorrectionAction::Retime {
                effective_at: right,
            },
        ));
        chain.apply(&retime).unwrap();
        let licence = chain.licence("business-licence", &number);
        assert_eq!(licence.events[1].effective_at, right);
        let marked = licence.events[1].correction.clone().expect("corrected");
        assert_eq!(marked.outcome, CorrectionOutcome::Retimed);
        assert_eq!(marked.entered_at, YEAR_2200_MS);
        assert_eq!(licence.final_standing().last_annual_inspection, Some(right));
        // A second retiming keeps the time first entered.
        let again = chain.governance(correction(
            &number,
            1,
            CorrectionAction::Retime {
                effective_at: right + 1,
            },
        ));
        chain.apply(&again).unwrap();
        let licence = chain.licence("business-licence", &number);
        let marked = licence.events[1].correction.clone().expect("corrected");
        assert_eq!(
            (marked.entered_at, licence.events[1].effective_at),
            (YEAR_2200_MS, right + 1)
        );
        assert!(by_issuer(&mut chain, &number, StatusAction::Suspend));
    }

    #[test]
    fn a_retiming_keeps_the_order_of_the_events_and_the_scheduling_window() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        for (offset, action) in [
            (100, StatusAction::Suspend),
            (200, StatusAction::Reinstate),
            (300, StatusAction::AnnualInspection),
        ] {
            let transaction = chain.fixture.tx(
                "qd-approval",
                status(&number, action, GENESIS_TIME + offset),
            );
            chain.apply(&transaction).unwrap();
        }
        let retime = |chain: &mut Chain, event: u32, effective_at: u64| {
            chain.governance(correction(
                &number,
                event,
                CorrectionAction::Retime { effective_at },
            ))
        };
        let before_the_previous = retime(&mut chain, 2, GENESIS_TIME + 99);
        assert_eq!(
            chain.refuse(&before_the_previous, "correction_out_of_order"),
            RuleError::CorrectionOutOfOrder {
                event: 2,
                effective_at: GENESIS_TIME + 99,
                earliest: GENESIS_TIME + 100,
                latest: Some(GENESIS_TIME + 300),
            }
        );
        let after_the_next = retime(&mut chain, 2, GENESIS_TIME + 301);
        chain.refuse(&after_the_next, "correction_out_of_order");
        let before_issuance = retime(&mut chain, 1, GENESIS_TIME - 1);
        chain.refuse(&before_issuance, "correction_out_of_order");
        let block_time = chain.next_context().time;
        let beyond = retime(
            &mut chain,
            3,
            block_time + crate::limits::EVENT_SCHEDULING_MS_MAX + 1,
        );
        chain.refuse(&beyond, "effective_time_too_far_ahead");
        let between = retime(&mut chain, 2, GENESIS_TIME + 300);
        chain.apply(&between).unwrap();
    }

    #[test]
    fn a_voiding_that_leaves_a_later_event_without_ground_is_refused() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let pledge = StatusAction::PledgeRegistered {
            secured_party: "青岛银行".into(),
            reference: "DY-1".into(),
        };
        let release = StatusAction::PledgeReleased {
            reference: "DY-1".into(),
        };
        for action in [
            pledge,
            release,
            StatusAction::Suspend,
            StatusAction::Reinstate,
        ] {
            assert!(by_issuer(&mut chain, &number, action));
        }
        let void = |chain: &mut Chain, event: u32| {
            chain.governance(correction(&number, event, CorrectionAction::Void))
        };
        let registration = void(&mut chain, 1);
        assert_eq!(
            chain.refuse(&registration, "correction_breaks_history"),
            RuleError::CorrectionBreaksHistory {
                event: 1,
                later: 2,
                problem: "the pledge \"DY-1\" would be released without being registered".into(),
            }
        );
        let suspension = void(&mut chain, 3);
        assert_eq!(
            chain.refuse(&suspension, "correction_breaks_history"),
            RuleError::CorrectionBreaksHistory {
                event: 3,
                later: 4,
                problem: "a licence that is active cannot take the action `reinstate`".into(),
            }
        );
        // Later events first: the reinstatement, then the suspension.
        let reinstatement = void(&mut chain, 4);
        chain.apply(&reinstatement).unwrap();
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .final_standing()
                .status,
            Status::Suspended
        );
        let suspension = void(&mut chain, 3);
        chain.apply(&suspension).unwrap();
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .final_standing()
                .status,
            Status::Active
        );
    }

    #[test]
    fn a_voided_revocation_gives_the_licence_back_its_standing() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        assert!(by_issuer(&mut chain, &number, StatusAction::Suspend));
        assert!(by_issuer(&mut chain, &number, StatusAction::Revoke));
        let void = chain.governance(correction(&number, 2, CorrectionAction::Void));
        chain.apply(&void).unwrap();
        let licence = chain.licence("business-licence", &number);
        assert_eq!(licence.final_standing().status, Status::Suspended);
        assert!(!licence.events[2].counts());
        assert!(by_issuer(&mut chain, &number, StatusAction::Reinstate));
    }

    #[test]
    fn the_issuance_an_amendments_face_and_unknown_events_are_not_corrected() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let issuance = chain.governance(correction(&number, 0, CorrectionAction::Void));
        chain.refuse(&issuance, "correction_not_allowed");
        let issuance = chain.governance(correction(
            &number,
            0,
            CorrectionAction::Retime {
                effective_at: GENESIS_TIME,
            },
        ));
        chain.refuse(&issuance, "correction_not_allowed");
        let unknown = chain.governance(correction(&number, 1, CorrectionAction::Void));
        assert_eq!(
            chain.refuse(&unknown, "unknown_event"),
            RuleError::UnknownEvent {
                type_code: "business-licence".into(),
                number: number.clone(),
                event: 1,
                events: 1,
            }
        );
        let nowhere = LicenceNumber("91370200MA0000000X".into());
        let nowhere = chain.governance(correction(&nowhere, 1, CorrectionAction::Void));
        chain.refuse(&nowhere, "unknown_licence");

        recorded(
            &mut chain,
            &number,
            LicenceEventKind::Amended {
                previous: [("name".to_owned(), FaceValue::Clear("旧名称".into()))].into(),
            },
            YEAR_2200_MS,
        );
        let void = chain.governance(correction(&number, 1, CorrectionAction::Void));
        chain.refuse(&void, "correction_not_allowed");
        let retime = chain.governance(correction(
            &number,
            1,
            CorrectionAction::Retime {
                effective_at: GENESIS_TIME,
            },
        ));
        chain.apply(&retime).unwrap();
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .last_effective_at(),
            GENESIS_TIME
        );
    }
}
