//! Terminal manners: colour only where it belongs (`NO_COLOR`, `--color`, a terminal), shell
//! completions, a `--help` with an example and its exit codes for every command, every
//! `baton.toml` problem at once, and one message per Ctrl+C however many signals arrive.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use baton::plan::Status;

use crate::support::{fixture, project, wait_exit, wait_for, Project};

const ESC: char = '\u{1b}';

/// Two tasks, the second failing: a run shows both marks, a failure and a summary.
const TWO: &str = "meta:
  name: Two
  max_attempts_default: 1
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: One
    status: pending
  - id: '1.2'
    name: Two
    status: pending
";

const FAIL_SECOND: &str = r#"{"tasks": {"1.2": [{"status": "failed", "message": "red tests"}]}}"#;

/// A `baton.toml` with three problems: an unknown key, a wrong type, a bad value.
const BAD_CONFIG: &str = "[run]\ntimout_seconds = 5\nmax_attempts = \"three\"\njobs = 0\n";

/// Every subcommand that `baton --help` lists (but `help`).
fn subcommands(p: &Project) -> Vec<String> {
    let help = p.baton(&["--help"]).stdout();
    let commands = help.split("Commands:").nth(1).expect("a Commands: section");
    let names: Vec<String> = commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description's continuation lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 9, "{help}");
    names
}

/// What several commands print, with the environment `env` set (`None` removes a variable).
fn outputs(p: &Project, extra: &[&str], env: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    // Outside the repository, which a run wants clean.
    let bad = p.state_path("bad.yaml");
    std::fs::write(&bad, "meta:\n  name: Bad\nsections:\n- id: s\n  tasks:\n  - {id: '1', name: One, status: maybe}\n").expect("write bad.yaml");
    let bad = bad.to_str().expect("a UTF-8 path");
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "plan.yaml"],
        vec!["check", bad],
        vec!["status", "plan.yaml"],
        vec!["logs", "plan.yaml", "9.9"],
        vec!["run", "plan.yaml", "--dry-run"],
        vec!["run", "plan.yaml"],
        vec!["run", "--jobs"],
    ];
    for r in &mut runs {
        r.splice(0..0, extra.iter().copied());
    }
    runs.iter()
        .map(|args| {
            let mut cmd = p.command(args);
            for (k, v) in env {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            let out = baton_testkit::run_with_deadline(&mut cmd, Duration::from_secs(120)).expect("run baton");
            assert!(!out.timed_out, "{args:?}");
            (args.join(" "), format!("{}{}", out.stdout, out.stderr))
        })
        .collect()
}

#[test]
fn no_color_means_no_escape_sequence_from_any_command() {
    let p = project(TWO);
    p.scenario(FAIL_SECOND);
    let all = outputs(&p, &[], &[("NO_COLOR", Some("1")), ("TERM", Some("xterm"))]);
    for (args, out) in &all {
        assert!(!out.contains(ESC), "baton {args}: {}", out.escape_debug());
    }
    // The run did run (and failed a task): its marks and error are in the output, plainly.
    let run = &all.iter().find(|(a, _)| a == "run plan.yaml").expect("the run").1;
    assert!(run.contains("✓ 1.1 One") && run.contains("✗ 1.2 Two"), "{run}");
    // `--color never` without NO_COLOR: the same.
    let p = project(TWO);
    p.scenario(FAIL_SECOND);
    for (args, out) in outputs(&p, &["--color", "never"], &[("NO_COLOR", None)]) {
        assert!(!out.contains(ESC), "baton --color never {args}: {}", out.escape_debug());
    }
}

#[test]
fn color_always_colours_even_into_a_pipe() {
    let p = project(TWO);
    p.scenario(FAIL_SECOND);
    // The flag wins over NO_COLOR (which the test environment sets).
    let r = p.baton(&["--color", "always", "run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("\u{1b}[32m✓\u{1b}[0m 1.1 One"), "a completed task's mark is green: {}", out.escape_debug());
    assert!(out.contains("\u{1b}[31m✗\u{1b}[0m 1.2 Two"), "a failed task's mark is red: {}", out.escape_debug());
    p.write("baton.toml", BAD_CONFIG);
    let r = p.baton(&["check", "plan.yaml", "--color=always"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("\u{1b}[31merror:\u{1b}[0m"), "{}", r.stderr().escape_debug());
    let help = p.baton(&["--color", "always", "run", "--help"]);
    assert!(help.stdout().contains(ESC), "clap's help is coloured too: {}", help.stdout());
    // auto (the default) into a pipe: no colour, even without NO_COLOR.
    let out = baton_testkit::run_with_deadline(p.command(&["check", "plan.yaml"]).env_remove("NO_COLOR"), Duration::from_secs(60)).expect("run baton");
    assert!(out.stderr.contains("error:") && !out.stderr.contains(ESC), "{}", out.stderr.escape_debug());
}

/// `baton ARGS` under a pseudo-terminal (util-linux `script`), NO_COLOR as given; all it wrote.
fn on_a_terminal(p: &Project, args: &str, no_color: Option<&str>) -> String {
    let mut cmd = crate::support::on_a_pty(p, args, 100);
    cmd.stdin(Stdio::null());
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = baton_testkit::run_with_deadline(&mut cmd, Duration::from_secs(120)).expect("run util-linux `script` (needed for a pseudo-terminal)");
    assert!(!out.timed_out, "{args}");
    out.stdout
}

/// An SGR (colour) sequence: ESC [ digits and semicolons, then `m`.
fn has_sgr(out: &str) -> bool {
    out.match_indices(ESC).any(|(i, _)| {
        let rest = &out[i + 1..];
        rest.strip_prefix('[').is_some_and(|r| {
            let params = r.chars().take_while(|c| c.is_ascii_digit() || *c == ';').count();
            r[params..].starts_with('m')
        })
    })
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let p = project(TWO);
    p.write("baton.toml", BAD_CONFIG);
    let out = on_a_terminal(&p, "check plan.yaml", None);
    assert!(out.contains("error:") && has_sgr(&out), "{}", out.escape_debug());
    let out = on_a_terminal(&p, "--help", None);
    assert!(has_sgr(&out), "{}", out.escape_debug());
    for empty_counts_as_unset in [false, true] {
        let no_color = if empty_counts_as_unset { "" } else { "1" };
        let out = on_a_terminal(&p, "check plan.yaml", Some(no_color));
        assert_eq!(has_sgr(&out), empty_counts_as_unset, "NO_COLOR={no_color:?}: {}", out.escape_debug());
    }
    for args in ["check plan.yaml", "--help", "status plan.yaml", "run --help"] {
        let out = on_a_terminal(&p, args, Some("1"));
        assert!(!out.contains(ESC), "NO_COLOR=1 baton {args}: {}", out.escape_debug());
    }
    // A run on a terminal draws its live lines with cursor moves, but no colour.
    p.write("baton.toml", baton_testkit::FAST_CONFIG);
    p.repo.commit_all("config");
    let out = on_a_terminal(&p, "run plan.yaml", Some("1"));
    assert!(out.contains("✓ 1.1 One") && !has_sgr(&out), "{}", out.escape_debug());
    let q = project(TWO);
    let out = on_a_terminal(&q, "run plan.yaml", None);
    assert!(out.contains("✓") && has_sgr(&out), "{}", out.escape_debug());
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let p = Project::new();
    let names = subcommands(&p);
    let bash = p.baton(&["completions", "bash"]);
    assert_eq!(bash.code(), 0, "{}", bash.stderr());
    for name in &names {
        assert!(bash.stdout().contains(&format!("baton,{name})")), "bash completes `{name}`");
    }
    assert!(bash.stdout().contains("--color"), "and the global flag");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = p.baton(&["completions", shell]);
        assert_eq!(r.code(), 0, "{shell}: {}", r.stderr());
        assert!(r.stdout().contains("status") && r.stdout().contains("--parallel"), "{shell}: {}", r.stdout());
    }
    let r = p.baton(&["completions", "tcsh"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("possible values"), "{}", r.stderr());
}

#[test]
fn every_subcommand_help_has_its_flags_an_example_and_its_exit_codes() {
    let p = Project::new();
    for name in subcommands(&p) {
        let r = p.baton(&[&name, "--help"]);
        assert_eq!(r.code(), 0, "{name}");
        let help = r.stdout();
        assert!(help.contains("Usage: baton"), "{name}: {help}");
        assert!(help.contains("Example:\n  baton "), "{name} --help has no example: {help}");
        assert!(help.contains("Exit codes:\n  0   "), "{name} --help has no exit codes: {help}");
        assert!(help.contains("--color <WHEN>"), "{name}: {help}");
    }
    let run = p.baton(&["run", "--help"]).stdout();
    for flag in ["--dry-run", "--resume-from", "--single-task", "--verbose", "--parallel", "--jobs", "--skip-smoke", "--allow-dirty"] {
        assert!(run.contains(flag), "{flag}: {run}");
    }
    let codes = |help: &str| -> Vec<String> {
        let part = help.split("Exit codes:").nth(1).unwrap_or_default();
        part.lines().filter_map(|l| l.strip_prefix("  ")).filter_map(|l| l.split_whitespace().next()).filter(|c| c.parse::<u8>().is_ok()).map(str::to_owned).collect()
    };
    assert_eq!(codes(&run), ["0", "1", "2", "3", "4", "5", "6"], "{run}");
    assert_eq!(codes(&p.baton(&["check", "--help"]).stdout()), ["0", "2"]);
    assert_eq!(codes(&p.baton(&["claim", "--help"]).stdout()), ["0", "1", "2"]);
    // `-h` says the same as `--help` at its end.
    assert!(p.baton(&["status", "-h"]).stdout().contains("Exit codes:"));
}

#[test]
fn every_config_problem_is_told_at_once_and_nothing_runs() {
    let p = Project::new();
    p.write("plan.yaml", &fixture("flow.yaml"));
    p.write("baton.toml", &format!("{BAD_CONFIG}[agnet]\nmodel = \"x\"\n"));
    p.repo.commit_all("plan");
    let plan_before = p.read("plan.yaml");
    for cmd in ["check", "status", "run"] {
        let r = p.baton(&[cmd, "plan.yaml"]);
        assert_eq!(r.code(), 2, "{cmd}: {}", r.all());
        let err = r.stderr();
        for want in [
            "baton.toml:2:1: unknown key `timout_seconds` in [run]\n  help: did you mean `timeout_seconds`?\n",
            "baton.toml:3:16: invalid type: string \"three\", expected a whole number\n",
            "baton.toml:4:1: `jobs` must be at least 1\n  help: e.g. `jobs = 3` (the default), or remove it\n",
            "baton.toml:5:2: unknown section `[agnet]`\n  help: did you mean `[agent]`?\n",
            "baton.toml is not valid (4 problems); nothing was run or changed",
        ] {
            assert!(err.contains(want), "{cmd}: {want:?} missing from:\n{err}");
        }
        assert_eq!(err.matches("help:").count(), 4, "one help per problem: {err}");
    }
    assert!(p.invocations().is_empty(), "an agent ran");
    assert_eq!(p.read("plan.yaml"), plan_before);
    let r = p.baton(&["check", "plan.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).expect("JSON");
    let lines: Vec<u64> = v["problems"].as_array().expect("problems").iter().filter_map(|p| p["line"].as_u64()).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{v}");
    assert!(v["problems"].as_array().unwrap().iter().all(|p| p["help"].as_str().is_some_and(|h| !h.is_empty()) && p["column"].as_u64() > Some(0)), "{v}");
}

/// Two tasks of one parallel group, both agents running and waiting for `go`; a third after
/// them. baton is started in a process group of its own, as a terminal runs a foreground job,
/// so that a "Ctrl+C" is SIGINT to the whole group.
struct CtrlC {
    p: Project,
    child: std::process::Child,
    log: std::path::PathBuf,
    go: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl CtrlC {
    fn start() -> CtrlC {
        let plan = "meta:\n  name: Stop\nsections:\n- id: s\n  name: S\n  tasks:\n  - {id: a, name: A, parallel_group: g, description: 'Edit a.txt'}\n  - {id: b, name: B, parallel_group: g, description: 'Edit b.txt'}\n  - {id: c, name: C, depends_on: [a, b]}\n";
        let p = project(plan);
        let go = p.state_path("go");
        let marks: Vec<String> = ["a", "b"].iter().map(|t| p.state_path(&format!("{t}.running")).display().to_string()).collect();
        let step = |t: &str| format!(r#"[{{"mark": [{}], "wait_for": [{}], "write": {{"{t}.txt": "{t}"}}}}]"#, serde_json::json!(p.state_path(&format!("{t}.running"))), serde_json::json!(go));
        p.scenario(&format!(r#"{{"tasks": {{"a": {}, "b": {}}}}}"#, step("a"), step("b")));
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("baton.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = p
            .command(&["run", "plan.yaml", "--parallel", "--jobs", "2"])
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spawn baton");
        wait_for("both agents to run", || marks.iter().all(|m| std::path::Path::new(m).exists()));
        CtrlC { p, child, log, go, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl+C: SIGINT to baton's whole process group.
    fn ctrl_c(&self) {
        // SAFETY: kill(2) on the process group of the baton this test started.
        let sent = unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGINT) };
        assert_eq!(sent, 0, "kill(2) failed");
    }

    fn status(&self, id: &str) -> Status {
        self.p.plan().task(id).unwrap_or_else(|| panic!("no task {id}")).status
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.go, "");
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const GRACEFUL: &str = "stopping gracefully: no new task starts; running tasks finish (Ctrl+C again to end them now)";
const NOW: &str = "stopping now: ending running agents; their tasks go back to pending";

#[test]
fn one_ctrl_c_says_once_that_running_tasks_finish() {
    let mut run = CtrlC::start();
    run.ctrl_c();
    wait_for("the graceful-stop notice", || run.log().contains("stopping gracefully"));
    std::fs::write(&run.go, "").expect("let the agents finish");
    assert_eq!(wait_exit(&mut run.child), Some(4), "{}", run.log());
    let log = run.log();
    assert_eq!(log.matches(GRACEFUL).count(), 1, "{log}");
    assert!(!log.contains("stop requested") && !log.contains("stopping now"), "said twice in other words: {log}");
    assert_eq!((run.status("a"), run.status("b"), run.status("c")), (Status::Completed, Status::Completed, Status::Pending), "{log}");
}

#[test]
fn more_ctrl_c_say_once_that_baton_stops_now_and_then_nothing() {
    let mut run = CtrlC::start();
    run.ctrl_c();
    // Two signals sent at once can merge into one: the next follows the first's effect.
    wait_for("the graceful-stop notice", || run.log().contains("stopping gracefully"));
    for _ in 0..3 {
        run.ctrl_c();
    }
    assert_eq!(wait_exit(&mut run.child), Some(4), "{}", run.log());
    let log = run.log();
    assert_eq!(log.matches(GRACEFUL).count(), 1, "{log}");
    assert_eq!(log.matches(NOW).count(), 1, "{log}");
    assert!(!log.contains("stop requested"), "{log}");
    assert_eq!((run.status("a"), run.status("b")), (Status::Pending, Status::Pending), "{log}");
}

#[test]
fn a_watching_pipeline_says_once_that_a_ctrl_c_stops_it() {
    let p = Project::new();
    p.write("baton.toml", baton_testkit::FAST_CONFIG);
    p.repo.commit_all("config");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("pipeline.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut child = p
        .command(&["pipeline"])
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("spawn baton pipeline");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the pipeline to watch", || read().contains("watching 2 folders"));
    // SAFETY: kill(2) on the process group of the baton this test started.
    assert_eq!(unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) }, 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", read());
    let said = read();
    assert_eq!(said.matches(GRACEFUL).count(), 1, "{said}");
    assert!(!said.contains("stop requested"), "said twice in other words: {said}");
}
