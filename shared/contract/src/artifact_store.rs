//! The contract of [`ArtifactStore`]: an attempt's files, written once under their name.

use chrono::{DateTime, TimeDelta, Utc};
use pj_core::artifacts::{Artifact, ArtifactName, ArtifactStore, PutOutcome};
use pj_core::ids::{Attempt, TaskId};

use crate::{must, start};

const SUITE: &str = "artifact_store";

/// Runs every check of the artifact store contract.
pub async fn artifact_store_contract<S: ArtifactStore + ?Sized>(store: &S) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $( start(SUITE, stringify!($check)); $check(store).await; )*
        };
    }
    run!(
        a_stored_artifact_reads_back_byte_for_byte,
        a_taken_name_should_keep_its_first_bytes,
        list_should_hold_the_tasks_artifacts_only_by_attempt_then_name,
        a_missing_artifact_should_be_none,
        an_expired_artifact_should_be_neither_listed_nor_served,
    );
}

fn task() -> TaskId {
    TaskId::generate(Utc::now())
}

fn name(raw: &str) -> ArtifactName {
    ArtifactName::parse(raw).unwrap()
}

fn later() -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(7)
}

/// Bytes every value of which occurs, so an adapter that treats them as text fails.
fn png_like() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(70_000));
    bytes
}

async fn a_stored_artifact_reads_back_byte_for_byte<S: ArtifactStore + ?Sized>(store: &S) {
    let t = task();
    let n = name("a1-step-2.png");
    let put = must(
        store.put(&t, Attempt(1), &n, png_like(), later()).await,
        "put",
    );
    assert_eq!(put, PutOutcome::Stored);
    let (artifact, bytes) = must(store.get(&t, &n, Utc::now()).await, "get")
        .expect("the stored artifact should be found");
    assert_eq!(
        artifact,
        Artifact::new(n.clone(), Attempt(1), png_like().len() as u64)
    );
    assert_eq!(artifact.content_type, "image/png");
    assert!(bytes == png_like(), "the bytes read back differ");
}

async fn a_taken_name_should_keep_its_first_bytes<S: ArtifactStore + ?Sized>(store: &S) {
    let t = task();
    let n = name("a1-reply-1.md");
    must(
        store
            .put(&t, Attempt(1), &n, b"first".to_vec(), later())
            .await,
        "first put",
    );
    let again = must(
        store
            .put(&t, Attempt(2), &n, b"second".to_vec(), later())
            .await,
        "second put",
    );
    assert_eq!(again, PutOutcome::Duplicate);
    let (artifact, bytes) = must(store.get(&t, &n, Utc::now()).await, "get").unwrap();
    assert_eq!(bytes, b"first");
    assert_eq!(artifact.attempt, Attempt(1));
}

async fn list_should_hold_the_tasks_artifacts_only_by_attempt_then_name<
    S: ArtifactStore + ?Sized,
>(
    store: &S,
) {
    let t = task();
    let other = task();
    for (attempt, raw) in [
        (2, "a2-b.json"),
        (1, "a1-z.txt"),
        (2, "a2-a.md"),
        (1, "a1-a.png"),
    ] {
        must(
            store
                .put(
                    &t,
                    Attempt(attempt),
                    &name(raw),
                    raw.as_bytes().to_vec(),
                    later(),
                )
                .await,
            format!("put {raw}"),
        );
    }
    must(
        store
            .put(
                &other,
                Attempt(1),
                &name("a1-else.txt"),
                b"x".to_vec(),
                later(),
            )
            .await,
        "put another task's",
    );
    let listed = must(store.list(&t, Utc::now()).await, "list");
    let names: Vec<(u32, &str)> = listed
        .iter()
        .map(|a| (a.attempt.0, a.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (1, "a1-a.png"),
            (1, "a1-z.txt"),
            (2, "a2-a.md"),
            (2, "a2-b.json")
        ]
    );
    assert_eq!(listed[1].size, "a1-z.txt".len() as u64);
    assert_eq!(listed[1].content_type, "text/plain; charset=utf-8");
}

async fn a_missing_artifact_should_be_none<S: ArtifactStore + ?Sized>(store: &S) {
    let got = must(
        store.get(&task(), &name("nothing.txt"), Utc::now()).await,
        "get",
    );
    assert!(got.is_none());
    assert!(must(store.list(&task(), Utc::now()).await, "list").is_empty());
}

async fn an_expired_artifact_should_be_neither_listed_nor_served<S: ArtifactStore + ?Sized>(
    store: &S,
) {
    let t = task();
    let n = name("a1-old.txt");
    let expires = Utc::now() + TimeDelta::minutes(1);
    must(
        store
            .put(&t, Attempt(1), &n, b"old".to_vec(), expires)
            .await,
        "put",
    );
    let after = expires + TimeDelta::seconds(1);
    assert!(must(store.get(&t, &n, after).await, "get").is_none());
    assert!(must(store.list(&t, after).await, "list").is_empty());
    must(store.purge_expired(after).await, "purge");
    assert!(must(store.get(&t, &n, after).await, "get after purge").is_none());
}
