//! Following a run from beside it: `status` (its header, the run's pid), `status --watch`,
//! `logs --follow`, the saved prompt, and output into a closed pipe.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Stdio};

use crate::support::{project, signal, wait_exit, wait_for, Project};

const PLAN: &str = "meta:
  name: Watched
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: Slow one
    status: pending
  - id: '1.2'
    name: Quick one
    status: pending
";

/// Task 1.1's agent prints two events, then waits for the test's `go` file, then writes
/// `late.txt` (an event that comes while the test is watching) and completes.
const SLOW: &str = r#"{"tasks": {"1.1": {"events": 2, "interval_ms": 1, "await_file": "go", "write": {"late.txt": "late"}}}}"#;

/// Starts `baton ARGS` in the background, its stdout and stderr in `<name>.out`/`<name>.err`
/// of the fake agent's state folder.
fn spawn_to(p: &Project, name: &str, args: &[&str]) -> Child {
    let out = File::create(p.state_path(&format!("{name}.out"))).unwrap();
    let err = File::create(p.state_path(&format!("{name}.err"))).unwrap();
    p.command(args).stdout(out).stderr(err).spawn().expect("spawn baton")
}

fn read(p: &Project, name: &str) -> String {
    std::fs::read_to_string(p.state_path(name)).unwrap_or_default()
}

/// A run of PLAN whose task 1.1 is waiting, mid-attempt, for the test to say `go`.
fn run_held_in_1_1(p: &Project) -> Child {
    p.scenario(SLOW);
    let run = spawn_to(p, "run", &["run", "plan.yaml"]);
    wait_for("the agent of 1.1 to wait", || p.state_path("1.1-1.agent.pid").exists());
    run
}

/// Runs `baton ARGS` with stdout a pipe whose reader is already gone: every write meets EPIPE.
fn into_closed_pipe(p: &Project, args: &[&str]) -> (Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors, which are then owned here and nowhere else.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let err = p.state_path("closed.err");
    let mut child = p.command(args).stdout(Stdio::from(writer)).stderr(File::create(&err).unwrap()).spawn().unwrap();
    let code = wait_exit(&mut child);
    (code, std::fs::read_to_string(&err).unwrap())
}

#[test]
fn the_status_table_names_its_columns() {
    let p = project(PLAN);
    let r = p.baton(&["status", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let lines: Vec<String> = r.stdout().lines().map(str::to_string).collect();
    let header = lines.iter().position(|l| l.trim_start().starts_with("ID")).unwrap_or_else(|| panic!("no header:\n{}", r.stdout()));
    let row = lines.iter().position(|l| l.contains("Slow one")).unwrap();
    assert!(header < row, "{}", r.stdout());
    // The names stand over their columns.
    for (name, value) in [("TASK", "Slow one"), ("STATUS", "pending")] {
        assert_eq!(lines[header].find(name), lines[row].find(value), "{name} over {value}:\n{}", r.stdout());
    }
    assert!(lines[header].contains("TRIES") && lines[row].trim_end().ends_with("0/3"), "{}", r.stdout());
    assert!(!r.stdout().contains("run: active"), "no run, nothing said about one:\n{}", r.stdout());
}

#[test]
fn a_closed_pipe_ends_status_and_logs_quietly() {
    let p = project(PLAN);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    for args in [
        &["status", "plan.yaml"][..],
        &["status", "plan.yaml", "--json"],
        &["logs", "plan.yaml", "1.1"],
        &["logs", "plan.yaml", "1.1", "--prompt"],
        &["logs", "plan.yaml", "1.1", "--follow"],
        &["check", "plan.yaml"],
    ] {
        let (code, stderr) = into_closed_pipe(&p, args);
        assert_eq!(code, Some(0), "baton {args:?} into a closed pipe: {stderr}");
        assert_eq!(stderr, "", "baton {args:?} into a closed pipe");
    }
    // As a person types it: `head` takes one line and closes the pipe.
    let piped = std::process::Command::new("bash")
        .args(["-c", "set -o pipefail; \"$BATON\" status plan.yaml | head -1; \"$BATON\" logs plan.yaml 1.1 | true"])
        .env("BATON", crate::support::BATON)
        .current_dir(p.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stderr), "");
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "Watched — plan.yaml\n");
}

#[test]
fn the_prompt_sent_is_kept_and_shown() {
    let p = project(PLAN);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let shown = p.baton(&["logs", "plan.yaml", "1.2", "--prompt"]);
    assert_eq!(shown.code(), 0, "{}", shown.all());
    // What the agent read on its stdin, word for word.
    let sent: Vec<String> = p.invocations().iter().filter(|i| i["task_id"] == "1.2").map(|i| i["prompt"].as_str().unwrap().to_string()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(shown.stdout(), sent[0]);
    assert!(shown.stdout().contains("Task ID: 1.2"), "{}", shown.stdout());
    assert_eq!(shown.stdout(), std::fs::read_to_string(p.path().join(".baton/logs/plan/1.2/attempt-1.prompt")).unwrap());
    // The transcript says where the prompt is.
    let logs = p.baton(&["logs", "plan.yaml", "1.2"]).stdout();
    assert!(logs.contains("prompt: ") && logs.contains("attempt-1.prompt (shown by --prompt)"), "{logs}");
    let none = p.baton(&["logs", "plan.yaml", "1.2", "--prompt", "--attempt", "4"]);
    assert_eq!(none.code(), 2);
    assert!(none.stderr().contains("no attempt 4"), "{}", none.stderr());
}

#[test]
fn follow_prints_a_running_attempt_as_it_goes_until_it_ends() {
    let p = project(PLAN);
    let mut run = run_held_in_1_1(&p);
    let mut follow = spawn_to(&p, "follow", &["logs", "plan.yaml", "1.1", "--follow"]);
    // What the agent did before the follower started…
    wait_for("the events so far", || read(&p, "follow.out").contains("[Tool] Bash"));
    let before = read(&p, "follow.out");
    assert!(before.contains("outcome: running"), "{before}");
    assert!(!before.contains("late.txt"), "{before}");
    assert!(follow.try_wait().unwrap().is_none(), "the follower waits for more");
    // …then what it does after, and the end.
    std::fs::write(p.state_path("go"), "").unwrap();
    assert_eq!(wait_exit(&mut follow), Some(0), "{}", read(&p, "follow.err"));
    let out = read(&p, "follow.out");
    let late = out.find("[Tool] Write:").unwrap_or_else(|| panic!("no late event:\n{out}"));
    assert!(out[late..].lines().next().unwrap().ends_with("late.txt"), "{out}");
    assert!(out[late..].lines().any(|l| l.starts_with("outcome: completed")), "{out}");
    assert_eq!(out.matches("[Tool] Bash").count(), 1, "each event once:\n{out}");
    assert_eq!(read(&p, "follow.err"), "");
    assert_eq!(wait_exit(&mut run), Some(0), "{}", read(&p, "run.err"));

    // Nothing running: the latest attempt, whole, and done.
    let r = p.baton(&["logs", "plan.yaml", "1.1", "--follow"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("outcome: completed") && r.stdout().contains("late.txt"), "{}", r.stdout());
}

#[test]
fn watch_prints_a_new_table_on_each_change_with_the_run_and_its_pid() {
    let p = project(PLAN);
    let mut run = run_held_in_1_1(&p);
    let pid = format!("pid {}", run.id());
    // A plain status says a run is going on, too.
    let now = p.baton(&["status", "plan.yaml"]).stdout();
    assert!(now.contains(&format!("run: active · {pid} · running 1:")), "{now}");
    assert!(now.lines().any(|l| l.starts_with("  1.1  Slow one · attempt 1/3 · ")), "{now}");
    let json: serde_json::Value = serde_json::from_str(&p.baton(&["status", "plan.yaml", "--json"]).stdout()).unwrap();
    assert_eq!(json["run"]["pid"], run.id(), "{json:#}");
    assert_eq!((&json["run"]["running"][0]["id"], &json["run"]["running"][0]["attempt"]), (&"1.1".into(), &1.into()), "{json:#}");

    let mut watch = spawn_to(&p, "watch", &["status", "plan.yaml", "--watch"]);
    wait_for("the watched run", || read(&p, "watch.out").contains(&pid));
    let first = read(&p, "watch.out");
    assert!(first.lines().any(|l| l.contains("1.1") && l.contains("in_progress")), "{first}");
    assert!(first.lines().any(|l| l.starts_with("  1.1  Slow one · attempt 1/3 · since ")), "{first}");
    std::fs::write(p.state_path("go"), "").unwrap();
    assert_eq!(wait_exit(&mut run), Some(0), "{}", read(&p, "run.err"));
    wait_for("the run's end to show", || read(&p, "watch.out").contains("no run is active on this plan"));
    let out = read(&p, "watch.out");
    assert!(!out.contains('\x1b'), "no escape sequences into a file:\n{out}");
    let tables: Vec<&str> = out.split("Watched — plan.yaml\n").skip(1).collect();
    assert!(tables.len() >= 2, "{out}");
    let last = tables.last().unwrap();
    assert!(last.lines().any(|l| l.contains("1.1") && l.contains("completed")), "{out}");
    assert!(last.contains("2 of 2 completed"), "{out}");
    // Each table is new: none repeats the one before.
    for pair in tables.windows(2) {
        assert_ne!(pair[0], pair[1], "{out}");
    }
    assert!(watch.try_wait().unwrap().is_none(), "--watch keeps watching after the run");
    signal(&watch, libc::SIGINT);
    assert_eq!(wait_exit(&mut watch), Some(0), "Ctrl+C ends it with 0");
    assert_eq!(read(&p, "watch.err"), "");
    let json: serde_json::Value = serde_json::from_str(&p.baton(&["status", "plan.yaml", "--json"]).stdout()).unwrap();
    assert_eq!(json["run"], serde_json::Value::Null, "no run now: {json:#}");
}

#[test]
fn watch_on_a_terminal_redraws_in_place_and_ends_on_ctrl_c() {
    let p = project(PLAN);
    let mut run = run_held_in_1_1(&p);
    // Under a pseudo-terminal whose input we type into: Ctrl+C is the terminal's SIGINT.
    let mut pty = crate::support::Pty::start(&p, "status plan.yaml --watch", 100);
    let text = |pty: &crate::support::Pty| pty.text();
    let pid = format!("run: active · pid {} · running 1:", run.id());
    wait_for("the run in the view", || text(&pty).contains(&pid));
    std::fs::write(p.state_path("go"), "").unwrap();
    assert_eq!(wait_exit(&mut run), Some(0), "{}", read(&p, "run.err"));
    wait_for("the run's end in the view", || text(&pty).contains("no run is active on this plan"));
    pty.type_in(b"\x03");
    let code = wait_exit(&mut pty.child);
    let out = pty.finish();
    assert_eq!(code, Some(0), "Ctrl+C ends the watch with 0: {}", out.escape_debug());
    // Each frame is drawn from the top of the screen over the one before: the last one shows the
    // end of the run, once.
    let frames: Vec<&str> = out.split("\x1b[H").skip(1).collect();
    assert!(frames.len() >= 2, "{}", out.escape_debug());
    let last = frames.last().unwrap();
    assert_eq!(last.matches("Watched — plan.yaml").count(), 1, "{}", last.escape_debug());
    assert!(last.contains("2 of 2 completed") && last.contains("no run is active") && last.contains("Ctrl+C to quit"), "{}", last.escape_debug());
    assert!(!out.contains("panicked"), "{}", out.escape_debug());
}

#[test]
fn watch_ends_quietly_when_its_reader_goes_away_with_nothing_new_to_print() {
    use std::io::BufRead as _;
    let p = project(PLAN);
    let err = p.state_path("watch-head.err");
    // `baton status PLAN --watch | head -1`: head reads a line and leaves; nothing changes after.
    let mut watch = p.command(&["status", "plan.yaml", "--watch"]).stdout(Stdio::piped()).stderr(File::create(&err).unwrap()).spawn().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(watch.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("Watched"), "{first}");
    // The reader is dropped here: the pipe is closed, and the plan never changes again.
    let code = wait_exit(&mut watch);
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&err).unwrap());
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "");
}

#[test]
fn follow_ends_quietly_when_its_reader_goes_away_while_the_agent_is_silent() {
    use std::io::BufRead as _;
    let p = project(PLAN);
    let mut run = run_held_in_1_1(&p);
    let err = p.state_path("follow-head.err");
    // `baton logs PLAN 1.1 --follow | head -1` while the agent waits, printing nothing.
    let mut follow = p.command(&["logs", "plan.yaml", "1.1", "--follow"]).stdout(Stdio::piped()).stderr(File::create(&err).unwrap()).spawn().unwrap();
    // Read up to the events so far, then leave: the follower has nothing more to print.
    let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains("[Tool] Bash")), "the events so far");
    drop(lines);
    let code = wait_exit(&mut follow);
    std::fs::write(p.state_path("go"), "").unwrap();
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&err).unwrap());
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "");
    assert_eq!(wait_exit(&mut run), Some(0), "{}", read(&p, "run.err"));
}
