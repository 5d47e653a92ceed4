//! `Engine`: read, decide, compare-and-set, then the effects.

use pj_core::engine::{Applied, ApplyError};
use pj_core::ids::{Attempt, TaskId};
use pj_core::machine::Input;
use pj_core::task::{ExecState, TaskStatus};
use serde_json::json;

use crate::World;

#[tokio::test]
async fn a_change_that_loses_the_compare_and_set_is_redone_on_the_stored_version() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.queue.take();
    let stale = world.task(&task.id);
    // Another process claims the attempt after `stale` was read.
    world
        .api
        .engine
        .apply(
            &task.id,
            &Input::Claim {
                attempt: Attempt(1),
            },
            None,
        )
        .await
        .unwrap();

    let applied = world
        .api
        .engine
        .apply_to(stale.clone(), &Input::Cancel, None)
        .await
        .unwrap();

    let Applied::Changed(cancelled) = applied else {
        panic!("{applied:?}");
    };
    assert_eq!(
        cancelled.version,
        stale.version + 2,
        "written on top of the claim"
    );
    assert_eq!(world.task(&task.id), cancelled);
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.executions[0].state, ExecState::Cancelled);
    assert_eq!(
        world.queue.take().len(),
        1,
        "the claimed attempt's stop, sent once"
    );
}

#[tokio::test]
async fn a_refused_input_writes_nothing_and_sends_nothing() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.queue.take();

    let refused = world
        .api
        .engine
        .apply(&task.id, &Input::Approve, None)
        .await;

    assert!(
        matches!(refused, Err(ApplyError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(world.task(&task.id).version, task.version);
    assert!(world.queue.take().is_empty());
}

#[tokio::test]
async fn an_input_for_a_task_that_does_not_exist_is_not_found() {
    let world = World::new();
    let missing = TaskId::generate(crate::t0());

    let answer = world
        .api
        .engine
        .apply(&missing, &Input::Execute, None)
        .await;

    assert!(matches!(answer, Err(ApplyError::NotFound)), "{answer:?}");
}
