//! Plain text, Markdown, CSV and JSON.

use std::borrow::Cow;

use super::{Budget, ExtractError, FileKind, TextSink};

/// Decodes text: UTF-8 (BOM dropped), UTF-16 with a BOM, else lossy UTF-8.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest);
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        Cow::Owned(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, false);
    }
    String::from_utf8_lossy(bytes)
}

pub(crate) fn plain(bytes: &[u8], sink: &mut TextSink) {
    sink.push_str(decode(bytes).trim());
}

/// CSV/TSV: fields unquoted, separated by a tab, one row a line. Not recursive.
pub(crate) fn csv(bytes: &[u8], sink: &mut TextSink, budget: &Budget) -> Result<(), ExtractError> {
    let text = decode(bytes);
    let delimiter = if !text.lines().next().unwrap_or("").contains(',') && text.contains('\t') { '\t' } else { ',' };
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut row_has_text = false;
    let mut n = 0usize;
    while let Some(c) = chars.next() {
        n += 1;
        if n.is_multiple_of(65536) {
            budget.check()?;
            if sink.is_full() {
                return Ok(());
            }
        }
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            c if c == delimiter => {
                flush_field(&mut field, sink, &mut row_has_text);
            }
            '\n' => {
                flush_field(&mut field, sink, &mut row_has_text);
                if row_has_text {
                    sink.newline();
                }
                row_has_text = false;
            }
            '\r' => {}
            c => field.push(c),
        }
    }
    flush_field(&mut field, sink, &mut row_has_text);
    Ok(())
}

fn flush_field(field: &mut String, sink: &mut TextSink, row_has_text: &mut bool) {
    let value = field.trim();
    if !value.is_empty() {
        if *row_has_text {
            sink.push_char('\t');
        }
        sink.push_str(value);
        *row_has_text = true;
    }
    field.clear();
}

/// JSON (and JSON lines): every string value, keys left out, one a line. A streaming scan, so deep
/// nesting costs nothing; each string literal is decoded by serde_json.
pub(crate) fn json(bytes: &[u8], sink: &mut TextSink, budget: &Budget) -> Result<(), ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut i = 0;
    let mut strings = 0usize;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        // Find the closing quote, skipping escapes.
        let start = i;
        let mut j = i + 1;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        if j >= bytes.len() {
            return Err(ExtractError::corrupt(FileKind::Json, "unterminated string"));
        }
        let literal = &bytes[start..=j];
        i = j + 1;
        let mut k = i;
        while k < bytes.len() && bytes[k].is_ascii_whitespace() {
            k += 1;
        }
        let is_key = bytes.get(k) == Some(&b':');
        if !is_key {
            let value: String =
                serde_json::from_slice(literal).map_err(|e| ExtractError::corrupt(FileKind::Json, e))?;
            let value = value.trim();
            if !value.is_empty() {
                sink.newline();
                sink.push_str(value);
            }
        }
        strings += 1;
        if strings.is_multiple_of(4096) {
            budget.check()?;
            if sink.is_full() {
                return Ok(());
            }
        }
    }
    Ok(())
}
