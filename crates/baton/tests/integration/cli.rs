//! The command-line surface: help, check, status, stop, exit codes.

use crate::support::{fixture, Project};

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let p = Project::new();
    let r = p.baton(&["--help"]);
    assert_eq!(r.code(), 0);
    insta::assert_snapshot!("help", r.stdout());
    let r = p.baton(&["run", "--help"]);
    assert_eq!(r.code(), 0);
    insta::assert_snapshot!("run_help", r.stdout());
    for cmd in ["history", "cost"] {
        let r = p.baton(&[cmd, "--help"]);
        assert_eq!(r.code(), 0);
        insta::assert_snapshot!(format!("{cmd}_help"), r.stdout());
    }
}

#[test]
fn bad_flags_exit_2() {
    let p = Project::new();
    let r = p.baton(&["run", "plan.yaml", "--jobs", "0"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    let r = p.baton(&["frobnicate"]);
    assert_eq!(r.code(), 2);
}

#[test]
fn check_accepts_a_valid_plan() {
    let p = Project::new();
    p.write("plan.yaml", &fixture("commented.yaml"));
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(r.stdout(), "plan.yaml: valid — 2 sections, 3 tasks (0 of 3 completed · 3 pending)\n");
}

const BROKEN: &str = "meta:
  name: Broken
sections:
- id: s
  tasks:
  - id: 1.1
    name: first
    status: done
  - id: 1.10
    name: second
    depends_on: [1.3]
  - id: 1.2
    name: third
    depends_on: ['1.1', '1.2']
  - id: a
    name: x
    depends_on: [b]
  - id: b
    name: y
    depends_on: [a]
";

#[test]
fn check_reports_every_problem_with_its_line_and_leaves_the_file_alone() {
    let p = Project::new();
    let path = p.write("plan.yaml", BROKEN);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2);
    assert_eq!(r.stdout(), "");
    insta::assert_snapshot!("check_broken", r.stderr());
    assert_eq!(p.read("plan.yaml"), BROKEN);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
}

#[test]
fn check_json_lists_the_problems() {
    let p = Project::new();
    p.write("plan.yaml", BROKEN);
    let r = p.baton(&["check", "plan.yaml", "--json"]);
    assert_eq!(r.code(), 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4);
    assert_eq!(problems[0]["line"], 8);
    assert!(problems[3]["message"].as_str().unwrap().contains("a → b → a"));
}

#[test]
fn check_of_a_missing_file_names_it() {
    let p = Project::new();
    let r = p.baton(&["check", "nope.yaml"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("cannot read plan nope.yaml: No such file"), "{}", r.stderr());
}

#[test]
fn syntax_errors_name_line_and_column() {
    let p = Project::new();
    p.write("plan.yaml", "sections:\n- id: s\n  tasks: [\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().starts_with("error: plan.yaml:4:1: YAML syntax error"), "{}", r.stderr());
}

#[test]
fn status_table() {
    let p = Project::new();
    let plan = fixture("pyyaml.yaml");
    p.write("plan.yaml", &plan);
    let r = p.baton(&["status", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    insta::assert_snapshot!("status_table", r.stdout());
    assert_eq!(p.read("plan.yaml"), plan, "status changed the plan");
}

#[test]
fn status_json_keeps_ids_as_strings() {
    let p = Project::new();
    p.write("plan.yaml", &fixture("commented.yaml"));
    let r = p.baton(&["status", "plan.yaml", "--json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(r.code(), 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let ids: Vec<&serde_json::Value> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["tasks"].as_array().unwrap())
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&serde_json::json!("1.1"), &serde_json::json!("1.10"), &serde_json::json!("2.1")]);
    assert_eq!(v["sections"][0]["tasks"][1]["depends_on"], serde_json::json!(["1.1"]));
    assert_eq!(v["sections"][0]["tasks"][0]["max_attempts"], 5);
    assert_eq!(v["counts"]["pending"], 3);
}

#[test]
fn run_refuses_an_invalid_plan_without_touching_it() {
    let p = Project::new();
    p.write("plan.yaml", BROKEN);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("nothing was run or changed"));
    assert_eq!(p.read("plan.yaml"), BROKEN);
}

#[test]
fn config_errors_name_the_key_and_file() {
    let p = Project::new();
    p.write("plan.yaml", &fixture("flow.yaml"));
    p.write("baton.toml", "[run]\njobs = 2\nretries = 9\n");
    for cmd in ["check", "status", "run"] {
        let r = p.baton(&[cmd, "plan.yaml"]);
        assert_eq!(r.code(), 2, "{cmd}");
        assert!(r.stderr().contains("baton.toml:3:1: unknown key `retries` in [run]"), "{cmd}: {}", r.stderr());
    }
}

#[test]
fn config_is_found_at_the_repository_root() {
    let p = Project::new();
    p.write(".claude/plans/plan.yaml", &fixture("flow.yaml"));
    p.write("baton.toml", "[run]\nmax_attempts = 7\n");
    let r = p.baton(&["status", ".claude/plans/plan.yaml", "--json"]);
    // The plan's own max_attempts_default (2) wins over the config's fallback.
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["sections"][0]["tasks"][0]["max_attempts"], 2);
    p.write(".claude/plans/plan.yaml", &fixture("flow.yaml").replace(", max_attempts_default: 2", ""));
    let r = p.baton(&["status", ".claude/plans/plan.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["sections"][0]["tasks"][0]["max_attempts"], 7);
}

#[test]
fn check_json_includes_config_problems() {
    let p = Project::new();
    p.write("plan.yaml", &fixture("flow.yaml"));
    p.write("baton.toml", "[run]\njobs = 0\n");
    let r = p.baton(&["check", "plan.yaml", "--json"]);
    assert_eq!(r.code(), 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["problems"][0]["message"].as_str().unwrap().contains("jobs"), "{v}");
}
