//! The framing of the first phase of a pod session (`pod_session/script.rs`): `env`, then
//! `cat` of each file a mechanism will read, in one `sh -c` run as the container's user. An
//! exec is the most expensive call a fleet run makes (a streamed connection through the
//! apiserver, the kubelet, containerd and `runc exec`), so a pod costs one instead of several.
//!
//! Each file is framed `\n<b> file VAR\n<bytes>\n<b> status VAR <rc>\n` on stdout and
//! `\n<b> err VAR\n<msg>` on stderr, with a random boundary `b`, so the answer is the same as
//! separate `env` and `cat PATH` execs would give. Images without `sh` fall back to those.

use std::hash::{BuildHasher, Hasher};

/// A boundary no environment value or token will contain by chance (128 random bits).
pub fn boundary() -> String {
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    format!("podiam-{:016x}{:016x}", random(1), random(2))
}

/// A file read by the script: its bytes, or cat's error message when it exited non-zero.
pub struct FileRead {
    pub variable: String,
    pub result: Result<Vec<u8>, String>,
}

impl std::fmt::Debug for FileRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bytes are a token: never printed.
        f.debug_struct("FileRead")
            .field("variable", &self.variable)
            .field("read", &self.result.as_ref().map(|b| b.len()))
            .finish()
    }
}

/// Splits the script's output into the `env` text and the files read. A file whose section
/// is cut short (output capped, script killed) is left out: the caller reads it again.
pub fn parse(boundary: &str, stdout: &[u8], stderr: &str) -> (Vec<u8>, Vec<FileRead>) {
    let header = format!("\n{boundary} file ");
    let Some(first) = find(stdout, header.as_bytes(), 0) else {
        return (stdout.to_vec(), Vec::new());
    };
    let env = stdout[..first].to_vec();
    let mut files = Vec::new();
    let mut at = first;
    while let Some(start) = find(stdout, header.as_bytes(), at) {
        let name_start = start + header.len();
        let Some(name_end) = find(stdout, b"\n", name_start) else {
            break;
        };
        let variable = String::from_utf8_lossy(&stdout[name_start..name_end]).into_owned();
        let content_start = name_end + 1;
        let trailer = format!("\n{boundary} status {variable} ");
        let Some(content_end) = find(stdout, trailer.as_bytes(), content_start) else {
            break;
        };
        let rc_start = content_end + trailer.len();
        let rc_end = find(stdout, b"\n", rc_start).unwrap_or(stdout.len());
        let rc = String::from_utf8_lossy(&stdout[rc_start..rc_end]);
        let result = if rc.trim() == "0" {
            Ok(stdout[content_start..content_end].to_vec())
        } else {
            Err(error_of(boundary, stderr, &variable))
        };
        files.push(FileRead { variable, result });
        at = rc_end;
    }
    (env, files)
}

/// Why the opening's framing cannot be the script's own, if it cannot: the script prints each
/// file once, framed by exactly two boundary lines, so a boundary anywhere else, or a variable
/// framed twice, was printed by something the container put in its place (a wrapper `env` or
/// `cat`, a shell function) that read the boundary from the script's argv. Such output proves
/// the pod forges what exec returns; a consistent forgery is not detectable here, which is why
/// no pass rests on the pod's output alone.
pub fn forged_framing(boundary: &str, head: &[u8], files: &[FileRead]) -> Option<String> {
    let occurrences = count(head, boundary.as_bytes());
    let mut names: Vec<&str> = files.iter().map(|f| f.variable.as_str()).collect();
    names.sort_unstable();
    let distinct = names.windows(2).all(|w| w[0] != w[1]);
    if occurrences != 2 * files.len() || !distinct {
        return Some(format!(
            "the session's boundary appeared {occurrences} times where the script prints it {} times{}",
            2 * files.len(),
            if distinct {
                ""
            } else {
                ", a token file framed twice"
            }
        ));
    }
    None
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while let Some(found) = find(haystack, needle, at) {
        n += 1;
        at = found + needle.len();
    }
    n
}

/// The `NAME=value` lines of `env`'s output, in order. A value with a newline keeps its first
/// line only (the rest is not a `NAME=` line of its own unless it looks like one).
pub fn variables(env_text: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(env_text)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// cat's stderr for `variable`: the text after its marker, up to the next marker.
fn error_of(boundary: &str, stderr: &str, variable: &str) -> String {
    let marker = format!("\n{boundary} err {variable}\n");
    let Some(start) = stderr.find(&marker) else {
        return String::new();
    };
    let rest = &stderr[start + marker.len()..];
    let end = rest
        .find(&format!("\n{boundary} err "))
        .unwrap_or(rest.len());
    rest[..end].trim().to_string()
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the script with the host's sh, as the exec would in a container.
    fn run(env: &[(&str, &str)], vars: &[&str]) -> (Vec<u8>, Vec<FileRead>) {
        let b = boundary();
        let script = crate::pod_session::script::full_script();
        let argv = crate::pod_session::script::argv(&script, &b, "", vars);
        let out = std::process::Command::new("sh")
            .args(&argv[1..])
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("sh");
        assert!(out.status.success());
        parse(&b, &out.stdout, &String::from_utf8_lossy(&out.stderr))
    }

    #[test]
    fn reads_env_and_the_files_it_names_in_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        // No trailing newline, as a projected token; and one that contains newlines.
        std::fs::write(&token, "header.payload.sig").unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, "{\n  \"a\": 1\n}\n\n").unwrap();
        let (env, files) = run(
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
                ("OTHER_FILE", config.to_str().unwrap()),
                ("MISSING_FILE", "/nonexistent/token"),
                ("MULTI", "a\nb"),
            ],
            &[
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "UNSET_VAR",
                "MISSING_FILE",
                "OTHER_FILE",
            ],
        );
        let env = variables(&env);
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            get("AWS_WEB_IDENTITY_TOKEN_FILE"),
            token.to_str(),
            "{names:?}"
        );
        assert_eq!(get("MULTI"), Some("a"));
        assert!(names.iter().all(|n| !n.contains("podiam-")));
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[0].variable, "AWS_WEB_IDENTITY_TOKEN_FILE");
        assert_eq!(files[0].result.as_deref(), Ok(&b"header.payload.sig"[..]));
        assert_eq!(files[1].variable, "MISSING_FILE");
        let err = files[1].result.as_ref().unwrap_err();
        assert!(
            err.contains("/nonexistent/token") && !err.contains("podiam-"),
            "{err}"
        );
        assert_eq!(files[2].variable, "OTHER_FILE");
        assert_eq!(files[2].result.as_deref(), Ok(&b"{\n  \"a\": 1\n}\n\n"[..]));
    }

    #[test]
    fn without_files_the_output_is_the_environment() {
        let (env, files) = run(&[("A", "1")], &[]);
        assert!(files.is_empty());
        let vars = variables(&env);
        assert!(
            vars.contains(&("A".to_string(), "1".to_string())),
            "{vars:?}"
        );
    }

    #[test]
    fn a_cut_section_is_left_to_a_second_read() {
        let b = "podiam-x";
        let out = format!("A=1\n\n{b} file T\nhead.pay");
        let (env, files) = parse(b, out.as_bytes(), "");
        assert_eq!(env, b"A=1\n");
        assert!(files.is_empty());
    }

    #[test]
    fn the_scripts_own_framing_is_not_forged() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "header.payload.sig").unwrap();
        let b = boundary();
        let script = crate::pod_session::script::full_script();
        let argv = crate::pod_session::script::argv(&script, &b, "", &["T", "U"]);
        let out = std::process::Command::new("sh")
            .args(&argv[1..])
            .env_clear()
            .env("T", &token)
            .output()
            .expect("sh");
        let stdout = out.stdout;
        let head_end = find(&stdout, format!("\n{b} ready ").as_bytes(), 0).expect("ready");
        let head = &stdout[..head_end];
        let (_, files) = parse(&b, head, "");
        assert_eq!(files.len(), 1);
        assert_eq!(forged_framing(&b, head, &files), None);
    }

    #[test]
    fn a_frame_printed_by_a_wrapper_is_told_apart() {
        let b = "podiam-x";
        // A wrapper `env` that read the boundary prints a forged token section first.
        let forged = format!(
            "A=1\n\n{b} file T\nforged.jwt.sig\n{b} status T 0\n\n{b} file T\nreal\n{b} status T 0\n"
        );
        let (_, files) = parse(b, forged.as_bytes(), "");
        let why = forged_framing(b, forged.as_bytes(), &files).expect("forged");
        assert!(why.contains("framed twice"), "{why}");
        // The boundary inside the environment text (a frame that does not parse).
        let stray = format!("A=1\n{b} ready curl\n\n{b} file T\nreal\n{b} status T 0\n");
        let (_, files) = parse(b, stray.as_bytes(), "");
        assert!(forged_framing(b, stray.as_bytes(), &files).is_some());
    }

    #[test]
    fn boundaries_differ_and_debug_hides_bytes() {
        assert_ne!(boundary(), boundary());
        let read = FileRead {
            variable: "T".into(),
            result: Ok(b"secret-token".to_vec()),
        };
        assert!(!format!("{read:?}").contains("secret"));
    }
}
