//! A minimal reader for the zip archives `torch.save` writes: entries stored (not
//! compressed), read in place from the file's bytes.
//!
//! The archive is located from its end, as Python's `zipfile` does it: the
//! end-of-central-directory record, then (when a ZIP64 locator sits just before it) the
//! ZIP64 end record, whose counts and offsets take precedence. torch (through miniz)
//! always writes the ZIP64 records, even for small files, but leaves the 32-bit record's
//! fields unsaturated. The central directory is taken to end where the ZIP64 end record
//! (or the end record) begins; any difference to its recorded offset is data prepended
//! to the archive, added to every local header offset.
//!
//! Sizes come from the central directory (torch sets the data-descriptor flag and writes
//! zeros in the local headers); a local header only gives the name and extra-field
//! lengths in front of the data. Every read is bounds-checked, and an entry's CRC-32 is
//! verified when it is read.
//!
//! This replaces the `zip` crate here, which refuses valid torch files whose first
//! central-directory entry is exactly 76 bytes long (a 21-character archive folder):
//! see `docs/upstream-zip-crate.md`.

use std::collections::HashMap;

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const END_SIG: &[u8; 4] = b"PK\x05\x06";
const END64_SIG: &[u8; 4] = b"PK\x06\x06";
const LOCATOR64_SIG: &[u8; 4] = b"PK\x06\x07";
const END_LEN: usize = 22;
const END64_LEN: usize = 56;
const LOCATOR64_LEN: usize = 20;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;

/// One central-directory entry.
#[derive(Debug, Clone)]
struct Entry {
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    /// Offset of the local header as recorded (before adding the prepended bytes).
    local: u64,
}

/// An opened archive: its entries by name, over the file's bytes.
pub(super) struct ZipArchive<'a> {
    bytes: &'a [u8],
    names: Vec<String>,
    entries: HashMap<String, Entry>,
    /// Bytes in front of the archive (0 for torch's files).
    prepended: u64,
    /// Entries whose CRC has been checked.
    verified: HashMap<String, (usize, usize)>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// `bytes[at..at + len]`, or `None` when it does not fit.
fn slice_at(bytes: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(at).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

impl<'a> ZipArchive<'a> {
    pub(super) fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let len = bytes.len();
        if len < END_LEN {
            return Err(format!(
                "not a readable zip archive: {len} bytes is too short for its end record"
            ));
        }
        // The last end record whose comment fits in the file (the comment is at most
        // 65535 bytes, so the search is bounded).
        let lowest = len.saturating_sub(END_LEN + 0xffff);
        let end = (lowest..=len - END_LEN)
            .rev()
            .find(|&p| {
                &bytes[p..p + 4] == END_SIG
                    && p + END_LEN + usize::from(u16_at(bytes, p + 20)) <= len
            })
            .ok_or(
                "not a readable zip archive: no end-of-central-directory record (the file is \
                 truncated or not a zip archive)",
            )?;
        let e = &bytes[end..end + END_LEN];
        let (disk, cd_disk) = (u16_at(e, 4), u16_at(e, 6));
        let (mut count, mut cd_size, mut cd_offset) = (
            u64::from(u16_at(e, 10)),
            u64::from(u32_at(e, 12)),
            u64::from(u32_at(e, 16)),
        );
        let mut multi_disk = disk != 0 || cd_disk != 0 || u16_at(e, 8) != u16_at(e, 10);
        // Where the central directory should end.
        let mut cd_end = end as u64;

        let locator = end
            .checked_sub(LOCATOR64_LEN)
            .filter(|&p| &bytes[p..p + 4] == LOCATOR64_SIG);
        if let Some(loc) = locator {
            let recorded = u64_at(bytes, loc + 8);
            let right_before = loc.checked_sub(END64_LEN).map(|p| p as u64);
            let is_end64 = |p: u64| {
                p.checked_add(END64_LEN as u64)
                    .is_some_and(|e| e <= loc as u64)
                    && slice_at(bytes, p, 4) == Some(END64_SIG.as_slice())
            };
            let at = [Some(recorded), right_before]
                .into_iter()
                .flatten()
                .find(|&p| is_end64(p))
                .ok_or_else(|| {
                    format!(
                        "not a readable zip archive: the ZIP64 locator at byte {loc} points \
                         to byte {recorded}, which holds no ZIP64 end record"
                    )
                })? as usize;
            let r = &bytes[at..at + END64_LEN];
            multi_disk |= u32_at(r, 16) != 0
                || u32_at(r, 20) != 0
                || u64_at(r, 24) != u64_at(r, 32)
                || u32_at(bytes, loc + 16) > 1;
            count = u64_at(r, 32);
            cd_size = u64_at(r, 40);
            cd_offset = u64_at(r, 48);
            cd_end = at as u64;
        }
        if multi_disk {
            return Err("not a readable zip archive: multi-disk archives are not supported".into());
        }
        let cd_start = cd_end.checked_sub(cd_size).ok_or_else(|| {
            format!(
                "not a readable zip archive: the central directory claims {cd_size} bytes, \
                 more than the {cd_end} bytes before its end record"
            )
        })?;
        let prepended = cd_start.checked_sub(cd_offset).ok_or_else(|| {
            format!(
                "not a readable zip archive: the central directory is recorded at byte \
                 {cd_offset} with {cd_size} bytes, which overlaps its end record at byte \
                 {cd_end} (the file is truncated or corrupt)"
            )
        })?;
        if count > cd_size / CENTRAL_LEN as u64 {
            return Err(format!(
                "not a readable zip archive: {count} entries cannot fit in a central \
                 directory of {cd_size} bytes"
            ));
        }
        let cd = slice_at(bytes, cd_start, cd_size)
            .ok_or("not a readable zip archive: the central directory lies outside the file")?;

        let mut names = Vec::with_capacity(count as usize);
        let mut entries = HashMap::with_capacity(count as usize);
        let mut p = 0usize;
        for i in 0..count {
            let bad = |what: &str| {
                format!(
                    "not a readable zip archive: central directory entry {i} (byte {}) {what}",
                    cd_start + p as u64
                )
            };
            let h = cd
                .get(p..p + CENTRAL_LEN)
                .ok_or_else(|| bad("runs past the directory's end"))?;
            if &h[..4] != CENTRAL_SIG {
                return Err(bad("has no central-directory signature"));
            }
            let name_len = usize::from(u16_at(h, 28));
            let extra_len = usize::from(u16_at(h, 30));
            let comment_len = usize::from(u16_at(h, 32));
            let name_start = p + CENTRAL_LEN;
            let extra_start = name_start + name_len;
            let next = extra_start + extra_len + comment_len;
            if next > cd.len() {
                return Err(bad("runs past the directory's end"));
            }
            let name = String::from_utf8_lossy(&cd[name_start..extra_start]).into_owned();
            let mut entry = Entry {
                flags: u16_at(h, 8),
                method: u16_at(h, 10),
                crc: u32_at(h, 16),
                compressed: u64::from(u32_at(h, 20)),
                uncompressed: u64::from(u32_at(h, 24)),
                local: u64::from(u32_at(h, 42)),
            };
            zip64_extra(&cd[extra_start..extra_start + extra_len], &mut entry)
                .map_err(|e| bad(&e))?;
            if !entries.contains_key(&name) {
                names.push(name.clone());
            }
            // As in Python's zipfile, a later entry of the same name wins.
            entries.insert(name, entry);
            p = next;
        }
        Ok(Self {
            bytes,
            names,
            entries,
            prepended,
            verified: HashMap::new(),
        })
    }

    /// Entry names in directory order.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The declared (uncompressed) size of an entry.
    pub(super) fn size(&self, name: &str) -> Option<u64> {
        self.entries.get(name).map(|e| e.uncompressed)
    }

    /// An entry's bytes, in place. Errors name the entry.
    pub(super) fn read(&mut self, name: &str) -> Result<&'a [u8], String> {
        if let Some(&(start, end)) = self.verified.get(name) {
            return Ok(&self.bytes[start..end]);
        }
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| format!("the archive has no entry {name}"))?;
        let bad = |what: String| format!("archive entry {name}: {what}");
        if e.flags & 1 != 0 {
            return Err(bad("is encrypted".into()));
        }
        if e.method != 0 {
            return Err(bad(format!(
                "is compressed (method {}); only stored entries, as torch.save writes \
                 them, are supported",
                e.method
            )));
        }
        if e.compressed != e.uncompressed {
            return Err(bad(format!(
                "is stored but its sizes differ ({} and {} bytes)",
                e.compressed, e.uncompressed
            )));
        }
        let local = e
            .local
            .checked_add(self.prepended)
            .ok_or_else(|| bad("local header offset overflows".into()))?;
        let header = slice_at(self.bytes, local, LOCAL_LEN as u64).ok_or_else(|| {
            bad(format!(
                "its local header at byte {local} lies outside the file ({} bytes; \
                 truncated?)",
                self.bytes.len()
            ))
        })?;
        if &header[..4] != LOCAL_SIG {
            return Err(bad(format!("no local header signature at byte {local}")));
        }
        let name_len = u64::from(u16_at(header, 26));
        let extra_len = u64::from(u16_at(header, 28));
        let local_name = slice_at(self.bytes, local + LOCAL_LEN as u64, name_len)
            .ok_or_else(|| bad("its local header runs past the end of the file".into()))?;
        if local_name != name.as_bytes() {
            return Err(bad(format!(
                "the local header at byte {local} names '{}'",
                String::from_utf8_lossy(local_name)
            )));
        }
        let start = local + LOCAL_LEN as u64 + name_len + extra_len;
        let data = slice_at(self.bytes, start, e.compressed).ok_or_else(|| {
            bad(format!(
                "its {} bytes at byte {start} run past the end of the file ({} bytes; \
                 truncated?)",
                e.compressed,
                self.bytes.len()
            ))
        })?;
        let crc = crc32(data);
        if crc != e.crc {
            return Err(bad(format!(
                "CRC-32 is {crc:08x}, the directory says {:08x} (the file is corrupt)",
                e.crc
            )));
        }
        let start = start as usize; // fits: `data` is a slice of `bytes`
        self.verified
            .insert(name.to_string(), (start, start + data.len()));
        Ok(data)
    }
}

/// Applies a ZIP64 extended-information extra field: each 32-bit field saturated at
/// 0xffffffff is followed, in order, by its 64-bit value.
fn zip64_extra(mut extra: &[u8], e: &mut Entry) -> Result<(), String> {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let len = usize::from(u16_at(extra, 2));
        let data = extra
            .get(4..4 + len)
            .ok_or("has an extra field that runs past its end")?;
        if id == 1 {
            let mut values = data.chunks_exact(8).map(|c| u64_at(c, 0));
            for field in [&mut e.uncompressed, &mut e.compressed, &mut e.local] {
                if *field == u64::from(u32::MAX) {
                    *field = values
                        .next()
                        .ok_or("has a ZIP64 extra field without the values it should hold")?;
                }
            }
        }
        extra = &extra[4 + len..];
    }
    Ok(())
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE, as zip uses it).
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// A one-entry stored archive: local header, data, central directory, end record.
    fn tiny(name: &str, data: &[u8], zip64: bool) -> Vec<u8> {
        let crc = crc32(data);
        let mut b = Vec::new();
        b.extend_from_slice(LOCAL_SIG);
        b.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&crc.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(data);
        let cd = b.len();
        b.extend_from_slice(CENTRAL_SIG);
        b.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&crc.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        let cd_size = b.len() - cd;
        if zip64 {
            let at = b.len();
            b.extend_from_slice(END64_SIG);
            b.extend_from_slice(&44u64.to_le_bytes());
            b.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&(cd_size as u64).to_le_bytes());
            b.extend_from_slice(&(cd as u64).to_le_bytes());
            b.extend_from_slice(LOCATOR64_SIG);
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&(at as u64).to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes());
        }
        b.extend_from_slice(END_SIG);
        b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        b.extend_from_slice(&(cd_size as u32).to_le_bytes());
        b.extend_from_slice(&(cd as u32).to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b
    }

    #[test]
    fn reads_plain_zip64_and_prepended_archives() {
        for zip64 in [false, true] {
            let b = tiny("a/data.pkl", b"hello", zip64);
            let mut z = ZipArchive::open(&b).unwrap();
            assert_eq!(z.names().collect::<Vec<_>>(), ["a/data.pkl"]);
            assert_eq!(z.read("a/data.pkl").unwrap(), b"hello");
            assert_eq!(z.read("a/data.pkl").unwrap(), b"hello");
            assert!(z.read("b").unwrap_err().contains("no entry b"));

            // Bytes in front of the archive (offsets then point 7 bytes short).
            let mut p = b"#!junk\n".to_vec();
            p.extend_from_slice(&b);
            let mut z = ZipArchive::open(&p).unwrap();
            assert_eq!(z.read("a/data.pkl").unwrap(), b"hello");
        }
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error() {
        let b = tiny("a/data.pkl", b"hello world", true);
        for cut in 0..b.len() {
            let r = ZipArchive::open(&b[..cut]).and_then(|mut z| z.read("a/data.pkl").map(|_| ()));
            assert!(r.is_err(), "cut at {cut}");
        }
        for i in 0..b.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut c = b.clone();
                c[i] ^= x;
                // Must not panic; most flips give an error.
                let _ = ZipArchive::open(&c).and_then(|mut z| z.read("a/data.pkl").map(|_| ()));
            }
        }
        // A flipped data byte fails the CRC.
        let mut c = b.clone();
        c[LOCAL_LEN + 10] ^= 1;
        let e = ZipArchive::open(&c)
            .unwrap()
            .read("a/data.pkl")
            .unwrap_err();
        assert!(e.contains("CRC-32"), "{e}");
    }
}
