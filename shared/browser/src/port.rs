//! The core's browser ports ([`pj_core::kinds::browser::Browsers`] and its sessions) on this
//! crate: local Chromium or Browserbase, at most so many browsers at once.

use std::sync::Arc;

use async_trait::async_trait;
use pj_core::kinds::browser::run::MAX_TEXT_FOR_MODEL;
use pj_core::kinds::browser::{
    self as port, BrowserChoice, BrowserOffer, Element, FieldSpec, OpenError, PageElement,
};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    BrowserError, BrowserSession, Browserbase, BrowserbaseSession, Chromium, ElementRef,
    SessionOptions,
};

/// The browsers of a deployment.
pub struct Browsers {
    chromium: Option<Chromium>,
    browserbase: Option<Browserbase>,
    options: SessionOptions,
    /// One permit per browser running; a task waits for one before its browser starts.
    room: Arc<Semaphore>,
    default: Option<BrowserChoice>,
}

impl Browsers {
    /// Browsers from a local Chromium and/or Browserbase, at most `max_at_once` running;
    /// `default` is what a task without `browser` gets (`PJ_BROWSER`).
    pub fn new(
        chromium: Option<Chromium>,
        browserbase: Option<Browserbase>,
        options: SessionOptions,
        max_at_once: usize,
        default: BrowserChoice,
    ) -> Browsers {
        let offered = |c: BrowserChoice| match c {
            BrowserChoice::Local => chromium.is_some(),
            BrowserChoice::Browserbase => browserbase.is_some(),
        };
        let default = [default, BrowserChoice::Local, BrowserChoice::Browserbase]
            .into_iter()
            .find(|c| offered(*c));
        Browsers {
            chromium,
            browserbase,
            options,
            room: Arc::new(Semaphore::new(max_at_once.max(1))),
            default,
        }
    }

    /// What tasks may ask for, for the checks at create.
    pub fn offer(&self) -> BrowserOffer {
        BrowserOffer {
            default: self.default,
            local: self.chromium.is_some(),
            browserbase: self.browserbase.is_some(),
        }
    }
}

fn open_error(e: &BrowserError) -> OpenError {
    OpenError {
        message: e.to_string(),
        may_pass: e.may_pass_later(),
    }
}

#[async_trait]
impl port::Browsers for Browsers {
    async fn open(
        &self,
        choice: BrowserChoice,
    ) -> Result<Box<dyn port::BrowserSession>, OpenError> {
        let permit = self
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| OpenError {
                message: "the browsers are shut down".into(),
                may_pass: true,
            })?;
        let browser = match choice {
            BrowserChoice::Local => {
                let chromium = self.chromium.as_ref().ok_or_else(|| OpenError {
                    message: "this deployment has no local Chromium (PJ_CHROMIUM)".into(),
                    may_pass: false,
                })?;
                Browser::Local(
                    BrowserSession::launch(chromium, self.options)
                        .await
                        .map_err(|e| open_error(&e))?,
                )
            }
            BrowserChoice::Browserbase => {
                let browserbase = self.browserbase.as_ref().ok_or_else(|| OpenError {
                    message: "this deployment has no Browserbase (BROWSERBASE_API_KEY)".into(),
                    may_pass: false,
                })?;
                Browser::Browserbase(
                    browserbase
                        .open(self.options)
                        .await
                        .map_err(|e| open_error(&e))?,
                )
            }
        };
        let id = match &browser {
            Browser::Local(session) => session
                .profile_dir()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into()),
            Browser::Browserbase(session) => session.id().to_owned(),
        };
        Ok(Box::new(Opened {
            browser,
            id,
            _permit: permit,
        }))
    }
}

enum Browser {
    Local(BrowserSession),
    Browserbase(BrowserbaseSession),
}

/// A browser of a task; its permit is given back when it is closed or dropped.
struct Opened {
    browser: Browser,
    id: String,
    _permit: OwnedSemaphorePermit,
}

impl Opened {
    fn session(&self) -> &BrowserSession {
        match &self.browser {
            Browser::Local(s) => s,
            Browser::Browserbase(s) => s.session(),
        }
    }
}

/// A reference of the page view (`e12` or `[12]` or `12`), as this crate's.
fn element_ref(raw: &str) -> Result<ElementRef, String> {
    raw.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map(ElementRef)
        .map_err(|_| format!("{raw:?} is not a reference of the page view"))
}

#[async_trait]
impl port::BrowserSession for Opened {
    fn session_id(&self) -> String {
        self.id.clone()
    }

    fn debug_url(&self) -> Option<String> {
        match &self.browser {
            Browser::Local(_) => None,
            Browser::Browserbase(s) => Some(s.debug_url().to_owned()),
        }
    }

    async fn navigate(&mut self, url: &str) -> Result<(), String> {
        self.session()
            .navigate(url)
            .await
            .map_err(|e| e.to_string())
    }

    async fn click(&mut self, element: &Element) -> Result<(), String> {
        let done = match element {
            Element::Selector(s) => self.session().click(s).await,
            Element::Ref(r) => self.session().click_ref(element_ref(r)?).await,
        };
        done.map_err(|e| e.to_string())
    }

    async fn type_text(&mut self, element: &Element, text: &str) -> Result<(), String> {
        let done = match element {
            Element::Selector(s) => self.session().type_text(s, text).await,
            Element::Ref(r) => self.session().type_ref(element_ref(r)?, text).await,
        };
        done.map_err(|e| e.to_string())
    }

    async fn wait_for(&mut self, selector: &str) -> Result<(), String> {
        self.session()
            .wait_for(selector)
            .await
            .map_err(|e| e.to_string())
    }

    async fn read(&mut self, selector: &str) -> Result<Value, String> {
        self.session()
            .extract(selector)
            .await
            .map_err(|e| e.to_string())
    }

    async fn read_fields(
        &mut self,
        fields: &[(String, FieldSpec)],
    ) -> Result<Map<String, Value>, String> {
        self.session()
            .extract_fields(fields)
            .await
            .map_err(|e| e.to_string())
    }

    async fn page_view(&mut self) -> Result<port::PageView, String> {
        let view = self
            .session()
            .observe(MAX_TEXT_FOR_MODEL)
            .await
            .map_err(|e| e.to_string())?;
        let text = view.render();
        Ok(port::PageView {
            elements: view
                .elements
                .iter()
                .map(|e| PageElement {
                    reference: e.reference.0.to_string(),
                    role: e.role.clone(),
                    name: e.name.clone(),
                    context: e.context.join(" > "),
                })
                .collect(),
            url: view.url,
            title: view.title,
            text,
        })
    }

    async fn screenshot(&mut self, full_page: bool) -> Result<Vec<u8>, String> {
        self.session()
            .screenshot(full_page)
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(self: Box<Self>) {
        let Opened { browser, id, .. } = *self;
        match browser {
            Browser::Local(session) => session.close().await,
            Browser::Browserbase(session) => {
                if let Err(e) = session.close().await {
                    tracing::warn!(session_id = %id, error = %e, "a Browserbase session could not be released");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_with_or_without_its_brackets() {
        assert_eq!(element_ref("12"), Ok(ElementRef(12)));
        assert_eq!(element_ref("[7]"), Ok(ElementRef(7)));
        assert!(element_ref("x1").is_err());
    }
}
