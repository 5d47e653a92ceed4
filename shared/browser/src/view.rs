//! A compact view of a page for a language model, in the manner of Stagehand's observe: the model
//! never sees raw HTML and never answers with code; it sees a numbered list of what a person would
//! read or act on, grouped under the sections they sit in, and answers with a number.
//!
//! The list is built in the page by `view.js` (a simplified DOM rather than Chromium's
//! accessibility tree: the DOM walk can mark each element with `data-pj-ref`, so acting on a
//! reference is a plain CSS selector and survives a second look at the page, where accessibility
//! node ids do not map back to elements without another round trip).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub(crate) const VIEW_JS: &str = include_str!("view.js");

/// A stable reference to an element of a page view: the number the model answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ElementRef(pub u32);

impl ElementRef {
    /// The CSS selector of the element (its `data-pj-ref` attribute).
    pub fn selector(self) -> String {
        format!("[data-pj-ref=\"{}\"]", self.0)
    }
}

impl std::fmt::Display for ElementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

/// One element of the view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewElement {
    /// Its reference.
    #[serde(rename = "ref")]
    pub reference: ElementRef,
    /// Its ARIA role, explicit or implied by its tag (`button`, `link`, `textbox`, `heading`,
    /// `text`, `cell`, ...).
    pub role: String,
    /// Its accessible name (label, `aria-label`, alt text, or its text), cut to 160 characters.
    pub name: String,
    /// The labels of the sections it sits in, outermost first.
    #[serde(default)]
    pub context: Vec<String>,
    /// Whether it can be clicked or typed into.
    pub interactive: bool,
    /// A heading's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// A field's current value (never a password's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A checkbox's or radio button's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<bool>,
    /// Whether a field is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// A link's target as written in the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

/// The view of a page, already cut to its size budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageView {
    /// The page's URL.
    pub url: String,
    /// The page's title.
    pub title: String,
    /// The elements kept, in document order.
    pub elements: Vec<ViewElement>,
    /// How many elements were left out to fit the budget (text first, then the last controls).
    pub omitted: usize,
}

impl PageView {
    /// Cuts the view so that [`Self::render`] fits in `budget` characters: text-only elements
    /// go first, from the end of the page, since a model can act only on controls; then
    /// controls from the end.
    pub(crate) fn fit(mut self, budget: usize) -> Self {
        loop {
            let size = self.render().chars().count();
            if size <= budget || self.elements.is_empty() {
                return self;
            }
            // Re-rendering after every single removal is quadratic on a page of thousands of
            // elements; remove a batch sized by the excess (lines are rarely under 100 chars
            // once their share of the section headers is counted, so this seldom overshoots).
            let batch = ((size - budget) / 100).clamp(1, 50);
            for _ in 0..batch {
                let victim = self
                    .elements
                    .iter()
                    .rposition(|e| !e.interactive)
                    .or_else(|| self.elements.len().checked_sub(1));
                let Some(index) = victim else { break };
                self.elements.remove(index);
                self.omitted += 1;
            }
        }
    }

    /// The text a model reads: a header, then one line per element, with a section line each
    /// time the section changes.
    ///
    /// ```text
    /// Page: Checkout (http://shop.test/checkout)
    /// ## Newsletter
    /// [3] textbox "Email" value="a@b.c"
    /// [4] button "Subscribe"
    /// ## Billing
    /// [7] button "Subscribe"
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Page: {} ({})", self.title, self.url);
        let mut section: &[String] = &[];
        for element in &self.elements {
            if element.context.as_slice() != section {
                section = &element.context;
                if section.is_empty() {
                    out.push_str("## (page)\n");
                } else {
                    let _ = writeln!(out, "## {}", section.join(" > "));
                }
            }
            let _ = write!(out, "{} {}", element.reference, element.role);
            if let Some(level) = element.level {
                let _ = write!(out, " h{level}");
            }
            let _ = write!(out, " {:?}", element.name);
            if let Some(value) = &element.value {
                let _ = write!(out, " value={value:?}");
            }
            if let Some(checked) = element.checked {
                out.push_str(if checked { " checked" } else { " unchecked" });
            }
            if element.disabled == Some(true) {
                out.push_str(" disabled");
            }
            if let Some(href) = &element.href {
                let _ = write!(out, " -> {href}");
            }
            out.push('\n');
        }
        if self.omitted > 0 {
            let _ = writeln!(out, "({} more elements left out)", self.omitted);
        }
        out
    }

    /// The element with reference `reference`, if the view kept it.
    pub fn get(&self, reference: ElementRef) -> Option<&ViewElement> {
        self.elements.iter().find(|e| e.reference == reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(n: u32, role: &str, name: &str, context: &[&str], interactive: bool) -> ViewElement {
        ViewElement {
            reference: ElementRef(n),
            role: role.into(),
            name: name.into(),
            context: context.iter().map(|s| s.to_string()).collect(),
            interactive,
            level: None,
            value: None,
            checked: None,
            disabled: None,
            href: None,
        }
    }

    #[test]
    fn the_same_name_in_two_sections_renders_under_two_headers() {
        let view = PageView {
            url: "http://x.test/".into(),
            title: "T".into(),
            elements: vec![
                element(1, "button", "Subscribe", &["Newsletter"], true),
                element(2, "button", "Subscribe", &["Billing"], true),
            ],
            omitted: 0,
        };
        let text = view.render();
        assert!(
            text.contains("## Newsletter\n[1] button \"Subscribe\""),
            "{text}"
        );
        assert!(
            text.contains("## Billing\n[2] button \"Subscribe\""),
            "{text}"
        );
    }

    #[test]
    fn fitting_a_budget_drops_text_before_controls() {
        let mut elements = Vec::new();
        for n in 0..200 {
            elements.push(element(n, "text", &"words ".repeat(10), &[], false));
        }
        elements.push(element(1000, "button", "Go", &[], true));
        let view = PageView {
            url: "u".into(),
            title: "t".into(),
            elements,
            omitted: 0,
        }
        .fit(2_000);
        assert!(view.render().chars().count() <= 2_000);
        assert!(view.get(ElementRef(1000)).is_some());
        assert!(view.omitted > 0);
        assert!(view.render().contains("more elements left out"));
    }
}
