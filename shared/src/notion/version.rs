//! The `Notion-Version` header values this client understands.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Notion API version. 2025-09-03 and later have data sources; 2022-06-28 has the legacy database endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "2022-06-28")]
    V2022_06_28,
    #[default]
    #[serde(rename = "2025-09-03")]
    V2025_09_03,
    #[serde(rename = "2026-03-11")]
    V2026_03_11,
}

/// A `Notion-Version` value that is not one of [`ApiVersion::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Notion API version {value:?}: expected one of 2022-06-28, 2025-09-03, 2026-03-11")]
pub struct UnknownVersion {
    pub value: String,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V2022_06_28, ApiVersion::V2025_09_03, ApiVersion::V2026_03_11];

    /// Parses a header value such as `2025-09-03` (surrounding whitespace ignored).
    pub fn parse(value: &str) -> Result<Self, UnknownVersion> {
        let trimmed = value.trim();
        Self::ALL.into_iter().find(|v| v.as_str() == trimmed).ok_or_else(|| UnknownVersion { value: value.to_string() })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2022_06_28 => "2022-06-28",
            ApiVersion::V2025_09_03 => "2025-09-03",
            ApiVersion::V2026_03_11 => "2026-03-11",
        }
    }

    /// True when databases are containers of data sources (`/v1/data_sources/...` exists).
    pub fn has_data_sources(self) -> bool {
        !matches!(self, ApiVersion::V2022_06_28)
    }
}

impl FromStr for ApiVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_versions_and_round_trips() {
        for v in ApiVersion::ALL {
            assert_eq!(ApiVersion::parse(v.as_str()), Ok(v));
            assert_eq!(v.to_string().parse::<ApiVersion>(), Ok(v));
        }
        assert_eq!(ApiVersion::parse(" 2022-06-28\n"), Ok(ApiVersion::V2022_06_28));
        assert_eq!(ApiVersion::default(), ApiVersion::V2025_09_03);
    }

    #[test]
    fn unknown_version_error_names_the_value() {
        let err = ApiVersion::parse("2024-01-01").unwrap_err();
        assert_eq!(err.value, "2024-01-01");
        let msg = err.to_string();
        assert!(msg.contains("\"2024-01-01\""), "{msg}");
        assert!(msg.contains("2025-09-03"), "{msg}");
        assert!(ApiVersion::parse("").is_err());
    }

    #[test]
    fn data_sources_from_2025() {
        assert!(!ApiVersion::V2022_06_28.has_data_sources());
        assert!(ApiVersion::V2025_09_03.has_data_sources());
        assert!(ApiVersion::V2026_03_11.has_data_sources());
    }

    #[test]
    fn serde_uses_header_strings() {
        let json = serde_json::to_string(&ApiVersion::V2026_03_11).unwrap();
        assert_eq!(json, "\"2026-03-11\"");
        let v: ApiVersion = serde_json::from_str("\"2022-06-28\"").unwrap();
        assert_eq!(v, ApiVersion::V2022_06_28);
    }
}
