//! Tests against a real headless Chromium and local test pages on 127.0.0.1. Chromium is
//! required: without it every test fails with a message saying how to install it.

mod browserbase;
mod guard;
mod lifecycle;
mod steps;
mod support;
mod view;
