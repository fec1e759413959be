//! The pre-scan (steps 1 and 2 of the module documentation): a lexer over the raw file and over every stream it
//! can decode through bounded readers. Pure code, no lopdf.

use std::io::{self, Read, Write};

use super::{MAX_NESTING, MAX_NESTING_BINARY, MAX_XOBJECT_WORK};

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
