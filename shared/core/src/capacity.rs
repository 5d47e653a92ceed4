//! How many attempts may run at once, per user and in all, and who goes next.
//!
//! An attempt whose dispatch is asked for waits `queued` while its owner already has
//! `per_user` attempts under way, or the deployment has `total`. Waiting attempts start in the
//! order their dispatch was asked for: an attempt may start only when the ones ahead of it that
//! could start (their owner has room) fit as well, so a newer task never overtakes an older one,
//! and one user's backlog never holds up another user's task.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::ids::{TaskId, UserId};
use crate::task::{ExecState, RunnerKind, Task};

/// The limits; `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// `PJ_MAX_RUNNING_PER_USER`.
    pub per_user: Option<u32>,
    /// `PJ_MAX_RUNNING`.
    pub total: Option<u32>,
}

/// The answer for one attempt that waits for dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It may be claimed and started now.
    Start,
    /// It waits; the words say for what, for the log.
    Wait(String),
}

/// An attempt of the active set, as this rule sees it.
#[derive(Debug, Clone)]
struct Slot<'a> {
    owner: &'a UserId,
    id: &'a TaskId,
    requested_at: DateTime<Utc>,
    under_way: bool,
}

impl Capacity {
    /// Whether any limit is set, so callers can skip reading the active set.
    pub fn is_limited(&self) -> bool {
        self.per_user.is_some() || self.total.is_some()
    }

    /// Decides for `candidate` (whose current attempt waits for dispatch) given `active`: the
    /// tasks under way in the deployment, in any order; the candidate itself may be among them.
    pub fn admit(&self, candidate: &Task, active: &[Task]) -> Admission {
        let Some(mine) = slot(candidate).filter(|s| !s.under_way) else {
            return Admission::Start;
        };
        let mut slots: Vec<Slot<'_>> = active
            .iter()
            .filter(|t| t.id != candidate.id)
            .filter_map(slot)
            .collect();
        slots.push(mine.clone());
        let per_user = self.per_user.map_or(usize::MAX, |n| n as usize);

        // Under way, per owner and in all.
        let mut running: HashMap<&UserId, usize> = HashMap::new();
        let mut total_running = 0usize;
        for s in slots.iter().filter(|s| s.under_way) {
            *running.entry(s.owner).or_default() += 1;
            total_running += 1;
        }

        // Waiting, oldest first; each owner's first (per_user - running) may go.
        let mut waiting: Vec<&Slot<'_>> = slots.iter().filter(|s| !s.under_way).collect();
        waiting.sort_by(|a, b| (a.requested_at, a.id).cmp(&(b.requested_at, b.id)));
        let mut room: HashMap<&UserId, usize> = HashMap::new();
        let mut eligible_ahead = 0usize;
        for s in waiting {
            let left = room.entry(s.owner).or_insert_with(|| {
                per_user.saturating_sub(running.get(s.owner).copied().unwrap_or(0))
            });
            let is_mine = s.id == mine.id;
            if *left == 0 {
                if is_mine {
                    let n = running.get(s.owner).copied().unwrap_or(0);
                    return Admission::Wait(format!(
                        "its owner already has {n} attempt(s) under way or ahead in line \
                         (PJ_MAX_RUNNING_PER_USER={per_user})"
                    ));
                }
                continue;
            }
            *left -= 1;
            if is_mine {
                break;
            }
            eligible_ahead += 1;
        }
        if let Some(total) = self.total.map(|n| n as usize)
            && total_running + eligible_ahead >= total
        {
            return Admission::Wait(format!(
                "{total_running} attempt(s) are under way and {eligible_ahead} are ahead in line \
                 (PJ_MAX_RUNNING={total})"
            ));
        }
        Admission::Start
    }
}

/// The task's open attempt as a slot: under way once claimed, waiting while requested.
fn slot(task: &Task) -> Option<Slot<'_>> {
    if task.status.is_terminal() {
        return None;
    }
    let exec = task.current_execution()?;
    // The built-in kinds start no runner: the limits are on runners.
    if exec.runner == RunnerKind::Builtin {
        return None;
    }
    let under_way = match exec.state {
        ExecState::Requested => false,
        ExecState::Claimed | ExecState::Dispatched | ExecState::Running => true,
        _ => return None,
    };
    Some(Slot {
        owner: &task.owner,
        id: &task.id,
        requested_at: exec.requested_at,
        under_way,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::{NewTask, RepoPolicy};
    use crate::machine::Policy;

    /// A task of `owner` whose dispatch was asked for `at_secs` after a fixed time, in `state`.
    fn task(owner: &str, at_secs: i64, state: ExecState) -> Task {
        let body = serde_json::json!({"repo_url": "https://github.com/o/r", "prompt": "p"});
        let at = DateTime::from_timestamp(1_800_000_000 + at_secs, 0).expect("a time");
        let new = NewTask::parse(&body, RepoPolicy::HttpsOnly).expect("a valid body");
        let owner = UserId::parse(owner).expect("a user id");
        let (mut task, _) = new.into_task(owner, None, 3, at, &Policy::default());
        let exec = task.current_execution_mut().expect("an execution");
        exec.state = state;
        if state == ExecState::Running {
            task.status = crate::task::TaskStatus::Running;
        }
        task
    }

    fn waiting(owner: &str, at_secs: i64) -> Task {
        task(owner, at_secs, ExecState::Requested)
    }

    fn under_way(owner: &str, at_secs: i64) -> Task {
        task(owner, at_secs, ExecState::Running)
    }

    fn caps(per_user: Option<u32>, total: Option<u32>) -> Capacity {
        Capacity { per_user, total }
    }

    #[test]
    fn without_limits_every_attempt_starts() {
        let active: Vec<Task> = (0..50).map(|i| under_way("ada", i)).collect();
        assert_eq!(
            caps(None, None).admit(&waiting("ada", 99), &active),
            Admission::Start
        );
    }

    #[test]
    fn a_user_at_their_limit_waits_and_another_user_starts() {
        let active = vec![under_way("ada", 1)];
        let limit = caps(Some(1), None);
        assert!(matches!(
            limit.admit(&waiting("ada", 2), &active),
            Admission::Wait(_)
        ));
        assert_eq!(limit.admit(&waiting("bob", 2), &active), Admission::Start);
    }

    #[test]
    fn waiting_attempts_start_in_the_order_they_were_asked_for() {
        let older = waiting("ada", 1);
        let newer = waiting("ada", 2);
        let active = vec![older.clone(), newer.clone()];
        let limit = caps(Some(1), None);
        assert_eq!(limit.admit(&older, &active), Admission::Start);
        assert!(matches!(limit.admit(&newer, &active), Admission::Wait(_)));
    }

    #[test]
    fn the_total_limit_counts_those_ahead_that_could_start() {
        let running = under_way("ada", 0);
        let ahead = waiting("bob", 1);
        let me = waiting("cyd", 2);
        let active = vec![running, ahead, me.clone()];
        assert!(matches!(
            caps(None, Some(2)).admit(&me, &active),
            Admission::Wait(_)
        ));
        assert_eq!(caps(None, Some(3)).admit(&me, &active), Admission::Start);
    }

    #[test]
    fn one_users_blocked_backlog_does_not_hold_up_another_user() {
        let mut active = vec![under_way("ada", 0)];
        active.extend((1..20).map(|i| waiting("ada", i)));
        let me = waiting("bob", 30);
        active.push(me.clone());
        assert_eq!(caps(Some(1), Some(2)).admit(&me, &active), Admission::Start);
    }

    #[test]
    fn an_attempt_already_under_way_is_never_held_back() {
        let me = under_way("ada", 5);
        let active: Vec<Task> = (0..5).map(|i| under_way("ada", i)).collect();
        assert_eq!(caps(Some(1), Some(1)).admit(&me, &active), Admission::Start);
    }
}
