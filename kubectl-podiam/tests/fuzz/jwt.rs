//! ServiceAccount tokens (`token_claims::decode`) and Entra access tokens: garbage, truncated,
//! huge, wrong base64, nested and mistyped JSON claims. Always the typed error or claims,
//! never a panic; an error never quotes the token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use serde_json::Value;

use podiam::exchange::azure_entra::AccessTokenClaims;
use podiam::token_claims::{self, ClaimsError, MAX_TOKEN_BYTES};

use super::support::{raw_bytes, runner, within};

const CI_STRUCTURED: u32 = 400;
const CI_BYTES: u32 = 300;
const BOUND: Duration = Duration::from_secs(2);

fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z:./-]{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "name",
                    "uid",
                    "namespace",
                    "serviceaccount",
                    "pod",
                    "x"
                ]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A payload: the real claim names with values of any type, nested at random.
fn payload() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop::sample::select(vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "kubernetes.io",
            "appid",
            "azp",
            "oid",
            "tid",
        ]),
        claim_value(),
        0..8,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    StandardBase64,
    FlipByte(usize, u8),
    ExtraDots,
    Whitespace,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => Just(Damage::StandardBase64),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::FlipByte(i, b)),
        1 => Just(Damage::ExtraDots),
        1 => Just(Damage::Whitespace),
    ]
}

fn token(payload: &Value, damage: &Damage) -> Vec<u8> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
    let body = serde_json::to_vec(payload).unwrap();
    let encoded = match damage {
        Damage::StandardBase64 => STANDARD.encode(&body),
        _ => URL_SAFE_NO_PAD.encode(&body),
    };
    let mut t = format!("{header}.{encoded}.c2ln").into_bytes();
    match damage {
        Damage::Truncate(n) => t.truncate(n % (t.len() + 1)),
        Damage::FlipByte(i, b) => {
            let i = i % t.len();
            t[i] = *b;
        }
        Damage::ExtraDots => t.extend_from_slice(b".x.y"),
        Damage::Whitespace => {
            t.splice(0..0, b"\n \t".iter().copied());
            t.extend_from_slice(b"\r\n");
        }
        Damage::None | Damage::StandardBase64 => {}
    }
    t
}

fn check(token: &[u8]) -> Result<(), TestCaseError> {
    let decoded = within(BOUND, "decode", || token_claims::decode(token))?;
    if let Err(e) = &decoded {
        let shown = e.to_string();
        prop_assert!(
            shown.contains("token"),
            "the message names the token: {shown}"
        );
        let trimmed = token.trim_ascii();
        if trimmed.len() >= 12 {
            // The middle part is the payload: a message never quotes it.
            let quoted = String::from_utf8_lossy(trimmed);
            prop_assert!(
                !shown.contains(quoted.as_ref()),
                "the error quotes the token"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(token) {
        let entra = within(BOUND, "entra decode", || AccessTokenClaims::decode(text))?;
        if let Err(e) = entra {
            prop_assert!(e.contains("access token"), "{e}");
        }
    }
    Ok(())
}

#[test]
fn generated_claims_with_damage() {
    let decoded = std::cell::Cell::new(0u32);
    runner(CI_STRUCTURED)
        .run(&(payload(), damage()), |(payload, damage)| {
            let t = token(&payload, &damage);
            if token_claims::decode(&t).is_ok() {
                decoded.set(decoded.get() + 1);
            }
            check(&t)
        })
        .expect("every token decodes or is refused with ClaimsError");
    assert!(
        decoded.get() > 0,
        "no generated token decoded: the corpus tests only errors"
    );
}

#[test]
fn garbage_tokens() {
    let dotted = prop::collection::vec(
        prop_oneof!["[A-Za-z0-9_=+/-]{0,40}", Just(".".to_string())],
        0..12,
    )
    .prop_map(|v| v.concat().into_bytes());
    runner(CI_BYTES)
        .run(&prop_oneof![raw_bytes(512), dotted], |t| check(&t))
        .expect("garbage is refused with ClaimsError");
}

/// Huge tokens are refused by size before any decoding; the cap is what bounds memory.
#[test]
fn huge_tokens_are_refused_by_size() {
    for len in [MAX_TOKEN_BYTES + 1, 4 << 20] {
        let mut t = vec![b'a'; len];
        t[10] = b'.';
        t[20] = b'.';
        let started = std::time::Instant::now();
        assert_eq!(token_claims::decode(&t), Err(ClaimsError::TooLarge(len)));
        assert!(started.elapsed() < BOUND);
    }
    // Just under the cap: a payload of nested arrays is decoded or refused, quickly.
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let t = format!(
        "e30.{}.c2ln",
        URL_SAFE_NO_PAD.encode(format!("{{\"aud\":{nested}}}"))
    );
    assert!(t.len() < MAX_TOKEN_BYTES);
    let err = token_claims::decode(t.as_bytes()).expect_err("too deep to be claims");
    assert!(matches!(err, ClaimsError::Malformed(_)), "{err:?}");
}
