//! The algorithm suite of a chain: which hash function and which signature scheme make and
//! check its headers, transaction ids, transaction log, state tree and signatures. The genesis
//! file names it (`"suite"`), so that every node and every offline verifier knows, from the
//! one file they trust, how to check everything else; a chain never changes its suite.
//!
//! Today there is one suite, `ed25519-blake3`: ed25519 under the acceptance rule of ADR 0002
//! ([`crate::crypto`]) and blake3 with domain tags ([`crate::hash`]), the log and the state
//! tree hashed with blake3 as RFC 9162 and docs/proofs.md lay out. A national-cryptography suite
//! (SM2 signatures, SM3 hashing) is meant to be added as a second variant: a chain chooses it
//! in its genesis file, and nodes that know both serve both kinds of chain, with no flag day
//! for the chains that keep theirs (ADR 0016).

use serde::{Deserialize, Serialize};

/// A chain's algorithm suite, as its genesis file names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// ed25519 signatures (ADR 0002), blake3 hashing.
    #[default]
    #[serde(rename = "ed25519-blake3")]
    Ed25519Blake3,
}

impl Suite {
    /// Every suite this build implements.
    pub const SUPPORTED: [Suite; 1] = [Suite::Ed25519Blake3];

    /// The name the genesis file uses.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519Blake3 => "ed25519-blake3",
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_named_as_the_genesis_file_writes_it() {
        assert_eq!(
            serde_json::to_string(&Suite::Ed25519Blake3).unwrap(),
            "\"ed25519-blake3\""
        );
        assert_eq!(
            serde_json::from_str::<Suite>("\"ed25519-blake3\"").unwrap(),
            Suite::Ed25519Blake3
        );
        for suite in Suite::SUPPORTED {
            assert_eq!(
                serde_json::to_string(&suite).unwrap(),
                format!("\"{}\"", suite.name())
            );
        }
        let unknown = serde_json::from_str::<Suite>("\"sm2-sm3\"").unwrap_err();
        assert!(unknown.to_string().contains("sm2-sm3"), "{unknown}");
    }
}
