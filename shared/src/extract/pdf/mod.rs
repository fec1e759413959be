//! PDF through `pdf-extract` (which uses `lopdf`), behind our own limits.
//!
//! lopdf has no limit on decompressed stream sizes (`read_to_end`) nor on the nesting of arrays and
//! dictionaries (recursive parsers), and pdf-extract follows `Do` operators into form XObjects with no cycle
//! check. An allocation failure or a stack overflow aborts the process, which `catch_unwind` cannot stop. We
//! chose a pre-scan over a subprocess: the Lambda package holds one binary and the tests run the handlers
//! in-process, so a re-exec would be untested where it matters; the scan is pure code, tested directly. It is
//! conservative: what it cannot scan confidently is refused ("PDF not extracted: ..."), never handed to lopdf.
//!
//! 1. [`scan`] lexes the raw file (strings, comments, streams skipped) and refuses nesting deeper than
//!    [`MAX_NESTING`], encrypted files (their streams cannot be measured), a stream without a dictionary or an
//!    `endstream`, and xref `/W` widths over 8 bytes (lopdf allocates them).
//! 2. Every stream lopdf could decode (Flate, LZW, ASCII85 chains) is decoded here through bounded readers,
//!    from its start to the end of the file (a shorter `/Length` can only decode less); all together may give
//!    at most `max_decompressed_bytes`. Each decoded stream is lexed too (object streams and content are
//!    parsed by the same recursive parsers).
//! 3. The document is loaded and the `XObject` entries in every XObject's resources are pointed at one empty
//!    stream, so `Do` reaches at most one level: no cycle, no exponential fan-out. `Do` count × largest stream
//!    is bounded as well.
//! 4. Text goes to a bounded writer, which stops pdf-extract once the text cap or the deadline is reached.
//! 5. All this runs on a thread with a large stack (the nesting left after the scan needs little), one PDF at
//!    a time per process.
//!
//! Not covered: other unbounded work inside lopdf/pdf-extract that this scan does not know of. A subprocess
//! with rlimits would bound that too; it needs a way to run the helper from the test binaries.

mod scan;

pub use scan::scan;

use std::io::{self, Write};
use std::sync::{Condvar, Mutex};

use pdf_extract::{Dictionary, Document, Object, ObjectId, PlainTextOutput, Stream};

use super::{Budget, ExtractError, FileKind, TextSink};

/// Deepest nesting of arrays and dictionaries accepted in the file and in decoded streams.
pub const MAX_NESTING: usize = 100;
/// Deepest nesting accepted inside image and font data, where brackets are random bytes.
const MAX_NESTING_BINARY: usize = 10_000;
/// `Do` operators × the largest stream: the work pdf-extract may do re-reading form XObjects.
const MAX_XOBJECT_WORK: u64 = 1 << 30;
/// Stack of the extraction thread.
const STACK_BYTES: usize = 256 << 20;
/// Decoded stream bytes accepted per PDF (at most `max_decompressed_bytes`): the scan holds one decoded stream
/// at a time and lopdf what pages need, so this bounds a PDF's memory beside the download buffers.
pub const MAX_PDF_DECODED: u64 = 32 << 20;

/// PDFs are scanned and parsed one at a time per process: each may take tens of MiB, and the work is CPU-bound
/// (a 256 MB Lambda has a fraction of a core). A PDF waiting here spends its own time budget.
static ONE_AT_A_TIME: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

struct Turn;

impl Turn {
    /// Waits for the turn, at most until the budget's deadline.
    fn take(budget: &Budget) -> Result<Turn, ExtractError> {
        let (busy, freed) = &ONE_AT_A_TIME;
        let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            budget.check()?;
            busy = freed.wait_timeout(busy, budget.remaining()).unwrap_or_else(|e| e.into_inner()).0;
        }
        *busy = true;
        Ok(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (busy, freed) = &ONE_AT_A_TIME;
        *busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        freed.notify_one();
    }
}

pub(crate) fn extract(bytes: &[u8], sink: &mut TextSink, budget: &Budget) -> Result<(), ExtractError> {
    let _turn = Turn::take(budget)?;
    scan(bytes, budget.max_decompressed_bytes.min(MAX_PDF_DECODED)).map_err(ExtractError::PdfRefused)?;
    let cap = budget.max_text_bytes.saturating_mul(4).max(4096);
    let text = std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("pdf-extract".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || load_and_extract(bytes, cap, budget))
            .map_err(|e| ExtractError::corrupt(FileKind::Pdf, format!("no extraction thread: {e}")))?;
        worker.join().unwrap_or_else(|panic| Err(ExtractError::Panicked(super::panic_message(panic.as_ref()))))
    })?;
    // pdf-extract pads with blank lines and spaces; keep one space / one newline.
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            sink.newline();
            sink.push_str(&line);
        }
        if sink.is_full() {
            break;
        }
    }
    Ok(())
}

fn load_and_extract(bytes: &[u8], cap: usize, budget: &Budget) -> Result<String, ExtractError> {
    let mut doc = Document::load_mem(bytes).map_err(|e| ExtractError::corrupt(FileKind::Pdf, e))?;
    if doc.is_encrypted() {
        return Err(ExtractError::PdfRefused("encrypted".into()));
    }
    flatten_xobjects(&mut doc);
    let mut out = BoundedText { buf: Vec::new(), cap, budget, full: false, timed_out: false };
    let result = {
        let writer: &mut dyn Write = &mut out;
        let mut output = PlainTextOutput::new(writer);
        pdf_extract::output_doc(&doc, &mut output)
    };
    if out.timed_out {
        budget.check()?;
    }
    match result {
        Ok(()) => {}
        // The writer stopped it: keep the text so far.
        Err(_) if out.full => {}
        Err(e) => return Err(ExtractError::corrupt(FileKind::Pdf, e)),
    }
    Ok(String::from_utf8_lossy(&out.buf).into_owned())
}

/// Text output that refuses more than `cap` bytes, or anything after the deadline, which ends pdf-extract's walk.
struct BoundedText<'a> {
    buf: Vec<u8>,
    cap: usize,
    budget: &'a Budget,
    full: bool,
    timed_out: bool,
}

impl Write for BoundedText<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.full = true;
        } else if self.budget.check().is_err() {
            self.full = true;
            self.timed_out = true;
        }
        if self.full {
            return Err(io::Error::other("text limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// In the resources of every XObject, points each `XObject` entry at one empty stream (pdf-extract recurses into
/// `Do` without a cycle check, and panics on a name it cannot find); a form without resources would use its
/// caller's, so it gets its own. Pages keep theirs: `Do` reaches one level, whose own `Do`s draw nothing.
fn flatten_xobjects(doc: &mut Document) {
    let resources_of = |doc: &Document, dict: &Dictionary| -> Option<Dictionary> {
        let object = dict.get(b"Resources").ok()?;
        let object = match object {
            Object::Reference(id) => doc.get_object(*id).ok()?,
            other => other,
        };
        object.as_dict().ok().cloned()
    };
    let mut xobjects: Vec<ObjectId> = Vec::new();
    for object in doc.objects.values() {
        let dict = match object {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &s.dict,
            _ => continue,
        };
        let Some(resources) = resources_of(doc, dict) else { continue };
        let Ok(entry) = resources.get(b"XObject") else { continue };
        let table = match entry {
            Object::Reference(id) => doc.get_object(*id).ok().and_then(|o| o.as_dict().ok()),
            other => other.as_dict().ok(),
        };
        for (_, value) in table.into_iter().flat_map(|t| t.iter()) {
            if let Object::Reference(id) = value {
                xobjects.push(*id);
            }
        }
    }
    xobjects.sort_unstable();
    xobjects.dedup();
    if xobjects.is_empty() {
        return;
    }
    let empty = doc.add_object(Stream::new(Dictionary::new(), Vec::new()));
    for id in xobjects {
        let mut resources = match doc.objects.get(&id) {
            Some(Object::Stream(s)) => resources_of(doc, &s.dict).unwrap_or_default(),
            _ => continue,
        };
        let names: Vec<Vec<u8>> = match resources.get(b"XObject") {
            Ok(Object::Reference(table)) => doc
                .get_object(*table)
                .ok()
                .and_then(|o| o.as_dict().ok())
                .map(|t| t.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default(),
            Ok(Object::Dictionary(t)) => t.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        };
        let mut table = Dictionary::new();
        for name in names {
            table.set(name, Object::Reference(empty));
        }
        resources.set("XObject", Object::Dictionary(table));
        if let Some(Object::Stream(s)) = doc.objects.get_mut(&id) {
            s.dict.set("Resources", Object::Dictionary(resources));
        }
    }
}
