//! File assets: generated documents with known text, signed expiring URLs, and serving them.

use std::io::Write;

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::shapes::iso;

type HmacSha256 = Hmac<Sha256>;

/// How file URLs are built and checked.
#[derive(Clone, Debug)]
pub struct FileLinks {
    pub base_url: String,
    pub secret: Vec<u8>,
    pub ttl_secs: u64,
    pub now: i64,
}

impl FileLinks {
    pub fn signature(&self, id: &Uuid, expires: i64) -> String {
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(format!("{}:{}", id.simple(), expires).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A signed URL and its expiry time (ISO).
    pub fn signed_url(&self, id: &Uuid) -> (String, String) {
        let expires = self.now + self.ttl_secs as i64;
        let sig = self.signature(id, expires);
        (format!("{}/files/{}?expires={}&sig={}", self.base_url, id.simple(), expires, sig), iso_secs(expires))
    }

    pub fn external_url(&self, id: &Uuid) -> String {
        format!("{}/external/{}", self.base_url, id.simple())
    }

    /// `Ok` when the signature is right and the URL has not expired.
    pub fn check(&self, id: &Uuid, expires: i64, sig: &str) -> Result<(), &'static str> {
        let want = self.signature(id, expires);
        if want.len() != sig.len() || !constant_eq(want.as_bytes(), sig.as_bytes()) {
            return Err("SignatureDoesNotMatch");
        }
        if self.now >= expires {
            return Err("AccessDenied");
        }
        Ok(())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn iso_secs(ts: i64) -> String {
    // Expiry times keep their seconds (they are not Notion object timestamps).
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| iso(0))
}

/// S3-like XML error bodies.
pub fn s3_error(code: &str) -> String {
    let message = match code {
        "AccessDenied" => "Request has expired",
        "SignatureDoesNotMatch" => "The request signature we calculated does not match the signature you provided.",
        _ => "The specified key does not exist.",
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
}

fn pdf_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// A minimal valid PDF 1.4 with one page showing `lines` in Helvetica, with a correct xref table.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT\n/F1 12 Tf\n14 TL\n72 720 Td\n");
    for line in lines {
        content.push_str(&format!("({}) Tj\nT*\n", pdf_escape(line)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{}endstream", content.len(), content),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
    ];
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{}\nendobj\n", i + 1, obj).as_bytes());
    }
    let xref_at = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n", objects.len() + 1, xref_at).as_bytes(),
    );
    out
}

/// A PDF header followed by garbage: extraction must fail cleanly.
pub fn corrupt_pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Length 99999 >>\nstream\n"
        .to_vec();
    v.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    v.extend_from_slice(b"\nxref\n0 1\ntrailer\n<< /Root 9 0 R >>\nstartxref\n123456789\n%%EOF\n");
    v
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

const DOC_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;
const DOC_TAIL: &str = "</w:body></w:document>";

fn docx_with<F: FnOnce(&mut dyn Write) -> std::io::Result<()>>(write_body: F) -> std::io::Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zw = zip::ZipWriter::new(&mut buf);
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zw.start_file("[Content_Types].xml", opts).map_err(std::io::Error::other)?;
        zw.write_all(CONTENT_TYPES.as_bytes())?;
        zw.start_file("_rels/.rels", opts).map_err(std::io::Error::other)?;
        zw.write_all(RELS.as_bytes())?;
        let big = opts.large_file(false);
        zw.start_file("word/document.xml", big).map_err(std::io::Error::other)?;
        zw.write_all(DOC_HEAD.as_bytes())?;
        write_body(&mut zw)?;
        zw.write_all(DOC_TAIL.as_bytes())?;
        zw.finish().map_err(std::io::Error::other)?;
    }
    Ok(buf.into_inner())
}

/// A minimal DOCX (zip with word/document.xml), one paragraph per line.
pub fn docx(lines: &[&str]) -> Vec<u8> {
    docx_with(|w| {
        for line in lines {
            write!(w, "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>", xml_escape(line))?;
        }
        Ok(())
    })
    .unwrap_or_default()
}

/// A DOCX whose document.xml inflates to about `inflated_mb` MiB of paragraphs (a zip bomb).
pub fn docx_bomb(inflated_mb: usize) -> Vec<u8> {
    docx_with(|w| {
        let para = "<w:p><w:r><w:t>bomb bomb bomb bomb bomb bomb bomb bomb</w:t></w:r></w:p>";
        let chunk = para.repeat((1 << 20) / para.len());
        for _ in 0..inflated_mb {
            w.write_all(chunk.as_bytes())?;
        }
        Ok(())
    })
    .unwrap_or_default()
}

pub fn html(title: &str, paragraphs: &[&str]) -> Vec<u8> {
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><title>{}</title><style>p {{ color: #333; }}</style><script>var hidden = 'scriptnoise';</script></head><body>\n",
        xml_escape(title)
    );
    for p in paragraphs {
        s.push_str(&format!("<p>{}</p>\n", xml_escape(p)));
    }
    s.push_str("</body></html>\n");
    s.into_bytes()
}

/// An HTML document nested `depth` elements deep with text at the bottom.
pub fn nested_html(depth: usize, text: &str) -> Vec<u8> {
    let mut s = String::with_capacity(depth * 11 + text.len() + 64);
    s.push_str("<!DOCTYPE html><html><body>");
    for _ in 0..depth {
        s.push_str("<div>");
    }
    s.push_str(&xml_escape(text));
    for _ in 0..depth {
        s.push_str("</div>");
    }
    s.push_str("</body></html>");
    s.into_bytes()
}

pub fn csv(rows: &[&[&str]]) -> Vec<u8> {
    let mut s = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| {
                if c.contains(',') || c.contains('"') {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.to_string()
                }
            })
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s.into_bytes()
}

/// `len` bytes of text (an oversize file).
pub fn oversize(len: usize) -> Vec<u8> {
    let line = b"oversize filler line that nobody should ever index because the file is too big\n";
    let mut v = line.repeat(len / line.len() + 1);
    v.truncate(len);
    v
}

pub fn bytes(v: Vec<u8>) -> Bytes {
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_xref_offsets_point_at_objects() {
        let doc = pdf(&["Hello (world)", "second line"]);
        let tail = String::from_utf8_lossy(&doc[doc.len() - 40..]).to_string();
        let xref_at: usize = tail.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(doc[xref_at..].starts_with(b"xref"));
        let table = String::from_utf8_lossy(&doc[xref_at..]).to_string();
        let entries: Vec<&str> = table.lines().skip(3).take(5).collect();
        for (i, e) in entries.iter().enumerate() {
            let off: usize = e[..10].parse().unwrap();
            assert!(doc[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
            assert_eq!(e.len() + 1, 20);
        }
        assert!(String::from_utf8_lossy(&doc).contains("(Hello \\(world\\)) Tj"));
    }

    #[test]
    fn docx_is_a_zip_with_the_document() {
        let d = docx(&["alpha & beta"]);
        assert_eq!(&d[..2], b"PK");
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(d)).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut z.by_name("word/document.xml").unwrap(), &mut s).unwrap();
        assert!(s.contains("alpha &amp; beta"));
    }

    #[test]
    fn signed_urls_expire_and_check_signatures() {
        let mut l = FileLinks { base_url: "http://x".into(), secret: b"k".to_vec(), ttl_secs: 10, now: 1000 };
        let id = Uuid::from_u128(1);
        let sig = l.signature(&id, 1010);
        assert!(l.check(&id, 1010, &sig).is_ok());
        assert_eq!(l.check(&id, 1010, "00"), Err("SignatureDoesNotMatch"));
        l.now = 1010;
        assert_eq!(l.check(&id, 1010, &sig), Err("AccessDenied"));
    }
}
