//! Bounded decompression of module files (`.ko.xz`, `.ko.zst`, `.ko.gz`)
//! with the libraries kmod uses: liblzma (through `xz2`), libzstd (through
//! `zstd`) and a zlib-compatible inflater (`flate2`). The output never
//! exceeds its cap, and each decoder's own memory is bounded too.

use std::io::{self, Read};
use std::path::Path;

use super::Compression;
use crate::bounded::{self, Limit, ReadError};

/// liblzma's memory limit per stream. The kernel compresses modules with a
/// 1 MiB dictionary (`scripts/Makefile.modinst`: `--lzma2=dict=1MiB`);
/// 16 MiB also decodes xz's default preset (`-6`, 8 MiB dictionary).
pub const XZ_MEMLIMIT: u64 = 16 << 20;

/// Largest zstd window accepted (2^24 = 16 MiB). The kernel runs `zstd`
/// at its default level (a window of at most 2^21 for modules); level 19
/// uses 2^23. A frame asking for more is refused before it is allocated.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Decompresses `input` into `out` (empty on entry), at most `cap` bytes
/// ([`bounded::over_cap`] past it): the bounded decompression every module
/// file goes through ([`read_module_capped`](super::read_module_capped)). `out` never holds more than
/// `cap + 1` bytes, whatever the input.
pub fn decompress(
    compression: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
    cap: u64,
) -> io::Result<()> {
    match compression {
        Compression::None => {
            bounded::reserve_capped(out, input.len(), cap)?;
            if input.len() as u64 > cap {
                return Err(bounded::over_cap());
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Xz => decompress_xz(input, out, cap),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            read_capped(decoder, out, cap)
        }
        Compression::Gzip => read_capped(flate2::bufread::MultiGzDecoder::new(input), out, cap),
    }
}

fn read_capped(reader: impl Read, out: &mut Vec<u8>, cap: u64) -> io::Result<()> {
    let limit = Limit {
        kind: "module",
        max: cap,
    };
    bounded::decompressed(reader, Path::new(""), limit, out).map_err(|e| match e {
        ReadError::Io { source, .. } => source,
        ReadError::NotFound { .. } => io::ErrorKind::NotFound.into(),
        _ => bounded::over_cap(),
    })
}

/// liblzma straight into `out`'s spare capacity, the whole input at once
/// (like kmod: `lzma_stream_decoder(memlimit, LZMA_CONCATENATED)`), the
/// buffer grown by bounded steps up to `cap + 1`.
fn decompress_xz(mut input: &[u8], out: &mut Vec<u8>, cap: u64) -> io::Result<()> {
    use xz2::stream::{Action, Status, Stream, CONCATENATED};

    // Modules compress about 4-6x; start there to avoid regrowth when the
    // caller's buffer is still small.
    bounded::reserve_capped(out, input.len().saturating_mul(6), cap)?;
    let mut stream = Stream::new_stream_decoder(XZ_MEMLIMIT, CONCATENATED)?;
    loop {
        if out.len() == out.capacity() {
            bounded::reserve_capped(out, out.len().max(1 << 16), cap)?;
        }
        let in_before = stream.total_in();
        let out_before = out.len();
        let status = stream.process_vec(input, out, Action::Finish)?;
        let consumed = usize::try_from(stream.total_in() - in_before)
            .unwrap_or(input.len())
            .min(input.len());
        input = &input[consumed..];
        if out.len() as u64 > cap {
            return Err(bounded::over_cap());
        }
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::GetCheck | Status::MemNeeded => {
                // No progress although there is room for output: the input
                // ended before the stream did.
                if consumed == 0 && out.len() == out_before && out.len() < out.capacity() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "compressed data ends before the end of the xz stream (truncated file?)",
                    ));
                }
            }
        }
    }
}
