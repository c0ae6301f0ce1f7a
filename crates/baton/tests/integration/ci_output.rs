//! Output for CI and scripts: `--message-format json` (one event per line on stdout),
//! `--junit PATH` (validated against the JUnit schema CI systems read), and the end-of-run
//! summary (the slowest tasks, the failed ones with their errors).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::project;

/// Three sections' worth: 1.1 fails for good (its dependent 1.2 is then blocked), 2.1 and 2.2
/// complete, 2.2 after some agent activity.
const PLAN: &str = "meta:
  name: CI plan
  max_attempts_default: 2
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
    depends_on: ['1.1']
- id: s2
  name: Second
  tasks:
  - id: '2.1'
    name: Three
    status: pending
  - id: '2.2'
    name: Four & <more>
    status: pending
";

const SCENARIO: &str = r#"{"tasks": {"1.1": [{"status": "failed", "message": "red <tests> & \"quotes\""}], "2.2": [{"events": 4}]}}"#;

/// The JSON lines of stdout, each parsed; panics on a line that is not a JSON object.
fn events(stdout: &str) -> Vec<Value> {
    assert!(!stdout.is_empty(), "no output on stdout");
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{stdout}"));
            assert!(v.is_object(), "{l}");
            assert_eq!(v["v"], 1, "{l}");
            assert!(v["type"].is_string(), "{l}");
            assert!(v["time"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{l}");
            v
        })
        .collect()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

/// Every task that ran has its attempts' starts and ends, paired, and one `task_finished`.
fn assert_every_start_has_its_end(events: &[Value], tasks: &[&str]) {
    for task in tasks {
        let starts = events.iter().filter(|e| e["type"] == "attempt_started" && e["task"] == *task).count();
        let ends = events.iter().filter(|e| e["type"] == "attempt_ended" && e["task"] == *task).count();
        let finished = events.iter().filter(|e| e["type"] == "task_finished" && e["task"] == *task).count();
        assert!(starts > 0, "{task} never started");
        assert_eq!(starts, ends, "{task}: {starts} starts, {ends} ends");
        assert_eq!(finished, 1, "{task}");
        let first_start = events.iter().position(|e| e["type"] == "attempt_started" && e["task"] == *task);
        let finish = events.iter().position(|e| e["type"] == "task_finished" && e["task"] == *task);
        assert!(first_start < finish, "{task} finished before it started");
    }
}

#[test]
fn json_events_are_one_object_per_line_with_every_tasks_start_and_end() {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let r = p.baton(&["run", "plan.yaml", "--message-format", "json"]);
    assert_eq!(r.code(), 3, "blocked: {}", r.all());
    let ev = events(&r.stdout());
    assert_eq!(ev[0]["type"], "banner", "{:#?}", ev[0]);
    assert_eq!(ev[0]["plan"], "CI plan");
    assert_every_start_has_its_end(&ev, &["1.1", "2.1", "2.2"]);
    // Without --verbose, the agents' own events stay out.
    assert!(of_type(&ev, "agent").is_empty());

    let ended: Vec<&Value> = of_type(&ev, "attempt_ended").into_iter().filter(|e| e["task"] == "1.1").collect();
    assert_eq!(ended.len(), 2, "two attempts");
    assert_eq!(ended[0]["outcome"]["kind"], "failed");
    assert_eq!(ended[0]["outcome"]["message"], "red <tests> & \"quotes\"");
    assert!(ended[0]["duration_secs"].as_f64().is_some_and(|d| d > 0.0));
    let failed = of_type(&ev, "task_finished").into_iter().find(|e| e["task"] == "1.1").cloned().unwrap_or_default();
    assert_eq!((&failed["status"], &failed["attempts"]), (&"failed".into(), &2.into()), "{failed}");
    let blocked = of_type(&ev, "note").into_iter().find(|e| e["note"] == "blocked").cloned().unwrap_or_default();
    assert_eq!(blocked["tasks"][0]["task"], "1.2", "{blocked}");

    // Each attempt's record, with its cost and tokens; the exit code last.
    let recorded = of_type(&ev, "attempt_recorded");
    assert_eq!(recorded.len(), 4, "1.1 twice, 2.1, 2.2: {recorded:#?}");
    assert!(recorded.iter().all(|r| r["record"]["cost_usd"].as_f64().is_some() && r["record"]["session"].as_u64().is_some()), "{recorded:#?}");
    assert_eq!((&ev.last().unwrap()["type"], &ev.last().unwrap()["code"]), (&"exit".into(), &r.code().into()));
    let started = of_type(&ev, "attempt_started");
    assert!(started.iter().all(|s| s["session"].as_u64().is_some() && s["transcript"].as_str().is_some_and(|t| t.ends_with(".jsonl"))), "{started:#?}");

    let summary = of_type(&ev, "summary");
    assert_eq!(summary.len(), 1);
    let s = summary[0];
    assert_eq!(s["how"]["kind"], "blocked");
    assert_eq!((&s["counts"]["completed"], &s["counts"]["failed"], &s["counts"]["pending"]), (&2.into(), &1.into(), &1.into()));
    let tasks: HashMap<&str, &Value> = s["tasks"].as_array().unwrap().iter().map(|t| (t["id"].as_str().unwrap(), t)).collect();
    assert_eq!(tasks.len(), 4);
    assert_eq!(tasks["1.1"]["last_error"], "red <tests> & \"quotes\"");
    assert_eq!(tasks["1.1"]["sessions"], 2);
    assert_eq!(tasks["1.2"]["sessions"], 0);
    assert_eq!(tasks["1.2"]["blocked"], "its dependency '1.1' failed");
    assert_eq!(tasks["2.2"]["section"], "s2");
    assert!(tasks["2.2"]["agent_secs"].as_f64().is_some_and(|d| d > 0.0));

    // The view for people is on stderr, whole.
    let err = r.stderr();
    assert!(err.contains("baton · CI plan"), "{err}");
    assert!(err.contains("✗ 1.1 One — failed after 2 attempts"), "{err}");
    assert!(err.contains("blocked in "), "{err}");
}

#[test]
fn json_events_stay_pure_with_verbose_and_parallel() {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let r = p.baton(&["run", "plan.yaml", "--message-format", "json", "--verbose"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let ev = events(&r.stdout());
    assert_every_start_has_its_end(&ev, &["1.1", "2.1", "2.2"]);
    let agent = of_type(&ev, "agent");
    assert!(agent.iter().any(|e| e["task"] == "2.2" && e["event"] == "tool_use"), "{agent:#?}");
    assert!(r.stderr().contains("[EXEC] 2.2"), "the verbose lines go to stderr: {}", r.stderr());

    let group = "meta:\n  name: Parallel\n  max_attempts_default: 1\nsections:\n- id: s1\n  tasks:\n".to_string()
        + &["a", "b", "c"].iter().map(|id| format!("  - id: {id}\n    name: Task {id}\n    status: pending\n    parallel_group: g\n")).collect::<String>();
    let p = project(&group);
    p.scenario(r#"{"default": [{"events": 3}], "tasks": {"b": [{"status": "failed", "message": "no"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3", "--message-format", "json", "-v"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let ev = events(&r.stdout());
    assert_every_start_has_its_end(&ev, &["a", "b", "c"]);
    assert_eq!(ev[0]["parallel"], 3);
    assert!(of_type(&ev, "note").iter().any(|e| e["note"] == "worktree_ready"));
    assert_eq!(of_type(&ev, "summary")[0]["how"]["kind"], "finished_with_failures");
}

#[test]
fn an_error_before_the_run_is_a_json_line_and_a_junit_error() {
    let p = project(PLAN);
    p.write("broken.yaml", "meta:\n  name: x\nsections: 3\n");
    let junit = p.path().join("reports/junit.xml");
    let r = p.baton(&["run", "broken.yaml", "--message-format", "json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.code(), 2, "{}", r.all());
    let ev = events(&r.stdout());
    assert_eq!(ev.len(), 2, "the error, then the exit code: {ev:#?}");
    assert_eq!(ev[0]["type"], "error");
    assert_eq!((&ev[1]["type"], &ev[1]["code"]), (&serde_json::json!("exit"), &serde_json::json!(2)));
    assert!(ev[0]["error"].as_str().unwrap().contains("broken.yaml:3:11"), "{:#?}", ev[0]);
    assert!(r.stderr().contains("broken.yaml:3:11"), "{}", r.stderr());
    let xml = std::fs::read_to_string(&junit).expect("the report is written");
    assert_valid_junit(&junit);
    assert!(xml.contains(r#"errors="1""#) && xml.contains("<error message=\"error: broken.yaml:3:11"), "{xml}");
}

#[test]
fn junit_never_overwrites_the_plan_or_another_file_that_is_not_a_report() {
    let p = project(PLAN);
    p.write("notes.md", "my notes\n");
    p.repo.commit_all("notes");
    for (target, kept) in [("plan.yaml", PLAN), ("baton.toml", "")] {
        let before = std::fs::read_to_string(p.path().join(target)).unwrap();
        let r = p.baton(&["run", "plan.yaml", "--junit", target]);
        assert_eq!(r.code(), 2, "{}", r.all());
        assert!(r.stderr().contains("--junit") && r.stderr().contains(target), "{}", r.stderr());
        let after = std::fs::read_to_string(p.path().join(target)).unwrap();
        assert_eq!(after, before, "--junit {target} must leave it as it was");
        if !kept.is_empty() {
            assert_eq!(after, kept);
        }
    }
    let r = p.baton(&["run", "plan.yaml", "--junit", "notes.md"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert_eq!(std::fs::read_to_string(p.path().join("notes.md")).unwrap(), "my notes\n");
    // A report from an earlier run is replaced.
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    std::fs::write(&junit, "<?xml version=\"1.0\"?>\n<testsuites/>\n").unwrap();
    let r = p.baton(&["run", "plan.yaml", "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_valid_junit(&junit);
}

#[test]
fn the_junit_report_validates_and_carries_each_tasks_outcome() {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let r = p.baton(&["run", "plan.yaml", "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert_valid_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testsuites name="CI plan" tests="4" failures="1" errors="0""#), "{xml}");
    assert!(xml.contains(r#"<testsuite name="s1 First" tests="2" failures="1" errors="0" skipped="1""#), "{xml}");
    assert!(xml.contains(r#"<testcase name="1.1 One" classname="s1""#), "{xml}");
    assert!(
        xml.contains(r#"<failure message="red &lt;tests&gt; &amp; &quot;quotes&quot;" type="failed">failed after 2 attempts"#),
        "the failure carries last_error: {xml}"
    );
    assert!(xml.contains(r#"<skipped message="blocked: its dependency &apos;1.1&apos; failed"/>"#), "{xml}");
    assert!(xml.contains(r#"<testcase name="2.2 Four &amp; &lt;more&gt;" classname="s2""#), "{xml}");
    // The time is the agent's time on the task: a task that never ran has none.
    assert!(xml.contains(r#"<testcase name="1.2 Two" classname="s1" time="0.000">"#), "{xml}");
    assert!(!xml.contains(r#"<testcase name="2.2 Four &amp; &lt;more&gt;" classname="s2" time="0.000""#), "{xml}");

    // A run that ends early writes its report too: a task that did not run is skipped.
    let p = project(PLAN);
    let r = p.baton(&["run", "plan.yaml", "--single-task", "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_valid_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<skipped message="not run (pending)"/>"#), "{xml}");
}

#[test]
fn the_summary_lists_the_slowest_tasks_and_the_failed_ones_with_their_errors() {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let out = r.stdout();
    let summary = &out[out.find("blocked in ").unwrap_or_else(|| panic!("no summary: {out}"))..];
    let failed = &summary[summary.find("\n  failed:\n").unwrap_or_else(|| panic!("no failed tasks: {summary}"))..];
    assert!(failed.contains("    ✗ 1.1 One (2 attempts): red <tests> & \"quotes\""), "{summary}");
    assert!(!failed.contains("2.1"), "{summary}");

    let slowest = &summary[summary.find("\n  slowest:\n").unwrap_or_else(|| panic!("no slowest tasks: {summary}"))..summary.find("\n  failed:").unwrap()];
    let rows: Vec<&str> = slowest.lines().skip(2).collect();
    // The three tasks that ran, slowest first.
    let listed: HashSet<&str> = rows.iter().map(|r| r.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(listed, HashSet::from(["1.1", "2.1", "2.2"]), "{slowest}");
    let secs: Vec<f64> = rows.iter().map(|r| r.split_whitespace().next().unwrap().trim_end_matches('s').parse().unwrap()).collect();
    assert!(secs.windows(2).all(|w| w[0] >= w[1]), "not slowest first: {slowest}");
    assert!(slowest.contains("1.1 One (2 sessions)"), "{slowest}");
}

/// Validates a JUnit report against Jenkins' junit-10.xsd with xmllint. Without xmllint the
/// check is skipped on a developer's machine and fails in CI (`CI` set), where .ci/run installs
/// it.
fn assert_valid_junit(report: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/junit-10.xsd");
    let out = match Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(report).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            eprintln!("xmllint is not installed (apt-get install libxml2-utils): the JUnit schema check is skipped");
            return;
        }
        Err(e) => panic!("cannot run xmllint (apt-get install libxml2-utils): {e}"),
    };
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd:\n{}\n{}",
        report.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(report).unwrap_or_default()
    );
}
