//! Why the consensus engine refuses a peer's message and penalises the peer: one variant per
//! cause, each with its label in `hutong_rejected_messages_total{reason}` and the
//! [`Misbehaviour`] (hence the penalty weight) it is reported to the network under. This is
//! the one place where a cause is tied to its label and its weight.

use hutong_consensus::CertificateError;
use hutong_core::block::BlockCertificateError;

use crate::network::Misbehaviour;

/// A peer's message refused, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PenaltyReason {
    /// Gossip on the consensus topic that does not decode as an envelope.
    MalformedConsensusMessage,
    /// Gossip on the transaction topic that does not decode as a batch, or holds more
    /// transactions than a batch may.
    MalformedTransactionBatch,
    /// A transaction's bytes (in a batch or a fetch response) that do not decode.
    MalformedTransaction,
    /// A request that does not decode as a sync request.
    MalformedSyncRequest,
    /// A response that does not decode as a sync response.
    MalformedSyncResponse,
    /// A sync response of the wrong kind (transactions for a request of blocks).
    UnexpectedSyncResponse,
    /// A proposal whose block's header hash is not the proposed value.
    ProposalBlockMismatch,
    /// A proposal whose block lists more transactions than a block may hold.
    ProposalTooLarge,
    /// A catch-up block whose commit certificate does not verify, by the certificate's
    /// failure: the forgeries a Byzantine peer can make are told apart.
    BadCertificate(CertificateRefusal),
    /// A catch-up block with a valid certificate that does not re-execute to its header.
    BadBlock,
    /// A fetch response holding a transaction that was not asked for.
    UnaskedTransaction,
    /// A gossiped transaction whose signature does not verify.
    BadSignature,
}

/// Which check of a commit certificate failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateRefusal {
    /// The signers hold two thirds of the voting power or less.
    InsufficientPower,
    /// A signer is not a validator of the block's height.
    UnknownSigner,
    /// A signature does not verify.
    BadSignature,
    /// Any other mismatch (height, round, value, duplicate signers).
    Other,
}

impl CertificateRefusal {
    /// The refusal of a block certificate check's error.
    pub fn of(error: &BlockCertificateError) -> Self {
        match error {
            BlockCertificateError::Certificate(CertificateError::InsufficientPower { .. }) => {
                CertificateRefusal::InsufficientPower
            }
            BlockCertificateError::Certificate(CertificateError::UnknownValidator { .. }) => {
                CertificateRefusal::UnknownSigner
            }
            BlockCertificateError::Certificate(CertificateError::BadSignature { .. }) => {
                CertificateRefusal::BadSignature
            }
            _ => CertificateRefusal::Other,
        }
    }
}

impl PenaltyReason {
    /// Every reason, for tests and documentation.
    #[cfg_attr(not(test), allow(dead_code))]
    pub const ALL: [PenaltyReason; 15] = [
        PenaltyReason::MalformedConsensusMessage,
        PenaltyReason::MalformedTransactionBatch,
        PenaltyReason::MalformedTransaction,
        PenaltyReason::MalformedSyncRequest,
        PenaltyReason::MalformedSyncResponse,
        PenaltyReason::UnexpectedSyncResponse,
        PenaltyReason::ProposalBlockMismatch,
        PenaltyReason::ProposalTooLarge,
        PenaltyReason::BadCertificate(CertificateRefusal::InsufficientPower),
        PenaltyReason::BadCertificate(CertificateRefusal::UnknownSigner),
        PenaltyReason::BadCertificate(CertificateRefusal::BadSignature),
        PenaltyReason::BadCertificate(CertificateRefusal::Other),
        PenaltyReason::BadBlock,
        PenaltyReason::UnaskedTransaction,
        PenaltyReason::BadSignature,
    ];

    /// The reason's label in `hutong_rejected_messages_total{reason}` and in logs. These
    /// values are relied on by operators' alerts and by the end-to-end tests: never rename one.
    pub fn label(self) -> &'static str {
        match self {
            PenaltyReason::MalformedConsensusMessage => "malformed_consensus_message",
            PenaltyReason::MalformedTransactionBatch => "malformed_transaction_batch",
            PenaltyReason::MalformedTransaction => "malformed_transaction",
            PenaltyReason::MalformedSyncRequest => "malformed_sync_request",
            PenaltyReason::MalformedSyncResponse => "malformed_sync_response",
            PenaltyReason::UnexpectedSyncResponse => "unexpected_sync_response",
            PenaltyReason::ProposalBlockMismatch => "proposal_block_mismatch",
            PenaltyReason::ProposalTooLarge => "proposal_too_large",
            PenaltyReason::BadCertificate(CertificateRefusal::InsufficientPower) => {
                "bad_certificate_insufficient_power"
            }
            PenaltyReason::BadCertificate(CertificateRefusal::UnknownSigner) => {
                "bad_certificate_unknown_signer"
            }
            PenaltyReason::BadCertificate(CertificateRefusal::BadSignature) => {
                "bad_certificate_bad_signature"
            }
            PenaltyReason::BadCertificate(CertificateRefusal::Other) => "bad_certificate",
            PenaltyReason::BadBlock => "bad_block",
            PenaltyReason::UnaskedTransaction => "unasked_transaction",
            PenaltyReason::BadSignature => "bad_signature",
        }
    }

    /// What the network is told, which sets the penalty's weight
    /// ([`Misbehaviour::points`]): bytes that do not decode and bad signatures weigh most;
    /// a well-formed message that breaks a rule weighs less, since an honest peer a version
    /// apart can send one.
    pub fn misbehaviour(self) -> Misbehaviour {
        match self {
            PenaltyReason::MalformedConsensusMessage
            | PenaltyReason::MalformedTransactionBatch
            | PenaltyReason::MalformedTransaction
            | PenaltyReason::MalformedSyncRequest
            | PenaltyReason::MalformedSyncResponse => Misbehaviour::MalformedMessage,
            PenaltyReason::BadSignature => Misbehaviour::InvalidSignature,
            PenaltyReason::UnexpectedSyncResponse
            | PenaltyReason::ProposalBlockMismatch
            | PenaltyReason::ProposalTooLarge
            | PenaltyReason::BadCertificate(_)
            | PenaltyReason::BadBlock
            | PenaltyReason::UnaskedTransaction => Misbehaviour::InvalidContent,
        }
    }
}

impl std::fmt::Display for PenaltyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn labels_are_distinct_and_keep_the_names_alerts_and_tests_rely_on() {
        let labels: HashSet<&str> = PenaltyReason::ALL
            .iter()
            .map(|reason| reason.label())
            .collect();
        assert_eq!(labels.len(), PenaltyReason::ALL.len());
        for kept in [
            "bad_certificate_insufficient_power",
            "bad_certificate_unknown_signer",
            "bad_certificate_bad_signature",
            "bad_certificate",
            "malformed_transaction",
            "bad_signature",
        ] {
            assert!(labels.contains(kept), "{kept} is a label");
        }
    }

    #[test]
    fn weights_follow_the_kind_of_fault() {
        assert_eq!(
            PenaltyReason::MalformedSyncResponse.misbehaviour(),
            Misbehaviour::MalformedMessage
        );
        assert_eq!(
            PenaltyReason::BadSignature.misbehaviour(),
            Misbehaviour::InvalidSignature
        );
        assert_eq!(
            PenaltyReason::BadCertificate(CertificateRefusal::BadSignature).misbehaviour(),
            Misbehaviour::InvalidContent
        );
        // A certificate forgery weighs a rule violation: five within a short time ban.
        assert_eq!(
            PenaltyReason::BadCertificate(CertificateRefusal::InsufficientPower)
                .misbehaviour()
                .points(),
            20
        );
    }
}
