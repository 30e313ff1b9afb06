//! Reading an initramfs: back-to-back cpio archives (uncompressed early
//! microcode, then gzip/zstd/xz-compressed segments), each decompressed
//! segment bounded, and the module files they contain.

use std::io::{self, Read};
use std::path::Path;

use super::BootError;
use crate::bounded::{self, Limit};
use crate::ko::module_name_from_path;

/// liblzma's memory limit for an initramfs segment: initramfs-tools and
/// dracut use xz's default preset (8 MiB dictionary, 9 MiB to decode),
/// some `-9` (64 MiB dictionary, 65 MiB).
const XZ_MEMLIMIT: u64 = 80 << 20;

/// Canonical names of the module files an initramfs contains. The file may
/// be several cpio archives back to back, each uncompressed (early
/// microcode) or gzip/zstd/xz-compressed, with zero padding between them.
pub fn initramfs_modules(path: &Path) -> Result<Vec<String>, BootError> {
    let data =
        bounded::read(Path::new("/"), path, Limit::INITRAMFS).map_err(|e| BootError::Read {
            path: path.to_owned(),
            source: io::Error::other(e),
        })?;
    parse_initramfs(&data, path, Limit::INITRAMFS_UNPACKED)
}

/// [`initramfs_modules`] of the bytes `data` of the initramfs `path` (for
/// messages), each decompressed segment capped at `unpacked`.
pub fn parse_initramfs(
    data: &[u8],
    path: &Path,
    unpacked: Limit,
) -> Result<Vec<String>, BootError> {
    let mut names = Vec::new();
    let mut pos = 0;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1;
        }
        if pos >= data.len() {
            break;
        }
        let rest = &data[pos..];
        if rest.starts_with(b"07070") {
            let segment = format!("uncompressed segment at byte {pos}");
            pos = parse_cpio(data, pos, &mut names).map_err(|reason| BootError::Cpio {
                path: path.to_owned(),
                segment,
                reason,
            })?;
            continue;
        }
        let format = compression_of(rest).ok_or_else(|| BootError::UnknownFormat {
            path: path.to_owned(),
            offset: pos,
            magic: rest.iter().take(6).map(|b| format!("{b:02x}")).collect(),
        })?;
        let mut out = Vec::new();
        let result = match format {
            "gzip" => read_capped(
                flate2::bufread::MultiGzDecoder::new(rest),
                &mut out,
                unpacked,
            ),
            "zstd" => zstd::stream::read::Decoder::with_buffer(rest)
                .and_then(|d| read_capped(d, &mut out, unpacked)),
            "xz" => xz2::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, xz2::stream::CONCATENATED)
                .map_err(io::Error::from)
                .and_then(|s| {
                    read_capped(
                        xz2::bufread::XzDecoder::new_stream(rest, s),
                        &mut out,
                        unpacked,
                    )
                }),
            other => {
                return Err(BootError::UnsupportedCompression {
                    path: path.to_owned(),
                    offset: pos,
                    format: other,
                })
            }
        };
        result.map_err(|source| BootError::Decompress {
            path: path.to_owned(),
            offset: pos,
            format,
            source,
        })?;
        // The decompressed stream may itself hold several archives.
        let mut inner = 0;
        loop {
            while inner < out.len() && out[inner] == 0 {
                inner += 1;
            }
            if inner >= out.len() {
                break;
            }
            let segment = format!("{format} segment at byte {pos}, offset {inner} inside");
            inner = parse_cpio(&out, inner, &mut names).map_err(|reason| BootError::Cpio {
                path: path.to_owned(),
                segment,
                reason,
            })?;
        }
        // The decoder consumed the rest of the file.
        break;
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn compression_of(b: &[u8]) -> Option<&'static str> {
    Some(if b.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if b.starts_with(&[0x02, 0x21, 0x4c, 0x18]) || b.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        "lz4"
    } else if b.starts_with(b"BZh") {
        "bzip2"
    } else if b.starts_with(&[0x89, b'L', b'Z', b'O']) {
        "lzo"
    } else if b.starts_with(&[0x5d, 0, 0]) {
        "lzma"
    } else {
        return None;
    })
}

fn read_capped(reader: impl Read, out: &mut Vec<u8>, limit: Limit) -> io::Result<()> {
    bounded::decompressed(reader, Path::new("initramfs"), limit, out).map_err(|e| match e {
        bounded::ReadError::Io { source, .. } => source,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(())
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one newc (`070701`) or newc-with-checksum (`070702`) archive
/// starting at `start` in `buf` (alignment is relative to the start of
/// `buf`, as in the kernel's unpacker), pushing module names. Returns the
/// offset just past the `TRAILER!!!` entry.
fn parse_cpio(buf: &[u8], start: usize, names: &mut Vec<String>) -> Result<usize, String> {
    const HEADER: usize = 110;
    let mut pos = start;
    loop {
        let header = buf
            .get(pos..pos + HEADER)
            .ok_or_else(|| format!("header at byte {pos} is truncated"))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(format!(
                "bad magic {:?} at byte {pos} (only newc archives are supported)",
                String::from_utf8_lossy(&header[..6])
            ));
        }
        let field = |i: usize| -> Result<usize, String> {
            let s = &header[6 + i * 8..6 + (i + 1) * 8];
            std::str::from_utf8(s)
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad hex field at byte {}", pos + 6 + i * 8))
        };
        let mode = field(1)?;
        let filesize = field(6)?;
        let namesize = field(11)?;
        let name_start = pos + HEADER;
        let name_bytes = buf
            .get(name_start..name_start + namesize)
            .ok_or_else(|| format!("name of the entry at byte {pos} is truncated"))?;
        let name = name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes);
        let name = String::from_utf8_lossy(name);
        let data_start = align4(name_start + namesize);
        let next = align4(data_start + filesize);
        if data_start + filesize > buf.len() {
            return Err(format!("data of {name} (at byte {pos}) is truncated"));
        }
        if name == "TRAILER!!!" {
            return Ok(next.min(buf.len()));
        }
        let is_file = mode & 0o170000 == 0o100000;
        if is_file {
            if let Some(m) = module_name_from_path(Path::new(&*name)) {
                names.push(m);
            }
        }
        pos = next;
    }
}
