//! The processes of an attempt: nothing the agent starts outlives it, in whatever process group
//! or session it hides (nor what a hook or a smoke test starts, once baton is killed); output held open by an escaped process neither holds baton past its
//! deadlines nor turns a finished task into a failed one; a terminal's Ctrl+C reaches baton and
//! not its git commands; a prompt of any size reaches the agent.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use baton::plan::Status;
use baton_testkit::process_alive;

use crate::support::{Project, project, wait_exit, wait_for};

const TWO: &str = "meta:
  name: Two steps
  max_attempts_default: 3
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: One
    status: pending
    description: 'Write one.txt. Files: one.txt'
  - id: '1.2'
    name: Two
    status: pending
    depends_on: ['1.1']
";

/// How long the processes of an ended attempt may take to be gone: "a few seconds", with room
/// for a loaded machine.
const GONE_WITHIN: Duration = Duration::from_secs(20);

fn task(p: &Project, id: &str) -> (Status, u32, Option<String>) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts, t.last_error.clone())
}

/// The pids the fake agent recorded for attempt `stem` (e.g. `1.1-1`) under these kinds.
fn pids(p: &Project, stem: &str, kinds: &[&str]) -> Vec<(String, u32)> {
    kinds
        .iter()
        .map(|kind| {
            let name = format!("{stem}.{kind}.pid");
            let pid = p.pid_file(&name).unwrap_or_else(|| panic!("no {name}"));
            (kind.to_string(), pid)
        })
        .collect()
}

/// The parent pid of a live process, from /proc.
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a live process");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 1..];
    after_name.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("a parent pid")
}

fn wait_all_gone(what: &str, pids: &[(String, u32)]) {
    let gone = baton_testkit::wait_until(GONE_WITHIN, || pids.iter().all(|(_, pid)| !process_alive(*pid)));
    let alive: Vec<&(String, u32)> = pids.iter().filter(|(_, pid)| process_alive(*pid)).collect();
    assert!(gone, "{what}: still alive after {GONE_WITHIN:?}: {alive:?}");
}

/// Kills, on drop, what a test started outside baton, and the daemons of a failed test (only
/// then: a passing test saw them gone, and their pids may have been reused since).
struct Reaper {
    pids: Vec<u32>,
    children: Vec<Child>,
}

impl Reaper {
    fn pids(pids: &[(String, u32)]) -> Reaper {
        Reaper { pids: pids.iter().map(|(_, pid)| *pid).collect(), children: Vec::new() }
    }

    fn child(child: Child) -> Reaper {
        Reaper { pids: Vec::new(), children: vec![child] }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.pids.iter().filter(|_| std::thread::panicking()) {
            // SAFETY: kill(2) on pids this test recorded; a gone one only yields ESRCH.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        for child in &mut self.children {
            // Each was started as the leader of its own group.
            baton_testkit::kill_process_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

#[test]
fn kill_9_of_baton_ends_the_agents_setsid_and_nohup_children() {
    let p = project(TWO);
    p.scenario(r#"{"tasks": {"1.1": [{"daemons": true, "hang": true}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    // The agent's pid file is written last.
    wait_for("the agent to hang", || p.pid_file("1.1-1.agent.pid").is_some());
    let mut all = pids(&p, "1.1-1", &["agent", "grandchild", "setsid", "setsid-child", "nohup"]);
    all.push(("guard".to_string(), parent_of(all[0].1)));
    let _reaper = Reaper::pids(&all);
    for (kind, pid) in &all {
        assert!(process_alive(*pid), "the {kind} process should be running");
    }
    crate::support::signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_all_gone("after kill -9 of baton", &all);
}

#[test]
fn an_idle_timeout_ends_the_agents_setsid_and_nohup_children() {
    let p = project(&TWO.replace("max_attempts_default: 3", "max_attempts_default: 1\n  idle_timeout_seconds: 1"));
    p.scenario(r#"{"tasks": {"1.1": [{"daemons": true, "hang": true}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    let all = pids(&p, "1.1-1", &["agent", "grandchild", "setsid", "setsid-child", "nohup"]);
    let _reaper = Reaper::pids(&all);
    assert_eq!(r.code(), 3, "{}", r.all());
    let err = task(&p, "1.1").2.unwrap_or_default();
    assert!(err.contains("idle timeout"), "{err}");
    wait_all_gone("after the idle timeout", &all);
}

#[test]
fn a_completed_task_leaves_no_background_process_behind() {
    let p = project(TWO);
    p.scenario(r#"{"tasks": {"1.1": [{"daemons": true, "write": {"one.txt": "1"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    let all = pids(&p, "1.1-1", &["setsid", "setsid-child", "nohup"]);
    let _reaper = Reaper::pids(&all);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None));
    wait_all_gone("after the task completed", &all);
}

/// Starts a process outside baton's reach that opens the agent's stdout (the pipe baton
/// reads) through /proc and writes into it for as long as the pipe is read, as a process that
/// escaped the guard would: a line every 50 ms, or (`flood`) as fast as it can. `attached`
/// appears once it holds the pipe.
fn hold_agent_output(agent: u32, attached: &Path, flood: bool) -> Child {
    let script = if flood {
        r#"exec 3>"/proc/$1/fd/1" || exit 1; : > "$2"; exec yes 'flooding the pipe' >&3"#
    } else {
        r#"exec 3>"/proc/$1/fd/1" || exit 1; : > "$2"; i=0
           while [ $i -lt 6000 ] && echo 'still writing' >&3; do sleep 0.05; i=$((i+1)); done"#
    };
    Command::new("sh")
        .args([
            "-c",
            script,
            "sh",
            &agent.to_string(),
            &attached.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the output holder")
}

#[test]
fn output_held_open_after_the_agent_ended_does_not_hold_the_run_and_the_task_stays_completed() {
    held_output_after_the_end(false);
}

#[test]
fn a_flood_of_output_after_the_agent_ended_does_not_hold_the_run_either() {
    held_output_after_the_end(true);
}

fn held_output_after_the_end(flood: bool) {
    let p = project(TWO);
    let dir = tempfile::tempdir().unwrap();
    let attached = dir.path().join("attached");
    p.scenario(&format!(r#"{{"tasks": {{"1.1": [{{"await_file": {:?}}}]}}}}"#, attached.display().to_string()));
    let mut baton = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to start", || p.pid_file("1.1-1.agent.pid").is_some());
    let agent = p.pid_file("1.1-1.agent.pid").unwrap();
    let _holder = Reaper::child(hold_agent_output(agent, &attached, flood));
    wait_for("the holder to hold the agent's output", || attached.exists());
    assert_eq!(wait_exit(&mut baton), Some(0), "{}", p.log());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None), "{}", p.log());
    assert_eq!(task(&p, "1.2").0, Status::Completed);
    assert!(p.log().contains("still held its output open"), "the leak was not reported:\n{}", p.log());
}

#[test]
fn the_total_timeout_holds_while_an_escaped_process_keeps_writing() {
    let p = project(&TWO.replace("max_attempts_default: 3", "max_attempts_default: 1\n  timeout_seconds: 4"));
    let dir = tempfile::tempdir().unwrap();
    let attached = dir.path().join("attached");
    p.scenario(&format!(r#"{{"tasks": {{"1.1": [{{"await_file": {:?}, "hang": true}}]}}}}"#, attached.display().to_string()));
    let mut baton = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to start", || p.pid_file("1.1-1.agent.pid").is_some());
    let agent = p.pid_file("1.1-1.agent.pid").unwrap();
    let _holder = Reaper::child(hold_agent_output(agent, &attached, true));
    assert_eq!(wait_exit(&mut baton), Some(3), "{}", p.log());
    let err = task(&p, "1.1").2.unwrap_or_default();
    assert!(err.contains("total timeout"), "{err}\n{}", p.log());
    assert!(!process_alive(agent));
}

/// A `git` in front of the real one that, once `arm` exists, holds the first `git commit` until
/// `go` exists; `held` shows it is holding.
fn git_shim(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("git"))
        .find(|g| g.is_file())
        .expect("git on PATH");
    let (arm, held, go) = (dir.join("arm"), dir.join("held"), dir.join("go"));
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *\" commit \"*)\n  if [ -e '{arm}' ] && [ ! -e '{held}' ]; then\n    : > '{held}'\n    while [ ! -e '{go}' ]; do sleep 0.02; done\n  fi;;\nesac\nexec '{real}' \"$@\"\n",
        arm = arm.display(),
        held = held.display(),
        go = go.display(),
        real = real.display()
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shim = bin.join("git");
    std::fs::write(&shim, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    (arm, held, go)
}

#[test]
fn ctrl_c_from_the_terminal_while_baton_commits_stops_gracefully_and_keeps_the_task_completed() {
    let p = project(TWO);
    let dir = tempfile::tempdir().unwrap();
    let (arm, held, go) = git_shim(dir.path());
    // The agent arms the shim as its last act: the next commit is baton's, of the finished task.
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"write": {{"one.txt": "1"}}, "shell": ": > '{}'"}}]}}}}"#,
        arm.display()
    ));
    let path = std::env::join_paths(
        std::iter::once(dir.path().join("bin")).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let log = dir.path().join("baton.log");
    let out = std::fs::File::create(&log).unwrap();
    // In a process group of its own, as a terminal runs a foreground job.
    let mut baton = p
        .command(&["run", "plan.yaml"])
        .env("PATH", path)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("spawn baton");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("baton's commit to be held", || held.exists());
    // Ctrl+C: SIGINT to the whole foreground process group.
    // SAFETY: kill(2) on the process group of the baton we started.
    unsafe { libc::kill(-(baton.id() as libc::pid_t), libc::SIGINT) };
    // The signal is pending in every process of the group once kill(2) returns; baton itself
    // takes it once its commit is done.
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut baton), Some(4), "{}", read_log());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None), "{}", read_log());
    // The Ctrl+C came before the commit ended: no task starts after it.
    assert_eq!(task(&p, "1.2"), (Status::Pending, 0, None), "{}", read_log());
    assert!(!read_log().contains("could not commit"), "{}", read_log());
    assert!(
        p.repo.log_subjects().iter().any(|s| s.starts_with("baton: 1.1 completed")),
        "{:?}\n{}",
        p.repo.log_subjects(),
        read_log()
    );
}

#[test]
fn a_prompt_of_300_kb_reaches_the_agent_on_stdin_and_is_kept() {
    let long = "x".repeat(300 * 1024);
    let p = project(&TWO.replace("'Write one.txt. Files: one.txt'", &format!("'Write one.txt. {long}'")));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None));
    let calls = p.invocations();
    let first = calls.iter().find(|c| c["task_id"] == "1.1").expect("1.1 ran");
    let prompt = first["prompt"].as_str().unwrap_or_default();
    assert!(prompt.contains(&long), "the agent did not get the whole description");
    let argv = first["argv"].to_string();
    assert!(argv.len() < 4096 && !argv.contains("Task ID"), "the prompt is on the command line: {argv:.200}");
    let kept = std::fs::read_to_string(p.path().join(".baton/logs/plan/1.1/attempt-1.prompt")).expect("the prompt is kept");
    assert_eq!(kept, prompt);
}

/// The CLI's own announced retry pause (`system/api_retry` with `retry_delay_ms`) is silence
/// the CLI explained: it is waiting, not hung, and the idle timeout makes room for it.
#[test]
fn an_announced_api_retry_pause_is_not_idle_time() {
    let p = project(&TWO.replace("max_attempts_default: 3", "max_attempts_default: 1\n  idle_timeout_seconds: 2"));
    p.scenario(r#"{"tasks": {"1.1": [{"api_retry_ms": 4000}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None), "{}", r.all());
}

/// The real CLI, sent SIGTERM during a tool call, ends the tool and carries on: it may finish the
/// task, write a `completed` report and exit 0 within the grace period. That work is done; it is
/// not recorded as a timed-out attempt.
#[test]
fn an_agent_that_finishes_its_task_after_the_timeouts_sigterm_is_completed() {
    let p = project(&TWO.replace("max_attempts_default: 3", "max_attempts_default: 2\n  timeout_seconds: 1"));
    p.scenario(r#"{"tasks": {"1.1": [{"finish_on_sigterm": true, "write": {"one.txt": "1"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task(&p, "1.1"), (Status::Completed, 1, None), "{}", r.all());
    assert_eq!(p.read("one.txt"), "1");
    assert_eq!(p.invocations().len(), 1, "the finished task was run again");
}

/// The guard itself is killed (`pkill -9 baton` takes the guards too; an agent may kill its
/// parent): the agent dies with it, and what the agent started — orphaned — comes back to
/// baton, a child subreaper, which ends it. The task is retried.
#[test]
fn when_the_guard_is_killed_baton_ends_what_the_agent_started() {
    let p = project(TWO);
    p.scenario(r#"{"tasks": {"1.1": [{"daemons": true, "hang": true}, {}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to hang", || p.pid_file("1.1-1.agent.pid").is_some());
    let all = pids(&p, "1.1-1", &["agent", "grandchild", "setsid", "setsid-child", "nohup"]);
    let _reaper = Reaper::pids(&all);
    let guard = parent_of(all[0].1);
    // SAFETY: kill(2) on the guard of the baton this test started.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    wait_all_gone("after kill -9 of the guard", &all);
    assert_eq!(wait_exit(&mut child), Some(0), "{}", p.log());
    assert_eq!(task(&p, "1.1").0, Status::Completed, "{}", p.log());
}

/// A shell command that starts a child in its group and one in a session of its own, writes
/// their pids and its own to `dir` (its own last, each file whole), then waits.
fn hanging_command(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "sleep 300 & echo $! > {d}/child.tmp; mv {d}/child.tmp {d}/child.pid; \
         setsid sleep 300 & echo $! > {d}/setsid.tmp; mv {d}/setsid.tmp {d}/setsid.pid; \
         echo $$ > {d}/shell.tmp; mv {d}/shell.tmp {d}/shell.pid; wait"
    )
}

fn pid_in(dir: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(format!("{name}.pid"))).ok()?.trim().parse().ok()
}

/// Starts baton on `p`, waits for the hanging command to have written its pids, kills baton
/// with SIGKILL, and checks the command and both its children are gone.
fn kill_9_during(p: &Project, dir: &Path, what: &str) {
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for(what, || pid_in(dir, "shell").is_some());
    let all: Vec<(String, u32)> = ["shell", "child", "setsid"]
        .iter()
        .map(|name| (name.to_string(), pid_in(dir, name).unwrap_or_else(|| panic!("no {name}.pid"))))
        .collect();
    let _reaper = Reaper::pids(&all);
    for (kind, pid) in &all {
        assert!(process_alive(*pid), "the {kind} process should be running");
    }
    crate::support::signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_all_gone(&format!("after kill -9 of baton during {what}"), &all);
}

#[test]
fn kill_9_of_baton_ends_a_running_hook_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(TWO);
    // The hooks belong to [run]: FAST_CONFIG ends inside [run].
    p.write("baton.toml", &format!("{}before_command = {:?}\n", baton_testkit::FAST_CONFIG, hanging_command(dir.path())));
    p.repo.commit_all("a hook that hangs");
    kill_9_during(&p, dir.path(), "the before_command hook");
}

#[test]
fn kill_9_of_baton_ends_running_smoke_tests_and_what_they_started() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(TWO);
    p.write("baton.toml", &format!("{}\n[smoke]\ncommand = {:?}\n", baton_testkit::FAST_CONFIG, hanging_command(dir.path())));
    p.repo.commit_all("smoke tests that hang");
    kill_9_during(&p, dir.path(), "the smoke tests");
}

/// Starts baton on `p` with a hook (or smoke tests) that hangs, its timeout far away, waits for
/// it to have written its pids, sends a stop (SIGTERM, or Ctrl+C twice) and checks that baton
/// ends at once with exit 4, saying `said` on the terminal and in the run log, and takes the
/// command and both its children with it: a stop must not wait out a command's timeout.
fn stop_during_hook(p: &Project, dir: &Path, hook: &str, ctrl_c_twice: bool) -> String {
    // The hooks belong to [run]: FAST_CONFIG ends inside [run].
    let config = format!("{hook} = {:?}\nhook_timeout_seconds = 3600\n", hanging_command(dir));
    stop_during(p, dir, &config, ctrl_c_twice, &format!("{hook} was ended by the stop"))
}

fn stop_during(p: &Project, dir: &Path, config: &str, ctrl_c_twice: bool, said: &str) -> String {
    p.write("baton.toml", &format!("{}{config}", baton_testkit::FAST_CONFIG));
    p.repo.commit_all("a command that hangs");
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the hook to start", || pid_in(dir, "shell").is_some());
    let all: Vec<(String, u32)> = ["shell", "child", "setsid"]
        .iter()
        .map(|name| (name.to_string(), pid_in(dir, name).unwrap_or_else(|| panic!("no {name}.pid"))))
        .collect();
    let _reaper = Reaper::pids(&all);
    if ctrl_c_twice {
        crate::support::signal(&child, libc::SIGINT);
        // Two signals sent at once can merge into one; the second must follow the first's effect.
        wait_for("the graceful-stop notice", || p.log().contains("stopping gracefully"));
        crate::support::signal(&child, libc::SIGINT);
    } else {
        crate::support::signal(&child, libc::SIGTERM);
    }
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    wait_all_gone(&format!("after the stop ({said})"), &all);
    assert!(p.log().contains(said), "{}", p.log());
    let run_log = p.read(".baton/logs/plan/run.log");
    assert!(run_log.contains(said), "{run_log}");
    p.log()
}

#[test]
fn sigterm_during_a_hanging_before_command_ends_it_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(TWO);
    let out = stop_during_hook(&p, dir.path(), "before_command", false);
    assert!(p.invocations().is_empty(), "a task started after the stop: {out}");
    assert!(!out.contains("timed out"), "the stop was reported as the hook's timeout: {out}");
}

#[test]
fn ctrl_c_twice_during_a_hanging_after_command_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(TWO);
    stop_during_hook(&p, dir.path(), "after_command", true);
    assert_eq!(task(&p, "1.1").0, Status::Completed);
    assert_eq!(task(&p, "1.2").0, Status::Completed);
}

/// Smoke tests the user stops are not failed smoke tests (exit 5): the run was stopped.
#[test]
fn ctrl_c_twice_during_hanging_smoke_tests_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(TWO);
    let config = format!("\n[smoke]\ncommand = {:?}\ntimeout_seconds = 3600\n", hanging_command(dir.path()));
    let out = stop_during(&p, dir.path(), &config, true, "the smoke tests were ended by the stop");
    assert!(!out.contains("smoke tests failed"), "{out}");
}

/// What a hook starts on purpose (a dev server) outlives the hook when it ends on its own,
/// guard or not.
#[test]
fn a_server_an_after_command_starts_stays_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let p = project(TWO);
    let hook = format!("sleep 300 >/dev/null 2>&1 & echo $! > {d}/server.tmp; mv {d}/server.tmp {d}/server.pid");
    p.write("baton.toml", &format!("{}after_command = {hook:?}\n", baton_testkit::FAST_CONFIG));
    p.repo.commit_all("a hook that starts a server");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let server = pid_in(dir.path(), "server").expect("the hook wrote the server's pid");
    let _reaper = Reaper { pids: vec![server], children: Vec::new() };
    let alive = process_alive(server);
    // SAFETY: kill(2) on the server this test's hook started.
    unsafe { libc::kill(server as libc::pid_t, libc::SIGKILL) };
    assert!(alive, "the hook's server was ended with the hook");
}
