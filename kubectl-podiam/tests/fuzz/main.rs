//! Generator-driven fuzzing of every parser of the plugin that reads outside input (issue 13
//! item 1): `verify -f` documents, ServiceAccount tokens, the pod session's framed output (a
//! hostile container controls it), cloud error bodies, kubeconfig files, the Go-parse
//! reimplementations and the SDK listing. Properties: no panic, a bounded time per case,
//! bounded memory (inputs up to a few MB; caps proved on endless streams), typed errors that
//! name what failed, and no field forged by printing.
//!
//! Deterministic in CI: a fixed seed and a fixed number of cases per target (the same corpus
//! every run). Long runs: `PROPTEST_CASES=N` multiplies nothing but sets the cases of every
//! target, `PROPTEST_RNG_SEED=random` draws a new corpus (see docs/fuzzing.md, `scripts/fuzz`).

mod cloud_errors;
mod go_parse;
mod jwt;
mod kubeconfig;
mod manifest;
mod probe_output;
mod sdk_listing;
mod support;
