//! The `config` of `browser_automation` and `data_extraction`, checked at create.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::kinds::config::{ConfigContext, Fields, check_http_url};

/// The most steps a task may have.
pub const MAX_STEPS: usize = 50;
/// The most fields a `data_extraction` may read.
pub const MAX_FIELDS: usize = 100;
/// The longest a `wait` step may wait, in milliseconds.
pub const MAX_WAIT_MS: u64 = 60_000;
const MAX_SELECTOR_CHARS: usize = 1_000;
const MAX_INSTRUCTION_CHARS: usize = 2_000;
const MAX_TYPED_CHARS: usize = 10_000;
const MAX_SCHEMA_BYTES: usize = 32 * 1024;

/// Which browser runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrowserChoice {
    /// A headless Chromium started for the task on this machine.
    Local,
    /// A Browserbase session.
    Browserbase,
}

impl BrowserChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            BrowserChoice::Local => "local",
            BrowserChoice::Browserbase => "browserbase",
        }
    }
}

/// The browsers a deployment offers, for the checks at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrowserOffer {
    /// What a task without `browser` gets; `None` when the deployment has no browser.
    pub default: Option<BrowserChoice>,
    pub local: bool,
    pub browserbase: bool,
}

impl BrowserOffer {
    /// Both browsers, the local one by default (tests, samples).
    pub fn everything() -> BrowserOffer {
        BrowserOffer {
            default: Some(BrowserChoice::Local),
            local: true,
            browserbase: true,
        }
    }

    fn offers(&self, choice: BrowserChoice) -> bool {
        match choice {
            BrowserChoice::Local => self.local,
            BrowserChoice::Browserbase => self.browserbase,
        }
    }
}

/// An element: a CSS selector, or plain words the task's model resolves on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locator {
    Selector(String),
    Instruction(String),
}

impl Locator {
    /// How a log line names it.
    pub fn describe(&self) -> String {
        match self {
            Locator::Selector(s) => format!("{s:?}"),
            Locator::Instruction(i) => format!("\"{}\" (instruction)", cut(i, 80)),
        }
    }
}

fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// One step of a `browser_automation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BrowserStep {
    Navigate {
        url: String,
    },
    Click {
        target: Locator,
    },
    Type {
        target: Locator,
        text: String,
    },
    /// For an element to be there, or for a time.
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    Extract {
        target: Locator,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
    },
    Screenshot {
        #[serde(default)]
        full_page: bool,
    },
}

impl BrowserStep {
    pub fn action(&self) -> &'static str {
        match self {
            BrowserStep::Navigate { .. } => "navigate",
            BrowserStep::Click { .. } => "click",
            BrowserStep::Type { .. } => "type",
            BrowserStep::Wait { .. } => "wait",
            BrowserStep::Extract { .. } => "extract",
            BrowserStep::Screenshot { .. } => "screenshot",
        }
    }

    /// The step as a log line names it: `click "#submit"`.
    pub fn describe(&self) -> String {
        match self {
            BrowserStep::Navigate { url } => format!("navigate {url}"),
            BrowserStep::Click { target } => format!("click {}", target.describe()),
            BrowserStep::Type { target, text } => format!(
                "type {} characters into {}",
                text.chars().count(),
                target.describe()
            ),
            BrowserStep::Wait {
                selector: Some(s), ..
            } => format!("wait for {s:?}"),
            BrowserStep::Wait { ms, .. } => format!("wait {} ms", ms.unwrap_or(0)),
            BrowserStep::Extract { target, .. } => format!("extract {}", target.describe()),
            BrowserStep::Screenshot { full_page: true } => "screenshot of the full page".into(),
            BrowserStep::Screenshot { full_page: false } => "screenshot".into(),
        }
    }

    /// Whether it needs the task's model.
    pub fn needs_model(&self) -> bool {
        matches!(
            self,
            BrowserStep::Click {
                target: Locator::Instruction(_)
            } | BrowserStep::Type {
                target: Locator::Instruction(_),
                ..
            } | BrowserStep::Extract {
                target: Locator::Instruction(_),
                ..
            }
        )
    }
}

/// A `data_extraction` field: a CSS selector, and the attribute to read instead of the text
/// (`"a.next@href"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The CSS selector.
    pub selector: String,
    /// The attribute to read, when the field said `selector@attribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A `browser_automation` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationConfig {
    pub start_url: String,
    pub steps: Vec<BrowserStep>,
    /// Absent: the deployment's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserChoice>,
}

/// What a `data_extraction` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extraction {
    /// `name` → CSS selector; `selector@attr` reads an attribute.
    Fields(Vec<(String, FieldSpec)>),
    /// Plain words; the model extracts, checked against `schema` when given.
    Instruction {
        instruction: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
    },
}

/// A `data_extraction` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionConfig {
    pub url: String,
    pub extraction: Extraction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserChoice>,
}

pub(crate) fn parse_automation(
    fields: &Fields<'_>,
    cx: &ConfigContext,
) -> Result<AutomationConfig, ValidationError> {
    fields.only(&["start_url", "steps", "browser"])?;
    let start_url = url(fields, "start_url")?;
    let browser = browser(fields, cx)?;
    let list = match fields.get("steps") {
        None | Some(Value::Null) => return Err(fields.error("steps", "is required")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(fields.error("steps", "must be a list")),
    };
    if list.is_empty() || list.len() > MAX_STEPS {
        return Err(fields.error("steps", format!("must hold 1 to {MAX_STEPS} steps")));
    }
    let steps = list
        .iter()
        .enumerate()
        .map(|(i, value)| step(&Fields::of(value, &fields.path(&format!("steps[{i}]")))?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AutomationConfig {
        start_url,
        steps,
        browser,
    })
}

pub(crate) fn parse_extraction(
    fields: &Fields<'_>,
    cx: &ConfigContext,
) -> Result<ExtractionConfig, ValidationError> {
    fields.only(&["url", "fields", "instruction", "schema", "browser"])?;
    let url = url(fields, "url")?;
    let browser = browser(fields, cx)?;
    let extraction = match (fields.get("fields"), fields.str("instruction")?) {
        (Some(_), Some(_)) => {
            return Err(fields.error("instruction", "cannot be given with fields"));
        }
        (Some(Value::Object(map)), None) => {
            if fields.get("schema").is_some() {
                return Err(fields.error("schema", "goes with instruction, not fields"));
            }
            if map.is_empty() || map.len() > MAX_FIELDS {
                return Err(fields.error("fields", format!("must name 1 to {MAX_FIELDS} fields")));
            }
            let mut read = Vec::with_capacity(map.len());
            for (name, selector) in map {
                let path = format!("fields.{name}");
                if name.is_empty() || name.chars().count() > 128 {
                    return Err(fields.error(&path, "must be a name of 1 to 128 characters"));
                }
                let Some(selector) = selector.as_str() else {
                    return Err(fields.error(&path, "must be a CSS selector (a string)"));
                };
                if selector.chars().count() > MAX_SELECTOR_CHARS
                    || selector.chars().any(char::is_control)
                {
                    return Err(fields.error(
                        &path,
                        format!("must be at most {MAX_SELECTOR_CHARS} characters on one line"),
                    ));
                }
                let spec = FieldSpec::parse(selector).map_err(|why| fields.error(&path, why))?;
                read.push((name.clone(), spec));
            }
            Extraction::Fields(read)
        }
        (Some(_), None) => {
            return Err(fields.error("fields", "must be an object of name to CSS selector"));
        }
        (None, Some(_)) => Extraction::Instruction {
            instruction: instruction(fields, "instruction")?,
            schema: schema(fields)?,
        },
        (None, None) => return Err(fields.error("fields", "or instruction is required")),
    };
    Ok(ExtractionConfig {
        url,
        extraction,
        browser,
    })
}

fn url(fields: &Fields<'_>, field: &str) -> Result<String, ValidationError> {
    let url = fields.required_str(field)?;
    check_http_url(url).map_err(|why| fields.error(field, why))?;
    Ok(url.to_owned())
}

fn browser(
    fields: &Fields<'_>,
    cx: &ConfigContext,
) -> Result<Option<BrowserChoice>, ValidationError> {
    let choice = match fields.str("browser")? {
        None => None,
        Some("local") => Some(BrowserChoice::Local),
        Some("browserbase") => Some(BrowserChoice::Browserbase),
        Some(_) => return Err(fields.error("browser", "must be local or browserbase")),
    };
    match choice.or(cx.browsers.default) {
        None => Err(fields.error(
            "browser",
            "this deployment has no browser (a local Chromium, or Browserbase: BROWSERBASE_PROJECT_ID and its key)",
        )),
        Some(c) if !cx.browsers.offers(c) => Err(fields.error(
            "browser",
            format!("{} is not available in this deployment", c.as_str()),
        )),
        Some(_) => Ok(choice),
    }
}

fn selector(fields: &Fields<'_>, field: &str) -> Result<String, ValidationError> {
    let s = fields.required_str(field)?;
    if s.chars().count() > MAX_SELECTOR_CHARS || s.chars().any(char::is_control) {
        return Err(fields.error(
            field,
            format!(
                "must be a CSS selector of at most {MAX_SELECTOR_CHARS} characters on one line"
            ),
        ));
    }
    Ok(s.to_owned())
}

fn instruction(fields: &Fields<'_>, field: &str) -> Result<String, ValidationError> {
    let text = fields.required_str(field)?;
    if text.chars().count() > MAX_INSTRUCTION_CHARS {
        return Err(fields.error(
            field,
            format!("must be at most {MAX_INSTRUCTION_CHARS} characters"),
        ));
    }
    Ok(text.trim().to_owned())
}

/// Exactly one of `selector` and `instruction`.
fn locator(fields: &Fields<'_>) -> Result<Locator, ValidationError> {
    match (fields.get("selector"), fields.get("instruction")) {
        (Some(_), Some(_)) => Err(fields.error("instruction", "cannot be given with selector")),
        (Some(_), None) => Ok(Locator::Selector(selector(fields, "selector")?)),
        (None, Some(_)) => Ok(Locator::Instruction(instruction(fields, "instruction")?)),
        (None, None) => Err(fields.error("selector", "or instruction is required")),
    }
}

/// A JSON Schema the extracted value must meet: an object that compiles.
fn schema(fields: &Fields<'_>) -> Result<Option<Value>, ValidationError> {
    match fields.get("schema") {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => {
            if serde_json::to_vec(value).map_or(0, |b| b.len()) > MAX_SCHEMA_BYTES {
                return Err(fields.error("schema", "must be at most 32 KiB"));
            }
            super::schema::compile(value).map_err(|why| fields.error("schema", why))?;
            Ok(Some(value.clone()))
        }
        Some(_) => Err(fields.error("schema", "must be a JSON Schema (an object)")),
    }
}

fn step(fields: &Fields<'_>) -> Result<BrowserStep, ValidationError> {
    let action = fields.required_str("action")?;
    Ok(match action {
        "navigate" => {
            fields.only(&["action", "url"])?;
            BrowserStep::Navigate {
                url: url(fields, "url")?,
            }
        }
        "click" => {
            fields.only(&["action", "selector", "instruction"])?;
            BrowserStep::Click {
                target: locator(fields)?,
            }
        }
        "type" => {
            fields.only(&["action", "selector", "instruction", "text"])?;
            let target = locator(fields)?;
            let text = match fields.str("text")? {
                Some(t) if t.chars().count() <= MAX_TYPED_CHARS => t.to_owned(),
                Some(_) => {
                    return Err(fields.error(
                        "text",
                        format!("must be at most {MAX_TYPED_CHARS} characters"),
                    ));
                }
                None => return Err(fields.error("text", "is required")),
            };
            BrowserStep::Type { target, text }
        }
        "wait" => {
            fields.only(&["action", "selector", "ms"])?;
            match (fields.get("selector"), fields.get("ms")) {
                (Some(_), Some(_)) => {
                    return Err(fields.error("ms", "cannot be given with selector"));
                }
                (Some(_), None) => BrowserStep::Wait {
                    selector: Some(selector(fields, "selector")?),
                    ms: None,
                },
                (None, Some(v)) => {
                    let ms = v.as_u64().filter(|ms| *ms <= MAX_WAIT_MS).ok_or_else(|| {
                        fields.error(
                            "ms",
                            format!("must be a whole number from 0 to {MAX_WAIT_MS}"),
                        )
                    })?;
                    BrowserStep::Wait {
                        selector: None,
                        ms: Some(ms),
                    }
                }
                (None, None) => return Err(fields.error("selector", "or ms is required")),
            }
        }
        "extract" => {
            fields.only(&["action", "selector", "instruction", "schema"])?;
            BrowserStep::Extract {
                target: locator(fields)?,
                schema: schema(fields)?,
            }
        }
        "screenshot" => {
            fields.only(&["action", "full_page"])?;
            BrowserStep::Screenshot {
                full_page: fields.bool("full_page")?.unwrap_or(false),
            }
        }
        _ => {
            return Err(fields.error(
                "action",
                "must be navigate, click, type, wait, extract or screenshot",
            ));
        }
    })
}

/// A step as the API shows it: the shape it was given in.
fn step_view(step: &BrowserStep) -> Value {
    let mut view = serde_json::Map::new();
    view.insert("action".into(), step.action().into());
    let mut locator = |target: &Locator| match target {
        Locator::Selector(s) => view.insert("selector".into(), s.as_str().into()),
        Locator::Instruction(i) => view.insert("instruction".into(), i.as_str().into()),
    };
    match step {
        BrowserStep::Navigate { url } => {
            view.insert("url".into(), url.as_str().into());
        }
        BrowserStep::Click { target } => {
            locator(target);
        }
        BrowserStep::Type { target, text } => {
            locator(target);
            view.insert("text".into(), text.as_str().into());
        }
        BrowserStep::Wait { selector, ms } => {
            if let Some(s) = selector {
                view.insert("selector".into(), s.as_str().into());
            }
            if let Some(ms) = ms {
                view.insert("ms".into(), (*ms).into());
            }
        }
        BrowserStep::Extract { target, schema } => {
            locator(target);
            if let Some(schema) = schema {
                view.insert("schema".into(), schema.clone());
            }
        }
        BrowserStep::Screenshot { full_page } => {
            view.insert("full_page".into(), (*full_page).into());
        }
    }
    Value::Object(view)
}

fn with_browser(mut view: Value, browser: Option<BrowserChoice>) -> Value {
    if let (Some(obj), Some(b)) = (view.as_object_mut(), browser) {
        obj.insert("browser".into(), b.as_str().into());
    }
    view
}

pub(crate) fn automation_view(config: &AutomationConfig) -> Value {
    let steps: Vec<Value> = config.steps.iter().map(step_view).collect();
    with_browser(
        serde_json::json!({"start_url": config.start_url, "steps": steps}),
        config.browser,
    )
}

pub(crate) fn extraction_view(config: &ExtractionConfig) -> Value {
    let mut view = serde_json::json!({"url": config.url});
    if let Some(obj) = view.as_object_mut() {
        match &config.extraction {
            Extraction::Fields(fields) => {
                let map: serde_json::Map<String, Value> = fields
                    .iter()
                    .map(|(name, spec)| {
                        let raw = match &spec.attribute {
                            Some(attr) => format!("{}@{attr}", spec.selector),
                            None => spec.selector.clone(),
                        };
                        (name.clone(), raw.into())
                    })
                    .collect();
                obj.insert("fields".into(), Value::Object(map));
            }
            Extraction::Instruction {
                instruction,
                schema,
            } => {
                obj.insert("instruction".into(), instruction.as_str().into());
                if let Some(schema) = schema {
                    obj.insert("schema".into(), schema.clone());
                }
            }
        }
    }
    with_browser(view, config.browser)
}

#[cfg(test)]
mod field_spec_tests {
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
