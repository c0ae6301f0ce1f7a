//! One short-lived command around a plan run (smoke tests, hooks) as an operating-system
//! process: start it in a process group of its own, hand its output over line by line, end it
//! at its deadline.
//!
//! Owns the child-process mechanics shared by `smoke` and `hooks`: stdin /dev/null, stdout and
//! stderr read as bounded lines, a total timeout after which the whole group gets SIGTERM, a
//! grace period in which output is still drained, then SIGKILL. Dropping the future of
//! [`run`] kills the group, so an abandoned command leaves nothing behind.
//!
//! It must not know what the command is for, print anything itself, or judge an exit status:
//! it reports how the process ended and the last lines it wrote. Unlike `run::process` there is
//! no guard process: these commands are short and their output is not a protocol, so a baton
//! killed with SIGKILL can leave one behind (documented in the README's hooks section).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Longest output line handed over; the rest of a longer line is dropped.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// How many of the last output lines are kept for a failure message, and how long each may be.
const TAIL_LINES: usize = 20;
const TAIL_LINE_CHARS: usize = 400;

/// After the command's own process has ended, output still arriving is read for as long as it
/// keeps coming with gaps shorter than this, and for [`DRAIN_MAX`] at most: a process it left
/// running in the background (a dev server started by a hook) may hold the pipes open forever.
const DRAIN_GAP: Duration = Duration::from_millis(500);
const DRAIN_MAX: Duration = Duration::from_secs(3);

/// Lines buffered between the pipe readers and the caller's callback.
const LINE_QUEUE: usize = 64;

/// What to run and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Added to baton's own environment, which is otherwise passed through.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL to the group.
    pub grace: Duration,
    /// End whatever the command left running in its group once it exits (smoke tests: nothing
    /// of theirs may outlive them). Hooks keep it, so `after_command` can start a server.
    pub end_leftovers: bool,
}

impl Job {
    /// `sh -c COMMAND` in `cwd`.
    pub fn shell(command: &str, cwd: PathBuf, timeout: Duration, grace: Duration) -> Job {
        Job {
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            cwd,
            env: Vec::new(),
            timeout,
            grace,
            end_leftovers: false,
        }
    }
}

/// How the command ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited (or was killed by a signal it did not get from us).
    Exited(ExitStatus),
    /// It ran past its timeout; its group was ended.
    TimedOut,
    /// It could not be started, or waiting for it failed.
    Error(io::Error),
}

#[derive(Debug)]
pub(crate) struct Finished {
    pub ended: Ended,
    /// From the start to the end of the command's own process.
    pub duration: Duration,
    /// The last output lines, stdout and stderr interleaved as they arrived.
    pub tail: String,
}

/// Runs `job`, calling `on_line` with each output line (without its line ending) as it comes.
pub(crate) async fn run(job: &Job, on_line: &mut dyn FnMut(&str)) -> Finished {
    let start = Instant::now();
    let mut tail = Tail::default();
    let mut command = Command::new(&job.program);
    command
        .args(&job.args)
        .current_dir(&job.cwd)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Finished {
                ended: Ended::Error(error),
                duration: start.elapsed(),
                tail: String::new(),
            }
        }
    };
    // The child leads its own group, so the group id is its pid.
    let mut group = Group {
        pgid: child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()),
        leader_reaped: false,
    };

    let (tx, mut rx) = mpsc::channel::<String>(LINE_QUEUE);
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(out, tx.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(err, tx.clone())));
    }
    drop(tx);
    let mut lines_open = true;
    let mut emit = |line: String, tail: &mut Tail| {
        on_line(&line);
        tail.push(line);
    };

    let deadline = start + job.timeout;
    let mut timed_out = false;
    let mut killed = false;
    let mut grace_end: Option<Instant> = None;
    let waited = loop {
        let wake = grace_end.unwrap_or(deadline);
        tokio::select! {
            status = child.wait() => break status,
            line = rx.recv(), if lines_open => match line {
                Some(line) => emit(line, &mut tail),
                None => lines_open = false,
            },
            () = tokio::time::sleep_until(wake), if !killed => {
                if grace_end.is_none() {
                    timed_out = true;
                    group.signal(libc::SIGTERM);
                    grace_end = Some(Instant::now() + job.grace);
                } else {
                    group.signal(libc::SIGKILL);
                    killed = true;
                }
            }
        }
    };
    let duration = start.elapsed();
    group.leader_reaped = true;
    if job.end_leftovers && !killed {
        // Right after the leader is reaped its group id cannot have been reused yet.
        group.signal_after_reap(libc::SIGKILL);
    } else if timed_out && !killed {
        // The leader went within the grace period, but what it started may have ignored
        // SIGTERM. Survivors keep the group id from being reused, so signalling it right after
        // reaping the leader reaches them or, with none left, nobody.
        group.signal_after_reap(libc::SIGKILL);
    }

    // Output written just before the end is still in the pipes.
    let drain_end = Instant::now() + DRAIN_MAX;
    while lines_open {
        let gap_end = (Instant::now() + DRAIN_GAP).min(drain_end);
        match tokio::time::timeout_at(gap_end, rx.recv()).await {
            Ok(Some(line)) => emit(line, &mut tail),
            Ok(None) | Err(_) => lines_open = false,
        }
    }
    for reader in readers {
        reader.abort();
    }

    let ended = match waited {
        Err(error) => Ended::Error(error),
        Ok(_) if timed_out => Ended::TimedOut,
        Ok(status) => Ended::Exited(status),
    };
    Finished {
        ended,
        duration,
        tail: tail.render(),
    }
}

/// The command's process group. Signalled only while its leader is unreaped (then the id
/// cannot have been reused); dropped unreaped, it is killed.
struct Group {
    pgid: Option<libc::pid_t>,
    leader_reaped: bool,
}

impl Group {
    fn signal(&self, signo: libc::c_int) {
        if !self.leader_reaped {
            self.signal_after_reap(signo);
        }
    }

    fn signal_after_reap(&self, signo: libc::c_int) {
        if let Some(pgid) = self.pgid.filter(|&pgid| pgid > 1) {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
            unsafe { libc::kill(-pgid, signo) };
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Reads `pipe` as lines of at most [`MAX_LINE_BYTES`] (invalid UTF-8 replaced) until EOF or
/// until the receiver is gone.
async fn read_lines(pipe: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut line: Vec<u8> = Vec::new();
    let mut overflowed = false;
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if buf.is_empty() {
            break;
        }
        let (chunk, used, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], at + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if chunk.len() > room {
            overflowed = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if complete {
            if send_line(&tx, &mut line, overflowed).await.is_err() {
                return;
            }
            overflowed = false;
        }
    }
    if !line.is_empty() {
        let _ = send_line(&tx, &mut line, overflowed).await;
    }
}

async fn send_line(
    tx: &mpsc::Sender<String>,
    line: &mut Vec<u8>,
    overflowed: bool,
) -> Result<(), mpsc::error::SendError<String>> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(line).into_owned();
    if overflowed {
        text.push_str(" […line cut]");
    }
    line.clear();
    tx.send(text).await
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

    fn job(command: &str, timeout: Duration, grace: Duration) -> Job {
        Job::shell(command, std::env::temp_dir(), timeout, grace)
    }

    async fn collect(job: &Job) -> (Finished, Vec<String>) {
        let mut lines = Vec::new();
        let finished = run(job, &mut |line| lines.push(line.to_owned())).await;
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
        assert_eq!(status.code(), Some(3));
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
        assert!(matches!(finished.ended, Ended::Exited(s) if s.success()));
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
        assert!(matches!(finished.ended, Ended::Exited(s) if s.success()));
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
        let (finished, lines) = collect(&job(
            &command,
            Duration::from_secs(30),
            Duration::from_secs(5),
        ))
        .await;
        assert!(matches!(finished.ended, Ended::Exited(s) if s.success()));
        assert_eq!(lines, ["done"]);
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
        job.program = "/nonexistent/baton-test-program".into();
        let (finished, _) = collect(&job).await;
        assert!(
            matches!(finished.ended, Ended::Error(ref e) if e.kind() == io::ErrorKind::NotFound)
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
        tokio::select! {
            _ = run(&job, &mut on_line) => panic!("the command ended on its own"),
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
}
