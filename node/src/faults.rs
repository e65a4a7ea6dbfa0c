//! Fault injection for the end-to-end tests: a partition switch and an equivocating signer.
//! Off unless the configuration's `[testing]` section enables it and the process runs with
//! `HUTONG_ALLOW_TESTING_SWITCHES=1` (see [`crate::config::TestingConfig`]).

use std::path::{Path, PathBuf};

use hutong_consensus::{Signature, SignedVote, Signer};
use hutong_ledger::block::Ed25519Signer;
use hutong_ledger::crypto::SecretKey;
use hutong_ledger::hash::tagged;

use crate::config::{Config, TestingConfig};

/// The environment variable that must be `1` for `[testing]` to take effect.
pub const ALLOW_ENV: &str = "HUTONG_ALLOW_TESTING_SWITCHES";

/// The fault switches in force for this process.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    partition_file: Option<PathBuf>,
    equivocate: bool,
}

impl Faults {
    /// The switches of `config` (paths resolved against `home`). An error when the section
    /// is enabled but the environment does not allow it.
    pub fn from_config(config: &TestingConfig, home: &Path) -> Result<Self, String> {
        if !config.enabled {
            return Ok(Faults::default());
        }
        if std::env::var(ALLOW_ENV).as_deref() != Ok("1") {
            return Err(format!(
                "testing.enabled is true in config.toml, but {ALLOW_ENV}=1 is not set: \
                 fault injection is for tests only; remove the [testing] section"
            ));
        }
        let faults = Faults {
            partition_file: config
                .partition_file
                .as_deref()
                .map(|path| Config::resolve(home, path)),
            equivocate: config.equivocate,
        };
        for _ in 0..3 {
            tracing::warn!(
                partition_file = ?faults.partition_file,
                equivocate = faults.equivocate,
                "TESTING SWITCHES ARE ON: this node injects faults and must never run in production"
            );
        }
        eprintln!(
            "WARNING: hutong testing switches are on (partition_file = {:?}, equivocate = {}); never in production",
            faults.partition_file, faults.equivocate
        );
        Ok(faults)
    }

    /// Whether the node is cut off from its peers now (the partition file exists).
    pub fn partitioned(&self) -> bool {
        self.partition_file
            .as_deref()
            .is_some_and(|path| path.exists())
    }

    /// A signer of conflicting votes, when this node is to equivocate.
    pub fn equivocator(&self, key: &SecretKey) -> Option<Equivocator> {
        self.equivocate
            .then(|| Equivocator(Ed25519Signer(key.clone())))
    }
}

/// Signs, for every vote the node casts, a second vote of the same slot with another value.
#[derive(Debug)]
pub struct Equivocator(Ed25519Signer);

impl Equivocator {
    /// The conflicting twin of `vote`: nil for a value, a made-up value for nil.
    pub fn twin(&self, vote: &SignedVote<[u8; 32]>, chain_id: &str) -> SignedVote<[u8; 32]> {
        let mut twin = vote.vote.clone();
        twin.value = match twin.value {
            Some(_) => None,
            None => Some(tagged("hutong/testing/equivocation/v1", &twin.height.to_be_bytes()).0),
        };
        let signature: Signature = self.0.sign(&twin.sign_bytes(chain_id));
        SignedVote {
            vote: twin,
            signature,
        }
    }
}
