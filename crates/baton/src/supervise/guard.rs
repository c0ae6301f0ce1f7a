//! The guard: a tiny process that baton puts between itself and every command it supervises
//! (agents, hooks, smoke tests, notification commands), so that nothing such a command starts
//! outlives it — not even after `kill -9 baton`, and not when the command's own children run in
//! process groups or sessions of their own.
//!
//! baton re-executes its own binary as `baton __guard --lifeline FD [--keep-leftovers] --
//! PROGRAM ARGS...` in a process group of its own (see `child.rs`), stdin what the command is to
//! read. The guard then
//! - becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`): every process the command starts
//!   that loses its parent (a `nohup … &` left by a tool shell, a `setsid` daemon) is
//!   re-parented to the guard instead of to init, so the guard can always find it;
//! - ignores SIGTERM/SIGINT/SIGHUP: only SIGKILL ends it before it has finished its job;
//! - starts the command as its child in a process group of its own (id = the command's pid),
//!   stdin inherited (then the guard lets go of its own copy, so that a command that stops
//!   reading is not kept waiting by the guard), stdout/stderr inherited (baton reads the
//!   command's output directly), environment unchanged, default signal dispositions, an empty
//!   signal mask and no other descriptors;
//! - reports on the lifeline socket: `started PID`, then `exited CODE` or `signalled SIGNO`
//!   (or `exec-failed ERRNO` when the program cannot be run);
//! - obeys baton's requests on the lifeline: `term` = SIGTERM to the command's process group;
//!   end-of-file (baton died, dropped the command, or shut down its writing side to ask for
//!   an immediate end) = SIGKILL to the command and its group;
//! - once the command has ended (and been reported), ends every descendant it still has, in any
//!   process group or session: list them from /proc, SIGKILL, reap, again until none is left;
//!   then exits. With `--keep-leftovers` (a hook that starts a dev server) it leaves them
//!   running when the command ended on its own — not after a `term`, nor once the lifeline
//!   closed.
//!
//! Only the guard signals the command's group, and only while the command is not yet reaped
//! (under the same lock as the reaping): an unreaped command keeps its pid, and so its group id,
//! from being reused, which baton could not know from outside.
//!
//! Why not `PR_SET_PDEATHSIG` on the command alone: the real Claude CLI, when SIGKILLed, orphans
//! its tool shells, which run in process groups of their own; only the subreaper sweep finds
//! them all. It is kept as a belt anyway: should the guard be SIGKILLed, the command goes with
//! it. And not `PR_SET_PDEATHSIG` on the guard: it fires when the *thread* that forked the
//! guard ends, and baton's runtime ends worker threads whenever it likes.
//!
//! This module must stay std + libc only (no tokio): it runs in a process that exists only to
//! watch one child. Its protocol with baton (argument layout, requests and report lines) lives
//! here and nowhere else.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The hidden first argument that turns the baton binary into a guard.
pub const GUARD_ARG: &str = "__guard";

const LIFELINE_FLAG: &str = "--lifeline";
const KEEP_LEFTOVERS_FLAG: &str = "--keep-leftovers";

/// The guard could not do its own job (bad arguments, no lifeline): nothing was started.
pub(crate) const EXIT_GUARD_FAILED: i32 = 125;
/// The program exists but cannot be executed (the shell's convention).
pub(crate) const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The program was not found (the shell's convention).
pub(crate) const EXIT_NOT_FOUND: i32 = 127;

/// Prefix of every line the guard itself writes to stderr; it is the agent's stderr too, so
/// the guard's own words must be recognisable in the log.
pub(crate) const STDERR_PREFIX: &str = "baton-guard: ";

/// A report line must fit in this many bytes; anything longer is a protocol error.
pub(crate) const MAX_REPORT_LINE: u64 = 64;

/// The arguments (after the executable) that make the baton binary guard `program`; with
/// `keep_leftovers`, what the command leaves running when it ends on its own is not swept.
pub(crate) fn guard_args(
    lifeline_fd: RawFd,
    keep_leftovers: bool,
    program: &OsStr,
    args: &[OsString],
) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 6);
    out.push(OsString::from(GUARD_ARG));
    out.push(OsString::from(LIFELINE_FLAG));
    out.push(OsString::from(lifeline_fd.to_string()));
    if keep_leftovers {
        out.push(OsString::from(KEEP_LEFTOVERS_FLAG));
    }
    out.push(OsString::from("--"));
    out.push(program.to_owned());
    out.extend(args.iter().cloned());
    out
}

/// What the guard tells baton on the lifeline, one line each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The agent is running with this pid.
    Started(i32),
    /// The agent could not be executed; the errno of the failed spawn.
    ExecFailed(i32),
    /// The agent exited with this code.
    Exited(i32),
    /// The agent was killed by this signal.
    Signalled(i32),
}

impl Report {
    pub(crate) fn encode(self) -> String {
        match self {
            Report::Started(pid) => format!("started {pid}\n"),
            Report::ExecFailed(errno) => format!("exec-failed {errno}\n"),
            Report::Exited(code) => format!("exited {code}\n"),
            Report::Signalled(signo) => format!("signalled {signo}\n"),
        }
    }

    /// Parses one line without its newline; `None` for anything this version does not know.
    pub(crate) fn parse(line: &str) -> Option<Report> {
        let (word, number) = line.trim_end().split_once(' ')?;
        let number: i32 = number.parse().ok()?;
        match word {
            "started" => Some(Report::Started(number)),
            "exec-failed" => Some(Report::ExecFailed(number)),
            "exited" => Some(Report::Exited(number)),
            "signalled" => Some(Report::Signalled(number)),
            _ => None,
        }
    }
}

/// Reads report lines until end-of-file; used by baton on its end of the lifeline.
pub(crate) fn read_reports(
    stream: UnixStream,
    mut on_report: impl FnMut(Result<Report, String>) -> bool,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_REPORT_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let report = Report::parse(&text).ok_or_else(|| text.trim_end().to_owned());
                if !on_report(report) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// baton's request to send SIGTERM to the agent's process group, one line on the lifeline.
/// (The other request is end-of-file: end everything now.)
pub(crate) const TERM_REQUEST: &[u8] = b"term\n";

struct Invocation {
    lifeline: RawFd,
    keep_leftovers: bool,
    program: OsString,
    args: Vec<OsString>,
}

fn parse_args(args: &[OsString]) -> Result<Invocation, String> {
    let usage = "usage: __guard --lifeline FD [--keep-leftovers] -- PROGRAM [ARGS...]";
    let (keep_leftovers, args) = match args {
        [flag, fd, keep, rest @ ..] if keep == KEEP_LEFTOVERS_FLAG => {
            (true, [&[flag.clone(), fd.clone()][..], rest].concat())
        }
        _ => (false, args.to_vec()),
    };
    let [flag, fd, dashes, program, rest @ ..] = &args[..] else {
        return Err(usage.to_owned());
    };
    if flag != LIFELINE_FLAG || dashes != "--" {
        return Err(usage.to_owned());
    }
    let lifeline = fd
        .to_str()
        .and_then(|s| s.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
        .ok_or_else(|| format!("bad lifeline fd {fd:?}"))?;
    Ok(Invocation {
        lifeline,
        keep_leftovers,
        program: program.clone(),
        args: rest.to_vec(),
    })
}

/// What the lifeline watcher and the main thread share. The lock is held while the agent is
/// reaped and while its group is signalled, so that a signal never reaches a reused group id.
#[derive(Default)]
struct Shared {
    /// The agent's pid (= its process group id) while it is not yet reaped.
    agent: Option<libc::pid_t>,
    /// The lifeline reached end-of-file: nothing more may be started, everything must end.
    closed: bool,
    /// baton asked for the command's end (`term`): what it leaves behind goes too.
    term_requested: bool,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(shared: &SharedState) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means a thread panicked while holding it; the data is two plain
    // fields that are always valid.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the guard. `args` are the arguments that follow [`GUARD_ARG`]:
/// `--lifeline FD -- PROGRAM [ARGS...]`. Never returns.
pub fn guard_main(args: &[OsString]) -> ! {
    let invocation = match parse_args(args) {
        Ok(invocation) => invocation,
        Err(message) => fail(&message),
    };
    let lifeline = match adopt_lifeline(invocation.lifeline) {
        Ok(stream) => stream,
        Err(e) => fail(&format!(
            "cannot use lifeline fd {}: {e}",
            invocation.lifeline
        )),
    };

    // A stray SIGTERM/SIGINT/SIGHUP must not end the guard before it has reported the agent's
    // end and swept up after it; only SIGKILL ends it.
    for signo in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe about.
        unsafe { libc::signal(signo, libc::SIG_IGN) };
    }
    // Orphans among the agent's descendants come back to the guard instead of to init, so that
    // the sweep finds them whatever their group or session. Without it (kernels before 3.4)
    // the sweep still ends every descendant that has not been orphaned.
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        say(&format!(
            "cannot become a child subreaper: {}",
            io::Error::last_os_error()
        ));
    }

    let shared: SharedState = Arc::default();
    // Watch the lifeline before starting the agent, so that there is no window in which baton
    // can die unnoticed.
    let watcher = match lifeline.try_clone() {
        Ok(stream) => stream,
        Err(e) => fail(&format!("cannot clone the lifeline: {e}")),
    };
    let watcher_shared = Arc::clone(&shared);
    if let Err(e) = std::thread::Builder::new()
        .name("lifeline".to_owned())
        .spawn(move || watch_lifeline(watcher, &watcher_shared))
    {
        fail(&format!("cannot start the lifeline watcher: {e}"));
    }

    let mut lifeline = lifeline;
    let agent_pid = start_agent(&invocation, &shared, &mut lifeline);
    send(&mut lifeline, Report::Started(agent_pid));

    let exit_code = match wait_for_agent(agent_pid, &shared) {
        Ok(status) => {
            let report = report_for(status);
            send(&mut lifeline, report);
            match report {
                Report::Exited(code) => code,
                Report::Signalled(signo) => 128 + signo,
                _ => EXIT_GUARD_FAILED,
            }
        }
        Err(e) => {
            say(&format!("cannot wait for the agent: {e}"));
            EXIT_GUARD_FAILED
        }
    };
    // The command is gone; whatever it left running goes too, wherever it hid — unless it
    // ended on its own and what it started is meant to stay (a hook's dev server).
    let keep = {
        let state = lock(&shared);
        invocation.keep_leftovers && !state.closed && !state.term_requested
    };
    if !keep {
        sweep();
    }
    std::process::exit(exit_code)
}

/// Starts the agent in a process group of its own; its pid. Exits the guard (after reporting
/// `exec-failed`) when it cannot be started, or when baton is already gone.
fn start_agent(
    invocation: &Invocation,
    shared: &SharedState,
    lifeline: &mut UnixStream,
) -> libc::pid_t {
    let guard_pid = std::process::id() as libc::pid_t;
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.args)
        // The guard's stdin is what baton chose for the agent (the prompt, or /dev/null).
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        // A group of its own: baton's SIGTERM goes to the agent and its tools, not the guard.
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions
    // (sigprocmask, sigaction via signal, close_range, prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            reset_signals();
            // Descriptors that baton inherited from whoever started it (a CI runner's pipe, a
            // terminal's) are none of the agent's business, and an agent holding one open can
            // keep that starter waiting. Marked close-on-exec rather than closed, because std
            // reports a failed exec through a descriptor of its own. Kernels before 5.11 lack
            // the flag: the call fails and nothing changes.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            // Belt and braces: should the guard itself be SIGKILLed, the CLI goes with it. The
            // guard's main thread forks and lives as long as the guard does.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0
                || libc::getppid() != guard_pid
            {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }

    // Under the lock: the watcher either saw end-of-file before (then nothing is started) or
    // sees the agent's pid after (then it kills it).
    let mut state = lock(shared);
    if state.closed {
        std::process::exit(EXIT_GUARD_FAILED);
    }
    match command.spawn() {
        Ok(child) => {
            let pid = child.id() as libc::pid_t;
            state.agent = Some(pid);
            release_stdin();
            // `child` is dropped without waiting: the agent is reaped by `wait_for_agent`.
            pid
        }
        Err(e) => {
            drop(state);
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            send(lifeline, Report::ExecFailed(errno));
            let program = invocation.program.to_string_lossy();
            say(&format!("cannot run {program}: {e}"));
            let code = if errno == libc::ENOENT {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXECUTE
            };
            std::process::exit(code);
        }
    }
}

/// Reaps children until the agent is among them; its wait status. Orphans re-parented to the
/// guard that end meanwhile are reaped on the way.
fn wait_for_agent(agent: libc::pid_t, shared: &SharedState) -> io::Result<ExitStatus> {
    loop {
        // Learn which child ended without reaping it yet, then reap it under the lock.
        // SAFETY: waitid writes into the zeroed siginfo we own.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid succeeded with WEXITED, so the siginfo describes a child.
        let pid = unsafe { info.si_pid() };
        let mut state = lock(shared);
        let mut status = 0;
        // SAFETY: plain syscall on a child that has ended.
        let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
        if reaped == agent {
            state.agent = None;
            return Ok(ExitStatus::from_raw(status));
        }
    }
}

/// Ends every descendant of the guard, whatever its process group or session, and reaps them.
/// Repeats until none is left, so that a process forking while it is being killed does not
/// leave its child behind (the child is orphaned to the guard and found in the next round).
fn sweep() {
    let me = std::process::id() as libc::pid_t;
    loop {
        reap_ended_children();
        let descendants = descendants_of(me);
        if descendants.is_empty() && !has_children() {
            return;
        }
        for pid in &descendants {
            // A pid read from /proc a moment ago: its process may have ended since, and its
            // pid be reused only after a full wrap of the pid space within that moment.
            // SAFETY: plain syscall; ESRCH (gone already) is fine.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        // Wait for one child to end (every one of them was just sent SIGKILL); when the guard
        // has no children of its own but /proc still shows descendants (they are being
        // re-parented), look again shortly.
        let mut status = 0;
        // SAFETY: plain syscall.
        let rc = unsafe { libc::waitpid(-1, &mut status, 0) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            std::thread::sleep(SWEEP_RECHECK);
        }
    }
}

/// How long the sweep waits before looking again when descendants are being re-parented.
const SWEEP_RECHECK: std::time::Duration = std::time::Duration::from_millis(5);

fn reap_ended_children() {
    let mut status = 0;
    // SAFETY: plain syscall, non-blocking.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

fn has_children() -> bool {
    // SAFETY: waitid with WNOWAIT|WNOHANG only looks; it writes into the zeroed siginfo we own.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // 0 with a child still running or one ended; ECHILD when there is none.
    rc == 0
}

/// Every process whose chain of parents leads to `root` (not `root` itself), from /proc.
fn descendants_of(root: libc::pid_t) -> Vec<libc::pid_t> {
    descendants_in(&process_tree(), root)
}

/// Each process's children, from /proc (a process that ends meanwhile is simply not there).
pub(crate) fn process_tree() -> HashMap<libc::pid_t, Vec<libc::pid_t>> {
    let mut children: HashMap<libc::pid_t, Vec<libc::pid_t>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if let Some(ppid) = std::fs::read(entry.path().join("stat"))
            .ok()
            .and_then(|stat| parent_in_stat(&stat))
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    children
}

/// The descendants of `root` in `tree` (not `root` itself).
pub(crate) fn descendants_in(
    tree: &HashMap<libc::pid_t, Vec<libc::pid_t>>,
    root: libc::pid_t,
) -> Vec<libc::pid_t> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        if let Some(kids) = tree.get(&parent) {
            found.extend(kids);
            queue.extend(kids);
        }
    }
    found
}

/// The parent pid from the content of `/proc/PID/stat`: `pid (comm) state ppid …`, where the
/// command name may itself hold spaces and parentheses.
fn parent_in_stat(stat: &[u8]) -> Option<libc::pid_t> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn report_for(status: ExitStatus) -> Report {
    match (status.code(), status.signal()) {
        (Some(code), _) => Report::Exited(code),
        (None, Some(signo)) => Report::Signalled(signo),
        // Stopped/continued are not reported by wait(); keep the protocol total anyway.
        (None, None) => Report::Exited(EXIT_GUARD_FAILED),
    }
}

fn fail(message: &str) -> ! {
    say(message);
    std::process::exit(EXIT_GUARD_FAILED)
}

/// One line of the guard's own on stderr. Not `eprintln!`: it panics when baton is gone and
/// the pipe with it, and the guard has better things to do then.
fn say(message: &str) {
    let _ = writeln!(io::stderr(), "{STDERR_PREFIX}{message}");
}

/// Takes the inherited lifeline fd, after checking it is a socket, and hides it from the agent.
fn adopt_lifeline(fd: RawFd) -> io::Result<UnixStream> {
    // SAFETY: fstat only writes into the zeroed struct we own.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a socket"));
    }
    // baton cleared close-on-exec so that the guard could inherit it; the agent must not,
    // or the agent would keep the lifeline alive after baton's death.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: baton passed this fd for the guard alone; nothing else in this process owns it.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

/// Carries out baton's requests until its end of the lifeline is gone, then kills the agent;
/// the main thread reaps it and sweeps up the rest.
fn watch_lifeline(stream: UnixStream, shared: &SharedState) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_REPORT_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => break,
            Ok(_) => {
                if line == TERM_REQUEST {
                    lock(shared).term_requested = true;
                    signal_agent(shared, libc::SIGTERM);
                }
                // Anything else is from a newer baton; ignored.
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut state = lock(shared);
    state.closed = true;
    if let Some(agent) = state.agent {
        // SAFETY: plain syscalls on an unreaped child and its group (held by the lock).
        unsafe {
            libc::kill(-agent, libc::SIGKILL);
            libc::kill(agent, libc::SIGKILL);
        }
    }
}

/// Sends `signo` to the agent's process group (to the agent alone if it left its group), if
/// the agent has not been reaped yet.
fn signal_agent(shared: &SharedState, signo: libc::c_int) {
    let state = lock(shared);
    if let Some(agent) = state.agent {
        // SAFETY: plain syscalls; the unreaped agent keeps its pid and group id ours.
        unsafe {
            if libc::kill(-agent, signo) != 0 {
                libc::kill(agent, signo);
            }
        }
    }
}

/// Points the guard's own stdin at /dev/null once the command has its copy: a command fed
/// through a pipe must see its end when baton closes it, and a writer must not be kept
/// waiting by a guard that never reads.
fn release_stdin() {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto fd 0, which the guard itself never reads.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}

/// A failed write means baton is gone; the lifeline watcher then ends everything.
fn send(stream: &mut UnixStream, report: Report) {
    let _ = stream.write_all(report.encode().as_bytes());
}

/// Gives the agent the signal state of a freshly started program: the guard ignores some
/// signals and the Rust runtime ignores SIGPIPE, and ignored dispositions survive exec.
///
/// Runs between fork and exec: async-signal-safe calls only.
fn reset_signals() {
    // SAFETY: sigset_t is plain data; sigemptyset/sigprocmask/signal are async-signal-safe.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // 64 covers the real-time signals; the C library refuses the few it reserves, and
        // SIGKILL/SIGSTOP cannot be changed: those calls fail harmlessly.
        for signo in 1..=64 {
            if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                libc::signal(signo, libc::SIG_DFL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for report in [
            Report::Started(42),
            Report::ExecFailed(libc::ENOENT),
            Report::Exited(0),
            Report::Exited(137),
            Report::Signalled(9),
        ] {
            assert_eq!(Report::parse(report.encode().trim_end()), Some(report));
        }
        assert_eq!(Report::parse("started"), None);
        assert_eq!(Report::parse("frobbed 3"), None);
        assert_eq!(Report::parse("exited x"), None);
    }

    #[test]
    fn guard_args_parse_back() {
        let args = guard_args(7, false, OsStr::new("sh"), &["-c".into(), "echo hi".into()]);
        assert_eq!(args[0], GUARD_ARG);
        let invocation = parse_args(&args[1..]).expect("valid arguments");
        assert_eq!(invocation.lifeline, 7);
        assert!(!invocation.keep_leftovers);
        let args = guard_args(7, true, OsStr::new("sh"), &["--".into()]);
        let invocation = parse_args(&args[1..]).expect("valid arguments");
        assert!(invocation.keep_leftovers);
        assert_eq!(invocation.program, "sh");
        assert_eq!(invocation.args, vec![OsString::from("--")]);
        let args = guard_args(7, false, OsStr::new("sh"), &["-c".into(), "echo hi".into()]);
        let invocation = parse_args(&args[1..]).expect("valid arguments");
        assert_eq!(invocation.program, "sh");
        assert_eq!(
            invocation.args,
            vec![OsString::from("-c"), OsString::from("echo hi")]
        );
    }

    #[test]
    fn the_parent_is_read_past_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_in_stat(b"42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_in_stat(b"42 (a) b (c) R 1234 42 42 0"), Some(1234));
        assert_eq!(parent_in_stat(b"42 (x"), None);
        assert_eq!(parent_in_stat(b""), None);
    }

    #[test]
    fn descendants_are_found_through_the_parent_chain() {
        // A shell whose child sleeps: both are descendants of this test process.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sh");
        let mut line = String::new();
        let stdout = shell.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the pid");
        let sleeper: libc::pid_t = line.trim().parse().expect("a pid");
        let found = descendants_of(std::process::id() as libc::pid_t);
        // SAFETY: kill(2) on the processes this test started.
        unsafe {
            libc::kill(sleeper, libc::SIGKILL);
            libc::kill(shell.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = shell.wait();
        assert!(found.contains(&(shell.id() as libc::pid_t)), "{found:?}");
        assert!(found.contains(&sleeper), "{found:?}");
        assert!(!found.contains(&(std::process::id() as libc::pid_t)));
    }

    #[test]
    fn bad_guard_args_are_refused() {
        let refused = |args: &[&str]| {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            parse_args(&args).is_err()
        };
        assert!(refused(&[]));
        assert!(refused(&["--lifeline", "5", "sh"]));
        assert!(refused(&["--lifeline", "x", "--", "sh"]));
        assert!(refused(&["--lifeline", "1", "--", "sh"]));
        assert!(refused(&["--other", "5", "--", "sh"]));
    }
}
