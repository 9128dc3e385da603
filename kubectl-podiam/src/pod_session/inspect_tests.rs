//! The inspect requests run by the host's `sh`, in a directory laid out as an image.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::pod_session::{PodSession, script};

const WITHIN: Duration = Duration::from_secs(10);

/// The session script in `cwd`, with a PATH of the host's `cat`, `env`, `head` and `dd`.
async fn session_in(cwd: &Path) -> (PodSession, tempfile::TempDir) {
    let bin = tempfile::tempdir().unwrap();
    for tool in ["cat", "env", "head", "dd", "sh"] {
        let path = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is missing on this host"));
        std::os::unix::fs::symlink(path, bin.path().join(tool)).unwrap();
    }
    let boundary = crate::env_probe::boundary();
    let full = script::full_script();
    let argv = script::argv(&full, &boundary, script::CLIENTS, &[]);
    let mut child = tokio::process::Command::new("sh")
        .args(&argv[1..])
        .env_clear()
        .env("PATH", bin.path())
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sh");
    let stdin = Box::new(child.stdin.take().unwrap());
    let stdout = Box::new(child.stdout.take().unwrap());
    let stderr = Box::new(child.stderr.take().unwrap());
    let (_, session) = PodSession::start(
        stdin,
        stdout,
        stderr,
        boundary,
        Box::new(Mutex::new(child)),
        WITHIN,
    )
    .await
    .expect("session starts");
    (session, bin)
}

fn write(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[tokio::test]
async fn the_listing_finds_sdks_in_the_working_directory() {
    let app = tempfile::tempdir().unwrap();
    let root = app.path();
    std::fs::create_dir_all(root.join("botocore-1.12.100.dist-info")).unwrap();
    std::fs::create_dir_all(root.join("boto3-1.9.100.dist-info")).unwrap();
    std::fs::create_dir_all(root.join("requests-2.31.0.dist-info")).unwrap();
    write(
        root,
        "node_modules/aws-sdk/package.json",
        r#"{"name":"aws-sdk","version":"2.500.0"}"#,
    );
    write(
        root,
        "node_modules/@aws-sdk/client-s3/package.json",
        "{\n  \"name\": \"@aws-sdk/client-s3\",\n  \"version\": \"3.450.0\"\n}\n",
    );
    write(
        root,
        "node_modules/left-pad/package.json",
        r#"{"name":"left-pad","version":"1.0.0"}"#,
    );
    write(root, "lib/sts-2.21.29.jar", "");
    write(root, "lib/guava-33.0.jar", "");
    let (session, _bin) = session_in(root).await;
    let entries = session.sdk_listing(WITHIN).await.expect("listing");
    let at = |p: &str| root.join(p).to_string_lossy().into_owned();
    let paths: Vec<(&str, String)> = entries
        .iter()
        .map(|e| (e.kind.as_str(), e.path.clone()))
        .collect();
    assert!(
        paths.contains(&("py", at("botocore-1.12.100.dist-info"))),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("py", at("boto3-1.9.100.dist-info"))),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("jar", at("lib/sts-2.21.29.jar"))),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|(_, p)| p.contains("requests") || p.contains("left-pad") || p.contains("guava"))
    );
    let s3 = entries
        .iter()
        .find(|e| e.path == at("node_modules/@aws-sdk/client-s3/package.json"))
        .expect("client-s3 listed");
    assert!(String::from_utf8_lossy(s3.content.as_deref().unwrap()).contains("\"3.450.0\""));
    let v2 = entries
        .iter()
        .find(|e| e.path == at("node_modules/aws-sdk/package.json"))
        .expect("aws-sdk listed");
    assert_eq!(
        v2.content.as_deref(),
        Some(&br#"{"name":"aws-sdk","version":"2.500.0"}"#[..])
    );
    // The session still serves requests after the listing.
    let again = session.sdk_listing(WITHIN).await.expect("second listing");
    assert_eq!(again, entries);
}

#[tokio::test]
async fn bytes_are_read_by_block_and_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bin");
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let (session, _bin) = session_in(dir.path()).await;
    let path = file.to_string_lossy().into_owned();
    let read = session
        .inspect(
            &Inspect::Bytes {
                path: path.clone(),
                skip: 1,
                count: 1,
            },
            WITHIN,
        )
        .await
        .expect("bytes");
    assert_eq!(read, content[4096..8192]);
    let tail = session
        .inspect(
            &Inspect::Bytes {
                path,
                skip: 2,
                count: 5,
            },
            WITHIN,
        )
        .await
        .expect("tail");
    assert_eq!(tail, content[8192..]);
    let missing = session
        .inspect(
            &Inspect::Bytes {
                path: "/nonexistent/exe".into(),
                skip: 0,
                count: 1,
            },
            WITHIN,
        )
        .await;
    assert!(
        matches!(missing, Err(InspectError::Failed(_))),
        "{missing:?}"
    );
    let bad = session
        .inspect(
            &Inspect::Bytes {
                path: "a\u{1f}b".into(),
                skip: 0,
                count: 1,
            },
            WITHIN,
        )
        .await;
    assert_eq!(bad, Err(InspectError::BadPath("a\u{1f}b".into())));
}

#[test]
fn a_cut_package_json_ends_the_listing() {
    let b = "podiam-x";
    let out = format!(
        "py /a/boto3-1.0.dist-info\nnode /n/package.json\n{{\"name\"\n{b} endfile\njar /j/sts-2.1.jar\nnode /m/package.json\n{{\"na"
    );
    let entries = parse_listing(out.as_bytes(), b);
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[1].content.as_deref(), Some(&b"{\"name\""[..]));
    assert_eq!(entries[2].kind, "jar");
}
