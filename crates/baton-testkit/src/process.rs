//! Waiting on conditions and child processes with a deadline.
//!
//! Tests must never sleep to wait for something; they poll a condition until a deadline.
//! Everything here kills what it started when the deadline passes, whole process group included.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often [`wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(10);

/// Polls `condition` until it holds (→ `true`) or `timeout` passes (→ `false`).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Whether `pid` names a live process. A zombie counts as dead: in a container whose PID 1 does
/// not reap, a killed orphan stays a zombie forever, but it runs no code any more.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => match stat.rfind(')') {
            Some(end) => !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Sends `signal` (e.g. `libc::SIGKILL`) to every process in group `pgid`. Errors (group already
/// gone) are ignored: callers check the outcome with [`process_alive`].
pub fn kill_process_group(pgid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: killpg has no memory-safety preconditions; a bad pgid only yields an error.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// What a process run by [`run_with_deadline`] left behind.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The deadline passed and the process group was killed.
    pub timed_out: bool,
}

impl RunOutput {
    /// Every stdout line that parses as JSON, in order (stream-json output).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The last `{"type":"result",…}` event, if any.
    pub fn result_event(&self) -> Option<serde_json::Value> {
        self.events()
            .into_iter()
            .rev()
            .find(|e| e["type"] == "result")
    }
}

/// Runs `cmd` in its own process group with stdin null, collecting stdout and stderr. If it has
/// not exited after `timeout`, the whole group is killed and `timed_out` is set.
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> std::io::Result<RunOutput> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = child.id();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_process_group(pgid, libc::SIGKILL);
            break child.wait()?;
        }
        thread::sleep(POLL);
    };
    // Tools the process started may still hold the pipes open; do not let them outlive it.
    kill_process_group(pgid, libc::SIGKILL);
    Ok(RunOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        timed_out,
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_bogus_pid_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX - 1));
    }

    #[test]
    fn wait_until_reports_a_timeout() {
        assert!(!wait_until(Duration::from_millis(30), || false));
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
    }

    #[test]
    fn run_with_deadline_kills_a_hung_group() {
        let out = run_with_deadline(
            Command::new("sh").args(["-c", "echo started; sleep 30 & wait"]),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.stdout, "started\n");
    }
}
