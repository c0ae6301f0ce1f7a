//! The commands around a plan run: `[run] before_command` and `[run] after_command` (e.g. stop
//! a dev server before the agents work, start it again after).
//!
//! Owns running one hook through `sh -c` in the repository root with a timeout, handing its
//! output lines to the caller, and the [`HookOutcome`]. A hook runs under the guard (see
//! `crate::supervise`): should baton die while it runs (even by `kill -9`), the hook and
//! everything it started end. A process a hook starts in the background (the dev server) is
//! left running when the hook exits normally; on timeout the hook and everything it started
//! are ended. A background process should send its output elsewhere (`> server.log 2>&1 &`):
//! baton stops reading a hook's output shortly after the hook exits.
//!
//! It must not decide when hooks run (that `after_command` runs however the plan ended is the
//! engine's duty), whether a failed hook stops the run, or print anything itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::supervise::{self, CommandSpec, Ended, Policy};

/// Between SIGTERM and SIGKILL to the hook's process group on timeout.
const GRACE: Duration = Duration::from_secs(5);

/// How a hook went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Ok {
        duration: Duration,
    },
    /// Exited non-zero, was killed by a signal, or could not be started (then `code` and
    /// `signal` are both `None` and `tail` says why).
    Failed {
        code: Option<i32>,
        signal: Option<i32>,
        /// The last output lines.
        tail: String,
    },
    TimedOut {
        after: Duration,
    },
}

impl HookOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, HookOutcome::Ok { .. })
    }

    /// One line for a person, naming the hook: "before_command failed (exit 2)".
    pub fn describe(&self, name: &str) -> String {
        match self {
            HookOutcome::Ok { duration } => {
                format!("{name} done in {}", crate::report::render::human(*duration))
            }
            HookOutcome::Failed {
                code: Some(code), ..
            } => format!("{name} failed (exit {code})"),
            HookOutcome::Failed {
                signal: Some(signal),
                ..
            } => {
                format!("{name} failed (killed by signal {signal})")
            }
            HookOutcome::Failed { tail, .. } => format!("{name} failed: {tail}"),
            HookOutcome::TimedOut { after } => {
                format!("{name} timed out after {} and was ended", crate::report::render::human(*after))
            }
        }
    }
}

/// Runs hook `name` (`"before_command"`, `"after_command"`: used in messages) as `sh -c
/// command` in `root`, ending its process group after `timeout`. Each output line goes to
/// `on_line`. Never fails: every problem is an outcome.
pub async fn run_hook(
    name: &str,
    command: &str,
    root: &Path,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> HookOutcome {
    let guard = match supervise::own_binary() {
        Ok(guard) => guard,
        Err(error) => {
            return HookOutcome::Failed {
                code: None,
                signal: None,
                tail: format!("could not run {name}: cannot find baton's own binary to guard it: {error}"),
            }
        }
    };
    run_hook_with(name, command, root, Some(guard), timeout, GRACE, on_line).await
}

/// [`run_hook`] with the guard made explicit: tests have no baton binary to guard with.
async fn run_hook_with(
    name: &str,
    command: &str,
    root: &Path,
    guard: Option<PathBuf>,
    timeout: Duration,
    grace: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> HookOutcome {
    let job = CommandSpec::shell(command, root.to_path_buf());
    let policy = Policy::hook(guard, timeout, grace);
    let finished = supervise::run_to_end(&job, &policy, &mut |_, line| on_line(line)).await;
    match finished.ended {
        Ended::Exited(status) if status.success() => HookOutcome::Ok {
            duration: finished.duration,
        },
        Ended::Exited(status) => HookOutcome::Failed {
            code: status.code,
            signal: status.signal,
            tail: finished.tail,
        },
        Ended::TimedOut => HookOutcome::TimedOut { after: timeout },
        Ended::Error(error) => HookOutcome::Failed {
            code: None,
            signal: None,
            tail: format!("could not run {name} in {}: {}", root.display(), crate::exit::render_chain(&error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hook(command: &str, root: &Path, timeout: Duration) -> (HookOutcome, Vec<String>) {
        let mut lines = Vec::new();
        let outcome = run_hook_with(
            "before_command",
            command,
            root,
            None,
            timeout,
            Duration::from_millis(300),
            &mut |line| lines.push(line.to_owned()),
        )
        .await;
        (outcome, lines)
    }

    #[tokio::test]
    async fn runs_in_the_root_and_hands_over_its_lines() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("marker"), "").unwrap();
        let (outcome, lines) = hook("ls; echo err >&2", root.path(), Duration::from_secs(30)).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(outcome
            .describe("before_command")
            .starts_with("before_command done in "));
        assert!(lines.contains(&"marker".to_owned()) && lines.contains(&"err".to_owned()));
    }

    #[tokio::test]
    async fn a_failing_hook_reports_its_code_and_tail() {
        let root = tempfile::tempdir().unwrap();
        let (outcome, _) = hook(
            "echo cannot stop the server; exit 7",
            root.path(),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(
            outcome,
            HookOutcome::Failed {
                code: Some(7),
                signal: None,
                tail: "cannot stop the server".into()
            }
        );
        assert_eq!(
            outcome.describe("before_command"),
            "before_command failed (exit 7)"
        );
    }

    #[tokio::test]
    async fn a_hook_killed_by_a_signal_says_which() {
        let root = tempfile::tempdir().unwrap();
        let (outcome, _) = hook("kill -USR1 $$", root.path(), Duration::from_secs(30)).await;
        assert!(
            matches!(
                outcome,
                HookOutcome::Failed {
                    code: None,
                    signal: Some(libc::SIGUSR1),
                    ..
                }
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_hook_times_out() {
        let root = tempfile::tempdir().unwrap();
        let (outcome, lines) = hook(
            "echo begin; sleep 30",
            root.path(),
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(
            outcome,
            HookOutcome::TimedOut {
                after: Duration::from_millis(500)
            }
        );
        assert_eq!(lines, ["begin"]);
        assert_eq!(
            outcome.describe("after_command"),
            "after_command timed out after 0.5s and was ended"
        );
    }

    #[tokio::test]
    async fn a_missing_root_is_a_failure_that_says_so() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("gone");
        let (outcome, _) = hook("true", &missing, Duration::from_secs(5)).await;
        let HookOutcome::Failed {
            code: None,
            signal: None,
            tail,
        } = &outcome
        else {
            panic!("{outcome:?}")
        };
        assert!(
            tail.starts_with("could not run before_command in "),
            "{tail}"
        );
        assert!(tail.contains("gone"), "{tail}");
    }
}
