//! A command agent (`kind = "command"`): any program run as the agent — here a POSIX shell
//! script in the repository that reads its prompt (as an argument, or on stdin), finds the task
//! id and the status file in it, does and commits its work, writes the status file and prints
//! plain text. Its exit code and its status file judge the session.

use baton::plan::Status;

use crate::support::{project, Project, FAST_CONFIG};

/// A plan of one task, `1.1`, that may be tried `attempts` times.
fn plan(attempts: u32, description: &str) -> String {
    format!(
        "meta:\n  name: Command agent\n  max_attempts_default: {attempts}\nsections:\n- id: s1\n  name: Work\n  tasks:\n  - id: '1.1'\n    name: Write the file\n    status: pending\n    description: '{description}'\n"
    )
}

/// The script's part that reads the prompt (in `$prompt`) and does the task: the task id and
/// the status file from the built-in prompt's `Task ID:` and `Status file:` lines, a file
/// written and committed, some lines printed (one of them JSON, which is text too).
const WORK: &str = r#"
task=$(printf '%s\n' "$prompt" | sed -n 's/^Task ID: //p' | head -n 1)
status=$(printf '%s\n' "$prompt" | sed -n 's/^Status file: //p' | head -n 1)
echo "script: working on task $task"
echo "script: model [$model] env [$BATON_MODEL]"
echo "written by the script for $task" > "work-$task.txt"
git add "work-$task.txt"
git commit -q -m "task $task: the script's work"
echo '{"type":"result","result":"a JSON line is still text"}'
"#;

/// Writes the status file the prompt named, reporting `completed`.
const REPORT: &str = r#"
mkdir -p "$(dirname "$status")"
printf '{"task_id": "%s", "status": "completed", "message": "the script wrote work-%s.txt", "plan_modified": false}\n' "$task" "$task" > "$status"
echo "script: finished $task"
"#;

/// A project whose `agent.sh` is `script` (executable, committed) and whose baton.toml adds
/// `toml` to the fast policies.
fn with_script(plan: &str, script: &str, toml: &str) -> Project {
    let p = project(plan);
    let path = p.write("agent.sh", &format!("#!/bin/sh\n{script}"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.write("baton.toml", &format!("{FAST_CONFIG}{toml}"));
    p.repo.commit_all("the agent script");
    p
}

/// `[agent] kind = "command"`, the prompt as the first argument and the model as the second.
const AS_ARGUMENT: &str = "[agent]\nkind = \"command\"\nmodel = \"tiny-model\"\ncommand = [\"./agent.sh\", \"{prompt}\", \"{model}\"]\n";

fn record(p: &Project, task: &str, session: u32) -> serde_json::Value {
    serde_json::from_str(&p.read(&format!(".baton/logs/plan/{task}/attempt-{session}.json"))).expect("attempt record")
}

#[test]
fn a_script_given_the_prompt_as_an_argument_does_the_task_and_its_text_is_the_transcript() {
    let p = with_script(&plan(2, "Write work-1.1.txt."), &format!("prompt=\"$1\"\nmodel=\"$2\"\n{WORK}{REPORT}"), AS_ARGUMENT);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let task = p.plan().task("1.1").cloned().expect("task 1.1");
    assert_eq!(task.status, Status::Completed, "{}", run.all());
    assert_eq!(task.result_message.as_deref(), Some("the script wrote work-1.1.txt"));
    assert_eq!(p.read("work-1.1.txt"), "written by the script for 1.1\n");
    let log = p.repo.git(&["log", "--format=%s"]);
    assert!(log.contains("task 1.1: the script's work"), "the script's commit:\n{log}");
    assert!(p.repo.git(&["status", "--porcelain"]).trim().is_empty(), "everything committed");

    let logs = p.baton(&["logs", "plan.yaml", "1.1"]);
    assert_eq!(logs.code(), 0, "{}", logs.all());
    let shown = logs.stdout();
    for line in ["script: working on task 1.1", "script: model [tiny-model] env [tiny-model]", "a JSON line is still text", "script: finished 1.1"] {
        assert!(shown.contains(line), "`baton logs` shows {line:?}:\n{shown}");
    }
}

#[test]
fn a_script_reading_the_prompt_on_stdin_as_the_default_named_agent() {
    let toml = "[agent]\ndefault = \"script\"\n\n[agents.script]\nkind = \"command\"\nargv = [\"./agent.sh\"]\nstdin = \"prompt\"\nenv = { SCRIPT_GREETING = \"hello from env\" }\n";
    let script = format!("prompt=$(cat)\nmodel=none\necho \"script: $SCRIPT_GREETING\"\n{WORK}{REPORT}");
    let p = with_script(&plan(2, "Write work-1.1.txt."), &script, toml);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(p.plan().task("1.1").map(|t| t.status), Some(Status::Completed), "{}", run.all());
    assert!(p.repo.git(&["log", "--format=%s"]).contains("task 1.1: the script's work"));
    let transcript = p.read(".baton/logs/plan/1.1/attempt-1.jsonl");
    assert!(transcript.contains("script: hello from env") && transcript.contains("script: finished 1.1"), "{transcript}");
}

#[test]
fn the_status_json_printed_last_stands_in_for_the_file() {
    let printed = r#"
echo "script: here is my report"
echo '{'
printf '  "task_id": "%s", "status": "completed",\n' "$task"
echo '  "message": "reported on stdout"'
echo '}'
"#;
    let p = with_script(&plan(1, "Write work-1.1.txt."), &format!("prompt=\"$1\"\nmodel=\"$2\"\n{WORK}{printed}"), AS_ARGUMENT);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let task = p.plan().task("1.1").cloned().expect("task 1.1");
    assert_eq!((task.status, task.result_message.as_deref()), (Status::Completed, Some("reported on stdout")), "{}", run.all());
}

#[test]
fn a_script_that_exits_3_fails_the_attempt_with_its_exit_code_and_stderr() {
    // It even writes a `completed` report first: the exit code is its last word.
    let failing = format!("prompt=\"$1\"\nmodel=\"$2\"\n{WORK}{REPORT}echo 'script: the tests did not pass' >&2\nexit 3\n");
    let p = with_script(&plan(1, "Write work-1.1.txt."), &failing, AS_ARGUMENT);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_ne!(run.code(), 0, "{}", run.all());
    let task = p.plan().task("1.1").cloned().expect("task 1.1");
    assert_eq!(task.status, Status::Failed, "{}", run.all());
    let error = task.last_error.unwrap_or_default();
    assert!(error.contains("exit code 3") && error.contains("script: the tests did not pass"), "{error}");
    let message = record(&p, "1.1", 1)["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("exit code 3"), "{message}");
}

#[test]
fn a_script_that_writes_no_status_file_fails_the_attempt() {
    let p = with_script(&plan(1, "Write work-1.1.txt."), &format!("prompt=\"$1\"\nmodel=\"$2\"\n{WORK}echo 'script: all done, trust me'\n"), AS_ARGUMENT);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_ne!(run.code(), 0, "{}", run.all());
    let task = p.plan().task("1.1").cloned().expect("task 1.1");
    assert_eq!(task.status, Status::Failed, "{}", run.all());
    let error = task.last_error.unwrap_or_default();
    assert!(error.contains("wrote no .claude/plans/task-status.json"), "{error}");
    assert!(!error.contains("result event") && !error.contains("stopped"), "a command agent has no result event and was not stopped: {error}");
}

#[test]
fn a_missing_program_is_an_error_of_check_and_run_naming_it() {
    let toml = "[agent]\nkind = \"command\"\ncommand = [\"./tools/missing-agent.sh\", \"{prompt}\"]\n";
    let p = with_script(&plan(1, "Write work-1.1.txt."), "exit 0\n", toml);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    let said = run.stderr();
    assert!(said.contains("./tools/missing-agent.sh") && said.contains("does not exist") && said.contains("[agent] command"), "{said}");
    assert_eq!(p.plan().task("1.1").map(|t| t.status), Some(Status::Pending), "nothing ran");
    let check = p.baton(&["check", "plan.yaml"]);
    assert_eq!(check.code(), 2, "{}", check.all());
    assert!(check.stderr().contains("error: baton.toml: the command agent \"command\" runs ./tools/missing-agent.sh"), "{}", check.all());
    let json = p.baton(&["check", "plan.yaml", "--json"]);
    assert_eq!(json.code(), 2, "{}", json.all());
    assert!(json.stdout().contains("./tools/missing-agent.sh"), "{}", json.all());
    // The dry run says which, and that the run would be refused.
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 2, "{}", dry.all());
    assert!(dry.stderr().contains("warning:") && dry.stderr().contains("./tools/missing-agent.sh"), "{}", dry.all());
    assert!(dry.stdout().contains("the run would be refused (exit 2)"), "{}", dry.all());

    let on_path = "[agent]\nkind = \"command\"\ncommand = [\"no-such-agent-program-for-baton\"]\n";
    p.write("baton.toml", &format!("{FAST_CONFIG}{on_path}"));
    p.repo.commit_all("a program that is not on PATH");
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    assert!(run.stderr().contains("no-such-agent-program-for-baton") && run.stderr().contains("not on PATH"), "{}", run.all());
    // Perhaps installed only where the plan runs: `baton check` warns.
    let check = p.baton(&["check", "plan.yaml"]);
    assert_eq!(check.code(), 0, "{}", check.all());
    assert!(check.stderr().contains("warning: baton.toml: the command agent \"command\" runs no-such-agent-program-for-baton, which is not on PATH"), "{}", check.all());
}

#[test]
fn a_prompt_too_long_for_an_argument_stops_the_run_saying_to_use_stdin() {
    let long = "x".repeat(140 * 1024);
    let p = with_script(&plan(2, &long), &format!("prompt=\"$1\"\nmodel=\"$2\"\n{WORK}{REPORT}"), AS_ARGUMENT);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_ne!(run.code(), 0, "{}", run.all());
    let said = run.all();
    assert!(said.contains("too long for one command-line argument") && said.contains("remove `{prompt}` from [agent] command"), "{said}");
    let task = p.plan().task("1.1").cloned().expect("task 1.1");
    assert_eq!((task.status, task.attempts), (Status::Pending, 0), "no attempt spent: {said}");
    assert!(!p.path().join("work-1.1.txt").exists(), "the script never ran");
}

/// A task's `agent: NAME` runs it on `[agents.NAME]`, and `baton logs` reads the script's
/// text as its agent's.
#[test]
fn a_task_naming_the_command_agent_runs_on_it() {
    let toml = "[agents.script]\nkind = \"command\"\nargv = [\"./agent.sh\", \"{prompt}\"]\n";
    let plan = "meta:\n  name: Routed\n  max_attempts_default: 1\nsections:\n- id: s1\n  name: Work\n  tasks:\n  - id: '1.1'\n    name: By the script\n    status: pending\n    agent: script\n    description: 'Write work-1.1.txt.'\n";
    let p = with_script(plan, &format!("prompt=\"$1\"\nmodel=\"\"\n{WORK}{REPORT}"), toml);
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(p.plan().task("1.1").map(|t| t.status), Some(Status::Completed), "{}", run.all());
    assert!(p.repo.git(&["log", "--format=%s"]).contains("task 1.1: the script's work"));
    let logs = p.baton(&["logs", "plan.yaml", "1.1"]);
    assert!(logs.stdout().contains("script: finished 1.1"), "{}", logs.all());
}
