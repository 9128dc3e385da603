//! Container images built from the host's static busybox and Debian's curl, written as one
//! docker-archive tarball (`manifest.json` + image configs + layer tars) and imported with
//! `ctr images import` into containerd's `k8s.io` namespace. Reproducible (fixed mtimes and
//! owners, a persisted harness CA), so the same inputs always yield the same image ids. Pods
//! must use `imagePullPolicy: Never` or `IfNotPresent`: there is no registry behind
//! `podiam.local`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ClusterError, IoContext, Result};
use super::host::HostPackages;

/// busybox with every applet linked in `/bin` (`sh`, `cat`, `env`, `id`, `wget`, …),
/// `/etc/passwd` (root, nobody), a 1777 `/tmp` and [`CA_BUNDLE`]. Default command `sh`.
pub const BUSYBOX_IMAGE: &str = "podiam.local/busybox:latest";
/// Like the clouds' CLI images: everything of [`BUSYBOX_IMAGE`], plus Debian's `curl` at
/// `/usr/bin/curl` with every shared library it loads (and the dynamic loader), and
/// [`PUBLIC_ONLY_BUNDLE`].
pub const CURL_IMAGE: &str = "podiam.local/curl:latest";
/// Debian's public CA certificates plus the harness CA (Debian's path, curl's default).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Debian's public CA certificates only: for "a CA the pod does not trust" (`curl --cacert`).
pub const PUBLIC_ONLY_BUNDLE: &str = "/etc/ssl/public-only.pem";
/// No shell and no tools: only [`DISTROLESS_SLEEP`], which sleeps for its argument
/// (default: about 68 years). `exec … cat` fails with "executable file not found".
pub const DISTROLESS_IMAGE: &str = "podiam.local/distroless:latest";
/// The only file of the distroless image (busybox invoked as its `sleep` applet).
pub const DISTROLESS_SLEEP: &str = "/sleep";
/// containerd's `sandbox_image`: the distroless sleeper, sleeping forever.
pub const PAUSE_IMAGE: &str = "podiam.local/pause:latest";

const FOREVER: &str = "2147483647";

/// What the images are made of.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// A statically linked busybox.
    pub busybox: PathBuf,
    /// A dynamically linked curl; its libraries are found with `ldd`.
    pub curl: PathBuf,
    /// The public CA bundle (Debian's `ca-certificates`).
    pub public_ca_bundle: PathBuf,
    /// The harness CA certificate (PEM), appended to the public bundle at [`CA_BUNDLE`].
    pub harness_ca_pem: String,
}

impl ImageInputs {
    pub fn from_host(host: &HostPackages, harness_ca_pem: &str) -> Self {
        Self {
            busybox: host.busybox.clone(),
            curl: host.curl.clone(),
            public_ca_bundle: host.ca_bundle.clone(),
            harness_ca_pem: harness_ca_pem.to_owned(),
        }
    }
}

/// Writes the archive holding all four images into `dir`; returns its path.
pub fn build_archive(dir: &Path, inputs: &ImageInputs) -> Result<PathBuf> {
    fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
    let busybox = &inputs.busybox;
    let busybox_bytes =
        fs::read(busybox).io_context(|| format!("reading {}", busybox.display()))?;
    let applets = applets(busybox)?;
    let public = fs::read(&inputs.public_ca_bundle)
        .io_context(|| format!("reading {}", inputs.public_ca_bundle.display()))?;
    let mut bundle = public.clone();
    if !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(inputs.harness_ca_pem.as_bytes());

    let mut full = TarWriter::default();
    busybox_tree(&mut full, &busybox_bytes, &applets, &bundle);
    let full = full.finish();

    let mut curl = TarWriter::default();
    busybox_tree(&mut curl, &busybox_bytes, &applets, &bundle);
    curl.file(PUBLIC_ONLY_BUNDLE.trim_start_matches('/'), 0o644, &public);
    add_dynamic_executable(&mut curl, &inputs.curl, "usr/bin/curl")?;
    let curl = curl.finish();

    let mut sleeper = TarWriter::default();
    sleeper.file(
        DISTROLESS_SLEEP.trim_start_matches('/'),
        0o755,
        &busybox_bytes,
    );
    let sleeper = sleeper.finish();

    let images = [
        (BUSYBOX_IMAGE, &full, json!(null), json!(["sh"])),
        (CURL_IMAGE, &curl, json!(null), json!(["sh"])),
        (
            DISTROLESS_IMAGE,
            &sleeper,
            json!([DISTROLESS_SLEEP]),
            json!([FOREVER]),
        ),
        (
            PAUSE_IMAGE,
            &sleeper,
            json!([DISTROLESS_SLEEP, FOREVER]),
            json!(null),
        ),
    ];

    let mut archive = TarWriter::default();
    let mut manifest = Vec::new();
    let mut written_layers: Vec<String> = Vec::new();
    for (tag, layer, entrypoint, cmd) in images {
        let diff_id = hex_sha256(layer);
        let layer_path = format!("{diff_id}/layer.tar");
        if !written_layers.contains(&layer_path) {
            archive.dir(&format!("{diff_id}/"), 0o755);
            archive.file(&layer_path, 0o644, layer);
            written_layers.push(layer_path.clone());
        }
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/bin:/usr/bin:/"],
                "Entrypoint": entrypoint,
                "Cmd": cmd,
                "WorkingDir": "/",
                "Labels": {"dev.podiam.image": tag},
            },
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "podiam-e2e images.rs"}],
        });
        let config = serde_json::to_vec(&config).expect("a JSON value serializes");
        let config_path = format!("{}.json", hex_sha256(&config));
        archive.file(&config_path, 0o644, &config);
        manifest.push(json!({"Config": config_path, "RepoTags": [tag], "Layers": [layer_path]}));
    }
    let manifest = serde_json::to_vec(&manifest).expect("a JSON value serializes");
    archive.file("manifest.json", 0o644, &manifest);

    let path = dir.join("podiam-images.tar");
    fs::write(&path, archive.finish()).io_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// busybox with its applets in `/bin`, users, `/tmp`, the CA bundle and `nsswitch.conf`.
fn busybox_tree(tar: &mut TarWriter, busybox: &[u8], applets: &[String], ca_bundle: &[u8]) {
    tar.dir("bin/", 0o755);
    tar.file("bin/busybox", 0o755, busybox);
    for applet in applets.iter().filter(|a| a.as_str() != "busybox") {
        tar.symlink(&format!("bin/{applet}"), "busybox");
    }
    tar.dir("etc/", 0o755);
    tar.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    tar.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    // glibc's resolver (busybox-static's and curl's): /etc/hosts, then DNS per resolv.conf.
    tar.file("etc/nsswitch.conf", 0o644, b"hosts: files dns\n");
    tar.dir("etc/ssl/", 0o755);
    tar.dir("etc/ssl/certs/", 0o755);
    tar.file(CA_BUNDLE.trim_start_matches('/'), 0o644, ca_bundle);
    tar.dir("root/", 0o700);
    tar.dir("tmp/", 0o1777);
}

/// `program` at `target`, with every library `ldd` names (and the dynamic loader) at the same
/// path as on this machine, their parent directories first.
fn add_dynamic_executable(tar: &mut TarWriter, program: &Path, target: &str) -> Result<()> {
    let output = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| ClusterError::other(format!("running ldd {}: {e}", program.display())))?;
    if !output.status.success() {
        return Err(ClusterError::other(format!(
            "ldd {} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let libraries = ldd_paths(&String::from_utf8_lossy(&output.stdout))?;
    let mut files: Vec<(String, PathBuf)> = libraries
        .into_iter()
        .map(|p| (p.trim_start_matches('/').to_owned(), PathBuf::from(p)))
        .collect();
    files.push((target.to_owned(), program.to_path_buf()));
    let mut dirs: Vec<String> = Vec::new();
    for (name, _) in &files {
        let mut prefix = String::new();
        for part in name
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            prefix.push_str(part);
            prefix.push('/');
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
            }
        }
    }
    for dir in dirs {
        tar.dir(&dir, 0o755);
    }
    for (name, source) in files {
        // Read through symlinks: the image holds the file under the name the loader asks for.
        let bytes = fs::read(&source).io_context(|| format!("reading {}", source.display()))?;
        tar.file(&name, 0o755, &bytes);
    }
    Ok(())
}

/// The absolute paths in `ldd` output (`name => /path (addr)` and `/loader (addr)`).
fn ldd_paths(ldd: &str) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for line in ldd.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let path = rest.split_whitespace().next().unwrap_or_default();
                if path == "not" || path.is_empty() {
                    return Err(ClusterError::other(format!(
                        "ldd: library {} not found",
                        name.trim()
                    )));
                }
                path
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') && !paths.iter().any(|p| p == path) {
            paths.push(path.to_owned());
        }
    }
    Ok(paths)
}

/// `ctr images import` into the `k8s.io` namespace the CRI plugin reads.
pub fn import(ctr: &Path, socket: &Path, archive: &Path) -> Result<()> {
    let output = Command::new(ctr)
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "import"])
        .arg(archive)
        .output()
        .map_err(|e| ClusterError::other(format!("running {}: {e}", ctr.display())))?;
    if !output.status.success() {
        return Err(ClusterError::other(format!(
            "ctr images import {} failed ({}): {}",
            archive.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// The applet names busybox was built with.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| ClusterError::other(format!("running {} --list: {e}", busybox.display())))?;
    let list: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(String::from)
        .collect();
    if !output.status.success() || !list.iter().any(|a| a == "sh") {
        return Err(ClusterError::other(format!(
            "{} --list did not list a shell applet",
            busybox.display()
        )));
    }
    Ok(list)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A minimal ustar writer: directories, regular files and symlinks, owned by 0:0, mtime 0.
#[derive(Default)]
struct TarWriter {
    out: Vec<u8>,
}

impl TarWriter {
    fn dir(&mut self, name: &str, mode: u32) {
        self.header(name, mode, 0, b'5', "");
    }

    fn file(&mut self, name: &str, mode: u32, contents: &[u8]) {
        self.header(name, mode, contents.len() as u64, b'0', "");
        self.out.extend_from_slice(contents);
        let pad = (512 - contents.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o777, 0, b'2', target);
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, kind: u8, link: &str) {
        assert!(
            name.len() < 100 && link.len() < 100,
            "tar name too long: {name}"
        );
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 0);
        h[148..156].fill(b' ');
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let sum = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(sum.as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// Zero-padded octal, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007f09c8b4a000)\n\
                   \tlibcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007f09c8a45000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f09c8b4c000)\n";
        assert_eq!(
            ldd_paths(out).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libcurl.so.4",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        let missing = "\tlibfoo.so.1 => not found\n";
        assert!(ldd_paths(missing).is_err());
    }

    #[test]
    fn tar_entries_read_back_with_tar() {
        let mut t = TarWriter::default();
        t.dir("bin/", 0o755);
        t.file("bin/x", 0o755, b"hello");
        t.symlink("bin/y", "x");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        fs::write(&path, t.finish()).unwrap();
        let out = Command::new("tar").arg("tvf").arg(&path).output().unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listing.contains("bin/x"), "{listing}");
        assert!(listing.contains("bin/y -> x"), "{listing}");
    }
}
