use serde_json::{Value, json};

use crate::support::{ALICE, spawn_app};

#[tokio::test]
async fn when_webhook_timestamp_is_huge_or_at_the_ends_of_i64_should_answer_401_not_500() {
    let app = spawn_app().await;
    let id = app.waiting_task(ALICE).await;
    let event = json!({"task_id": id, "attempt": 1, "type": "task.started"}).to_string();
    let batch = json!({"task_id": id, "attempt": 1, "lines": []}).to_string();
    for timestamp in [
        "99999999999999999999",
        "-9223372036854775808",
        "9223372036854775807",
        "-99999999999999999999",
    ] {
        for (path, body) in [
            ("/webhooks/runner", &event),
            ("/webhooks/runner/logs", &batch),
        ] {
            let response = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .header("webhook-id", "msg_extreme")
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", "v1,Zm9vYmFy")
                .body(body.clone())
                .send()
                .await
                .expect("the delivery is answered");
            assert_eq!(response.status(), 401, "{path} at {timestamp}");
            let error: Value = response.json().await.expect("a JSON error");
            assert_eq!(
                error["error"]["code"], "unauthorized",
                "{path} at {timestamp}"
            );
        }
    }
}
