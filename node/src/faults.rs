//! Fault injection for the end-to-end tests: a partition switch, an equivocating signer, a
//! node that withholds its transactions from the gossip, and a catch-up server that forges
//! commit certificates.
//! Off unless the configuration's `[testing]` section enables it and the process runs with
//! `HUTONG_ALLOW_TESTING_SWITCHES=1` (see [`crate::config::TestingConfig`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hutong_consensus::{CommitSignature, Signature, SignedVote, Signer};
use hutong_core::block::{Block, CommitCertificate};
use hutong_core::crypto::SecretKey;
use hutong_core::suite::{Suite, SuiteSigner};

use crate::config::{Config, TestingConfig};

/// The environment variable that must be `1` for `[testing]` to take effect.
pub const ALLOW_ENV: &str = "HUTONG_ALLOW_TESTING_SWITCHES";

/// The fault switches in force for this process.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    partition_file: Option<PathBuf>,
    equivocate: bool,
    withhold_transactions: bool,
    forge_catch_up: bool,
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
            withhold_transactions: config.withhold_transactions,
            forge_catch_up: config.forge_catch_up,
        };
        for _ in 0..3 {
            tracing::warn!(
                partition_file = ?faults.partition_file,
                equivocate = faults.equivocate,
                withhold_transactions = faults.withhold_transactions,
                forge_catch_up = faults.forge_catch_up,
                "TESTING SWITCHES ARE ON: this node injects faults and must never run in production"
            );
        }
        eprintln!(
            "WARNING: hutong testing switches are on (partition_file = {:?}, equivocate = {}, withhold_transactions = {}, forge_catch_up = {}); never in production",
            faults.partition_file,
            faults.equivocate,
            faults.withhold_transactions,
            faults.forge_catch_up
        );
        Ok(faults)
    }

    /// Whether the node is cut off from its peers now (the partition file exists).
    pub fn partitioned(&self) -> bool {
        self.partition_file
            .as_deref()
            .is_some_and(|path| path.exists())
    }

    /// Whether the node keeps the transactions submitted to it out of the gossip.
    pub fn withholds_transactions(&self) -> bool {
        self.withhold_transactions
    }

    /// A signer of conflicting votes, when this node is to equivocate.
    pub fn equivocator(&self, suite: Suite, key: &SecretKey) -> Option<Equivocator> {
        self.equivocate
            .then(|| Equivocator(suite.signer(key.clone())))
    }

    /// A forger of the certificates of the blocks this node serves, when it is to forge them.
    pub fn catch_up_forger(&self, suite: Suite) -> Option<CatchUpForger> {
        self.forge_catch_up.then(|| CatchUpForger::new(suite))
    }
}

/// The three ways [`CatchUpForger`] breaks a certificate, in the order it uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// A third of the signatures (rounded down) kept: never more than two thirds of the power
    /// of a set of equal validators.
    InsufficientPower,
    /// The signatures replaced by one of a key that is no validator, over the right bytes.
    SignerNotValidator,
    /// The validators' real signatures of a neighbouring block's certificate.
    SignaturesOfAnotherBlock,
}

impl Forgery {
    const CYCLE: [Forgery; 3] = [
        Forgery::InsufficientPower,
        Forgery::SignerNotValidator,
        Forgery::SignaturesOfAnotherBlock,
    ];
}

/// Replaces the certificates of the blocks a node serves in catch-up with forgeries: each
/// answer with the next [`Forgery`] in turn.
#[derive(Debug)]
pub struct CatchUpForger {
    outsider: SuiteSigner,
    answers: AtomicU64,
}

impl CatchUpForger {
    fn new(suite: Suite) -> Self {
        let seed = suite.tagged("hutong/testing/forged-certificate/v1", b"").0;
        Self {
            outsider: suite.signer(SecretKey::from_seed(seed)),
            answers: AtomicU64::new(0),
        }
    }

    /// Forges the certificate of every block of one answer, all the same way, and says which
    /// way. `certificate_of` gives the real certificate at a height, for
    /// [`Forgery::SignaturesOfAnotherBlock`].
    pub fn forge(
        &self,
        blocks: &mut [Block],
        certificate_of: impl Fn(u64) -> Option<CommitCertificate>,
    ) -> Forgery {
        let answer = self.answers.fetch_add(1, Ordering::Relaxed);
        let forgery = Forgery::CYCLE[(answer % Forgery::CYCLE.len() as u64) as usize];
        for block in blocks {
            let certificate = &mut block.certificate;
            match forgery {
                Forgery::InsufficientPower => {
                    let kept = certificate.signatures.len() / 3;
                    certificate.signatures.truncate(kept);
                }
                Forgery::SignerNotValidator => {
                    let signature = self
                        .outsider
                        .sign(&certificate.sign_bytes(&block.header.chain_id));
                    certificate.signatures = vec![CommitSignature {
                        validator: self.outsider.id(),
                        signature,
                    }];
                }
                Forgery::SignaturesOfAnotherBlock => {
                    let height = certificate.height;
                    let neighbour = height
                        .checked_sub(1)
                        .filter(|previous| *previous >= 1)
                        .and_then(&certificate_of)
                        .or_else(|| certificate_of(height + 1));
                    if let Some(neighbour) = neighbour {
                        certificate.signatures = neighbour.signatures;
                    }
                }
            }
        }
        forgery
    }
}

/// Signs, for every vote the node casts, a second vote of the same slot with another value.
#[derive(Debug)]
pub struct Equivocator(SuiteSigner);

impl Equivocator {
    /// The conflicting twin of `vote`: nil for a value, a made-up value for nil.
    pub fn twin(&self, vote: &SignedVote<[u8; 32]>, chain_id: &str) -> SignedVote<[u8; 32]> {
        let mut twin = vote.vote.clone();
        twin.value = match twin.value {
            Some(_) => None,
            None => Some(
                self.0
                    .suite()
                    .tagged("hutong/testing/equivocation/v1", &twin.height.to_be_bytes())
                    .0,
            ),
        };
        let signature: Signature = self.0.sign(&twin.sign_bytes(chain_id));
        SignedVote {
            vote: twin,
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_off_unless_enabled() {
        let config = TestingConfig {
            enabled: false,
            partition_file: Some("cut".into()),
            equivocate: true,
            withhold_transactions: true,
            forge_catch_up: true,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cut"), b"").unwrap();
        let faults = Faults::from_config(&config, dir.path()).unwrap();
        assert!(!faults.partitioned());
        assert!(!faults.withholds_transactions());
        assert!(
            faults
                .catch_up_forger(hutong_core::testkit::SUITE)
                .is_none()
        );
        assert!(
            faults
                .equivocator(
                    hutong_core::testkit::SUITE,
                    &hutong_core::testkit::secret("node")
                )
                .is_none()
        );
    }

    #[test]
    fn enabled_switches_need_the_environment_variable() {
        // The test process does not set the variable (only the end-to-end harness sets it,
        // for the node processes it starts).
        if std::env::var(ALLOW_ENV).is_ok() {
            return;
        }
        let config = TestingConfig {
            enabled: true,
            partition_file: None,
            equivocate: true,
            withhold_transactions: false,
            forge_catch_up: false,
        };
        let error = Faults::from_config(&config, Path::new(".")).unwrap_err();
        assert!(error.contains(ALLOW_ENV), "{error}");
    }

    #[test]
    fn the_twin_vote_conflicts_and_is_validly_signed() {
        use hutong_consensus::{SignatureVerifier, ValidatorId, Vote, VoteType};
        use hutong_core::testkit::SUITE;
        let key = hutong_core::testkit::secret("node");
        let signer = SUITE.signer(key.clone());
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height: 3,
            round: 1,
            value: Some([9u8; 32]),
            validator: ValidatorId(key.public_key().0),
        };
        let signed = SignedVote {
            signature: signer.sign(&vote.sign_bytes("c1")),
            vote,
        };
        let twin = Equivocator(SUITE.signer(key)).twin(&signed, "c1");
        assert_eq!(twin.vote.value, None);
        assert_eq!(
            (twin.vote.height, twin.vote.round),
            (signed.vote.height, signed.vote.round)
        );
        assert!(SignatureVerifier::verify(
            &SUITE,
            &twin.vote.validator,
            &twin.vote.sign_bytes("c1"),
            &twin.signature
        ));
        let nil_twin =
            Equivocator(SUITE.signer(hutong_core::testkit::secret("node"))).twin(&twin, "c1");
        assert!(nil_twin.vote.value.is_some());
    }
}

#[cfg(test)]
mod forgery_tests {
    use super::*;
    use hutong_consensus::CertificateError;
    use hutong_core::block::{BlockCertificateError, BlockHeader, verify_block_certificate};
    use hutong_core::hash::Hash32;
    use hutong_core::records::NodeRegistry;
    use hutong_core::testkit::Fixture;

    fn block(fixture: &Fixture, height: u64) -> Block {
        let header = BlockHeader {
            protocol_version: hutong_core::block::PROTOCOL_VERSION,
            chain_id: fixture.genesis.chain_id.clone(),
            height,
            time: hutong_core::testkit::GENESIS_TIME + height,
            prev_hash: Hash32([height as u8; 32]),
            tx_root: Hash32([0; 32]),
            log_size: 0,
            log_root: Hash32([0; 32]),
            state_root: Hash32([0; 32]),
            validators_hash: Hash32([0; 32]),
            proposer: fixture.node_keys[0].public_key(),
        };
        Block {
            certificate: fixture.certify(&header),
            header,
            transactions: Vec::new(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn each_forgery_in_turn_is_refused_by_the_certificate_check() {
        let fixture = Fixture::new();
        let suite = fixture.suite();
        let mut nodes = fixture.genesis.nodes.clone();
        nodes.sort_by_key(|node| node.key);
        let registry = NodeRegistry {
            nodes,
            pending: Vec::new(),
        };
        let genuine: Vec<Block> = (1..=3).map(|height| block(&fixture, height)).collect();
        for block in &genuine {
            verify_block_certificate(suite, &block.header, &block.certificate, &registry)
                .expect("the genuine certificate verifies");
        }
        let certificate_of = |height: u64| {
            genuine
                .iter()
                .find(|block| block.header.height == height)
                .map(|block| block.certificate.clone())
        };
        let forger = CatchUpForger::new(suite);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut answer = genuine[1..].to_vec();
            let forgery = forger.forge(&mut answer, certificate_of);
            seen.push(forgery);
            for block in &answer {
                let error =
                    verify_block_certificate(suite, &block.header, &block.certificate, &registry)
                        .expect_err("a forged certificate is refused");
                let BlockCertificateError::Certificate(error) = error else {
                    panic!("{forgery:?} refused for the wrong reason: {error}");
                };
                match forgery {
                    Forgery::InsufficientPower => assert!(
                        matches!(error, CertificateError::InsufficientPower { .. }),
                        "{error}"
                    ),
                    Forgery::SignerNotValidator => assert!(
                        matches!(error, CertificateError::UnknownValidator { .. }),
                        "{error}"
                    ),
                    Forgery::SignaturesOfAnotherBlock => assert!(
                        matches!(error, CertificateError::BadSignature { .. }),
                        "{error}"
                    ),
                }
            }
        }
        assert_eq!(
            seen,
            [
                Forgery::InsufficientPower,
                Forgery::SignerNotValidator,
                Forgery::SignaturesOfAnotherBlock,
                Forgery::InsufficientPower
            ]
        );
    }
}
