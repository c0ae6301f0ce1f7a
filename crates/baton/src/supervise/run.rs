//! A command run to its end in one call, for the short commands around a plan run (hooks, smoke
//! tests, notification commands): each output line handed to the caller as it comes, the last
//! lines kept for a failure message, the policy's total deadline enforced. Dropping the future
//! ends the command and what it started.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::child::{CommandSpec, Deadline, ExitInfo, Output, SpawnError, Supervised};
use super::lines::Stream;
use super::policy::Policy;

/// How many of the last output lines are kept for a failure message, and how long each may be.
const TAIL_LINES: usize = 20;
const TAIL_LINE_CHARS: usize = 400;

/// Appended to a line that was longer than the policy's `max_line`.
const LINE_CUT: &str = " […line cut]";

/// How the command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited (or was killed by a signal it did not get from baton).
    Exited(ExitInfo),
    /// It ran past its total deadline; it and what it started were ended.
    TimedOut,
    /// It could not be started.
    Error(SpawnError),
}

#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    /// From the start to the end of the command.
    pub duration: Duration,
    /// The last output lines, stdout and stderr interleaved as they arrived.
    pub tail: String,
    /// Something still held the output open when baton stopped reading it.
    pub leaked: bool,
}

/// Runs `cmd` under `policy` to its end, calling `on_line` with each output line (without its
/// line ending; a cut line ends with " […line cut]") as it comes.
pub async fn run_to_end(
    cmd: &CommandSpec,
    policy: &Policy,
    on_line: &mut (dyn FnMut(Stream, &str) + Send),
) -> Finished {
    let start = Instant::now();
    let mut process = match Supervised::spawn(cmd, policy).await {
        Ok(process) => process,
        Err(error) => {
            return Finished {
                ended: Ended::Error(error),
                duration: start.elapsed(),
                tail: String::new(),
                leaked: false,
            }
        }
    };
    let mut tail = Tail::default();
    let mut timed_out = false;
    let mut duration = None;
    let exit = loop {
        match process.next().await {
            Some(Output::Line(line)) => {
                let mut text = line.text;
                if line.truncated {
                    text.push_str(LINE_CUT);
                }
                on_line(line.stream, &text);
                tail.push(text);
            }
            Some(Output::Deadline(Deadline::Total | Deadline::Idle)) => timed_out = true,
            Some(Output::Exited(exit)) => break exit,
            None => {
                break ExitInfo {
                    code: None,
                    signal: None,
                }
            }
        }
        if duration.is_none() && process.command_exit().is_some() {
            duration = Some(start.elapsed());
        }
    };
    let ended = if timed_out {
        Ended::TimedOut
    } else {
        Ended::Exited(exit)
    };
    Finished {
        ended,
        duration: duration.unwrap_or_else(|| start.elapsed()),
        tail: tail.render(),
        leaked: process.leaked(),
    }
}

#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, mut line: String) {
        if let Some((cut, _)) = line.char_indices().nth(TAIL_LINE_CHARS) {
            line.truncate(cut);
            line.push('…');
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn render(&self) -> String {
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::supervise::policy::SHELL_MAX_LINE as MAX_LINE_BYTES;

    /// A smoke test's policy, unguarded: a test binary is not a baton binary.
    fn job(command: &str, timeout: Duration, grace: Duration) -> (CommandSpec, Policy) {
        (
            CommandSpec::shell(command, std::env::temp_dir()),
            Policy::smoke(None, timeout, grace),
        )
    }

    async fn collect(job: &(CommandSpec, Policy)) -> (Finished, Vec<String>) {
        let mut lines = Vec::new();
        let finished = run_to_end(&job.0, &job.1, &mut |_, line| lines.push(line.to_owned())).await;
        (finished, lines)
    }

    /// Whether `pid` is gone (or a zombie nobody has reaped yet), waiting up to `within`.
    fn gone_within(pid: libc::pid_t, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .is_some_and(|s| s.trim_start().starts_with('Z'))
                })
                .unwrap_or(false);
            if !alive || zombie {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    #[tokio::test]
    async fn hands_over_stdout_and_stderr_lines_and_the_exit_code() {
        let (finished, lines) = collect(&job(
            "echo one; echo two >&2; printf 'no newline'; exit 3",
            Duration::from_secs(30),
            Duration::from_secs(5),
        ))
        .await;
        let Ended::Exited(status) = finished.ended else {
            panic!("{:?}", finished.ended)
        };
        assert_eq!(status.code, Some(3));
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(sorted, ["no newline", "one", "two"]);
        assert!(finished.tail.contains("one") && finished.tail.contains("two"));
    }

    #[tokio::test]
    async fn stdin_is_empty() {
        let (finished, lines) = collect(&job(
            "wc -c",
            Duration::from_secs(30),
            Duration::from_secs(5),
        ))
        .await;
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
        assert_eq!(lines.iter().map(|l| l.trim()).collect::<Vec<_>>(), ["0"]);
    }

    #[tokio::test]
    async fn a_long_line_is_cut_and_the_tail_keeps_the_last_lines() {
        let (finished, lines) = collect(&job(
            "head -c 100000 /dev/zero | tr '\\0' x; echo; seq 1 50",
            Duration::from_secs(30),
            Duration::from_secs(5),
        ))
        .await;
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
        assert_eq!(lines.len(), 51);
        assert!(lines[0].starts_with("xxx") && lines[0].ends_with("[…line cut]"));
        assert_eq!(lines[0].len(), MAX_LINE_BYTES + " […line cut]".len());
        let tail: Vec<&str> = finished.tail.lines().collect();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.first(), Some(&"31"));
        assert_eq!(tail.last(), Some(&"50"));
    }

    #[tokio::test]
    async fn a_timeout_ends_the_whole_group_even_what_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!(
            "sh -c 'trap \"\" TERM; echo $$ > {0}.tmp; mv {0}.tmp {0}; while :; do sleep 1; done' & \
             trap '' TERM; until [ -f {0} ]; do sleep 0.05; done; echo started; wait",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let job = job(&command, Duration::from_secs(2), Duration::from_millis(300));
        // Without the SIGKILL this would never end: fail instead of hanging.
        let (finished, lines) = tokio::time::timeout(Duration::from_secs(30), collect(&job))
            .await
            .expect("the group outlived SIGTERM and the grace period");
        assert!(
            matches!(finished.ended, Ended::TimedOut),
            "{:?}",
            finished.ended
        );
        assert_eq!(lines, ["started"]);
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone_within(pid, Duration::from_secs(5)),
            "grandchild {pid} survived"
        );
    }

    #[tokio::test]
    async fn a_timeout_ends_a_command_that_obeys_sigterm_without_waiting_for_the_grace() {
        let started = std::time::Instant::now();
        let (finished, _) = collect(&job(
            "sleep 30",
            Duration::from_millis(200),
            Duration::from_secs(20),
        ))
        .await;
        assert!(matches!(finished.ended, Ended::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_background_process_holding_the_pipes_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!("sleep 60 & echo $! > {}; echo done", pidfile.display());
        let started = std::time::Instant::now();
        let (spec, policy) = job(&command, Duration::from_secs(30), Duration::from_secs(5));
        // A hook's policy: what it leaves running on purpose stays.
        let policy = Policy {
            kill_leftovers: false,
            ..policy
        };
        let (finished, lines) = collect(&(spec, policy)).await;
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
        assert_eq!(lines, ["done"]);
        assert!(
            finished.leaked,
            "the background process held the pipes open"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
        // A process a hook leaves running on purpose is not killed after a normal exit.
        let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: signal 0 only checks for existence.
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0);
        // SAFETY: ends the test's own leftover.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error() {
        let mut job = job("true", Duration::from_secs(5), Duration::from_secs(1));
        job.0.program = "/nonexistent/baton-test-program".into();
        let (finished, _) = collect(&job).await;
        assert!(
            matches!(
                finished.ended,
                Ended::Error(SpawnError::ProgramNotFound { .. })
            ),
            "{:?}",
            finished.ended
        );
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!(
            "echo $$ > {0}.tmp; mv {0}.tmp {0}; echo ready; sleep 60",
            pidfile.display()
        );
        let job = job(&command, Duration::from_secs(60), Duration::from_secs(5));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let mut ready_tx = Some(ready_tx);
        let mut on_line = |line: &str| {
            if line == "ready" {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        };
        let mut forward = |_: Stream, line: &str| on_line(line);
        tokio::select! {
            _ = run_to_end(&job.0, &job.1, &mut forward) => panic!("the command ended on its own"),
            ready = ready_rx => ready.unwrap(),
        }
        let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone_within(pid, Duration::from_secs(5)),
            "{pid} survived the drop"
        );
    }

    #[tokio::test]
    async fn the_total_deadline_holds_while_a_leftover_keeps_the_output_open() {
        // The command ends at once; what it leaves behind keeps writing. The leak timeout is
        // far away: only the total deadline, still in force while the output drains, ends it.
        let (spec, policy) = job(
            "(while :; do echo x; sleep 0.05; done) & exit 0",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let policy = Policy {
            kill_leftovers: false,
            leak_timeout: Duration::from_secs(600),
            ..policy
        };
        let (finished, _) = tokio::time::timeout(Duration::from_secs(60), collect(&(spec, policy)))
            .await
            .expect("the drain outlived the total deadline");
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
        assert!(finished.leaked);
    }

    #[tokio::test]
    async fn the_input_bytes_reach_the_command_and_a_command_that_ignores_them_is_fine() {
        let (mut spec, policy) = job("cat; echo", Duration::from_secs(30), Duration::from_secs(1));
        spec.stdin = crate::supervise::Input::Bytes(b"{\"event\": 1}".to_vec());
        let (finished, lines) = collect(&(spec.clone(), policy.clone())).await;
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
        assert_eq!(lines, ["{\"event\": 1}"]);

        // More than a pipe holds, to a command that never reads it.
        spec.args = vec!["-c".into(), "exit 0".into()];
        spec.stdin = crate::supervise::Input::Bytes(vec![b'x'; 1 << 20]);
        let (finished, _) = collect(&(spec, policy)).await;
        assert!(
            matches!(finished.ended, Ended::Exited(s) if s.success()),
            "{:?}",
            finished.ended
        );
    }
}
