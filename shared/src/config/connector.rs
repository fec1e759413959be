//! The connector configuration document ([`ConnectorConfig`]): the Elastic Notion connector's keys and sync rules
//! (docs/CONFIGURATION.md).

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    check_index_name, invalid, json_type, ConfigError, DEFAULT_CONCURRENT_DOWNLOADS, DEFAULT_MAX_FILE_SIZE,
    MAX_FILE_SIZE_CAP,
};
use crate::notion::ApiVersion;
use crate::rules::{AdvancedRules, BasicRules};

/// Which pages (or databases) to sync: all (`*`) or those with these titles (exact, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TitleSelection {
    #[default]
    All,
    Titles(Vec<String>),
}

impl TitleSelection {
    pub fn is_all(&self) -> bool {
        matches!(self, TitleSelection::All)
    }

    /// The configured titles (empty for `*`).
    pub fn titles(&self) -> &[String] {
        match self {
            TitleSelection::All => &[],
            TitleSelection::Titles(t) => t,
        }
    }

    /// Parses `"a, b"` or `["a", "b"]`: items trimmed, empty items dropped, `*` anywhere = all.
    fn from_json(value: &Value, path: &str) -> Result<Self, ConfigError> {
        let items: Vec<String> = match value {
            Value::String(s) => s.split(',').map(|i| i.trim().to_owned()).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    other => {
                        Err(invalid(format!("{path}/{i}"), format!("must be a string, found {}", json_type(other))))
                    }
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(invalid(
                    path,
                    format!("must be a comma-separated string or an array of strings, found {}", json_type(other)),
                ))
            }
        };
        let items: Vec<String> = items.into_iter().filter(|i| !i.is_empty()).collect();
        if items.is_empty() {
            return Err(invalid(path, "lists no title: give titles or \"*\" (everything)"));
        }
        if items.iter().any(|i| i == "*") {
            return Ok(TitleSelection::All);
        }
        let mut unique: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            if !unique.iter().any(|u| u.to_lowercase() == item.to_lowercase()) {
                unique.push(item);
            }
        }
        Ok(TitleSelection::Titles(unique))
    }
}

/// Basic and advanced sync rules (`sync_rules`).
#[derive(Debug, Clone, Default)]
pub struct SyncRules {
    /// `sync_rules.basic`: ordered include/exclude rules applied to every document before indexing.
    pub basic: BasicRules,
    /// `sync_rules.advanced`: `searches` / `database_query_filters`; `None` when absent, `null` or `{}`.
    pub advanced: Option<AdvancedRules>,
}

/// The connector configuration document.
///
/// ```json
/// {
///   "databases": "*",
///   "pages": "Engineering Wiki, Roadmap",
///   "index_comments": false,
///   "concurrent_downloads": 30,
///   "max_file_size": 10485760,
///   "notion_version": "2025-09-03",
///   "index_name": "search-notion",
///   "sync_rules": {
///     "basic": [{"policy": "exclude", "field": "type", "rule": "equals", "value": "divider"}],
///     "advanced": {}
///   }
/// }
/// ```
///
/// Every key is optional; unknown keys are rejected, naming the key.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `databases`: database titles to sync, as a comma-separated string or an array; `*` = all (default).
    /// Titles match exactly, case-insensitively; a title that matches no database fails the sync before anything is
    /// indexed or deleted. Ignored when advanced rules are set.
    pub databases: TitleSelection,
    /// `pages`: page titles to sync, like `databases`; `*` = all (default). Ignored when advanced rules are set.
    pub pages: TitleSelection,
    /// `index_comments`: also index every unresolved comment on pages and blocks (default `false`; one extra API call
    /// per page and block).
    pub index_comments: bool,
    /// `concurrent_downloads`: maximum concurrent file downloads, 1..=100 (default 30; in Lambda, unless set,
    /// as many as fit in half the function's memory, see [`Settings::check_download_memory`]).
    pub concurrent_downloads: u32,
    /// True when the document sets `concurrent_downloads` (then it is checked against the memory, not fitted).
    pub concurrent_downloads_given: bool,
    /// `max_file_size`: files larger than this many bytes are indexed without their content (default 10485760 =
    /// 10 MiB, at most [`MAX_FILE_SIZE_CAP`]); `0` turns file downloads off.
    pub max_file_size: u64,
    /// `allow_http_files`: also download `http://` external file links (default `false`: https only; the
    /// address checks apply either way).
    pub allow_http_files: bool,
    /// `sync_rules`: `{"basic": [...], "advanced": {...}}`.
    pub sync_rules: SyncRules,
    /// `notion_version`: overrides `NOTION_VERSION` (`2022-06-28`, `2025-09-03` or `2026-03-11`).
    pub notion_version: Option<ApiVersion>,
    /// `index_name`: overrides `INDEX_NAME`.
    pub index_name: Option<String>,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            databases: TitleSelection::All,
            pages: TitleSelection::All,
            index_comments: false,
            concurrent_downloads: DEFAULT_CONCURRENT_DOWNLOADS,
            concurrent_downloads_given: false,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            allow_http_files: false,
            sync_rules: SyncRules::default(),
            notion_version: None,
            index_name: None,
        }
    }
}

const CONFIG_KEYS: [&str; 9] = [
    "databases",
    "pages",
    "index_comments",
    "concurrent_downloads",
    "max_file_size",
    "allow_http_files",
    "sync_rules",
    "notion_version",
    "index_name",
];

fn uint(value: &Value, path: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n = match value {
        Value::Number(n) => {
            n.as_u64().ok_or_else(|| invalid(path, format!("must be a whole number in {min}..={max}, found {n}")))?
        }
        other => return Err(invalid(path, format!("must be a whole number, found {}", json_type(other)))),
    };
    if n < min || n > max {
        return Err(invalid(path, format!("{n} is out of range ({min}..={max})")));
    }
    Ok(n)
}

impl ConnectorConfig {
    /// Parses the configuration document from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Self::from_json(&value)
    }

    /// Reads and parses a JSON file (local runs).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ConfigError::Json { message, .. } => {
                ConfigError::File { path: path.display().to_string(), message: format!("not valid JSON: {message}") }
            }
            other => other,
        })
    }

    /// Parses an already decoded configuration document.
    pub fn from_json(value: &Value) -> Result<Self, ConfigError> {
        let obj = match value {
            Value::Object(obj) => obj,
            other => return Err(invalid("", format!("must be a JSON object, found {}", json_type(other)))),
        };
        if let Some(key) = obj.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
            let path = crate::rules::pointer("", key);
            let hint = match key.as_str() {
                "notion_secret_key" | "notion_token" => {
                    "the Notion token is a secret: put it in the secret as notion_token, not in the configuration"
                        .to_string()
                }
                _ => format!("unknown key {key:?} (known keys: {})", CONFIG_KEYS.join(", ")),
            };
            return Err(invalid(path, hint));
        }
        let mut config = ConnectorConfig::default();
        for (key, value) in obj {
            let path = format!("/{key}");
            if value.is_null() {
                continue; // null = default
            }
            match key.as_str() {
                "databases" => config.databases = TitleSelection::from_json(value, &path)?,
                "pages" => config.pages = TitleSelection::from_json(value, &path)?,
                "index_comments" => {
                    config.index_comments = value
                        .as_bool()
                        .ok_or_else(|| invalid(&path, format!("must be true or false, found {}", json_type(value))))?
                }
                "concurrent_downloads" => {
                    // The range check bounds the value, so the conversion cannot fail.
                    config.concurrent_downloads = u32::try_from(uint(value, &path, 1, 100)?).unwrap_or(100);
                    config.concurrent_downloads_given = true;
                }
                "max_file_size" => config.max_file_size = uint(value, &path, 0, MAX_FILE_SIZE_CAP)?,
                "allow_http_files" => {
                    config.allow_http_files = value
                        .as_bool()
                        .ok_or_else(|| invalid(&path, format!("must be true or false, found {}", json_type(value))))?
                }
                "notion_version" => {
                    let v = value
                        .as_str()
                        .ok_or_else(|| invalid(&path, format!("must be a string, found {}", json_type(value))))?;
                    config.notion_version = Some(ApiVersion::parse(v).map_err(|e| invalid(&path, e.to_string()))?);
                }
                "index_name" => {
                    let v = value
                        .as_str()
                        .ok_or_else(|| invalid(&path, format!("must be a string, found {}", json_type(value))))?;
                    check_index_name(v.trim()).map_err(|p| invalid(&path, p))?;
                    config.index_name = Some(v.trim().to_owned());
                }
                "sync_rules" => config.sync_rules = parse_sync_rules(value)?,
                _ => {}
            }
        }
        Ok(config)
    }

    /// True when advanced rules are set: they replace `databases` / `pages` (as in the reference).
    pub fn has_advanced_rules(&self) -> bool {
        self.sync_rules.advanced.is_some()
    }

    /// True when the whole workspace is synced: `databases` and `pages` both `*` and no advanced rules.
    pub fn selects_everything(&self) -> bool {
        !self.has_advanced_rules() && self.databases.is_all() && self.pages.is_all()
    }
}

fn parse_sync_rules(value: &Value) -> Result<SyncRules, ConfigError> {
    let obj: &Map<String, Value> = value.as_object().ok_or_else(|| {
        invalid(
            "/sync_rules",
            format!("must be an object {{\"basic\": [...], \"advanced\": {{...}}}}, found {}", json_type(value)),
        )
    })?;
    if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "basic" | "advanced")) {
        return Err(invalid(
            format!("/sync_rules{}", crate::rules::pointer("", key)),
            format!("unknown key {key:?} (known keys: basic, advanced)"),
        ));
    }
    let basic = match obj.get("basic") {
        None => BasicRules::default(),
        Some(v) => BasicRules::from_json(v).map_err(|e| ConfigError::Rules(e.with_prefix("/sync_rules/basic")))?,
    };
    let advanced = match obj.get("advanced") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(v) => {
            Some(AdvancedRules::from_json(v).map_err(|e| ConfigError::Rules(e.with_prefix("/sync_rules/advanced")))?)
        }
    };
    Ok(SyncRules { basic, advanced })
}
