//! The event window (ADR 0032): every time a record gives an event of the ledger — a status
//! change, an amendment, a recognition's start, its withdrawal — lies within
//! [`limits::EVENT_BACKDATING_MS_MAX`] before the block time and
//! [`limits::EVENT_SCHEDULING_MS_MAX`] after it. A licence's validity dates are not event
//! times and are not bounded here.

use super::error::RuleError;
use super::state::Context;
use crate::limits;
use crate::records::TimeMs;

/// Refuses `effective_at` (the value of the body's `field`) unless it lies inside the window
/// around the block time of `context`, both ends included.
pub(super) fn require_within_window(
    context: &Context<'_>,
    field: &'static str,
    effective_at: TimeMs,
) -> Result<(), RuleError> {
    let block_time = context.time;
    if effective_at < block_time.saturating_sub(limits::EVENT_BACKDATING_MS_MAX) {
        return Err(RuleError::EffectiveTimeTooFarBack {
            field,
            effective_at,
            block_time,
            limit_ms: limits::EVENT_BACKDATING_MS_MAX,
        });
    }
    require_not_too_far_ahead(context, field, effective_at)
}

/// Refuses `effective_at` if it lies more than the scheduling window after the block time: the
/// one end of the window that also binds the governors' corrections, so that no correction
/// can hold a history still either.
pub(super) fn require_not_too_far_ahead(
    context: &Context<'_>,
    field: &'static str,
    effective_at: TimeMs,
) -> Result<(), RuleError> {
    let block_time = context.time;
    if effective_at > block_time.saturating_add(limits::EVENT_SCHEDULING_MS_MAX) {
        return Err(RuleError::EffectiveTimeTooFarAhead {
            field,
            effective_at,
            block_time,
            limit_ms: limits::EVENT_SCHEDULING_MS_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{require_not_too_far_ahead, require_within_window};
    use crate::limits::{EVENT_BACKDATING_MS_MAX, EVENT_SCHEDULING_MS_MAX};
    use crate::rules::{Context, RuleError};
    use crate::testkit::{CHAIN_ID, GENESIS_TIME, SUITE};

    fn context(time: u64) -> Context<'static> {
        Context {
            chain_id: CHAIN_ID,
            suite: SUITE,
            height: 1,
            time,
        }
    }

    #[test]
    fn the_window_holds_both_of_its_ends_and_nothing_beyond() {
        let now = GENESIS_TIME + EVENT_BACKDATING_MS_MAX;
        let context = context(now);
        let earliest = now - EVENT_BACKDATING_MS_MAX;
        let latest = now + EVENT_SCHEDULING_MS_MAX;
        for inside in [earliest, now, latest] {
            assert_eq!(
                require_within_window(&context, "effective_at", inside),
                Ok(())
            );
        }
        assert_eq!(
            require_within_window(&context, "effective_at", earliest - 1),
            Err(RuleError::EffectiveTimeTooFarBack {
                field: "effective_at",
                effective_at: earliest - 1,
                block_time: now,
                limit_ms: EVENT_BACKDATING_MS_MAX,
            })
        );
        assert_eq!(
            require_within_window(&context, "valid_from", latest + 1),
            Err(RuleError::EffectiveTimeTooFarAhead {
                field: "valid_from",
                effective_at: latest + 1,
                block_time: now,
                limit_ms: EVENT_SCHEDULING_MS_MAX,
            })
        );
        // The forward end alone lets any earlier time through.
        assert_eq!(
            require_not_too_far_ahead(&context, "effective_at", 0),
            Ok(())
        );
        assert!(require_not_too_far_ahead(&context, "effective_at", latest + 1).is_err());
    }

    #[test]
    fn the_messages_give_the_values_and_the_bound() {
        let error = require_within_window(&context(GENESIS_TIME), "effective_at", u64::MAX)
            .expect_err("year 584,556,019 is too far ahead");
        assert_eq!(error.code(), "effective_time_too_far_ahead");
        let text = error.to_string();
        assert!(text.contains(&u64::MAX.to_string()), "{text}");
        assert!(text.contains(&GENESIS_TIME.to_string()), "{text}");
        assert!(text.contains("(90 days)"), "{text}");
        let error = require_within_window(&context(u64::MAX), "effective_at", 0)
            .expect_err("the epoch is too far back");
        assert_eq!(error.code(), "effective_time_too_far_back");
        assert!(error.to_string().contains("(30 days)"), "{error}");
    }
}
