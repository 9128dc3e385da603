//! The ephemeral probe's image, `podiam.local/probe:v<version>`: the static `podiam-probe`
//! binary (built from `probe/` for x86_64-unknown-linux-gnu with `+crt-static`, see
//! [`probe_binary`]) as `/podiam-probe`, its entrypoint, and the CA bundle the pods trust when
//! the harness has one. Written as its own docker-archive and imported like the busybox images
//! (`images.rs`). The plugin in the harness is told to use it with `PODIAM_PROBE_IMAGE`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ClusterError, IoContext, Result};

/// The tag the harness gives the probe image (the plugin's default is the published one).
pub const PROBE_IMAGE: &str = concat!("podiam.local/probe:v", env!("CARGO_PKG_VERSION"));
/// Overrides where the static probe binary is taken from.
pub const PROBE_BINARY_ENV: &str = "PODIAM_PROBE_BINARY";
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The static probe: `$PODIAM_PROBE_BINARY`, else built with cargo (`--profile probe`).
pub fn probe_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(PROBE_BINARY_ENV) {
        return Ok(PathBuf::from(path));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        // glibc's static libc: musl is not installable everywhere this runs. The probe resolves
        // names itself (no NSS), so nothing is loaded at run time.
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--locked",
            "-p",
            "podiam-probe",
            "--profile",
            "probe",
            "--target",
            TARGET,
        ])
        .output()
        .map_err(|e| ClusterError::other(format!("running cargo to build podiam-probe: {e}")))?;
    if !output.status.success() {
        return Err(ClusterError::other(format!(
            "building podiam-probe failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(target_dir.join(TARGET).join("probe").join("podiam-probe"))
}

/// Writes `podiam-probe.tar` (one image, [`PROBE_IMAGE`]) into `dir`; returns its path.
pub fn build_archive(dir: &Path, probe: &Path, ca_bundle: Option<&[u8]>) -> Result<PathBuf> {
    fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
    let binary = fs::read(probe).io_context(|| format!("reading {}", probe.display()))?;
    let mut layer = Tar::default();
    layer.file("podiam-probe", 0o755, &binary);
    if let Some(bundle) = ca_bundle {
        for d in ["etc/", "etc/ssl/", "etc/ssl/certs/"] {
            layer.dir(d);
        }
        layer.file("etc/ssl/certs/ca-certificates.crt", 0o644, bundle);
    }
    let layer = layer.finish();
    let diff_id = hex_sha256(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/podiam-probe"],
            "WorkingDir": "/",
            "Labels": {"dev.podiam.image": PROBE_IMAGE},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "podiam-e2e probe_image.rs"}],
    }))
    .expect("a JSON value serializes");
    let config_path = format!("{}.json", hex_sha256(&config));
    let layer_path = format!("{diff_id}/layer.tar");
    let manifest = serde_json::to_vec(&json!([
        {"Config": config_path, "RepoTags": [PROBE_IMAGE], "Layers": [layer_path]}
    ]))
    .expect("a JSON value serializes");
    let mut archive = Tar::default();
    archive.dir(&format!("{diff_id}/"));
    archive.file(&layer_path, 0o644, &layer);
    archive.file(&config_path, 0o644, &config);
    archive.file("manifest.json", 0o644, &manifest);
    let path = dir.join("podiam-probe.tar");
    fs::write(&path, archive.finish()).io_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Builds (or finds) the probe and imports its image. Without a probe binary the cluster still
/// comes up: scenarios with `--probe=ephemeral` then fail with the plugin's image-pull message.
/// `ca_bundle`: the bundle the images carry (the public roots and the harness CA), so the
/// probe trusts the cloud front as the pods' own images do.
pub fn import(ctr: &Path, socket: &Path, dir: &Path, ca_bundle: &[u8]) -> Result<()> {
    let probe = match probe_binary() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no podiam-probe image: --probe=ephemeral scenarios will fail");
            return Ok(());
        }
    };
    let archive = build_archive(dir, &probe, Some(ca_bundle))?;
    super::images::import(ctr, socket, &archive)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Regular files and directories, owned by 0:0, mtime 0 (ustar).
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

impl Tar {
    fn dir(&mut self, name: &str) {
        self.header(name, 0o755, 0, b'5');
    }

    fn file(&mut self, name: &str, mode: u32, contents: &[u8]) {
        self.header(name, mode, contents.len() as u64, b'0');
        self.out.extend_from_slice(contents);
        let pad = (512 - contents.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, kind: u8) {
        assert!(name.len() < 100, "tar name too long: {name}");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |field: &mut [u8], value: u64| {
            let digits = format!("{value:0width$o}\0", width = field.len() - 1);
            field.copy_from_slice(digits.as_bytes());
        };
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 0);
        h[148..156].fill(b' ');
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_one_image_with_the_probe_as_entrypoint() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("podiam-probe");
        fs::write(&fake, b"\x7fELF fake").unwrap();
        let archive =
            build_archive(dir.path(), &fake, Some(b"-----BEGIN CERTIFICATE-----\n")).unwrap();
        let out = Command::new("tar")
            .arg("xf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], PROBE_IMAGE);
        let config: serde_json::Value = serde_json::from_slice(
            &fs::read(dir.path().join(manifest[0]["Config"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(config["config"]["Entrypoint"][0], "/podiam-probe");
        let layer = dir.path().join(manifest[0]["Layers"][0].as_str().unwrap());
        let listing = Command::new("tar").arg("tvf").arg(&layer).output().unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(
            listing.contains("-rwxr-xr-x") && listing.contains("podiam-probe"),
            "{listing}"
        );
        assert!(
            listing.contains("etc/ssl/certs/ca-certificates.crt"),
            "{listing}"
        );
    }
}
