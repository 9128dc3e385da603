//! The runner every target shares: the seed and case-count pattern of `trust_differential.rs`,
//! and generators of hostile text.

use std::time::{Duration, Instant};

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
        // Shrinking a slow parser's input can take minutes; the first failure is kept.
        max_shrink_iters: 256,
        ..defaults
    })
}

/// Runs `f` and fails the case if it took longer than `bound` (a parser that loops or goes
/// quadratic on hostile input).
pub fn within<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    prop_assert!(took <= bound, "{what} took {took:?} (bound {bound:?})");
    Ok(out)
}

/// Text a hostile writer would send: printable words, YAML/JSON punctuation, control bytes,
/// multi-byte characters, and long runs.
pub fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9_ .:/=-]{0,12}",
        2 => prop::sample::select(vec![
            "\n", "\r\n", "---\n", "- ", ": ", "{", "}", "[", "]", "\"", "'", "&a ", "*a", "!!",
            "!<tag>", "|\n", ">-\n", "#", "\t", "\0", "\u{feff}", "é", "\u{10ffff}", "%YAML 1.2\n",
            "<<: *a\n", "0x1F", "0600", "~", "null", "true", ".inf", "\\u0000",
        ])
        .prop_map(str::to_string),
        1 => (prop::sample::select(vec!["a", "[", "{", "- ", "x: ", "\"", "\n"]), 1usize..5000)
            .prop_map(|(s, n)| s.repeat(n)),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Raw bytes, often not UTF-8.
pub fn raw_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}
