//! The shell side of a pod session: one `sh -c` in the target container, as its own user and
//! in its network namespace. It prints the environment and the token files the mechanism
//! reads (as [`crate::env_probe`] frames them), then `<b> ready`, then performs each HTTP call
//! the plugin writes to its stdin, one line per call, with whatever client the image has
//! (curl, else wget, else python3; `nc` for a plain-http PUT that busybox wget cannot send).
//!
//! Tokens are read from their files inside the pod and go only to the endpoint of the call
//! (curl gets the body on its stdin; busybox wget has no such option and gets it as an
//! argument, which only the pod's own processes can see). Answers come back framed on stdout;
//! each client's own error words come back on stderr, framed by call id.
//!
//! A request line is fields separated by US (0x1f, not IFS white space, so empty fields
//! survive): `ID METHOD URL TIMEOUT CONTENT_TYPE BODY SECRET_FILE SECRET_TARGET CA_FILE
//! HEADER…`. `CA_FILE` is the bundle the pod's SDK is told to trust (e.g. `AWS_CA_BUNDLE`).
//! `SECRET_TARGET` is `form:NAME` (append `&NAME=<file>` to the body) or `header:NAME`
//! (send `NAME: <file>`). A line `end` ends the session; a line `inspect …` reads files of the
//! image instead of calling out (`inspect.rs`).

/// `$1` the boundary, `$2` the clients to try in order, then the file variables.
pub const SCRIPT: &str = r#"b=$1; clients=$2; shift 2
env || exit 126
# A token is small: read one byte past the largest the plugin decodes (token_claims), so a
# huge or endless file costs the session nothing.
rd=cat; command -v head >/dev/null 2>&1 && rd="head -c 65537"
for v do
  eval "p=\${$v-}"
  [ -n "$p" ] || continue
  printf '\n%s file %s\n' "$b" "$v"
  printf '\n%s err %s\n' "$b" "$v" >&2
  $rd "$p"
  printf '\n%s status %s %s\n' "$b" "$v" "$?"
done
client=
for c in $clients; do
  if command -v "$c" >/dev/null 2>&1; then client=$c; break; fi
done
twait=
command -v timeout >/dev/null 2>&1 && twait=timeout
# busybox wget neither verifies certificates nor completes TLS with every server: its https
# failures past the connection are not the pod's SDK's, and the plugin says so.
bbwget=
if [ "$client" = wget ]; then case $(wget --help 2>&1) in *BusyBox*) bbwget=1 ;; esac; fi
printf '\n%s ready %s\n' "$b" "${client:-none}"
printf '\n%s readyerr\n' "$b" >&2
US=$(printf '\037')
while IFS="$US" read -r id method url t ctype body sfile starget cafile h1 h2 h3; do
  [ "$id" = end ] && break
  [ "$id" = inspect ] && { podiam_inspect "$method" "$url" "$t" "$ctype" "$body"; continue; }
  printf '\n%s call %s begin\n' "$b" "$id"
  printf '\n%s callerr %s\n' "$b" "$id" >&2
  used=$client; rc=0; sh_header=
  if [ -n "$sfile" ]; then
    if secret=$(cat "$sfile"); then
      case $starget in
        form:*) body="$body&${starget#form:}=$secret" ;;
        header:*) sh_header="${starget#header:}: $secret" ;;
      esac
    else
      used=cat; rc=125
    fi
  fi
  if [ "$rc" = 0 ]; then
    case $url in http://*) plain=1 ;; *) plain= ;; esac
    if [ "$client" = wget ] && [ "$method" = PUT ] && [ -n "$plain" ] && command -v nc >/dev/null 2>&1; then
      used=nc
      hp=${url#http://}; path=/${hp#*/}; [ "$path" = "/$hp" ] && path=/; hp=${hp%%/*}
      host=${hp%:*}; port=${hp##*:}; [ "$port" = "$hp" ] && port=80
      {
        printf '%s %s HTTP/1.0\r\nHost: %s\r\n' "$method" "$path" "$hp"
        for h in "$h1" "$h2" "$h3" "$sh_header"; do [ -n "$h" ] && printf '%s\r\n' "$h"; done
        printf 'Content-Length: %s\r\n\r\n%s' "${#body}" "$body"
      } | $twait ${twait:+$t} nc "$host" "$port"
      rc=$?
    else
      case $client in
      curl)
        set -- -sS -o - -w "\n$b httpstatus %{http_code}\n" --max-time "$t" -X "$method"
        for h in "$h1" "$h2" "$h3" "$sh_header"; do [ -n "$h" ] && set -- "$@" -H "$h"; done
        [ -n "$ctype" ] && set -- "$@" -H "Content-Type: $ctype"
        [ -n "$cafile" ] && set -- "$@" --cacert "$cafile"
        if [ -n "$body" ]; then
          printf '%s' "$body" | curl "$@" --data-binary @- "$url"
        else
          curl "$@" "$url"
        fi
        rc=$? ;;
      wget)
        set -- -q -S -O -
        for h in "$h1" "$h2" "$h3" "$sh_header"; do [ -n "$h" ] && set -- "$@" --header "$h"; done
        [ -n "$ctype" ] && set -- "$@" --header "Content-Type: $ctype"
        [ "$method" = POST ] && set -- "$@" --post-data "$body"
        $twait ${twait:+$t} wget "$@" "$url"
        rc=$?
        [ -n "$bbwget" ] && [ -z "$plain" ] && used=busybox-wget-tls ;;
      python3)
        printf '%s' "$body" | python3 -c "$PODIAM_PY" "$b" "$method" "$url" "$t" "$ctype" "$cafile" "$h1" "$h2" "$h3" "$sh_header"
        rc=$? ;;
      *) used=none; rc=127 ;;
      esac
    fi
  fi
  printf '\n%s call %s end %s %s\n' "$b" "$id" "$used" "$rc"
  printf '\n%s callerrend %s\n' "$b" "$id" >&2
done"#;

/// The python3 client: one request, the body on stdin; the answer's body then
/// `<b> httpstatus N` on stdout; on failure a `podiam-cause: KIND: message` line on stderr,
/// with KIND one of dns, refused, timeout, tls-untrusted, tls-name, tls, proxy, other.
pub const PYTHON_CLIENT: &str = r#"import socket, ssl, sys, urllib.error, urllib.request
b, method, url, t, ctype, cafile = sys.argv[1:7]
data = sys.stdin.buffer.read() or None
req = urllib.request.Request(url, data=data, method=method)
for h in sys.argv[7:]:
    if h:
        k, _, v = h.partition(": ")
        req.add_header(k, v)
if ctype:
    req.add_header("Content-Type", ctype)
def cause(kind, e):
    sys.stderr.write("podiam-cause: %s: %s\n" % (kind, e))
    sys.exit(1)
try:
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    r = urllib.request.urlopen(req, timeout=float(t), context=ctx)
    status, body = r.status, r.read(1048576)
except urllib.error.HTTPError as e:
    status, body = e.code, e.read(1048576)
except urllib.error.URLError as e:
    r = e.reason
    if isinstance(r, socket.gaierror): cause("dns", r)
    if isinstance(r, ConnectionRefusedError): cause("refused", r)
    if isinstance(r, (socket.timeout, TimeoutError)): cause("timeout", r)
    if isinstance(r, ssl.SSLCertVerificationError):
        cause("tls-name" if "match" in str(r) else "tls-untrusted", r)
    if isinstance(r, ssl.SSLError): cause("tls", r)
    if isinstance(r, OSError) and "Tunnel connection failed" in str(r): cause("proxy", r)
    cause("other", r)
except (socket.timeout, TimeoutError) as e:
    cause("timeout", e)
except OSError as e:
    if "Tunnel connection failed" in str(e): cause("proxy", e)
    cause("other", e)
sys.stdout.buffer.write(body)
sys.stdout.write("\n%s httpstatus %d\n" % (b, status))
"#;

/// The clients a live pod is asked to use, in order of preference: curl verifies TLS as the
/// pod's SDK would; busybox wget does not verify certificates (FACTS.md), python3 does.
pub const CLIENTS: &str = "curl wget python3";

/// The argv of the session's exec: `sh -c SCRIPT podiam BOUNDARY CLIENTS VAR…`, with
/// `script` from [`full_script`].
pub fn argv<'a>(
    script: &'a str,
    boundary: &'a str,
    clients: &'a str,
    file_vars: &[&'a str],
) -> Vec<&'a str> {
    let mut argv = vec!["sh", "-c", script, "podiam", boundary, clients];
    argv.extend_from_slice(file_vars);
    argv
}

/// The full script: the python client assigned to `PODIAM_PY` (single-quoted: the program
/// holds no single quote), then [`SCRIPT`].
pub fn full_script() -> String {
    debug_assert!(!PYTHON_CLIENT.contains('\''));
    format!(
        "PODIAM_PY='{PYTHON_CLIENT}'\n{}\n{SCRIPT}",
        super::inspect::SCRIPT
    )
}
