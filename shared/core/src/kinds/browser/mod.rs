//! The browser kinds, `browser_automation` and `data_extraction`: steps run in a real browser
//! that an adapter drives over the DevTools protocol ([`Browsers`]), with plain-words steps
//! resolved by the task's model ([`PageModel`]) from a compact view of the page, in the manner
//! of Stagehand's act and extract. The core knows neither the protocol nor the model's API: it
//! decides what to ask, checks the answers, times and records each step, and keeps the
//! screenshots as artifacts.

pub mod config;
pub mod run;
pub mod schema;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::task::{ModelSpec, Usage};

pub use config::{
    AutomationConfig, BrowserChoice, BrowserOffer, BrowserStep, Extraction, ExtractionConfig,
    FieldSpec, Locator,
};

/// An element to act on: a CSS selector from the task, or a reference from a [`PageView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    Selector(String),
    Ref(String),
}

/// The page as a model sees it: what a person reads or acts on, each element with a reference
/// that stays valid while the document lives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageView {
    pub url: String,
    pub title: String,
    pub elements: Vec<PageElement>,
    /// The view as the model reads it, one line per element under its section, each led by
    /// its reference in brackets (the adapter renders it, within its size budget).
    pub text: String,
}

/// One element of a [`PageView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageElement {
    /// Stable within the page: what [`Element::Ref`] names.
    pub reference: String,
    /// `button`, `link`, `textbox`, `checkbox`, …
    pub role: String,
    /// Its accessible name or text.
    pub name: String,
    /// Where it is: the headings, landmarks or labelled sections around it, outermost first,
    /// so that two buttons of the same text in different sections can be told apart.
    pub context: String,
}

/// Why a browser could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub message: String,
    /// Whether another attempt may get one (a service's 5xx, a crash), or not (no Chromium).
    pub may_pass: bool,
}

/// A browser opened for one task. Dropping it, or [`BrowserSession::close`], ends the browser
/// (and its Browserbase session) and removes its profile; an adapter guarantees it, so that a
/// task that is cancelled or reaches its deadline leaves nothing running.
#[async_trait]
pub trait BrowserSession: Send {
    /// Browserbase's session id, or the local browser's own.
    fn session_id(&self) -> String;
    /// Where a person can watch it (Browserbase's debugger), when there is such a place.
    fn debug_url(&self) -> Option<String>;
    /// Loads `url` and waits for it to load; every request of the page passes the address
    /// guard the adapter was built with.
    async fn navigate(&mut self, url: &str) -> Result<(), String>;
    async fn click(&mut self, element: &Element) -> Result<(), String>;
    /// Focuses the element and types `text` into it.
    async fn type_text(&mut self, element: &Element, text: &str) -> Result<(), String>;
    /// Waits for an element matching `selector` to be there, within the adapter's time limit.
    async fn wait_for(&mut self, selector: &str) -> Result<(), String>;
    /// The text of the elements `selector` matches, waiting for one to be there: a string for
    /// one, a list for several.
    async fn read(&mut self, selector: &str) -> Result<Value, String>;
    /// The fields of a `data_extraction`, read from the page as it is: for each name `null`
    /// when nothing matches, a string for one element, a list for several.
    async fn read_fields(
        &mut self,
        fields: &[(String, FieldSpec)],
    ) -> Result<serde_json::Map<String, Value>, String>;
    async fn page_view(&mut self) -> Result<PageView, String>;
    /// A PNG of the viewport, or of the whole page.
    async fn screenshot(&mut self, full_page: bool) -> Result<Vec<u8>, String>;
    /// Ends the browser and waits until it has ended.
    async fn close(self: Box<Self>);
}

/// Where browsers come from.
#[async_trait]
pub trait Browsers: Send + Sync {
    /// Opens a fresh browser (a new profile, or a new Browserbase session), waiting for room
    /// when the deployment's cap of browsers at once is reached.
    async fn open(&self, choice: BrowserChoice) -> Result<Box<dyn BrowserSession>, OpenError>;
}

/// A model's answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswer {
    pub text: String,
    pub usage: Usage,
}

/// The task's model, for the plain-words steps.
#[async_trait]
pub trait PageModel: Send + Sync {
    /// Asks `model` (the task's; `None`: the deployment's default) one question. `note`
    /// hears of retries and fallbacks, for the attempt's log.
    async fn ask(
        &self,
        model: Option<&ModelSpec>,
        system: &str,
        prompt: &str,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ModelAnswer, String>;
}
