//! Text extraction, download and file-block tests. Test files are generated here.

use std::io::{Cursor, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::extract::{
    detect, extract_in_background, extract_text, extract_text_with, file_block_info, DownloadConfig, DownloadError,
    Downloader, ExtractError, ExtractLimits, FileHint, FileKind, TrustedHost,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

#[path = "support/pdf.rs"]
mod pdf_fixtures;

use pdf_fixtures::deflate::BitWriter;

// ---------- generated files ----------

/// A minimal valid one-page PDF with a correct xref table and one text line per entry of `lines`.
fn minimal_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 18 Tf 72 720 Td 22 TL\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{}\nendstream", content.len(), content),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{}\nendobj\n", i + 1, object).as_bytes());
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

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, body) in entries {
        zip.start_file(*name, options).expect("start entry");
        zip.write_all(body.as_bytes()).expect("write entry");
    }
    zip.finish().expect("finish zip").into_inner()
}

const W_NS: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String =
        paragraphs.iter().map(|p| format!("<w:p><w:r><w:t xml:space=\"preserve\">{p}</w:t></w:r></w:p>")).collect();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W_NS}><w:body>{body}</w:body></w:document>"#
    );
    zip_of(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
        ),
        ("word/document.xml", &document),
    ])
}

/// A DOCX whose word/document.xml inflates to about `inflated` bytes: one text run of 'a's.
/// Written by hand (fixed-Huffman deflate of back-references, correct CRC and sizes) so that a
/// 1 GiB bomb takes ~7 MB and milliseconds to build, as an attacker's would.
fn zip_bomb_docx(inflated: u64) -> Vec<u8> {
    let prefix = format!("<w:document {W_NS}><w:body><w:p><w:r><w:t>");
    let suffix = "</w:t></w:r></w:p></w:body></w:document>";
    let runs = inflated / 258; // each run is <length 258, distance 1>: 258 more 'a's

    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    for b in prefix.bytes().chain([b'a']) {
        bits.literal(b);
    }
    for _ in 0..runs {
        bits.code(0b1100_0101, 8); // length code 285 = 258
        bits.code(0, 5); // distance code 0 = 1
    }
    for b in suffix.bytes() {
        bits.literal(b);
    }
    bits.code(0, 7); // end of block
    let data = bits.finish();

    // CRC of prefix + 'a' * (1 + 258 * runs) + suffix, by combining (no 1 GiB pass).
    let mut crc = crc32fast::Hasher::new();
    crc.update(prefix.as_bytes());
    crc.update(b"a");
    let mut power = crc32fast::Hasher::new();
    power.update(&[b'a'; 258]);
    let mut n = runs;
    while n > 0 {
        if n & 1 == 1 {
            crc.combine(&power);
        }
        let copy = power.clone();
        power.combine(&copy);
        n >>= 1;
    }
    let mut tail = crc32fast::Hasher::new();
    tail.update(suffix.as_bytes());
    crc.combine(&tail);
    let crc = crc.finalize();
    let size = prefix.len() as u64 + 1 + 258 * runs + suffix.len() as u64;
    let size = u32::try_from(size).expect("bomb under 4 GiB");
    let csize = u32::try_from(data.len()).expect("small");

    let name = b"word/document.xml";
    let mut out = Vec::with_capacity(data.len() + 200);
    let le16 = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
    let le32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    // Local file header.
    le32(&mut out, 0x0403_4b50);
    for v in [20u16, 0, 8, 0, 0x21] {
        le16(&mut out, v); // version, flags, deflate, time, date
    }
    for v in [crc, csize, size] {
        le32(&mut out, v);
    }
    le16(&mut out, name.len() as u16);
    le16(&mut out, 0);
    out.extend_from_slice(name);
    out.extend_from_slice(&data);
    // Central directory.
    let cd_offset = out.len() as u32;
    le32(&mut out, 0x0201_4b50);
    for v in [20u16, 20, 0, 8, 0, 0x21] {
        le16(&mut out, v);
    }
    for v in [crc, csize, size] {
        le32(&mut out, v);
    }
    for v in [name.len() as u16, 0, 0, 0, 0] {
        le16(&mut out, v);
    }
    le32(&mut out, 0); // external attributes
    le32(&mut out, 0); // local header offset
    out.extend_from_slice(name);
    let cd_size = out.len() as u32 - cd_offset;
    // End of central directory.
    le32(&mut out, 0x0605_4b50);
    for v in [0u16, 0, 1, 1] {
        le16(&mut out, v);
    }
    le32(&mut out, cd_size);
    le32(&mut out, cd_offset);
    le16(&mut out, 0);
    out
}

#[test]
fn hand_made_bomb_is_a_valid_zip() {
    // A small one inflates completely and correctly (sizes and CRC checked by the zip reader).
    let small = zip_bomb_docx(10_000);
    let out = extract_text(&small, hint("small.docx")).expect("valid docx");
    assert_eq!(out.text, "a".repeat(1 + 258 * (10_000 / 258)));
    assert!(!out.truncated);
}

fn hint(name: &str) -> FileHint {
    FileHint::new(Some(name), None)
}

/// Peak resident memory of this process (VmHWM) in KiB, after resetting it. Linux only; None elsewhere.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------- extraction ----------

#[test]
fn pdf_text_is_extracted() {
    let pdf = minimal_pdf(&["Quarterly report alpha", "Second line bravo"]);
    let out = extract_text(&pdf, hint("report.pdf")).expect("pdf extracts");
    assert_eq!(out.kind, FileKind::Pdf);
    assert!(out.text.contains("Quarterly report alpha"), "got {:?}", out.text);
    assert!(out.text.contains("Second line bravo"), "got {:?}", out.text);
    // Detected by magic bytes even with a misleading name and no name at all.
    assert_eq!(extract_text(&pdf, FileHint::default()).expect("pdf").kind, FileKind::Pdf);
}

#[test]
fn corrupt_pdf_is_an_error_not_a_panic() {
    let mut pdf = minimal_pdf(&["hello"]);
    pdf.truncate(pdf.len() / 2);
    let err = extract_text(&pdf, hint("broken.pdf")).expect_err("corrupt pdf fails");
    assert!(
        matches!(
            err,
            ExtractError::Corrupt { kind: FileKind::Pdf, .. } | ExtractError::Panicked(_) | ExtractError::PdfRefused(_)
        ),
        "{err:?}"
    );

    let garbage = b"%PDF-1.7\n this is not a pdf at all \x00\x01\x02 trailer << /Root 99 0 R >>".to_vec();
    assert!(extract_text(&garbage, hint("x.pdf")).is_err());
    assert!(extract_text(b"not a pdf", hint("x.pdf")).is_err());
}

#[test]
fn pdf_fixtures_are_valid_zlib() {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(&pdf_fixtures::zlib_zeros(100_000)[..]).read_to_end(&mut out).expect("valid zlib");
    assert_eq!(out, vec![0u8; 100_000]);
    let mut out = Vec::new();
    let data = b"stored blocks ".repeat(10_000);
    flate2::read::ZlibDecoder::new(&pdf_fixtures::zlib_stored(&data)[..]).read_to_end(&mut out).expect("valid zlib");
    assert_eq!(out, data);
}

#[test]
fn flate_compressed_pdf_text_is_extracted() {
    let pdf = pdf_fixtures::flate_text_pdf(&["Compressed content alpha", "Second line bravo"]);
    let out = extract_text(&pdf, hint("report.pdf")).expect("pdf extracts");
    assert!(out.text.contains("Compressed content alpha"), "got {:?}", out.text);
    let shallow = extract_text(&pdf_fixtures::nested_array_pdf(20), hint("nest.pdf")).expect("20 levels are fine");
    assert!(shallow.text.contains("Nested"), "got {:?}", shallow.text);
}

/// A small PDF whose content stream inflates to 1.1 GiB: lopdf would inflate it all (`read_to_end`); the pre-scan
/// stops at the decompression cap and refuses the file.
#[test]
fn pdf_flate_bomb_is_refused_within_memory_and_time() {
    let bomb = pdf_fixtures::flate_bomb_pdf(1100 << 20);
    assert!(bomb.len() < 10 << 20, "the bomb fits the download limit: {} bytes", bomb.len());
    reset_peak_rss();
    let before = peak_rss_kib();
    let started = Instant::now();
    let result = extract_text_with(&bomb, &hint("bomb.pdf"), &ExtractLimits::default());
    let elapsed = started.elapsed();
    let after = peak_rss_kib();
    let grown_mib = after.zip(before).map(|(a, b)| a.saturating_sub(b) / 1024);
    println!("PDF bomb: {} bytes in, {elapsed:?}, peak RSS grew by {grown_mib:?} MiB: {result:?}", bomb.len());
    match result {
        Err(ExtractError::PdfRefused(reason)) => assert!(reason.contains("decompress"), "{reason}"),
        other => panic!("the bomb is refused: {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    if let Some(grown) = grown_mib {
        assert!(grown < 300, "peak RSS grew by {grown} MiB");
    }
}

/// `[[[[…` 50,000 deep in an object, and `<< /A << /A …` 50,000 deep inside a compressed content stream: lopdf's
/// recursive parsers would overflow the stack (a process abort); the pre-scan refuses both.
#[test]
fn deeply_nested_pdf_is_refused_not_a_stack_overflow() {
    for (name, pdf) in [
        ("arrays", pdf_fixtures::nested_array_pdf(50_000)),
        ("content dictionaries", pdf_fixtures::nested_content_pdf(50_000)),
        ("an object inside stream data", pdf_fixtures::nested_inside_stream_pdf(50_000)),
    ] {
        let result = extract_text(&pdf, hint("nested.pdf"));
        match result {
            Err(ExtractError::PdfRefused(reason)) => assert!(reason.contains("nested deeper"), "{name}: {reason}"),
            other => panic!("{name}: refused, got {other:?}"),
        }
    }
}

/// Inside stream data (image and font bytes, where brackets are random) the scan allows up to 10,000 levels: the
/// parser's stack holds that many.
#[test]
fn nesting_allowed_inside_stream_data_fits_the_parser_stack() {
    let result = extract_text(&pdf_fixtures::nested_inside_stream_pdf(9_990), hint("deep.pdf"));
    println!("9,990 levels inside stream data: {result:?}");
}

/// A form XObject that draws itself: pdf-extract would recurse until the stack overflows.
#[test]
fn self_drawing_form_xobject_does_not_recurse() {
    let started = Instant::now();
    let result = extract_text(&pdf_fixtures::self_drawing_form_pdf(), hint("form.pdf"));
    println!("self-drawing form: {result:?}");
    if let Ok(out) = &result {
        assert!(out.text.contains("Before the form"), "{:?}", out.text);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn docx_text_is_extracted() {
    let bytes = docx(&["Project kickoff notes", "Budget &amp; timeline", "Ünïcode ✓"]);
    let out = extract_text(&bytes, hint("notes.docx")).expect("docx");
    assert_eq!(out.kind, FileKind::Docx);
    assert_eq!(out.text, "Project kickoff notes\nBudget & timeline\nÜnïcode ✓");
    assert!(!out.truncated);
    // Detected from the zip's entries without a name.
    assert_eq!(detect(&bytes, &FileHint::default()), FileKind::Docx);
}

#[test]
fn corrupt_docx_is_an_error() {
    let mut bytes = docx(&["hello"]);
    bytes.truncate(30);
    assert!(extract_text(&bytes, hint("a.docx")).is_err());
    let no_document = zip_of(&[("word/other.xml", "<x/>")]);
    assert!(extract_text(&no_document, hint("a.docx")).is_err());
}

#[test]
fn pptx_and_xlsx_text_is_extracted() {
    let a = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main""#;
    let slide = |t: &str| format!("<p:sld {a} xmlns:p=\"p\"><a:p><a:r><a:t>{t}</a:t></a:r></a:p></p:sld>");
    let pptx = zip_of(&[
        ("ppt/presentation.xml", "<p:presentation xmlns:p=\"p\"/>"),
        ("ppt/slides/slide10.xml", &slide("Tenth slide")),
        ("ppt/slides/slide2.xml", &slide("Second slide")),
    ]);
    let out = extract_text(&pptx, FileHint::default()).expect("pptx");
    assert_eq!(out.kind, FileKind::Pptx);
    assert_eq!(out.text, "Second slide\nTenth slide");

    let xlsx = zip_of(&[
        ("xl/workbook.xml", "<workbook/>"),
        (
            "xl/sharedStrings.xml",
            "<sst><si><t>Revenue</t></si><si><r><t>North</t></r><r><t> region</t></r><rPh><t>x</t></rPh></si></sst>",
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<worksheet><sheetData><row><c t="s"><v>0</v></c><c><v>1234.5</v></c><c t="inlineStr"><is><t>inline cell</t></is></c></row></sheetData></worksheet>"#,
        ),
    ]);
    let out = extract_text(&xlsx, hint("book.xlsx")).expect("xlsx");
    assert_eq!(out.kind, FileKind::Xlsx);
    assert!(out.text.contains("Revenue"), "{:?}", out.text);
    assert!(out.text.contains("North region"), "{:?}", out.text);
    assert!(out.text.contains("1234.5"), "{:?}", out.text);
    assert!(out.text.contains("inline cell"), "{:?}", out.text);
    assert!(!out.text.contains("\n0\n"), "shared-string indexes are not text: {:?}", out.text);
}

#[test]
fn html_tags_stripped_script_and_style_dropped() {
    let html = r#"<!DOCTYPE html><html><head><title>Page title</title><style>body { color: red }</style>
        <script>var secret = "<p>not text</p>";</script></head>
        <body><!-- a comment --><h1>Hello&nbsp;world</h1><p class='x' data-a="a>b">Fish &amp; chips &#169; &#x263A;</p>
        <ul><li>one</li><li>two</li></ul><table><tr><td>c1</td><td>c2</td></tr></table>x &lt; y <SCRIPT type="x">evil()</SCRIPT>end</body></html>"#;
    let out = extract_text(html.as_bytes(), hint("page.html")).expect("html");
    assert_eq!(out.kind, FileKind::Html);
    assert_eq!(out.text, "Page title\nHello world\nFish & chips © ☺\none\ntwo\nc1 c2\nx < y end");
    // Sniffed without a name.
    assert_eq!(detect(html.as_bytes(), &FileHint::default()), FileKind::Html);
}

#[test]
fn csv_txt_markdown_json_extracted() {
    let csv = "name,city,note\nAda,London,\"said \"\"hi\"\", left\"\nBob,Paris,\n";
    let out = extract_text(csv.as_bytes(), hint("people.csv")).expect("csv");
    assert_eq!(out.kind, FileKind::Csv);
    assert_eq!(out.text, "name\tcity\tnote\nAda\tLondon\tsaid \"hi\", left\nBob\tParis");

    let txt = "\u{feff}Plain text file with a known phrase: zebra crossing.\n";
    let out = extract_text(txt.as_bytes(), hint("readme.txt")).expect("txt");
    assert_eq!((out.kind, out.text.as_str()), (FileKind::Text, "Plain text file with a known phrase: zebra crossing."));

    let md = "# Title\n\nSome *markdown* text.";
    let out = extract_text(md.as_bytes(), hint("doc.md")).expect("md");
    assert_eq!((out.kind, out.text.as_str()), (FileKind::Markdown, md));

    let json = r#"{"title": "Launch plan", "tags": ["alpha", "beta \"quoted\""], "n": 3, "nested": {"deep": [[{"k": "leaf value"}]]}}"#;
    let out =
        extract_text(json.as_bytes(), FileHint::new(None, Some("application/json; charset=utf-8"))).expect("json");
    assert_eq!(out.kind, FileKind::Json);
    assert_eq!(out.text, "Launch plan\nalpha\nbeta \"quoted\"\nleaf value");

    // Unknown extension but UTF-8 text: indexed as text. UTF-16 with BOM is decoded.
    assert_eq!(extract_text(b"key = value", hint("settings.properties")).expect("text").text, "key = value");
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("hé".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    assert_eq!(extract_text(&utf16, hint("u.txt")).expect("utf16").text, "hé");
}

#[test]
fn unsupported_types_give_no_text_and_no_error() {
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    let out = extract_text(&png, hint("photo.png")).expect("unsupported is not an error");
    assert_eq!((out.kind, out.text.as_str()), (FileKind::Unsupported, ""));
    let binary = vec![0u8, 159, 146, 150, 1, 2, 3];
    assert_eq!(extract_text(&binary, FileHint::default()).expect("binary").kind, FileKind::Unsupported);
    let plain_zip = zip_of(&[("a.txt", "hello")]);
    assert_eq!(extract_text(&plain_zip, hint("a.zip")).expect("zip").kind, FileKind::Unsupported);
}

#[test]
fn output_text_is_capped_on_a_char_boundary() {
    let text = "é".repeat(1000); // 2000 bytes
    let limits = ExtractLimits { max_text_bytes: 1001, ..Default::default() };
    let out = extract_text_with(text.as_bytes(), &hint("a.txt"), &limits).expect("txt");
    assert!(out.truncated);
    assert_eq!(out.text.len(), 1000);
    // Default cap: 1 MiB.
    let big = "word ".repeat(400_000); // 2 MB
    let out = extract_text(big.as_bytes(), hint("big.txt")).expect("txt");
    assert!(out.truncated && out.text.len() <= 1 << 20);
}

#[test]
fn zip_bomb_docx_stops_at_the_decompression_cap() {
    let started = Instant::now();
    let bomb = zip_bomb_docx(1 << 30); // 1 GiB of text inside
    let built = started.elapsed();
    reset_peak_rss();
    let before = peak_rss_kib();
    let started = Instant::now();
    let result = extract_text(&bomb, hint("bomb.docx"));
    let took = started.elapsed();
    let peak = peak_rss_kib();
    println!(
        "zip bomb: {} bytes on disk, 1 GiB inflated; built in {built:?}; extraction {took:?}; peak RSS {:?} KiB (before {:?} KiB)",
        bomb.len(),
        peak,
        before
    );
    match result {
        Ok(out) => {
            assert!(out.truncated, "bomb must be cut");
            assert!(out.text.len() <= 1 << 20);
            assert!(out.text.starts_with("aaaa"));
        }
        Err(e) => assert!(matches!(e, ExtractError::DecompressedTooLarge { .. }), "{e:?}"),
    }
}

#[test]
fn deeply_nested_html_does_not_overflow_the_stack() {
    let depth = 100_000;
    let mut html = String::with_capacity(depth * 12);
    for _ in 0..depth {
        html.push_str("<div><span>");
    }
    html.push_str("deep treasure");
    for _ in 0..depth {
        html.push_str("</span></div>");
    }
    reset_peak_rss();
    let started = Instant::now();
    let out = extract_text(html.as_bytes(), hint("deep.html")).expect("nested html");
    let took = started.elapsed();
    println!(
        "nested html: depth {depth}, {} bytes; extraction {took:?}; peak RSS {:?} KiB",
        html.len(),
        peak_rss_kib()
    );
    assert_eq!(out.text, "deep treasure");

    // Deeply nested JSON: a streaming scan, no recursion either.
    let json = format!("{}\"inner\"{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(extract_text(json.as_bytes(), hint("deep.json")).expect("json").text, "inner");
}

#[test]
fn time_budget_stops_our_parsers() {
    let html = "<p>x</p>".repeat(200_000);
    let limits = ExtractLimits { timeout: Duration::ZERO, ..Default::default() };
    let err = extract_text_with(html.as_bytes(), &hint("a.html"), &limits).expect_err("deadline");
    assert!(matches!(err, ExtractError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn extraction_runs_in_background_with_timeout() {
    let out = extract_in_background(docx(&["async text"]), hint("a.docx"), ExtractLimits::default()).await.expect("ok");
    assert_eq!(out.text, "async text");
    let html = "<p>x</p>".repeat(2_000_000).into_bytes();
    let limits = ExtractLimits { timeout: Duration::from_millis(1), ..Default::default() };
    let err = extract_in_background(html, hint("a.html"), limits).await.expect_err("timeout");
    assert!(matches!(err, ExtractError::Timeout(_)), "{err:?}");
}

// ---------- block helpers ----------

#[test]
fn file_block_info_reads_hosted_and_external_files() {
    let hosted = json!({
        "object": "block", "id": "b1", "type": "file",
        "file": {
            "type": "file",
            "file": {"url": "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/abc/Quarterly%20Report.pdf?X-Amz-Expires=3600", "expiry_time": "2026-01-01T00:00:00.000Z"},
            "caption": [{"type": "text", "plain_text": "Q3 "}, {"type": "text", "plain_text": "numbers"}],
            "name": "Report Q3.pdf"
        }
    });
    let info = file_block_info(&hosted).expect("file block");
    assert_eq!(info.block_type, "file");
    assert!(info.notion_hosted);
    assert_eq!(info.name.as_deref(), Some("Report Q3.pdf"));
    assert_eq!(info.expiry_time.as_deref(), Some("2026-01-01T00:00:00.000Z"));
    assert_eq!(info.caption, "Q3 numbers");
    assert!(info.url.starts_with("https://prod-files-secure"));

    let mut unnamed = hosted.clone();
    unnamed["file"].as_object_mut().expect("object").remove("name");
    assert_eq!(file_block_info(&unnamed).expect("file").name.as_deref(), Some("Quarterly Report.pdf"));

    let external = json!({"type": "pdf", "pdf": {"type": "external", "external": {"url": "https://example.com/docs/spec.pdf"}, "caption": []}});
    let info = file_block_info(&external).expect("pdf block");
    assert_eq!((info.block_type.as_str(), info.notion_hosted), ("pdf", false));
    assert_eq!(info.name.as_deref(), Some("spec.pdf"));
    assert_eq!(info.hint().name.as_deref(), Some("spec.pdf"));

    let no_name = json!({"type": "file", "file": {"type": "external", "external": {"url": "https://example.com/"}}});
    assert_eq!(file_block_info(&no_name).expect("file").name, None);

    for bad in [
        json!({"type": "paragraph", "paragraph": {}}),
        json!({"type": "file", "file": {"type": "file_upload", "file_upload": {"id": "x"}}}),
        json!({"type": "file", "file": {"type": "file", "file": {}}}),
        json!({"type": "pdf"}),
        json!(null),
    ] {
        assert_eq!(file_block_info(&bad), None, "{bad}");
    }
}

// ---------- downloads ----------

mod server {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;

    #[derive(Default)]
    pub struct Counters {
        pub sent: AtomicU64,
        pub hits: AtomicUsize,
        pub in_flight: AtomicUsize,
        pub max_in_flight: AtomicUsize,
    }

    const TOTAL: u64 = 100 << 20; // 100 MiB
    const CHUNK: usize = 64 << 10;

    fn counted_body(counters: Arc<Counters>) -> Body {
        let stream = futures::stream::unfold(0u64, move |sent| {
            let counters = counters.clone();
            async move {
                if sent >= TOTAL {
                    return None;
                }
                counters.sent.fetch_add(CHUNK as u64, Ordering::SeqCst);
                Some((Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; CHUNK])), sent + CHUNK as u64))
            }
        });
        Body::from_stream(stream)
    }

    async fn chunked(State(c): State<Arc<Counters>>) -> Response {
        ([(header::CONTENT_TYPE, "text/plain")], counted_body(c)).into_response()
    }

    async fn declared(State(c): State<Arc<Counters>>) -> Response {
        let mut response = counted_body(c).into_response();
        response.headers_mut().insert(header::CONTENT_LENGTH, TOTAL.to_string().parse().expect("header"));
        response
    }

    async fn text(State(c): State<Arc<Counters>>) -> Response {
        c.hits.fetch_add(1, Ordering::SeqCst);
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "hello from the file host").into_response()
    }

    async fn docx_file() -> Response {
        (
            [(header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")],
            super::docx(&["downloaded docx text"]),
        )
            .into_response()
    }

    async fn slow(State(c): State<Arc<Counters>>) -> Response {
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        "slow".into_response()
    }

    async fn hang() -> Response {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "late".into_response()
    }

    pub async fn start() -> (String, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/chunked", get(chunked))
            .route("/declared", get(declared))
            .route("/file.txt", get(text))
            .route("/notes.docx", get(docx_file))
            .route("/slow", get(slow))
            .route("/hang", get(hang))
            .route(
                "/expired.pdf",
                get(|| async {
                    (
                        StatusCode::FORBIDDEN,
                        "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                    )
                }),
            )
            .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
            .route("/busy", get(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")], "") }))
            .route("/broken", get(|| async { StatusCode::BAD_GATEWAY }))
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), counters)
    }
}

/// The test file host is on loopback, which downloads refuse unless it is trusted.
fn downloader(config: DownloadConfig) -> Downloader {
    let loopback = TrustedHost::any_port("127.0.0.1").expect("host");
    Downloader::new(DownloadConfig { trusted_hosts: vec![loopback], ..config })
}

fn fast_config() -> DownloadConfig {
    DownloadConfig { requests_per_second: 0.0, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_stream_is_stopped_early() {
    let (base, counters) = server::start().await;
    let limit = 1 << 20;
    let d = downloader(DownloadConfig { max_bytes: limit, ..fast_config() });
    let err = d.download(&format!("{base}/chunked")).await.expect_err("too large");
    assert_eq!(err, DownloadError::TooLarge { limit });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = counters.sent.load(Ordering::SeqCst);
    println!("oversize chunked: limit {limit} B, server produced {sent} B of a 100 MiB body");
    assert!(sent < 20 << 20, "server sent {sent} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_limit_is_rejected_before_the_body() {
    let (base, counters) = server::start().await;
    let d = downloader(fast_config()); // default 10 MiB
    let outcome = d.fetch_and_extract(&format!("{base}/declared"), hint("big.txt")).await;
    assert_eq!(outcome.error_code, Some("too_large"));
    assert!(outcome.extracted.is_none());
    assert!(outcome.error.as_deref().unwrap_or("").contains("10485760"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = counters.sent.load(Ordering::SeqCst);
    println!("oversize declared: server produced {sent} B of a 100 MiB body");
    assert!(sent < 10 << 20, "server sent {sent} bytes");
}

#[tokio::test]
async fn status_codes_are_named() {
    let (base, _) = server::start().await;
    let d = downloader(DownloadConfig { timeout: Duration::from_millis(300), ..fast_config() });
    assert_eq!(d.download(&format!("{base}/expired.pdf")).await.expect_err("403"), DownloadError::Expired);
    assert_eq!(d.download(&format!("{base}/gone")).await.expect_err("404"), DownloadError::NotFound(404));
    assert_eq!(
        d.download(&format!("{base}/busy")).await.expect_err("429"),
        DownloadError::RateLimited { retry_after: Some(Duration::from_secs(7)) }
    );
    assert_eq!(d.download(&format!("{base}/broken")).await.expect_err("502"), DownloadError::Status(502));
    assert!(matches!(d.download(&format!("{base}/hang")).await.expect_err("timeout"), DownloadError::Timeout(_)));
    assert!(matches!(d.download("ftp://example.com/x").await.expect_err("scheme"), DownloadError::InvalidUrl(_)));
    assert!(matches!(d.download("not a url").await.expect_err("url"), DownloadError::InvalidUrl(_)));

    let outcome = d.fetch_and_extract(&format!("{base}/expired.pdf"), hint("expired.pdf")).await;
    assert!(outcome.expired);
    assert_eq!(outcome.error_code, Some("expired"));
}

#[tokio::test]
async fn fetch_and_extract_gets_text_and_content_type() {
    let (base, _) = server::start().await;
    let d = downloader(fast_config());
    let outcome = d.fetch_and_extract(&format!("{base}/file.txt"), FileHint::default()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "hello from the file host");
    assert_eq!(outcome.size, Some(24));
    assert_eq!(outcome.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(
        outcome.file_fields(Some("file.txt")),
        json!({"name": "file.txt", "content_type": "text/plain; charset=utf-8", "size": 24, "extracted": true})
    );
    let failed = d.fetch_and_extract(&format!("{base}/gone"), hint("gone.txt")).await;
    assert_eq!(failed.file_fields(None), json!({"extracted": false, "error": "file not found (404)"}));

    let outcome = d.fetch_and_extract(&format!("{base}/notes.docx"), hint("notes.docx")).await;
    assert_eq!(outcome.text(), "downloaded docx text");
    assert_eq!(outcome.extracted.as_ref().map(|e| e.kind), Some(FileKind::Docx));

    // A known binary type by name is not downloaded at all.
    let outcome = d.fetch_and_extract(&format!("{base}/chunked"), hint("movie.mp4")).await;
    assert!(outcome.skipped && outcome.error.is_none());
    assert_eq!(outcome.extracted.map(|e| e.kind), Some(FileKind::Unsupported));
}

#[tokio::test]
async fn expired_url_is_refreshed_once_by_rereading_the_block() {
    let (base, counters) = server::start().await;
    let d = downloader(fast_config());
    let block = |path: &str| json!({"type": "file", "file": {"type": "file", "file": {"url": format!("{base}{path}"), "expiry_time": "2020-01-01T00:00:00Z"}, "caption": []}});
    let refreshes = AtomicUsize::new(0);
    let outcome = d
        .fetch_block(&block("/expired.pdf"), || async {
            refreshes.fetch_add(1, Ordering::SeqCst);
            Some(block("/file.txt"))
        })
        .await;
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert!(outcome.refreshed);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "hello from the file host");
    assert_eq!(counters.hits.load(Ordering::SeqCst), 1);

    // Still expired after the refresh: reported, not retried again.
    let outcome = d.fetch_block(&block("/expired.pdf"), || async { Some(block("/expired.pdf")) }).await;
    assert!(outcome.refreshed && outcome.expired);
    // A failed refresh keeps the first outcome.
    let outcome = d.fetch_block(&block("/expired.pdf"), || async { None }).await;
    assert!(!outcome.refreshed && outcome.expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_is_bounded_and_requests_are_paced() {
    let (base, counters) = server::start().await;
    let d = downloader(DownloadConfig { concurrent_downloads: 2, ..fast_config() });
    let url = format!("{base}/slow");
    let tasks: Vec<_> = (0..6).map(|_| d.download(&url)).collect();
    for result in futures::future::join_all(tasks).await {
        result.expect("slow download");
    }
    assert_eq!(counters.max_in_flight.load(Ordering::SeqCst), 2);

    let paced = downloader(DownloadConfig { requests_per_second: 20.0, ..Default::default() });
    let url = format!("{base}/file.txt");
    let started = Instant::now();
    let tasks: Vec<_> = (0..5).map(|_| paced.download(&url)).collect();
    for result in futures::future::join_all(tasks).await {
        result.expect("paced download");
    }
    assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
}
