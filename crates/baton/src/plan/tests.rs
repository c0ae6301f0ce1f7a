//! Round-trip and validation tests for the plan model.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_temp(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    fs::write(&path, text).unwrap();
    (dir, path)
}

/// Lines that differ between two texts, as (old, new) pairs after aligning unchanged lines.
fn changed_lines(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    // Longest common subsequence over lines; the files are small.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(b[j].to_string());
            j += 1;
        } else {
            removed.push(a[i].to_string());
            i += 1;
        }
    }
    (removed, added)
}

const OWNED: [&str; 5] = ["status", "attempts", "last_error", "completed_at", "result_message"];

/// True when a line holds nothing but owned fields (block style), ignoring an unchanged comment.
fn is_owned_line(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches("- ");
    OWNED.iter().any(|k| t.starts_with(&format!("{k}:")))
}

/// Everything the user wrote, compared task by task, must be the same after baton's edits.
fn assert_user_fields_equal(a: &Plan, b: &Plan) {
    assert_eq!(a.meta.name, b.meta.name);
    assert_eq!(a.meta.description, b.meta.description);
    assert_eq!(a.sections.len(), b.sections.len());
    for (sa, sb) in a.sections.iter().zip(&b.sections) {
        assert_eq!(sa.id, sb.id);
        assert_eq!(sa.name, sb.name);
        for (ta, tb) in sa.tasks.iter().zip(&sb.tasks) {
            assert_eq!(ta.id, tb.id);
            assert_eq!(ta.name, tb.name);
            assert_eq!(ta.description, tb.description);
            assert_eq!(ta.depends_on, tb.depends_on);
            assert_eq!(ta.parallel_group, tb.parallel_group);
            assert_eq!(ta.exclusive_resources, tb.exclusive_resources);
            assert_eq!(ta.max_attempts, tb.max_attempts);
        }
    }
}

/// Sets every owned field of every task, saves, and checks what changed.
fn edit_everything(name: &str, text: &str) -> String {
    let (_dir, path) = write_temp(text);
    let mut file = PlanFile::load(&path).unwrap_or_else(|e| panic!("{name}: {}", e.render()));
    let before = file.plan().clone();
    let ids: Vec<String> = before.tasks().map(|t| t.id.to_string()).collect();
    for (n, id) in ids.iter().enumerate() {
        let status = if n % 2 == 0 { Status::Completed } else { Status::Failed };
        file.set_status(id, Status::InProgress).unwrap();
        file.set_status(id, status).unwrap();
        file.set_attempts(id, n as u32 + 2).unwrap();
        file.set_text(id, TaskField::LastError, "tests failed: it's \"red\" # see log\nline 2").unwrap();
        file.set_text(id, TaskField::CompletedAt, "2026-02-01T17:30:00Z").unwrap();
        file.set_text(id, TaskField::ResultMessage, "Done: added ünïcode ✓").unwrap();
    }
    assert_eq!(file.save().unwrap(), SaveOutcome::Saved);
    let saved = fs::read_to_string(&path).unwrap();
    assert_eq!(saved, file.text());

    // Everything reads back as set.
    let after = parse_plan(&saved).unwrap_or_else(|d| panic!("{name}: {d:?}\n{saved}"));
    assert_user_fields_equal(&before, &after);
    for (n, id) in ids.iter().enumerate() {
        let t = after.task(id).unwrap();
        assert_eq!(t.status, if n % 2 == 0 { Status::Completed } else { Status::Failed }, "{name} {id}");
        assert_eq!(t.attempts, n as u32 + 2);
        assert_eq!(t.last_error.as_deref(), Some("tests failed: it's \"red\" # see log\nline 2"));
        assert_eq!(t.completed_at.as_deref(), Some("2026-02-01T17:30:00Z"));
        assert_eq!(t.result_message.as_deref(), Some("Done: added ünïcode ✓"));
    }
    saved
}

#[test]
fn block_style_with_comments_changes_only_owned_lines() {
    let text = fixture("commented.yaml");
    let saved = edit_everything("commented", &text);
    let (removed, added) = changed_lines(&text, &saved);
    for line in removed.iter().chain(&added) {
        assert!(is_owned_line(line), "a line baton does not own changed: {line:?}");
    }
    // Comments on owned lines stay where they were.
    assert!(saved.contains("status: completed   # derived\n") || saved.contains("status: failed   # derived\n"));
    assert!(saved.contains("        status: failed   # keep this comment\n"), "{saved}");
    insta::assert_snapshot!("commented", saved);
}

#[test]
fn flow_style_is_edited_inside_the_braces() {
    let text = fixture("flow.yaml");
    let saved = edit_everything("flow", &text);
    insta::assert_snapshot!("flow", saved);
    // The quoting style of an existing value is kept.
    assert!(saved.contains("status: \"failed\""), "{saved}");
    assert!(saved.contains("status: 'completed'"), "{saved}");
}

#[test]
fn pyyaml_dumped_plans_keep_their_layout() {
    let text = fixture("pyyaml.yaml");
    let saved = edit_everything("pyyaml", &text);
    let (removed, added) = changed_lines(&text, &saved);
    for line in removed.iter().chain(&added) {
        // A folded multi-line value is replaced whole: its continuation line goes too.
        assert!(is_owned_line(line) || line.trim_start().starts_with("line 42"), "{line:?}");
    }
    insta::assert_snapshot!("pyyaml", saved);
}

#[test]
fn crlf_files_stay_crlf() {
    let text = fixture("commented.yaml").replace('\n', "\r\n");
    let saved = edit_everything("crlf", &text);
    assert!(!saved.replace("\r\n", "").contains('\n'), "a bare LF was written into a CRLF file");
    assert_eq!(saved.replace("\r\n", "\n"), edit_everything("lf", &fixture("commented.yaml")));
}

#[test]
fn unicode_survives() {
    let text = fixture("unicode.yaml");
    let saved = edit_everything("unicode", &text);
    insta::assert_snapshot!("unicode", saved);
}

#[test]
fn a_file_without_final_newline_gets_fields_appended_cleanly() {
    let text = "sections:\n- id: s\n  tasks:\n  - id: a\n    name: A";
    let saved = edit_everything("no-newline", text);
    assert!(saved.starts_with("sections:\n- id: s\n  status: "), "{saved}");
    assert!(saved.contains("    name: A\n    status: completed\n    attempts: 2\n"), "{saved}");
}

#[test]
fn ids_keep_their_source_text() {
    let text = fixture("commented.yaml");
    let plan = parse_plan(&text).unwrap();
    let ids: Vec<&str> = plan.tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1.1", "1.10", "2.1"]);
    assert_eq!(plan.task("1.10").unwrap().depends_on, [TaskId::from("1.1")]);
    assert_eq!(plan.task("2.1").unwrap().depends_on, [TaskId::from("1.10")]);
}

#[test]
fn an_empty_value_is_filled_after_its_colon() {
    let text = "sections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    last_error:\n    status: pending\n";
    let (_d, path) = write_temp(text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_text("a", TaskField::LastError, "boom").unwrap();
    assert!(f.text().contains("    last_error: boom\n    status: pending\n"), "{}", f.text());
}

#[test]
fn section_status_is_derived_from_tasks() {
    let text = fixture("commented.yaml");
    let (_d, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1.1", Status::InProgress).unwrap();
    assert_eq!(f.plan().sections[0].status, Some(Status::InProgress));
    f.set_status("1.1", Status::Completed).unwrap();
    assert_eq!(f.plan().sections[0].status, Some(Status::InProgress));
    f.set_status("1.10", Status::Completed).unwrap();
    assert_eq!(f.plan().sections[0].status, Some(Status::Completed));
    // phase-2 had no status line and nothing happened in it: none is added.
    assert_eq!(f.plan().sections[1].status, None);
    f.set_status("2.1", Status::Failed).unwrap();
    assert_eq!(f.plan().sections[1].status, Some(Status::Failed));
    // Inserted after the section's name, at the section's indentation.
    assert!(f.text().contains("  - id: phase-2\n    name: Widget\n    status: failed\n    tasks:\n"), "{}", f.text());
}

#[test]
fn unknown_task_is_an_error_and_changes_nothing() {
    let text = fixture("flow.yaml");
    let (_d, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    let e = f.set_status("1.1", Status::Completed).unwrap_err();
    assert!(matches!(e, PlanError::UnknownTask { .. }));
    assert_eq!(f.text(), text);
}

#[test]
fn save_rebases_onto_an_agents_edit() {
    let text = fixture("commented.yaml");
    let (_d, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1.1", Status::InProgress).unwrap();
    f.save().unwrap();
    f.set_status("1.1", Status::Completed).unwrap();
    f.set_attempts("1.1", 1).unwrap();
    // Meanwhile the agent split 2.1 and reworded 1.10's description, without saying so.
    let disk = fs::read_to_string(&path).unwrap();
    let edited = disk.replace("        name: Seed data\n", "        name: Seed data\n        description: Agent's words\n")
        + "      - id: 2.1b\n        name: Second half\n        status: pending\n";
    fs::write(&path, &edited).unwrap();
    assert_eq!(f.save().unwrap(), SaveOutcome::Rebased);
    let saved = fs::read_to_string(&path).unwrap();
    let plan = parse_plan(&saved).unwrap();
    assert_eq!(plan.task("1.1").unwrap().status, Status::Completed);
    assert_eq!(plan.task("1.1").unwrap().attempts, 1);
    assert_eq!(plan.task("1.10").unwrap().description.as_deref(), Some("Agent's words"));
    assert!(plan.task("2.1b").is_some(), "the agent's new task was lost:\n{saved}");
}

#[test]
fn save_keeps_an_invalid_edit_aside_and_writes_the_last_good_plan() {
    let text = fixture("commented.yaml");
    let (dir, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1.1", Status::Completed).unwrap();
    let broken = text.replace("depends_on: [1.1]", "depends_on: [9.9]");
    fs::write(&path, &broken).unwrap();
    let SaveOutcome::RejectedEdit { kept_at, diagnostics } = f.save().unwrap() else {
        panic!("an invalid edit was not rejected");
    };
    assert!(diagnostics[0].message.contains("'9.9'"), "{diagnostics:?}");
    assert_eq!(fs::read_to_string(&kept_at).unwrap(), broken, "the agent's text was not kept");
    assert!(kept_at.starts_with(dir.path()));
    let saved = fs::read_to_string(&path).unwrap();
    assert_eq!(parse_plan(&saved).unwrap().task("1.1").unwrap().status, Status::Completed);
}

#[test]
fn reload_takes_an_announced_edit() {
    let text = fixture("flow.yaml");
    let (_d, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1", Status::InProgress).unwrap();
    fs::write(&path, text.replace("name: Second,", "name: Second (split),")).unwrap();
    f.reload().unwrap();
    assert_eq!(f.plan().task("2").unwrap().name, "Second (split)");
    assert_eq!(f.plan().task("1").unwrap().status, Status::InProgress, "pending change lost");
    fs::write(&path, "sections: [").unwrap();
    assert!(matches!(f.reload(), Err(PlanError::Invalid { .. })));
    assert_eq!(f.plan().task("2").unwrap().name, "Second (split)", "a bad reload changed the plan");
}

// ---- validation: one test per kind of problem ----

fn problems(src: &str) -> Vec<Diagnostic> {
    match parse_plan(src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(d) => d,
    }
}

fn one(src: &str) -> Diagnostic {
    let d = problems(src);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

const HEAD: &str = "meta:\n  name: P\nsections:\n- id: s\n  name: S\n  tasks:\n";

#[test]
fn yaml_syntax_errors_have_line_and_column() {
    let d = one(&format!("{HEAD}  - id: '1'\n    name: [unclosed\n"));
    assert!(d.message.starts_with("YAML syntax error"), "{d:?}");
    assert!(d.line >= 8 && d.column > 0, "{d:?}");
}

#[test]
fn a_colon_in_an_unquoted_value_says_to_quote_it() {
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    description: Add it. Files: src/a.ts\n"));
    assert_eq!(d.line, 9);
    assert!(d.help.contains("put the whole value in quotes"), "{d:?}");
}

#[test]
fn a_tab_inside_a_block_scalar_is_fine() {
    let src = format!("{HEAD}  - id: '1'\n    name: x\n    description: |\n      build:\n      \tgo build ./...\n");
    let plan = parse_plan(&src).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(plan.task("1").unwrap().description.as_deref().unwrap().contains("\tgo build"));
}

#[test]
fn tabs_are_named() {
    let d = one(&format!("{HEAD}  - id: '1'\n\tname: x\n"));
    assert_eq!((d.line, d.message.as_str()), (8, "a tab in the indentation"));
    assert!(d.help.contains("spaces"));
}

#[test]
fn missing_required_fields() {
    let d = one("meta:\n  name: P\n");
    assert!(d.message.contains("no `sections`"), "{d:?}");
    let d = one(&format!("{HEAD}  - name: nameless\n"));
    assert_eq!(d.line, 7);
    assert!(d.message.contains("no `id`"), "{d:?}");
    let d = one(&format!("{HEAD}  - id: '1'\n    status: pending\n"));
    assert!(d.message.contains("task '1' has no `name`"), "{d:?}");
    let d = one("sections:\n- id: s\n");
    assert!(d.message.contains("section 's' has no `tasks`"), "{d:?}");
}

#[test]
fn wrong_types() {
    let d = one("sections:\n  id: s\n");
    assert!(d.message.contains("`sections` must be a list, found a mapping"), "{d:?}");
    assert_eq!(d.line, 2);
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    attempts: many\n"));
    assert!(d.message.contains("`attempts` of task '1' must be a whole number (0 or more), found `many`"), "{d:?}");
    assert_eq!(d.line, 9);
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    depends_on: '0'\n"));
    assert!(d.message.contains("`depends_on` of task '1' must be a list"), "{d:?}");
    assert!(d.help.contains("depends_on: ['1.1', '1.2']"), "{d:?}");
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    max_attempts: 0\n"));
    assert!(d.message.contains("at least 1, found `0`"), "{d:?}");
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    attempts: {{n: 1}}\n"));
    assert!(d.message.contains("must be a whole number (0 or more), found a mapping"), "{d:?}");
    let d = one("- a\n- b\n");
    assert!(d.message.contains("must be a mapping"), "{d:?}");
}

#[test]
fn unknown_status_values() {
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    status: done\n"));
    assert_eq!(d.line, 9);
    assert!(d.message.contains("unknown status `done` for task '1'; did you mean `completed`?"), "{d:?}");
    assert!(d.help.contains("write `status: completed`"), "{d:?}");
    assert!(d.help.contains("pending, in_progress, completed, verified, failed, skipped, suspended, validation_exhausted"));
    for (word, meant) in [("complete", "completed"), ("finished", "completed"), ("In-Progress", "in_progress"), ("faild", "failed"), ("todo", "pending"), ("verifed", "verified")] {
        let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    status: {word}\n"));
        assert!(d.message.contains(&format!("did you mean `{meant}`?")), "{word}: {d:?}");
    }
    let d = one(&format!("{HEAD}  - id: '1'\n    name: x\n    status: banana\n"));
    assert!(!d.message.contains("did you mean"), "{d:?}");
}

#[test]
fn duplicate_ids() {
    let d = one(&format!("{HEAD}  - id: 1.1\n    name: a\n  - id: '1.1'\n    name: b\n"));
    assert_eq!(d.line, 9);
    assert!(d.message.contains("duplicate task id '1.1' (first used on line 7)"), "{d:?}");
    // 1.1 and 1.10 are different ids.
    assert!(parse_plan(&format!("{HEAD}  - id: 1.1\n    name: a\n  - id: 1.10\n    name: b\n")).is_ok());
}

#[test]
fn unknown_and_self_dependencies() {
    let d = one(&format!("{HEAD}  - id: '1.1'\n    name: a\n    depends_on: ['1.9']\n"));
    assert_eq!(d.line, 9);
    assert!(d.message.contains("task '1.1' depends on '1.9', which is not a task"), "{d:?}");
    let d = one(&format!("{HEAD}  - id: '1.1'\n    name: a\n    depends_on:\n    - '1.1'\n"));
    assert_eq!(d.line, 10);
    assert!(d.message.contains("depends on itself"), "{d:?}");
}

#[test]
fn cycles_are_printed() {
    let d = one(&format!(
        "{HEAD}  - {{id: '1.1', name: a, depends_on: ['1.3']}}\n  - {{id: '1.2', name: b, depends_on: ['1.1']}}\n  - {{id: '1.3', name: c, depends_on: ['1.2']}}\n"
    ));
    assert_eq!(d.message, "dependency cycle: 1.1 → 1.3 → 1.2 → 1.1");
    assert_eq!(d.line, 7);
}

#[test]
fn duplicate_keys() {
    let d = one(&format!("{HEAD}  - id: '1'\n    name: a\n    name: b\n"));
    assert!(d.message.contains("the key `name` appears twice"), "{d:?}");
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let src = format!(
        "{HEAD}  - id: '1'\n    name: a\n    status: done\n  - id: '1'\n    name: b\n    depends_on: ['7']\n  - id: '3'\n    attempts: -1\n"
    );
    let d = problems(&src);
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(d.len(), 5, "{msgs:#?}");
    let lines: Vec<usize> = d.iter().map(|d| d.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn rendered_errors_name_file_line_and_fix() {
    let err = PlanError::Invalid {
        path: "plans/p.yaml".into(),
        diagnostics: problems(&format!("{HEAD}  - id: '1'\n    name: x\n    status: done\n")),
    };
    insta::assert_snapshot!(err.render(), @r"
    error: plans/p.yaml:9:13: unknown status `done` for task '1'; did you mean `completed`?
      help: write `status: completed` (the statuses are: pending, in_progress, completed, verified, failed, skipped, suspended, validation_exhausted)
    plans/p.yaml is not a valid plan (1 problem); nothing was run or changed
    ");
}

#[test]
fn tasks_added_in_another_copy_are_merged_after_their_neighbour() {
    let text = fixture("commented.yaml");
    let (_d, path) = write_temp(&text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1.1", Status::Completed).unwrap();
    // The agent's copy (written at another indentation) splits 1.10 and adds a section.
    let theirs = "sections:\n- id: phase-1\n  tasks:\n  - id: 1.1\n    name: Database schema\n  - id: 1.10\n    name: Seed data\n  - id: 1.10b\n    name: Seed more\n    depends_on: [1.10]\n    # a comment of theirs\n- id: phase-2\n  tasks:\n  - id: '2.0'\n    name: Before 2.1\n  - id: '2.1'\n    name: Render the widget\n- id: phase-3\n  name: New\n  tasks:\n  - id: '3.1'\n    name: Added section task\n";
    let added = f.merge_added_tasks(theirs).unwrap();
    let ids: Vec<&str> = added.iter().map(|t| t.as_str()).collect();
    assert_eq!(ids, ["1.10b", "2.0", "3.1"]);
    let plan = f.plan();
    let order: Vec<&str> = plan.tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(order, ["1.1", "1.10", "1.10b", "2.0", "2.1", "3.1"]);
    assert_eq!(plan.task("1.1").unwrap().status, Status::Completed, "our own state was lost");
    assert_eq!(plan.task("1.10b").unwrap().depends_on, [TaskId::from("1.10")]);
    // Copied as written, at our indentation (a comment after the item is not part of it).
    assert!(f.text().contains("        attempts: 0\n      - id: 1.10b\n        name: Seed more\n        depends_on: [1.10]\n  - id: phase-2\n"), "{}", f.text());
    // Merging the same copy again adds nothing.
    assert!(f.merge_added_tasks(theirs).unwrap().is_empty());
}

#[test]
fn flow_mappings_with_comments_inside_take_new_fields_before_the_comment() {
    let text = "sections:\n- {id: s, name: S, tasks: [{id: '1', name: a}]  # c\n  }\n";
    let (_d, path) = write_temp(text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_status("1", Status::InProgress).unwrap();
    f.set_attempts("1", 1).unwrap();
    assert_eq!(f.plan().task("1").unwrap().status, Status::InProgress);
    assert_eq!(f.plan().sections[0].status, Some(Status::InProgress));
    assert!(f.text().contains("# c\n  }"), "the comment moved: {}", f.text());
    let empty = "sections:\n- id: s\n  tasks:\n  - {}\n";
    assert!(parse_plan(empty).is_err());
}

#[test]
fn anchored_and_tagged_nodes_are_edited_in_place() {
    let text = "sections:\n- id: s\n  tasks:\n  - &t1 {id: '1', name: a}\n  - id: '2'\n    name: b\n    last_error: &e |\n      old\n    description: !!str |\n      keep me\n";
    let (_d, path) = write_temp(text);
    let mut f = PlanFile::load(&path).unwrap();
    f.set_attempts("1", 2).unwrap();
    f.set_text("2", TaskField::LastError, "new").unwrap();
    f.set_attempts("2", 1).unwrap();
    let plan = f.plan();
    assert_eq!(plan.task("1").unwrap().attempts, 2);
    assert_eq!(plan.task("2").unwrap().last_error.as_deref(), Some("new"));
    assert_eq!(plan.task("2").unwrap().description.as_deref(), Some("keep me\n"));
    assert!(f.text().contains("- &t1 {id: '1', name: a, attempts: 2}"), "{}", f.text());
    assert!(f.text().contains("last_error: &e \"new\"") || f.text().contains("last_error: &e new"), "{}", f.text());
}

#[test]
fn a_task_added_to_an_empty_section_or_beside_a_moved_task_is_merged() {
    let ours = "sections:\n- id: s1\n  tasks:\n  - id: '1'\n    name: a\n  - id: '2'\n    name: b\n- id: s2\n  name: Empty\n  tasks: []\n";
    let (_d, path) = write_temp(ours);
    let mut f = PlanFile::load(&path).unwrap();
    // The agent filled s2, and moved '2' into a new section s3 next to a new '3'.
    let theirs = "sections:\n- id: s1\n  tasks:\n  - id: '1'\n    name: a\n- id: s2\n  name: Empty\n  tasks:\n  - id: 's2.1'\n    name: filled\n- id: s3\n  name: New\n  tasks:\n  - id: '2'\n    name: b\n  - id: '3'\n    name: c\n";
    let added = f.merge_added_tasks(theirs).unwrap();
    let ids: Vec<&str> = added.iter().map(|t| t.as_str()).collect();
    assert_eq!(ids, ["s2.1", "3"]);
    let order: Vec<&str> = f.plan().tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(order, ["1", "2", "s2.1", "3"], "{}", f.text());
    assert_eq!(f.plan().section_of("s2.1").unwrap().id, "s2");
    assert_eq!(f.plan().section_of("3").unwrap().id, "s3");
    assert_eq!(f.plan().section_of("3").unwrap().name.as_deref(), Some("New"));
}

// Hostile input: plans and values meant to corrupt, crash or exhaust baton.

/// Every owned text field set to `value` on a flow-style task; each must read back exactly,
/// and the neighbours must be untouched.
#[test]
fn flow_style_tasks_take_any_text() {
    let text = "sections:\n- id: s\n  tasks:\n  - {id: a, name: A, status: pending}\n  - {id: b, name: B, status: pending, result_message: old}\n  - {id: c, name: C, status: pending, last_error: 'x'}\n";
    let hostile = [
        "done, then [more] {and} more",
        "a: b # not a comment",
        "[starts with a bracket",
        "{starts with a brace}",
        "# starts with a hash",
        "- dash, ? question",
        "ends with colon:",
        "line one\nline two\n  indented\n",
        "'single' and \"double\" quotes \\ backslash",
        "tab\there, bell\u{7}, nul\u{0}, del\u{7f}, \u{2028}\u{feff}\u{fffe}",
        " leading and trailing spaces ",
        "*alias &anchor !tag %directive @at `tick` |pipe >gt",
        "true",
        "",
        &"long, text ".repeat(2000),
    ];
    for value in hostile {
        for id in ["a", "b", "c"] {
            for field in [TaskField::ResultMessage, TaskField::LastError, TaskField::CompletedAt] {
                let (_d, path) = write_temp(text);
                let mut f = PlanFile::load(&path).unwrap();
                let before = f.plan().clone();
                f.set_status(id, Status::Completed).unwrap();
                f.set_text(id, field, value).unwrap_or_else(|e| panic!("{id} {field} {value:?}: {}", e.render()));
                f.save().unwrap();
                let after = parse_plan(&fs::read_to_string(&path).unwrap()).unwrap_or_else(|d| panic!("{value:?}: {d:?}"));
                assert_user_fields_equal(&before, &after);
                for (t0, t1) in before.tasks().zip(after.tasks()) {
                    if t0.id.as_str() == id {
                        assert_eq!(t1.status, Status::Completed);
                        let got = match field {
                            TaskField::ResultMessage => &t1.result_message,
                            TaskField::LastError => &t1.last_error,
                            _ => &t1.completed_at,
                        };
                        assert_eq!(got.as_deref(), Some(value), "{id} {field}");
                    } else {
                        assert_eq!((t0.status, &t0.result_message, &t0.last_error), (t1.status, &t1.result_message, &t1.last_error));
                    }
                }
            }
        }
    }
}

#[test]
fn an_owned_field_shared_through_an_alias_is_refused() {
    let text = "sections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    status: &s pending\n  - id: b\n    name: B\n    status: *s\n";
    let d = parse_plan(text).unwrap_err();
    assert!(d.iter().any(|d| d.line == 9 && d.message.contains("an owned field cannot be an alias or anchor")), "{d:?}");
    assert!(d.iter().any(|d| d.line == 6 && d.message.contains("alias or anchor")), "the anchor too: {d:?}");
    // A task that inherits its status from another task through a merge is refused as well.
    let merged = "sections:\n- id: s\n  tasks:\n  - &a {id: a, name: A, status: pending}\n  - <<: *a\n    id: b\n    name: B\n";
    let d = parse_plan(merged).unwrap_err();
    assert!(d.iter().any(|d| d.message.contains("`status` of task 'b' comes from a `<<` merge")), "{d:?}");
    // An anchor that no alias repeats is harmless.
    let lone = "sections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    status: &s pending\n";
    assert!(parse_plan(lone).is_ok());
    // A section's status shared with a task's is refused too.
    let section = "sections:\n- id: s\n  status: *s\n  tasks:\n  - {id: a, name: A, status: &s pending}\n";
    assert!(parse_plan(section).is_err());
}

#[test]
fn cr_only_line_endings_are_refused_at_the_right_line() {
    let text = "sections:\n- id: s\n  tasks:\n  - id: a\r    name: A\r";
    let d = parse_plan(text).unwrap_err();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].line, d[0].column), (4, 10), "{d:?}");
    assert!(d[0].message.contains("carriage return"), "{d:?}");
    let all_cr = "sections:\r- id: s\r  tasks:\r  - {id: a, name: A}\r";
    assert_eq!(parse_plan(all_cr).unwrap_err()[0].line, 1);
    // CRLF stays fine.
    assert!(parse_plan(&"sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n".replace('\n', "\r\n")).is_ok());
}

#[test]
fn an_alias_bomb_is_refused_without_expanding_it() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    text.push_str("sections: []\n");
    let d = parse_plan(&text).unwrap_err();
    assert!(d[0].message.contains("aliases"), "{d:?}");
    assert!(d[0].line >= 2, "{d:?}");
    // One huge anchored text repeated is refused the same way.
    let big = format!("t: &t '{}'\nr: [{}]\nsections: []\n", "x".repeat(1 << 20), ["*t"; 20].join(", "));
    assert!(parse_plan(&big).unwrap_err()[0].message.contains("aliases"));
}

#[test]
fn deep_nesting_and_long_chains_do_not_exhaust_the_stack() {
    // Run where the stack is small, so any recursion on the input would show.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let deep = format!("x: {}{}\nsections: []\n", "[".repeat(100_000), "]".repeat(100_000));
            let d = parse_plan(&deep).unwrap_err();
            assert!(d[0].message.contains("levels deep") || d[0].message.contains("YAML"), "{d:?}");
            let deep_block: String = (0..5000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
            assert!(parse_plan(&deep_block).is_err());
            let n = 30_000;
            let mut cycle = String::from("sections:\n- id: s\n  tasks:\n");
            for i in 0..n {
                cycle.push_str(&format!("  - {{id: t{i}, name: T, depends_on: [t{}]}}\n", (i + 1) % n));
            }
            let d = parse_plan(&cycle).unwrap_err();
            assert_eq!(d.len(), 1, "one cycle");
            assert!(d[0].message.starts_with("dependency cycle: t0 → t1"), "{}", d[0].message);
            assert!(d[0].message.ends_with("(30000 tasks)"), "{}", &d[0].message);
            let merges = |n: usize| -> String {
                (0..n)
                    .map(|i| if i == 0 { "m0: &m0 {k: v}\n".to_string() } else { format!("m{i}: &m{i} {{<<: *m{}}}\n", i - 1) })
                    .collect()
            };
            let e = yaml::parse(&merges(3000)).unwrap_err();
            assert!(e.message.contains("levels deep"), "{e:?}");
            let root = yaml::parse(&merges(50)).unwrap();
            assert_eq!(root.get("m49").unwrap().get("k").unwrap().as_scalar(), Some("v"));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn task_ids_must_fit_a_file_or_branch_name() {
    let plan = |id: &str| format!("sections:\n- id: s\n  tasks:\n  - id: {}\n    name: A\n", yaml::double_quoted(id));
    let long = "x".repeat(300);
    let d = parse_plan(&plan(&long)).unwrap_err();
    assert!(d[0].message.contains("too long (300 characters; at most 64"), "{d:?}");
    assert_eq!(d[0].line, 4);
    assert!(parse_plan(&plan(&"€".repeat(64))).is_err(), "128 bytes at most");
    assert!(parse_plan(&plan(&"x".repeat(64))).is_ok());
    for bad in ["a/b", "a\\b", "a\nb", "tab\t"] {
        let d = parse_plan(&plan(bad)).unwrap_err();
        assert!(d[0].message.contains("cannot be part of a file or branch name"), "{bad:?}: {d:?}");
    }
    assert!(parse_plan(&plan("fix login")).is_ok(), "spaces are made safe in branch names");
}

#[test]
fn diagnostics_print_the_plans_text_as_text() {
    let d = parse_plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, status: \"\\e]0;x\\a\"}\n").unwrap_err();
    let shown = d[0].render("plan.yaml");
    assert!(shown.contains("unknown status"), "{shown}");
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}'), "{shown:?}");
}

#[test]
fn similar_ids_name_the_close_ones_first() {
    let p = parse_plan("sections:\n- id: s\n  tasks:\n  - {id: '3.2', name: A}\n  - {id: '3.12', name: B}\n  - {id: add-login, name: C}\n  - {id: '9', name: D}\n").unwrap();
    let ids = |q: &str| p.similar_ids(q).into_iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(ids("3.3"), ["3.2"]);
    assert_eq!(ids("3.1"), ["3.2", "3.12"]);
    assert_eq!(ids("Add-Logn"), ["add-login"]);
    assert!(ids("zzzz").is_empty());
}

#[test]
fn dependencies_is_read_as_depends_on() {
    let src = format!("{HEAD}  - id: a\n    name: A\n  - id: b\n    name: B\n    dependencies: [a]\n  - id: c\n    name: C\n    depends_on: [a]\n    dependencies: ['a']\n");
    let plan = parse_plan(&src).unwrap();
    assert_eq!(plan.task("b").unwrap().depends_on, [TaskId::from("a")]);
    assert_eq!(plan.task("c").unwrap().depends_on, [TaskId::from("a")]);
    assert_eq!(plan.spellings(), ["task b: `dependencies:` read as `depends_on:`"]);
    // An unknown id under the other spelling is found, at its line.
    let d = one(&format!("{HEAD}  - id: a\n    name: A\n    dependencies: [zz]\n"));
    assert_eq!(d.line, 9);
    assert!(d.message.contains("depends on 'zz'"), "{d:?}");
}

#[test]
fn both_dependency_spellings_differing_is_an_error() {
    let d = one(&format!("{HEAD}  - id: a\n    name: A\n  - id: b\n    name: B\n  - id: c\n    name: C\n    depends_on: [a]\n    dependencies: [a, b]\n"));
    assert_eq!(d.line, 14);
    assert!(d.message.contains("task 'c' has both `depends_on` and `dependencies`, and they differ"), "{d:?}");
}

#[test]
fn exclusive_resource_is_read_as_a_list_of_one() {
    let plan = parse_plan(&format!("{HEAD}  - id: a\n    name: A\n    exclusive_resource: database\n  - id: b\n    name: B\n    exclusive_resource: [db, port]\n")).unwrap();
    assert_eq!(plan.task("a").unwrap().exclusive_resources, ["database"]);
    assert_eq!(plan.task("b").unwrap().exclusive_resources, ["db", "port"]);
    assert_eq!(plan.spellings(), ["tasks a, b: `exclusive_resource:` read as `exclusive_resources:`"]);
    let d = one(&format!("{HEAD}  - id: a\n    name: A\n    exclusive_resources: [db]\n    exclusive_resource: cache\n"));
    assert!(d.message.contains("both `exclusive_resources` and `exclusive_resource`"), "{d:?}");
}

#[test]
fn near_miss_keys_are_warnings_not_errors() {
    let src = "meta:\n  name: P\n  max_attempt: 3\n  validation: {enabled: true}\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n  - id: b\n    name: B\n    depends-on: [a]\n    paralel_group: g\n    timeout: 60\n    dependson: [a]\n    dependency: a\n    max_attempt: 2\n    agent: coder\n    model_used: opus\n    validation_findings: [x]\n    last_attempt: 2026-01-01\n    my_own_note: hi\n".to_string();
    let plan = parse_plan(&src).unwrap();
    let got: Vec<(usize, &str)> = plan.warnings.iter().map(|w| (w.line, w.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, "meta has an unknown key `max_attempt`; did you mean `max_attempts_default`?"),
            (13, "task 'b' has an unknown key `depends-on`; did you mean `depends_on`?"),
            (14, "task 'b' has an unknown key `paralel_group`; did you mean `parallel_group`?"),
            (15, "task 'b' has an unknown key `timeout`; did you mean `timeout_seconds`?"),
            (16, "task 'b' has an unknown key `dependson`; did you mean `depends_on`?"),
            (17, "task 'b' has an unknown key `dependency`; did you mean `depends_on`?"),
            (18, "task 'b' has an unknown key `max_attempt`; did you mean `max_attempts`?"),
        ]
    );
    assert!(plan.warnings[1].help.contains("rename it to `depends_on`"), "{:?}", plan.warnings[1]);
    // A near miss orders nothing: b has no dependencies.
    assert!(plan.task("b").unwrap().depends_on.is_empty());
}

#[test]
fn the_original_tools_statuses() {
    let src = format!("{HEAD}  - id: a\n    name: A\n    status: verified\n  - id: b\n    name: B\n    status: pending\n    depends_on: [a]\n  - id: c\n    name: C\n    status: suspended\n  - id: d\n    name: D\n    status: validation_exhausted\n  - id: e\n    name: E\n    depends_on: [c]\n  - id: f\n    name: F\n    depends_on: [d]\n");
    let plan = parse_plan(&src).unwrap();
    assert!(crate::plan::graph::is_ready(&plan, plan.task("b").unwrap()), "a verified dependency counts as done");
    assert!(!crate::plan::graph::is_ready(&plan, plan.task("c").unwrap()), "a suspended task does not run");
    let blocked: Vec<String> = crate::plan::graph::blocked(&plan).into_iter().map(|(id, w)| format!("{id}: {w}")).collect();
    assert_eq!(
        blocked,
        [
            "c: it is suspended: it waits for a person (`baton retry` makes it pending)",
            "e: waits for 'c'",
            "f: its dependency 'd' ran out of validation attempts (validation_exhausted)",
        ]
    );
}

#[test]
fn section_status_follows_the_new_statuses() {
    use crate::plan::model::derived_section_status;
    let with = |statuses: &[&str]| {
        let tasks: String = statuses.iter().enumerate().map(|(i, s)| format!("  - id: t{i}\n    name: T\n    status: {s}\n")).collect();
        let plan = parse_plan(&format!("{HEAD}{tasks}")).unwrap();
        derived_section_status(&plan.sections[0].tasks).map(|s| s.as_str())
    };
    assert_eq!(with(&["verified", "verified"]), Some("verified"));
    assert_eq!(with(&["verified", "completed"]), Some("completed"));
    assert_eq!(with(&["completed", "suspended"]), Some("suspended"));
    assert_eq!(with(&["pending", "suspended"]), Some("pending"));
    assert_eq!(with(&["completed", "validation_exhausted"]), Some("failed"));
    assert_eq!(with(&["verified", "pending"]), Some("in_progress"));
}

#[test]
fn conflict_markers_are_named_with_their_line() {
    let src = format!("{HEAD}  - id: a\n    name: A\n<<<<<<< Updated upstream\n    status: completed\n=======\n    status: pending\n>>>>>>> Stashed changes\n");
    let d = problems(&src);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].message, "the plan has unresolved git conflict markers at line 9 (to line 13)");
    assert_eq!(d[0].line, 9);
    // Two conflicts, two problems; a stray end marker alone is one too.
    let two = format!("{HEAD}<<<<<<< HEAD\n  - id: a\n=======\n  - id: b\n>>>>>>> x\n<<<<<<< HEAD\n    name: A\n=======\n>>>>>>> x\n");
    assert_eq!(problems(&two).iter().map(|d| d.line).collect::<Vec<_>>(), [7, 12]);
    let stray = format!("{HEAD}  - id: a\n    name: A\n>>>>>>> theirs\n");
    assert_eq!(one(&stray).line, 9);
    // A line of equals signs alone is not a conflict (it is a YAML problem or text).
    assert!(parse_plan(&format!("{HEAD}  - id: a\n    name: A\n    description: |\n      Title\n      =======\n")).is_ok());
}

#[test]
fn conflict_markers_after_a_byte_order_mark_or_longer_than_seven() {
    let bom = format!("\u{feff}<<<<<<< HEAD\n{HEAD}=======\n>>>>>>> theirs\n");
    assert_eq!(problems(&bom)[0].message, "the plan has unresolved git conflict markers at line 1 (to line 9)");
    let eight = format!("{HEAD}  - id: a\n    name: A\n<<<<<<<< HEAD\n    status: pending\n========\n    status: completed\n>>>>>>>> theirs\n");
    assert_eq!(one(&eight).message, "the plan has unresolved git conflict markers at line 9 (to line 13)");
}

#[test]
fn an_exclusive_resource_needs_a_name() {
    let d = one(&format!("{HEAD}  - id: a\n    name: A\n    exclusive_resource: ''\n"));
    assert!(d.message.contains("names an empty resource"), "{d:?}");
    let d = one(&format!("{HEAD}  - id: a\n    name: A\n    exclusive_resource: {{a: b}}\n"));
    assert!(d.message.contains("`exclusive_resource` of task 'a' must be a resource name"), "{d:?}");
}

#[test]
fn many_keys_in_one_mapping_are_checked_in_linear_time() {
    // 20,000 keys: a scan per key would take minutes in a debug build.
    let keys: String = (0..20_000).map(|i| format!("    k{i}: x\n")).collect();
    let plan = parse_plan(&format!("{HEAD}  - id: a\n    name: A\n{keys}")).unwrap();
    assert_eq!(plan.tasks().count(), 1);
}

#[test]
fn a_plan_budget_is_read_under_either_name_and_checked() {
    let with = |meta: &str| parse_plan(&format!("meta:\n  name: P\n{meta}sections:\n- id: s\n  name: S\n  tasks:\n  - {{id: a, name: A}}\n"));
    assert_eq!(with("  budget_usd: 12.5\n").unwrap().meta.budget_usd, Some(12.5));
    assert_eq!(with("  budget_limit_usd: 3\n").unwrap().meta.budget_usd, Some(3.0), "the original tool's name");
    assert_eq!(with("  budget_usd: $0\n").unwrap().meta.budget_usd, Some(0.0));
    assert_eq!(with("  budget_usd: 2\n  budget_limit_usd: 2.0\n").unwrap().meta.budget_usd, Some(2.0));
    let both = with("  budget_usd: 2\n  budget_limit_usd: 5\n").unwrap_err();
    assert!(both.iter().any(|d| d.line == 4 && d.message.contains("both `budget_usd` and `budget_limit_usd`")), "{both:?}");
    for bad in ["-1", "lots", "[1]", ".nan", "1e300"] {
        let e = with(&format!("  budget_usd: {bad}\n")).unwrap_err();
        assert!(e.iter().any(|d| d.line == 3 && d.message.contains("an amount of US dollars")), "{bad}: {e:?}");
    }
    // A budget baton would not read would let the plan spend without one: refused.
    for near in ["budget", "max_cost", "budget-usd", "Budget_USD", "budget_usdd"] {
        let e = with(&format!("  {near}: 5\n")).unwrap_err();
        assert!(e.iter().any(|d| d.line == 3 && d.message.contains("not a budget baton reads; did you mean `budget_usd`?")), "{near}: {e:?}");
    }
}
