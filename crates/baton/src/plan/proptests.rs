//! Property tests of the plan editor: on generated valid plans, in block and flow style and
//! with owned fields already written in every style, any edit of an owned field with any value
//! re-parses to the same plan with only that field changed (and sections' derived status).

use std::fs;

use proptest::prelude::*;

use super::*;

/// How an owned field stands in a generated task before the edit.
#[derive(Debug, Clone)]
enum Initial {
    Absent,
    Plain,
    Single,
    Double,
    /// A `|` block (block-style tasks only).
    Block,
    /// `key:` with nothing after it (block-style tasks only).
    Empty,
}

#[derive(Debug, Clone)]
struct GenTask {
    flow: bool,
    message: Initial,
    error: Initial,
    status: bool,
    comment: bool,
    /// Takes `max_attempts` from an anchored mapping through `<<`, and its description from an
    /// alias: sharing that must survive edits of the owned fields next to it.
    shared: bool,
}

fn initial() -> impl Strategy<Value = Initial> {
    prop_oneof![
        Just(Initial::Absent),
        Just(Initial::Plain),
        Just(Initial::Single),
        Just(Initial::Double),
        Just(Initial::Block),
        Just(Initial::Empty),
    ]
}

fn task() -> impl Strategy<Value = GenTask> {
    (any::<bool>(), initial(), initial(), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(flow, message, error, status, comment, shared)| GenTask { flow, message, error, status, comment, shared })
}

fn field_text(key: &str, how: &Initial, flow: bool) -> Option<String> {
    Some(match (how, flow) {
        (Initial::Absent, _) => return None,
        (Initial::Plain, _) => format!("{key}: old text"),
        (Initial::Single, _) => format!("{key}: 'it''s old'"),
        (Initial::Double, _) => format!("{key}: \"old \\\"one\\\"\""),
        (Initial::Block, false) => format!("{key}: |\n      old\n      lines"),
        (Initial::Empty, false) => format!("{key}:"),
        (_, true) => format!("{key}: ~"),
    })
}

fn render_plan(tasks: &[GenTask]) -> String {
    let mut out = String::from(
        "meta:\n  name: generated\n  description: &desc shared words, with [punctuation]\nx-defaults: &d {max_attempts: 4}\nsections:\n- id: s1\n  name: First\n  tasks:\n",
    );
    for (i, t) in tasks.iter().enumerate() {
        if i == tasks.len() / 2 + 1 {
            out.push_str("- id: s2\n  tasks:\n");
        }
        let mut fields = vec![format!("id: t{i}"), format!("name: Task {i}")];
        if t.status {
            fields.push("status: pending".into());
        }
        fields.extend(field_text("result_message", &t.message, t.flow));
        fields.extend(field_text("last_error", &t.error, t.flow));
        if i > 0 {
            fields.push(format!("depends_on: [t{}]", i - 1));
        }
        if t.shared {
            fields.push("<<: *d".into());
            fields.push("description: *desc".into());
        }
        let comment = if t.comment { "  # note" } else { "" };
        if t.flow {
            out.push_str(&format!("  - {{{}}}{comment}\n", fields.join(", ")));
        } else {
            out.push_str(&format!("  - {}{comment}\n", fields[0]));
            for f in &fields[1..] {
                out.push_str(&format!("    {f}\n"));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Status(Status),
    Attempts(u32),
    Text(TaskField, String),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[,\\[\\]{}#:&*!|>'\"%@` \\-?\n\t]{0,12}",
        prop::collection::vec(prop_oneof![Just("a"), Just(", "), Just(": "), Just(" #"), Just("\n"), Just("'"), Just("\""), Just("\\"), Just("[")], 0..10)
            .prop_map(|v| v.concat()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        prop::sample::select(Status::ALL.to_vec()).prop_map(Edit::Status),
        any::<u32>().prop_map(Edit::Attempts),
        (prop::sample::select(vec![TaskField::ResultMessage, TaskField::LastError, TaskField::CompletedAt]), text())
            .prop_map(|(f, s)| Edit::Text(f, s)),
    ]
}

fn owned(t: &Task) -> (Status, u32, Option<String>, Option<String>, Option<String>) {
    (t.status, t.attempts, t.last_error.clone(), t.completed_at.clone(), t.result_message.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_owned_field_edit_changes_only_that_field(
        tasks in prop::collection::vec(task(), 1..5),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..4),
    ) {
        let text = render_plan(&tasks);
        let before = parse_plan(&text).map_err(|d| TestCaseError::fail(format!("generated plan invalid: {d:?}\n{text}")))?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        fs::write(&path, &text).unwrap();
        let mut file = PlanFile::load(&path).unwrap();
        let mut want: Vec<_> = before.tasks().map(owned).collect();
        for (which, edit) in &edits {
            let i = which.index(want.len());
            let id = format!("t{i}");
            match edit {
                Edit::Status(s) => {
                    file.set_status(&id, *s).map_err(|e| TestCaseError::fail(e.render()))?;
                    want[i].0 = *s;
                }
                Edit::Attempts(n) => {
                    file.set_attempts(&id, *n).map_err(|e| TestCaseError::fail(e.render()))?;
                    want[i].1 = *n;
                }
                Edit::Text(field, s) => {
                    file.set_text(&id, *field, s).map_err(|e| TestCaseError::fail(format!("{s:?}: {}", e.render())))?;
                    let slot = match field {
                        TaskField::LastError => &mut want[i].2,
                        TaskField::CompletedAt => &mut want[i].3,
                        _ => &mut want[i].4,
                    };
                    *slot = Some(s.clone());
                }
            }
        }
        file.save().map_err(|e| TestCaseError::fail(e.render()))?;
        let saved = fs::read_to_string(&path).unwrap();
        let after = parse_plan(&saved).map_err(|d| TestCaseError::fail(format!("{d:?}\n{saved}")))?;
        let got: Vec<_> = after.tasks().map(owned).collect();
        prop_assert_eq!(&got, &want, "{}", saved);
        prop_assert_eq!(before.sections.len(), after.sections.len());
        for (a, b) in before.tasks().zip(after.tasks()) {
            prop_assert_eq!(&a.id, &b.id);
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(&a.depends_on, &b.depends_on);
            prop_assert_eq!(&a.description, &b.description);
            prop_assert_eq!(a.max_attempts, b.max_attempts);
        }
        prop_assert_eq!(before.meta.name, after.meta.name);
        prop_assert_eq!(before.meta.description, after.meta.description);
        for s in &after.sections {
            let derived = derived_section_status(&s.tasks);
            prop_assert!(s.status == derived || (s.status.is_none() && derived == Some(Status::Pending)), "{}", saved);
        }
        // Comments survive.
        prop_assert_eq!(text.matches("# note").count(), saved.matches("# note").count());
    }
}
