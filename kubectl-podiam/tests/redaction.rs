//! Tokens and credentials never reach output or logs, at any verbosity: every command runs at
//! -vvv against the emulators and nothing token- or secret-shaped may appear.

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use regex::Regex;

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws")
}

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what}: a secret value leaked");
    }
    let jwt = Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}").unwrap();
    assert!(!jwt.is_match(text), "{what}: a JWT-shaped string leaked");
    let key = Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b").unwrap();
    assert!(
        !key.is_match(text),
        "{what}: an access-key-id-shaped string leaked"
    );
    let secret = Regex::new(r"[A-Za-z0-9+=_-]{40,}").unwrap();
    assert!(
        !secret.is_match(text),
        "{what}: a secret-shaped string leaked: {:?}",
        secret.find(text).map(|m| m.as_str().len())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_key_in_any_output_at_highest_verbosity() {
    let emu = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let (admin_key, admin_secret) = emu.admin_credentials();
    let good = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let mut wrong = TokenSpec::new("other", "s3-reader");
    wrong.wrong_key = true;
    let bad = emu.mint_token(&wrong).unwrap();
    let payloads: Vec<String> = [&good, &bad]
        .iter()
        .map(|t| t.split('.').nth(1).unwrap().to_string())
        .collect();

    let static_keys = tempfile::tempdir().unwrap();
    let static_file = static_keys.path().join("static.yaml");
    std::fs::write(
        &static_file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n    - name: app\n      image: x\n      env:\n        - {name: AWS_ACCESS_KEY_ID, value: AKIAIOSFODNN7EXAMPLE}\n        - {name: AWS_SECRET_ACCESS_KEY, value: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYzz}\n",
    )
    .unwrap();

    let runs: Vec<(Vec<String>, Option<String>)> = vec![
        (
            vec![
                "verify",
                "-f",
                "EX",
                "--token-file",
                "-",
                "--can",
                "s3:ListBucket=my-bucket",
                "--cannot",
                "s3:PutObject=my-bucket/x",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            Some(good.clone()),
        ),
        (
            vec!["verify", "-f", "EX", "--token-file", "-"]
                .into_iter()
                .map(String::from)
                .collect(),
            Some(bad.clone()),
        ),
        (
            vec!["verify", "-f", "EX", "-o", "json", "--token-file", "-"]
                .into_iter()
                .map(String::from)
                .collect(),
            Some(good.clone()),
        ),
        (
            vec!["verify", "-f", "EX", "-o", "yaml", "--token-file", "-"]
                .into_iter()
                .map(String::from)
                .collect(),
            Some(bad.clone()),
        ),
        (
            vec!["verify", "-f", "EX", "-o", "junit", "--token-file", "-"]
                .into_iter()
                .map(String::from)
                .collect(),
            Some(bad.clone()),
        ),
        (
            vec![
                "verify".to_string(),
                "-f".into(),
                static_file.display().to_string(),
                "-o".into(),
                "json".into(),
            ],
            None,
        ),
        (
            vec!["whoami", "s3-pod", "--request-timeout", "2s"]
                .into_iter()
                .map(String::from)
                .collect(),
            None,
        ),
        (
            vec!["verify", "s3-pod", "--request-timeout", "2s"]
                .into_iter()
                .map(String::from)
                .collect(),
            None,
        ),
    ];
    for (args, stdin) in runs {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| {
                if a == "EX" {
                    examples().display().to_string()
                } else {
                    a
                }
            })
            .collect();
        let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
        cmd.env("AWS_ENDPOINT_URL", emu.gate_url())
            .env("AWS_ACCESS_KEY_ID", &admin_key)
            .env("AWS_SECRET_ACCESS_KEY", &admin_secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env("RUST_LOG", "trace")
            .arg("-vvv")
            .args(&args);
        if let Some(token) = stdin {
            cmd.write_stdin(token);
        }
        let out = cmd.output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "{} exited {:?}: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut secrets: Vec<&str> = vec![
            &good,
            &bad,
            &admin_secret,
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYzz",
            "AKIAIOSFODNN7EXAMPLE",
        ];
        secrets.extend(payloads.iter().map(String::as_str));
        assert_clean(&args.join(" "), &text, &secrets);
        // The runs really ran: each printed a report or an error.
        assert!(
            !text.trim().is_empty(),
            "{} printed nothing",
            args.join(" ")
        );
    }
}
