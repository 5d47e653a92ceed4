//! Process identity and signals, read from Linux's `/proc`.
//!
//! A pid alone does not name a process for long: once it ends, the kernel hands the number to
//! the next process. After a restart of the server, the only proof that a pid is still our
//! runner is the start time the kernel recorded for it (field 22 of `/proc/<pid>/stat`, in
//! clock ticks since boot), so every reference carries it and every signal checks it first.

use std::io;
use std::time::Duration;

/// How often a stop looks whether the process group is gone yet.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A runner process as its `runner_ref` names it: `pid:<pid>:<starttime>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcRef {
    pub pid: i32,
    /// `None` where `/proc` could not be read when the process started (not Linux); such a
    /// reference is trusted only while the process is our own child.
    pub starttime: Option<u64>,
}

impl ProcRef {
    /// The reference of a process that is running now (or is our unreaped child).
    pub fn of_pid(pid: i32) -> ProcRef {
        ProcRef {
            pid,
            starttime: read_stat(pid).map(|s| s.starttime),
        }
    }

    /// Reads `pid:<pid>:<starttime>` (or `pid:<pid>`). Pids 0 and 1 are refused: signalling
    /// group 0 or -1 would reach the server itself or every process it may signal.
    pub fn parse(raw: &str) -> Option<ProcRef> {
        let rest = raw.trim().strip_prefix("pid:")?;
        let (pid, starttime) = match rest.split_once(':') {
            Some((pid, start)) => (pid, Some(start.parse::<u64>().ok()?)),
            None => (rest, None),
        };
        let pid = pid.parse::<i32>().ok().filter(|p| *p > 1)?;
        Some(ProcRef { pid, starttime })
    }

    pub fn encode(&self) -> String {
        match self.starttime {
            Some(start) => format!("pid:{}:{start}", self.pid),
            None => format!("pid:{}", self.pid),
        }
    }

    /// Whether the process runs and is provably the one this reference names. Zombies count as
    /// ended: their work is over, only the parent's bookkeeping is left.
    pub fn is_alive(&self) -> bool {
        self.live_stat().is_some()
    }

    fn live_stat(&self) -> Option<Stat> {
        let stat = read_stat(self.pid)?;
        let same = self.starttime.is_some_and(|s| s == stat.starttime);
        (same && !stat.is_dead()).then_some(stat)
    }

    /// Ends the process and its group: SIGTERM, then SIGKILL when anything of the group is still
    /// there after `grace`. A process that is gone, or is not provably ours, is left alone.
    ///
    /// `trusted` says the pid is our own unreaped child, which is enough where its start time
    /// is unknown.
    pub async fn terminate(&self, grace: Duration, trusted: bool) -> io::Result<()> {
        let Some(stat) = read_stat(self.pid).filter(|s| !s.is_dead()) else {
            return Ok(());
        };
        let ours = match self.starttime {
            Some(start) => start == stat.starttime,
            None => trusted,
        };
        if !ours {
            return Ok(());
        }
        // Our runners lead their own group; a process that left it is signalled alone, never
        // the group it joined.
        let target = if stat.pgrp == self.pid {
            Target::Group(self.pid)
        } else {
            Target::Process(self.pid)
        };
        if !target.signal(libc::SIGTERM)? {
            return Ok(());
        }
        let give_up = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < give_up {
            tokio::time::sleep(STOP_POLL).await;
            if !target.has_live_members() {
                return Ok(());
            }
        }
        tracing::warn!(
            pid = self.pid,
            "runner did not end within the grace period; killing it"
        );
        target.signal(libc::SIGKILL)?;
        Ok(())
    }
}

/// What a signal is sent to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Group(i32),
    Process(i32),
}

impl Target {
    /// Sends `sig`; `Ok(false)` when nothing was there to receive it.
    pub fn signal(self, sig: i32) -> io::Result<bool> {
        let raw = match self {
            Target::Group(pgid) => {
                // Never the server's own group, whatever a stored reference says.
                // SAFETY: getpgrp has no preconditions.
                if pgid <= 1 || pgid == unsafe { libc::getpgrp() } {
                    return Ok(false);
                }
                -pgid
            }
            Target::Process(pid) => {
                if pid <= 1 || pid == std::process::id() as i32 {
                    return Ok(false);
                }
                pid
            }
        };
        // SAFETY: kill has no memory-safety preconditions; the target was checked above.
        if unsafe { libc::kill(raw, sig) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            Ok(false)
        } else {
            Err(err)
        }
    }

    /// Whether any process of the target still runs. Zombies do not count: in a container whose
    /// init does not reap, an orphan's zombie would otherwise keep a stopped group "alive".
    pub fn has_live_members(self) -> bool {
        match self {
            Target::Process(pid) => read_stat(pid).is_some_and(|s| !s.is_dead()),
            Target::Group(pgid) => group_has_live_members(pgid),
        }
    }
}

fn group_has_live_members(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    if unsafe { libc::kill(-pgid, 0) } != 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // Without /proc the kernel's answer above is the best there is.
        return true;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .any(|s| s.pgrp == pgid && !s.is_dead())
}

/// The fields of `/proc/<pid>/stat` this crate needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    state: char,
    pgrp: i32,
    starttime: u64,
}

impl Stat {
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

fn read_stat(pid: i32) -> Option<Stat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&raw)
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(raw: &str) -> Option<Stat> {
    let after = &raw[raw.rfind(')')? + 1..];
    // Field 3 is the first after the name.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(5 - 3)?.parse().ok()?;
    let starttime = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        starttime,
    })
}

/// Reads the named variables from the environment a process started with. Only these names
/// are kept: the rest of that environment holds the runner's secrets.
pub(crate) fn read_env_vars(pid: i32, names: &[&str]) -> Vec<(String, String)> {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return Vec::new();
    };
    raw.split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (name, value) = entry.split_once('=')?;
            names
                .contains(&name)
                .then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Names a signal for an exit detail.
pub(crate) fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let raw = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let stat = parse_stat(raw).expect("parses");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.starttime, 987654);
    }

    #[test]
    fn refs_round_trip_and_refuse_pids_that_would_signal_everything() {
        let r = ProcRef {
            pid: 1234,
            starttime: Some(99),
        };
        assert_eq!(ProcRef::parse(&r.encode()), Some(r));
        assert_eq!(
            ProcRef::parse("pid:77"),
            Some(ProcRef {
                pid: 77,
                starttime: None
            })
        );
        for bad in [
            "pid:0:5", "pid:1:5", "pid:-5:5", "pid:x:5", "pid:5:x", "gha:123", "",
        ] {
            assert_eq!(ProcRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn this_process_is_alive_under_its_own_ref() {
        let me = ProcRef::of_pid(std::process::id() as i32);
        assert!(me.starttime.is_some());
        assert!(me.is_alive());
        let other = ProcRef {
            starttime: me.starttime.map(|s| s + 1),
            ..me
        };
        assert!(!other.is_alive());
    }
}
