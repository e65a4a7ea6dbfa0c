//! The rules of authorities' keys (ADR 0031): who owns a public key, an authority's rotation
//! of its own key, the governors' rotation, and the governors' report of a key compromise.
//!
//! Three properties hold against a stolen key:
//! - a public key belongs to at most one authority, ever ([`claim_key`]): one department can
//!   never sign as another, and a key once used is never handed to someone else;
//! - an authority's own rotation is scheduled at most
//!   [`limits::SELF_ROTATION_DELAY_BLOCKS_MAX`] blocks ahead, so a thief cannot park a
//!   rotation that blocks every other for ever;
//! - the governors' rotation and their compromise report override any rotation the key
//!   scheduled and end every key of the authority at the next block at the latest
//!   ([`limits::GOVERNOR_ROTATION_DELAY_BLOCKS_MAX`]); the report also marks the keys valid
//!   from the stated height on, so that verdicts flag what they signed in that window.

use super::error::RuleError;
use super::state::{Origin, Scratch, StateReader};
use crate::crypto::PublicKey;
use crate::limits;
use crate::records::{Authority, AuthorityId, Height, KeyEpoch, KeyOwner, Record, RecordKey};

/// Records that `key` belongs to `authority`, refusing a key that already belongs to anyone
/// (this authority included: a key never comes back after it was rotated away). The key must
/// also be a point signatures can be checked against.
pub(super) fn claim_key<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    authority: &AuthorityId,
    key: &PublicKey,
) -> Result<(), RuleError> {
    key.validate().map_err(RuleError::KeyRejected)?;
    let owner_key = RecordKey::KeyOwner(*key);
    match state.get(&owner_key)? {
        Some(Record::KeyOwner(owner)) => return Err(RuleError::KeyInUse(owner.authority)),
        Some(_) => return Err(super::state::wrong_kind(&owner_key).into()),
        None => {}
    }
    state.put(Record::KeyOwner(KeyOwner {
        key: *key,
        authority: authority.clone(),
    }));
    Ok(())
}

/// `RotateKey`: `new_key` signs from `effective_height` on and the current key stops there.
///
/// Signed by the authority alone, the rotation lies ahead by at most
/// [`limits::SELF_ROTATION_DELAY_BLOCKS_MAX`] blocks and waits for no other (one rotation
/// waits at a time, so that the history stays a sequence of epochs). Signed by the governors
/// (`by_governors`), it takes effect at the next height and overrides whatever the authority
/// scheduled: the key may be lost or stolen, and a thief's rotation must not stand in the way.
pub(super) fn rotate_key<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    target: &AuthorityId,
    new_key: &PublicKey,
    effective_height: Height,
    by_governors: bool,
) -> Result<(), RuleError> {
    let height = origin.context.height;
    let mut authority = state.require_named_authority(target)?;
    new_key.validate().map_err(RuleError::KeyRejected)?;
    if effective_height <= height {
        return Err(RuleError::RotationNotLater {
            height,
            effective_height,
        });
    }
    if by_governors {
        let next = height.saturating_add(limits::GOVERNOR_ROTATION_DELAY_BLOCKS_MAX);
        if effective_height > next {
            return Err(RuleError::GovernorRotationTooLate {
                next,
                effective_height,
            });
        }
    } else if effective_height - height > limits::SELF_ROTATION_DELAY_BLOCKS_MAX {
        return Err(RuleError::RotationTooFar {
            height,
            effective_height,
            limit: limits::SELF_ROTATION_DELAY_BLOCKS_MAX,
        });
    }
    if authority.keys.iter().any(|epoch| epoch.key == *new_key) {
        return Err(RuleError::KeyInUse(target.clone()));
    }
    check_room_for_a_key(&authority)?;
    if by_governors {
        end_every_key(&mut authority, height, effective_height);
    } else {
        if let Some(scheduled) = authority
            .keys
            .last()
            .filter(|epoch| epoch.valid_from > height)
        {
            return Err(RuleError::RotationPending {
                effective_height: scheduled.valid_from,
            });
        }
        if let Some(current) = authority.keys.last_mut() {
            current.valid_until = Some(effective_height);
        }
    }
    claim_key(state, target, new_key)?;
    authority.keys.push(KeyEpoch {
        key: *new_key,
        valid_from: effective_height,
        valid_until: None,
        compromised_from: None,
    });
    state.put(Record::Authority(authority));
    Ok(())
}

/// `ReportKeyCompromise`: what `target` signed from `compromised_from` on may be a thief's.
/// Every key it holds ends at the next height (a scheduled rotation never takes effect), the
/// keys valid between `compromised_from` and this height are marked compromised from the
/// first height of that window they were valid at, and `new_key` (if any) signs from the next
/// height on. Without a new key the authority signs nothing until the governors rotate one in.
pub(super) fn report_compromise<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    target: &AuthorityId,
    compromised_from: Height,
    new_key: Option<&PublicKey>,
) -> Result<(), RuleError> {
    let height = origin.context.height;
    let mut authority = state.require_named_authority(target)?;
    // Keys registered at height r sign from r + 1; genesis keys (r = 0) from height 0.
    if compromised_from > height || compromised_from < authority.registered_at {
        return Err(RuleError::CompromiseOutOfRange {
            authority: target.clone(),
            compromised_from,
            registered_at: authority.registered_at,
            height,
        });
    }
    if let Some(new_key) = new_key {
        if authority.keys.iter().any(|epoch| epoch.key == *new_key) {
            return Err(RuleError::KeyInUse(target.clone()));
        }
        check_room_for_a_key(&authority)?;
    }
    let next = height.saturating_add(limits::GOVERNOR_ROTATION_DELAY_BLOCKS_MAX);
    for epoch in &mut authority.keys {
        // Valid at some height of [compromised_from, height]: marked from the first of them.
        let first = epoch.valid_from.max(compromised_from);
        let signed_in_window =
            first <= height && epoch.valid_until.is_none_or(|until| first < until);
        if signed_in_window {
            let marked = epoch
                .compromised_from
                .map_or(first, |known| known.min(first));
            epoch.compromised_from = Some(marked);
        }
    }
    end_every_key(&mut authority, height, next);
    if let Some(new_key) = new_key {
        claim_key(state, target, new_key)?;
        authority.keys.push(KeyEpoch {
            key: *new_key,
            valid_from: next,
            valid_until: None,
            compromised_from: None,
        });
    }
    state.put(Record::Authority(authority));
    Ok(())
}

/// Ends every key of `authority` at `ends_at` (the next height) at the latest: a key that
/// would still sign then stops, and one scheduled to start later never starts (its epoch is
/// kept, empty, so that the history shows what was overridden).
fn end_every_key(authority: &mut Authority, height: Height, ends_at: Height) {
    for epoch in &mut authority.keys {
        if epoch.valid_from > height {
            epoch.valid_until = Some(epoch.valid_from);
        } else if epoch.valid_until.is_none_or(|until| until > ends_at) {
            epoch.valid_until = Some(ends_at);
        }
    }
}

/// Refuses a new key when the authority's history is full.
fn check_room_for_a_key(authority: &Authority) -> Result<(), RuleError> {
    if authority.keys.len() >= limits::KEYS_PER_AUTHORITY_MAX {
        return Err(RuleError::TooManyKeys {
            authority: authority.id.clone(),
            limit: limits::KEYS_PER_AUTHORITY_MAX,
        });
    }
    Ok(())
}
