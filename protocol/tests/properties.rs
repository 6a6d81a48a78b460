//! Property tests: encode/decode round trips, one canonical encoding per value,
//! authenticated encryption that refuses any single-bit change, and values hashes that tell
//! any two value lists apart. Native only (proptest
//! seeds itself from the OS); the golden vectors cover the same code on wasm32.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mediblock_protocol::encoding::Canonical;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::generator::values_hash;
use mediblock_protocol::hash::keccak256;
use mediblock_protocol::ids::{
    AttrName, Commitment, PatientId, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::{Keypair, Purpose, SymmetricKey};
use mediblock_protocol::record::{InitialTransaction, SignedInitialTransaction};
use mediblock_protocol::value::{Attributes, Date, Value, format_fixed, parse_fixed};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?"
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        ".{0,40}".prop_map(Value::Text),
        "[a-z ]{1,12}".prop_map(Value::Enum),
        (-719_162i32..=2_932_896).prop_map(|d| Value::Date(Date::from_days(d).unwrap())),
        any::<bool>().prop_map(Value::Boolean),
    ]
}

fn ti() -> impl Strategy<Value = InitialTransaction> {
    (
        any::<[u8; 16]>(),
        slug(),
        any::<[u8; 16]>(),
        (slug(), 1u32..1000),
        proptest::collection::btree_map(slug(), value(), 0..8),
        any::<u64>(),
        any::<[u8; 32]>(),
        proptest::option::of(any::<[u8; 32]>()),
    )
        .prop_map(
            |(tid, uid, pid, (tpl, ver), attrs, at, salt, prev)| InitialTransaction {
                tid: TxId::from_bytes(tid),
                uid: UserId::new(uid).unwrap(),
                pid: PatientId::from_bytes(pid),
                template: TemplateRef {
                    id: tpl.parse().unwrap(),
                    version: TemplateVersion::new(ver).unwrap(),
                },
                attributes: attrs
                    .into_iter()
                    .map(|(k, v)| (AttrName::new(k).unwrap(), v))
                    .collect::<Attributes>(),
                created_at: UnixMillis(at),
                salt: Salt::from_bytes(salt),
                prev: prev.map(Commitment::from_bytes),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ti_round_trips_through_bytes_and_json(ti in ti()) {
        let bytes = ti.to_canonical_bytes();
        prop_assert_eq!(&InitialTransaction::from_canonical_bytes(&bytes).unwrap(), &ti);
        let json = serde_json::to_string(&ti).unwrap();
        prop_assert_eq!(&serde_json::from_str::<InitialTransaction>(&json).unwrap(), &ti);
    }

    /// Whatever bytes decode, re-encode to exactly themselves: one encoding per value.
    #[test]
    fn decodable_bytes_are_canonical(ti in ti(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = ti.to_canonical_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = InitialTransaction::from_canonical_bytes(&bytes) {
            prop_assert_eq!(decoded.to_canonical_bytes(), bytes);
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_refused(ti in ti(), cut in any::<prop::sample::Index>()) {
        let bytes = ti.to_canonical_bytes();
        let n = cut.index(bytes.len());
        prop_assert!(InitialTransaction::from_canonical_bytes(&bytes[..n]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(InitialTransaction::from_canonical_bytes(&longer).is_err());
    }

    #[test]
    fn signatures_cover_every_byte(ti in ti(), seed in any::<[u8; 32]>(), pos in any::<prop::sample::Index>()) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let author = Keypair::generate(&mut rng);
        let signed = ti.sign(&author);
        prop_assert!(signed.verify(&author.public()).is_ok());
        let mut bytes = signed.to_canonical_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 0x80;
        let refused = match SignedInitialTransaction::from_canonical_bytes(&bytes) {
            Err(_) => true,
            Ok(s) => s.verify(&author.public()).is_err() && s.commitment() != signed.commitment(),
        };
        prop_assert!(refused);
    }

    #[test]
    fn envelopes_open_only_unchanged(
        key in any::<[u8; 32]>(),
        ctx in proptest::collection::vec(any::<u8>(), 0..32),
        msg in proptest::collection::vec(any::<u8>(), 0..256),
        seed in any::<[u8; 32]>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = SymmetricKey::from_bytes(Purpose::RelayStore, &key);
        let mut rng = ChaCha20Rng::from_seed(seed);
        let env = Envelope::seal(&key, &ctx, &msg, &mut rng).unwrap();
        let bytes = env.to_canonical_bytes();
        let back = Envelope::from_canonical_bytes(&bytes).unwrap();
        let opened = back.open(&key, &ctx).unwrap();
        prop_assert_eq!(opened.as_slice(), msg.as_slice());
        let mut flipped = bytes.clone();
        let i = pos.index(flipped.len());
        flipped[i] ^= 1 << bit;
        let refused = Envelope::from_canonical_bytes(&flipped)
            .and_then(|e| e.open(&key, &ctx).map(|p| p.to_vec()))
            .is_err();
        prop_assert!(refused);
    }

    #[test]
    fn fixed_point_text_round_trips(mantissa in any::<i64>(), scale in 0u8..=9) {
        let text = format_fixed(mantissa, scale);
        prop_assert_eq!(parse_fixed(&text, scale).unwrap(), mantissa);
    }

    #[test]
    fn dates_round_trip(days in -719_162i32..=2_932_896) {
        let d = Date::from_days(days).unwrap();
        let text = d.to_string();
        prop_assert_eq!(text.parse::<Date>().unwrap(), d);
    }

    #[test]
    fn key_agreement_is_symmetric(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let x = Keypair::generate(&mut ChaCha20Rng::from_seed(a));
        let y = Keypair::generate(&mut ChaCha20Rng::from_seed(b));
        let kx = x.agree(&y.public(), Purpose::UserRelay).unwrap();
        let ky = y.agree(&x.public(), Purpose::UserRelay).unwrap();
        prop_assert_eq!(kx.id(), ky.id());
    }

    #[test]
    fn values_hash_is_keccak_of_the_big_endian_words(
        values in proptest::collection::vec(any::<i64>(), 0..17),
        at in any::<prop::sample::Index>(),
        delta in 1i64..,
    ) {
        let words: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        prop_assert_eq!(values_hash(&values), keccak256(&words));
        // Another value, one value more or one fewer: another hash.
        if !values.is_empty() {
            let mut other = values.clone();
            let i = at.index(values.len());
            other[i] = other[i].wrapping_add(delta);
            prop_assert_ne!(values_hash(&other), values_hash(&values));
            prop_assert_ne!(values_hash(&values[1..]), values_hash(&values));
        }
        let mut longer = values.clone();
        longer.push(0);
        prop_assert_ne!(values_hash(&longer), values_hash(&values));
    }
}
