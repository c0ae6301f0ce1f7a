//! One supervised command as an operating-system process: start it, read its output, enforce
//! its deadlines, end it.
//!
//! The command runs in a process group of its own, under the guard (`guard.rs`) unless its
//! policy says otherwise; baton holds one end of a socket (the lifeline) whose other end only
//! the guard has. Output comes back as tagged lines of bounded length, then one exit. Ending a
//! command: SIGTERM to its group (a `term` request to the guard), keep draining output for the
//! policy's grace period, then end everything (baton shuts down its writing side of the
//! lifeline; the guard kills the command and every descendant). Dropping a [`Supervised`]
//! closes the lifeline, as does baton dying (even by SIGKILL): the guard then ends everything.
//!
//! The policy's deadlines (total, idle) are enforced here, and stay in force while output
//! drains: once the command has ended, output is read for the leak timeout at most, and never
//! past the total deadline or a [`kill_now`](Supervised::kill_now), whoever still holds the
//! pipes (the guard normally kills them first, but this layer does not count on it); what was
//! left unread is reported as a leak.
//!
//! Without a guard (tests of the library) the command is baton's own child: its group gets
//! the signals directly, and only what stayed in its group can be ended.
//!
//! It must not know about output formats, tasks or what the command is for. It signals only its
//! own children, and only while they are unreaped: only an unreaped process keeps its pid (and
//! its group id) from being reused.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::guard::{self, Report};
use super::lines::{read_lines, Line, Stream};
use super::orphans;
use super::policy::Policy;

/// How long the guard may take to say whether the command started. Generous: it is two
/// fork+exec on a possibly loaded two-core machine, and it only ever matters if something is
/// badly wrong.
const START_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// While output is still waiting past the leak timeout, how often baton looks again.
const LEAK_RECHECK: Duration = Duration::from_millis(50);

/// After an immediate end was asked for (or the leak timeout passed), how long the guard gets
/// to finish and exit before baton SIGKILLs it. Generous: the guard only has to sweep.
const GUARD_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a failed guard's stderr goes into the error.
const GUARD_STDERR_BYTES: u64 = 4096;

/// Lines buffered between the pipe readers and [`Supervised::next`]. Small, because a line
/// can be as long as the policy's `max_line` and memory must stay bounded.
const LINE_QUEUE: usize = 16;

/// What to run: the program, arguments, working directory, environment additions (the rest of
/// baton's environment is passed through unchanged) and what it reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    pub stdin: Input,
}

impl CommandSpec {
    /// `sh -c COMMAND` in `cwd`, stdin empty.
    pub fn shell(command: &str, cwd: PathBuf) -> CommandSpec {
        CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            cwd,
            env: Vec::new(),
            stdin: Input::Null,
        }
    }
}

/// A command's stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// /dev/null.
    Null,
    /// A regular file (an agent's prompt); never a FIFO or a symlink put in its place.
    File(PathBuf),
    /// These bytes, then end-of-file; a command that does not read them all is not an error.
    Bytes(Vec<u8>),
}

/// How the command ended. Exactly one field is set, except when it could not be waited for
/// at all (both `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn from_status(status: ExitStatus) -> ExitInfo {
        ExitInfo {
            code: status.code(),
            signal: status.signal(),
        }
    }

    const UNKNOWN: ExitInfo = ExitInfo {
        code: None,
        signal: None,
    };
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

/// Which of the policy's deadlines ended a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    Total,
    Idle,
}

/// What [`Supervised::next`] yields: lines in the order each pipe delivered them (stdout and
/// stderr are interleaved as they arrive), a `Deadline` when one passed and the command is
/// being ended for it, then one `Exited`, then nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Line(Line),
    Deadline(Deadline),
    Exited(ExitInfo),
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot use {} as the input", path.display())]
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
    #[error("program {} not found", program.display())]
    ProgramNotFound { program: PathBuf },
    #[error("program {} cannot be executed: permission denied", program.display())]
    PermissionDenied { program: PathBuf },
    #[error("program {} cannot be executed", program.display())]
    Exec {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the lifeline socket")]
    Lifeline(#[source] io::Error),
    #[error("cannot start the guard {}", guard_exe.display())]
    GuardSpawn {
        guard_exe: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `stderr` is the beginning of what the guard wrote there: its reason, if it gave one.
    #[error("the guard {} ended before starting the command ({status}): {}", guard_exe.display(), guard_said(stderr))]
    GuardExited {
        guard_exe: PathBuf,
        status: ExitInfo,
        stderr: String,
    },
    #[error("the guard {} did not report within {} s", guard_exe.display(), timeout.as_secs())]
    GuardSilent {
        guard_exe: PathBuf,
        timeout: Duration,
    },
    #[error("the guard sent an unexpected report {report:?}")]
    GuardProtocol { report: String },
    #[error("cannot start the lifeline reader thread")]
    ReportThread(#[source] io::Error),
    /// A remote executor could not send the attempt (`crate::exec`): why, and what to do.
    #[error("{message}")]
    Remote { message: String, help: String },
}

/// The process baton started: the guard, or the command itself when unguarded.
#[derive(Debug)]
enum Leader {
    Guard {
        child: Child,
        /// Signalled (SIGKILL, as a last resort) only while unreaped.
        pid: libc::pid_t,
        /// baton's end. Its writing side carries requests; shutting it down asks the guard to
        /// end everything now, and so does closing it (on drop, or baton's death).
        lifeline: UnixStream,
        reports: mpsc::UnboundedReceiver<Result<Report, String>>,
        reports_done: bool,
    },
    Direct {
        child: Child,
    },
}

enum LeaderEvent {
    Report(Option<Result<Report, String>>),
    Reaped(io::Result<ExitStatus>),
}

/// The next thing the leader has to say. Cancel-safe: both waits are.
async fn leader_event(leader: &mut Leader, reaped: bool) -> LeaderEvent {
    match leader {
        Leader::Guard {
            child,
            reports,
            reports_done,
            ..
        } => tokio::select! {
            biased;
            report = reports.recv(), if !*reports_done => LeaderEvent::Report(report),
            status = child.wait(), if !reaped => LeaderEvent::Reaped(status),
            else => std::future::pending().await,
        },
        Leader::Direct { child } if !reaped => LeaderEvent::Reaped(child.wait().await),
        Leader::Direct { .. } => std::future::pending().await,
    }
}

/// A running command. See the module doc.
#[derive(Debug)]
pub struct Supervised {
    leader: Leader,
    policy: Policy,
    /// The command's pid, which is also its process group's id.
    pid: libc::pid_t,
    stdin_writer: Option<JoinHandle<()>>,
    command_exit: Option<ExitInfo>,
    lines: mpsc::Receiver<Line>,
    lines_done: bool,
    readers: Vec<JoinHandle<()>>,
    /// The pipes' descriptors, each open for as long as its reader is not finished (the reader
    /// owns it); looked at to tell pending output from a pipe merely held open.
    pipe_fds: Vec<RawFd>,
    /// Output read past the drain deadline, in bytes.
    bytes_after_cap: usize,
    /// Set once the leader has been reaped; from then on it must not be signalled.
    leader_exit: Option<ExitInfo>,
    /// From when output is read only while some is waiting (and up to the drain cap): the leak
    /// timeout after baton learnt of the end, or earlier (total deadline, [`kill_now`]).
    drain_deadline: Option<Instant>,
    /// Reading was cut off past the drain deadline.
    reading_cut: bool,
    /// Output was still coming (or its pipes open) when reading was cut off.
    leaked: bool,
    total_deadline: Option<Instant>,
    idle_deadline: Option<Instant>,
    /// The deadline that ended the command, once it passed.
    cut_by: Option<Deadline>,
    term_sent: bool,
    kill_deadline: Option<Instant>,
    kill_sent: bool,
    /// The guard is SIGKILLed if it has not exited by then.
    guard_kill_deadline: Option<Instant>,
    exit: Option<ExitInfo>,
    exit_delivered: bool,
}

impl Supervised {
    /// Starts `cmd` as `policy` says: under the guard (its `guard`, run with
    /// [`guard::GUARD_ARG`]) or as a plain child. Returns once the command is running, or with
    /// the reason it could not be started. Its deadlines count from now.
    pub async fn spawn(cmd: &CommandSpec, policy: &Policy) -> Result<Supervised, SpawnError> {
        let started = Instant::now();
        // Checked here because a missing directory would otherwise surface as the spawn
        // failing with ENOENT, which reads like a missing program.
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
            Input::File(path) => {
                Stdio::from(open_input(path).map_err(|source| SpawnError::Input {
                    path: path.clone(),
                    source,
                })?)
            }
            Input::Bytes(_) => Stdio::piped(),
            Input::Null => Stdio::null(),
        };
        let (leader, pid, mut child) = match &policy.guard {
            Some(guard_exe) => spawn_guarded(cmd, policy, guard_exe, stdin).await?,
            None => spawn_direct(cmd, stdin)?,
        };

        let stdin_writer = match (&cmd.stdin, child.stdin.take()) {
            (Input::Bytes(bytes), Some(mut pipe)) => {
                let bytes = bytes.clone();
                Some(tokio::spawn(async move {
                    // A command that exits without reading all of it is not an error.
                    let _ = pipe.write_all(&bytes).await;
                }))
            }
            _ => None,
        };
        let (line_tx, lines) = mpsc::channel(LINE_QUEUE);
        let mut readers = Vec::with_capacity(2);
        let mut pipe_fds = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            pipe_fds.push(stdout.as_raw_fd());
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stdout),
                Stream::Stdout,
                policy.max_line,
                line_tx.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            pipe_fds.push(stderr.as_raw_fd());
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stderr),
                Stream::Stderr,
                policy.max_line,
                line_tx,
            )));
        }
        let leader = match leader {
            Some(guard) => guard.into_leader(child),
            None => Leader::Direct { child },
        };

        Ok(Supervised {
            leader,
            policy: policy.clone(),
            pid,
            stdin_writer,
            command_exit: None,
            lines,
            lines_done: false,
            readers,
            pipe_fds,
            bytes_after_cap: 0,
            leader_exit: None,
            drain_deadline: None,
            reading_cut: false,
            leaked: false,
            total_deadline: policy.total.map(|total| started + total),
            idle_deadline: policy.idle.map(|idle| started + idle),
            cut_by: None,
            term_sent: false,
            kill_deadline: None,
            kill_sent: false,
            guard_kill_deadline: None,
            exit: None,
            exit_delivered: false,
        })
    }

    /// The command's pid, which is also its process group's id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// How the command ended, as soon as baton knows, even while its output is still being
    /// read; `None` while it runs.
    pub fn command_exit(&mut self) -> Option<ExitInfo> {
        while self.command_exit.is_none() {
            let Leader::Guard {
                reports,
                reports_done: false,
                ..
            } = &mut self.leader
            else {
                break;
            };
            match reports.try_recv() {
                Ok(report) => self.on_report(Some(report)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.on_report(None),
            }
        }
        self.command_exit
    }

    /// The deadline that ended the command, if one did.
    pub fn cut_by(&self) -> Option<Deadline> {
        self.cut_by
    }

    /// Whether reading was cut off while something still held the command's output open: a
    /// process it started escaped the guard (or was left running on purpose).
    pub fn leaked(&self) -> bool {
        self.leaked
    }

    /// Moves the idle deadline to `until` if that is later: the command announced a silent
    /// pause of its own.
    pub fn postpone_idle(&mut self, until: Instant) {
        if let Some(idle) = &mut self.idle_deadline {
            *idle = (*idle).max(until);
        }
    }

    /// The next line of output, a deadline that passed, or the exit once both pipes are done
    /// (or cut off past the drain deadline) and the leader is gone (or the command's end is
    /// known); `None` after the exit was returned. Cancel-safe: nothing is lost if the future
    /// is dropped (e.g. in a `select!`). It also carries out the deadlines and a pending
    /// escalation from [`begin_terminate`](Self::begin_terminate), so keep calling it.
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
                if self.reports_over() {
                    if let Some(leader_exit) = self.leader_exit {
                        // The guard's own status is the fallback: it is SIGKILL when it was
                        // killed before the command ended, which is then also what the
                        // command got.
                        self.exit = Some(self.command_exit.unwrap_or(leader_exit));
                        continue;
                    }
                }
                if self.reading_cut {
                    if let Some(command_exit) = self.command_exit {
                        // The guard may still be sweeping; the caller need not wait for it.
                        self.exit = Some(command_exit);
                        continue;
                    }
                }
            }

            // Deadlines are checked here, before any waiting, so that a flood of output can
            // never starve them.
            let now = Instant::now();
            if let Some(deadline) = self.passed_deadline(now) {
                self.cut_by = Some(deadline);
                self.begin_terminate(self.policy.grace);
                return Some(Output::Deadline(deadline));
            }
            if self.kill_deadline.is_some_and(|d| now >= d) && !self.kill_sent {
                self.end_everything();
            }
            if self.guard_kill_deadline.is_some_and(|d| now >= d) {
                self.guard_kill_deadline = None;
                self.kill_guard();
            }
            let past_cap = !self.reading_cut && self.drain_deadline.is_some_and(|d| now >= d);
            if past_cap {
                // Let the readers hand over what they already hold before judging the pipes.
                tokio::task::yield_now().await;
                if self.output_idle() || self.bytes_after_cap >= self.policy.drain_cap {
                    self.cut_reading();
                    continue;
                }
            }
            let leak_check = self.drain_deadline.filter(|_| !self.reading_cut).map(|d| {
                if past_cap {
                    now + LEAK_RECHECK
                } else {
                    d
                }
            });
            let wake = [
                self.kill_deadline.filter(|_| !self.kill_sent),
                self.guard_kill_deadline,
                leak_check,
                self.running_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();

            let leader_active = self.leader_exit.is_none() || !self.reports_over();
            let reaped = self.leader_exit.is_some();
            tokio::select! {
                biased;
                event = leader_event(&mut self.leader, reaped), if leader_active => match event {
                    LeaderEvent::Report(report) => self.on_report(report),
                    LeaderEvent::Reaped(status) => self.on_reaped(status),
                },
                line = self.lines.recv(), if !self.lines_done => match line {
                    Some(line) => {
                        if past_cap {
                            self.bytes_after_cap += line.text.len() + 1;
                        }
                        if line.stream == Stream::Stdout {
                            if let (Some(idle), Some(at)) = (self.policy.idle, &mut self.idle_deadline) {
                                *at = (*at).max(Instant::now() + idle);
                            }
                        }
                        return Some(Output::Line(line));
                    }
                    None => self.lines_done = true,
                },
                () = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {},
            }
        }
    }

    /// Whether the leader has nothing more to report (a plain child reports by being reaped).
    fn reports_over(&self) -> bool {
        match &self.leader {
            Leader::Guard { reports_done, .. } => *reports_done,
            Leader::Direct { .. } => true,
        }
    }

    /// The earliest deadline still to be enforced on a running command.
    fn running_deadline(&self) -> Option<Instant> {
        if self.command_exit.is_some() || self.term_sent || self.kill_sent {
            return None;
        }
        [self.total_deadline, self.idle_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// The deadline that has passed for a running command, if any. A quiet stdout with a
    /// fresh heartbeat is work: the idle deadline moves instead.
    fn passed_deadline(&mut self, now: Instant) -> Option<Deadline> {
        if self.running_deadline().is_none_or(|d| now < d) {
            return None;
        }
        if self.total_deadline.is_some_and(|d| now >= d) {
            return Some(Deadline::Total);
        }
        let idle = self.policy.idle?;
        if let Some(age) = heartbeat_age(self.policy.heartbeat.as_deref()).filter(|age| *age < idle)
        {
            self.idle_deadline = Some(now + (idle - age));
            return None;
        }
        Some(Deadline::Idle)
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
                if let Leader::Guard { reports_done, .. } = &mut self.leader {
                    *reports_done = true;
                }
                return;
            }
        };
        self.command_exit = Some(exit);
        self.ended();
    }

    fn on_reaped(&mut self, status: io::Result<ExitStatus>) {
        let exit = match status {
            Ok(status) => ExitInfo::from_status(status),
            Err(_) => ExitInfo::UNKNOWN,
        };
        match &self.leader {
            Leader::Guard { pid, .. } => {
                orphans::reaped(*pid);
                self.guard_kill_deadline = None;
            }
            Leader::Direct { .. } => {
                orphans::reaped(self.pid);
                self.command_exit = Some(exit);
                if self.policy.kill_leftovers || self.term_sent || self.kill_sent {
                    // Right after the leader is reaped, its group id cannot have been reused
                    // yet: survivors keep it, and with none left the signal reaches nobody.
                    // SAFETY: plain syscall on a process group id of ours.
                    unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                }
            }
        }
        self.leader_exit = Some(exit);
        self.ended();
    }

    /// baton learnt that the command (or its guard) has ended: output is read for the leak
    /// timeout at most, and not past the total deadline.
    fn ended(&mut self) {
        let leak = Instant::now() + self.policy.leak_timeout;
        self.pull_drain_deadline(leak);
        if let Some(total) = self.total_deadline {
            self.pull_drain_deadline(total);
        }
    }

    fn pull_drain_deadline(&mut self, at: Instant) {
        self.drain_deadline = Some(self.drain_deadline.map_or(at, |d| d.min(at)));
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
        // Without the command's end known, the leader's is needed: make sure it comes.
        if self.command_exit.is_none() && self.leader_exit.is_none() {
            self.end_everything();
        }
    }

    /// Asks the command to stop: SIGTERM to its process group now, everything ended when
    /// `grace` has passed (carried out by [`next`](Self::next), which the caller keeps calling
    /// to drain the output meanwhile). Repeated calls never send a second SIGTERM and never
    /// postpone the end.
    pub fn begin_terminate(&mut self, grace: Duration) {
        if self.exit.is_some() || self.leader_exit.is_some() {
            return;
        }
        if !self.term_sent {
            self.term_sent = true;
            match &self.leader {
                // A failed write means the guard is gone; its exit is then on its way.
                Leader::Guard { lifeline, .. } => {
                    let mut stream: &UnixStream = lifeline;
                    let _ = stream.write_all(guard::TERM_REQUEST);
                }
                // SAFETY: plain syscall on the group of an unreaped child of ours.
                Leader::Direct { .. } => unsafe {
                    libc::kill(-self.pid, libc::SIGTERM);
                },
            }
        }
        let deadline = Instant::now() + grace;
        self.kill_deadline = Some(match self.kill_deadline {
            Some(earlier) => earlier.min(deadline),
            None => deadline,
        });
    }

    /// Ends the command and every process it started now, and stops waiting for output: what
    /// is already waiting is still read (up to the drain cap); [`next`](Self::next) then
    /// reports the exit.
    pub fn kill_now(&mut self) {
        self.end_everything();
        self.pull_drain_deadline(Instant::now());
    }

    /// Asks the guard to SIGKILL the command and sweep up every descendant, by shutting down
    /// baton's writing side of the lifeline (the guard's reports still arrive); should the
    /// guard not exit in time, it is SIGKILLed itself. Unguarded, SIGKILL to the group.
    fn end_everything(&mut self) {
        if self.kill_sent || self.leader_exit.is_some() {
            return;
        }
        self.kill_sent = true;
        match &self.leader {
            Leader::Guard { lifeline, .. } => {
                let _ = lifeline.shutdown(Shutdown::Write);
                self.guard_kill_deadline = Some(Instant::now() + GUARD_EXIT_TIMEOUT);
            }
            // SAFETY: plain syscall on the group of an unreaped child of ours.
            Leader::Direct { .. } => unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            },
        }
    }

    fn kill_guard(&self) {
        // Only while the guard is unreaped: its pid is still its own.
        if let (Leader::Guard { pid, .. }, None) = (&self.leader, self.leader_exit) {
            // SAFETY: plain syscall. ESRCH (gone already) is fine.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        match &self.leader {
            // The guard ends the command and everything it started when the lifeline closes.
            Leader::Guard { lifeline, .. } => {
                let _ = lifeline.shutdown(Shutdown::Both);
            }
            Leader::Direct { .. } => {
                if self.leader_exit.is_none() {
                    // SAFETY: plain syscall on the group of an unreaped child of ours.
                    unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                }
            }
        }
        for task in self.readers.iter().chain(&self.stdin_writer) {
            task.abort();
        }
    }
}

/// A started guard whose child handle is still with the caller.
struct StartedGuard {
    pid: libc::pid_t,
    lifeline: UnixStream,
    reports: mpsc::UnboundedReceiver<Result<Report, String>>,
}

impl StartedGuard {
    fn into_leader(self, child: Child) -> Leader {
        Leader::Guard {
            child,
            pid: self.pid,
            lifeline: self.lifeline,
            reports: self.reports,
            reports_done: false,
        }
    }
}

/// Starts the command as a plain child in a process group of its own.
fn spawn_direct(
    cmd: &CommandSpec,
    stdin: Stdio,
) -> Result<(Option<StartedGuard>, libc::pid_t, Child), SpawnError> {
    let child = Command::new(&cmd.program)
        .args(&cmd.args)
        .current_dir(&cmd.cwd)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Out of baton's group, so that a terminal's Ctrl+C reaches baton alone.
        .process_group(0)
        .spawn()
        .map_err(|source| {
            let program = cmd.program.clone();
            match source.raw_os_error() {
                Some(libc::ENOENT) => SpawnError::ProgramNotFound { program },
                Some(libc::EACCES) => SpawnError::PermissionDenied { program },
                _ => SpawnError::Exec { program, source },
            }
        })?;
    // Only unset once reaped, which nothing has done yet; a pid that is not a usable group id
    // must never reach kill(2), where -0 and -1 mean far more than one group.
    let Some(pid) = child
        .id()
        .and_then(|pid| libc::pid_t::try_from(pid).ok())
        .filter(|pid| *pid > 1)
    else {
        return Err(SpawnError::Exec {
            program: cmd.program.clone(),
            source: io::Error::other("the started process has no usable pid"),
        });
    };
    orphans::started(pid);
    Ok((None, pid, child))
}

/// Starts the command under the guard; returns once the guard said it runs.
async fn spawn_guarded(
    cmd: &CommandSpec,
    policy: &Policy,
    guard_exe: &Path,
    stdin: Stdio,
) -> Result<(Option<StartedGuard>, libc::pid_t, Child), SpawnError> {
    let (ours, theirs) = lifeline_pair().map_err(SpawnError::Lifeline)?;
    let theirs_fd = theirs.as_raw_fd();
    let mut command = Command::new(guard_exe);
    command
        .args(guard::guard_args(
            theirs_fd,
            !policy.kill_leftovers,
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
                status: ExitInfo::UNKNOWN,
                stderr: String::new(),
            })
        }
    };

    orphans::started(guard_pid);

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
        .name("lifeline".to_owned())
        .spawn(move || guard::read_reports(reader_end, |r| report_tx.send(r).is_ok()))
        .map_err(SpawnError::ReportThread)?;

    let first = tokio::time::timeout(START_REPORT_TIMEOUT, reports.recv()).await;
    let pid = match first {
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
    let Some(child) = starting.child.take() else {
        unreachable!("the guard child is only taken here")
    };
    Ok((
        Some(StartedGuard {
            pid: guard_pid,
            lifeline: ours,
            reports,
        }),
        pid,
        child,
    ))
}

/// How long ago the heartbeat file was touched.
fn heartbeat_age(path: Option<&Path>) -> Option<Duration> {
    let modified = std::fs::metadata(path?).ok()?.modified().ok()?;
    std::time::SystemTime::now().duration_since(modified).ok()
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
        orphans::reaped(self.guard_pid);
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// An unguarded policy (a test binary is not a baton binary) with these deadlines.
    fn policy(total: Duration, idle: Option<Duration>, heartbeat: Option<PathBuf>) -> Policy {
        Policy {
            idle,
            heartbeat,
            ..Policy::smoke(None, total, Duration::from_millis(200))
        }
    }

    /// Everything `process` yields until its exit: the deadlines it reported, the lines, the exit.
    async fn drain(process: &mut Supervised) -> (Vec<Deadline>, Vec<String>, ExitInfo) {
        let mut deadlines = Vec::new();
        let mut lines = Vec::new();
        loop {
            match process.next().await {
                Some(Output::Line(line)) => lines.push(line.text),
                Some(Output::Deadline(d)) => deadlines.push(d),
                Some(Output::Exited(exit)) => return (deadlines, lines, exit),
                None => panic!("no exit"),
            }
        }
    }

    async fn start(command: &str, policy: &Policy) -> Supervised {
        Supervised::spawn(&CommandSpec::shell(command, std::env::temp_dir()), policy)
            .await
            .expect("sh starts")
    }

    #[tokio::test]
    async fn a_silent_command_is_ended_by_the_idle_deadline_and_says_so() {
        let policy = policy(
            Duration::from_secs(120),
            Some(Duration::from_millis(300)),
            None,
        );
        let mut process = start("echo one; sleep 60", &policy).await;
        let (deadlines, lines, exit) =
            tokio::time::timeout(Duration::from_secs(60), drain(&mut process))
                .await
                .expect("the idle deadline ended it");
        assert_eq!(deadlines, [Deadline::Idle]);
        assert_eq!(process.cut_by(), Some(Deadline::Idle));
        assert_eq!(lines, ["one"]);
        assert_eq!(exit.signal, Some(libc::SIGTERM));
    }

    #[tokio::test]
    async fn the_total_deadline_ends_a_command_that_keeps_talking() {
        let policy = policy(
            Duration::from_millis(500),
            Some(Duration::from_secs(60)),
            None,
        );
        let mut process = start("while :; do echo tick; sleep 0.02; done", &policy).await;
        let (deadlines, _, exit) =
            tokio::time::timeout(Duration::from_secs(60), drain(&mut process))
                .await
                .expect("the total deadline ended it");
        assert_eq!(deadlines, [Deadline::Total]);
        assert!(!exit.success());
    }

    #[tokio::test]
    async fn a_fresh_heartbeat_or_an_announced_pause_is_not_idleness() {
        let dir = tempfile::tempdir().unwrap();
        let heartbeat = dir.path().join("heartbeat");
        std::fs::write(&heartbeat, "").unwrap();
        // Silent on stdout, but touching its heartbeat, for longer than the idle deadline.
        let command = format!(
            "i=0; while [ $i -lt 30 ]; do touch {0}; sleep 0.1; i=$((i+1)); done; echo done",
            heartbeat.display()
        );
        let idle = Duration::from_secs(2);
        let mut process = start(
            &command,
            &policy(Duration::from_secs(120), Some(idle), Some(heartbeat)),
        )
        .await;
        let (deadlines, lines, exit) = drain(&mut process).await;
        assert_eq!(
            (deadlines, lines, exit.success()),
            (vec![], vec!["done".to_owned()], true)
        );

        // Silent, no heartbeat, but the idle deadline was moved past its silence.
        let mut process = start(
            "sleep 1; echo done",
            &policy(
                Duration::from_secs(120),
                Some(Duration::from_millis(100)),
                None,
            ),
        )
        .await;
        process.postpone_idle(Instant::now() + Duration::from_secs(60));
        let (deadlines, lines, exit) = drain(&mut process).await;
        assert_eq!(
            (deadlines, lines, exit.success()),
            (vec![], vec!["done".to_owned()], true)
        );
    }

    #[tokio::test]
    async fn kill_now_after_the_end_stops_waiting_for_held_output() {
        // The command ends; its leftover holds the output open and would be waited for up to
        // the leak timeout, far away. A kill_now (a stop) ends that wait.
        let policy = Policy {
            kill_leftovers: false,
            leak_timeout: Duration::from_secs(600),
            ..policy(Duration::from_secs(600), None, None)
        };
        let mut process = start("sleep 600 & echo $!; exit 0", &policy).await;
        let leftover: libc::pid_t = loop {
            if let Some(Output::Line(line)) = process.next().await {
                break line.text.trim().parse().expect("a pid");
            }
        };
        // Read on (next is cancel-safe) until the command's end is known.
        let exit = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Some(exit) = process.command_exit() {
                    break exit;
                }
                let _ = tokio::time::timeout(Duration::from_millis(20), process.next()).await;
            }
        })
        .await
        .expect("the command ended");
        assert!(exit.success());
        process.kill_now();
        let (_, _, exit) = tokio::time::timeout(Duration::from_secs(60), drain(&mut process))
            .await
            .expect("kill_now ended the drain");
        assert!(exit.success());
        // SAFETY: kill(2) on the leftover this test made.
        unsafe { libc::kill(leftover, libc::SIGKILL) };
    }
}
