//! The block-wide signature check. Signatures are checked apart from the other rules, for a
//! whole block at once and in one batch, because the keys valid at a height never depend on
//! transactions of the same block: a registered key signs from the next height on, and a
//! rotation takes effect at a later height than the block that records it.

use std::collections::BTreeMap;

use super::error::RuleError;
use super::state::{Context, StateReader};
use crate::crypto::{self, PublicKey, SignatureError};
use crate::hash::Hash32;
use crate::records::{AuthorityId, Record, RecordKey};
use crate::tx::{EncodedTransaction, Transaction, signing_message_of};

/// Checks every endorsement of `transactions` against the keys valid at `context.height` in
/// `state` (the state before the block), in one batch. Returns, per transaction, whether its
/// signatures hold; the other rules run in [`apply_transaction`](super::apply_transaction).
pub fn check_signatures<R: StateReader + ?Sized>(
    state: &R,
    context: &Context<'_>,
    transactions: &[&Transaction],
) -> Vec<Result<(), RuleError>> {
    let encoded: Vec<EncodedTransaction> = transactions
        .iter()
        .map(|transaction| transaction.encode())
        .collect();
    let candidates: Vec<SignatureCandidate<'_>> = transactions
        .iter()
        .zip(&encoded)
        .map(|(transaction, encoded)| SignatureCandidate {
            transaction,
            id: encoded.id(context.suite),
            payload_bytes: encoded.payload_bytes(),
        })
        .collect();
    check_candidate_signatures(state, context, &candidates, &NothingVerified).results
}

/// A transaction whose signatures are to be checked, with what its encoding already gave.
#[derive(Clone, Copy, Debug)]
pub struct SignatureCandidate<'a> {
    pub transaction: &'a Transaction,
    /// Its id ([`Transaction::id`]).
    pub id: Hash32,
    /// Its payload's canonical bytes ([`EncodedTransaction::payload_bytes`]).
    pub payload_bytes: &'a [u8],
}

/// Signatures already found acceptable under hutong's rule, so that a node checks each one
/// once: the transaction id fixes the payload and the signature bytes, so a signature that
/// verified once under a key verifies again under the same key.
pub trait VerifiedSignatures {
    /// Whether the endorsement of transaction `id` under `key` was already verified.
    fn contains(&self, id: &Hash32, key: &PublicKey) -> bool;
}

/// No signature known: every one is checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NothingVerified;

impl VerifiedSignatures for NothingVerified {
    fn contains(&self, _id: &Hash32, _key: &PublicKey) -> bool {
        false
    }
}

/// The outcome of [`check_candidate_signatures`].
#[derive(Debug)]
pub struct SignatureCheck {
    /// Per candidate, whether its signatures hold.
    pub results: Vec<Result<(), RuleError>>,
    /// Per candidate, the key each endorsement was checked against, in order (empty for a
    /// candidate that failed before its keys were known).
    pub keys: Vec<Vec<PublicKey>>,
    /// Endorsements whose curve arithmetic was skipped because `already_verified` held them.
    pub skipped: usize,
    /// Endorsements checked by the batch equation (or alone after it failed).
    pub checked: usize,
}

/// [`check_signatures`] on transactions encoded by the caller, skipping the arithmetic for
/// endorsements that `already_verified` holds under the key valid at `context.height`. The
/// key lookups, the chain and the encoding checks run for every candidate all the same, so
/// the results are exactly those of [`check_signatures`] whenever `already_verified` holds
/// only signatures that passed [`crate::crypto::verify`].
pub fn check_candidate_signatures<R: StateReader + ?Sized>(
    state: &R,
    context: &Context<'_>,
    candidates: &[SignatureCandidate<'_>],
    already_verified: &dyn VerifiedSignatures,
) -> SignatureCheck {
    let mut results: Vec<Result<(), RuleError>> = Vec::with_capacity(candidates.len());
    let mut keys_used: Vec<Vec<PublicKey>> = Vec::with_capacity(candidates.len());
    // One per endorsement that goes into the batch: (candidate index, endorsement index).
    let mut owners: Vec<(usize, usize)> = Vec::new();
    let mut keys: Vec<PublicKey> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut message_of_item: Vec<usize> = Vec::new();
    let mut key_cache: BTreeMap<AuthorityId, Option<PublicKey>> = BTreeMap::new();
    let mut skipped = 0usize;

    for (index, candidate) in candidates.iter().enumerate() {
        let transaction = candidate.transaction;
        let prepared = (|| -> Result<Vec<PublicKey>, RuleError> {
            let payload = &transaction.payload;
            if payload.chain_id != context.chain_id {
                return Err(RuleError::WrongChain {
                    expected: context.chain_id.to_owned(),
                    found: payload.chain_id.clone(),
                });
            }
            // The signing message carries the chain id's length in one byte.
            let length_bytes = payload.chain_id.len();
            if !(1..=crypto::CHAIN_ID_BYTES_MAX).contains(&length_bytes) {
                return Err(RuleError::BadSignature {
                    authority: payload.signer.clone(),
                    error: SignatureError::ChainIdLength { length_bytes },
                });
            }
            let mut endorsement_keys = Vec::with_capacity(transaction.signatures.len());
            for endorsement in &transaction.signatures {
                let key = match key_cache.get(&endorsement.authority) {
                    Some(key) => *key,
                    None => {
                        let key = match state
                            .record(&RecordKey::Authority(endorsement.authority.clone()))?
                        {
                            Some(Record::Authority(authority)) => {
                                authority.key_at(context.height).copied()
                            }
                            _ => None,
                        };
                        key_cache.insert(endorsement.authority.clone(), key);
                        key
                    }
                };
                let Some(key) = key else {
                    let known = matches!(
                        state.record(&RecordKey::Authority(endorsement.authority.clone()))?,
                        Some(Record::Authority(_))
                    );
                    return Err(if known {
                        RuleError::NoKeyAtHeight {
                            authority: endorsement.authority.clone(),
                            height: context.height,
                        }
                    } else {
                        RuleError::UnknownAuthority(endorsement.authority.clone())
                    });
                };
                endorsement_keys.push(key);
            }
            Ok(endorsement_keys)
        })();
        match prepared {
            Ok(endorsement_keys) => {
                let mut message_index = None;
                for (endorsement_index, key) in endorsement_keys.iter().enumerate() {
                    if already_verified.contains(&candidate.id, key) {
                        skipped += 1;
                        continue;
                    }
                    let message_index = match message_index {
                        Some(message_index) => message_index,
                        None => {
                            match signing_message_of(
                                &transaction.payload.chain_id,
                                candidate.payload_bytes,
                            ) {
                                Ok(message) => messages.push(message),
                                // Checked above; an error here would be the same one.
                                Err(_) => messages.push(Vec::new()),
                            }
                            let created = messages.len() - 1;
                            message_index = Some(created);
                            created
                        }
                    };
                    owners.push((index, endorsement_index));
                    keys.push(*key);
                    message_of_item.push(message_index);
                }
                keys_used.push(endorsement_keys);
                results.push(Ok(()));
            }
            Err(error) => {
                keys_used.push(Vec::new());
                results.push(Err(error));
            }
        }
    }

    let mut items: Vec<(&PublicKey, &[u8], &crypto::Signature)> = Vec::with_capacity(keys.len());
    for (item, (candidate_index, endorsement_index)) in owners.iter().enumerate() {
        let signature = candidates
            .get(*candidate_index)
            .and_then(|candidate| candidate.transaction.signatures.get(*endorsement_index))
            .map(|endorsement| &endorsement.signature);
        let message = message_of_item
            .get(item)
            .and_then(|message_index| messages.get(*message_index));
        if let (Some(key), Some(message), Some(signature)) = (keys.get(item), message, signature) {
            items.push((key, message.as_slice(), signature));
        }
    }
    debug_assert_eq!(items.len(), owners.len(), "every batch item has its parts");
    let checked = items.len();
    for failure in context
        .suite
        .verify_batch_with_errors(&items)
        .err()
        .unwrap_or_default()
    {
        let Some((candidate_index, endorsement_index)) = owners.get(failure.index) else {
            continue;
        };
        let authority = candidates
            .get(*candidate_index)
            .and_then(|candidate| candidate.transaction.signatures.get(*endorsement_index))
            .map(|endorsement| endorsement.authority.clone());
        if let (Some(result), Some(authority)) = (results.get_mut(*candidate_index), authority)
            && result.is_ok()
        {
            *result = Err(RuleError::BadSignature {
                authority,
                error: failure.error,
            });
        }
    }
    SignatureCheck {
        results,
        keys: keys_used,
        skipped,
        checked,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::testing::{Chain, id};
    use super::{
        NothingVerified, SignatureCandidate, VerifiedSignatures, check_candidate_signatures,
        check_signatures,
    };
    use crate::crypto::{PublicKey, SignatureError};
    use crate::hash::Hash32;
    use crate::records::{KeyEpoch, Record};
    use crate::rules::{Context, RuleError};
    use crate::testkit::{self, CHAIN_ID, GENESIS_TIME};
    use crate::tx::{Transaction, TxBody};

    fn context(height: u64) -> Context<'static> {
        Context {
            chain_id: CHAIN_ID,
            suite: crate::testkit::SUITE,
            height,
            time: Chain::time_at(height),
        }
    }

    fn revoke_body() -> TxBody {
        TxBody::RevokeGrant {
            authority: id("qd-approval"),
            type_code: "business-licence".into(),
            region: testkit::region("370200"),
        }
    }

    #[test]
    fn every_endorsement_is_checked_against_the_key_valid_at_the_height() {
        let mut chain = Chain::new();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let governance = chain.governance(revoke_body());
        assert_eq!(
            check_signatures(&chain.state, &context(1), &[&issuance, &governance]),
            vec![Ok(()), Ok(())]
        );
    }

    #[test]
    fn a_transaction_of_another_chain_is_refused_before_its_keys_are_read() {
        let mut chain = Chain::new();
        let mut payload = chain.fixture.payload(
            "qd-approval",
            testkit::business_licence_body("370200", 1),
            GENESIS_TIME,
        );
        payload.chain_id = "hutong-other".into();
        let foreign = chain.fixture.sign(payload, &["qd-approval"]);
        assert_eq!(
            check_signatures(&chain.state, &context(1), &[&foreign]),
            vec![Err(RuleError::WrongChain {
                expected: CHAIN_ID.into(),
                found: "hutong-other".into(),
            })]
        );
    }

    #[test]
    fn an_endorser_needs_a_record_and_a_key_valid_at_the_height() {
        let mut chain = Chain::new();
        chain
            .fixture
            .keys
            .insert(id("nobody"), testkit::secret("nobody"));
        let payload = chain.fixture.payload("nobody", revoke_body(), GENESIS_TIME);
        let unknown = chain.fixture.sign(payload, &["nobody"]);

        // A key registered at height 4 signs from height 5 on.
        let key = testkit::secret("jy-approval");
        let mut newcomer = chain.authority("qd-approval");
        newcomer.id = id("jy-approval");
        newcomer.keys = vec![KeyEpoch {
            key: key.public_key(),
            valid_from: 5,
            valid_until: None,
            compromised_from: None,
        }];
        chain.put(Record::Authority(newcomer));
        chain.fixture.keys.insert(id("jy-approval"), key);
        let payload = chain
            .fixture
            .payload("jy-approval", revoke_body(), GENESIS_TIME);
        let early = chain.fixture.sign(payload, &["jy-approval"]);

        assert_eq!(
            check_signatures(&chain.state, &context(4), &[&unknown, &early]),
            vec![
                Err(RuleError::UnknownAuthority(id("nobody"))),
                Err(RuleError::NoKeyAtHeight {
                    authority: id("jy-approval"),
                    height: 4,
                }),
            ]
        );
        assert_eq!(
            check_signatures(&chain.state, &context(5), &[&early]),
            vec![Ok(())]
        );
    }

    /// `transaction` with the signature of its endorsement `index` taken from `other`'s, which
    /// signs another payload.
    fn with_signature_of(
        transaction: &Transaction,
        other: &Transaction,
        index: usize,
    ) -> Transaction {
        let mut forged = transaction.clone();
        forged.signatures[index].signature = other.signatures[index].signature;
        forged
    }

    #[test]
    fn a_bad_signature_fails_its_own_transaction_only() {
        let mut chain = Chain::new();
        let first = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let second = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 2);
        let governance = chain.governance(revoke_body());
        let other_governance = chain.governance(revoke_body());
        let forged_issuance = with_signature_of(&second, &first, 0);
        // The third governor's endorsement is the forged one.
        let forged_governance = with_signature_of(&governance, &other_governance, 2);
        assert_eq!(
            check_signatures(
                &chain.state,
                &context(1),
                &[
                    &first,
                    &forged_issuance,
                    &forged_governance,
                    &other_governance
                ]
            ),
            vec![
                Ok(()),
                Err(RuleError::BadSignature {
                    authority: id("qd-approval"),
                    error: SignatureError::Mismatch,
                }),
                Err(RuleError::BadSignature {
                    authority: id("gov-c"),
                    error: SignatureError::Mismatch,
                }),
                Ok(()),
            ]
        );
    }

    /// Signatures a node verified before, by transaction id and key.
    struct Seen(BTreeSet<(Hash32, PublicKey)>);

    impl VerifiedSignatures for Seen {
        fn contains(&self, id: &Hash32, key: &PublicKey) -> bool {
            self.0.contains(&(*id, *key))
        }
    }

    #[test]
    fn signatures_verified_before_skip_the_arithmetic_and_give_the_same_results() {
        let mut chain = Chain::new();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let governance = chain.governance(revoke_body());
        let transactions = [&issuance, &governance];
        let encoded: Vec<_> = transactions.iter().map(|tx| tx.encode()).collect();
        let candidates: Vec<SignatureCandidate<'_>> = transactions
            .iter()
            .zip(&encoded)
            .map(|(transaction, encoded)| SignatureCandidate {
                transaction,
                id: encoded.id(crate::testkit::SUITE),
                payload_bytes: encoded.payload_bytes(),
            })
            .collect();
        let key_of = |name: &str| chain.authority(name).keys[0].key;

        let fresh =
            check_candidate_signatures(&chain.state, &context(1), &candidates, &NothingVerified);
        assert_eq!(fresh.results, vec![Ok(()), Ok(())]);
        assert_eq!(
            fresh.keys,
            vec![
                vec![key_of("qd-approval")],
                vec![key_of("gov-a"), key_of("gov-b"), key_of("gov-c")],
            ]
        );
        assert_eq!((fresh.checked, fresh.skipped), (4, 0));

        let seen = Seen(BTreeSet::from([
            (issuance.id(crate::testkit::SUITE), key_of("qd-approval")),
            (governance.id(crate::testkit::SUITE), key_of("gov-b")),
        ]));
        let again = check_candidate_signatures(&chain.state, &context(1), &candidates, &seen);
        assert_eq!(again.results, fresh.results);
        assert_eq!(again.keys, fresh.keys);
        assert_eq!((again.checked, again.skipped), (2, 2));
    }

    #[test]
    fn an_authority_record_unrelated_to_the_signer_does_not_lend_its_key() {
        let mut chain = Chain::new();
        // qd-market signs, but claims to be qd-approval.
        let payload = chain.fixture.payload(
            "qd-approval",
            testkit::business_licence_body("370200", 1),
            GENESIS_TIME,
        );
        let mut impostor = chain.fixture.sign(payload, &["qd-market"]);
        impostor.signatures[0].authority = id("qd-approval");
        assert_eq!(
            check_signatures(&chain.state, &context(1), &[&impostor]),
            vec![Err(RuleError::BadSignature {
                authority: id("qd-approval"),
                error: SignatureError::Mismatch,
            })]
        );
    }
}
