//! Prints a sample runner callback of `events/` signed now with the development master
//! secret, for `cargo lambda invoke --data-ascii` (a signature is good for five minutes):
//!
//! ```sh
//! cargo lambda invoke webhook --data-ascii "$(scripts/dev-aws sign events/webhook-task-started.json)"
//! ```

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: sign-event EVENT_FILE")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let mut event: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    pj_lambda::samples::sign_event_now(&mut event)?;
    println!("{}", serde_json::to_string(&event)?);
    Ok(())
}
