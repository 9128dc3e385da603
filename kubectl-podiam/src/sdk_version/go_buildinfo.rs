//! The module versions a Go binary was built with, read as `go version -m` reads them: the
//! build info blob (`\xff Go buildinf:`) at the start of the binary's first writable, not
//! executable PT_LOAD segment, in the inline format of Go 1.18 and later (a varint-prefixed
//! Go version, then the varint-prefixed module info: `dep\tPATH\tVERSION\tSUM` lines, a
//! `=>\tPATH\tVERSION\tSUM` line replacing the dependency before it). Older binaries keep
//! pointers instead and are not read. Everything here works on bounded byte slices.

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// Go's flag for the inline format.
const FLAG_INLINE: u8 = 0x2;
/// How far into the segment the header may lie (what `debug/buildinfo` searches).
pub const SEARCH_WINDOW: usize = 64 * 1024;
/// How much to read from the segment: the search window plus the module info.
pub const READ_LEN: u64 = 320 * 1024;

/// Where the first writable, not executable PT_LOAD segment lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub size: u64,
}

/// What the build info says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub go_version: String,
    /// `(module path, version)` after replacements.
    pub deps: Vec<(String, String)>,
}

/// The data segment named by the ELF program headers in `head` (the file's first bytes).
pub fn data_segment(head: &[u8]) -> Option<Segment> {
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match head.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |at: usize, len: usize| -> Option<u64> {
        // Offsets come from the (possibly hostile) binary: checked, never wrapped.
        let bytes = head.get(at..at.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let b = if little { bytes[len - 1 - i] } else { bytes[i] };
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    };
    let (phoff, phentsize, phnum) = if wide {
        (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?)
    } else {
        (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?)
    };
    const PT_LOAD: u64 = 1;
    const PF_X: u64 = 1;
    const PF_W: u64 = 2;
    (0..phnum).find_map(|i| {
        let at = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        let field = |delta: usize, len: usize| read(at.checked_add(delta)?, len);
        let (kind, flags, offset, size) = if wide {
            (field(0, 4)?, field(4, 4)?, field(8, 8)?, field(32, 8)?)
        } else {
            (field(0, 4)?, field(24, 4)?, field(4, 4)?, field(16, 4)?)
        };
        (kind == PT_LOAD && flags & (PF_X | PF_W) == PF_W).then_some(Segment { offset, size })
    })
}

/// The build info in `data` (bytes read from the start of the data segment).
pub fn parse(data: &[u8]) -> Option<BuildInfo> {
    let window = &data[..data.len().min(SEARCH_WINDOW + MAGIC.len())];
    let at = window.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let header = data.get(at..at + HEADER_LEN)?;
    if header[15] & FLAG_INLINE == 0 {
        return None;
    }
    let mut rest = &data[at + HEADER_LEN..];
    let go_version = String::from_utf8_lossy(take_string(&mut rest)?).into_owned();
    let mut info = take_string(&mut rest)?;
    // The linker wraps the module info in 16-byte sentinels.
    if info.len() >= 33 && info[info.len() - 17] == b'\n' {
        info = &info[16..info.len() - 16];
    }
    Some(BuildInfo {
        go_version,
        deps: deps(&String::from_utf8_lossy(info)),
    })
}

fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len = 0u64;
    let mut shift = 0;
    let mut used = 0;
    loop {
        let b = *rest.get(used)?;
        used += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let text = rest.get(used..used.checked_add(len)?)?;
    *rest = &rest[used + len..];
    Some(text)
}

fn deps(info: &str) -> Vec<(String, String)> {
    let mut deps: Vec<(String, String)> = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["dep", path, version, ..] => deps.push((path.to_string(), version.to_string())),
            // A replacement's own version is what was built in.
            ["=>", _, version, ..] if !version.is_empty() => {
                if let Some(last) = deps.last_mut() {
                    last.1 = version.to_string();
                }
            }
            _ => {}
        }
    }
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uvarint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A minimal 64-bit little-endian ELF: a text segment, then a data segment at 0x2000
    /// holding the inline build info.
    fn fixture(modinfo: &str) -> (Vec<u8>, Vec<u8>) {
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        let phdr = |elf: &mut Vec<u8>, i: usize, flags: u32, offset: u64, size: u64| {
            let at = 0x40 + i * 56;
            elf[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            elf[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            elf[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            elf[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        phdr(&mut elf, 0, 5, 0, 0x1000); // R+X
        phdr(&mut elf, 1, 6, 0x2000, 0x800); // R+W
        let mut data = vec![0u8; 0x30]; // something before the header, as other sections
        data.extend_from_slice(MAGIC);
        data.push(8);
        data.push(FLAG_INLINE);
        data.resize(0x30 + HEADER_LEN, 0);
        let version = "go1.22.5";
        uvarint(version.len(), &mut data);
        data.extend_from_slice(version.as_bytes());
        let wrapped = format!("{}{modinfo}{}", "S".repeat(16), "E".repeat(16));
        uvarint(wrapped.len(), &mut data);
        data.extend_from_slice(wrapped.as_bytes());
        (elf, data)
    }

    #[test]
    fn finds_the_data_segment_and_the_modules() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
            dep\tgithub.com/aws/aws-sdk-go-v2/config\tv1.24.0\th1:x=\n\
            dep\tgithub.com/aws/aws-sdk-go\tv1.44.0\th1:y=\n\
            =>\tgithub.com/fork/aws-sdk-go\tv1.47.11\th1:z=\n\
            build\tGOOS=linux\n";
        let (elf, data) = fixture(modinfo);
        assert_eq!(
            data_segment(&elf),
            Some(Segment {
                offset: 0x2000,
                size: 0x800
            })
        );
        let info = parse(&data).expect("build info");
        assert_eq!(info.go_version, "go1.22.5");
        assert_eq!(
            info.deps,
            vec![
                (
                    "github.com/aws/aws-sdk-go-v2/config".to_string(),
                    "v1.24.0".to_string()
                ),
                // replaced: the fork's version was built in
                (
                    "github.com/aws/aws-sdk-go".to_string(),
                    "v1.47.11".to_string()
                ),
            ]
        );
    }

    #[test]
    fn hostile_program_header_offsets_end_in_none_not_a_panic() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff
        elf[0x36..0x38].copy_from_slice(&0xffffu16.to_le_bytes()); // phentsize
        elf[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes()); // phnum
        assert_eq!(data_segment(&elf), None);
    }

    #[test]
    fn refuses_what_is_not_elf_or_not_inline() {
        assert_eq!(data_segment(b"#!/bin/sh\necho hi\n"), None);
        let (_, mut data) = fixture("dep\ta\tv1.0.0\t\n");
        data[0x30 + 15] = 0; // pointer format (Go < 1.18)
        assert_eq!(parse(&data), None);
        let (_, data) = fixture("dep\ta\tv1.0.0\t\n");
        assert_eq!(parse(&data[..0x30 + HEADER_LEN + 4]), None, "cut short");
    }

    /// A real Go binary on this host, when there is one (the Kubernetes build cache).
    #[test]
    fn reads_a_real_go_binary_when_one_is_at_hand() {
        let Some(path) = host_go_binary() else {
            eprintln!("no Go binary on this host; skipped");
            return;
        };
        let head = std::fs::read(&path).expect("read binary");
        let segment = data_segment(&head[..4096]).expect("a data segment");
        let start = segment.offset as usize;
        let data = &head[start..(start + READ_LEN as usize).min(head.len())];
        let info = parse(data).expect("build info");
        assert!(info.go_version.starts_with("go1."), "{}", info.go_version);
        assert!(!info.deps.is_empty(), "{path:?} lists its modules");
    }

    fn host_go_binary() -> Option<std::path::PathBuf> {
        let cache = std::path::Path::new(&std::env::var("HOME").ok()?).join(".cache/podiam");
        std::fs::read_dir(cache)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("k8s-"))
            .map(|e| e.path().join("bin/kubectl"))
            .find(|p| p.is_file())
    }
}
