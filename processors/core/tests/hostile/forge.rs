//! Byte-level writers for zip and tar archives, with every field under the test's
//! control: the hostile cases need headers that the zip and tar crates refuse to write
//! (lying sizes, mismatched local and central records, PAX records that rename an entry,
//! devices, links, broken checksums).

use std::io::Write;

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ------------------------------------------------------------------ zip

/// One zip entry; the `Option` fields forge one header field (central, local or both).
#[derive(Clone, Default)]
pub struct Ze {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub deflate: bool,
    /// Unix mode in the external attributes (made by Unix).
    pub mode: Option<u32>,
    /// General-purpose flags in both headers (bit 3 adds a data descriptor).
    pub flags: u16,
    pub local_name: Option<Vec<u8>>,
    pub local_method: Option<u16>,
    pub local_crc: Option<u32>,
    pub local_sizes: Option<(u32, u32)>,
    pub local_flags: Option<u16>,
    /// Method number written in both headers (the data is then stored as given).
    pub method: Option<u16>,
    /// CRC-32 in both headers (and the descriptor).
    pub crc: Option<u32>,
    /// Uncompressed size in both headers (and the descriptor).
    pub size: Option<u32>,
    /// A forged data descriptor (flag bit 3 must be set).
    pub descriptor: Option<Vec<u8>>,
}

impl Ze {
    pub fn file(name: &str, data: &[u8]) -> Ze {
        Ze {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            deflate: true,
            ..Ze::default()
        }
    }

    pub fn stored(name: &str, data: &[u8]) -> Ze {
        Ze {
            deflate: false,
            ..Ze::file(name, data)
        }
    }

    pub fn dir(name: &str) -> Ze {
        Ze {
            name: name.as_bytes().to_vec(),
            mode: Some(0o040755),
            ..Ze::default()
        }
    }

    pub fn with(mut self, f: impl FnOnce(&mut Ze)) -> Ze {
        f(&mut self);
        self
    }

    fn method_number(&self) -> u16 {
        self.method.unwrap_or(if self.deflate { 8 } else { 0 })
    }

    fn payload(&self) -> Vec<u8> {
        if self.deflate && self.method.is_none() {
            deflate(&self.data)
        } else {
            self.data.clone()
        }
    }
}

/// Archive-level knobs of [`zip`].
#[derive(Clone, Default)]
pub struct ZipOpts {
    pub comment: Vec<u8>,
    /// Bytes after the end-of-central-directory record.
    pub trailing: Vec<u8>,
    /// Bytes between the last entry and the central directory.
    pub gap: Vec<u8>,
    /// Entry count written in the end record (both fields).
    pub count: Option<u16>,
    /// Central directory offset written in the end record.
    pub cd_offset: Option<u32>,
    /// "This disk" number in the end record.
    pub disk: Option<u16>,
}

pub fn local_header(e: &Ze, compressed_len: u32) -> Vec<u8> {
    let data_crc = e.crc.unwrap_or_else(|| crc32(&e.data));
    let size = e.size.unwrap_or(e.data.len() as u32);
    let flags = e.local_flags.unwrap_or(e.flags);
    let (crc, cs, us) = if flags & 8 != 0 {
        (0, 0, 0)
    } else {
        let (cs, us) = e.local_sizes.unwrap_or((compressed_len, size));
        (e.local_crc.unwrap_or(data_crc), cs, us)
    };
    let name = e.local_name.clone().unwrap_or_else(|| e.name.clone());
    let mut h = Vec::new();
    h.extend_from_slice(b"PK\x03\x04");
    h.extend_from_slice(&20u16.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&e.local_method.unwrap_or(e.method_number()).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&cs.to_le_bytes());
    h.extend_from_slice(&us.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&name);
    h
}

pub fn central_header(e: &Ze, compressed_len: u32, offset: u32) -> Vec<u8> {
    let crc = e.crc.unwrap_or_else(|| crc32(&e.data));
    let size = e.size.unwrap_or(e.data.len() as u32);
    let mut h = Vec::new();
    h.extend_from_slice(b"PK\x01\x02");
    let made_by: u16 = if e.mode.is_some() { (3 << 8) | 20 } else { 20 };
    h.extend_from_slice(&made_by.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes());
    h.extend_from_slice(&e.flags.to_le_bytes());
    h.extend_from_slice(&e.method_number().to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x21u16.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&compressed_len.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // extra
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&(e.mode.unwrap_or(0) << 16).to_le_bytes());
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(&e.name);
    h
}

pub fn end_record(count: u16, cd_size: u32, cd_offset: u32, disk: u16, comment: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"PK\x05\x06");
    h.extend_from_slice(&disk.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&cd_size.to_le_bytes());
    h.extend_from_slice(&cd_offset.to_le_bytes());
    h.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    h.extend_from_slice(comment);
    h
}

/// Writes the entries, in order, as local header + data (+ descriptor), then the central
/// directory and the end record.
pub fn zip_with(entries: &[Ze], o: &ZipOpts) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        // The CRC once, not per header.
        let e = &Ze {
            crc: Some(e.crc.unwrap_or_else(|| crc32(&e.data))),
            ..e.clone()
        };
        let payload = e.payload();
        let offset = out.len() as u32;
        out.extend(local_header(e, payload.len() as u32));
        out.extend_from_slice(&payload);
        if e.flags & 8 != 0 {
            let d = e.descriptor.clone().unwrap_or_else(|| {
                let mut d = b"PK\x07\x08".to_vec();
                d.extend_from_slice(&e.crc.unwrap_or_else(|| crc32(&e.data)).to_le_bytes());
                d.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                d.extend_from_slice(&e.size.unwrap_or(e.data.len() as u32).to_le_bytes());
                d
            });
            out.extend(d);
        }
        central.extend(central_header(e, payload.len() as u32, offset));
    }
    out.extend_from_slice(&o.gap);
    let cd_offset = o.cd_offset.unwrap_or(out.len() as u32);
    let cd_size = central.len() as u32;
    out.extend(central);
    out.extend(end_record(
        o.count.unwrap_or(entries.len() as u16),
        cd_size,
        cd_offset,
        o.disk.unwrap_or(0),
        &o.comment,
    ));
    out.extend_from_slice(&o.trailing);
    out
}

pub fn zip(entries: &[Ze]) -> Vec<u8> {
    zip_with(entries, &ZipOpts::default())
}

// ------------------------------------------------------------------ tar

/// One tar header block. `name` goes in the name field (and `prefix` in the ustar
/// prefix field); the checksum is computed unless `bad_checksum`.
#[derive(Clone, Default)]
pub struct Th {
    pub name: Vec<u8>,
    pub prefix: Vec<u8>,
    pub typeflag: u8,
    pub size: u64,
    pub link: Vec<u8>,
    pub mode: u32,
    pub bad_checksum: bool,
}

impl Th {
    pub fn new(typeflag: u8, name: &[u8], size: u64) -> Th {
        Th {
            name: name.to_vec(),
            typeflag,
            size,
            mode: 0o644,
            ..Th::default()
        }
    }

    pub fn block(&self) -> [u8; 512] {
        let mut h = [0u8; 512];
        fn put(h: &mut [u8], at: usize, len: usize, v: &[u8]) {
            assert!(v.len() <= len, "field too long");
            h[at..at + v.len()].copy_from_slice(v);
        }
        fn octal(h: &mut [u8], at: usize, len: usize, v: u64) {
            let s = format!("{v:0w$o}", w = len - 1);
            put(h, at, len, s.as_bytes());
        }
        put(&mut h, 0, 100, &self.name);
        octal(&mut h, 100, 8, self.mode as u64);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, self.size);
        octal(&mut h, 136, 12, 0);
        h[156] = self.typeflag;
        put(&mut h, 157, 100, &self.link);
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        put(&mut h, 345, 155, &self.prefix);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let sum = if self.bad_checksum { sum + 1 } else { sum };
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }
}

/// PAX extended header records (`<len> <key>=<value>\n`).
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// A tar stream under construction.
#[derive(Default, Clone)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    pub fn new() -> Tar {
        Tar(Vec::new())
    }

    /// A header and its data, padded to the block size.
    pub fn raw(mut self, h: Th, data: &[u8]) -> Tar {
        self.0.extend_from_slice(&h.block());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Tar {
        self.raw(Th::new(b'0', name.as_bytes(), data.len() as u64), data)
    }

    pub fn dir(self, name: &str) -> Tar {
        self.raw(
            Th {
                mode: 0o755,
                ..Th::new(b'5', name.as_bytes(), 0)
            },
            b"",
        )
    }

    /// A PAX `x` header applying `records` to the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Tar {
        let body = pax(records);
        self.raw(Th::new(b'x', b"./PaxHeaders/x", body.len() as u64), &body)
    }

    /// A GNU `L` long-name header for the next entry.
    pub fn long_name(self, name: &str) -> Tar {
        let mut body = name.as_bytes().to_vec();
        body.push(0);
        self.raw(Th::new(b'L', b"././@LongLink", body.len() as u64), &body)
    }

    /// The end-of-archive marker (two zero blocks).
    pub fn end(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}
