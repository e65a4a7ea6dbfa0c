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
            LicenceEventKind::Issued | LicenceEventKind::Amended { .. } => continue,
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
