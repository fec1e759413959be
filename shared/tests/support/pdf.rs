//! PDF fixtures generated in code (no binaries committed), shared by the extraction, fuzz and end-to-end tests
//! through `#[path]`. No dependency but std.
#![allow(dead_code)]

// Relative to this file's directory, however the including crate reaches it.
#[path = "deflate.rs"]
pub mod deflate;

#[allow(unused_imports)]
pub use deflate::{zlib_stored, zlib_zeros};

/// A PDF of `objects` (object `i + 1` is `objects[i]`, catalog first) with a correct xref table.
pub fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n", objects.len() + 1, xref).as_bytes(),
    );
    out
}

/// A stream object: `dict` entries (without `/Length`) and its data.
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";
const PAGES: &str = "<< /Type /Pages /Kids [3 0 R] /Count 1 >>";
const FONT: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

fn page(extra_resources: &str) -> Vec<u8> {
    format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> {extra_resources} >> >>"
    )
    .into_bytes()
}

fn text_ops(lines: &[&str]) -> String {
    let mut content = String::from("BT /F1 18 Tf 72 720 Td 22 TL\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj T*\n"));
    }
    content.push_str("ET");
    content
}

/// One page, one text line per entry of `lines`, its content stream `FlateDecode`d (as real PDFs have it).
pub fn flate_text_pdf(lines: &[&str]) -> Vec<u8> {
    let content = zlib_stored(text_ops(lines).as_bytes());
    pdf_of(&[CATALOG.into(), PAGES.into(), page(""), stream("/Filter /FlateDecode", &content), FONT.into()])
}

/// A Flate bomb: one page whose content stream inflates to `inflated` zero bytes (at about 1:160).
pub fn flate_bomb_pdf(inflated: u64) -> Vec<u8> {
    pdf_of(&[
        CATALOG.into(),
        PAGES.into(),
        page(""),
        stream("/Filter /FlateDecode", &zlib_zeros(inflated)),
        FONT.into(),
    ])
}

/// `depth` nested arrays in an object of the file itself (the catalog points at it).
pub fn nested_array_pdf(depth: usize) -> Vec<u8> {
    let mut nest = "[".repeat(depth).into_bytes();
    nest.extend_from_slice("]".repeat(depth).as_bytes());
    pdf_of(&[
        b"<< /Type /Catalog /Pages 2 0 R /Nest 6 0 R >>".to_vec(),
        PAGES.into(),
        page(""),
        stream("", text_ops(&["Nested"]).as_bytes()),
        FONT.into(),
        nest,
    ])
}

/// `depth` nested dictionaries inside a Flate-compressed content stream (lopdf parses content recursively too).
pub fn nested_content_pdf(depth: usize) -> Vec<u8> {
    let mut content = text_ops(&["Nested content"]).into_bytes();
    content.extend_from_slice(b"\n/Tag ");
    content.extend_from_slice("<< /A ".repeat(depth).as_bytes());
    content.extend_from_slice(b"1");
    content.extend_from_slice(" >>".repeat(depth).as_bytes());
    content.extend_from_slice(b" BDC EMC");
    pdf_of(&[
        CATALOG.into(),
        PAGES.into(),
        page(""),
        stream("/Filter /FlateDecode", &zlib_stored(&content)),
        FONT.into(),
    ])
}

/// A form XObject that draws itself (`/Fx Do` inside `/Fx`): pdf-extract follows `Do` without a cycle check.
pub fn self_drawing_form_pdf() -> Vec<u8> {
    let page_content = format!("{}\n/Fx Do", text_ops(&["Before the form"]));
    let form = "BT /F1 12 Tf 72 600 Td (Inside the form) Tj ET\n/Fx Do";
    pdf_of(&[
        CATALOG.into(),
        PAGES.into(),
        page("/XObject << /Fx 6 0 R >>"),
        stream("", page_content.as_bytes()),
        FONT.into(),
        stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> /XObject << /Fx 6 0 R >> >>",
            form.as_bytes(),
        ),
    ])
}

/// An object nested `depth` deep hidden inside a stream's data, where the xref table points lopdf at it (a lexer
/// that skips stream data would never see it).
pub fn nested_inside_stream_pdf(depth: usize) -> Vec<u8> {
    let mut hidden = b"% data\n7 0 obj\n".to_vec();
    hidden.extend_from_slice("[".repeat(depth).as_bytes());
    hidden.extend_from_slice("]".repeat(depth).as_bytes());
    hidden.extend_from_slice(b"\nendobj\n");
    let pdf = pdf_of(&[
        CATALOG.into(),
        PAGES.into(),
        page(""),
        stream("", text_ops(&["Hidden"]).as_bytes()),
        FONT.into(),
        stream("", &hidden),
    ]);
    let body_end = pdf.windows(5).rposition(|w| w == b"xref\n").expect("xref");
    let mut out = pdf[..body_end].to_vec();
    let offset_of = |needle: &[u8]| out.windows(needle.len()).position(|w| w == needle).expect("object");
    let offsets: Vec<usize> = (1..=7).map(|n| offset_of(format!("{n} 0 obj\n").as_bytes())).collect();
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 8\n0000000000 65535 f \n");
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size 8 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes());
    out
}
