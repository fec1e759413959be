//! Fuzzing (property-based) of the text extractors, which read whatever a file host sends: PDF, OOXML (DOCX,
//! PPTX, XLSX), ODF, HTML, XML, CSV, JSON and plain text get arbitrary bytes and mutated valid files. The
//! property: each call returns (text or an error) within a time bound, never panics through, never aborts; our
//! own parsers (everything but PDF and the zip reader) never even panic inside.

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use shared::extract::{extract_text_with, ExtractError, ExtractLimits, FileHint};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

#[path = "support/pdf.rs"]
mod pdf_fixtures;

const NAMES: [&str; 11] =
    ["x.pdf", "x.docx", "x.pptx", "x.xlsx", "x.odt", "x.html", "x.xml", "x.csv", "x.json", "x.txt", "x.md"];

fn limits() -> ExtractLimits {
    ExtractLimits { timeout: Duration::from_secs(2), max_text_bytes: 64 << 10, max_decompressed_bytes: 8 << 20 }
}

/// Extracts under a 2 s budget and checks the properties; a few seconds of slack for a slow CI machine.
fn check(bytes: &[u8], name: &str) {
    let started = Instant::now();
    let result = extract_text_with(bytes, &FileHint::new(Some(name), None), &limits());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{name}: {elapsed:?} for {} bytes", bytes.len());
    if let Err(ExtractError::Panicked(message)) = &result {
        // pdf-extract and zip unwrap inside; the panic is caught and reported. Our parsers must not panic.
        let foreign = name.ends_with(".pdf") || [".docx", ".pptx", ".xlsx", ".odt"].iter().any(|e| name.ends_with(e));
        assert!(foreign, "{name}: our parser panicked: {message}");
    }
    if let Ok(out) = &result {
        assert!(out.text.len() <= limits().max_text_bytes, "{name}: text capped");
    }
}

fn zip_of(entries: &[(&str, String)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in entries {
        zip.start_file(*name, SimpleFileOptions::default()).expect("entry");
        zip.write_all(body.as_bytes()).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

/// Valid files of each kind, to be mutated.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let w = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;
    let docx = zip_of(&[(
        "word/document.xml",
        format!("<w:document {w}><w:body><w:p><w:r><w:t>Hello docx</w:t></w:r></w:p></w:body></w:document>"),
    )]);
    let pptx = zip_of(&[
        ("ppt/presentation.xml", "<p:presentation/>".into()),
        ("ppt/slides/slide1.xml", "<p:sld><a:t>Slide text</a:t></p:sld>".into()),
    ]);
    let xlsx = zip_of(&[
        ("xl/workbook.xml", "<workbook/>".into()),
        ("xl/sharedStrings.xml", "<sst><si><t>Cell text</t></si></sst>".into()),
        (
            "xl/worksheets/sheet1.xml",
            "<worksheet><sheetData><row><c t=\"s\"><v>0</v></c></row></sheetData></worksheet>".into(),
        ),
    ]);
    let odt = zip_of(&[
        ("mimetype", "application/vnd.oasis.opendocument.text".into()),
        ("content.xml", "<office:document-content><text:p>Odf text</text:p></office:document-content>".into()),
    ]);
    vec![
        ("x.pdf", pdf_fixtures::flate_text_pdf(&["Fuzzed PDF text", "second line"])),
        ("x.pdf", pdf_fixtures::self_drawing_form_pdf()),
        ("x.pdf", pdf_fixtures::nested_array_pdf(30)),
        ("x.docx", docx),
        ("x.pptx", pptx),
        ("x.xlsx", xlsx),
        ("x.odt", odt),
        ("x.html", b"<!doctype html><html><head><style>p{}</style></head><body><p>Hi <b>there</b></p><script>x()</script></body></html>".to_vec()),
        ("x.xml", b"<?xml version=\"1.0\"?><root a=\"1\"><item>One</item><![CDATA[two]]><!-- c --></root>".to_vec()),
        ("x.csv", b"name,note\n\"Ann\",\"says \"\"hi\"\"\"\nBob,\"multi\nline\"\n".to_vec()),
        ("x.json", br#"{"a": "one", "b": ["two", {"c": "thr\u00e9e"}], "d": 1}"#.to_vec()),
        ("x.txt", "plain text ✓\n".as_bytes().to_vec()),
    ]
}

/// One edit of a file: overwrite, insert, delete a range, or truncate.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => (any::<usize>(), prop::sample::select(vec![
            b"[".to_vec(), b"<<".to_vec(), b">>".to_vec(), b"(".to_vec(), b")".to_vec(), b"stream".to_vec(),
            b"endstream".to_vec(), b"/Filter /FlateDecode".to_vec(), b" 0 R".to_vec(), b"\"".to_vec(), b"<".to_vec(),
            b"<!--".to_vec(), b"\\".to_vec(), b"PK\x03\x04".to_vec(), b"\xFF\xFE".to_vec(), b"\x00".to_vec(),
        ])).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<usize>(), 0usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Set(i, b) if !bytes.is_empty() => bytes[i % len] = *b,
            Edit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Delete(i, n) if !bytes.is_empty() => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_under_every_name(bytes in prop::collection::vec(any::<u8>(), 0..2048), name in prop::sample::select(NAMES.to_vec())) {
        check(&bytes, name);
    }

    #[test]
    fn arbitrary_bytes_after_a_magic(magic in prop::sample::select(vec![&b"%PDF-1.7\n"[..], b"PK\x03\x04", b"<html>", b"<?xml "]), tail in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&tail);
        check(&bytes, "file.bin");
    }

    #[test]
    fn mutated_valid_files(index in any::<prop::sample::Index>(), edits in prop::collection::vec(arb_edit(), 1..8)) {
        let samples = samples();
        let (name, bytes) = &samples[index.index(samples.len())];
        check(&apply(bytes.clone(), &edits), name);
    }
}

#[test]
fn samples_extract_before_mutation() {
    for (name, bytes) in samples() {
        let result = extract_text_with(&bytes, &FileHint::new(Some(name), None), &limits());
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}
