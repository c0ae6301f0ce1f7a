//! Checks (`baton::run::verify`) run under the real guard, this package's `baton` binary: what a
//! check starts in the background, even in a session of its own, is gone once the check ends,
//! whether it passed or ran past its timeout.

use std::path::Path;
use std::time::Duration;

use baton::plan::TaskId;
use baton::report::event::Reporter;
use baton::run::stop::Stop;
use baton::run::verify::{run_checks, Check, CheckJob, CheckSource, Checked};
use baton_testkit::{process_alive, wait_until, TempRepo};

/// How long the processes of an ended check may take to be gone, with room for a loaded machine.
const GONE_WITHIN: Duration = Duration::from_secs(20);

/// Kills the recorded pids that are still alive when the test ends, however it ends.
struct Leftovers(Vec<u32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in &self.0 {
            if process_alive(*pid) {
                // SAFETY: plain syscall on a pid the test's own command recorded.
                unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }
}

/// A command that starts a child in its group and one in a session of its own, records their
/// pids in `dir`, then runs `then`.
fn spawning(dir: &Path, then: &str) -> String {
    let d = dir.display();
    format!(
        "sleep 300 & echo $! > {d}/child.tmp; mv {d}/child.tmp {d}/child.pid; \
         setsid sleep 300 & echo $! > {d}/setsid.tmp; mv {d}/setsid.tmp {d}/setsid.pid; {then}"
    )
}

fn pid_in(dir: &Path, name: &str) -> u32 {
    let text = std::fs::read_to_string(dir.join(format!("{name}.pid"))).unwrap_or_else(|e| panic!("no {name}.pid: {e}"));
    text.trim().parse().unwrap()
}

fn run(command: &str, cwd: &Path, logs: &Path, timeout: Duration) -> Checked {
    let job = CheckJob {
        task: TaskId("1.1".into()),
        cwd: cwd.to_path_buf(),
        env: Vec::new(),
        guard_exe: env!("CARGO_BIN_EXE_baton").into(),
        timeout,
        log_prefix: logs.join("attempt-1-check"),
    };
    let checks = [Check { command: command.to_string(), from: CheckSource::Task }];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Stop::Running);
    runtime.block_on(run_checks(&checks, &job, &Reporter::default(), rx))
}

fn assert_gone(dir: &Path, what: &str) {
    let pids: Vec<u32> = ["child", "setsid"].iter().map(|n| pid_in(dir, n)).collect();
    let _leftovers = Leftovers(pids.clone());
    let gone = wait_until(GONE_WITHIN, || pids.iter().all(|p| !process_alive(*p)));
    assert!(gone, "{what}: still alive after {GONE_WITHIN:?}: {:?}", pids.iter().filter(|p| process_alive(**p)).collect::<Vec<_>>());
}

#[test]
fn what_a_passing_check_starts_is_gone_when_it_ends() {
    let repo = TempRepo::new();
    let (pids, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let checked = run(&spawning(pids.path(), "echo all good"), repo.path(), logs.path(), Duration::from_secs(120));
    assert!(checked.passed(), "{checked:?}");
    assert_eq!(checked.records[0].tail, "all good");
    assert_gone(pids.path(), "after a passing check");
}

#[test]
fn what_a_check_past_its_timeout_starts_is_gone_with_it() {
    let repo = TempRepo::new();
    let (pids, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let checked = run(&spawning(pids.path(), "sleep 30"), repo.path(), logs.path(), Duration::from_secs(1));
    assert_eq!(checked.failed, Some(0), "{checked:?}");
    assert!(checked.records[0].timed_out, "{checked:?}");
    assert_gone(pids.path(), "after a check's timeout");
}
