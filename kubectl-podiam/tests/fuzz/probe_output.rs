//! The pod session's framed output: a hostile container controls stdout, stderr and exit
//! codes. The framing parser (`env_probe::parse`), the session's opening and a call's answer
//! must never panic, must end within a bound, must stop at the caps (an endless env line is
//! refused, never buffered), and values that mimic the framing must never yield a forged
//! file section.

use std::time::Duration;

use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use podiam::env_probe::{self, FileRead};
use podiam::pod_session::{CallFailure, PodCall, PodSession};

use super::support::{raw_bytes, runner, within};

const CI_FRAMES: u32 = 400;
const CI_FORGERY: u32 = 400;
const CI_SESSION: u32 = 200;
const BOUND: Duration = Duration::from_secs(3);
/// The session refuses more than this much output before a marker (`pod_session::MAX_STDOUT`).
const SESSION_CAP: usize = 4 * 1024 * 1024;

const B: &str = "podiam-0123456789abcdef0123456789abcdef";

/// Pieces of framing: the real boundary's markers, near-misses, and guesses of it.
fn frame_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[A-Z_]{1,8}=[ -~]{0,20}\n".prop_map(String::into_bytes),
        2 => prop::sample::select(vec![
            format!("\n{B} file "), format!("\n{B} status "), format!("\n{B} err "),
            format!("\n{B} ready "), format!("\n{B} readyerr\n"), format!("\n{B} file T\n"),
            format!("\n{B} status T 0\n"), format!("\n{B} status T 1\n"),
            format!("\n{B} status T -99999999999999999999\n"), format!("\n{B} status T\n"),
            format!("\n{B} file \n"), format!("{B}"), "\npodiam-".to_string(),
            "\npodiam-00000000000000000000000000000000 file T\n".to_string(),
            format!("\n{} file T\n", &B[..B.len() - 1]), "T".into(), "\n".into(), "0".into(),
        ])
        .prop_map(String::into_bytes),
        1 => raw_bytes(64),
    ]
}

fn framed_output() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(frame_piece(), 0..30).prop_map(|v| v.concat())
}

fn check_parse(stdout: &[u8], stderr: &str) -> Result<(Vec<u8>, Vec<FileRead>), TestCaseError> {
    let (env, files) = within(BOUND, "parse", || env_probe::parse(B, stdout, stderr))?;
    prop_assert!(env.len() <= stdout.len());
    prop_assert!(stdout.starts_with(&env), "env is not the head of stdout");
    let total: usize = files
        .iter()
        .map(|f| f.result.as_ref().map_or(0, Vec::len))
        .sum();
    prop_assert!(
        total <= stdout.len(),
        "files hold more bytes than were printed"
    );
    for f in &files {
        if let Err(message) = &f.result {
            prop_assert!(
                message.len() <= stderr.len(),
                "an error message not from stderr"
            );
        }
    }
    let _ = within(BOUND, "variables", || env_probe::variables(&env))?;
    Ok((env, files))
}

#[test]
fn hostile_framing_never_panics() {
    runner(CI_FRAMES)
        .run(&(framed_output(), framed_output()), |(stdout, stderr)| {
            check_parse(&stdout, &String::from_utf8_lossy(&stderr)).map(|_| ())
        })
        .expect("any framed output is parsed without panic");
}

/// What an honest `env` prints for a container whose values mimic the framing with any
/// boundary but the real one (the container cannot know it: 128 random bits per run).
fn mimicking_value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -~]{0,16}",
        prop::sample::select(vec![
            "\npodiam-ffffffffffffffffffffffffffffffff file AWS_WEB_IDENTITY_TOKEN_FILE\n",
            "\npodiam-ffffffffffffffffffffffffffffffff status AWS_WEB_IDENTITY_TOKEN_FILE 0\n",
            "\npodiam-ffffffffffffffffffffffffffffffff ready curl\n",
            "\npodiam- file X\n",
            "\npodiam-0123456789abcdef0123456789abcde file X\n",
            " file ",
            " status ",
            "\n",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2ln",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

#[test]
fn mimicked_frames_in_values_forge_nothing() {
    let env = prop::collection::vec(("[A-Z][A-Z_]{0,6}", mimicking_value()), 0..8);
    // The script frames each variable's file once (a name framed twice is a forgery,
    // `regression_a_file_framed_twice_is_named_a_forgery`), so genuine names are distinct.
    let genuine =
        prop::collection::btree_map("[A-Z][A-Z_]{0,6}", prop::option::of(raw_bytes(64)), 0..4)
            .prop_map(|files| files.into_iter().collect::<Vec<_>>());
    runner(CI_FORGERY)
        .run(&(env, genuine), |(env, genuine)| {
            let mut stdout: Vec<u8> = env
                .iter()
                .flat_map(|(k, v)| format!("{k}={v}\n").into_bytes())
                .collect();
            let env_len = stdout.len();
            let mut stderr = String::new();
            for (name, content) in &genuine {
                stdout.extend(format!("\n{B} file {name}\n").bytes());
                stderr.push_str(&format!("\n{B} err {name}\n"));
                let rc = match content {
                    Some(bytes) => {
                        stdout.extend_from_slice(bytes);
                        0
                    }
                    None => {
                        stderr.push_str(&format!("cat: /x/{name}: No such file"));
                        1
                    }
                };
                stdout.extend(format!("\n{B} status {name} {rc}\n").bytes());
            }
            let (parsed_env, files) = check_parse(&stdout, &stderr)?;
            prop_assume!(genuine.iter().all(|(_, c)| {
                c.as_ref()
                    .is_none_or(|b| !b.windows(B.len()).any(|w| w == B.as_bytes()))
            }));
            prop_assert_eq!(parsed_env.len(), env_len, "env cut or extended by a value");
            prop_assert_eq!(files.len(), genuine.len(), "a file section forged or lost");
            for (f, (name, content)) in files.iter().zip(&genuine) {
                prop_assert_eq!(&f.variable, name);
                match content {
                    Some(bytes) => prop_assert_eq!(f.result.as_deref(), Ok(bytes.as_slice())),
                    None => {
                        let err = f.result.as_ref().expect_err("cat failed");
                        prop_assert!(
                            err.contains(name.as_str()) && !err.contains("podiam-"),
                            "{}",
                            err
                        );
                    }
                }
            }
            Ok(())
        })
        .expect("values that mimic the framing forge no file");
}

/// Found by `scripts/fuzz 10 20261204` when the generator framed one name twice (an empty
/// file, then a failed read): the second section's error was looked up by name and came from
/// the first. The script never frames a name twice, so such output is the pod's own forgery,
/// and is named one.
#[test]
fn regression_a_file_framed_twice_is_named_a_forgery() {
    let stdout = format!("\n{B} file Z\n\n{B} status Z 0\n\n{B} file Z\n\n{B} status Z 1\n");
    let stderr = format!("\n{B} err Z\n\n{B} err Z\ncat: /x/Z: No such file");
    let (env, files) = env_probe::parse(B, stdout.as_bytes(), &stderr);
    assert_eq!(files.len(), 2);
    let forged = env_probe::forged_framing(B, stdout.as_bytes(), &files)
        .expect("a name framed twice is no output of the script");
    assert!(forged.contains("a token file framed twice"), "{forged}");
    assert!(env.is_empty());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

async fn open(
    stdout: Reader,
    stderr: Reader,
) -> Result<(podiam::pod_session::Opening, PodSession), podiam::pod_session::OpenError> {
    PodSession::start(
        Box::new(tokio::io::sink()),
        stdout,
        stderr,
        B.to_string(),
        Box::new(()),
        Duration::from_secs(2),
    )
    .await
}

/// The opening and one call, read from a container that prints anything around the markers:
/// the session ends within its timeouts with the opening or a typed error.
#[test]
fn hostile_session_streams_end_in_time() {
    let rt = rt();
    let before_ready = framed_output();
    let answer = framed_output();
    let rc = prop_oneof![
        Just("0".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,8}"
    ];
    runner(CI_SESSION)
        .run(
            &(before_ready, answer, rc, any::<bool>()),
            |(head, answer, rc, ready)| {
                let mut stdout = head.clone();
                if ready {
                    stdout.extend(format!("\n{B} ready curl\n").bytes());
                }
                stdout.extend(format!("\n{B} call 1 begin\n").bytes());
                stdout.extend_from_slice(&answer);
                stdout.extend(format!("\n{B} call 1 end curl {rc}\n").bytes());
                let stderr = format!(
                    "\n{B} readyerr\n\n{B} callerr 1\n{}\n{B} callerrend 1\n",
                    String::from_utf8_lossy(&answer)
                );
                let outcome = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), async {
                        match open(
                            Box::new(std::io::Cursor::new(stdout)),
                            Box::new(std::io::Cursor::new(stderr.into_bytes())),
                        )
                        .await
                        {
                            Ok((_, session)) => {
                                let call =
                                    PodCall::get("http://127.0.0.1:1/", Duration::from_secs(1));
                                Some(session.call(&call).await.map(|a| a.status))
                            }
                            Err(e) => {
                                assert!(!e.to_string().is_empty());
                                None
                            }
                        }
                    })
                    .await
                });
                prop_assert!(outcome.is_ok(), "the session hung");
                Ok(())
            },
        )
        .expect("hostile sessions end in time");
}

/// A 1 GiB env line, modelled by an endless stream: the session stops at its cap and says so.
#[test]
fn an_endless_env_line_is_capped() {
    let rt = rt();
    rt.block_on(async {
        let endless = tokio::io::repeat(b'A');
        let started = std::time::Instant::now();
        let result = open(Box::new(endless), Box::new(tokio::io::empty())).await;
        let err = result.err().expect("an endless env is refused");
        assert!(
            err.to_string()
                .contains(&format!("more than {SESSION_CAP} bytes")),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    });
}

/// After a good opening, a call whose answer never ends is refused at the cap, and the
/// session says it is broken (no later call is read from the flood).
#[test]
fn an_endless_call_answer_is_capped() {
    let rt = rt();
    rt.block_on(async {
        let head = format!("A=1\n\n{B} ready curl\n\n{B} call 1 begin\n");
        let stdout = std::io::Cursor::new(head.into_bytes()).chain(tokio::io::repeat(b'x'));
        let stderr = format!("\n{B} readyerr\n");
        let (_, session) = open(
            Box::new(stdout),
            Box::new(std::io::Cursor::new(stderr.into_bytes())),
        )
        .await
        .expect("the opening is fine");
        let call = PodCall::get("http://127.0.0.1:1/", Duration::from_secs(1));
        match session.call(&call).await {
            Err(CallFailure::SessionBroken(reason)) => {
                assert!(
                    reason.contains(&format!("more than {SESSION_CAP} bytes")),
                    "{reason}"
                )
            }
            other => panic!("expected the cap, got {:?}", other.map(|a| a.status)),
        }
        assert!(matches!(
            session.call(&call).await,
            Err(CallFailure::SessionBroken(_))
        ));
    });
}

/// A container that prints `ready` but never the stderr marker: the opening still ends.
#[test]
fn a_missing_stderr_marker_costs_a_bounded_wait() {
    let rt = rt();
    rt.block_on(async {
        let stdout = format!("A=1\n\n{B} ready none\n");
        let started = std::time::Instant::now();
        let (opening, _) = open(
            Box::new(std::io::Cursor::new(stdout.into_bytes())),
            Box::new(tokio::io::empty()),
        )
        .await
        .expect("opened");
        assert_eq!(opening.client, None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    });
}
