//! The budgets of one extraction: its deadline and sizes ([`Budget`]) and the capped text it writes ([`TextSink`]).

use std::time::{Duration, Instant};

use super::{ExtractError, ExtractLimits};

/// Deadline and size budget shared by the parsers.
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    pub max_text_bytes: usize,
    pub max_decompressed_bytes: u64,
}

impl Budget {
    pub(super) fn new(limits: &ExtractLimits) -> Self {
        Self {
            deadline: Instant::now() + limits.timeout,
            timeout: limits.timeout,
            max_text_bytes: limits.max_text_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn check(&self) -> Result<(), ExtractError> {
        if Instant::now() >= self.deadline {
            Err(ExtractError::Timeout(self.timeout))
        } else {
            Ok(())
        }
    }
}

/// Output text with a byte cap and light whitespace handling.
pub(crate) struct TextSink {
    buf: String,
    max: usize,
    pub truncated: bool,
}

impl TextSink {
    pub fn new(max: usize) -> Self {
        Self { buf: String::new(), max, truncated: false }
    }

    pub fn is_full(&self) -> bool {
        self.truncated
    }

    pub fn is_empty(&self) -> bool {
        self.buf.trim().is_empty()
    }

    pub fn push_str(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        let room = self.max.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf.push_str(&s[..cut]);
            self.truncated = true;
        }
    }

    pub fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.push_str(c.encode_utf8(&mut tmp));
    }

    /// Adds a line break unless the text is empty or already ends with one.
    pub fn newline(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with('\n') {
            self.push_char('\n');
        }
    }

    /// Adds a space unless the text is empty or already ends with whitespace.
    pub fn space(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with(|c: char| c.is_whitespace()) {
            self.push_char(' ');
        }
    }

    pub fn finish(self) -> String {
        let trimmed = self.buf.trim_end();
        if trimmed.len() == self.buf.len() {
            self.buf
        } else {
            trimmed.to_owned()
        }
    }
}
