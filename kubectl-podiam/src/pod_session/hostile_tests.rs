//! A container controls what exec returns: the session stays bounded in time and memory and
//! tells visible forgeries apart. The script runs under the host's `sh`, wrapped the way a
//! hostile image would wrap it.

use std::time::{Duration, Instant};

use super::tests::{session, which};
use super::*;

/// Starts `program` (a hostile stand-in for `sh`) with the session's argv, as the exec would.
async fn start_with(
    program: &std::path::Path,
    env: &[(&str, &str)],
    file_vars: &[&str],
    timeout: Duration,
) -> Result<(Opening, PodSession), OpenError> {
    let boundary = crate::env_probe::boundary();
    let script = script::full_script();
    let argv = script::argv(&script, &boundary, script::CLIENTS, file_vars);
    let mut child = tokio::process::Command::new(program)
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the hostile shell starts");
    let stdin = Box::new(child.stdin.take().unwrap());
    let stdout = Box::new(child.stdout.take().unwrap());
    let stderr = Box::new(child.stderr.take().unwrap());
    PodSession::start(
        stdin,
        stdout,
        stderr,
        boundary,
        Box::new(Mutex::new(child)),
        timeout,
    )
    .await
}

/// A `sh` that prepends `prelude` (shell functions) to the session script, as an image whose
/// shell loads a profile defining `env` would.
fn wrapped_shell(dir: &std::path::Path, prelude: &str) -> std::path::PathBuf {
    let sh = which("sh").expect("sh");
    let path = dir.join("hostile-sh");
    std::fs::write(
        &path,
        format!(
            "#!{sh}\nscript=$2; shift 2\nexec {sh} -c '{prelude}\n'\"$script\" \"$@\"\n",
            sh = sh.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_huge_token_file_is_read_only_past_the_largest_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    // 8 MiB: twice the session's bound; the script reads one byte past a token's maximum.
    std::fs::write(&token, vec![b'A'; 8 * 1024 * 1024]).unwrap();
    let (opening, session, _bin) = session(&[], &[("T", token.to_str().unwrap())], &["T"]).await;
    assert_eq!(opening.forged, None);
    assert_eq!(opening.files.len(), 1);
    let read = opening.files[0].result.as_ref().expect("read");
    assert_eq!(read.len(), crate::token_claims::MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        crate::token_claims::decode(read),
        Err(crate::token_claims::ClaimsError::TooLarge(_))
    ));
    session.close().await;
}

#[tokio::test]
async fn an_endless_environment_stops_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let sh = wrapped_shell(
        dir.path(),
        "env() { while :; do echo AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; done; }",
    );
    let started = Instant::now();
    let result = start_with(&sh, &[], &[], Duration::from_secs(20)).await;
    assert!(
        matches!(result, Err(OpenError::TooLarge)),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_shell_that_never_answers_is_bounded_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sh = wrapped_shell(dir.path(), "exec sleep 1000");
    let started = Instant::now();
    let result = start_with(&sh, &[], &[], Duration::from_millis(800)).await;
    assert!(
        matches!(result, Err(OpenError::Timeout(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn frames_forged_by_a_wrapper_env_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "real.token.sig").unwrap();
    // `env` knows the boundary (the script set `b` from its argv): it prints a forged token
    // section and an early `ready`, so the script's own frames follow after it.
    let sh = wrapped_shell(
        dir.path(),
        r#"env() { printf "A=1\n\n%s file T\nforged.token.sig\n%s status T 0\n\n%s ready curl\n" "$b" "$b" "$b"; }"#,
    );
    let (opening, session) = start_with(
        &sh,
        &[("T", token.to_str().unwrap())],
        &["T"],
        Duration::from_secs(10),
    )
    .await
    .expect("the session opens");
    assert!(opening.forged.is_some(), "forgery not seen");
    // A call through it stops at the script's own frames, out of turn.
    let call = PodCall::get("http://127.0.0.1:9/".to_string(), Duration::from_secs(2));
    match session.call(&call).await {
        Err(CallFailure::SessionBroken(why)) => assert_eq!(why, FORGED_FRAMES),
        other => panic!("{other:?}"),
    }
}
