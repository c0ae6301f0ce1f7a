//! The agent guard: a tiny process that baton puts between itself and every agent, so that no
//! agent process outlives baton — not even after `kill -9 baton`.
//!
//! baton re-executes its own binary as `baton __guard --lifeline FD -- PROGRAM ARGS...` in a new
//! process group (see `process.rs`). The guard then
//! - ignores SIGTERM/SIGINT/SIGHUP, so that a group-wide SIGTERM from baton reaches the agent
//!   while the guard stays alive to report how the agent really ended;
//! - starts the agent as its child in the same process group, stdin /dev/null, stdout/stderr
//!   inherited (baton reads the agent's output directly), environment unchanged, default signal
//!   dispositions, an empty signal mask and no other descriptors;
//! - reports on the lifeline socket: `started PID`, then `exited CODE` or `signalled SIGNO`
//!   (or `exec-failed ERRNO` when the program cannot be run);
//! - when the agent ends, SIGKILLs its whole process group, itself included, so that whatever
//!   the agent left behind (tool shells, background jobs) ends with it;
//! - when the lifeline reaches end-of-file (baton died, or dropped the agent), SIGKILLs the
//!   whole group at once.
//!
//! Why not `PR_SET_PDEATHSIG` on the agent alone: the real Claude CLI, when SIGKILLed, orphans
//! its tool shell, which stays in the process group; only a group-wide kill ends everything. And
//! not `PR_SET_PDEATHSIG` on the guard either: it fires when the *thread* that forked the guard
//! ends, and baton's runtime ends worker threads whenever it likes.
//!
//! This module must stay std + libc only (no tokio, no allocation-heavy work): it runs in a
//! process that exists only to watch one child. Its protocol with baton (argument layout and
//! report lines) lives here and nowhere else.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};

/// The hidden first argument that turns the baton binary into a guard.
pub const GUARD_ARG: &str = "__guard";

const LIFELINE_FLAG: &str = "--lifeline";

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

/// The arguments (after the executable) that make the baton binary guard `program`.
pub(crate) fn guard_args(lifeline_fd: RawFd, program: &OsStr, args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 5);
    out.push(OsString::from(GUARD_ARG));
    out.push(OsString::from(LIFELINE_FLAG));
    out.push(OsString::from(lifeline_fd.to_string()));
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

struct Invocation {
    lifeline: RawFd,
    program: OsString,
    args: Vec<OsString>,
}

fn parse_args(args: &[OsString]) -> Result<Invocation, String> {
    let usage = "usage: __guard --lifeline FD -- PROGRAM [ARGS...]";
    let [flag, fd, dashes, program, rest @ ..] = args else {
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
        program: program.clone(),
        args: rest.to_vec(),
    })
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

    // The guard must survive the group-wide SIGTERM (and a stray SIGINT/SIGHUP) that is meant
    // for the agent, to report the agent's real exit; only SIGKILL ends it.
    for signo in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe about.
        unsafe { libc::signal(signo, libc::SIG_IGN) };
    }

    // Watch the lifeline before starting the agent, so that there is no window in which baton
    // can die unnoticed.
    let watcher = match lifeline.try_clone() {
        Ok(stream) => stream,
        Err(e) => fail(&format!("cannot clone the lifeline: {e}")),
    };
    if let Err(e) = std::thread::Builder::new()
        .name("lifeline".to_owned())
        .spawn(move || watch_lifeline(watcher))
    {
        fail(&format!("cannot start the lifeline watcher: {e}"));
    }

    let mut lifeline = lifeline;
    let guard_pid = std::process::id() as libc::pid_t;
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
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
            // Belt and braces: should the guard itself die without killing the group, the CLI
            // goes with it. The guard's main thread forks and lives as long as the guard does.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0
                || libc::getppid() != guard_pid
            {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            send(&mut lifeline, Report::ExecFailed(errno));
            let program = invocation.program.to_string_lossy();
            say(&format!("cannot run {program}: {e}"));
            let code = if errno == libc::ENOENT {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXECUTE
            };
            std::process::exit(code);
        }
    };
    send(&mut lifeline, Report::Started(child.id() as i32));

    let exit_code = match child.wait() {
        Ok(status) => {
            send(&mut lifeline, report_for(status));
            status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(EXIT_GUARD_FAILED)
        }
        Err(e) => {
            say(&format!("cannot wait for the agent: {e}"));
            EXIT_GUARD_FAILED
        }
    };
    // The agent is gone; whatever it left running in the group goes too. This kills the guard
    // as well, which is why the exit was reported on the lifeline first.
    kill_own_group();
    std::process::exit(exit_code)
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

/// Blocks until baton's end of the lifeline is gone, then ends the whole group.
fn watch_lifeline(mut stream: UnixStream) {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            // baton never writes; data is ignored, only end-of-file matters.
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    kill_own_group();
    // Unreachable unless kill failed; never leave the agent without a guard.
    std::process::exit(EXIT_GUARD_FAILED);
}

fn kill_own_group() {
    // SAFETY: plain syscall; pid 0 = the caller's own process group.
    unsafe { libc::kill(0, libc::SIGKILL) };
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
        let args = guard_args(7, OsStr::new("sh"), &["-c".into(), "echo hi".into()]);
        assert_eq!(args[0], GUARD_ARG);
        let invocation = parse_args(&args[1..]).expect("valid arguments");
        assert_eq!(invocation.lifeline, 7);
        assert_eq!(invocation.program, "sh");
        assert_eq!(
            invocation.args,
            vec![OsString::from("-c"), OsString::from("echo hi")]
        );
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
