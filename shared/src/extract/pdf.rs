//! PDF through `pdf-extract` (which uses `lopdf`).

use super::{ExtractError, FileKind, TextSink};

pub(crate) fn extract(bytes: &[u8], sink: &mut TextSink) -> Result<(), ExtractError> {
    let text = pdf_extract::extract_text_from_mem(bytes).map_err(|e| ExtractError::corrupt(FileKind::Pdf, e))?;
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
