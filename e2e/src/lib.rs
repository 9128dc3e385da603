//! podiam-e2e: the harness behind kubectl-podiam's contract and end-to-end tests.
//!
//! The part other crates' tests use is [`emulators::AwsEmulators`]: a strict AWS STS gate
//! in front of moto, with an HTTPS OIDC issuer whose tokens the gate validates like AWS does.

pub mod awscli_env;
pub mod bench;
pub mod bench_exec_floor;
pub mod bench_fleet;
pub mod bench_verify;
pub mod cloud_hosts;
pub mod cluster;
pub mod cpu_time;
pub mod demo;
pub mod docker_engine;
pub mod emulators;
pub mod https_server;
pub mod localstack_env;

pub mod kind_image;
pub mod manual_anchor;
pub mod prerequisites;
pub mod python_env;
pub mod runner;
pub mod sandbox;
pub mod scenario;
pub mod setup;
pub mod webhooks;
