//! The rules of the authority registry: registering a department, changing its names and
//! roles, and the governors list that both keep in step with the roles. Keys (rotation,
//! compromise, who owns a key) are the rules of `keys`.
//!
//! Also the checks other families make of the authority that acts: that it holds a role
//! ([`require_role`]), that a region lies within its own ([`require_region`]), and that
//! more than two thirds of the governors signed ([`require_governors`]).

use super::error::RuleError;
use super::keys::claim_key;
use super::state::{Origin, Scratch, StateReader};
use crate::ident::RegionCode;
use crate::limits;
use crate::records::{Authority, AuthorityId, KeyEpoch, Record, Role};
use crate::tx::AuthorityDraft;

/// `RegisterAuthority`: a new department, whose key signs from the next block on (a key never
/// signs in the block that registers it, so that a block's signatures can be checked against
/// the state before it).
pub(super) fn register<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    draft: &AuthorityDraft,
) -> Result<(), RuleError> {
    if state.authority(&draft.id)?.is_some() {
        return Err(RuleError::AuthorityExists(draft.id.clone()));
    }
    claim_key(state, &draft.id, &draft.key)?;
    let height = origin.context.height;
    let authority = Authority {
        id: draft.id.clone(),
        name_zh: draft.name_zh.clone(),
        name_en: draft.name_en.clone(),
        region: draft.region.clone(),
        uscc: draft.uscc.clone(),
        roles: sorted_roles(&draft.roles),
        keys: vec![KeyEpoch {
            key: draft.key,
            valid_from: height + 1,
            valid_until: None,
            compromised_from: None,
        }],
        last_nonce: 0,
        registered_at: height,
    };
    update_governors(state, &authority.id, authority.has_role(Role::Governor))?;
    state.put(Record::Authority(authority));
    Ok(())
}

/// `UpdateAuthority`: new names or roles (`None` keeps the current value).
pub(super) fn update<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    target: &AuthorityId,
    name_zh: Option<&String>,
    name_en: Option<&String>,
    roles: Option<&[Role]>,
) -> Result<(), RuleError> {
    let mut authority = state.require_named_authority(target)?;
    if let Some(name) = name_zh {
        authority.name_zh = name.clone();
    }
    if let Some(name) = name_en {
        authority.name_en = name.clone();
    }
    if let Some(roles) = roles {
        authority.roles = sorted_roles(roles);
        update_governors(state, target, authority.has_role(Role::Governor))?;
    }
    state.put(Record::Authority(authority));
    Ok(())
}

/// Keeps the governors list (who counts for "more than two thirds") in step with authority
/// `id`'s governor role. The list never grows past [`limits::GOVERNORS_MAX`], since every
/// governor may have to sign one transaction, and never becomes empty, since nothing could
/// then be governed again.
fn update_governors<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    id: &AuthorityId,
    is_governor: bool,
) -> Result<(), RuleError> {
    let mut governors = state.governors()?;
    match (governors.binary_search(id), is_governor) {
        (Err(position), true) => {
            if governors.len() >= limits::GOVERNORS_MAX {
                return Err(RuleError::TooManyGovernors {
                    count: governors.len() + 1,
                    limit: limits::GOVERNORS_MAX,
                });
            }
            governors.insert(position, id.clone());
        }
        (Ok(position), false) => {
            if governors.len() == 1 {
                return Err(RuleError::NoGovernorLeft);
            }
            governors.remove(position);
        }
        _ => return Ok(()),
    }
    state.put(Record::Governors(governors));
    Ok(())
}

/// Roles as the record keeps them: sorted, each once.
fn sorted_roles(roles: &[Role]) -> Vec<Role> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
}

/// Refuses unless `authority` holds `role`.
pub(super) fn require_role(authority: &Authority, role: Role) -> Result<(), RuleError> {
    if authority.has_role(role) {
        Ok(())
    } else {
        Err(RuleError::MissingRole {
            authority: authority.id.clone(),
            role,
        })
    }
}

/// Refuses unless every endorser is a governor and they are more than two thirds of the
/// governors.
pub(super) fn require_governors<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    endorsers: &[AuthorityId],
) -> Result<(), RuleError> {
    let governors = state.governors()?;
    for endorser in endorsers {
        if governors.binary_search(endorser).is_err() {
            return Err(RuleError::EndorserNotGovernor(endorser.clone()));
        }
    }
    let required = governors.len() * 2 / 3 + 1;
    if endorsers.len() < required {
        return Err(RuleError::TooFewGovernorSignatures {
            signed: endorsers.len(),
            governors: governors.len(),
            required,
        });
    }
    Ok(())
}

/// Refuses unless `region` lies within `authority`'s own region.
pub(super) fn require_region(authority: &Authority, region: &RegionCode) -> Result<(), RuleError> {
    if authority.region.covers(region) {
        Ok(())
    } else {
        Err(RuleError::RegionOutsideAuthority {
            authority: authority.id.clone(),
            authority_region: authority.region.clone(),
            region: region.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, authority_entry, entry, id, writes};
    use crate::crypto::{PublicKey, SignatureError};
    use crate::limits;
    use crate::records::{Authority, KeyEpoch, KeyOwner, Record, Role};
    use crate::rules::RuleError;
    use crate::testkit::{self, GENESIS_TIME};
    use crate::tx::{AuthorityDraft, TxBody};

    /// The identity point: a small-order key that no signature may be checked against.
    fn small_order_key() -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        PublicKey(bytes)
    }

    fn jiyuan_draft(roles: Vec<Role>) -> AuthorityDraft {
        AuthorityDraft {
            id: id("jy-approval"),
            name_zh: "济源市行政审批服务局".into(),
            name_en: "Jiyuan Administrative Approval Bureau".into(),
            region: testkit::region("419001"),
            uscc: testkit::uscc("419001", 1),
            roles,
            key: testkit::secret("jy-approval").public_key(),
        }
    }

    fn governors(chain: &Chain) -> Vec<crate::records::AuthorityId> {
        match chain
            .state
            .records
            .get(&crate::records::RecordKey::Governors)
        {
            Some(Record::Governors(list)) => list.clone(),
            other => panic!("no governors list: {other:?}"),
        }
    }

    /// Adds registered governors until the list holds `count`, each with its own key, so that
    /// a governance record can be signed by more than two thirds of them.
    fn fill_governors(chain: &mut Chain, count: usize) -> Vec<String> {
        let mut list = governors(chain);
        let mut index = 0;
        while list.len() < count {
            let name = format!("gov-extra-{index:02}");
            let key = testkit::secret(&name);
            chain.put(Record::Authority(Authority {
                id: id(&name),
                name_zh: "测试治理机构".into(),
                name_en: "Test governor".into(),
                region: testkit::region("370000"),
                uscc: testkit::uscc("370000", 100 + index as u64),
                roles: vec![Role::Governor],
                keys: vec![KeyEpoch {
                    key: key.public_key(),
                    valid_from: 0,
                    valid_until: None,
                    compromised_from: None,
                }],
                last_nonce: 0,
                registered_at: 0,
            }));
            chain.fixture.keys.insert(id(&name), key);
            list.push(id(&name));
            index += 1;
        }
        list.sort();
        chain.put(Record::Governors(list.clone()));
        list.into_iter().map(|governor| governor.0).collect()
    }

    #[test]
    fn a_registered_authority_signs_from_the_next_height_and_a_governor_joins_the_list() {
        let mut chain = Chain::new();
        let draft = jiyuan_draft(vec![Role::Issuer, Role::Governor, Role::Issuer]);
        let registration = chain.governance(TxBody::RegisterAuthority(draft.clone()));
        let signer = chain.signer_after_next("gov-a");
        let mut list = governors(&chain);
        list.push(id("jy-approval"));

        let written = chain.apply(&registration).unwrap();

        let registered = Authority {
            id: draft.id,
            name_zh: draft.name_zh,
            name_en: draft.name_en,
            region: draft.region,
            uscc: draft.uscc,
            roles: vec![Role::Governor, Role::Issuer],
            keys: vec![KeyEpoch {
                key: draft.key,
                valid_from: 2,
                valid_until: None,
                compromised_from: None,
            }],
            last_nonce: 0,
            registered_at: 1,
        };
        let owner = KeyOwner {
            key: registered.keys[0].key,
            authority: registered.id.clone(),
        };
        assert_eq!(
            written,
            writes([
                signer,
                authority_entry(registered),
                entry(Record::Governors(list)),
                entry(Record::KeyOwner(owner)),
            ])
        );
    }

    #[test]
    fn an_authority_is_registered_once() {
        let mut chain = Chain::new();
        let mut draft = jiyuan_draft(vec![Role::Issuer]);
        draft.id = id("qd-market");
        let again = chain.governance(TxBody::RegisterAuthority(draft));
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::AuthorityExists(id("qd-market")))
        );
    }

    #[test]
    fn a_registered_key_must_be_a_usable_point() {
        let mut chain = Chain::new();
        let mut draft = jiyuan_draft(vec![Role::Issuer]);
        draft.key = small_order_key();
        let registration = chain.governance(TxBody::RegisterAuthority(draft));
        assert_eq!(
            chain.apply(&registration),
            Err(RuleError::KeyRejected(SignatureError::SmallOrderKey))
        );
    }

    #[test]
    fn the_governors_list_stops_at_its_limit() {
        let mut chain = Chain::new();
        let list = fill_governors(&mut chain, limits::GOVERNORS_MAX);
        let required = limits::GOVERNORS_MAX * 2 / 3 + 1;
        let mut signers: Vec<&str> = vec!["gov-a"];
        signers.extend(
            list.iter()
                .map(String::as_str)
                .filter(|governor| *governor != "gov-a")
                .take(required - 1),
        );
        let refused = RuleError::TooManyGovernors {
            count: limits::GOVERNORS_MAX + 1,
            limit: limits::GOVERNORS_MAX,
        };

        let body = TxBody::RegisterAuthority(jiyuan_draft(vec![Role::Governor]));
        let payload = chain.fixture.payload("gov-a", body, GENESIS_TIME);
        let registration = chain.fixture.sign(payload, &signers);
        assert_eq!(chain.apply(&registration), Err(refused.clone()));

        let body = TxBody::UpdateAuthority {
            id: id("qd-market"),
            name_zh: None,
            name_en: None,
            roles: Some(vec![Role::Supervisor, Role::Governor]),
        };
        let payload = chain.fixture.payload("gov-a", body, GENESIS_TIME);
        let promotion = chain.fixture.sign(payload, &signers);
        assert_eq!(chain.apply(&promotion), Err(refused));
    }

    #[test]
    fn the_last_governor_keeps_the_role() {
        let mut chain = Chain::new();
        chain.put(Record::Governors(vec![id("gov-a")]));
        let demotion = chain.fixture.governance(
            TxBody::UpdateAuthority {
                id: id("gov-a"),
                name_zh: None,
                name_en: None,
                roles: Some(vec![Role::Issuer]),
            },
            1,
        );
        assert_eq!(chain.apply(&demotion), Err(RuleError::NoGovernorLeft));
    }

    #[test]
    fn an_update_changes_what_it_names_and_keeps_the_governors_in_step() {
        let mut chain = Chain::new();
        let promotion = chain.governance(TxBody::UpdateAuthority {
            id: id("qd-market"),
            name_zh: None,
            name_en: Some("Qingdao Market Regulation Bureau".into()),
            roles: Some(vec![Role::Supervisor, Role::Governor]),
        });
        let signer = chain.signer_after_next("gov-a");
        let mut updated = chain.authority("qd-market");
        updated.name_en = "Qingdao Market Regulation Bureau".into();
        updated.roles = vec![Role::Governor, Role::Supervisor];
        let mut list = governors(&chain);
        list.push(id("qd-market"));
        assert_eq!(
            chain.apply(&promotion).unwrap(),
            writes([
                signer,
                authority_entry(updated),
                entry(Record::Governors(list))
            ])
        );

        // Names alone leave the roles, and so the governors list, alone. Five governors now:
        // four must sign.
        let renaming = chain.fixture.governance(
            TxBody::UpdateAuthority {
                id: id("qd-market"),
                name_zh: Some("青岛市市场监管局".into()),
                name_en: None,
                roles: None,
            },
            4,
        );
        let signer = chain.signer_after_next("gov-a");
        let mut renamed = chain.authority("qd-market");
        renamed.name_zh = "青岛市市场监管局".into();
        assert_eq!(
            chain.apply(&renaming).unwrap(),
            writes([signer, authority_entry(renamed)])
        );
    }

    #[test]
    fn an_update_of_an_unknown_authority_is_refused() {
        let mut chain = Chain::new();
        let update = chain.governance(TxBody::UpdateAuthority {
            id: id("nobody"),
            name_zh: Some("无".into()),
            name_en: None,
            roles: None,
        });
        assert_eq!(
            chain.apply(&update),
            Err(RuleError::UnknownNamedAuthority(id("nobody")))
        );
    }

    fn rotation(new_key: PublicKey, effective_height: u64) -> TxBody {
        TxBody::RotateKey {
            authority: id("qd-approval"),
            new_key,
            effective_height,
        }
    }

    #[test]
    fn a_rotation_closes_the_current_key_where_the_new_one_starts() {
        let mut chain = Chain::new();
        let new_key = testkit::secret("qd-approval-2").public_key();
        let by_itself = chain.fixture.tx("qd-approval", rotation(new_key, 5));
        let (_, before) = chain.signer_after_next("qd-approval");
        let Record::Authority(mut rotated) = before else {
            unreachable!()
        };
        let old_key = rotated.keys[0].key;
        rotated.keys = vec![
            KeyEpoch {
                key: old_key,
                valid_from: 0,
                valid_until: Some(5),
                compromised_from: None,
            },
            KeyEpoch {
                key: new_key,
                valid_from: 5,
                valid_until: None,
                compromised_from: None,
            },
        ];
        let owner = |key| {
            entry(Record::KeyOwner(KeyOwner {
                key,
                authority: id("qd-approval"),
            }))
        };
        // The nonce and the keys land in one record; the new key is the authority's for ever.
        assert_eq!(
            chain.apply(&by_itself).unwrap(),
            writes([authority_entry(rotated.clone()), owner(new_key)])
        );

        // The governors rotate a lost key, from the next height (7: the block is height 6).
        for _ in 0..4 {
            chain.empty_block();
        }
        let third_key = testkit::secret("qd-approval-3").public_key();
        let by_governors = chain.governance(rotation(third_key, 7));
        let signer = chain.signer_after_next("gov-a");
        rotated.keys[1].valid_until = Some(7);
        rotated.keys.push(KeyEpoch {
            key: third_key,
            valid_from: 7,
            valid_until: None,
            compromised_from: None,
        });
        assert_eq!(
            chain.apply(&by_governors).unwrap(),
            writes([signer, authority_entry(rotated), owner(third_key)])
        );
    }

    #[test]
    fn a_rotation_names_a_known_authority_a_usable_new_key_and_a_later_height() {
        let mut chain = Chain::new();
        let new_key = testkit::secret("qd-approval-2").public_key();

        let unknown = chain.governance(TxBody::RotateKey {
            authority: id("nobody"),
            new_key,
            effective_height: 5,
        });
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownNamedAuthority(id("nobody")))
        );

        let unusable = chain
            .fixture
            .tx("qd-approval", rotation(small_order_key(), 5));
        assert_eq!(
            chain.apply(&unusable),
            Err(RuleError::KeyRejected(SignatureError::SmallOrderKey))
        );

        let now = chain.fixture.tx("qd-approval", rotation(new_key, 1));
        assert_eq!(
            chain.apply(&now),
            Err(RuleError::RotationNotLater {
                height: 1,
                effective_height: 1
            })
        );

        let current = chain.authority("qd-approval").keys[0].key;
        let same = chain.fixture.tx("qd-approval", rotation(current, 5));
        assert_eq!(
            chain.apply(&same),
            Err(RuleError::KeyInUse(id("qd-approval")))
        );
    }

    #[test]
    fn one_rotation_waits_at_a_time() {
        let mut chain = Chain::new();
        let first = testkit::secret("qd-approval-2").public_key();
        let second = testkit::secret("qd-approval-3").public_key();
        let scheduled = chain.fixture.tx("qd-approval", rotation(first, 10));
        chain.apply(&scheduled).unwrap();
        let another = chain.fixture.tx("qd-approval", rotation(second, 12));
        assert_eq!(
            chain.apply(&another),
            Err(RuleError::RotationPending {
                effective_height: 10
            })
        );
    }

    #[test]
    fn the_key_history_stops_at_its_limit() {
        let mut chain = Chain::new();
        let mut full = chain.authority("qd-approval");
        let current = full.keys[0].key;
        full.keys = (0..limits::KEYS_PER_AUTHORITY_MAX as u64 - 1)
            .map(|epoch| KeyEpoch {
                key: testkit::secret(&format!("qd-approval-old-{epoch}")).public_key(),
                valid_from: 0,
                valid_until: Some(0),
                compromised_from: None,
            })
            .collect();
        full.keys.push(KeyEpoch {
            key: current,
            valid_from: 0,
            valid_until: None,
            compromised_from: None,
        });
        chain.put(Record::Authority(full));
        let new_key = testkit::secret("qd-approval-2").public_key();
        let rotation = chain.fixture.tx("qd-approval", rotation(new_key, 5));
        assert_eq!(
            chain.apply(&rotation),
            Err(RuleError::TooManyKeys {
                authority: id("qd-approval"),
                limit: limits::KEYS_PER_AUTHORITY_MAX,
            })
        );
    }
}
