//! Variables from the environment, read with errors that name the variable (and never show a
//! secret's value).

use std::collections::HashMap;
use std::fmt;

use secrecy::SecretString;

/// Why the configuration was refused. Its `Debug` is its message, so `main` returning it prints
/// `Error: PJ_TABLE_NAME is not set ...` rather than a struct.
#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; the function cannot start without it")]
    Missing(&'static str),
    #[error("{name} {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl ConfigError {
    /// The variable the error is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing(name) | ConfigError::Invalid { name, .. } => name,
        }
    }

    pub fn invalid(name: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name,
            problem: problem.into(),
        }
    }
}

/// Where variables come from: the process environment, or a fixed map (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env { fixed: None }
    }

    /// Exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number of at least `min`, or `default` when unset.
    pub fn number<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<T>() {
                Ok(v) if v >= min => Ok(v),
                _ => Err(ConfigError::invalid(
                    name,
                    format!("must be a whole number of at least {min}, not {raw:?}"),
                )),
            },
        }
    }

    /// An `http(s)://` URL without its trailing slash, when set.
    pub fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(u) if is_http_url(&u) => Ok(Some(u.trim_end_matches('/').to_owned())),
            Some(u) => Err(ConfigError::invalid(
                name,
                format!("must be an http:// or https:// URL, not {u:?}"),
            )),
        }
    }

    pub fn required_url(&self, name: &'static str) -> Result<String, ConfigError> {
        self.url(name)?.ok_or(ConfigError::Missing(name))
    }

    pub fn secret(&self, name: &'static str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no`, when set; anything else is an error.
    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(ConfigError::invalid(
                    name,
                    format!("must be true or false, not {raw:?}"),
                )),
            },
        }
    }

    /// A lenient flag: `1` or `true` is on, anything else off (for `KEEP_ALIVE`, which CI
    /// systems set freely).
    pub fn flag(&self, name: &'static str) -> bool {
        self.get(name)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }
}

/// An `http://` or `https://` URL without spaces.
pub fn is_http_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(char::is_whitespace)
}
