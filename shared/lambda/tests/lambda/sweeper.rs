//! `sweeper`: the sample scheduled event runs a sweep.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use pj_core::ports::QueueName;
use pj_core::time::ManualClock;
use pj_lambda::functions;

use crate::support::{TestApp, event};

#[tokio::test]
async fn a_scheduled_sweep_should_send_a_lost_dispatch_again() {
    let app = TestApp::new().await;
    let schedule: EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&event("sweeper-schedule.json")).expect("a scheduled event");
    assert_eq!(schedule.detail_type, "Scheduled Event");

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let api = app.wiring_with_clock("api", clock.clone());
    let created = crate::support::call(
        &app.api(&api),
        crate::support::http_request(&event("api-create-task.json")),
    )
    .await;
    assert_eq!(created.status, http::StatusCode::CREATED);
    let sweeper = app.sweeper(&app.wiring_with_clock("sweeper", clock.clone()));

    let nothing_yet = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(nothing_yet.changed, 0);
    // Nobody took the dispatch message for longer than PJ_LOST_DISPATCH_SECS.
    clock.advance(chrono::Duration::seconds(301));
    let report = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!((report.looked_at, report.changed), (1, 1), "{report:?}");
    let messages = app.peek(QueueName::Dispatch).await;
    assert_eq!(
        messages.len(),
        2,
        "the first message and the one sent again: {messages:?}"
    );
}
