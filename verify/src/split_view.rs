//! The split-view proof document (`hutong-split-view/v1`, docs/proofs.md section 14): two
//! checkpoints signed by the chain's validators that cannot both be true, as a witness found
//! them, and its offline check against the genesis file.

use hutong_core::genesis::Genesis;
use hutong_core::log::ConsistencyProof;
use serde::{Deserialize, Serialize};

use crate::witness::WitnessError;
use crate::{BundleError, Checkpoint, VerifiedCheckpoint};

/// The `format` of a split-view proof document.
pub const SPLIT_VIEW_FORMAT: &str = "hutong-split-view/v1";

/// Why two signed checkpoints cannot both be true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitViewKind {
    /// Two different log roots for one log size: conclusive.
    SameSizeDifferentRoots,
    /// Two different headers signed for one height: conclusive (a fork).
    SameHeightDifferentHeaders,
    /// The later log was served with a consistency proof from the earlier that does not
    /// verify: evidence against the node that served it, to be confirmed with the log's
    /// leaves (an honest node can always prove consistency).
    ConsistencyRefused,
}

impl SplitViewKind {
    pub fn name(self) -> &'static str {
        match self {
            SplitViewKind::SameSizeDifferentRoots => "same_size_different_roots",
            SplitViewKind::SameHeightDifferentHeaders => "same_height_different_headers",
            SplitViewKind::ConsistencyRefused => "consistency_refused",
        }
    }
}

/// A split-view proof document: two checkpoints signed by the chain's validators that cannot
/// both be true, as a witness found them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitView {
    /// [`SPLIT_VIEW_FORMAT`].
    pub format: String,
    pub chain_id: String,
    pub kind: SplitViewKind,
    /// The checkpoint the witness held (and cosigned) first.
    pub first: Checkpoint,
    /// The checkpoint that contradicts it.
    pub second: Checkpoint,
    /// For [`SplitViewKind::ConsistencyRefused`]: the proof served from `first`'s log to
    /// `second`'s, which does not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
    /// Where the witness read each checkpoint (for people; not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// What a verified split-view document establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSplitView {
    pub kind: SplitViewKind,
    pub first: VerifiedCheckpoint,
    pub second: VerifiedCheckpoint,
}

/// Checks a split-view document offline: both checkpoints verify against the genesis file
/// (from genesis), and they contradict each other as `kind` says.
pub fn verify_split_view(
    document: &SplitView,
    genesis: &Genesis,
) -> Result<VerifiedSplitView, BundleError> {
    if document.format != SPLIT_VIEW_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: document.format.clone(),
        });
    }
    if document.chain_id != genesis.chain_id {
        return Err(BundleError::ChainMismatch {
            expected: genesis.chain_id.clone(),
            found: document.chain_id.clone(),
        });
    }
    let first = crate::verify_checkpoint(&document.first, genesis)?;
    let second = crate::verify_checkpoint(&document.second, genesis)?;
    let not_split = |reason: String| {
        BundleError::Witness(WitnessError::NotASplitView {
            kind: document.kind.name(),
            reason,
        })
    };
    match document.kind {
        SplitViewKind::SameSizeDifferentRoots => {
            if first.log_size != second.log_size || first.log_root == second.log_root {
                return Err(not_split(format!(
                    "the logs are of {} and {} transactions with roots {} and {}",
                    first.log_size, second.log_size, first.log_root, second.log_root
                )));
            }
        }
        SplitViewKind::SameHeightDifferentHeaders => {
            if first.height != second.height || first.block_hash == second.block_hash {
                return Err(not_split(format!(
                    "the headers are at heights {} and {} with hashes {} and {}",
                    first.height, second.height, first.block_hash, second.block_hash
                )));
            }
        }
        SplitViewKind::ConsistencyRefused => {
            let Some(proof) = &document.consistency else {
                return Err(not_split("it carries no consistency proof".into()));
            };
            if first.log_size >= second.log_size
                || (proof.first_size, proof.second_size) != (first.log_size, second.log_size)
            {
                return Err(not_split(format!(
                    "the proof is from {} to {}, the checkpoints' logs are of {} and {}",
                    proof.first_size, proof.second_size, first.log_size, second.log_size
                )));
            }
            if proof
                .verify(&genesis.suite, &first.log_root, &second.log_root)
                .is_ok()
            {
                return Err(not_split(
                    "the consistency proof verifies: the later log extends the earlier".into(),
                ));
            }
        }
    }
    Ok(VerifiedSplitView {
        kind: document.kind,
        first,
        second,
    })
}

/// Reads a split-view document (at most `PROOF_DOCUMENT_BYTES_MAX` bytes) and checks it
/// ([`verify_split_view`]): what `hutong verify --bundle` runs on a document of this format.
pub fn verify_split_view_json(
    document: &[u8],
    genesis: &Genesis,
) -> Result<VerifiedSplitView, BundleError> {
    if document.len() > crate::PROOF_DOCUMENT_BYTES_MAX {
        return Err(BundleError::TooLarge {
            size_bytes: document.len(),
            limit_bytes: crate::PROOF_DOCUMENT_BYTES_MAX,
        });
    }
    let split: SplitView =
        serde_json::from_slice(document).map_err(|error| BundleError::Json(error.to_string()))?;
    verify_split_view(&split, genesis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::block::BlockHeader;
    use hutong_core::hash::Hash32;
    use hutong_core::suite::Suite;
    use hutong_core::testkit::Fixture;

    fn log_root(suite: Suite, size: u64) -> Hash32 {
        hutong_core::testkit::counted_log_root(suite, size)
    }

    fn consistency(suite: Suite, first: u64, second: u64) -> ConsistencyProof {
        hutong_core::testkit::counted_log_consistency(suite, first, second)
    }

    /// A checkpoint at `height` whose log has `size` leaves with root `root`, signed by the
    /// fixture's validators (its other fields are made up: a certificate signs whatever
    /// header it is given).
    fn signed_checkpoint(fixture: &Fixture, height: u64, size: u64, root: Hash32) -> Checkpoint {
        let genesis = &fixture.genesis;
        let validators = crate::genesis_validators(genesis);
        let header = BlockHeader {
            height,
            log_size: size,
            log_root: root,
            time: genesis.genesis_time + height * 1000,
            ..crate::genesis_header(genesis)
        };
        Checkpoint {
            certificate: Some(fixture.certify(&header)),
            header,
            validators,
            validator_changes: Vec::new(),
            trusted_height: None,
        }
    }

    #[test]
    fn split_views_verify_offline_and_a_consistent_pair_is_refused() {
        let fixture = Fixture::new();
        let suite = fixture.suite();
        let genesis = &fixture.genesis;
        let document = |kind, first, second, consistency| SplitView {
            format: SPLIT_VIEW_FORMAT.into(),
            chain_id: genesis.chain_id.clone(),
            kind,
            first,
            second,
            consistency,
            sources: Vec::new(),
        };
        let at_5 = signed_checkpoint(&fixture, 3, 5, log_root(suite, 5));
        let forked_5 = signed_checkpoint(&fixture, 3, 5, Hash32([1; 32]));
        let at_9 = signed_checkpoint(&fixture, 4, 9, log_root(suite, 9));
        let split = document(
            SplitViewKind::SameSizeDifferentRoots,
            at_5.clone(),
            forked_5.clone(),
            None,
        );
        let verified = verify_split_view(&split, genesis).unwrap();
        assert_eq!(verified.kind, SplitViewKind::SameSizeDifferentRoots);
        assert!(
            verify_split_view(
                &document(
                    SplitViewKind::SameHeightDifferentHeaders,
                    at_5.clone(),
                    forked_5.clone(),
                    None
                ),
                genesis
            )
            .is_ok()
        );
        // The same checkpoint twice is no split view.
        assert!(
            verify_split_view(
                &document(
                    SplitViewKind::SameSizeDifferentRoots,
                    at_5.clone(),
                    at_5.clone(),
                    None
                ),
                genesis
            )
            .is_err()
        );
        // A consistency proof that verifies shows no split view; a forged one does.
        let proof = consistency(suite, 5, 9);
        let consistent = document(
            SplitViewKind::ConsistencyRefused,
            at_5.clone(),
            at_9.clone(),
            Some(proof.clone()),
        );
        assert_eq!(
            verify_split_view(&consistent, genesis).unwrap_err().code(),
            "not-a-split-view"
        );
        let inconsistent = document(
            SplitViewKind::ConsistencyRefused,
            forked_5,
            at_9,
            Some(proof),
        );
        assert!(verify_split_view(&inconsistent, genesis).is_ok());
        // A checkpoint the validators did not sign is refused before anything else.
        let mut unsigned = split.clone();
        unsigned
            .second
            .certificate
            .as_mut()
            .unwrap()
            .signatures
            .truncate(1);
        assert!(verify_split_view(&unsigned, genesis).is_err());
    }
}
