//! The rules of write quotas (ADR 0029): the governors' `SetWriteQuota`, and the count every
//! transaction that [`counts_against_quota`] goes through after the checks every transaction
//! shares.
//!
//! The quota in force for an authority is its own quota if it has one, else the default, else
//! none. Its count is one record, [`WriteCount`], kept for authorities a quota applies to
//! alone: a chain without quotas writes nothing more than it did before them.

use super::error::{RuleError, StateError};
use super::state::{Origin, Scratch, StateReader};
use crate::quota::{
    Allowance, QuotaScope, WriteCount, WriteQuota, WriteQuotaRecord, counts_against_quota,
    window_of,
};
use crate::records::{AuthorityId, Height, Record, RecordKey};
use crate::tx::TxBody;

/// `SetWriteQuota`: sets or clears the quota of `scope` from this transaction on (later
/// transactions of the same block are already held to it). The authority of a scope must be
/// registered; clearing needs a quota to clear.
pub(super) fn set<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    scope: &QuotaScope,
    quota: Option<&WriteQuota>,
) -> Result<(), RuleError> {
    if let QuotaScope::Authority(authority) = scope {
        state.require_authority(authority)?;
    }
    let key = RecordKey::WriteQuota(scope.clone());
    let current = match state.get(&key)? {
        Some(Record::WriteQuota(record)) => record.quota,
        Some(_) => return Err(super::state::wrong_kind(&key).into()),
        None => None,
    };
    if quota.is_none() && current.is_none() {
        return Err(RuleError::NoWriteQuota(scope.clone()));
    }
    state.put(Record::WriteQuota(WriteQuotaRecord {
        scope: scope.clone(),
        quota: quota.copied(),
        set_at: origin.context.height,
    }));
    Ok(())
}

/// Counts a transaction of `signer` with `body` at `height` against the signer's quota, or
/// refuses it when the window's quota is spent. Uncounted bodies, and signers no quota applies
/// to, read the quotas and write nothing.
pub(super) fn count<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    height: Height,
    signer: &AuthorityId,
    body: &TxBody,
) -> Result<(), RuleError> {
    if !counts_against_quota(body) {
        return Ok(());
    }
    let Some(standing) = standing(|key| state.get(key), signer, height)? else {
        return Ok(());
    };
    if standing.allowance.remaining() == 0 {
        return Err(RuleError::WriteQuotaExceeded {
            authority: signer.clone(),
            limit: standing.allowance.limit,
            window_blocks: standing.allowance.window_blocks,
            window_end: standing.allowance.window_end,
        });
    }
    state.put(Record::WriteCount(WriteCount {
        authority: signer.clone(),
        window_start: standing.counted_since,
        transactions: standing.allowance.used + 1,
    }));
    Ok(())
}

/// What `authority` may still write at `height` by the state `state` holds, or `None` when no
/// quota applies to it: for admission (with the committed state and the next height) and for
/// the block builder.
pub fn write_allowance<R: StateReader + ?Sized>(
    state: &R,
    authority: &AuthorityId,
    height: Height,
) -> Result<Option<Allowance>, StateError> {
    Ok(standing(|key| state.record(key), authority, height)?.map(|standing| standing.allowance))
}

/// An authority's place in its quota's window.
struct Standing {
    allowance: Allowance,
    /// The height from which `allowance.used` counts: the window's start, or a later height
    /// inside it when the count began under a quota whose window started later.
    counted_since: Height,
}

/// The quota in force for `authority` at `height` and its count in the window, read through
/// `get`.
fn standing(
    get: impl Fn(&RecordKey) -> Result<Option<Record>, StateError>,
    authority: &AuthorityId,
    height: Height,
) -> Result<Option<Standing>, StateError> {
    let quota = match quota_of(&get, &QuotaScope::Authority(authority.clone()))? {
        Some(quota) => Some(quota),
        None => quota_of(&get, &QuotaScope::Default)?,
    };
    let Some(WriteQuota::Limited {
        max_transactions,
        window_blocks,
    }) = quota
    else {
        return Ok(None);
    };
    let window = window_of(height, window_blocks);
    let key = RecordKey::WriteCount(authority.clone());
    // A count that began inside the current window holds only transactions of this window
    // (a change of the window's length can move its start before the count's); one that
    // began before it is of an earlier window and starts again from zero.
    let (counted_since, used) = match get(&key)? {
        Some(Record::WriteCount(count)) if count.window_start >= window.start => {
            (count.window_start, count.transactions)
        }
        Some(Record::WriteCount(_)) | None => (window.start, 0),
        Some(_) => return Err(super::state::wrong_kind(&key)),
    };
    Ok(Some(Standing {
        allowance: Allowance {
            limit: max_transactions,
            window_blocks,
            used,
            window_end: window.end,
        },
        counted_since,
    }))
}

/// The quota a scope's record holds (`None`: no record, or a cleared one).
fn quota_of(
    get: &impl Fn(&RecordKey) -> Result<Option<Record>, StateError>,
    scope: &QuotaScope,
) -> Result<Option<WriteQuota>, StateError> {
    let key = RecordKey::WriteQuota(scope.clone());
    match get(&key)? {
        Some(Record::WriteQuota(record)) => Ok(record.quota),
        Some(_) => Err(super::state::wrong_kind(&key)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, id};
    use super::super::{Overlay, RuleError, apply_transaction};
    use super::write_allowance;
    use crate::hash::Hash32;
    use crate::limits;
    use crate::quota::{Allowance, QuotaScope, WriteCount, WriteQuota, WriteQuotaRecord};
    use crate::records::{Record, RecordKey};
    use crate::testkit::{self, SUITE};
    use crate::tx::{FormError, Transaction, TxBody};

    fn limited(max_transactions: u64, window_blocks: u64) -> Option<WriteQuota> {
        Some(WriteQuota::Limited {
            max_transactions,
            window_blocks,
        })
    }

    fn of(authority: &str) -> QuotaScope {
        QuotaScope::Authority(id(authority))
    }

    fn set_quota(chain: &mut Chain, scope: QuotaScope, quota: Option<WriteQuota>) {
        let body = TxBody::SetWriteQuota { scope, quota };
        let transaction = chain.governance(body);
        chain
            .apply(&transaction)
            .expect("the governors set a quota");
    }

    /// The next business licence of `issuer` (numbered from 1 000 upwards, so that each is new).
    fn issuance(chain: &mut Chain, issuer: &str, region: &str, enterprise: u64) -> Transaction {
        chain
            .fixture
            .issue_business_licence(issuer, region, 1_000 + enterprise)
    }

    /// The root of the sparse Merkle tree over the chain's committed records.
    fn state_root(chain: &Chain) -> Hash32 {
        let leaves = chain
            .state
            .records
            .iter()
            .map(|(key, record)| (key.state_hash(SUITE), record.state_hash(SUITE)))
            .collect();
        crate::smt::root_of_leaves(SUITE, leaves).unwrap()
    }

    fn count_of(chain: &Chain, authority: &str) -> Option<WriteCount> {
        match chain
            .state
            .records
            .get(&RecordKey::WriteCount(id(authority)))
        {
            Some(Record::WriteCount(count)) => Some(count.clone()),
            None => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_quota_is_recorded_counted_and_refuses_at_its_limit_leaving_the_state_root() {
        let mut chain = Chain::new();
        let root_without_quotas = state_root(&chain);
        set_quota(&mut chain, of("qd-approval"), limited(2, 10));
        // Height 1 set it: the record names it, and nothing was counted for the governor.
        assert_eq!(
            chain
                .state
                .records
                .get(&RecordKey::WriteQuota(of("qd-approval"))),
            Some(&Record::WriteQuota(WriteQuotaRecord {
                scope: of("qd-approval"),
                quota: limited(2, 10),
                set_at: 1,
            }))
        );
        assert_ne!(state_root(&chain), root_without_quotas);
        assert_eq!(count_of(&chain, "gov-a"), None);

        for enterprise in 1..=2 {
            let transaction = issuance(&mut chain, "qd-approval", "370200", enterprise);
            chain.apply(&transaction).unwrap();
        }
        assert_eq!(
            count_of(&chain, "qd-approval"),
            Some(WriteCount {
                authority: id("qd-approval"),
                window_start: 0,
                transactions: 2,
            })
        );
        assert_eq!(
            write_allowance(&chain.state, &id("qd-approval"), chain.height + 1),
            Ok(Some(Allowance {
                limit: 2,
                window_blocks: 10,
                used: 2,
                window_end: 9,
            }))
        );
        let root = state_root(&chain);
        let third = issuance(&mut chain, "qd-approval", "370200", 3);
        assert_eq!(
            chain.apply(&third),
            Err(RuleError::WriteQuotaExceeded {
                authority: id("qd-approval"),
                limit: 2,
                window_blocks: 10,
                window_end: 9,
            })
        );
        assert_eq!(state_root(&chain), root, "a refusal changed the state root");
        assert_eq!(
            RuleError::WriteQuotaExceeded {
                authority: id("qd-approval"),
                limit: 2,
                window_blocks: 10,
                window_end: 9,
            }
            .code(),
            "write_quota_exceeded"
        );
        // Another department is not held to it.
        let other = issuance(&mut chain, "jn-approval", "370800", 1);
        chain.apply(&other).unwrap();
        assert_eq!(count_of(&chain, "jn-approval"), None);
    }

    #[test]
    fn the_next_window_starts_the_count_again() {
        let mut chain = Chain::new();
        set_quota(&mut chain, of("qd-approval"), limited(1, 10));
        let first = issuance(&mut chain, "qd-approval", "370200", 1);
        chain.apply(&first).unwrap();
        // Heights 3 to 9 are in the same window: refused at each.
        while chain.height < 9 {
            let refused = issuance(&mut chain, "qd-approval", "370200", 2);
            assert!(matches!(
                chain.apply(&refused),
                Err(RuleError::WriteQuotaExceeded { window_end: 9, .. })
            ));
            chain.empty_block();
        }
        // Height 10 opens the next window.
        let second = issuance(&mut chain, "qd-approval", "370200", 2);
        chain.apply(&second).unwrap();
        assert_eq!(
            count_of(&chain, "qd-approval"),
            Some(WriteCount {
                authority: id("qd-approval"),
                window_start: 10,
                transactions: 1,
            })
        );
        let third = issuance(&mut chain, "qd-approval", "370200", 3);
        assert!(matches!(
            chain.apply(&third),
            Err(RuleError::WriteQuotaExceeded { window_end: 19, .. })
        ));
    }

    #[test]
    fn the_transactions_of_one_block_count_together() {
        let mut chain = Chain::new();
        set_quota(&mut chain, of("qd-approval"), limited(2, 100));
        let context = chain.next_context();
        let transactions: Vec<Transaction> = (1..=3)
            .map(|enterprise| issuance(&mut chain, "qd-approval", "370200", enterprise))
            .collect();
        let mut overlay = Overlay::new(&chain.state);
        let results: Vec<Result<_, RuleError>> = transactions
            .iter()
            .map(|transaction| {
                apply_transaction(&mut overlay, &context, transaction, transaction.id(SUITE))
                    .map(|_| ())
            })
            .collect();
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Ok(()));
        assert_eq!(
            results[2],
            Err(RuleError::WriteQuotaExceeded {
                authority: id("qd-approval"),
                limit: 2,
                window_blocks: 100,
                window_end: 99,
            })
        );
        assert_eq!(
            overlay.record(&RecordKey::WriteCount(id("qd-approval"))),
            Ok(Some(Record::WriteCount(WriteCount {
                authority: id("qd-approval"),
                window_start: 0,
                transactions: 2,
            })))
        );
    }

    #[test]
    fn governance_and_key_rotations_pass_at_the_quota_and_a_governor_can_lift_it() {
        let mut chain = Chain::new();
        // The default holds every authority, the governors too, to one transaction.
        set_quota(&mut chain, QuotaScope::Default, limited(1, 1_000));
        let first = issuance(&mut chain, "qd-approval", "370200", 1);
        chain.apply(&first).unwrap();
        let refused = issuance(&mut chain, "qd-approval", "370200", 2);
        assert!(matches!(
            chain.apply(&refused),
            Err(RuleError::WriteQuotaExceeded { .. })
        ));
        // The department rotates its own key although its quota is spent, and it is not
        // counted.
        let rotation = chain.fixture.tx(
            "qd-approval",
            TxBody::RotateKey {
                authority: id("qd-approval"),
                new_key: testkit::secret("qd-approval-2").public_key(),
                effective_height: chain.height + 100,
            },
        );
        chain.apply(&rotation).unwrap();
        assert_eq!(count_of(&chain, "qd-approval").unwrap().transactions, 1);
        // Governance records are never counted: many pass in the window.
        for round in 0..3 {
            let quota = limited(1 + round, 1_000);
            set_quota(&mut chain, QuotaScope::Default, quota);
        }
        assert_eq!(count_of(&chain, "gov-a"), None);
        // The default now allows three: two more for the department.
        for enterprise in 2..=3 {
            let transaction = issuance(&mut chain, "qd-approval", "370200", enterprise);
            chain.apply(&transaction).unwrap();
        }
        let refused = issuance(&mut chain, "qd-approval", "370200", 4);
        assert!(matches!(
            chain.apply(&refused),
            Err(RuleError::WriteQuotaExceeded { limit: 3, .. })
        ));
        // An unlimited quota of its own exempts the department from the default.
        set_quota(&mut chain, of("qd-approval"), Some(WriteQuota::Unlimited));
        let allowed = issuance(&mut chain, "qd-approval", "370200", 4);
        chain.apply(&allowed).unwrap();
        // Cleared, the default applies again, with the count the window kept.
        set_quota(&mut chain, of("qd-approval"), None);
        let refused = issuance(&mut chain, "qd-approval", "370200", 5);
        assert!(matches!(
            chain.apply(&refused),
            Err(RuleError::WriteQuotaExceeded { limit: 3, .. })
        ));
        // The default cleared too: no quota at all.
        set_quota(&mut chain, QuotaScope::Default, None);
        let allowed = issuance(&mut chain, "qd-approval", "370200", 5);
        chain.apply(&allowed).unwrap();
        assert_eq!(
            write_allowance(&chain.state, &id("qd-approval"), chain.height + 1),
            Ok(None)
        );
    }

    #[test]
    fn an_authority_quota_overrides_the_default_and_a_longer_window_keeps_the_count() {
        let mut chain = Chain::new();
        set_quota(&mut chain, QuotaScope::Default, limited(1, 10));
        set_quota(&mut chain, of("qd-approval"), limited(3, 10));
        for enterprise in 1..=3 {
            let transaction = issuance(&mut chain, "qd-approval", "370200", enterprise);
            chain.apply(&transaction).unwrap();
        }
        let other = issuance(&mut chain, "jn-approval", "370800", 1);
        chain.apply(&other).unwrap();
        let other = issuance(&mut chain, "jn-approval", "370800", 2);
        assert!(matches!(
            chain.apply(&other),
            Err(RuleError::WriteQuotaExceeded { limit: 1, .. })
        ));
        // Height 7: the window of 10 that began at 0 becomes one of 100 that began at 0; the
        // three already written count in it.
        set_quota(&mut chain, of("qd-approval"), limited(4, 100));
        let fourth = issuance(&mut chain, "qd-approval", "370200", 4);
        chain.apply(&fourth).unwrap();
        let fifth = issuance(&mut chain, "qd-approval", "370200", 5);
        assert_eq!(
            chain.apply(&fifth),
            Err(RuleError::WriteQuotaExceeded {
                authority: id("qd-approval"),
                limit: 4,
                window_blocks: 100,
                window_end: 99,
            })
        );
    }

    #[test]
    fn only_the_governors_set_a_quota_and_only_on_what_exists() {
        let mut chain = Chain::new();
        let body = TxBody::SetWriteQuota {
            scope: of("jn-approval"),
            quota: limited(1, 10),
        };
        // A department cannot set another's quota, nor lift its own.
        let alone = chain.fixture.tx("qd-approval", body.clone());
        assert_eq!(
            chain.apply(&alone),
            Err(RuleError::EndorserNotGovernor(id("qd-approval")))
        );
        let too_few = chain.fixture.governance(body, 2);
        assert_eq!(
            chain.apply(&too_few),
            Err(RuleError::TooFewGovernorSignatures {
                signed: 2,
                governors: 4,
                required: 3,
            })
        );
        let unknown = chain.governance(TxBody::SetWriteQuota {
            scope: of("nobody"),
            quota: limited(1, 10),
        });
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownAuthority(id("nobody")))
        );
        let nothing_to_clear = chain.governance(TxBody::SetWriteQuota {
            scope: QuotaScope::Default,
            quota: None,
        });
        assert_eq!(
            chain.apply(&nothing_to_clear),
            Err(RuleError::NoWriteQuota(QuotaScope::Default))
        );
        assert_eq!(
            RuleError::NoWriteQuota(QuotaScope::Default).code(),
            "no_write_quota"
        );
    }

    #[test]
    fn a_quota_out_of_bounds_is_refused_by_its_form() {
        let mut chain = Chain::new();
        let cases = [
            (
                limited(0, 10),
                FormError::OutOfRange {
                    field: "max_transactions",
                    value: 0,
                    min: limits::WRITE_QUOTA_TRANSACTIONS_MIN,
                    max: limits::WRITE_QUOTA_TRANSACTIONS_MAX,
                },
            ),
            (
                limited(10, limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX + 1),
                FormError::OutOfRange {
                    field: "window_blocks",
                    value: limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX + 1,
                    min: limits::WRITE_QUOTA_WINDOW_BLOCKS_MIN,
                    max: limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX,
                },
            ),
            (
                Some(WriteQuota::Unlimited),
                FormError::UnlimitedDefaultQuota,
            ),
        ];
        for (quota, expected) in cases {
            let transaction = chain.governance(TxBody::SetWriteQuota {
                scope: QuotaScope::Default,
                quota,
            });
            assert_eq!(transaction.check_form(), Err(expected.clone()));
            assert_eq!(Transaction::decode(&transaction.to_bytes()), Err(expected));
        }
    }
}
