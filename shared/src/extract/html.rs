//! HTML/XML to text with a small streaming tokenizer: tags dropped, `script`/`style` content
//! dropped, block elements become line breaks, entities decoded, whitespace collapsed.
//! It is one loop with no element stack, so nesting depth costs nothing.

use super::{Budget, ExtractError, TextSink};

const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "thead",
    "tbody",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "hr",
    "form",
    "figure",
    "figcaption",
    "title",
    "address",
    "details",
    "summary",
    "body",
    "head",
    "html",
];
const CELL_TAGS: &[&str] = &["td", "th"];
const RAW_TEXT_TAGS: &[&str] = &["script", "style", "noscript", "template"];

pub(crate) fn strip(src: &str, sink: &mut TextSink, budget: &Budget) -> Result<(), ExtractError> {
    let b = src.as_bytes();
    let len = b.len();
    let mut i = 0;
    let mut pending_space = false;
    let mut steps = 0usize;
    while i < len {
        steps += 1;
        if steps.is_multiple_of(4096) {
            budget.check()?;
            if sink.is_full() {
                return Ok(());
            }
        }
        if b[i] != b'<' {
            let end = find_byte(b, i, b'<').unwrap_or(len);
            emit_text(&src[i..end], sink, &mut pending_space);
            i = end;
            continue;
        }
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            i = find(b, i + 4, b"-->").map_or(len, |p| p + 3);
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            let end = find(b, i + 9, b"]]>").unwrap_or(len);
            emit_text(&src[i + 9..end], sink, &mut pending_space);
            i = (end + 3).min(len);
            continue;
        }
        if matches!(rest.get(1), Some(b'!') | Some(b'?')) {
            i = find_byte(b, i, b'>').map_or(len, |p| p + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = i + 1 + usize::from(closing);
        let mut j = name_start;
        while j < len && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b':' | b'_')) {
            j += 1;
        }
        if j == name_start || !b[name_start].is_ascii_alphabetic() {
            // A lone '<' is text.
            emit_text("<", sink, &mut pending_space);
            i += 1;
            continue;
        }
        let name = src[name_start..j].to_ascii_lowercase();
        let name = name.rsplit(':').next().unwrap_or("").to_owned();
        let tag_end = skip_attributes(b, j);
        let self_closing = tag_end > 0 && b[tag_end - 1] == b'/';
        i = (tag_end + 1).min(len);
        if !closing && !self_closing && RAW_TEXT_TAGS.contains(&name.as_str()) {
            // Skip to the matching end tag; the end tag itself is read on the next turn.
            i = find_ci(b, i, format!("</{name}").as_bytes()).unwrap_or(len);
            continue;
        }
        if BLOCK_TAGS.contains(&name.as_str()) {
            sink.newline();
            pending_space = false;
        } else if CELL_TAGS.contains(&name.as_str()) {
            pending_space = true;
        }
    }
    Ok(())
}

/// Returns the index of the '>' that ends a tag (or `len`), honouring quoted attribute values.
fn skip_attributes(b: &[u8], mut k: usize) -> usize {
    let mut quote: Option<u8> = None;
    let mut after_equals = false;
    while k < b.len() {
        let c = b[k];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                if c == b'>' {
                    return k;
                }
                if (c == b'"' || c == b'\'') && after_equals {
                    quote = Some(c);
                }
                if c == b'=' {
                    after_equals = true;
                } else if !c.is_ascii_whitespace() {
                    after_equals = false;
                }
            }
        }
        k += 1;
    }
    b.len()
}

/// Writes a text run: entities decoded, whitespace runs collapsed to one space (never at the
/// start of a line).
fn emit_text(raw: &str, sink: &mut TextSink, pending_space: &mut bool) {
    let mut rest = raw;
    while !rest.is_empty() {
        let pos = rest.find(|c: char| c.is_whitespace() || c == '&' || c == '\u{a0}');
        let (word, tail) = match pos {
            Some(p) => rest.split_at(p),
            None => (rest, ""),
        };
        if !word.is_empty() {
            visible(word, sink, pending_space);
        }
        let Some(c) = tail.chars().next() else { break };
        if c == '&' {
            match decode_entity(&tail[1..]) {
                Some((ch, used)) => {
                    if ch.is_whitespace() {
                        *pending_space = true;
                    } else {
                        visible(ch.encode_utf8(&mut [0u8; 4]), sink, pending_space);
                    }
                    rest = &tail[1 + used..];
                }
                None => {
                    visible("&", sink, pending_space);
                    rest = &tail[1..];
                }
            }
        } else {
            *pending_space = true;
            rest = &tail[c.len_utf8()..];
        }
    }
}

fn visible(s: &str, sink: &mut TextSink, pending_space: &mut bool) {
    if *pending_space {
        sink.space();
        *pending_space = false;
    }
    sink.push_str(s);
}

/// Decodes `name;` / `#123;` / `#x1F;` at the start of `s`; returns the char and bytes used.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let semi = s.as_bytes().iter().take(32).position(|&c| c == b';')?;
    let body = &s[..semi];
    let c = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
    } else {
        match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
            "copy" => '©',
            "reg" => '®',
            "trade" => '™',
            "mdash" => '—',
            "ndash" => '–',
            "hellip" => '…',
            "laquo" => '«',
            "raquo" => '»',
            "lsquo" => '‘',
            "rsquo" => '’',
            "ldquo" => '“',
            "rdquo" => '”',
            "bull" => '•',
            "middot" => '·',
            "euro" => '€',
            "pound" => '£',
            "yen" => '¥',
            "cent" => '¢',
            "deg" => '°',
            "times" => '×',
            "divide" => '÷',
            "sect" => '§',
            "para" => '¶',
            _ => return None,
        }
    };
    Some((c, semi + 1))
}

fn find_byte(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    b.get(from..)?.iter().position(|&c| c == needle).map(|p| p + from)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn find_ci(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
}
