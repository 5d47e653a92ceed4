//! Drives a real Chromium over the DevTools protocol for the `browser_automation` and
//! `data_extraction` task kinds: a local headless Chromium started per task, or a Browserbase
//! session reached over the same protocol.
//!
//! # Design
//!
//! - **One way in.** A local browser is started by this crate ([`Chromium::locate`],
//!   [`BrowserSession::launch`]) in a process group of its own, with a fresh profile directory
//!   and an empty environment, and the crate then *connects* to the DevTools websocket it prints,
//!   exactly as [`BrowserSession::connect`] connects to a remote browser. chromiumoxide does the
//!   protocol; the process is ours, so no Chromium process outlives its session: closing,
//!   dropping (a cancelled task's future included) or a crash all end in one `killpg`, and the
//!   profile is removed.
//! - **The address guard on every request** (`guard`): the page's requests are paused with the
//!   DevTools `Fetch` domain and go on only when their host resolves to public addresses per
//!   [`pj_core::net::NetworkPolicy`]; a second check on the address Chromium actually connected to
//!   catches DNS rebinding after the fact and stops the session. The module's doc says what this
//!   does and does not cover.
//! - **Steps** are methods of [`BrowserSession`] (or [`Step`]s given to [`BrowserSession::run`]),
//!   each bounded by a timeout and failing with an error that names the step and what it waited
//!   for. Like Playwright's auto-waiting, a click waits for its element to be attached, visible,
//!   still and not covered; typing waits for a focusable field.
//! - **A page view for a model**, as Stagehand's observe: [`BrowserSession::observe`] lists the
//!   elements a person reads or acts on, each with a stable [`ElementRef`] (a `data-pj-ref`
//!   attribute set in the page), with its role, name and the sections it sits in, cut to a size
//!   budget; [`BrowserSession::click_ref`] and [`BrowserSession::type_ref`] act on a reference.
//!   No model is called here: choosing the reference is the server's.
//! - **Results are the caller's**: steps return values (text, PNG bytes); recording them, timing
//!   them and storing screenshots belong to the server.

mod browserbase;
mod error;
mod guard;
mod launch;
mod port;
mod session;
mod steps;
mod view;

pub use browserbase::{
    Browserbase, BrowserbaseConfig, BrowserbaseSession, CreatedSession, DEFAULT_API_URL,
};
pub use error::BrowserError;
pub use guard::BlockedRequest;
pub use launch::{CHROMIUM_FLAGS, CHROMIUM_NAMES, Chromium, ChromiumProcess};
pub use port::Browsers;
pub use session::{BrowserSession, SessionOptions};
pub use steps::{FieldSpec, Step, StepOutput};
pub use view::{ElementRef, PageView, ViewElement};
