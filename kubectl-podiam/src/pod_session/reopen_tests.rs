//! An exec that ends under the session (the API server restarted, the connection dropped) is
//! opened again once and the call made on the new one; what the pod itself did wrong (forged
//! frames) never is, and a failed re-open is not waited on again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::inspect::Inspect;
use super::tests::{STS_ANSWER, canned_server, client_bin, spawn_script, sts_call, token_file};
use super::*;

/// A session of the script under `sh` with curl, whose re-open runs the script again (or
/// fails, when `reopen_fails`); returns it, the first shell's pid and the re-opens asked for.
async fn reopenable(reopen_fails: bool) -> (PodSession, u32, Arc<AtomicUsize>, tempfile::TempDir) {
    let bin = client_bin(&["curl"]);
    let boundary = crate::env_probe::boundary();
    let (streams, pid) = spawn_script(bin.path(), &[], &boundary, &[]);
    let (_opening, session) = PodSession::start(
        streams.stdin,
        streams.stdout,
        streams.stderr,
        boundary.clone(),
        streams.keepalive,
        Duration::from_secs(10),
    )
    .await
    .expect("session starts");
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let path = bin.path().to_path_buf();
    let session = session.with_reopen(Box::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
        let (path, boundary) = (path.clone(), boundary.clone());
        Box::pin(async move {
            if reopen_fails {
                return Err("pods \"web\" not found".to_string());
            }
            Ok(spawn_script(&path, &[], &boundary, &[]).0)
        })
    }));
    (session, pid, asked, bin)
}

/// Ends the shell the way a cut exec ends: at once, without a word.
fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

#[tokio::test]
async fn an_exec_ended_between_calls_is_opened_again_and_the_call_answered_from_the_pod() {
    let (port, seen) = canned_server(STS_ANSWER).await;
    let (_file, token_path) = token_file();
    let (session, pid, asked, _bin) = reopenable(false).await;
    assert_eq!(
        session
            .call(&sts_call(port, &token_path))
            .await
            .unwrap()
            .status,
        200
    );
    kill(pid);
    let answer = session.call(&sts_call(port, &token_path)).await;
    assert_eq!(answer.map(|a| a.status), Ok(200));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "opened again once");
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "both calls reached the endpoint"
    );
    // The new exec serves later calls as the first did.
    assert_eq!(
        session
            .call(&sts_call(port, &token_path))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    session.close().await;
}

#[tokio::test]
async fn an_inspection_meeting_an_ended_exec_opens_it_again_and_reads_the_file() {
    let (file, token_path) = token_file();
    let (session, pid, asked, _bin) = reopenable(false).await;
    kill(pid);
    let bytes = Inspect::Bytes {
        path: token_path,
        skip: 0,
        count: 1,
    };
    let read = session.inspect(&bytes, Duration::from_secs(10)).await;
    assert_eq!(read, Ok(std::fs::read(file.path()).unwrap()));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "opened again once");
    session.close().await;
}

#[tokio::test]
async fn a_failed_reopen_breaks_the_session_with_the_first_cause_and_is_not_tried_again() {
    let (port, seen) = canned_server(STS_ANSWER).await;
    let (_file, token_path) = token_file();
    let (session, pid, asked, _bin) = reopenable(true).await;
    kill(pid);
    let first = session.call(&sts_call(port, &token_path)).await;
    let Err(CallFailure::SessionBroken(why)) = first else {
        panic!("a cut exec that cannot be opened again breaks the session: {first:?}");
    };
    assert!(exec_ended(&why), "the exec's own end is the cause: {why}");
    let second = session.call(&sts_call(port, &token_path)).await;
    assert!(
        matches!(second, Err(CallFailure::SessionBroken(_))),
        "{second:?}"
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "a failed re-open is not waited on again"
    );
    assert!(seen.lock().unwrap().is_empty(), "no call left the pod");
}

#[test]
fn only_the_transport_ending_is_mended_by_opening_again() {
    assert!(exec_ended(EXEC_ENDED));
    assert!(exec_ended(&format!("{READING}: connection reset by peer")));
    assert!(exec_ended(&format!("{WRITING}: broken pipe")));
    // The pod's own doing: frames out of turn, a flood, silence.
    assert!(!exec_ended(FORGED_FRAMES));
    assert!(!exec_ended(TOO_MUCH));
    assert!(!exec_ended("no answer from the pod within 8s"));
}
