//! Reading the initrd: a POSIX ustar archive of boot modules (programs, the manifest, models).
//!
//! The archive comes from the boot loader, so it is checked like any other input: header
//! checksums, octal fields, names and sizes within the archive. Iteration yields each
//! regular file or a clear error; it never reads outside the archive.

const BLOCK: usize = 512;
/// Files handed out as frames start at, and are zero-padded to, this alignment.
const PAGE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UstarError {
    /// A header's checksum does not match its bytes.
    BadChecksum { offset: usize },
    /// A header is not ustar (no "ustar" magic).
    NotUstar { offset: usize },
    /// A numeric field is not octal.
    BadNumber { offset: usize },
    /// A file's data runs past the end of the archive.
    Truncated { offset: usize },
    /// A name is not UTF-8.
    BadName { offset: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The path inside the archive, prefix and name joined (`prefix/name`) when split.
    pub prefix: &'a str,
    pub name: &'a str,
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether this entry's full path equals `path`.
    pub fn is(&self, path: &str) -> bool {
        if self.prefix.is_empty() {
            return self.name == path;
        }
        path.len() == self.prefix.len() + 1 + self.name.len()
            && path.starts_with(self.prefix)
            && path.as_bytes().get(self.prefix.len()) == Some(&b'/')
            && path.ends_with(self.name)
    }
}

/// Iterates the regular files of an archive.
pub struct Archive<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Archive<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Archive { bytes, offset: 0, failed: false }
    }

    /// Finds a regular file by path.
    pub fn find(bytes: &'a [u8], path: &str) -> Result<Option<&'a [u8]>, UstarError> {
        for entry in Archive::new(bytes) {
            let entry = entry?;
            if entry.is(path) {
                return Ok(Some(entry.data));
            }
        }
        Ok(None)
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, UstarError> {
        loop {
            let offset = self.offset;
            let Some(header) = self.bytes.get(offset..offset + BLOCK) else {
                return Ok(None); // end of data without the two zero blocks: tolerated
            };
            if header.iter().all(|&byte| byte == 0) {
                // Zero blocks up to a page boundary pad a page-aligned file's last page
                // (xtask's layout, so the file can be handed out as whole pages showing
                // nothing else); a zero block at a page boundary ends the archive.
                if offset.is_multiple_of(PAGE) {
                    return Ok(None);
                }
                self.offset = offset + BLOCK;
                continue;
            }
            let stored = octal(field(header, 148, 8)).ok_or(UstarError::BadNumber { offset })?;
            let computed: u64 = header
                .iter()
                .enumerate()
                .map(|(index, &byte)| if (148..156).contains(&index) { u64::from(b' ') } else { u64::from(byte) })
                .sum();
            if stored != computed {
                return Err(UstarError::BadChecksum { offset });
            }
            if field(header, 257, 5) != b"ustar" {
                return Err(UstarError::NotUstar { offset });
            }
            let size = octal(field(header, 124, 12)).ok_or(UstarError::BadNumber { offset })?;
            let size = usize::try_from(size).map_err(|_| UstarError::Truncated { offset })?;
            let data_start = offset + BLOCK;
            let data = data_start
                .checked_add(size)
                .and_then(|end| self.bytes.get(data_start..end))
                .ok_or(UstarError::Truncated { offset })?;
            self.offset = data_start + size.div_ceil(BLOCK) * BLOCK;
            let kind = header.get(156).copied().unwrap_or(0);
            if kind != b'0' && kind != 0 {
                continue; // directories, links and the like carry no file
            }
            let name = text(field(header, 0, 100)).ok_or(UstarError::BadName { offset })?;
            let prefix = text(field(header, 345, 155)).ok_or(UstarError::BadName { offset })?;
            return Ok(Some(Entry { prefix, name, data }));
        }
    }
}

impl<'a> Iterator for Archive<'a> {
    type Item = Result<Entry<'a>, UstarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.next_entry().transpose();
        if matches!(result, Some(Err(_))) {
            self.failed = true;
        }
        result
    }
}

fn field(header: &[u8], offset: usize, len: usize) -> &[u8] {
    let raw = header.get(offset..offset + len).unwrap_or(&[]);
    let end = raw.iter().position(|&byte| byte == 0).unwrap_or(raw.len());
    raw.get(..end).unwrap_or(&[])
}

fn text(bytes: &[u8]) -> Option<&str> {
    core::str::from_utf8(bytes).ok()
}

fn octal(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().copied().skip_while(|&b| b == b' ').take_while(|&b| b != b' ');
    let mut value: u64 = 0;
    let mut any = false;
    for digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(digit - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(name: &str, size: usize, kind: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(header("dir/", 0, b'5'));
        for (name, data) in files {
            out.extend(header(name, data.len(), b'0'));
            out.extend(*data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    #[test]
    fn lists_regular_files() {
        let bytes = archive(&[("init", b"\x7fELF"), ("system.bin", &[1; 700])]);
        let names: Vec<_> = Archive::new(&bytes).map(|e| e.unwrap().name).collect();
        assert_eq!(names, ["init", "system.bin"]);
        assert_eq!(Archive::find(&bytes, "system.bin").unwrap().unwrap().len(), 700);
        assert_eq!(Archive::find(&bytes, "missing").unwrap(), None);
    }

    /// xtask's layout for files handed out as frames: data at a page boundary, zeros to
    /// the next one, then the next header.
    #[test]
    fn zero_padding_to_a_page_boundary_is_skipped() {
        let mut out = Vec::new();
        out.extend(header("pad", 4096 - 2 * BLOCK, b'0'));
        out.extend(vec![0u8; 4096 - 2 * BLOCK]);
        out.extend(header("weights", 700, b'0'));
        assert_eq!(out.len() % 4096, 0, "the file's data starts on a page");
        out.extend(vec![7u8; 700]);
        out.resize(8192, 0);
        out.extend(header("after", 3, b'0'));
        out.extend(b"abc");
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        out.extend([0u8; 1024]);
        let names: Vec<&str> = Archive::new(&out).map(|e| e.unwrap().name).collect();
        assert_eq!(names, ["pad", "weights", "after"]);
        assert_eq!(Archive::find(&out, "weights").unwrap().map(<[u8]>::len), Some(700));
        // A zero block at a page boundary still ends the archive.
        let mut ended = out[..8192].to_vec();
        ended.extend([0u8; 512]);
        ended.extend(header("hidden", 0, b'0'));
        assert_eq!(Archive::new(&ended).count(), 2);
    }

    #[test]
    fn detects_corruption() {
        let mut bytes = archive(&[("init", b"abc")]);
        bytes[512] ^= 1; // the second header's name
        assert_eq!(Archive::new(&bytes).next(), Some(Err(UstarError::BadChecksum { offset: 512 })));
        let bytes = archive(&[("init", &[7; 600])]);
        assert_eq!(Archive::new(&bytes[..1100]).next(), Some(Err(UstarError::Truncated { offset: 512 })));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
            for entry in Archive::new(&bytes) { let _ = entry; }
        }

        #[test]
        fn flipped_bytes_never_panic_or_escape(at in 0usize..2560, value in any::<u8>()) {
            let mut bytes = archive(&[("a", &[1; 600]), ("b", &[2; 10])]);
            let index = at % bytes.len();
            bytes[index] = value;
            for entry in Archive::new(&bytes).flatten() {
                prop_assert!(entry.data.len() <= bytes.len());
            }
        }
    }
}
