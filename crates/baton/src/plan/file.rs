//! A plan file on disk and the edits baton makes to it.
//!
//! baton owns a few fields (`status`, `attempts`, `last_error`, `completed_at`,
//! `result_message`, and each section's derived `status`). It changes them by rewriting just
//! their bytes in the source text, or by inserting one line when a field is new; it never
//! re-serialises the document, so comments, quoting, order and layout survive.
//!
//! Agents edit the plan too, sometimes without saying so. Every save first looks at the file on
//! disk: if it changed since baton last read or wrote it, baton re-bases its own changes onto the
//! new text (when that text is a valid plan) instead of overwriting the agent's edit.

use std::path::{Path, PathBuf};

use super::model::{derived_section_status, Plan, Status, TaskId};
use super::yaml::{self, Node, NodeKind, Style};
use super::{parse_with_tree, save, Diagnostic, PlanError};

/// A field of a task that baton owns and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskField {
    Status,
    Attempts,
    LastError,
    CompletedAt,
    ResultMessage,
    /// The model the task last ran with (the original tool's field).
    ModelUsed,
}

impl TaskField {
    pub fn key(self) -> &'static str {
        match self {
            TaskField::Status => "status",
            TaskField::Attempts => "attempts",
            TaskField::LastError => "last_error",
            TaskField::CompletedAt => "completed_at",
            TaskField::ResultMessage => "result_message",
            TaskField::ModelUsed => "model_used",
        }
    }
}

impl std::fmt::Display for TaskField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A value baton writes into a field.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Written bare: status words.
    Word(&'static str),
    Int(u64),
    /// Free text: quoted as needed, in the style the field already had where possible.
    Text(String),
    /// No value: written as a bare `null`, the key kept where it is.
    Null,
}

#[derive(Debug, Clone, PartialEq)]
struct Change {
    task: String,
    field: TaskField,
    value: Value,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    /// Nothing to write: the file already said this.
    Unchanged,
    Saved,
    /// The file had been edited by someone else; baton's changes were applied on top of it.
    Rebased,
    /// The file had been edited into an invalid plan. It was kept at `kept_at`, and baton wrote
    /// the last valid plan with its own changes.
    RejectedEdit {
        kept_at: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

#[derive(Debug)]
pub struct PlanFile {
    path: PathBuf,
    text: String,
    tree: Node,
    plan: Plan,
    /// The file's text as baton last read or wrote it.
    synced: String,
    /// Changes made since the last save, kept to re-base them onto someone else's edit.
    pending: Vec<Change>,
    /// Owned fields someone else changed that baton put back, not yet told.
    restored: Vec<String>,
    /// A task whose owned fields are taken from the file as they are (see
    /// [`PlanFile::from_saved`]).
    theirs: Option<TaskId>,
}

impl PlanFile {
    /// Reads and validates a plan. A plan with problems is an error listing all of them.
    pub fn load(path: &Path) -> Result<PlanFile, PlanError> {
        let text = read(path)?;
        let (plan, tree) = parse_with_tree(&text).map_err(|diagnostics| PlanError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })?;
        Ok(PlanFile {
            path: path.to_path_buf(),
            synced: text.clone(),
            text,
            tree,
            plan,
            pending: Vec::new(),
            restored: Vec::new(),
            theirs: None,
        })
    }

    /// The plan as baton last saved it (`text`), whatever the file says now: its next
    /// [`PlanFile::save`] re-bases onto the file, putting back the fields baton owns — except
    /// those of `except` (the task whose attempt baton was recording: the file's are newer).
    pub fn from_saved(path: &Path, text: &str, except: &str) -> Result<PlanFile, PlanError> {
        let (plan, tree) = parse_with_tree(text).map_err(|diagnostics| PlanError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })?;
        Ok(PlanFile {
            path: path.to_path_buf(),
            synced: text.to_string(),
            text: text.to_string(),
            tree,
            plan,
            pending: Vec::new(),
            restored: Vec::new(),
            theirs: Some(TaskId::from(except)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The current text, with changes not yet saved.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn set_status(&mut self, task: &str, status: Status) -> Result<(), PlanError> {
        self.set(task, TaskField::Status, Value::Word(status.as_str()))
    }

    pub fn set_attempts(&mut self, task: &str, attempts: u32) -> Result<(), PlanError> {
        self.set(task, TaskField::Attempts, Value::Int(attempts.into()))
    }

    /// Sets a text field (`last_error`, `completed_at`, `result_message`).
    pub fn set_text(&mut self, task: &str, field: TaskField, text: &str) -> Result<(), PlanError> {
        self.set(task, field, Value::Text(text.to_string()))
    }

    /// Clears a text field (`completed_at` of a task sent back to pending): its value becomes
    /// `null`, which reads as absent. A field the task does not have is left absent.
    pub fn clear_text(&mut self, task: &str, field: TaskField) -> Result<(), PlanError> {
        let has = match field {
            TaskField::LastError => self.plan.task(task).is_some_and(|t| t.last_error.is_some()),
            TaskField::CompletedAt => self.plan.task(task).is_some_and(|t| t.completed_at.is_some()),
            TaskField::ResultMessage => self.plan.task(task).is_some_and(|t| t.result_message.is_some()),
            TaskField::ModelUsed => self.plan.task(task).is_some_and(|t| t.model_used.is_some()),
            TaskField::Status | TaskField::Attempts => false,
        };
        if !has {
            return Ok(());
        }
        self.set(task, field, Value::Null)
    }

    fn set(&mut self, task: &str, field: TaskField, value: Value) -> Result<(), PlanError> {
        if self.plan.task(task).is_none() {
            return Err(PlanError::UnknownTask {
                path: self.path.clone(),
                id: task.to_string(),
            });
        }
        let change = Change {
            task: task.to_string(),
            field,
            value,
        };
        let parsed = apply(&self.text, &self.tree, &change)
            .and_then(|t| with_section_statuses(&t))
            .map_err(|diagnostics| self.bug(diagnostics))?;
        self.take(parsed);
        self.pending.push(change);
        Ok(())
    }

    /// Reads the file again (after an agent said it changed the plan). Pending changes are
    /// re-based onto the new text. An invalid file is an error and leaves this one as it was.
    pub fn reload(&mut self) -> Result<(), PlanError> {
        let disk = read(&self.path)?;
        let (parsed, restored) = self.rebase(&disk).map_err(|diagnostics| PlanError::Invalid {
            path: self.path.clone(),
            diagnostics,
        })?;
        self.synced = disk;
        self.take(parsed);
        self.restored.extend(restored);
        Ok(())
    }

    /// Writes the plan atomically. See the module doc for what happens when the file was edited
    /// by someone else since baton last read it.
    pub fn save(&mut self) -> Result<SaveOutcome, PlanError> {
        let disk = read(&self.path)?;
        let mut outcome = SaveOutcome::Saved;
        if disk != self.synced {
            match self.rebase(&disk) {
                Ok((parsed, restored)) => {
                    self.take(parsed);
                    self.restored.extend(restored);
                    outcome = SaveOutcome::Rebased;
                }
                Err(diagnostics) => {
                    let kept_at = save::keep_rejected(&self.path, &disk).map_err(|source| PlanError::Write {
                        path: self.path.clone(),
                        source,
                    })?;
                    outcome = SaveOutcome::RejectedEdit { kept_at, diagnostics };
                }
            }
        }
        if self.text == disk {
            self.synced = disk;
            self.pending.clear();
            return Ok(if outcome == SaveOutcome::Saved { SaveOutcome::Unchanged } else { outcome });
        }
        save::write_atomic(&self.path, self.text.as_bytes()).map_err(|source| PlanError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.synced = self.text.clone();
        self.pending.clear();
        Ok(outcome)
    }

    /// The text of `disk` with this file's pending changes applied; changes to tasks that are no
    /// longer in the plan are dropped.
    ///
    /// The fields baton owns stay baton's: where the other edit changed `status` or
    /// `attempts` of a task baton knew, baton's value is put back — except a pending task
    /// marked `skipped`, which an agent may do (the prompt says how). An agent cannot mark
    /// another task done, nor give back attempts. What was put back is kept for
    /// [`PlanFile::take_restored`].
    fn rebase(&self, disk: &str) -> Result<(Parsed, Vec<String>), Vec<Diagnostic>> {
        let (mut plan, mut tree) = parse_with_tree(disk)?;
        let mut text = disk.to_string();
        let mut changes: Vec<Change> = self.pending.clone();
        let mut restored = Vec::new();
        for ours in self.plan.tasks().filter(|t| self.theirs.as_ref() != Some(&t.id)) {
            let Some(theirs) = plan.task(ours.id.as_str()) else { continue };
            let skipped = theirs.status == Status::Skipped && ours.status == Status::Pending;
            if theirs.status != ours.status && !skipped {
                restored.push(format!("{}: status {} → {} (kept {})", ours.id, ours.status, theirs.status, ours.status));
                changes.push(Change { task: ours.id.to_string(), field: TaskField::Status, value: Value::Word(ours.status.as_str()) });
            }
            if theirs.attempts != ours.attempts {
                restored.push(format!("{}: attempts {} → {} (kept {})", ours.id, ours.attempts, theirs.attempts, ours.attempts));
                changes.push(Change { task: ours.id.to_string(), field: TaskField::Attempts, value: Value::Int(ours.attempts.into()) });
            }
        }
        for change in &changes {
            if plan.task(&change.task).is_none() {
                continue;
            }
            text = apply(&text, &tree, change)?;
            (plan, tree) = parse_with_tree(&text)?;
        }
        Ok((with_section_statuses(&text)?, restored))
    }

    /// The owned fields another edit changed and baton put back since the last call, one line
    /// each (`1.2: status pending → completed (kept pending)`).
    pub fn take_restored(&mut self) -> Vec<String> {
        std::mem::take(&mut self.restored)
    }

    /// Merges the tasks and sections that `theirs` (an agent's copy of this plan, e.g. in a
    /// worktree) has and this plan has not, each copied as written and placed after the task
    /// that precedes it there (or first in its section, or in a new section made like theirs).
    /// Nothing else of `theirs` is taken. Returns the added task ids; a task that cannot be
    /// placed is an error naming it.
    pub fn merge_added_tasks(&mut self, theirs: &str) -> Result<Vec<TaskId>, PlanError> {
        let invalid = |diagnostics| PlanError::Invalid { path: self.path.clone(), diagnostics };
        let (their_plan, their_tree) = parse_with_tree(theirs).map_err(invalid)?;
        let their_sections = sections(&their_tree).unwrap_or(&[]);
        let mut added = Vec::new();
        for (si, section) in their_plan.sections.iter().enumerate() {
            let Some(their_section) = their_sections.get(si) else { continue };
            let their_tasks = their_section.get("tasks").and_then(Node::items).unwrap_or(&[]);
            for (ti, task) in section.tasks.iter().enumerate() {
                if self.plan.task(task.id.as_str()).is_some() {
                    continue;
                }
                let Some(node) = their_tasks.get(ti) else { continue };
                let block = item_text(theirs, node);
                let text = self.place_task(theirs, &section.id, &section.tasks[..ti], their_section, node, &block).ok_or_else(|| {
                    PlanError::Invalid {
                        path: self.path.clone(),
                        diagnostics: vec![Diagnostic::new(
                            node.line,
                            node.col,
                            format!("the agent's new task '{}' could not be placed in the plan", task.id),
                            "add it to the plan by hand; its text is in the agent's copy of the plan",
                        )],
                    }
                })?;
                self.replace_text(text)?;
                added.push(task.id.clone());
            }
        }
        Ok(added)
    }

    /// The text with one new task placed; `before` are the tasks that precede it in its section
    /// in the other copy.
    fn place_task(
        &self,
        theirs: &str,
        section_id: &str,
        before: &[crate::plan::Task],
        their_section: &Node,
        node: &Node,
        block: &str,
    ) -> Option<String> {
        let newline = if self.text.contains("\r\n") { "\r\n" } else { "\n" };
        let ours = sections(&self.tree)?.iter().find(|n| n.get("id").and_then(Node::as_scalar) == Some(section_id));
        let Some(ours) = ours else {
            // A new section: its lines up to `tasks:`, then this task; later new tasks of the
            // section find it there.
            let (tasks_key, tasks_value) = their_section.entry("tasks")?;
            if !is_block_seq(theirs, tasks_value) {
                return None;
            }
            let head_start = line_start(theirs, their_section.start);
            let head_end = line_end(theirs, tasks_key.end);
            let head = theirs[head_start..head_end].replace("\r\n", "\n");
            let section_block = format!("{head}\n{block}");
            let last = sections(&self.tree)?.last()?;
            return Some(insert_after_line_of(&self.text, last.end, &reindent(&section_block, their_section.col, last.col)));
        };
        if let Some((col, end)) = before.iter().rev().find_map(|t| {
            let n = find_task(&self.tree, t.id.as_str())?;
            (section_of_node(&self.tree, n.start)? == section_id).then_some((n.col, n.end))
        }) {
            return Some(insert_after_line_of(&self.text, end, &reindent(block, node.col, col)));
        }
        let (key, value) = ours.entry("tasks")?;
        if let Some(first) = value.items().and_then(|i| i.first()).filter(|_| is_block_seq(&self.text, value)) {
            let at = line_start(&self.text, first.start);
            let block = reindent(block, node.col, first.col).replace('\n', newline);
            return Some(splice(&self.text, at, at, &format!("{block}{newline}")));
        }
        // An empty list (`tasks: []` or nothing): the task becomes its first item.
        let is_empty = value.items().is_some_and(<[Node]>::is_empty) || value.is_null();
        if !is_empty {
            return None;
        }
        let block = reindent(block, node.col, key.col + 4).replace('\n', newline);
        if value.start == value.end {
            let colon = self.text[key.end..].find(':').map(|n| key.end + n + 1)?;
            let line_end = line_end(&self.text, colon);
            return Some(splice(&self.text, colon, line_end, &format!("{newline}{block}")));
        }
        Some(splice(&self.text, value.start, value.end, &format!("{newline}{block}")))
    }

    fn replace_text(&mut self, text: String) -> Result<(), PlanError> {
        let (plan, tree) = parse_with_tree(&text).map_err(|d| self.bug(d))?;
        self.take((text, plan, tree));
        Ok(())
    }

    /// Adopts text that was already parsed and validated.
    fn take(&mut self, (text, plan, tree): Parsed) {
        self.text = text;
        self.plan = plan;
        self.tree = tree;
    }

    /// An edit of baton's own produced an invalid plan: a bug, reported with the evidence.
    fn bug(&self, diagnostics: Vec<Diagnostic>) -> PlanError {
        let mut diagnostics = diagnostics;
        for d in &mut diagnostics {
            d.help = format!("this is a bug in baton's plan editing; please report it ({})", d.help);
        }
        PlanError::Invalid {
            path: self.path.clone(),
            diagnostics,
        }
    }
}

fn read(path: &Path) -> Result<String, PlanError> {
    // A plan is a regular file (or a link to one): a pipe at its path must not hang baton.
    crate::fsx::open_regular_following(path).and_then(crate::fsx::read_text).map_err(|source| PlanError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Text with its plan and tree, parsed and valid.
type Parsed = (String, Plan, Node);

/// Brings every section's `status` in line with its tasks; returns the result parsed.
fn with_section_statuses(text: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let mut text = text.to_string();
    // Each round fixes one section; more rounds than sections means an edit did not take.
    let rounds = parse_with_tree(&text)?.0.sections.len() + 1;
    for _ in 0..=rounds {
        let (plan, tree) = parse_with_tree(&text)?;
        let stale = plan.sections.iter().enumerate().find_map(|(i, s)| {
            let want = derived_section_status(&s.tasks)?;
            match s.status {
                Some(have) if have == want => None,
                // A section without a status gets one only once something has happened.
                None if want == Status::Pending => None,
                _ => Some((i, want)),
            }
        });
        let Some((index, status)) = stale else {
            return Ok((text, plan, tree));
        };
        let Some(section) = sections(&tree).and_then(|s| s.get(index)) else {
            return Ok((text, plan, tree));
        };
        text = set_in_mapping(&text, section, "status", &Value::Word(status.as_str()), &["name", "id"]);
    }
    Err(vec![Diagnostic::new(0, 0, "a section's derived status could not be written into the plan", "")])
}

fn sections(tree: &Node) -> Option<&[Node]> {
    tree.get("sections")?.items()
}

fn find_task<'a>(tree: &'a Node, id: &str) -> Option<&'a Node> {
    sections(tree)?
        .iter()
        .filter_map(|s| s.get("tasks")?.items())
        .flatten()
        .find(|t| t.get("id").and_then(Node::as_scalar) == Some(id))
}

/// The text with one change made. The result is parsed again and the field must read back as
/// exactly the value written, in the same task, with every task still there: an edit that
/// would say anything else is refused, and nothing is saved.
fn apply(text: &str, tree: &Node, change: &Change) -> Result<String, Vec<Diagnostic>> {
    let Some(task) = find_task(tree, &change.task) else {
        return Err(vec![Diagnostic::new(0, 0, format!("task '{}' vanished while editing", change.task), "")]);
    };
    let edited = set_in_mapping(text, task, change.field.key(), &change.value, &[]);
    verify(tree, &edited, change)?;
    Ok(edited)
}

/// Checks that `edited` reads back with `change` made (see [`apply`]).
fn verify(before: &Node, edited: &str, change: &Change) -> Result<(), Vec<Diagnostic>> {
    let refused = |what: String| {
        vec![Diagnostic::new(
            0,
            0,
            format!("baton's edit of `{}` of task '{}' would not read back as written ({what}); the plan was not changed", change.field, change.task),
            "",
        )]
    };
    let after = yaml::parse(edited).map_err(|e| refused(format!("YAML error at line {}: {}", e.line, e.message)))?;
    let Some(task) = find_task(&after, &change.task) else {
        return Err(refused("the task is gone".into()));
    };
    let field = task.get(change.field.key());
    let want = match &change.value {
        Value::Word(w) => Some((*w).to_string()),
        Value::Int(n) => Some(n.to_string()),
        Value::Text(s) => Some(s.clone()),
        Value::Null => None,
    };
    match want {
        Some(want) => {
            let got = field.and_then(Node::as_scalar);
            if got != Some(want.as_str()) {
                return Err(refused(format!("it reads {got:?}")));
            }
        }
        None => {
            if !field.is_some_and(Node::is_null) {
                return Err(refused(format!("it reads {:?}", field.and_then(Node::as_scalar))));
            }
        }
    }
    let ids = |t: &Node| -> Vec<Option<String>> {
        sections(t)
            .unwrap_or(&[])
            .iter()
            .filter_map(|s| s.get("tasks")?.items())
            .flatten()
            .map(|t| t.get("id").and_then(Node::as_scalar).map(str::to_string))
            .collect()
    };
    if ids(before) != ids(&after) {
        return Err(refused("the plan's tasks changed".into()));
    }
    Ok(())
}

/// Sets `key` in a mapping node: rewrites its value in place, or inserts a new entry (after the
/// first of `after` that exists, else at the end).
fn set_in_mapping(text: &str, map: &Node, key: &str, value: &Value, after: &[&str]) -> String {
    let NodeKind::Mapping { entries, flow } = &map.kind else {
        return text.to_string();
    };
    if let Some((k, v)) = entries.iter().find(|(k, _)| k.as_scalar() == Some(key)) {
        let style = match &v.kind {
            NodeKind::Scalar { style, .. } if !v.is_null() => *style,
            _ => Style::Plain,
        };
        let rendered = render(value, style);
        if v.start == v.end {
            // `key:` with no value: the parser puts the empty value at the key's end.
            let colon = text[k.end..].find(':').map_or(k.end, |n| k.end + n + 1);
            return splice(text, colon, colon, &format!(" {rendered}"));
        }
        return splice(text, v.start, v.end, &rendered);
    }
    let rendered = render(value, Style::Plain);
    if *flow {
        // Right after the last value (a comment may stand between it and the brace), or just
        // inside the opening brace of an empty mapping.
        return match entries.last() {
            Some((_, v)) => splice(text, v.end, v.end, &format!(", {key}: {rendered}")),
            None => splice(text, map.start + 1, map.start + 1, &format!("{key}: {rendered}")),
        };
    }
    let anchor = after
        .iter()
        .find_map(|a| entries.iter().find(|(k, _)| k.as_scalar() == Some(*a)))
        .or(entries.last());
    let Some((first_key, _)) = entries.first() else {
        return text.to_string();
    };
    let Some((_, anchor_value)) = anchor else {
        return text.to_string();
    };
    // After the anchor's value and anything else on its line (a comment stays where it was).
    let line_end = text[anchor_value.end..]
        .find('\n')
        .map_or(text.len(), |n| anchor_value.end + n);
    let at = if text[..line_end].ends_with('\r') { line_end - 1 } else { line_end };
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let indent = " ".repeat(first_key.col.saturating_sub(1));
    splice(text, at, at, &format!("{newline}{indent}{key}: {rendered}"))
}

fn render(value: &Value, style: Style) -> String {
    match value {
        Value::Word(w) => match style {
            Style::SingleQuoted => format!("'{w}'"),
            Style::DoubleQuoted => format!("\"{w}\""),
            _ => (*w).to_string(),
        },
        Value::Int(n) => n.to_string(),
        Value::Null => "null".to_string(),
        Value::Text(s) => {
            let style = match style {
                // A block scalar is rewritten as one double-quoted line.
                Style::Block => Style::DoubleQuoted,
                // Free text baton writes is quoted: it often holds `: ` or `#`.
                Style::Plain if !yaml::plain_safe(s) || s.len() > 60 => Style::DoubleQuoted,
                other => other,
            };
            yaml::render_string(s, style)
        }
    }
}

/// The whole lines of a list item: from the start of the line the node starts on (with its
/// `- `) to the end of the node's last line.
fn item_text(text: &str, node: &Node) -> String {
    let start = text[..node.start].rfind('\n').map_or(0, |n| n + 1);
    let end = text[node.end..].find('\n').map_or(text.len(), |n| node.end + n);
    text[start..end].trim_end_matches('\r').replace("\r\n", "\n")
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |n| n + 1)
}

/// The end of the line holding `at`, before its line break (`\r\n` or `\n`).
fn line_end(text: &str, at: usize) -> usize {
    let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
    if text[..end].ends_with('\r') {
        end - 1
    } else {
        end
    }
}

/// A non-empty list written in block style (`- item` lines), not `[a, b]`.
fn is_block_seq(text: &str, value: &Node) -> bool {
    value.items().is_some_and(|i| !i.is_empty()) && !text[value.start..].starts_with('[')
}

/// The id of the section whose mapping holds byte `at`.
fn section_of_node(tree: &Node, at: usize) -> Option<&str> {
    sections(tree)?.iter().find(|s| s.start <= at && at <= s.end)?.get("id")?.as_scalar()
}

/// Shifts every line of a block from column `from` to column `to` (1-based key columns).
fn reindent(block: &str, from: usize, to: usize) -> String {
    let lines: Vec<String> = block
        .split('\n')
        .map(|l| {
            if to >= from {
                format!("{}{l}", " ".repeat(to - from))
            } else {
                let strip = (from - to).min(l.len() - l.trim_start_matches(' ').len());
                l[strip..].to_string()
            }
        })
        .collect();
    lines.join("\n")
}

/// Inserts `block` as new lines after the line holding byte `at`.
fn insert_after_line_of(text: &str, at: usize, block: &str) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
    let pos = if text[..line_end].ends_with('\r') { line_end - 1 } else { line_end };
    let block = block.replace('\n', newline);
    splice(text, pos, pos, &format!("{newline}{block}"))
}

fn splice(text: &str, start: usize, end: usize, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..start]);
    out.push_str(with);
    out.push_str(&text[end..]);
    out
}
