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

use std::io::{self, Read, Write};
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

// ---------------------------------------------------------------------------------------------------------------
// Pre-scan

/// What the lexer found in one buffer.
#[derive(Default)]
struct Lexed {
    /// Streams: (dictionary bytes, data bytes up to `endstream`).
    streams: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    do_ops: u64,
}

/// Refuses what lopdf cannot be trusted with; see the module documentation. `Err` holds the reason.
pub fn scan(bytes: &[u8], max_decoded: u64) -> Result<(), String> {
    let lexed = lex(bytes, MAX_NESTING, true)?;
    if find(bytes, b"/Encrypt", 0).is_some() {
        return Err("encrypted PDFs are not scanned".into());
    }
    let mut remaining = max_decoded;
    let mut largest = 0u64;
    let mut do_ops = lexed.do_ops;
    for (dict, data) in &lexed.streams {
        let dict = &bytes[dict.clone()];
        check_xref_widths(dict)?;
        let filters = filters(dict)?;
        let decodable =
            filters.iter().take_while(|f| matches!(f.as_slice(), b"FlateDecode" | b"LZWDecode" | b"ASCII85Decode"));
        let decodable: Vec<&Vec<u8>> = decodable.collect();
        // Stream data is lexed too: an xref offset may point lopdf at an object hidden inside it.
        lex(&bytes[data.clone()], MAX_NESTING_BINARY, false)?;
        // Decoded from the data's start to the end of the file: a zlib stream ends where it ends, and a shorter
        // `/Length` (lopdf's view) can only give less.
        let raw = &bytes[data.start..];
        if decodable.is_empty() {
            largest = largest.max(stream_len(dict, &bytes[data.clone()]));
            continue;
        }
        let mut current: Vec<u8> = Vec::new();
        for (i, filter) in decodable.iter().enumerate() {
            let input: &[u8] = if i == 0 { raw } else { &current };
            let out = decode(filter, input, remaining)
                .ok_or_else(|| format!("streams decompress to more than {max_decoded} bytes"))?;
            current = out;
        }
        remaining -= current.len() as u64;
        largest = largest.max(current.len() as u64);
        let binary = contains_any(
            dict,
            &[b"/Image", b"/Length1", b"/Length2", b"/Length3", b"/FontFile", b"C0C", b"/OpenType", b"/Type1C"],
        );
        let inner = lex(&current, if binary { MAX_NESTING_BINARY } else { MAX_NESTING }, false)?;
        do_ops += inner.do_ops;
    }
    if do_ops.saturating_mul(largest) > MAX_XOBJECT_WORK {
        return Err(format!("{do_ops} XObject uses of streams up to {largest} bytes"));
    }
    Ok(())
}

/// Lexes PDF syntax for nesting depth, `Do` operators and (at top level) streams.
fn lex(b: &[u8], max_depth: usize, top: bool) -> Result<Lexed, String> {
    let mut out = Lexed::default();
    // Open arrays (`[`) and dictionaries (`<`); a closer that does not match the innermost opener closes nothing,
    // so the count never falls below what a parser could reach.
    let mut nest: Vec<u8> = Vec::new();
    // Starts of the open dictionaries, and the last one closed.
    let mut open: Vec<usize> = Vec::new();
    let mut last_dict: Option<(usize, usize)> = None;
    let mut i = 0;
    let deeper = |nest: &mut Vec<u8>, opener: u8| {
        nest.push(opener);
        if nest.len() > max_depth {
            Err(format!("objects nested deeper than {max_depth}"))
        } else {
            Ok(())
        }
    };
    while i < b.len() {
        match b[i] {
            b'%' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                // Literal string: balanced parentheses, backslash escapes.
                let mut level = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'<' if b.get(i + 1) == Some(&b'<') => {
                deeper(&mut nest, b'<')?;
                open.push(i);
                i += 1;
            }
            b'<' => {
                while i < b.len() && b[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if b.get(i + 1) == Some(&b'>') => {
                if nest.last() == Some(&b'<') {
                    nest.pop();
                }
                if let Some(start) = open.pop() {
                    last_dict = Some((start, i + 2));
                }
                i += 1;
            }
            b'/' => {
                // A name: `/Do` is no operator.
                i += 1;
                while i < b.len() && is_regular(b[i]) {
                    i += 1;
                }
                continue;
            }
            b'[' => deeper(&mut nest, b'[')?,
            b']' if nest.last() == Some(&b'[') => {
                nest.pop();
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'*') {
                    i += 1;
                }
                let word = &b[start..i];
                let delimited = start == 0 || !is_regular(b[start - 1]);
                if delimited && word == b"Do" {
                    out.do_ops += 1;
                }
                if top && delimited && word == b"stream" {
                    let (dict_start, dict_end) = match last_dict {
                        Some((s, e)) if b[e..start].iter().all(u8::is_ascii_whitespace) => (s, e),
                        _ => return Err("a stream without its dictionary".into()),
                    };
                    let mut data = i;
                    if b.get(data) == Some(&b'\r') {
                        data += 1;
                    }
                    if b.get(data) == Some(&b'\n') {
                        data += 1;
                    }
                    let length = direct_length(&b[dict_start..dict_end]);
                    let end = length
                        .and_then(|len| data.checked_add(len))
                        .filter(|&end| end <= b.len() && ends_stream(b, end))
                        .or_else(|| find(b, b"endstream", data))
                        .ok_or("a stream without endstream")?;
                    out.streams.push((dict_start..dict_end, data..end));
                    last_dict = None;
                    i = end;
                    continue;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

fn is_regular(c: u8) -> bool {
    !(c.is_ascii_whitespace() || b"()<>[]{}/%".contains(&c))
}

/// True when `endstream` follows `at`, after optional end-of-line bytes.
fn ends_stream(b: &[u8], at: usize) -> bool {
    let rest = &b[at..];
    let skip = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
    rest[skip..].starts_with(b"endstream")
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn contains_any(haystack: &[u8], needles: &[&[u8]]) -> bool {
    needles.iter().any(|n| find(haystack, n, 0).is_some())
}

/// The stream dictionary's `/Length` when it is a direct integer.
fn direct_length(dict: &[u8]) -> Option<usize> {
    let at = find(dict, b"/Length", 0)? + 7;
    if dict.get(at).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None; // /Length1 and friends
    }
    let rest = &dict[at..];
    let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let after = &rest[digits..];
    let after = &after[after.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    // `12 0 R` is a reference, not a length.
    if digits == 0 || after.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn stream_len(dict: &[u8], raw: &[u8]) -> u64 {
    direct_length(dict).map_or(raw.len(), |len| len.min(raw.len())) as u64
}

/// The names after `/Filter` (one name or an array of names), `#xx` escapes decoded. A filter given any other
/// way (a reference) is not decoded by lopdf either, so it is no filter.
fn filters(dict: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some(at) = find(dict, b"/Filter", 0) else { return Ok(Vec::new()) };
    let rest = &dict[at + 7..];
    let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    let (list, single) = match rest.first() {
        Some(b'[') => (&rest[1..rest.iter().position(|&c| c == b']').ok_or("an unterminated /Filter array")?], false),
        Some(b'/') => (rest, true),
        _ => return Ok(Vec::new()),
    };
    let mut names = Vec::new();
    let mut i = 0;
    while i < list.len() {
        if list[i] == b'/' {
            let start = i + 1;
            i = start;
            while i < list.len() && is_regular(list[i]) {
                i += 1;
            }
            names.push(unescape_name(&list[start..i])?);
            if single {
                break;
            }
        } else {
            i += 1;
        }
    }
    Ok(names)
}

fn unescape_name(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'#' {
            let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("a malformed name escape")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Cross-reference streams name their field widths in `/W`; lopdf allocates a buffer of each width.
fn check_xref_widths(dict: &[u8]) -> Result<(), String> {
    let Some(at) = find(dict, b"/W", 0).filter(|&at| dict.get(at + 2).is_some_and(|c| !is_regular(*c))) else {
        return Ok(());
    };
    let rest = &dict[at + 2..];
    let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    if rest.first() != Some(&b'[') {
        return Ok(());
    }
    let end = rest.iter().position(|&c| c == b']').unwrap_or(rest.len());
    let text = String::from_utf8_lossy(&rest[1..end]);
    if text.split_whitespace().any(|w| w.parse::<u8>().map_or(true, |n| n > 8)) {
        return Err("cross-reference field widths over 8 bytes".into());
    }
    Ok(())
}

/// Decodes `input` with one filter, giving up (None) past `limit` bytes of output.
fn decode(filter: &[u8], input: &[u8], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match filter {
        b"FlateDecode" => {
            let reader = flate2::read::ZlibDecoder::new(input);
            // A corrupt stream ends the output where lopdf's does (it keeps what it read).
            let _ = reader.take(limit + 1).read_to_end(&mut out);
        }
        b"LZWDecode" => {
            // Early change as lopdf's default; any table size gives at most 4096 bytes per code.
            let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let mut capped = CappedWriter { out: &mut out, limit };
            let _ = decoder.into_stream(&mut capped).decode_all(input);
        }
        _ => ascii85(input, &mut out, limit),
    }
    (out.len() as u64 <= limit).then_some(out)
}

/// ASCII85 as lopdf reads it: up to the first byte outside the alphabet (`~>` included), `z` for four zeros.
fn ascii85(input: &[u8], out: &mut Vec<u8>, limit: u64) {
    let mut group: u64 = 0;
    let mut count = 0;
    for &c in input {
        if out.len() as u64 > limit {
            return;
        }
        match c {
            b'z' if count == 0 => out.extend_from_slice(&[0; 4]),
            c if c.is_ascii_whitespace() => {}
            b'!'..=b'u' => {
                group = group * 85 + u64::from(c - b'!');
                count += 1;
                if count == 5 {
                    out.extend_from_slice(&(group as u32).to_be_bytes());
                    group = 0;
                    count = 0;
                }
            }
            _ => break,
        }
    }
    if count > 1 {
        for _ in count..5 {
            group = group * 85 + 84;
        }
        out.extend_from_slice(&(group as u32).to_be_bytes()[..count - 1]);
    }
}

struct CappedWriter<'a> {
    out: &'a mut Vec<u8>,
    limit: u64,
}

impl Write for CappedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.out.len() as u64 + data.len() as u64 > self.limit {
            self.out
                .extend_from_slice(&data[..(self.limit + 1 - self.out.len() as u64).min(data.len() as u64) as usize]);
            return Err(io::Error::other("limit"));
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
