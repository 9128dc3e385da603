//! Container images built from the host's static busybox, written as one docker-archive
//! tarball (`manifest.json` + image configs + layer tars) and imported with `ctr images
//! import` into containerd's `k8s.io` namespace. Reproducible (fixed mtimes and owners), so
//! the same busybox always yields the same image ids. Pods must use `imagePullPolicy: Never`
//! or `IfNotPresent`: there is no registry behind `podiam.local`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ClusterError, IoContext, Result};

/// busybox with every applet linked in `/bin` (`sh`, `cat`, `env`, `id`, `wget`, …),
/// `/etc/passwd` (root, nobody) and a 1777 `/tmp`. Default command `sh`.
pub const BUSYBOX_IMAGE: &str = "podiam.local/busybox:latest";
/// No shell and no tools: only [`DISTROLESS_SLEEP`], which sleeps for its argument
/// (default: about 68 years). `exec … cat` fails with "executable file not found".
pub const DISTROLESS_IMAGE: &str = "podiam.local/distroless:latest";
/// The only file of the distroless image (busybox invoked as its `sleep` applet).
pub const DISTROLESS_SLEEP: &str = "/sleep";
/// containerd's `sandbox_image`: the distroless sleeper, sleeping forever.
pub const PAUSE_IMAGE: &str = "podiam.local/pause:latest";

const FOREVER: &str = "2147483647";

/// Writes the archive holding all three images into `dir`; returns its path.
pub fn build_archive(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
    let busybox_bytes =
        fs::read(busybox).io_context(|| format!("reading {}", busybox.display()))?;
    let applets = applets(busybox)?;

    let mut full = TarWriter::default();
    full.dir("bin/", 0o755);
    full.file("bin/busybox", 0o755, &busybox_bytes);
    for applet in applets.iter().filter(|a| a.as_str() != "busybox") {
        full.symlink(&format!("bin/{applet}"), "busybox");
    }
    full.dir("etc/", 0o755);
    full.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    full.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    full.dir("root/", 0o700);
    full.dir("tmp/", 0o1777);
    let full = full.finish();

    let mut sleeper = TarWriter::default();
    sleeper.file(
        DISTROLESS_SLEEP.trim_start_matches('/'),
        0o755,
        &busybox_bytes,
    );
    let sleeper = sleeper.finish();

    let images = [
        (BUSYBOX_IMAGE, &full, json!(null), json!(["sh"])),
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
                "Env": ["PATH=/bin:/"],
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
