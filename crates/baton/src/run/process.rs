//! One agent attempt as an operating-system process: start it, read its output, end it.
//!
//! Owns the child-process layer: the agent runs under the guard (`guard.rs`), both in process
//! groups of their own, stdin the prompt file (or /dev/null); baton holds one end of a socket
//! (the lifeline) whose other end only the guard has. Output comes back as tagged lines of
//! bounded length, then one exit. Ending an agent: SIGTERM to its group (a `term` request to
//! the guard), keep draining output for a grace period, then end everything (baton shuts down
//! its writing side of the lifeline; the guard kills the agent and every descendant). Dropping
//! an [`AgentProcess`] closes the lifeline, as does baton dying (even by SIGKILL): the guard
//! then ends everything.
//!
//! Reading never outlasts its deadlines: once the agent has ended, output is read for
//! [`LEAK_TIMEOUT`] at most, whoever still holds the pipes (the guard normally kills them
//! first, but this layer does not count on it), and what was left unread is reported as a leak.
//!
//! It must not know about agents' output formats, tasks or policies (timeouts are the caller's:
//! it calls [`AgentProcess::terminate`]). It signals only the guard itself, and only while the
//! guard is unreaped: only an unreaped process keeps its pid from being reused.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::guard::{self, Report};

/// Longest output line kept; the rest of a longer line is discarded.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// How long the guard may take to say whether the agent started. Generous: it is two
/// fork+exec on a possibly loaded two-core machine, and it only ever matters if something is
/// badly wrong.
const START_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Once the agent has ended (or the guard, whichever baton learns first), output is read for
/// this long at most. The guard ends every descendant of the agent, so pipes still open after
/// that are held by a process out of its reach; like nextest's leak timeout, baton then stops
/// reading and reports the leak instead of waiting for it.
pub const LEAK_TIMEOUT: Duration = Duration::from_secs(2);

/// Past [`LEAK_TIMEOUT`], reading stops as soon as nothing is waiting to be read (the pipes are
/// merely held open), or once this much more output has been read from a process that keeps
/// writing. Output that was already there is read first: baton's runtime may have been busy
/// elsewhere (committing another task) for longer than the timeout, and the agent's last lines
/// (its result) must not be lost to that.
const LEAK_BYTES: usize = 1024 * 1024;

/// While output is still waiting past [`LEAK_TIMEOUT`], how often baton looks again.
const LEAK_RECHECK: Duration = Duration::from_millis(50);

/// After an immediate end was asked for (or the leak timeout passed), how long the guard gets
/// to finish and exit before baton SIGKILLs it. Generous: the guard only has to sweep.
const GUARD_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a failed guard's stderr goes into the error.
const GUARD_STDERR_BYTES: u64 = 4096;

/// Lines buffered between the pipe readers and [`AgentProcess::next`]. Small, because a line
/// can be [`MAX_LINE_BYTES`] long and memory must stay bounded.
const LINE_QUEUE: usize = 16;

/// What to run: the agent's program, arguments, working directory, environment additions
/// (the rest of baton's environment is passed through unchanged) and the regular file it reads
/// on stdin (/dev/null without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    pub stdin: Option<PathBuf>,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    /// Invalid UTF-8 is replaced by U+FFFD.
    pub text: String,
    /// The line was longer than [`MAX_LINE_BYTES`]: `text` is its beginning, the rest is lost.
    pub truncated: bool,
}

/// How the agent ended. Exactly one field is set, except when the guard could not be waited
/// for at all (both `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn from_status(status: std::process::ExitStatus) -> ExitInfo {
        ExitInfo {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signo)) => write!(f, "killed by signal {signo}"),
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// What [`AgentProcess::next`] yields: lines in the order each pipe delivered them (stdout and
/// stderr are interleaved as they arrive), then one `Exited`, then nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Line(Line),
    Exited(ExitInfo),
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot use {} as the agent's input", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("working directory {} is not usable", cwd.display())]
    WorkingDir {
        cwd: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("agent program {} not found", program.display())]
    ProgramNotFound { program: PathBuf },
    #[error("agent program {} cannot be executed: permission denied", program.display())]
    PermissionDenied { program: PathBuf },
    #[error("agent program {} cannot be executed", program.display())]
    Exec {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the lifeline socket")]
    Lifeline(#[source] io::Error),
    #[error("cannot start the agent guard {}", guard_exe.display())]
    GuardSpawn {
        guard_exe: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `stderr` is the beginning of what the guard wrote there: its reason, if it gave one.
    #[error("the agent guard {} ended before starting the agent ({status}): {}", guard_exe.display(), guard_said(stderr))]
    GuardExited {
        guard_exe: PathBuf,
        status: ExitInfo,
        stderr: String,
    },
    #[error("the agent guard {} did not report within {} s", guard_exe.display(), timeout.as_secs())]
    GuardSilent {
        guard_exe: PathBuf,
        timeout: Duration,
    },
    #[error("the agent guard sent an unexpected report {report:?}")]
    GuardProtocol { report: String },
    #[error("cannot start the lifeline reader thread")]
    ReportThread(#[source] io::Error),
}

/// A running agent attempt. See the module doc.
#[derive(Debug)]
pub struct AgentProcess {
    guard: Child,
    /// The guard's pid; signalled (SIGKILL, as a last resort) only while `guard_exit` is None.
    guard_pid: libc::pid_t,
    /// The agent's pid, which is also its process group's id.
    agent_pid: libc::pid_t,
    /// baton's end. Its writing side carries requests; shutting it down asks the guard to end
    /// everything now, and so does closing it (on drop, or baton's death).
    lifeline: UnixStream,
    reports: mpsc::UnboundedReceiver<Result<Report, String>>,
    reports_done: bool,
    agent_exit: Option<ExitInfo>,
    lines: mpsc::Receiver<Line>,
    lines_done: bool,
    readers: Vec<JoinHandle<()>>,
    /// The pipes' descriptors, each open for as long as its reader is not finished (the reader
    /// owns it); looked at to tell pending output from a pipe merely held open.
    pipe_fds: Vec<RawFd>,
    /// Output read after [`LEAK_TIMEOUT`] had passed, in bytes.
    bytes_after_cap: usize,
    /// Set once the guard has been reaped; from then on it must not be signalled.
    guard_exit: Option<ExitInfo>,
    /// When baton learnt that the agent (or the guard) had ended: reading stops
    /// [`LEAK_TIMEOUT`] later at the latest.
    ended_at: Option<Instant>,
    /// Reading was cut off by the leak timeout.
    reading_cut: bool,
    /// Output was still coming (or its pipes open) when reading was cut off.
    leaked: bool,
    term_sent: bool,
    kill_deadline: Option<Instant>,
    kill_sent: bool,
    /// The guard is SIGKILLed if it has not exited by then.
    guard_kill_deadline: Option<Instant>,
    exit: Option<ExitInfo>,
    exit_delivered: bool,
}

impl AgentProcess {
    /// Starts `cmd` under the guard, which is `guard_exe` run with [`guard::GUARD_ARG`]
    /// (normally `std::env::current_exe()`). Returns once the agent is running, or with the
    /// reason it could not be started.
    pub async fn spawn(cmd: &AgentCommand, guard_exe: &Path) -> Result<AgentProcess, SpawnError> {
        // Checked here because a missing directory would otherwise surface as the guard's
        // spawn failing with ENOENT, which reads like a missing baton binary.
        match std::fs::metadata(&cmd.cwd) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(SpawnError::WorkingDir {
                    cwd: cmd.cwd.clone(),
                    source: io::Error::from_raw_os_error(libc::ENOTDIR),
                })
            }
            Err(source) => {
                return Err(SpawnError::WorkingDir {
                    cwd: cmd.cwd.clone(),
                    source,
                })
            }
        }
        let stdin = match &cmd.stdin {
            Some(path) => Stdio::from(open_input(path).map_err(|source| SpawnError::Input {
                path: path.clone(),
                source,
            })?),
            None => Stdio::null(),
        };

        let (ours, theirs) = lifeline_pair().map_err(SpawnError::Lifeline)?;
        let theirs_fd = theirs.as_raw_fd();
        let mut command = Command::new(guard_exe);
        command
            .args(guard::guard_args(
                theirs_fd,
                cmd.program.as_os_str(),
                &cmd.args,
            ))
            .current_dir(&cmd.cwd)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Out of baton's group, so that a terminal's Ctrl+C reaches baton alone.
            .process_group(0);
        // SAFETY: runs between fork and exec; fcntl is async-signal-safe. Only this child sees
        // the lifeline without close-on-exec: other processes baton starts meanwhile do not
        // inherit it, or they would keep it open after baton's death.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(theirs_fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| SpawnError::GuardSpawn {
            guard_exe: guard_exe.to_owned(),
            source,
        })?;
        drop(theirs);
        let guard_pid = match child.id() {
            Some(pid) => pid as libc::pid_t,
            // Only possible once reaped, which nothing has done yet.
            None => {
                return Err(SpawnError::GuardExited {
                    guard_exe: guard_exe.to_owned(),
                    status: ExitInfo {
                        code: None,
                        signal: None,
                    },
                    stderr: String::new(),
                })
            }
        };

        orphans::guard_started(guard_pid);

        // From here on an early return must not leave the guard running.
        let mut starting = Starting {
            child: Some(child),
            guard_pid,
        };

        // The lifeline is read on a plain thread: tokio's socket types need its "net" feature,
        // and the guard writes at most three short lines in its life.
        let (report_tx, mut reports) = mpsc::unbounded_channel();
        let reader_end = ours.try_clone().map_err(SpawnError::Lifeline)?;
        std::thread::Builder::new()
            .name("agent-lifeline".to_owned())
            .spawn(move || guard::read_reports(reader_end, |r| report_tx.send(r).is_ok()))
            .map_err(SpawnError::ReportThread)?;

        let first = tokio::time::timeout(START_REPORT_TIMEOUT, reports.recv()).await;
        let agent_pid = match first {
            Ok(Some(Ok(Report::Started(pid)))) => pid,
            Ok(Some(Ok(Report::ExecFailed(errno)))) => {
                let program = cmd.program.clone();
                return Err(match errno {
                    libc::ENOENT => SpawnError::ProgramNotFound { program },
                    libc::EACCES => SpawnError::PermissionDenied { program },
                    _ => SpawnError::Exec {
                        program,
                        source: io::Error::from_raw_os_error(errno),
                    },
                });
            }
            Ok(Some(Ok(other))) => {
                return Err(SpawnError::GuardProtocol {
                    report: other.encode().trim_end().to_owned(),
                })
            }
            Ok(Some(Err(report))) => return Err(SpawnError::GuardProtocol { report }),
            Ok(None) => {
                // The guard closed the lifeline without a word: it is not (this version of) a
                // baton guard, or it failed before starting anything.
                let (status, stderr) = starting.wait().await;
                return Err(SpawnError::GuardExited {
                    guard_exe: guard_exe.to_owned(),
                    status,
                    stderr,
                });
            }
            Err(_) => {
                return Err(SpawnError::GuardSilent {
                    guard_exe: guard_exe.to_owned(),
                    timeout: START_REPORT_TIMEOUT,
                })
            }
        };

        let Some(mut child) = starting.child.take() else {
            unreachable!("the guard child is only taken here")
        };
        let (line_tx, lines) = mpsc::channel(LINE_QUEUE);
        let mut readers = Vec::with_capacity(2);
        let mut pipe_fds = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            pipe_fds.push(stdout.as_raw_fd());
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stdout),
                Stream::Stdout,
                line_tx.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            pipe_fds.push(stderr.as_raw_fd());
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stderr),
                Stream::Stderr,
                line_tx,
            )));
        }

        Ok(AgentProcess {
            guard: child,
            guard_pid,
            agent_pid,
            lifeline: ours,
            reports,
            reports_done: false,
            agent_exit: None,
            lines,
            lines_done: false,
            readers,
            pipe_fds,
            bytes_after_cap: 0,
            guard_exit: None,
            ended_at: None,
            reading_cut: false,
            leaked: false,
            term_sent: false,
            kill_deadline: None,
            kill_sent: false,
            guard_kill_deadline: None,
            exit: None,
            exit_delivered: false,
        })
    }

    /// The agent's process group: the agent, and the tools it runs there.
    pub fn pgid(&self) -> libc::pid_t {
        self.agent_pid
    }

    /// The agent's own pid (the guard's child).
    pub fn agent_pid(&self) -> libc::pid_t {
        self.agent_pid
    }

    /// How the agent ended, as soon as the guard has said so, even while its output is still
    /// being read; `None` while it runs.
    pub fn agent_exit(&mut self) -> Option<ExitInfo> {
        while self.agent_exit.is_none() && !self.reports_done {
            match self.reports.try_recv() {
                Ok(report) => self.on_report(Some(report)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.on_report(None),
            }
        }
        self.agent_exit
    }

    /// Whether reading was cut off by [`LEAK_TIMEOUT`] while something still held the agent's
    /// output open: a process the agent started escaped the guard.
    pub fn leaked(&self) -> bool {
        self.leaked
    }

    /// The next line of output, or the exit once both pipes are done (or cut off after
    /// [`LEAK_TIMEOUT`]) and the guard is gone (or the agent's end is known); `None` after
    /// the exit was returned. Cancel-safe: nothing is lost if the future is dropped (e.g. in a
    /// `select!` with a timeout). It also carries out a pending escalation from
    /// [`begin_terminate`](Self::begin_terminate), so keep calling it while stopping.
    pub async fn next(&mut self) -> Option<Output> {
        loop {
            if let Some(exit) = self.exit {
                if self.exit_delivered {
                    return None;
                }
                self.exit_delivered = true;
                return Some(Output::Exited(exit));
            }
            if self.lines_done {
                if self.reports_done {
                    if let Some(guard_exit) = self.guard_exit {
                        // The guard's own status is the fallback: it is SIGKILL when it was
                        // killed before the agent ended, which is then also what the agent got.
                        self.exit = Some(self.agent_exit.unwrap_or(guard_exit));
                        continue;
                    }
                }
                if self.reading_cut {
                    if let Some(agent_exit) = self.agent_exit {
                        // The guard may still be sweeping; the verdict need not wait for it.
                        self.exit = Some(agent_exit);
                        continue;
                    }
                }
            }

            // Deadlines are checked here, before any waiting, so that a flood of output can
            // never starve them.
            let now = Instant::now();
            if self.kill_deadline.is_some_and(|d| now >= d) && !self.kill_sent {
                self.end_everything();
            }
            if self.guard_kill_deadline.is_some_and(|d| now >= d) {
                self.guard_kill_deadline = None;
                self.kill_guard();
            }
            let past_cap = self
                .ended_at
                .is_some_and(|ended| !self.reading_cut && now >= ended + LEAK_TIMEOUT);
            if past_cap {
                // Let the readers hand over what they already hold before judging the pipes.
                tokio::task::yield_now().await;
                if self.output_idle() || self.bytes_after_cap >= LEAK_BYTES {
                    self.cut_reading();
                    continue;
                }
            }
            let leak_check = self.ended_at.filter(|_| !self.reading_cut).map(|ended| {
                if past_cap {
                    now + LEAK_RECHECK
                } else {
                    ended + LEAK_TIMEOUT
                }
            });
            let wake = [
                self.kill_deadline.filter(|_| !self.kill_sent),
                self.guard_kill_deadline,
                leak_check,
            ]
            .into_iter()
            .flatten()
            .min();

            tokio::select! {
                biased;
                report = self.reports.recv(), if !self.reports_done => self.on_report(report),
                status = self.guard.wait(), if self.guard_exit.is_none() => {
                    orphans::guard_reaped(self.guard_pid);
                    self.guard_exit = Some(match status {
                        Ok(status) => ExitInfo::from_status(status),
                        Err(_) => ExitInfo { code: None, signal: None },
                    });
                    self.guard_kill_deadline = None;
                    self.ended_at.get_or_insert_with(Instant::now);
                },
                line = self.lines.recv(), if !self.lines_done => match line {
                    Some(line) => {
                        if past_cap {
                            self.bytes_after_cap += line.text.len() + 1;
                        }
                        return Some(Output::Line(line));
                    }
                    None => self.lines_done = true,
                },
                () = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {},
            }
        }
    }

    fn on_report(&mut self, report: Option<Result<Report, String>>) {
        let exit = match report {
            Some(Ok(Report::Exited(code))) => ExitInfo {
                code: Some(code),
                signal: None,
            },
            Some(Ok(Report::Signalled(signo))) => ExitInfo {
                code: None,
                signal: Some(signo),
            },
            // Nothing else is expected after `started`; a newer guard may say more.
            Some(_) => return,
            None => {
                self.reports_done = true;
                return;
            }
        };
        self.agent_exit = Some(exit);
        self.ended_at.get_or_insert_with(Instant::now);
    }

    /// Nothing is waiting to be read: no line queued, no byte in a pipe whose reader still runs.
    fn output_idle(&self) -> bool {
        self.lines.is_empty()
            && self
                .readers
                .iter()
                .zip(&self.pipe_fds)
                .all(|(reader, fd)| reader.is_finished() || pending_bytes(*fd) == 0)
    }

    /// Stops reading output: lines already queued are still delivered, then the queue closes.
    fn cut_reading(&mut self) {
        self.reading_cut = true;
        self.leaked = self.readers.iter().any(|r| !r.is_finished());
        for reader in &self.readers {
            reader.abort();
        }
        // Without the agent's end known, the guard's is needed: make sure it comes.
        if self.agent_exit.is_none() && self.guard_exit.is_none() {
            self.end_everything();
        }
    }

    /// Asks the agent to stop: SIGTERM to its process group now, everything ended when `grace`
    /// has passed (carried out by [`next`](Self::next), which the caller keeps calling to drain
    /// the output meanwhile). Repeated calls never send a second SIGTERM and never postpone the
    /// end.
    pub fn begin_terminate(&mut self, grace: Duration) {
        if self.exit.is_some() || self.guard_exit.is_some() {
            return;
        }
        if !self.term_sent {
            self.term_sent = true;
            // A failed write means the guard is gone; its exit is then on its way.
            let _ = (&self.lifeline).write_all(guard::TERM_REQUEST);
        }
        let deadline = Instant::now() + grace;
        self.kill_deadline = Some(match self.kill_deadline {
            Some(earlier) => earlier.min(deadline),
            None => deadline,
        });
    }

    /// Ends the agent and everything it started: SIGTERM to its group, drain output for up to
    /// `grace`, end everything, reap. Output read meanwhile is discarded; a caller that wants it
    /// uses [`begin_terminate`](Self::begin_terminate) and [`next`](Self::next). Idempotent:
    /// once ended, returns the same exit at once.
    pub async fn terminate(&mut self, grace: Duration) -> ExitInfo {
        self.begin_terminate(grace);
        loop {
            if let Some(exit) = self.exit {
                return exit;
            }
            if self.next().await.is_none() {
                // `next` only returns None once `exit` is set; keep the loop total anyway.
                return self.exit.unwrap_or(ExitInfo {
                    code: None,
                    signal: None,
                });
            }
        }
    }

    /// Ends the agent and every process it started now; [`next`](Self::next) then reports the
    /// exit.
    pub fn kill_now(&mut self) {
        self.end_everything();
    }

    /// Asks the guard to SIGKILL the agent and sweep up every descendant, by shutting down
    /// baton's writing side of the lifeline (the guard's reports still arrive). Should the
    /// guard not exit in time, it is SIGKILLed itself.
    fn end_everything(&mut self) {
        if self.kill_sent || self.guard_exit.is_some() {
            return;
        }
        self.kill_sent = true;
        let _ = self.lifeline.shutdown(Shutdown::Write);
        self.guard_kill_deadline = Some(Instant::now() + GUARD_EXIT_TIMEOUT);
    }

    fn kill_guard(&self) {
        // Only while the guard is unreaped: its pid is still its own.
        if self.guard_exit.is_none() {
            // SAFETY: plain syscall. ESRCH (gone already) is fine.
            unsafe { libc::kill(self.guard_pid, libc::SIGKILL) };
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // The guard ends the agent and everything it started when the lifeline closes.
        let _ = self.lifeline.shutdown(Shutdown::Both);
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Kills the guard on an early return from `spawn`; the guard is not reaped until then.
struct Starting {
    child: Option<Child>,
    guard_pid: libc::pid_t,
}

impl Starting {
    /// Reaps a guard that closed the lifeline without starting the agent; returns its exit and
    /// the beginning of its stderr.
    async fn wait(&mut self) -> (ExitInfo, String) {
        let unknown = ExitInfo {
            code: None,
            signal: None,
        };
        let Some(child) = self.child.as_mut() else {
            return (unknown, String::new());
        };
        // The lifeline is closed, so the guard is exiting or gone; bound the waits regardless.
        let mut said = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let mut limited = stderr.take(GUARD_STDERR_BYTES);
            let read = limited.read_to_end(&mut said);
            let _ = tokio::time::timeout(START_REPORT_TIMEOUT, read).await;
        }
        let said = String::from_utf8_lossy(&said).trim().to_owned();
        let status = match tokio::time::timeout(START_REPORT_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) => ExitInfo::from_status(status),
            _ => return (unknown, said),
        };
        orphans::guard_reaped(self.guard_pid);
        self.child = None;
        (status, said)
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if self.child.is_some() {
            // SAFETY: plain syscall; the guard is unreaped, so its pid is still its own. The
            // lifeline closes with `spawn`'s return too, and the agent (if started) dies with
            // the guard by its parent-death signal.
            unsafe { libc::kill(self.guard_pid, libc::SIGKILL) };
        }
    }
}

fn guard_said(stderr: &str) -> &str {
    if stderr.is_empty() {
        "it said nothing; is it a baton binary?"
    } else {
        stderr
    }
}

/// How many bytes wait unread in the pipe `fd`; 0 when that cannot be told.
fn pending_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`; `fd` is a pipe kept open by its running reader.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// Opens the agent's input: a regular file, never anything that could block (a FIFO put in
/// its place) or lead elsewhere (a symlink).
fn open_input(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // O_NONBLOCK means nothing for a regular file, but the agent should get the file as any
    // program gets its stdin.
    // SAFETY: plain fcntl on a descriptor we own.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) };
    Ok(file)
}

/// A connected socket pair, both ends close-on-exec.
fn lifeline_pair() -> io::Result<(UnixStream, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: socketpair writes two fds into the array on success.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    let ours = unsafe { UnixStream::from_raw_fd(fds[0]) };
    let theirs = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((ours, theirs))
}

/// Reads `reader` line by line into `tx`, each line cut at [`MAX_LINE_BYTES`].
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    stream: Stream,
    tx: mpsc::Sender<Line>,
) {
    let mut line = LineBuffer::new(MAX_LINE_BYTES);
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A read error on a pipe means it is unusable; treat it as the end.
            Err(_) => break,
        };
        if chunk.is_empty() {
            break;
        }
        let (used, complete) = line.push(chunk);
        reader.consume(used);
        if let Some((text, truncated)) = complete {
            if tx
                .send(Line {
                    stream,
                    text,
                    truncated,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if let Some((text, truncated)) = line.finish() {
        let _ = tx
            .send(Line {
                stream,
                text,
                truncated,
            })
            .await;
    }
}

/// A line being assembled, never holding more than `max` bytes.
struct LineBuffer {
    bytes: Vec<u8>,
    max: usize,
    truncated: bool,
    /// Whether any byte (kept or dropped) was seen since the last line ended.
    started: bool,
}

impl LineBuffer {
    fn new(max: usize) -> LineBuffer {
        LineBuffer {
            bytes: Vec::new(),
            max,
            truncated: false,
            started: false,
        }
    }

    /// Takes bytes from `chunk` up to and including the first newline. Returns how many bytes
    /// were used and, if a line ended, that line.
    fn push(&mut self, chunk: &[u8]) -> (usize, Option<(String, bool)>) {
        let (body, used, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        self.started = true;
        if !self.truncated {
            let room = self.max - self.bytes.len();
            if body.len() > room {
                self.bytes.extend_from_slice(&body[..room]);
                self.truncated = true;
            } else {
                self.bytes.extend_from_slice(body);
            }
        }
        let line = if ended { self.take() } else { None };
        (used, line)
    }

    /// The last line, if the output did not end with a newline.
    fn finish(&mut self) -> Option<(String, bool)> {
        if self.started {
            self.take()
        } else {
            None
        }
    }

    fn take(&mut self) -> Option<(String, bool)> {
        let mut bytes = std::mem::take(&mut self.bytes);
        let truncated = std::mem::replace(&mut self.truncated, false);
        self.started = false;
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Some((text, truncated))
    }
}

/// baton as the last line of defence: when a guard itself dies (an agent that kills its parent,
/// `pkill -9 baton`, the OOM killer) while baton lives, the agent dies with it (its parent-death
/// signal) but what the agent started is orphaned. baton is a child subreaper, so those orphans
/// come to baton instead of init, and [`orphans::sweep`] ends them.
pub mod orphans {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// Guards baton started and has not reaped: the only children baton keeps for long. Any
    /// other child found by a sweep is an orphan of an attempt whose guard is gone.
    static GUARDS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

    pub(crate) fn guard_started(pid: libc::pid_t) {
        GUARDS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
    }

    pub(crate) fn guard_reaped(pid: libc::pid_t) {
        GUARDS.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
    }

    /// Makes orphaned descendants of this process come back to it rather than to init.
    pub fn become_subreaper() {
        // SAFETY: plain prctl on this process; failure (old kernels) leaves the default.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    }

    /// Ends and reaps every child of baton that is not a live guard, with all its
    /// descendants; returns how many it found. Call it only where baton runs no other child
    /// of its own (its git commands run synchronously on the calling thread).
    pub fn sweep() -> usize {
        let me = std::process::id() as libc::pid_t;
        let mut found = 0;
        // Each round ends one generation; a process forking while it is killed leaves an
        // orphan that the next round finds. Bounded: a fork bomb is not baton's to win.
        for _ in 0..64 {
            let guards = GUARDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let tree = crate::run::guard::process_tree();
            let orphans: Vec<libc::pid_t> = tree.get(&me).into_iter().flatten().copied().filter(|p| !guards.contains(p)).collect();
            if orphans.is_empty() {
                break;
            }
            for orphan in &orphans {
                for pid in crate::run::guard::descendants_in(&tree, *orphan).into_iter().chain([*orphan]) {
                    // SAFETY: plain syscall; ESRCH (gone already) is fine.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            for orphan in &orphans {
                let mut status = 0;
                // SAFETY: plain syscall on a child of ours that no one else waits for.
                unsafe { libc::waitpid(*orphan, &mut status, 0) };
            }
            found += orphans.len();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[&[u8]], max: usize) -> Vec<(String, bool)> {
        let mut buffer = LineBuffer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            let mut chunk: &[u8] = chunk;
            while !chunk.is_empty() {
                let (used, line) = buffer.push(chunk);
                chunk = &chunk[used..];
                out.extend(line);
            }
        }
        out.extend(buffer.finish());
        out
    }

    fn owned(lines: &[(&str, bool)]) -> Vec<(String, bool)> {
        lines.iter().map(|(t, c)| (t.to_string(), *c)).collect()
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            lines_of(&[b"ab", b"c\nde", b"\r\n\nf"], 100),
            owned(&[("abc", false), ("de", false), ("", false), ("f", false)])
        );
    }

    #[test]
    fn no_trailing_line_after_final_newline() {
        assert_eq!(lines_of(&[b"a\n"], 100), owned(&[("a", false)]));
        assert_eq!(lines_of(&[], 100), owned(&[]));
    }

    #[test]
    fn cuts_long_lines_and_discards_the_rest() {
        assert_eq!(
            lines_of(&[b"abcd", b"efgh\nij", b"klmnop"], 5),
            owned(&[("abcde", true), ("ijklm", true)])
        );
        // Exactly the maximum is not truncated.
        assert_eq!(lines_of(&[b"abcde\n"], 5), owned(&[("abcde", false)]));
    }

    #[test]
    fn the_input_is_a_regular_file_and_nothing_that_could_block_or_lead_elsewhere() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("prompt");
        std::fs::write(&file, "hello").expect("write");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut open_input(&file).expect("a regular file"), &mut text)
            .expect("read");
        assert_eq!(text, "hello");

        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        assert!(
            open_input(&fifo).is_err(),
            "a FIFO must be refused, without blocking"
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(open_input(&link).is_err(), "a symlink must be refused");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            lines_of(&[b"a\xffb\n"], 100),
            owned(&[("a\u{fffd}b", false)])
        );
    }
}
