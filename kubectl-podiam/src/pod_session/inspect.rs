//! Reading the image from the open session, without any HTTP client: a bounded listing of the
//! places cloud SDKs are installed (`sdk`), and a bounded byte range of a file (`bytes`, with
//! `dd`: the ELF headers and build info of the container's main process). The request line is
//! `inspect US ID US KIND US ARG…`; the answer is framed
//! `\n<b> inspect ID begin\n … \n<b> inspect ID end RC\n` on stdout.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::call::SEPARATOR;
use super::{Io, PodSession, Unanswered, WRITING, read_through};

/// Shell functions the session script defines (see `script.rs`). The listing only expands
/// globs under fixed directories — no filesystem walk — and prints one line per hit:
/// `py PATH` (a dist-info/egg-info directory), `jar PATH`, or `node PATH` followed by the
/// first 64 KiB of that package.json and `\n<b> endfile`.
pub const SCRIPT: &str = r#"podiam_sdk_scan() {
  w=${PWD:-/}
  for d in /usr/lib/python3*/site-packages /usr/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages /opt/*/lib/python3*/site-packages /venv/lib/python3*/site-packages /app/.venv/lib/python3*/site-packages /var/lang/lib/python3*/site-packages /app "$w" "$w"/.venv/lib/python3*/site-packages; do
    for f in "$d"/boto3-* "$d"/botocore-* "$d"/azure_identity-* "$d"/google_auth-*; do
      case $f in *.dist-info|*.egg-info) [ -e "$f" ] && printf 'py %s\n' "$f" ;; esac
    done
  done
  n=0
  for d in /app /usr/src/app /home/node/app /opt/app /var/task /usr/lib /usr/local/lib "$w"; do
    [ -d "$d/node_modules" ] || continue
    for f in "$d"/node_modules/aws-sdk/package.json "$d"/node_modules/@aws-sdk/client-*/package.json "$d"/node_modules/@azure/identity/package.json "$d"/node_modules/google-auth-library/package.json; do
      [ -f "$f" ] || continue
      n=$((n+1)); [ "$n" -gt 40 ] && break 2
      printf 'node %s\n' "$f"
      head -c 65536 "$f"
      printf '\n%s endfile\n' "$b"
    done
  done
  for d in /app /app/lib /app/libs /app/BOOT-INF/lib /opt/app /opt/app/lib /deployments /deployments/lib /deployments/lib/main /workspace/BOOT-INF/lib /usr/share/java /var/task/lib "$w" "$w"/lib "$w"/libs; do
    for f in "$d"/aws-java-sdk-core-*.jar "$d"/sts-2.*.jar "$d"/sdk-core-2.*.jar "$d"/azure-identity-*.jar "$d"/google-auth-library-oauth2-http-*.jar; do
      [ -f "$f" ] && printf 'jar %s\n' "$f"
    done
  done
  return 0
}
podiam_inspect() {
  printf '\n%s inspect %s begin\n' "$b" "$1"
  case $2 in
    sdk) podiam_sdk_scan ;;
    bytes) dd if="$3" bs=4096 skip="$4" count="$5" 2>/dev/null ;;
    *) false ;;
  esac
  printf '\n%s inspect %s end %s\n' "$b" "$1" "$?"
}"#;

/// The most 4 KiB blocks one `bytes` request reads (1 MiB).
pub const MAX_BLOCKS: u64 = 256;

/// What to read from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspect {
    /// The SDK listing.
    SdkScan,
    /// `count` blocks of 4 KiB of `path` from block `skip` on.
    Bytes { path: String, skip: u64, count: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("the session in the pod is not usable: {0}")]
    SessionBroken(String),
    #[error("no answer from the pod within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("the path {0:?} cannot be sent on a request line")]
    BadPath(String),
    #[error("the pod's reader exited with {0}")]
    Failed(i32),
}

impl Inspect {
    fn line(&self, id: u32) -> Result<String, InspectError> {
        let s = SEPARATOR;
        match self {
            Inspect::SdkScan => Ok(format!("inspect{s}{id}{s}sdk")),
            Inspect::Bytes { path, skip, count } => {
                if path.contains(['\n', '\r', SEPARATOR]) {
                    return Err(InspectError::BadPath(path.clone()));
                }
                let count = (*count).min(MAX_BLOCKS);
                Ok(format!(
                    "inspect{s}{id}{s}bytes{s}{path}{s}{skip}{s}{count}"
                ))
            }
        }
    }
}

impl PodSession {
    /// Runs `what` in the pod and returns what it printed (bounded by the session's reads).
    /// A reader that printed nothing and failed (no such file, no permission) is an error.
    /// An exec that ended under it is opened again once, as for calls.
    pub async fn inspect(&self, what: &Inspect, within: Duration) -> Result<Vec<u8>, InspectError> {
        let mut io = self.io.lock().await;
        // A path that cannot be written is refused as such (BadPath), before anything is sent.
        what.line(0)?;
        let sent = self.request(&mut io, within, what).await;
        let (_, (out, rc)) = match sent {
            Ok(answered) => answered,
            Err(Unanswered::Broken(reason)) => return Err(InspectError::SessionBroken(reason)),
            Err(Unanswered::Timeout(within)) => return Err(InspectError::Timeout(within)),
        };
        if out.is_empty() && rc != 0 {
            return Err(InspectError::Failed(rc));
        }
        Ok(out)
    }

    async fn inspect_once(
        &self,
        io: &mut Io,
        id: u32,
        line: &str,
    ) -> Result<(Vec<u8>, i32), String> {
        io.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("{WRITING}: {e}"))?;
        io.stdin
            .flush()
            .await
            .map_err(|e| format!("{WRITING}: {e}"))?;
        read_through(
            io,
            format!("\n{} inspect {id} begin\n", self.boundary).as_bytes(),
        )
        .await?;
        let out = read_through(
            io,
            format!("\n{} inspect {id} end ", self.boundary).as_bytes(),
        )
        .await?;
        let rc = read_through(io, b"\n").await?;
        Ok((
            out,
            String::from_utf8_lossy(&rc).trim().parse().unwrap_or(-1),
        ))
    }
}

impl super::Request for Inspect {
    type Answer = (Vec<u8>, i32);
    fn line(&self, id: u32) -> Result<String, String> {
        Inspect::line(self, id).map_err(|e| e.to_string())
    }
    async fn send(
        &self,
        session: &PodSession,
        io: &mut Io,
        id: u32,
        line: &str,
    ) -> Result<Self::Answer, String> {
        session.inspect_once(io, id, line).await
    }
}

/// One hit of the SDK listing: `py`, `jar` or `node`, its path, and (node) the package.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    pub kind: String,
    pub path: String,
    pub content: Option<Vec<u8>>,
}

impl PodSession {
    /// The SDK listing of the image (see [`SCRIPT`]).
    pub async fn sdk_listing(&self, within: Duration) -> Result<Vec<ListingEntry>, InspectError> {
        let out = self.inspect(&Inspect::SdkScan, within).await?;
        Ok(parse_listing(&out, &self.boundary))
    }
}

/// Splits the listing's output; a package.json cut short (output capped) ends the listing.
pub fn parse_listing(out: &[u8], boundary: &str) -> Vec<ListingEntry> {
    let end_file = format!("\n{boundary} endfile\n");
    let mut entries = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let line_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        rest = rest.get(line_end + 1..).unwrap_or_default();
        let Some((kind, path)) = line.split_once(' ') else {
            continue;
        };
        let content = if kind == "node" {
            let Some(at) = rest
                .windows(end_file.len())
                .position(|w| w == end_file.as_bytes())
            else {
                break;
            };
            let content = rest[..at].to_vec();
            rest = &rest[at + end_file.len()..];
            Some(content)
        } else {
            None
        };
        entries.push(ListingEntry {
            kind: kind.to_string(),
            path: path.to_string(),
            content,
        });
    }
    entries
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
