//! The runner every target shares (the seed and case-count pattern of the plugin's
//! `trust_differential.rs`), and hostile text.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// A target's case count: `PROPTEST_CASES` if set, else its CI count times
/// `PODIAM_FUZZ_SCALE` (default 1; `scripts/fuzz` sets it for long runs, docs/fuzzing.md).
pub fn cases(ci: u32) -> u32 {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    env("PROPTEST_CASES")
        .unwrap_or_else(|| ci.saturating_mul(env("PODIAM_FUZZ_SCALE").unwrap_or(1)))
}

/// A fixed seed, so CI tries the same inputs every run; `PROPTEST_RNG_SEED=random` (or a
/// number) draws another corpus.
pub fn runner(ci_cases: u32) -> TestRunner {
    let defaults = Config::default();
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(n) => n.parse().map(RngSeed::Fixed).unwrap_or(defaults.rng_seed),
        Err(_) => RngSeed::Fixed(0x706f_6469_616d),
    };
    TestRunner::new(Config {
        cases: cases(ci_cases),
        failure_persistence: None,
        rng_seed,
        max_shrink_iters: 256,
        ..defaults
    })
}

/// Text a hostile writer would send: words, punctuation of YAML, JSON, forms and URLs,
/// control and multi-byte characters, long runs.
pub fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9_ .:/=&%+-]{0,12}",
        2 => prop::sample::select(vec![
            "\n", "---\n", "- ", ": ", "{", "}", "[", "]", "\"", "'", "&a ", "*a", "!!", "|\n",
            "#", "\t", "\0", "é", "%", "%zz", "%00", "%ff", "&", "=", "==", "?", "/", "//", "..",
            "../", "%2e%2e/", "\\u0000", "null", "true", "-1", "1e999",
        ])
        .prop_map(str::to_string),
        1 => (prop::sample::select(vec!["a", "[", "{", "%", "&", "/"]), 1usize..3000)
            .prop_map(|(s, n)| s.repeat(n)),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}
