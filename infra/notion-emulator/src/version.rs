//! The `Notion-Version` header values the emulator understands.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ApiVersion {
    /// 2022-06-28 (and older): databases carry properties, no data sources.
    V2022,
    /// 2025-09-03: data sources.
    V2025,
    /// 2026-03-11: `in_trash` replaces `archived`, `meeting_notes` replaces `transcription`.
    V2026,
}

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        match s.trim() {
            "2021-05-11" | "2021-05-13" | "2021-08-16" | "2022-02-22" | "2022-06-28" => Some(ApiVersion::V2022),
            "2025-09-03" => Some(ApiVersion::V2025),
            "2026-03-11" => Some(ApiVersion::V2026),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ApiVersion::V2022 => "2022-06-28",
            ApiVersion::V2025 => "2025-09-03",
            ApiVersion::V2026 => "2026-03-11",
        }
    }

    pub fn has_data_sources(&self) -> bool {
        *self >= ApiVersion::V2025
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_versions() {
        assert_eq!(ApiVersion::parse("2022-06-28"), Some(ApiVersion::V2022));
        assert_eq!(ApiVersion::parse("2025-09-03"), Some(ApiVersion::V2025));
        assert_eq!(ApiVersion::parse("2026-03-11"), Some(ApiVersion::V2026));
        assert_eq!(ApiVersion::parse("2030-01-01"), None);
        assert!(ApiVersion::V2026.has_data_sources());
        assert!(!ApiVersion::V2022.has_data_sources());
    }
}
