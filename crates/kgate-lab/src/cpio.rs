//! A minimal writer for the `newc` cpio format the kernel unpacks as an
//! initramfs. Archives may be concatenated: the kernel unpacks each in turn.

use std::io::{self, Write};

/// Streams `newc` entries to a writer. Call [`CpioWriter::finish`] to write
/// the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    /// Start an archive. `first_ino` lets concatenated archives keep inode
    /// numbers distinct (the kernel only uses them to detect hard links).
    pub fn new(out: W, first_ino: u32) -> Self {
        CpioWriter {
            out,
            offset: 0,
            next_ino: first_ino,
        }
    }

    /// A directory (parents must come first).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, 0o040000 | (mode & 0o7777), &[], 0, 0)
    }

    /// A regular file with `data`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, 0o100000 | (mode & 0o7777), data, 0, 0)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, 0o120777, target.as_bytes(), 0, 0)
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, 0o020000 | (mode & 0o7777), &[], major, minor)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        rmaj: u32,
        rmin: u32,
    ) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large for cpio"))?;
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}{dmaj:08x}{dmin:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            dmaj = 0,
            dmin = 0,
            namesize = name.len() + 1,
            check = 0,
        );
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.offset += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.offset % 4) as usize) % 4;
        self.write(&[0u8; 3][..n])
    }

    /// Write the trailer and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, &[], 0, 0)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned() {
        let mut w = CpioWriter::new(Vec::new(), 1);
        w.dir("/a", 0o755).unwrap();
        w.file("/a/b", 0o644, b"hello").unwrap();
        w.symlink("/a/c", "b").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("a/b\0"));
        assert!(s.contains("hello"));
        assert!(s.contains("TRAILER!!!"));
    }
}
