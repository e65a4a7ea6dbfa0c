//! Write quotas (ADR 0029): the governors may bound how many transactions an authority writes
//! to the ledger in each window of blocks, by a default for every authority and by a quota of
//! an authority's own that overrides it.
//!
//! Windows are fixed and aligned to heights: with a window of `w` blocks, the window of
//! height `h` is `[h - h % w, h - h % w + w - 1]`. Every node computes it from the height
//! alone, and the count of an authority in its window is one record of the state, so that the
//! state root covers it and a proof of it is a proof of one record.
//!
//! Not every transaction counts: governance records, and key rotations, never do, so that a
//! quota can always be changed or lifted, and a department whose quota was spent by whoever
//! holds its stolen key can still rotate the key away ([`counts_against_quota`]).

use crate::records::Height;
pub use crate::records::{QuotaScope, WriteCount, WriteQuota, WriteQuotaRecord};
use crate::tx::TxBody;
pub use crate::tx::check_quota_form;

/// A quota's window around a height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first height of the window.
    pub start: Height,
    /// The last height of the window (the next one starts after it).
    pub end: Height,
}

/// The window of `window_blocks` blocks that holds `height`. `window_blocks` is at least one
/// (the form check refuses zero; a zero here is taken as one).
pub fn window_of(height: Height, window_blocks: u64) -> Window {
    let window_blocks = window_blocks.max(1);
    let start = height - height % window_blocks;
    Window {
        start,
        end: start.saturating_add(window_blocks - 1),
    }
}

/// What an authority may still write in the window of a height, for admission and for the
/// block builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// The quota's `max_transactions`.
    pub limit: u64,
    /// The quota's `window_blocks`.
    pub window_blocks: u64,
    /// Counted transactions already committed in the window.
    pub used: u64,
    /// The last height of the window.
    pub window_end: Height,
}

impl Allowance {
    /// How many more counted transactions the window takes.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// Whether a transaction of `body` counts against its signer's quota: everything but
/// governance records (a quota can always be changed) and key rotations (recovery from a lost
/// or stolen key is never blocked).
pub fn counts_against_quota(body: &TxBody) -> bool {
    !(body.is_governance() || matches!(body, TxBody::RotateKey { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;
    use crate::records::AuthorityId;
    use crate::tx::FormError;

    #[test]
    fn windows_are_aligned_to_heights() {
        assert_eq!(window_of(0, 100), Window { start: 0, end: 99 });
        assert_eq!(window_of(99, 100), Window { start: 0, end: 99 });
        assert_eq!(
            window_of(100, 100),
            Window {
                start: 100,
                end: 199
            }
        );
        assert_eq!(window_of(7, 1), Window { start: 7, end: 7 });
        assert_eq!(window_of(7, 0), Window { start: 7, end: 7 });
        let last = window_of(u64::MAX, limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX);
        assert_eq!(last.end, u64::MAX);
    }

    #[test]
    fn bounds_and_the_unlimited_default_are_refused() {
        let authority = QuotaScope::Authority(AuthorityId::from("qd-approval"));
        let limited = |max_transactions, window_blocks| WriteQuota::Limited {
            max_transactions,
            window_blocks,
        };
        assert_eq!(check_quota_form(&authority, Some(&limited(1, 1))), Ok(()));
        assert_eq!(
            check_quota_form(
                &QuotaScope::Default,
                Some(&limited(
                    limits::WRITE_QUOTA_TRANSACTIONS_MAX,
                    limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX
                ))
            ),
            Ok(())
        );
        assert_eq!(
            check_quota_form(&authority, Some(&limited(0, 10))),
            Err(FormError::OutOfRange {
                field: "max_transactions",
                value: 0,
                min: limits::WRITE_QUOTA_TRANSACTIONS_MIN,
                max: limits::WRITE_QUOTA_TRANSACTIONS_MAX,
            })
        );
        assert_eq!(
            check_quota_form(
                &authority,
                Some(&limited(limits::WRITE_QUOTA_TRANSACTIONS_MAX + 1, 10))
            ),
            Err(FormError::OutOfRange {
                field: "max_transactions",
                value: limits::WRITE_QUOTA_TRANSACTIONS_MAX + 1,
                min: limits::WRITE_QUOTA_TRANSACTIONS_MIN,
                max: limits::WRITE_QUOTA_TRANSACTIONS_MAX,
            })
        );
        for window_blocks in [0, limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX + 1] {
            assert_eq!(
                check_quota_form(&authority, Some(&limited(10, window_blocks))),
                Err(FormError::OutOfRange {
                    field: "window_blocks",
                    value: window_blocks,
                    min: limits::WRITE_QUOTA_WINDOW_BLOCKS_MIN,
                    max: limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX,
                })
            );
        }
        assert_eq!(
            check_quota_form(&authority, Some(&WriteQuota::Unlimited)),
            Ok(())
        );
        assert_eq!(
            check_quota_form(&QuotaScope::Default, Some(&WriteQuota::Unlimited)),
            Err(FormError::UnlimitedDefaultQuota)
        );
        assert_eq!(check_quota_form(&QuotaScope::Default, None), Ok(()));
        assert!(matches!(
            check_quota_form(&QuotaScope::Authority(AuthorityId::from("Bad")), None),
            Err(FormError::BadCharacter { field: "scope", .. })
        ));
    }
}
