//! SES: a sent email shows in moto's record of sent mail.
//!
//! moto keeps every sent message in its SES backend (`sent_messages`, of `Message` models); in
//! server mode its dashboard API `GET /moto-api/data.json` lists every tracked model's fields,
//! sent SES messages included (`ses` → `Message`: `id`, `source`, `subject`, `body`,
//! `destinations`). For Simple content moto keeps the HTML part as the body.

use pj_aws::provision::verify_email_identity;
use pj_aws::service;
use pj_core::ports::{Email, Mailer};
use serde_json::Value;

use crate::{aws, endpoint, unique_name};

async fn sent_messages() -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", endpoint().trim_end_matches('/'));
    let data: Value = reqwest::get(&url)
        .await
        .expect("moto's data endpoint answers")
        .json()
        .await
        .expect("moto's data is JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_email_sent_should_appear_in_motos_record_of_sent_mail() {
    let aws = aws().await;
    let domain = format!("{}.example.com", unique_name("mail"));
    verify_email_identity(aws.ses(), &domain).await.unwrap();
    let subject = format!("Task completed: {}", unique_name("subject"));
    let email = Email {
        idempotency_key: "tsk_test-1".into(),
        from: format!("Pithy Jaunt <pj@{domain}>"),
        to: "owner@example.com".into(),
        subject: subject.clone(),
        text: "Your task completed: https://github.com/o/r/pull/1".into(),
        html: "<p>Your task completed: <a href=\"https://github.com/o/r/pull/1\">PR</a></p>".into(),
    };
    aws.ses_mailer().send(&email).await.unwrap();

    let sent = sent_messages().await;
    let message = sent
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .unwrap_or_else(|| panic!("the email is not among moto's sent messages: {sent:?}"));
    assert_eq!(message["source"], email.from.as_str());
    assert_eq!(
        message["destinations"]["ToAddresses"][0],
        "owner@example.com"
    );
    assert_eq!(message["body"], email.html.as_str());
    let counted = aws.metrics().snapshot();
    assert_eq!(counted.operation(service::SES, "SendEmail").calls, 1);
}

#[tokio::test]
async fn an_email_from_an_unverified_sender_should_fail() {
    let aws = aws().await;
    let email = Email {
        idempotency_key: "tsk_test-2".into(),
        from: format!("pj@{}.example.org", unique_name("unverified")),
        to: "owner@example.com".into(),
        subject: "s".into(),
        text: "t".into(),
        html: "h".into(),
    };
    let err = aws.ses_mailer().send(&email).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("SendEmail"),
        "the error should name the call: {err:#}"
    );
}
