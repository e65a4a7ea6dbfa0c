//! Seeded bugs for mutation testing: each [`Mutant`] is one deliberate deviation from the
//! protocol that the simulation must catch (`scripts/mutations`, `docs/consensus.md`).
//!
//! Test-only. The switch that turns a mutant on, [`crate::Consensus::inject_mutant`], exists
//! only with the `mutants` feature, which nothing enables by default; without it no machine
//! can carry a mutant and every check below is a constant `false`.

/// One seeded bug. Each names the rule it breaks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(not(feature = "mutants"), allow(dead_code))]
pub enum Mutant {
    /// Quorums of more than half the power instead of more than two thirds.
    HalfQuorum,
    /// Votes counted by number of validators instead of by voting power (the quorum is
    /// more than two thirds of the validators).
    CountByNumber,
    /// A vote from a validator not in the set is counted (with power 1).
    AcceptNonValidator,
    /// Line 23 without its lock condition: a proposal with no valid round is prevoted even
    /// when locked on another value.
    Line23IgnoresLock,
    /// Line 29 without its lock condition: a proposal with a valid round below the lock is
    /// prevoted even when locked on another value.
    Line29IgnoresLock,
    /// A restart restores everything but the lock.
    ForgetLockOnRestart,
    /// A signed message is broadcast before the signing state that records it is persisted.
    BroadcastBeforePersist,
    /// Line 55's f+1 counted by number of validators instead of by voting power.
    SkipByCount,
}

#[cfg_attr(not(feature = "mutants"), allow(dead_code))]
impl Mutant {
    /// Every mutant, in a fixed order.
    pub const ALL: [Mutant; 8] = [
        Mutant::HalfQuorum,
        Mutant::CountByNumber,
        Mutant::AcceptNonValidator,
        Mutant::Line23IgnoresLock,
        Mutant::Line29IgnoresLock,
        Mutant::ForgetLockOnRestart,
        Mutant::BroadcastBeforePersist,
        Mutant::SkipByCount,
    ];

    /// The mutant's name, as `scripts/mutations` and the documentation spell it.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::HalfQuorum => "half-quorum",
            Mutant::CountByNumber => "count-by-number",
            Mutant::AcceptNonValidator => "accept-non-validator",
            Mutant::Line23IgnoresLock => "line-23-ignores-lock",
            Mutant::Line29IgnoresLock => "line-29-ignores-lock",
            Mutant::ForgetLockOnRestart => "forget-lock-on-restart",
            Mutant::BroadcastBeforePersist => "broadcast-before-persist",
            Mutant::SkipByCount => "skip-by-count",
        }
    }

    /// The mutant called `name`.
    pub fn named(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|mutant| mutant.name() == name)
    }
}

/// Whether `mutant` is the one `active` names; always false without the `mutants` feature.
pub(crate) fn is(active: Option<Mutant>, mutant: Mutant) -> bool {
    cfg!(feature = "mutants") && active == Some(mutant)
}
