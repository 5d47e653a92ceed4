use pj_core::ports::{MailError, Mailer};
use pj_local::OutboxMailer;

use crate::support::{Part, assert_is_the_email, email};

fn eml_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("outbox")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_email_lands_in_the_outbox_as_one_rfc5322_file_with_text_and_html() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let mailer = OutboxMailer::new(&outbox).expect("outbox");
    let sent = email(
        "tsk_01hx-1",
        "Task: Add a README\nStatus: completed\nPull request: https://github.com/o/r/pull/7\n",
    );

    mailer.send(&sent).await.expect("sent");

    assert_eq!(eml_files(&outbox), ["tsk_01hx-1.eml"]);
    let raw = std::fs::read_to_string(outbox.join("tsk_01hx-1.eml")).expect("read");
    assert!(raw.contains("\r\n"), "RFC 5322 lines end in CRLF");
    assert_is_the_email(&raw, &sent);
}

#[tokio::test]
async fn sending_the_same_attempt_again_replaces_its_file_instead_of_adding_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = OutboxMailer::new(dir.path()).expect("outbox");

    mailer
        .send(&email("tsk_01hx-2", "first try\n"))
        .await
        .expect("sent");
    let again = email("tsk_01hx-2", "second try\n");
    mailer.send(&again).await.expect("sent again");

    assert_eq!(eml_files(dir.path()), ["tsk_01hx-2.eml"]);
    let raw = std::fs::read_to_string(dir.path().join("tsk_01hx-2.eml")).expect("read");
    assert_is_the_email(&raw, &again);
    let text = Part::parse(&raw).parts()[0].text();
    assert!(!text.contains("first try"), "{text}");
}

#[tokio::test]
async fn an_invalid_address_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = OutboxMailer::new(dir.path()).expect("outbox");

    let mut bad_to = email("tsk_01hx-3", "x\n");
    bad_to.to = "not an address".to_owned();
    let err = mailer.send(&bad_to).await.expect_err("refused");
    assert!(
        matches!(err, MailError::Permanent(_)),
        "a recipient that cannot be parsed never will be: {err:?}"
    );
    let err = format!("{err:#}");
    assert!(err.contains("not an address"), "{err}");
    assert!(err.contains("notification address"), "{err}");

    let mut bad_from = email("tsk_01hx-3", "x\n");
    bad_from.from = "pj@".to_owned();
    let err = mailer.send(&bad_from).await.expect_err("refused");
    assert!(
        matches!(err, MailError::Retryable(_)),
        "a bad sender is the operator's to fix, then sent: {err:?}"
    );
    let err = format!("{err:#}");
    assert!(err.contains("PJ_EMAIL_FROM"), "{err}");

    assert!(eml_files(dir.path()).is_empty(), "nothing written");
}

#[tokio::test]
async fn a_key_that_would_leave_the_outbox_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let mailer = OutboxMailer::new(&outbox).expect("outbox");

    let err = mailer
        .send(&email("../escape", "x\n"))
        .await
        .expect_err("refused");
    assert!(format!("{err:#}").contains("idempotency key"), "{err:#}");
    assert_eq!(eml_files(dir.path()), ["outbox"]);
}
