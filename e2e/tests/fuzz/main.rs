//! Generator-driven fuzzing of the harness's parsers of outside input (issue 13 item 1):
//! scenario files, and the request parsers of the emulators that run in-process (GCP: STS,
//! metadata server paths, IAM Credentials; Azure: Entra's token form, discovery paths).
//! Properties: no panic (a handler's panic drops the connection: every request must get an
//! HTTP answer), an answer within the request timeout, bad input answered 4xx, never 5xx.
//!
//! Deterministic in CI (fixed seed, fixed cases); `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED=random` for long runs (docs/fuzzing.md, `scripts/fuzz`).

mod aws;
mod emulators;
mod scenario;
mod support;
