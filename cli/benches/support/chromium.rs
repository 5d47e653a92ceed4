//! A fresh headless Chromium for the benchmarks that drive one directly: a new profile (so an
//! empty cache) and our own flags. A module of its own so that the benchmarks without a browser
//! do not compile it.

use std::path::Path;

use chromiumoxide::browser::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::task::JoinHandle;

pub struct FreshChromium {
    pub browser: Browser,
    events: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl FreshChromium {
    pub async fn launch(chromium: &Path) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let config = BrowserConfig::builder()
            .chrome_executable(chromium)
            .user_data_dir(profile.path())
            // The same flags as ours (chromiumoxide adds the leading dashes itself).
            .args(
                pj_browser::CHROMIUM_FLAGS
                    .iter()
                    .map(|f| f.trim_start_matches("--")),
            )
            .build()
            .map_err(|e| anyhow::anyhow!(e))?;
        let (browser, mut handler) = Browser::launch(config).await?;
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Self {
            browser,
            events,
            _profile: profile,
        })
    }

    /// Closes the browser and waits for its process to end.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.browser.close().await?;
        self.browser.wait().await?;
        self.events.abort();
        Ok(())
    }
}
