//! Secrets: the Notion token, search engine credentials and webhook/API tokens.
//!
//! In AWS they live in one Secrets Manager secret (`SECRET_ID`, default `notion-es/secrets`) holding a JSON object:
//!
//! ```json
//! {"notion_token": "secret_…", "search_username": "…", "search_password": "…", "search_api_key": "…",
//!  "webhook_verification_token": "…", "api_key": "…"}
//! ```
//!
//! Only `notion_token` is required. Optional keys may be omitted, `null` or `""` (all three mean "not set").
//! `search_username` and `search_password` go together. Unknown keys are rejected, naming the key, so a typo
//! (`search_pasword`) fails at planning rather than as a 401 later.
//!
//! Locally the same values come from environment variables ([`EnvSecretSource`]): `NOTION_TOKEN`,
//! `SEARCH_USERNAME`, `SEARCH_PASSWORD`, `SEARCH_API_KEY`, `WEBHOOK_VERIFICATION_TOKEN`, `API_KEY`.
//!
//! Errors name the key and what is wrong with it, never the value. [`SecretString`] prints `[redacted]` in
//! `Debug` and `Display`; call [`SecretString::expose`] where the value is really needed.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use serde_json::{Map, Value};

/// A secret value. `Debug` and `Display` print `[redacted]`.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Everything secret the functions need. `Debug` shows which values are set, never the values.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// The Notion integration token (required).
    pub notion_token: SecretString,
    /// Search engine basic-auth user; set together with `search_password`.
    pub search_username: Option<SecretString>,
    /// Search engine basic-auth password; set together with `search_username`.
    pub search_password: Option<SecretString>,
    /// Search engine API key (Elasticsearch `ApiKey` header value, base64 `id:key`).
    pub search_api_key: Option<SecretString>,
    /// Token Notion sends when verifying the webhook subscription; used to check webhook signatures.
    pub webhook_verification_token: Option<SecretString>,
    /// Key callers of the HTTP API must present.
    pub api_key: Option<SecretString>,
}

/// Why secrets could not be loaded. Names keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret is not valid JSON (line {line}, column {column})")]
    InvalidJson { line: usize, column: usize },
    #[error("secret must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("secret key `{key}` is missing")]
    Missing { key: String },
    #[error("secret key `{key}` is empty")]
    Empty { key: String },
    #[error("secret key `{key}` must be a string, found {found}")]
    WrongType { key: String, found: &'static str },
    #[error("secret key `{key}` is not known (known keys: {known})")]
    UnknownKey { key: String, known: String },
    #[error("secret key `{key}` is set but `{requires}` is not; they go together")]
    Incomplete { key: String, requires: String },
    /// The secret could not be fetched (used by adapters such as Secrets Manager).
    #[error("could not load secret {secret_id}: {message}")]
    Fetch { secret_id: String, message: String },
}

/// Where secrets come from. One job: load them once, at cold start.
///
/// Implementations may write `async fn load(&self) -> Result<Secrets, SecretsError>`; the future must be `Send`.
pub trait SecretSource {
    fn load(&self) -> impl Future<Output = Result<Secrets, SecretsError>> + Send;
}

/// JSON key → environment variable, for every secret.
const KEYS: [(&str, &str); 6] = [
    ("notion_token", "NOTION_TOKEN"),
    ("search_username", "SEARCH_USERNAME"),
    ("search_password", "SEARCH_PASSWORD"),
    ("search_api_key", "SEARCH_API_KEY"),
    ("webhook_verification_token", "WEBHOOK_VERIFICATION_TOKEN"),
    ("api_key", "API_KEY"),
];

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Secrets {
    /// Parses the secret's JSON text (the Secrets Manager `SecretString`).
    pub fn from_json(text: &str) -> Result<Self, SecretsError> {
        // Parse to a Value first: serde_json's syntax errors carry positions only, never content.
        let value: Value =
            serde_json::from_str(text).map_err(|e| SecretsError::InvalidJson { line: e.line(), column: e.column() })?;
        Self::from_value(&value)
    }

    /// Parses an already decoded secret object.
    pub fn from_value(value: &Value) -> Result<Self, SecretsError> {
        let object = value.as_object().ok_or(SecretsError::NotAnObject { found: json_type_name(value) })?;
        Self::from_object(object)
    }

    fn from_object(object: &Map<String, Value>) -> Result<Self, SecretsError> {
        if let Some(key) = object.keys().find(|k| !KEYS.iter().any(|(name, _)| name == k)) {
            return Err(SecretsError::UnknownKey { key: key.clone(), known: KEYS.map(|(name, _)| name).join(", ") });
        }
        let get = |key: &str| -> Result<Option<SecretString>, SecretsError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(SecretString::new(s.clone()))),
                Some(other) => Err(SecretsError::WrongType { key: key.to_owned(), found: json_type_name(other) }),
            }
        };
        let notion_token = match object.get("notion_token") {
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(SecretsError::Empty { key: "notion_token".into() })
            }
            _ => get("notion_token")?.ok_or(SecretsError::Missing { key: "notion_token".into() })?,
        };
        let secrets = Secrets {
            notion_token,
            search_username: get("search_username")?,
            search_password: get("search_password")?,
            search_api_key: get("search_api_key")?,
            webhook_verification_token: get("webhook_verification_token")?,
            api_key: get("api_key")?,
        };
        secrets.check_pairs("search_username", "search_password")?;
        Ok(secrets)
    }

    /// Reads the secrets from environment-style variables (`NOTION_TOKEN`, `SEARCH_USERNAME`, …).
    /// Empty variables count as unset. Errors name the variable.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, SecretsError> {
        let get = |name: &str| vars.get(name).filter(|v| !v.trim().is_empty()).map(|v| SecretString::new(v.clone()));
        let notion_token = match vars.get("NOTION_TOKEN") {
            None => return Err(SecretsError::Missing { key: "NOTION_TOKEN".into() }),
            Some(v) if v.trim().is_empty() => return Err(SecretsError::Empty { key: "NOTION_TOKEN".into() }),
            Some(v) => SecretString::new(v.clone()),
        };
        let secrets = Secrets {
            notion_token,
            search_username: get("SEARCH_USERNAME"),
            search_password: get("SEARCH_PASSWORD"),
            search_api_key: get("SEARCH_API_KEY"),
            webhook_verification_token: get("WEBHOOK_VERIFICATION_TOKEN"),
            api_key: get("API_KEY"),
        };
        secrets.check_pairs("SEARCH_USERNAME", "SEARCH_PASSWORD")?;
        Ok(secrets)
    }

    fn check_pairs(&self, user_key: &str, password_key: &str) -> Result<(), SecretsError> {
        match (&self.search_username, &self.search_password) {
            (Some(_), None) => Err(SecretsError::Incomplete { key: user_key.into(), requires: password_key.into() }),
            (None, Some(_)) => Err(SecretsError::Incomplete { key: password_key.into(), requires: user_key.into() }),
            _ => Ok(()),
        }
    }
}

/// Secrets from environment variables, for local runs: `NOTION_TOKEN` (required), `SEARCH_USERNAME`,
/// `SEARCH_PASSWORD`, `SEARCH_API_KEY`, `WEBHOOK_VERIFICATION_TOKEN`, `API_KEY`.
#[derive(Clone, Default)]
pub struct EnvSecretSource {
    vars: HashMap<String, String>,
}

impl EnvSecretSource {
    /// Captures the secret variables of the process environment now.
    pub fn from_env() -> Self {
        let vars = KEYS.iter().filter_map(|(_, var)| std::env::var(var).ok().map(|v| ((*var).to_owned(), v))).collect();
        Self { vars }
    }

    /// Uses the given variables instead of the process environment (tests).
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars }
    }
}

impl fmt::Debug for EnvSecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSecretSource").field("vars", &self.vars.keys().collect::<Vec<_>>()).finish()
    }
}

impl SecretSource for EnvSecretSource {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        Secrets::from_vars(&self.vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "secret_abcdefTOPSECRET";

    #[test]
    fn parses_full_secret() {
        let s = Secrets::from_json(&format!(
            r#"{{"notion_token":"{TOKEN}","search_username":"u","search_password":"p","api_key":"k",
                "webhook_verification_token":"w","search_api_key":null}}"#
        ))
        .unwrap();
        assert_eq!(s.notion_token.expose(), TOKEN);
        assert_eq!(s.search_password.as_ref().unwrap().expose(), "p");
        assert!(s.search_api_key.is_none());
        assert_eq!(s.api_key.as_ref().unwrap().expose(), "k");
    }

    #[test]
    fn debug_and_display_never_show_values() {
        let s = Secrets::from_json(&format!(
            r#"{{"notion_token":"{TOKEN}","search_username":"alice","search_password":"hunter2"}}"#
        ))
        .unwrap();
        let shown = format!("{s:?} {} {:?}", s.notion_token, s.notion_token);
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
        let src = EnvSecretSource::from_map(HashMap::from([("NOTION_TOKEN".into(), TOKEN.into())]));
        assert!(!format!("{src:?}").contains(TOKEN));
    }

    #[test]
    fn errors_name_key_not_value() {
        let cases = [
            (r#"{}"#.to_string(), "`notion_token` is missing"),
            (r#"{"notion_token":"  "}"#.to_string(), "`notion_token` is empty"),
            (r#"{"notion_token":42}"#.to_string(), "`notion_token` must be a string, found a number"),
            (format!(r#"{{"notion_token":"{TOKEN}","api_key":["{TOKEN}"]}}"#), "`api_key` must be a string"),
            (format!(r#"{{"notion_token":"{TOKEN}","search_pasword":"x"}}"#), "`search_pasword` is not known"),
            (format!(r#"{{"notion_token":"{TOKEN}","search_username":"x"}}"#), "`search_password` is not"),
            (format!(r#"{{"notion_token":"{TOKEN}""#), "not valid JSON"),
            (format!(r#""{TOKEN}""#), "must be a JSON object, found a string"),
        ];
        for (input, expected) in cases {
            let err = Secrets::from_json(&input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(!err.contains(TOKEN), "{err}");
        }
    }

    #[tokio::test]
    async fn env_source() {
        let src = EnvSecretSource::from_map(HashMap::from([
            ("NOTION_TOKEN".into(), TOKEN.into()),
            ("SEARCH_API_KEY".into(), "abc".into()),
            ("API_KEY".into(), "".into()),
        ]));
        let s = src.load().await.unwrap();
        assert_eq!(s.notion_token.expose(), TOKEN);
        assert_eq!(s.search_api_key.unwrap().expose(), "abc");
        assert!(s.api_key.is_none());
        let err = EnvSecretSource::default().load().await.unwrap_err();
        assert_eq!(err.to_string(), "secret key `NOTION_TOKEN` is missing");
    }
}
