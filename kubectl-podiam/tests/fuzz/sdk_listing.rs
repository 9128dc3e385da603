//! The SDK listing a pod prints (`inspect::parse_listing`) and what is read from it: Python
//! distribution paths, node `package.json`, jar names, Go build info in a binary's data
//! segment (ELF headers with hostile offsets) and version strings. All from the container.

use std::time::Duration;

use proptest::prelude::*;

use podiam::pod_session::inspect::parse_listing;
use podiam::sdk_version::{go_buildinfo, java, node, python, scan, version};

use super::support::{hostile_text, raw_bytes, runner, within};

const CI_CASES: u32 = 300;
const BOUND: Duration = Duration::from_secs(2);
const B: &str = "podiam-0123456789abcdef0123456789abcdef";

fn listing() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "py /usr/lib/python3/site-packages/boto3-1.2.3.dist-info\n".to_string(),
            "py /x/botocore-.dist-info\n".into(), "py /x/azure_identity-1.x.egg-info\n".into(),
            "node /app/node_modules/@aws-sdk/client-sts/package.json\n{\"name\":\"@aws-sdk/client-sts\",\"version\":\"3.1.0\"}".into(),
            "node /app/node_modules/aws-sdk/package.json\n{\"version\":".into(),
            format!("\n{B} endfile\n"), "jar /app/aws-java-sdk-core-1.12.0.jar\n".into(),
            "jar /app/sts-2..jar\n".into(), "\n".into(), " ".into(), "node \n".into(),
        ]),
        "[ -~]{0,20}",
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..20).prop_map(|v| v.concat().into_bytes()),
        1 => raw_bytes(512),
    ]
}

#[test]
fn listings_and_versions() {
    runner(CI_CASES)
        .run(&(listing(), hostile_text()), |(out, text)| {
            let entries = within(BOUND, "listing", || parse_listing(&out, B))?;
            for e in &entries {
                prop_assert!(e.content.as_ref().is_none_or(|c| c.len() <= out.len()));
                let _ = within(BOUND, "scan", || scan::from_listing(e))?;
                let _ = python::distribution(&e.path);
                let _ = java::artifact(&e.path, &["aws-java-sdk-core", "sts", "sdk-core"]);
            }
            let _ = within(BOUND, "node", || node::package(text.as_bytes()))?;
            if let Some(v) = within(BOUND, "version", || version::parse(&text))? {
                prop_assert!(!v.is_empty());
            }
            let _ = version::compare(&text, "1.2.3");
            let _ = version::below(&text, &text);
            Ok(())
        })
        .expect("listings are read without panic");
}

/// An ELF head with random program headers: offsets and counts from the binary never wrap or
/// index out of range; build-info bytes with the magic and random lengths likewise.
#[test]
fn hostile_binaries() {
    let head = (
        any::<bool>(),
        any::<bool>(),
        raw_bytes(256),
        any::<u64>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(wide, little, mut rest, phoff, entsize, num)| {
            let mut h = b"\x7fELF".to_vec();
            h.push(if wide { 2 } else { 1 });
            h.push(if little { 1 } else { 2 });
            h.resize(0x40, 0);
            let put = |h: &mut Vec<u8>, at: usize, v: u64, len: usize| {
                for i in 0..len {
                    let byte = (v >> (8 * if little { i } else { len - 1 - i })) as u8;
                    h[at + i] = byte;
                }
            };
            if wide {
                put(&mut h, 0x20, phoff % 512, 8);
                put(&mut h, 0x36, u64::from(entsize % 80), 2);
                put(&mut h, 0x38, u64::from(num), 2);
            } else {
                put(&mut h, 0x1c, phoff % 512, 4);
                put(&mut h, 0x2a, u64::from(entsize % 80), 2);
                put(&mut h, 0x2c, u64::from(num), 2);
            }
            h.append(&mut rest);
            h
        });
    let magic = b"\xff Go buildinf:".to_vec();
    let data = (raw_bytes(64), raw_bytes(200))
        .prop_map(move |(pre, post)| [pre, magic.clone(), post].concat());
    runner(CI_CASES)
        .run(&(head, data), |(head, data)| {
            let _ = within(BOUND, "elf", || go_buildinfo::data_segment(&head))?;
            if let Some(info) = within(BOUND, "buildinfo", || go_buildinfo::parse(&data))? {
                prop_assert!(info.deps.len() <= data.len());
            }
            Ok(())
        })
        .expect("hostile binaries are read without panic");
}
