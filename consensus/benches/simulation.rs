//! Decisions per second of a 4-validator simulation with no faults: the consensus layer's
//! own overhead (state machines, vote counting, the simulated network's event queue), with
//! signatures excluded (a signer and verifier that do nothing) and included (ed25519).
//!
//! Run: `cargo bench -p hutong-consensus --bench simulation`. Criterion reports the
//! throughput in decisions (heights decided by the whole network) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hutong_consensus::sim::{Keys, Scenario, Simulation};
use hutong_consensus::{Signature, SignatureVerifier, Signer, ValidatorId};

const HEIGHTS_PER_RUN: u64 = 20;

/// Signatures excluded: every signature is zeros and every signature verifies.
#[derive(Clone, Copy)]
struct NoSignatures;

#[derive(Clone, Copy)]
struct NoSigner(ValidatorId);

impl Signer for NoSigner {
    fn id(&self) -> ValidatorId {
        self.0
    }
    fn sign(&self, _message: &[u8]) -> Signature {
        Signature([0; 64])
    }
}

#[derive(Clone, Copy)]
struct AcceptEverything;

impl SignatureVerifier for AcceptEverything {
    fn verify(&self, _id: &ValidatorId, _message: &[u8], _signature: &Signature) -> bool {
        true
    }
}

impl Keys for NoSignatures {
    type Signer = NoSigner;
    type Verifier = AcceptEverything;
    fn signer(&self, index: usize) -> NoSigner {
        NoSigner(ValidatorId([index as u8 + 1; 32]))
    }
    fn verifier(&self) -> AcceptEverything {
        AcceptEverything
    }
}

/// Signatures included: ed25519 as the node uses it.
#[derive(Clone, Copy)]
struct Ed25519Keys;

#[derive(Clone)]
struct Ed25519Signer(SigningKey);

impl Signer for Ed25519Signer {
    fn id(&self) -> ValidatorId {
        ValidatorId(self.0.verifying_key().to_bytes())
    }
    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

#[derive(Clone, Copy)]
struct Ed25519Verifier;

impl SignatureVerifier for Ed25519Verifier {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
        VerifyingKey::from_bytes(&id.0).is_ok_and(|key| {
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                .is_ok()
        })
    }
}

impl Keys for Ed25519Keys {
    type Signer = Ed25519Signer;
    type Verifier = Ed25519Verifier;
    fn signer(&self, index: usize) -> Ed25519Signer {
        Ed25519Signer(SigningKey::from_bytes(&[index as u8 + 1; 32]))
    }
    fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier
    }
}

fn scenario() -> Scenario {
    let mut scenario = Scenario::named("healthy-4").unwrap();
    scenario.heights = HEIGHTS_PER_RUN;
    scenario
}

fn run<K: Keys>(keys: K, seed: u64) {
    let report = Simulation::new(scenario(), seed, keys)
        .unwrap()
        .run()
        .unwrap();
    assert!(report.heights_decided >= HEIGHTS_PER_RUN);
}

fn decisions_per_second(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("4 validators, no faults");
    group.throughput(Throughput::Elements(HEIGHTS_PER_RUN));
    // One iteration is a whole 20-height run; 20 samples keep the ed25519 case short.
    group.sample_size(20);
    let mut seed = 0;
    group.bench_function("signatures excluded", |bencher| {
        bencher.iter(|| {
            seed += 1;
            run(NoSignatures, seed);
        })
    });
    group.bench_function("ed25519 signatures", |bencher| {
        bencher.iter(|| {
            seed += 1;
            run(Ed25519Keys, seed);
        })
    });
    group.finish();
}

criterion_group!(benches, decisions_per_second);
criterion_main!(benches);
