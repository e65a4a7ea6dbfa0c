//! The right to change a licence, checked at every write exactly as at issuance: the signer is
//! the licence's issuer (or the successor the governors handed it to, ADR 0035), still holds the issuer role, and holds a grant of the licence's type
//! in a region covering the licence's that is in force at the height of the change. An
//! issuer that lost its role or its grant loses the right to renew, amend, suspend, revoke or
//! settle objections on the licences it issued; a supervisor's right is checked in
//! `licences::change_status` with the same grant test.

use super::authorities::require_role;
use super::error::RuleError;
use super::state::{Scratch, StateReader};
use crate::records::{AuthorityId, Height, Licence, Role};

/// Refuses unless `signer` may change `licence` as its issuer at `height`.
pub(super) fn require_issuer_right<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    signer: &AuthorityId,
    licence: &Licence,
    height: Height,
) -> Result<(), RuleError> {
    if signer != licence.responsible() {
        return Err(RuleError::NotIssuer {
            issuer: licence.responsible().clone(),
            authority: signer.clone(),
        });
    }
    let issuer = state.require_authority(signer)?;
    require_role(&issuer, Role::Issuer)?;
    if !state.has_covering_grant(signer, &licence.type_code, &licence.region, height)? {
        return Err(RuleError::NotGranted {
            authority: signer.clone(),
            type_code: licence.type_code.clone(),
            region: licence.region.clone(),
        });
    }
    Ok(())
}
