//! Zip-based office files: DOCX, PPTX, XLSX (Office Open XML) and ODF, read with `zip` and
//! `quick-xml`. All entries together decompress at most `max_decompressed_bytes`; past that the
//! read stops and the text so far is kept (marked truncated).

use std::io::{self, BufReader, Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;
use zip::ZipArchive;

use super::{Budget, ExtractError, FileKind, TextSink};

/// Which office format a zip holds, by its well-known entries. None when the zip is unreadable.
pub(crate) fn container_kind(bytes: &[u8]) -> Option<FileKind> {
    // Unreadable zip: None lets the extension decide, and that reader reports the error.
    let archive = ZipArchive::new(Cursor::new(bytes)).ok()?;
    let kind = if archive.index_for_name("word/document.xml").is_some() {
        FileKind::Docx
    } else if archive.index_for_name("ppt/presentation.xml").is_some() {
        FileKind::Pptx
    } else if archive.index_for_name("xl/workbook.xml").is_some() {
        FileKind::Xlsx
    } else if archive.index_for_name("content.xml").is_some() && archive.index_for_name("mimetype").is_some() {
        FileKind::Odf
    } else {
        FileKind::Unsupported
    };
    Some(kind)
}

/// Returns true when the decompression cap stopped the read.
pub(crate) fn extract(
    kind: FileKind,
    bytes: &[u8],
    sink: &mut TextSink,
    budget: &Budget,
) -> Result<bool, ExtractError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::corrupt(kind, e))?;
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let entries: Vec<(String, Mode)> = match kind {
        FileKind::Docx => ["word/document.xml", "word/footnotes.xml", "word/endnotes.xml"]
            .iter()
            .filter(|n| names.iter().any(|m| m == *n))
            .map(|n| (n.to_string(), Mode::Docx))
            .collect(),
        FileKind::Pptx => numbered(&names, "ppt/slides/slide").into_iter().map(|n| (n, Mode::Pptx)).collect(),
        FileKind::Xlsx => {
            let mut list = Vec::new();
            if names.iter().any(|n| n == "xl/sharedStrings.xml") {
                list.push(("xl/sharedStrings.xml".to_owned(), Mode::XlsxStrings));
            }
            list.extend(numbered(&names, "xl/worksheets/sheet").into_iter().map(|n| (n, Mode::XlsxSheet)));
            list
        }
        _ => vec![("content.xml".to_owned(), Mode::Odf)],
    };
    if kind == FileKind::Docx && entries.is_empty() {
        return Err(ExtractError::corrupt(kind, "no word/document.xml"));
    }
    let mut counter = Counter { remaining: budget.max_decompressed_bytes, hit: false };
    for (name, mode) in entries {
        let Some(index) = archive.index_for_name(&name) else {
            continue;
        };
        let file = archive.by_index(index).map_err(|e| ExtractError::corrupt(kind, e))?;
        let result = read_xml(Capped { inner: file, counter: &mut counter }, mode, sink, budget);
        if counter.hit {
            return if sink.is_empty() {
                Err(ExtractError::DecompressedTooLarge { kind, limit: budget.max_decompressed_bytes })
            } else {
                Ok(true)
            };
        }
        if let Err(e) = result {
            return Err(match e {
                XmlError::Budget(e) => e,
                XmlError::Xml(message) => ExtractError::corrupt(kind, format!("{name}: {message}")),
            });
        }
        if sink.is_full() {
            break;
        }
        sink.newline();
    }
    Ok(false)
}

/// Entries `{prefix}{N}.xml`, in numeric order.
fn numbered(names: &[String], prefix: &str) -> Vec<String> {
    let mut found: Vec<(u32, String)> = names
        .iter()
        .filter_map(|n| {
            let number = n.strip_prefix(prefix)?.strip_suffix(".xml")?.parse().ok()?;
            Some((number, n.clone()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Docx,
    Pptx,
    XlsxStrings,
    XlsxSheet,
    Odf,
}

enum XmlError {
    Budget(ExtractError),
    Xml(String),
}

fn read_xml<R: Read>(input: R, mode: Mode, sink: &mut TextSink, budget: &Budget) -> Result<(), XmlError> {
    let mut reader = Reader::from_reader(BufReader::new(input));
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = false;
    let mut buf = Vec::new();
    // Depth inside elements whose text we keep, and inside elements we skip.
    let mut keep = 0usize;
    let mut skip = 0usize;
    let mut shared_cell = false;
    let mut events = 0usize;
    loop {
        buf.clear();
        events += 1;
        if events.is_multiple_of(4096) {
            budget.check().map_err(XmlError::Budget)?;
            if sink.is_full() {
                return Ok(());
            }
        }
        let event = reader.read_event_into(&mut buf).map_err(|e| XmlError::Xml(e.to_string()))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if is_skipped(mode, name) {
                    skip += 1;
                } else if is_kept(mode, name, shared_cell) {
                    keep += 1;
                } else if mode == Mode::XlsxSheet && name == b"c" {
                    shared_cell = e.try_get_attribute("t").ok().flatten().is_some_and(|a| a.value.as_ref() == b"s");
                }
                start_break(mode, name, sink);
            }
            Event::Empty(e) => {
                let name = e.local_name();
                start_break(mode, name.as_ref(), sink);
                if mode == Mode::Odf && name.as_ref() == b"s" {
                    sink.push_char(' ');
                }
            }
            Event::End(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if is_skipped(mode, name) {
                    skip = skip.saturating_sub(1);
                } else if is_kept(mode, name, shared_cell) {
                    keep = keep.saturating_sub(1);
                }
                end_break(mode, name, sink);
            }
            Event::Text(t) if keep > 0 && skip == 0 => {
                let text = t.decode().map_err(|e| XmlError::Xml(e.to_string()))?;
                sink.push_str(&text);
            }
            Event::CData(t) if keep > 0 && skip == 0 => {
                sink.push_str(&String::from_utf8_lossy(&t));
            }
            Event::GeneralRef(r) if keep > 0 && skip == 0 => {
                if r.is_char_ref() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        sink.push_char(c);
                    }
                } else if let Ok(name) = r.decode() {
                    if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                        sink.push_str(s);
                    }
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Elements whose text is kept.
fn is_kept(mode: Mode, name: &[u8], shared_cell: bool) -> bool {
    match mode {
        Mode::Docx | Mode::Pptx | Mode::XlsxStrings => name == b"t",
        Mode::XlsxSheet => name == b"t" || (name == b"v" && !shared_cell),
        // ODF: everything under office:body (text, presentation and spreadsheet bodies).
        Mode::Odf => name == b"body",
    }
}

/// Elements whose text is dropped even inside a kept element.
fn is_skipped(mode: Mode, name: &[u8]) -> bool {
    match mode {
        Mode::XlsxStrings => name == b"rPh",
        Mode::Docx => name == b"delText" || name == b"instrText",
        _ => false,
    }
}

fn start_break(mode: Mode, name: &[u8], sink: &mut TextSink) {
    match (mode, name) {
        (Mode::Docx, b"tab") | (Mode::Odf, b"tab") => sink.push_char('\t'),
        (Mode::Docx, b"br") | (Mode::Docx, b"cr") | (Mode::Pptx, b"br") | (Mode::Odf, b"line-break") => sink.newline(),
        _ => {}
    }
}

fn end_break(mode: Mode, name: &[u8], sink: &mut TextSink) {
    match (mode, name) {
        (Mode::Docx, b"p") | (Mode::Pptx, b"p") | (Mode::XlsxStrings, b"si") | (Mode::XlsxSheet, b"row") => {
            sink.newline()
        }
        (Mode::Odf, b"p") | (Mode::Odf, b"h") => sink.newline(),
        (Mode::Docx, b"tc") | (Mode::XlsxSheet, b"c") | (Mode::Odf, b"table-cell") => sink.space(),
        _ => {}
    }
}

struct Counter {
    remaining: u64,
    hit: bool,
}

/// A reader that fails once the shared decompression budget is spent.
struct Capped<'a, R> {
    inner: R,
    counter: &'a mut Counter,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.counter.remaining == 0 {
            // Budget spent: fine if the entry has ended, an error if there is more.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.counter.hit = true;
            return Err(io::Error::other("decompressed size limit reached"));
        }
        let max = buf.len().min(usize::try_from(self.counter.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.counter.remaining -= n as u64;
        Ok(n)
    }
}
