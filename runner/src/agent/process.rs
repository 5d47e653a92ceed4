//! Child processes that cannot outlive the work that started them.
//!
//! `kill_on_drop` ends the child itself, but not what the child started (git's
//! `git-remote-https`, a verify script's background jobs). Each child therefore leads a process
//! group of its own, and this guard kills the whole group when the work is dropped (the
//! watchdog, a signal) or when the child is done.

/// The process group led by a child started with `process_group(0)`; killed on drop.
#[derive(Debug)]
pub struct ProcessGroup(Option<i32>);

impl ProcessGroup {
    /// The group of the child with this pid (`None` when the child has already been reaped).
    pub fn of(pid: Option<u32>) -> Self {
        ProcessGroup(pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0))
    }

    /// Kills every process of the group.
    pub fn kill(&self) {
        let Some(pid) = self.0 else {
            return;
        };
        // SAFETY: killpg only sends a signal; the group id is the child's own pid, as
        // `process_group(0)` made it, so no unrelated group is hit. An error (the group is
        // already gone) needs no handling.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
