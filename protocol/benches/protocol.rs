//! Criterion benchmarks of the protocol's hot paths: sealing and opening an initial
//! transaction, its commitment, Merkle roots of 1k and 1M leaves, and proof verification.
//! Run: `cargo bench -p mediblock-protocol --bench protocol`. Figures: `docs/BENCHMARKS.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mediblock_protocol::ids::{
    AttrName, PatientId, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::merkle::{Keccak256Tree, TreeHasher, inclusion_proof, root};
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::value::{Attributes, Value};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn sample_ti(rng: &mut ChaCha20Rng) -> InitialTransaction {
    let name = |s: &str| AttrName::new(s).unwrap();
    let attributes: Attributes = [
        (name("heart_rate"), Value::Integer(72)),
        (name("systolic"), Value::Integer(128)),
        (name("temperature"), Value::Integer(366)),
        (name("triage"), Value::Enum("yellow".into())),
        (
            name("notes"),
            Value::Text("Pulse steady after rest; no distress.".into()),
        ),
    ]
    .into_iter()
    .collect();
    InitialTransaction {
        tid: TxId::for_ticket(1, rng),
        uid: UserId::new("dr.ada").unwrap(),
        pid: PatientId::random(rng),
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes,
        created_at: UnixMillis(1_795_996_800_000),
        salt: Salt::random(rng),
        prev: None,
    }
}

fn records(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let author = Keypair::generate(&mut rng);
    let relay = Keypair::generate(&mut rng);
    let ti = sample_ti(&mut rng);
    let relay_public = relay.public();
    let author_public = author.public();

    c.bench_function("ti/seal (sign + key agreement + encrypt)", |b| {
        b.iter(|| {
            let signed = black_box(ti.clone()).sign(&author);
            signed.seal(&author, &relay_public, &mut rng).unwrap()
        });
    });
    let sealed = ti
        .clone()
        .sign(&author)
        .seal(&author, &relay_public, &mut rng)
        .unwrap();
    c.bench_function("ti/open (key agreement + decrypt + verify)", |b| {
        b.iter(|| black_box(&sealed).open(&relay, &author_public).unwrap());
    });
    let signed = ti.sign(&author);
    c.bench_function("ti/commitment", |b| {
        b.iter(|| black_box(&signed).commitment())
    });
}

fn merkle(c: &mut Criterion) {
    let leaves: Vec<_> = (0u64..1_000_000)
        .map(|i| Keccak256Tree::hash_leaf(&i.to_be_bytes()))
        .collect();
    let mut group = c.benchmark_group("merkle/root");
    for n in [1_000usize, 1_000_000] {
        if n >= 1_000_000 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| root::<Keccak256Tree>(black_box(&leaves[..n])));
        });
    }
    group.finish();

    let tree = &leaves[..1_000_000];
    let r = root::<Keccak256Tree>(tree);
    let proof = inclusion_proof::<Keccak256Tree>(tree, 123_456).unwrap();
    c.bench_function("merkle/verify inclusion (1M leaves)", |b| {
        b.iter(|| {
            black_box(&proof)
                .verify::<Keccak256Tree>(&tree[123_456], &r)
                .unwrap();
        });
    });
}

criterion_group!(benches, records, merkle);
criterion_main!(benches);
