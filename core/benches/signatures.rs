//! Signature verification throughput: one signature alone, and batches of 64, 256 and 1024
//! (reported per signature), with every signature under its own key (the worst case) and
//! with 16 keys shared by the batch (many transactions from few authorities).
//!
//! `cargo bench -p hutong-core --bench signatures`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hutong_core::crypto::{
    PublicKey, SecretKey, Signature, TX_DOMAIN, signing_message, verify, verify_batch,
};

/// A signed transaction body is a few hundred bytes.
const PAYLOAD_BYTES: usize = 300;
const BATCH_SIZES: [usize; 3] = [64, 256, 1024];
const SHARED_KEY_COUNT: usize = 16;

struct Signed {
    public_key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
}

fn signed(count: usize, key_count: usize) -> Vec<Signed> {
    let keys: Vec<SecretKey> = (0..key_count)
        .map(|index| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
            SecretKey::from_seed(seed)
        })
        .collect();
    (0..count)
        .map(|index| {
            let key = &keys[index % key_count];
            let payload: Vec<u8> = (0..PAYLOAD_BYTES)
                .map(|byte| (byte + index) as u8)
                .collect();
            let message =
                signing_message(TX_DOMAIN, "hutong-bench", &payload).expect("chain id is short");
            Signed {
                public_key: key.public_key(),
                signature: key.sign(&message),
                message,
            }
        })
        .collect()
}

fn items(signed: &[Signed]) -> Vec<(&PublicKey, &[u8], &Signature)> {
    signed
        .iter()
        .map(|entry| {
            (
                &entry.public_key,
                entry.message.as_slice(),
                &entry.signature,
            )
        })
        .collect()
}

fn single(c: &mut Criterion) {
    let entry = signed(1, 1).remove(0);
    let mut group = c.benchmark_group("verify_single");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hutong_verify", |b| {
        b.iter(|| {
            verify(
                black_box(&entry.public_key),
                black_box(&entry.message),
                black_box(&entry.signature),
            )
        })
    });
    // ed25519-dalek's own strict check, for comparison; it too decodes the key each time.
    let signature = ed25519_dalek::Signature::from_bytes(&entry.signature.0);
    group.bench_function("dalek_verify_strict", |b| {
        b.iter(|| {
            ed25519_dalek::VerifyingKey::from_bytes(black_box(&entry.public_key.0))
                .and_then(|key| key.verify_strict(black_box(&entry.message), &signature))
        })
    });
    group.finish();
}

fn batches(c: &mut Criterion) {
    for (label, key_count) in [("distinct_keys", None), ("16_keys", Some(SHARED_KEY_COUNT))] {
        let mut group = c.benchmark_group(format!("verify_batch_{label}"));
        for size in BATCH_SIZES {
            let signed = signed(size, key_count.unwrap_or(size));
            let items = items(&signed);
            assert_eq!(verify_batch(&items), Ok(()));
            group.throughput(Throughput::Elements(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &items, |b, items| {
                b.iter(|| verify_batch(black_box(items)))
            });
        }
        group.finish();
    }
}

fn configured() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = configured();
    targets = single, batches
}
criterion_main!(benches);
