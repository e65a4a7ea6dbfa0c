//! Every bound of the crate, in one place.
//!
//! A consensus engine receives messages from validators it does not trust; each of these
//! numbers caps what such a validator (or a flood of forged messages) can make it store or
//! compute. The relations between them are asserted in this module's tests.

/// Most validators in one [`crate::ValidatorSet`].
pub const MAX_VALIDATORS: usize = 1024;

/// Most total voting power of a validator set. Threshold arithmetic is done in `u128`, so
/// this bound is not needed against overflow; it keeps powers readable and leaves room for
/// the ledger to add them up in `u64`.
pub const MAX_TOTAL_VOTING_POWER: u64 = 1 << 60;

/// Most total power the proposer selection works with. The proposer schedule of a set is one
/// period of CometBFT's proposer-priority algorithm, which repeats after as many steps as the
/// total power (divided by the powers' greatest common divisor); a set whose reduced total is
/// larger has its powers scaled down to about this total for the proposer selection only (each
/// validator keeps at least 1). Bounds the schedule's length and the cost of computing it
/// (at most `(MAX_PROPOSER_CYCLE_POWER + MAX_VALIDATORS) * MAX_VALIDATORS` additions, once per
/// set). Quorums always count the exact powers.
pub const MAX_PROPOSER_CYCLE_POWER: u64 = 1 << 16;

/// Longest chain id, in bytes of UTF-8.
pub const MAX_CHAIN_ID_BYTES: usize = 64;

/// Longest canonical encoding of a consensus value (the node's value is a 32-byte hash).
pub const MAX_VALUE_BYTES: usize = 1024;

/// How many heights ahead of the current one a message may be buffered (h+1 ..= h+this).
/// A message from further ahead is dropped and counted: the node catches up by block sync.
pub const MAX_HEIGHT_LOOKAHEAD: u64 = 2;

/// How many rounds ahead of the current round a message of the current height is kept
/// (and, for a buffered future height, the highest round kept). Further is dropped and
/// counted. Round skipping (line 55) still works: f+1 validators in a round within this
/// window move us there, and from there the window moves too.
pub const MAX_ROUND_LOOKAHEAD: u32 = 16;

/// Most different votes of one type in one round that are counted from one validator. An
/// honest validator sends one; an equivocator's further votes each count for their own
/// value (as the paper counts messages), so that a correct validator can see a quorum that
/// another correct validator saw. Beyond this many, the rest are ignored.
pub const MAX_VOTES_PER_VALIDATOR_PER_STEP: usize = 4;

/// Most different proposals kept from the proposer of one round. An honest proposer sends
/// one; a second one is equivocation evidence, and each kept proposal is also a candidate
/// for lines 36 and 49, so that a quorum for the second value decides it here too. Beyond
/// this many, the rest are dropped and counted.
pub const MAX_PROPOSALS_PER_ROUND: usize = 4;

/// Most future-height messages buffered from one validator.
pub const MAX_BUFFERED_MESSAGES_PER_VALIDATOR: usize = 128;

/// Most future-height messages buffered in total, from all validators.
pub const MAX_BUFFERED_MESSAGES_TOTAL: usize = 8192;

/// Messages an honest validator sends per round: one proposal (when it is the proposer),
/// one prevote and one precommit.
pub const MESSAGES_PER_ROUND_PER_VALIDATOR: usize = 3;

/// Rounds of one height whose signed messages the signing state keeps (its write-ahead log):
/// the round of the last signed message and the rounds below it, down to this many. A peer
/// more than [`MAX_ROUND_LOOKAHEAD`] rounds behind drops this validator's latest messages
/// anyway and joins by round skipping (line 55), so older rounds help nobody; the current
/// round and the one before, which a restart must re-send for liveness, are always kept.
pub const MAX_LOGGED_ROUNDS_PER_HEIGHT: u32 = MAX_ROUND_LOOKAHEAD + 1;

/// Most messages the signing state keeps for one height: every message an honest validator
/// signs in [`MAX_LOGGED_ROUNDS_PER_HEIGHT`] rounds ([`MESSAGES_PER_ROUND_PER_VALIDATOR`]
/// each). A restored state with more is refused as malformed.
pub const MAX_LOGGED_MESSAGES_PER_HEIGHT: usize =
    MESSAGES_PER_ROUND_PER_VALIDATOR * MAX_LOGGED_ROUNDS_PER_HEIGHT as usize;

/// The highest round the state machine enters. Rounds grow by timeouts that grow with the
/// round, so this is never reached in practice; it keeps `round + 1` from overflowing.
pub const MAX_ROUND: u32 = u32::MAX - MAX_ROUND_LOOKAHEAD - 1;

/// The longest timeout the state machine schedules, whatever the round (one hour).
pub const MAX_TIMEOUT_MS: u64 = 60 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_honest_validator_never_overflows_its_buffer() {
        // Everything an honest validator may send for the buffered heights and rounds fits.
        let honest_messages = MESSAGES_PER_ROUND_PER_VALIDATOR
            * (MAX_ROUND_LOOKAHEAD as usize + 1)
            * MAX_HEIGHT_LOOKAHEAD as usize;
        assert!(MAX_BUFFERED_MESSAGES_PER_VALIDATOR >= honest_messages);
    }

    #[test]
    fn total_buffer_bounds_are_consistent() {
        const { assert!(MAX_BUFFERED_MESSAGES_TOTAL >= MAX_BUFFERED_MESSAGES_PER_VALIDATOR) };
        // The total bound is the one that binds for large sets: it must matter.
        const {
            assert!(
                MAX_BUFFERED_MESSAGES_TOTAL <= MAX_BUFFERED_MESSAGES_PER_VALIDATOR * MAX_VALIDATORS
            )
        };
        // Small and medium sets (up to 64 validators) are never limited by the total.
        const { assert!(MAX_BUFFERED_MESSAGES_TOTAL >= MAX_BUFFERED_MESSAGES_PER_VALIDATOR * 64) };
    }

    #[test]
    fn the_write_ahead_log_keeps_the_rounds_a_restart_needs() {
        // The current round and the previous one, whose messages a restart re-sends.
        const { assert!(MAX_LOGGED_ROUNDS_PER_HEIGHT >= 2) };
        // Nothing older than a peer that can still hear us may need.
        const { assert!(MAX_LOGGED_ROUNDS_PER_HEIGHT <= MAX_ROUND_LOOKAHEAD + 1) };
        const {
            assert!(
                MAX_LOGGED_MESSAGES_PER_HEIGHT
                    == MESSAGES_PER_ROUND_PER_VALIDATOR * MAX_LOGGED_ROUNDS_PER_HEIGHT as usize
            )
        };
    }

    #[test]
    fn the_proposer_schedule_is_bounded_and_fine_enough() {
        // Each validator of a full set keeps at least 64 units of scaled power on average, so
        // scaling changes a share by at most 1/64 of an average validator's.
        const { assert!(MAX_PROPOSER_CYCLE_POWER >= 64 * MAX_VALIDATORS as u64) };
        const { assert!(MAX_PROPOSER_CYCLE_POWER <= MAX_TOTAL_VOTING_POWER) };
        // Schedule entries are validator positions stored in u16, and the scaled total (at
        // most the cycle plus one per validator) indexes the schedule.
        const { assert!(MAX_VALIDATORS <= u16::MAX as usize + 1) };
        const { assert!(MAX_PROPOSER_CYCLE_POWER + (MAX_VALIDATORS as u64) < u32::MAX as u64) };
    }

    #[test]
    fn an_equivocation_can_always_be_counted() {
        // The first vote and at least one conflicting one (nil against a value).
        const { assert!(MAX_VOTES_PER_VALIDATOR_PER_STEP >= 2) };
        // The first proposal and at least one conflicting one, both candidates; and no more
        // values kept per round than votes counted from one validator per step.
        const { assert!(MAX_PROPOSALS_PER_ROUND >= 2) };
        const { assert!(MAX_PROPOSALS_PER_ROUND <= MAX_VOTES_PER_VALIDATOR_PER_STEP) };
    }

    #[test]
    fn power_and_rounds_leave_room_for_arithmetic() {
        assert!(u128::from(MAX_TOTAL_VOTING_POWER) * 3 < u128::from(u64::MAX));
        assert!(MAX_VALIDATORS as u64 <= MAX_TOTAL_VOTING_POWER);
        assert!(MAX_ROUND.checked_add(MAX_ROUND_LOOKAHEAD + 1).is_some());
        const { assert!(MAX_HEIGHT_LOOKAHEAD >= 1) };
        assert!(MAX_CHAIN_ID_BYTES <= usize::from(u8::MAX));
        assert!(MAX_VALUE_BYTES <= u32::MAX as usize);
    }
}
