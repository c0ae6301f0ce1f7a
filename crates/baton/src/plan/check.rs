//! What is wrong with a plan: the [`Diagnostic`] type, the plan errors, and parsing plan text
//! into a validated plan (YAML syntax first, then fields, then the dependency graph).

use std::path::{Path, PathBuf};

use super::model::{self, Plan};
use super::{graph, yaml};

/// One problem in a plan, at a line of its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// 1-based; 0 when the problem has no single line.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl Diagnostic {
    pub fn new(line: usize, column: usize, message: impl Into<String>, help: impl Into<String>) -> Self {
        Diagnostic {
            line,
            column,
            message: message.into(),
            help: help.into(),
        }
    }

    /// `file:line:col: message` and an indented help line.
    pub fn render(&self, file: &str) -> String {
        let at = match (self.line, self.column) {
            (0, _) => file.to_string(),
            (l, 0) => format!("{file}:{l}"),
            (l, c) => format!("{file}:{l}:{c}"),
        };
        // Messages quote the plan's text, which an agent may have written: print it as text.
        let safe = crate::report::safe::terminal_line;
        format!("{at}: {}\n  help: {}", safe(&self.message), safe(&self.help))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write plan {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid plan ({} problem{})", path.display(), diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("no task '{id}' in plan {}", path.display())]
    UnknownTask { path: PathBuf, id: String },
}

impl PlanError {
    /// The full message for a person: every problem with its line and what to do.
    pub fn render(&self) -> String {
        self.render_ending("; nothing was run or changed")
    }

    /// [`PlanError::render`] for a plan error met once a run has begun, when "nothing was run
    /// or changed" would not be true.
    pub fn render_in_run(&self) -> String {
        self.render_ending("")
    }

    fn render_ending(&self, ending: &str) -> String {
        match self {
            PlanError::Invalid { path, diagnostics } => {
                let file = path.display().to_string();
                let mut out = String::new();
                for d in diagnostics {
                    out.push_str("error: ");
                    out.push_str(&d.render(&file));
                    out.push('\n');
                }
                out.push_str(&format!("{self}{ending}"));
                out
            }
            other => {
                let mut out = format!("error: {other}");
                let mut src = std::error::Error::source(other);
                while let Some(e) = src {
                    out.push_str(&format!(": {e}"));
                    src = e.source();
                }
                out
            }
        }
    }
}


/// What a person should know about a valid plan: the fields read under another spelling
/// (notes) and what is probably a mistake (warnings, in file order). Neither stops a run.
#[derive(Debug, Default)]
pub struct Advice {
    pub notes: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

/// The advice on a plan whose repository is at `root`: its own warnings (keys that look like
/// known ones), and each agent name a task gives that is neither one of `agents` (baton.toml's)
/// nor a `.claude/agents/<name>.md`.
pub fn advice(plan: &Plan, root: &Path, agents: &[String]) -> Advice {
    let mut warnings = plan.warnings.clone();
    let mut names: Vec<(&str, &model::Task, Vec<&str>)> = Vec::new();
    for t in plan.tasks() {
        let Some(name) = t.agent.as_deref() else { continue };
        match names.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, more)) => more.push(t.id.as_str()),
            None => names.push((name, t, Vec::new())),
        }
    }
    for (name, t, more) in names {
        let file = format!(".claude/agents/{name}.md");
        if root.join(&file).is_file() || agents.iter().any(|a| a == name) {
            continue;
        }
        let others = match more.len() {
            0 => String::new(),
            n if n <= 5 => format!(" (also named by {})", more.join(", ")),
            n => format!(" (also named by {} and {} more)", more[..5].join(", "), n - 5),
        };
        warnings.push(Diagnostic::new(
            t.agent_at.0,
            t.agent_at.1,
            format!("task '{}'{others} names agent '{name}', which is neither an agent of baton.toml ({}) nor a Claude Code agent ({file} does not exist in the repository)", t.id, agents.join(", ")),
            match crate::config::closest(name, &agents.iter().map(String::as_str).collect::<Vec<_>>()) {
                Some(meant) => format!("did you mean `{meant}`? Otherwise define it in baton.toml as [agents.{name}], or add {file}; until then the task runs on the default agent"),
                None => format!("define it in baton.toml as [agents.{name}], or add {file} (baton passes `--agent {name}` to Claude Code when it exists); until then the task runs on the default agent"),
            },
        ));
    }
    warnings.sort_by_key(|d| (d.line, d.column));
    Advice { notes: plan.spellings(), warnings }
}

/// The warnings of plan text that may also have errors (`baton check` tells both at once: a
/// `depends-on:` typo matters most on the first pass). None when the YAML cannot be read.
pub fn warnings_in(src: &str) -> Vec<Diagnostic> {
    if !conflict_markers(src).is_empty() || lone_carriage_return(src).is_some() {
        return Vec::new();
    }
    match yaml::parse(src) {
        Ok(root) => model::read_plan(&root, &mut Vec::new()).warnings,
        Err(_) => Vec::new(),
    }
}

/// Parses and validates plan text. All problems are returned, in file order.
pub fn parse_plan(src: &str) -> Result<Plan, Vec<Diagnostic>> {
    parse_with_tree(src).map(|(plan, _)| plan)
}

pub(crate) fn parse_with_tree(src: &str) -> Result<(Plan, yaml::Node), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let markers = conflict_markers(src);
    if !markers.is_empty() {
        return Err(markers);
    }
    if let Some(cr) = lone_carriage_return(src) {
        return Err(vec![cr]);
    }
    let root = match yaml::parse(src) {
        Ok(root) => root,
        Err(e) => {
            // A tab inside a block scalar is fine; a tab in indentation is what usually breaks
            // a file, and the parser's words for it are obscure. Name the tab nearest before
            // the error instead, when there is one.
            // The scanner may report a tab at the start of the scalar before it (a line early).
            if let Some(tab) = tab_indentation(src).into_iter().rev().find(|d| d.line <= e.line + 1) {
                diags.push(tab);
            } else {
                let help = if e.message.contains("mapping values are not allowed") {
                    "a `: ` inside an unquoted value starts a new key; put the whole value in quotes"
                } else {
                    "fix the YAML at this position (indentation, a missing `:` or quote, an unclosed bracket)"
                };
                diags.push(Diagnostic::new(e.line, e.col, format!("YAML syntax error: {}", e.message), help));
            }
            diags.sort_by_key(|d| (d.line, d.column));
            return Err(diags);
        }
    };
    let plan = model::read_plan(&root, &mut diags);
    graph::check(&plan, &mut diags);
    if diags.is_empty() {
        Ok((plan, root))
    } else {
        diags.sort_by_key(|d| (d.line, d.column));
        Err(diags)
    }
}

/// Git's conflict markers, left in a plan by a merge, rebase or `git stash pop`. As YAML they are
/// a syntax error somewhere near (or, inside a block, plain text): say what they are instead.
/// One problem per conflict, at its `<<<<<<<` line (or at a stray marker).
fn conflict_markers(src: &str) -> Vec<Diagnostic> {
    // Seven of the character or more (`conflict-marker-size`), then a space or the line's end.
    let marker = |line: &str, m: &str| {
        let c = m.chars().next().unwrap_or('<');
        let rest = line.trim_start_matches(c);
        line.len() - rest.len() >= 7 && (rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut stray: Option<usize> = None;
    // A byte order mark before the first line is not part of it.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    for (i, line) in src.split('\n').enumerate() {
        let n = i + 1;
        if marker(line, "<<<<<<<") {
            if let Some(start) = open.replace(n) {
                out.push(conflict(start, None));
            }
        } else if marker(line, ">>>>>>>") {
            match open.take() {
                Some(start) => out.push(conflict(start, Some(n))),
                None => {
                    stray.get_or_insert(n);
                }
            }
        } else if marker(line, "|||||||") && open.is_none() {
            // A lone `=======` is left alone: alone, it is not a conflict.
            stray.get_or_insert(n);
        }
    }
    if let Some(start) = open {
        out.push(conflict(start, None));
    }
    if out.is_empty() {
        if let Some(n) = stray {
            out.push(conflict(n, None));
        }
    }
    out
}

fn conflict(line: usize, end: Option<usize>) -> Diagnostic {
    let span = end.map(|e| format!(" (to line {e})")).unwrap_or_default();
    Diagnostic::new(
        line,
        1,
        format!("the plan has unresolved git conflict markers at line {line}{span}"),
        "resolve the conflict: keep the right lines between `<<<<<<<` and `>>>>>>>`, delete the marker lines (`<<<<<<<`, `=======`, `>>>>>>>`, and with diff3-style conflicts the `|||||||` line and the old lines after it), then run `baton check` on the plan",
    )
}

/// A carriage return not followed by a line feed. YAML reads one as a line break, and baton's
/// editing, line numbers and diffs count lines by `\n`: with CR-only (classic Mac) line endings
/// the two disagree about where a field is, and an edit could land in another task. Such files
/// are refused, at the line the first one ends (counting every CR, CRLF or LF as a break, as an
/// editor does).
fn lone_carriage_return(src: &str) -> Option<Diagnostic> {
    let bytes = src.as_bytes();
    let mut line = 1;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'\n' => line += 1,
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                let col = src[..i].rfind(['\n', '\r']).map_or(i, |n| i - n - 1);
                return Some(Diagnostic::new(
                    line,
                    src[i - col..i].chars().count() + 1,
                    "a line ends with a bare carriage return (CR-only line endings)",
                    "save the file with LF (or CRLF) line endings, e.g. `tr '\\r' '\\n' < plan.yaml > fixed.yaml`",
                ));
            }
            _ => {}
        }
    }
    None
}

/// Tabs in indentation: YAML forbids them, and the parser's own message is obscure.
fn tab_indentation(src: &str) -> Vec<Diagnostic> {
    src.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let indent: String = line.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            let rest = &line[indent.len()..];
            (indent.contains('\t') && !rest.is_empty() && !rest.starts_with('#')).then(|| {
                Diagnostic::new(
                    i + 1,
                    indent.find('\t').map_or(1, |p| p + 1),
                    "a tab in the indentation",
                    "indent with spaces only; YAML does not allow tabs there",
                )
            })
        })
        .collect()
}

