//! Deflate and zlib streams written by hand (no compressor): a deflate bit writer, stored blocks and a
//! fixed-Huffman stream of zeros. A module of the PDF fixtures (`pdf_fixtures::deflate`), so
//! every test crate that includes those has it once.
//! No dependency but std.
#![allow(dead_code)]

/// A zlib stream of `data` in stored (uncompressed) deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = if data.is_empty() { vec![&[][..]] } else { data.chunks(65_535).collect() };
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A zlib stream of `n` zero bytes, written by hand: one fixed-Huffman block of a literal 0 and matches of
/// length 258 at distance 1 (13 bits per 258 bytes).
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    let matches = n.saturating_sub(1) / 258;
    let tail = n.saturating_sub(1) % 258;
    let mut bits = BitWriter::default();
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.literal(0);
    for _ in 0..matches {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
    }
    for _ in 0..tail {
        bits.literal(0);
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    // Adler-32 of zeros: a stays 1, b counts the bytes.
    let adler = (((n % 65_521) as u32) << 16) | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// Deflate bit order: fields least significant bit first, Huffman codes most significant bit first.
#[derive(Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl BitWriter {
    /// `n` bits of `value`, least significant first (header fields).
    pub fn put(&mut self, value: u64, n: u32) {
        self.acc |= value << self.len;
        self.len += n;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// A Huffman code of `n` bits, most significant first.
    pub fn code(&mut self, code: u64, n: u32) {
        let mut reversed = 0;
        for i in 0..n {
            reversed |= ((code >> i) & 1) << (n - 1 - i);
        }
        self.put(reversed, n);
    }

    /// A literal byte in the fixed Huffman code of a `BTYPE = 01` block.
    pub fn literal(&mut self, byte: u8) {
        if byte < 144 {
            self.code(0x30 + u64::from(byte), 8);
        } else {
            self.code(0x190 + u64::from(byte - 144), 9);
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}
