//! The steps of a `browser_automation` task and the fields of a `data_extraction` task, as the
//! session runs them. Parsing and validating a task's `config` is the server's; these types are
//! what its validated config becomes.

use serde_json::Value;

/// One step with a CSS selector (steps with an `instruction` are resolved to a reference by the
/// server's model through [`crate::BrowserSession::observe`] and then run by reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `{"action": "navigate", "url"}`
    Navigate {
        /// An `http` or `https` URL.
        url: String,
    },
    /// `{"action": "click", "selector"}`
    Click {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "type", "selector", "text"}`
    Type {
        /// A CSS selector.
        selector: String,
        /// The text that replaces the field's content.
        text: String,
    },
    /// `{"action": "wait", "selector"}`
    WaitFor {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "wait", "ms"}`
    WaitMs {
        /// Milliseconds.
        ms: u64,
    },
    /// `{"action": "extract", "selector"}`
    Extract {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "screenshot", "full_page"?}`
    Screenshot {
        /// The whole page rather than the viewport.
        full_page: bool,
    },
}

impl Step {
    /// The step's `action`, as the contract names it.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Navigate { .. } => "navigate",
            Self::Click { .. } => "click",
            Self::Type { .. } => "type",
            Self::WaitFor { .. } | Self::WaitMs { .. } => "wait",
            Self::Extract { .. } => "extract",
            Self::Screenshot { .. } => "screenshot",
        }
    }
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutput {
    /// Nothing but having happened.
    Done,
    /// An `extract` step's text: a string, or a list when several elements matched.
    Extracted(Value),
    /// A screenshot, as PNG bytes.
    Screenshot(Vec<u8>),
}

/// A `data_extraction` field: a CSS selector, and the attribute to read instead of the text
/// (`"a.next@href"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The CSS selector.
    pub selector: String,
    /// The attribute to read, when the field said `selector@attribute`.
    pub attribute: Option<String>,
}

impl FieldSpec {
    /// Reads `"selector"` or `"selector@attribute"`. The `@` that counts is the last one followed
    /// by an attribute name only, so a selector with an `@` inside quotes
    /// (`a[href^="mailto:x@y"]`) keeps it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(at) = text.rfind('@') {
            let (selector, attribute) = (&text[..at], &text[at + 1..]);
            let is_name = !attribute.is_empty()
                && attribute
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
            if is_name {
                if selector.trim().is_empty() {
                    return Err(format!("{text:?} names an attribute but no selector"));
                }
                return Ok(Self {
                    selector: selector.trim().to_string(),
                    attribute: Some(attribute.to_string()),
                });
            }
        }
        if text.is_empty() {
            return Err("the selector is empty".into());
        }
        Ok(Self {
            selector: text.to_string(),
            attribute: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_with_an_attribute_reads_the_attribute() {
        let spec = FieldSpec::parse("a.next@href").expect("valid");
        assert_eq!(spec.selector, "a.next");
        assert_eq!(spec.attribute.as_deref(), Some("href"));
    }

    #[test]
    fn an_at_sign_inside_a_selector_is_kept() {
        let spec = FieldSpec::parse(r#"a[href^="mailto:x@y.z"]"#).expect("valid");
        assert_eq!(spec.selector, r#"a[href^="mailto:x@y.z"]"#);
        assert_eq!(spec.attribute, None);
        let spec = FieldSpec::parse(r#"a[href^="mailto:x@y.z"]@data-id"#).expect("valid");
        assert_eq!(spec.attribute.as_deref(), Some("data-id"));
    }

    #[test]
    fn an_empty_field_is_refused() {
        assert!(FieldSpec::parse("  ").is_err());
        assert!(FieldSpec::parse("@href").is_err());
    }
}
