//! The patch engine, tested through its library API and the `pj-runner apply-patch` command.
//! One test binary; the modules share the helpers in `support`.

#[path = "patch/support.rs"]
mod support;

#[path = "patch/atomic.rs"]
mod atomic;
#[path = "patch/cli.rs"]
mod cli;
#[path = "patch/endings.rs"]
mod endings;
#[path = "patch/files.rs"]
mod files;
#[path = "patch/ladder.rs"]
mod ladder;
#[path = "patch/order.rs"]
mod order;
#[path = "patch/props.rs"]
mod props;
#[path = "patch/replies.rs"]
mod replies;
#[path = "patch/report.rs"]
mod report;
#[path = "patch/safety.rs"]
mod safety;
#[path = "patch/whitespace.rs"]
mod whitespace;
