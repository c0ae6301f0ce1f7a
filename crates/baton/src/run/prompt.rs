//! The prompt each fresh agent session gets: which task, where the design is, what to do, and
//! exactly how to report back.
//!
//! A user's template file replaces the built-in one; both use the same `{placeholders}`.

use std::path::Path;

use crate::plan::{Plan, Task};

/// Everything a template can refer to.
pub struct PromptVars<'a> {
    pub plan: &'a Plan,
    pub task: &'a Task,
    /// The plan file, relative to the agent's working directory when possible.
    pub plan_file: &'a Path,
    /// The status file, relative to the agent's working directory.
    pub status_file: &'a Path,
    pub build_command: Option<&'a str>,
    /// Extra context (parallel runs add the subagent protocol here).
    pub extra: &'a str,
    /// What the last attempt was told to fix: a failing check's output, a reviewer's findings.
    pub feedback: Option<&'a str>,
}

pub const DEFAULT_TEMPLATE: &str = r#"You are working on one task of a larger plan, in a fresh session. The plan file is the shared memory between sessions: read it, do this one task, report back, and stop.

Task ID: {task_id}
Task: {task_name}
Section: {section_id} — {section_name}
Plan: {plan_name}
Plan file: {plan_file}
Design document: {plan_doc}
Status file: {status_file}

## The task

{description}

{feedback}## How to work

1. Check the current state first: an earlier attempt may have failed part-way{last_error_note}. Look at `git status`, `git log -5` and the files the task names before changing anything.
2. Read the design document (if there is one) and the parts of the plan around this task.
3. Implement the task, and only this task.
4. Build and test: {build_command}. Fix what fails.
5. Commit your work with git, with a message that names task {task_id}.
6. Write the status file (below) as your very last step.

## Reporting back

Write this JSON object to `{status_file}` (create the folder if needed), with "status" set to "completed" when the task is done and verified, "failed" when it could not be done (say why in "message"), or "skipped" when it turned out to be unnecessary (say why):

```json
{status_example}
```

If you cannot write that file, end your final answer with the same JSON object.

## Changing the plan

You may edit the plan file when the work calls for it: split this task (e.g. {task_id}a and {task_id}b), add a task, fix a description, or mark a task `skipped` with a reason. Keep the YAML valid and keep task ids unique; do not change the `status`, `attempts` or `last_error` of other tasks. If you changed the plan, set "plan_modified": true in the status file.
{extra}"#;

/// Fills a template. Unknown `{names}` are left as they are.
pub fn render(template: &str, v: &PromptVars<'_>) -> String {
    let section = v.plan.section_of(v.task.id.as_str());
    let example = serde_json::json!({
        "task_id": v.task.id.as_str(),
        "status": "completed",
        "message": "what was done, or why it failed",
        "timestamp": "2026-01-01T12:00:00Z",
        "plan_modified": false,
    });
    let last_error_note = match &v.task.last_error {
        Some(e) => format!(" (the last attempt failed with: {})", one_line(e, 300)),
        None => String::new(),
    };
    let feedback = match v.feedback {
        Some(f) => format!("## What the last attempt left to fix\n\n{f}\n\n"),
        None => String::new(),
    };
    let vars: [(&str, String); 15] = [
        ("task_id", v.task.id.to_string()),
        ("task_name", v.task.name.clone()),
        ("section_id", section.map(|s| s.id.clone()).unwrap_or_default()),
        ("section_name", section.and_then(|s| s.name.clone()).unwrap_or_default()),
        ("plan_name", v.plan.meta.name.clone().unwrap_or_else(|| "(unnamed)".into())),
        ("plan_file", v.plan_file.display().to_string()),
        (
            "plan_doc",
            v.plan.meta.plan_doc.clone().unwrap_or_else(|| "(none)".into()),
        ),
        ("status_file", v.status_file.display().to_string()),
        (
            "description",
            v.task.description.clone().unwrap_or_else(|| v.task.name.clone()),
        ),
        (
            "build_command",
            match v.build_command {
                Some(c) => format!("run `{c}`"),
                None => "run the project's usual build and test commands".into(),
            },
        ),
        ("status_example", serde_json::to_string_pretty(&example).unwrap_or_default()),
        ("last_error_note", last_error_note),
        ("attempt_note", String::new()),
        ("extra", v.extra.to_string()),
        ("feedback", feedback.clone()),
    ];
    let out = fill(template, &vars);
    // A template of the user's without `{feedback}` still gets it: the retry must know what
    // to fix.
    if !feedback.is_empty() && !template.contains("{feedback}") {
        return format!("{out}\n\n{feedback}");
    }
    out
}

/// Replaces each `{name}` of `vars` in one pass (a value is never scanned again, so text from
/// a plan or a backlog item cannot inject placeholders). Unknown `{names}` stay as they are.
pub fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name = after.find('}').map(|c| &after[..c]);
        match name.and_then(|n| vars.iter().find(|(k, _)| *k == n)) {
            Some((k, value)) => {
                out.push_str(value);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn one_line(s: &str, max: usize) -> String {
    crate::report::status::cut(&crate::report::safe::one_line(s), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_everything_the_agent_needs() {
        let plan = crate::plan::parse_plan(
            "meta:\n  name: P\n  plan_doc: docs/d.md\nsections:\n- id: s1\n  name: First\n  tasks:\n  - id: 1.10\n    name: Do it\n    description: 'Write x. Files: src/x.rs'\n    last_error: tests failed\n",
        )
        .unwrap();
        let task = plan.task("1.10").unwrap();
        let p = render(
            DEFAULT_TEMPLATE,
            &PromptVars {
                plan: &plan,
                task,
                plan_file: Path::new("plan.yaml"),
                status_file: Path::new(".claude/plans/task-status.json"),
                build_command: Some("cargo test"),
                extra: "",
                feedback: None,
            },
        );
        for want in [
            "Task ID: 1.10\n",
            "Status file: .claude/plans/task-status.json\n",
            "Plan file: plan.yaml\n",
            "Section: s1 — First",
            "Design document: docs/d.md",
            "Write x. Files: src/x.rs",
            "run `cargo test`",
            "\"task_id\": \"1.10\"",
            "the last attempt failed with: tests failed",
            "plan_modified",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
        assert!(!p.contains("{task_id}"));
    }

    #[test]
    fn unknown_placeholders_and_braces_stay() {
        let plan = crate::plan::parse_plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n").unwrap();
        let out = render(
            "{task_id} {nope} {{x}} {",
            &PromptVars {
                plan: &plan,
                task: plan.task("a").unwrap(),
                plan_file: Path::new("p"),
                status_file: Path::new("s"),
                build_command: None,
                extra: "",
                feedback: None,
            },
        );
        assert_eq!(out, "a {nope} {{x}} {");
    }
}
