//! `baton history` and `baton cost`: the run history store read back after real runs against
//! the fake agent.

use serde_json::Value;

use crate::support::{project, signal, wait_exit, wait_for, Project};

const PLAN: &str = "meta:
  name: History
  max_attempts_default: 3
sections:
- id: s
  tasks:
  - id: '1.1'
    name: One
    models: [sonnet, opus]
  - id: '1.2'
    name: Two
    model: haiku
    verify: test -f two.txt
  - id: '2.1'
    name: Three
";

/// Task 1.1 fails once, then every task completes; each attempt has its own cost.
const SCENARIO: &str = r#"{"tasks": {
  "1.1": [{"status": "failed", "message": "tests fail", "cost": 0.02}, {"cost": 0.03}],
  "1.2": {"cost": 0.05, "write": {"two.txt": "2"}},
  "2.1": {"cost": 0.07}
}}"#;

/// The attempts' costs, in the order they ran.
const COSTS: [f64; 4] = [0.02, 0.03, 0.05, 0.07];

fn ran() -> Project {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    p
}

fn json(p: &Project, args: &[&str]) -> Value {
    let r = p.baton(args);
    assert_eq!(r.code(), 0, "baton {args:?}: {}", r.all());
    serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("baton {args:?}: {e}:\n{}", r.stdout()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn history_lists_every_attempt_of_the_runs_newest_first() {
    let p = ran();
    // A second run: only the single task it is given runs.
    p.write("plan.yaml", &format!("{}  - id: '3.1'\n    name: Four\n", p.read("plan.yaml")));
    p.repo.commit_all("one more task");
    p.scenario(r#"{"default": {"cost": 0.11}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());

    let v = json(&p, &["history", "--json"]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v:#}");
    let (newer, older) = (&runs[0], &runs[1]);
    assert!(newer["id"].as_i64() > older["id"].as_i64(), "newest first: {v:#}");
    assert_eq!((&newer["ending"], &newer["state"], &newer["plan"]), (&"finished".into(), &"ended".into(), &"plan.yaml".into()));
    let tasks = |run: &Value| -> Vec<(String, String, Option<String>, f64)> {
        run["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["task"].as_str().unwrap().into(), a["outcome"].as_str().unwrap().into(), a["model"].as_str().map(String::from), a["cost_usd"].as_f64().unwrap()))
            .collect()
    };
    let older_attempts = tasks(older);
    let expected = [("1.1", "failed", "sonnet"), ("1.1", "completed", "opus"), ("1.2", "completed", "haiku"), ("2.1", "completed", "")];
    assert_eq!(older_attempts.len(), 4, "{v:#}");
    for ((task, outcome, model, cost), ((t, o, m), c)) in older_attempts.iter().zip(expected.iter().zip(COSTS)) {
        assert_eq!((task.as_str(), outcome.as_str()), (*t, *o), "{v:#}");
        if !m.is_empty() {
            assert_eq!(model.as_deref(), Some(*m), "{v:#}");
        }
        assert!(close(*cost, c), "{task}: {cost} != {c}");
    }
    assert!(close(older["cost_usd"].as_f64().unwrap(), COSTS.iter().sum()), "{v:#}");
    assert_eq!(tasks(newer).iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["3.1"]);
    for a in older["attempts"].as_array().unwrap() {
        assert!(a["duration_secs"].as_f64().unwrap() >= 0.0 && a["started_at"].is_string(), "{a:#}");
    }

    // --limit 1: the newest run only; the table shows both runs' attempts with their costs.
    let v = json(&p, &["history", "plan.yaml", "--json", "--limit", "1"]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["id"], newer["id"]);
    let text = p.baton(&["history"]).stdout();
    assert!(text.find("3.1").unwrap() < text.find("1.1").unwrap(), "newest first:\n{text}");
    let failed = text.lines().find(|l| l.contains("1.1") && l.contains("failed")).unwrap_or_else(|| panic!("{text}"));
    assert!(failed.contains("$0.0200") && failed.contains("sonnet") && failed.contains("tests fail"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("run ") && l.contains("plan.yaml") && l.contains("$0.1700") && l.ends_with("finished")), "{text}");
}

#[test]
fn history_of_one_task_shows_each_attempt_in_detail() {
    let p = ran();
    let v = json(&p, &["history", "plan.yaml", "--task", "1.1", "--json"]);
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v:#}");
    assert_eq!((&attempts[0]["outcome"], &attempts[0]["attempt"], &attempts[0]["model"]), (&"failed".into(), &1.into(), &"sonnet".into()));
    assert_eq!((&attempts[1]["outcome"], &attempts[1]["attempt"], &attempts[1]["model"]), (&"completed".into(), &2.into(), &"opus".into()));
    for a in attempts {
        let transcript = a["transcript"].as_str().unwrap();
        assert!(p.path().join(transcript).is_file(), "{transcript}");
        assert!(a["turns"].as_i64().is_some(), "{a:#}");
    }

    let r = p.baton(&["history", "plan.yaml", "--task", "1.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let text = r.stdout();
    assert!(text.starts_with("task 1.1 of plan.yaml: 2 sessions"), "{text}");
    assert!(text.contains("$0.0500"), "the task's total:\n{text}");
    assert!(text.contains("outcome     failed: tests fail") && text.contains("model       opus"), "{text}");
    assert!(text.contains("transcript  .baton/logs/plan/1.1/attempt-2.jsonl"), "{text}");

    // Its checks.
    let v = json(&p, &["history", "plan.yaml", "--task", "1.2", "--json"]);
    assert_eq!(v["attempts"][0]["checks"][0]["command"], "test -f two.txt", "{v:#}");
    assert_eq!(v["attempts"][0]["checks"][0]["passed"], true, "{v:#}");
    let text = p.baton(&["history", "plan.yaml", "--task", "1.2"]).stdout();
    assert!(text.contains("check       test -f two.txt [task] — ok ·"), "{text}");

    // A task of the plan that has not run yet, and one the plan does not have.
    p.write("plan.yaml", &format!("{}  - id: '3.1'\n    name: Four\n", p.read("plan.yaml")));
    let r = p.baton(&["history", "plan.yaml", "--task", "3.1"]);
    assert_eq!((r.code(), r.stdout()), (0, "no attempts recorded for task 3.1 in plan plan.yaml yet\n".into()), "{}", r.stderr());
    let r = p.baton(&["history", "plan.yaml", "--task", "1.3"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("no attempts recorded for task 1.3 in plan plan.yaml") && r.stderr().contains("help: did you mean `1.1`, `1.2`"), "{}", r.stderr());
}

#[test]
fn cost_adds_up_the_attempts_by_task_model_day_and_plan() {
    let p = ran();
    let total: f64 = COSTS.iter().sum();
    for by in ["task", "model", "day", "plan"] {
        let v = json(&p, &["cost", "--by", by, "--json"]);
        let rows = v["rows"].as_array().unwrap();
        let sum: f64 = rows.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
        assert!(close(v["total"]["cost_usd"].as_f64().unwrap(), total) && close(sum, total), "--by {by}: {v:#}");
        assert_eq!(v["total"]["sessions"], 4, "--by {by}: {v:#}");
        assert_eq!(v["by"], by);
        let keys: Vec<&Value> = rows.iter().map(|r| &r[by]).collect();
        match by {
            "task" => {
                assert_eq!(keys, [&Value::from("1.1"), &"1.2".into(), &"2.1".into()], "{v:#}");
                assert!(close(rows[0]["cost_usd"].as_f64().unwrap(), 0.05) && rows[0]["sessions"] == 2, "{v:#}");
            }
            "plan" => assert_eq!(keys, [&Value::from("plan.yaml")], "{v:#}"),
            // Every attempt ran today, in the time zone the tests set (UTC).
            "day" => assert_eq!(keys, [&Value::from(jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date().to_string())], "{v:#}"),
            _ => {
                for (model, cost) in [("sonnet", 0.02), ("opus", 0.03), ("haiku", 0.05)] {
                    let row = rows.iter().find(|r| r["model"] == model).unwrap_or_else(|| panic!("{model}: {v:#}"));
                    assert!(close(row["cost_usd"].as_f64().unwrap(), cost), "{v:#}");
                }
            }
        }
    }
    // One plan: by task unless asked otherwise; since a future time: nothing.
    let v = json(&p, &["cost", "plan.yaml", "--json"]);
    assert_eq!((v["by"].as_str(), v["rows"].as_array().unwrap().len()), (Some("task"), 3), "{v:#}");
    for since in ["2999-01-01", "2999-01-01T00:00:00Z"] {
        let v = json(&p, &["cost", "--since", since, "--json"]);
        assert_eq!((v["rows"].as_array().unwrap().len(), v["total"]["cost_usd"].as_f64()), (0, Some(0.0)), "{v:#}");
    }
    let v = json(&p, &["cost", "--since", "1h", "--by", "task", "--json"]);
    assert!(close(v["total"]["cost_usd"].as_f64().unwrap(), total), "{v:#}");

    let r = p.baton(&["cost", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let text = r.stdout();
    let last = text.lines().last().unwrap();
    assert!(last.trim_start().starts_with("total") && last.ends_with("$0.1700") && last.contains(" 4 "), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("1.1") && l.ends_with("$0.0500")), "{text}");

    let r = p.baton(&["cost", "--since", "last tuesday"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("`last tuesday` is not a date"), "{}", r.stderr());
}

#[test]
fn a_repository_without_a_history_says_so_and_creates_nothing() {
    let p = project(PLAN);
    for args in [&["history"][..], &["history", "plan.yaml"], &["cost"], &["cost", "plan.yaml", "--by", "day"]] {
        let r = p.baton(args);
        assert_eq!(r.code(), 0, "{args:?}: {}", r.all());
        assert!(r.stdout().starts_with("no runs recorded yet"), "{args:?}: {}", r.stdout());
    }
    let v = json(&p, &["cost", "--json"]);
    assert_eq!((v["rows"].as_array().unwrap().len(), v["total"]["cost_usd"].as_f64()), (0, Some(0.0)), "{v:#}");
    assert_eq!(json(&p, &["history", "--json"])["runs"], serde_json::json!([]));
    assert!(!p.path().join(".baton").exists(), "nothing is created");
    assert_eq!(p.repo.status_porcelain(), "");
}

#[test]
fn attempt_records_from_before_the_history_are_imported() {
    let p = ran();
    std::fs::remove_file(p.path().join(".baton/baton.db")).unwrap();
    // Every plan: nothing to say without a store.
    assert!(p.baton(&["history"]).stdout().starts_with("no runs recorded yet"));
    let v = json(&p, &["history", "plan.yaml", "--json"]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{v:#}");
    assert_eq!((&runs[0]["kind"], runs[0]["attempts"].as_array().unwrap().len()), (&"imported".into(), 4), "{v:#}");
    assert!(close(runs[0]["cost_usd"].as_f64().unwrap(), COSTS.iter().sum()), "{v:#}");
    // Once.
    let v = json(&p, &["cost", "plan.yaml", "--json"]);
    assert_eq!(v["total"]["sessions"], 4, "{v:#}");
}

#[test]
fn a_damaged_history_is_an_error_that_says_what_to_do_and_changes_nothing() {
    let p = project(PLAN);
    let db = p.write(".baton/baton.db", "this is not a database\n");
    for args in [&["history"][..], &["history", "plan.yaml", "--task", "1.1"], &["cost", "--json"]] {
        let r = p.baton(args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.all());
        assert_eq!(r.stdout(), "", "{args:?}");
        let err = r.stderr();
        assert!(err.starts_with("error: cannot open the run history") && err.contains(".baton/baton.db"), "{args:?}: {err}");
        assert!(err.contains("help: if the file is damaged, move it aside"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "this is not a database\n");
    let mut names: Vec<String> = std::fs::read_dir(p.path().join(".baton")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["baton.db"], "nothing beside it");

    // A folder in its place.
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();
    let r = p.baton(&["cost"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("help: "), "{}", r.stderr());
    assert_eq!(std::fs::read_dir(&db).unwrap().count(), 0);
}

#[test]
fn a_run_going_on_is_running_and_a_killed_one_interrupted() {
    let p = project(PLAN);
    p.scenario(r#"{"tasks": {"1.1": {"await_file": "go"}}}"#);
    let mut run = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to start", || p.state_path("1.1-1.agent.pid").exists());
    let v = json(&p, &["history", "--json"]);
    assert_eq!((&v["runs"][0]["state"], &v["runs"][0]["pid"]), (&"running".into(), &run.id().into()), "{v:#}");
    assert_eq!(v["runs"][0]["attempts"][0]["outcome"], "running", "{v:#}");
    let text = p.baton(&["history", "plan.yaml"]).stdout();
    assert!(text.lines().next().unwrap().ends_with(&format!("running (pid {})", run.id())), "{text}");

    signal(&run, libc::SIGKILL);
    wait_exit(&mut run);
    std::fs::write(p.state_path("go"), "").unwrap();
    let v = json(&p, &["history", "--json"]);
    assert_eq!((&v["runs"][0]["state"], &v["runs"][0]["ending"]), (&"interrupted".into(), &Value::Null), "{v:#}");
    assert_eq!(v["runs"][0]["attempts"][0]["outcome"], "interrupted", "{v:#}");
    let text = p.baton(&["history"]).stdout();
    assert!(text.lines().next().unwrap().ends_with("interrupted (baton was killed; the next run closes it)"), "{text}");
    let v = json(&p, &["history", "plan.yaml", "--task", "1.1", "--json"]);
    assert_eq!(v["attempts"][0]["outcome"], "interrupted", "{v:#}");
}
