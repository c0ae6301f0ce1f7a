//! How a supervised command is run and ended: one [`Policy`] for every kind of command baton
//! starts, with a constructor per kind so that the differences between them are written down
//! in one place.

use std::path::PathBuf;
use std::time::Duration;

/// Longest agent output line kept (a stream-json event can be large); the rest is discarded.
pub const AGENT_MAX_LINE: usize = 4 * 1024 * 1024;

/// Longest line of a hook's or a smoke test's output; the rest is discarded.
pub const SHELL_MAX_LINE: usize = 64 * 1024;

/// Once the command has ended, output is read for this long at most. The guard ends every
/// descendant of the command, so pipes still open after that are held by a process out of its
/// reach (or one a hook leaves running on purpose); like nextest's leak timeout, baton then
/// stops reading and reports the leak instead of waiting for it.
pub const LEAK_TIMEOUT: Duration = Duration::from_secs(2);

/// Past the leak timeout, reading stops as soon as nothing is waiting to be read (the pipes
/// are merely held open), or once this much more output has been read from a process that
/// keeps writing. Output that was already there is read first: baton's runtime may have been
/// busy elsewhere (committing another task) for longer than the timeout, and the command's
/// last lines (an agent's result) must not be lost to that.
pub const DRAIN_CAP: usize = 1024 * 1024;

/// How a command is run and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Run under the guard (`baton __guard`), this baton binary: a `kill -9` of baton then
    /// still ends the command and everything it started. `None` runs it as a plain child in a
    /// process group of its own; only for tests of the library, which have no baton binary.
    pub guard: Option<PathBuf>,
    /// Between SIGTERM to the command's group (a deadline, a stop) and SIGKILL to everything.
    pub grace: Duration,
    /// See [`LEAK_TIMEOUT`].
    pub leak_timeout: Duration,
    /// See [`DRAIN_CAP`]: bytes read past the leak timeout while output is still waiting.
    pub drain_cap: usize,
    /// End what the command leaves running when it exits on its own. Without (a hook that
    /// starts a dev server), only a command that is ended (deadline, stop, baton's death)
    /// takes its leftovers with it.
    pub kill_leftovers: bool,
    /// From the start: the command is ended once it has run this long.
    pub total: Option<Duration>,
    /// The command is ended once its stdout has been silent this long (see
    /// [`Supervised::postpone_idle`](super::Supervised::postpone_idle) and `heartbeat`).
    pub idle: Option<Duration>,
    /// A file the command touches while it works: when the idle deadline comes and the file
    /// was touched within `idle`, the silence is work, not a hang.
    pub heartbeat: Option<PathBuf>,
    /// Longest output line kept; the rest of a longer line is discarded.
    pub max_line: usize,
}

impl Policy {
    /// An agent session: guarded, everything it starts ends with it, total and idle deadlines.
    pub fn agent(
        guard: PathBuf,
        total: Duration,
        idle: Duration,
        heartbeat: Option<PathBuf>,
    ) -> Policy {
        Policy {
            guard: Some(guard),
            grace: Duration::from_secs(5),
            leak_timeout: LEAK_TIMEOUT,
            drain_cap: DRAIN_CAP,
            kill_leftovers: true,
            total: Some(total),
            idle: Some(idle),
            heartbeat,
            max_line: AGENT_MAX_LINE,
        }
    }

    /// A hook (`before_command`, `after_command`): what it starts in the background (a dev
    /// server) stays when it exits on its own.
    pub fn hook(guard: Option<PathBuf>, total: Duration, grace: Duration) -> Policy {
        Policy {
            kill_leftovers: false,
            ..Policy::shell(guard, total, grace)
        }
    }

    /// A smoke test: nothing of it may outlive it.
    pub fn smoke(guard: Option<PathBuf>, total: Duration, grace: Duration) -> Policy {
        Policy::shell(guard, total, grace)
    }

    /// A check after an agent reported a task completed (`[verify]`): nothing of it may
    /// outlive it.
    pub fn check(guard: Option<PathBuf>, total: Duration, grace: Duration) -> Policy {
        Policy::shell(guard, total, grace)
    }

    /// A notification command: bounded by `total`, and nothing of it outlives it.
    pub fn notify(guard: Option<PathBuf>, total: Duration) -> Policy {
        Policy {
            // A notifier that ignores SIGTERM must not make the run's end wait.
            grace: Duration::ZERO,
            ..Policy::shell(guard, total, Duration::ZERO)
        }
    }

    fn shell(guard: Option<PathBuf>, total: Duration, grace: Duration) -> Policy {
        Policy {
            guard,
            grace,
            leak_timeout: LEAK_TIMEOUT,
            drain_cap: DRAIN_CAP,
            kill_leftovers: true,
            total: Some(total),
            idle: None,
            heartbeat: None,
            max_line: SHELL_MAX_LINE,
        }
    }
}

/// baton's own binary, which guards the commands it supervises.
pub fn own_binary() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_hook_keeps_what_it_leaves_running() {
        let guard = Some(PathBuf::from("/bin/baton"));
        let second = Duration::from_secs(1);
        assert!(!Policy::hook(guard.clone(), second, second).kill_leftovers);
        assert!(Policy::smoke(guard.clone(), second, second).kill_leftovers);
        assert!(Policy::check(guard.clone(), second, second).kill_leftovers);
        assert!(Policy::notify(guard.clone(), second).kill_leftovers);
        assert!(Policy::agent(PathBuf::from("/bin/baton"), second, second, None).kill_leftovers);
    }

    #[test]
    fn every_kind_has_a_total_deadline_and_only_the_agent_an_idle_one() {
        let second = Duration::from_secs(1);
        for policy in [
            Policy::hook(None, second, second),
            Policy::smoke(None, second, second),
            Policy::check(None, second, second),
            Policy::notify(None, second),
        ] {
            assert_eq!(policy.total, Some(second));
            assert_eq!(policy.idle, None);
            assert_eq!(policy.max_line, SHELL_MAX_LINE);
        }
        let agent = Policy::agent(PathBuf::from("/bin/baton"), 2 * second, second, None);
        assert_eq!((agent.total, agent.idle), (Some(2 * second), Some(second)));
        assert!(agent.guard.is_some());
    }
}
