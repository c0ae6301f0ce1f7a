//! `baton history` and `baton cost`: the run history read back from the store — the runs and
//! their attempts newest first, one task's attempts in detail, and what the agents cost added
//! up by plan, task, model or day.
//!
//! Reads; the only write is the one a run would make first: the named plan's attempt records
//! from before the store imported into it (a store is made for that only when there are such
//! records). Must not decide anything about a run.

use std::collections::HashMap;
use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use serde::Serialize;

use crate::exit::Exit;
use crate::report::render::{clock, human_secs, local_time};
use crate::report::safe::{one_line, terminal_line, terminal_text};
use crate::report::status::cut;
use crate::run::record::Records;
use crate::store::query::{AttemptRow, CheckRow, CostRow, RunRow};
use crate::store::{Store, StoreError};

/// Where the commands look.
pub struct Place<'a> {
    /// The repository root: its store is `.baton/baton.db`.
    pub root: &'a Path,
    /// The plan named on the command line; `None`: every plan of the repository.
    pub plan: Option<&'a Path>,
    /// `[paths] logs_dir` under the root: the attempt records to import, the plans' locks.
    pub logs_dir: &'a Path,
}

impl Place<'_> {
    /// The named plan's key in the store.
    fn key(&self) -> Option<String> {
        self.plan.map(|p| crate::store::plan_key(self.root, p))
    }

    /// The named plan as the user wrote it.
    fn shown(&self) -> Option<String> {
        self.plan.map(|p| terminal_line(&p.display().to_string()))
    }

    /// What is said when there is nothing to show.
    fn nothing(&self) -> String {
        match self.shown() {
            Some(plan) => format!("no runs recorded yet for {plan}"),
            None => "no runs recorded yet".into(),
        }
    }
}

/// A plan named that is not there and that the history does not know: a typo, said as one.
fn unknown_plan(place: &Place<'_>, store: Option<&Store>) -> Option<Exit> {
    let plan = place.plan.filter(|p| !p.exists())?;
    let key = place.key()?;
    let known = store.map(|s| s.runs(Some(&key), 1).map(|r| !r.is_empty()).unwrap_or(false)).unwrap_or(false);
    if known {
        // A plan deleted since: its history is still shown.
        return None;
    }
    let plans: Vec<String> = store.and_then(|s| s.plans().ok()).unwrap_or_default();
    let help = if plans.is_empty() { "no plan has recorded runs yet".to_string() } else { format!("plans with recorded runs: {}", plans.iter().map(|p| terminal_line(p)).collect::<Vec<_>>().join(", ")) };
    crate::errln!("error: {}: no such plan, and no runs recorded for it\n  help: {help}", terminal_line(&plan.display().to_string()));
    Some(Exit::InvalidInput)
}

/// The store, with the named plan's attempt records from before it imported (once, as a run
/// does at its start); `None` when there is no store and nothing to import into one.
pub fn open(place: &Place<'_>) -> Result<Option<Store>, StoreError> {
    let records = place.plan.map(|p| Records::new(place.logs_dir, p));
    let mut store = match Store::open_existing(place.root)? {
        Some(s) => Some(s),
        None if records.as_ref().is_some_and(has_records) => Some(Store::open(place.root)?),
        None => None,
    };
    if let (Some(store), Some(records), Some(key)) = (&mut store, &records, place.key()) {
        store.import_records(&key, records, place.root)?;
    }
    Ok(store)
}

/// Whether a plan's records folder holds an attempt record.
fn has_records(records: &Records) -> bool {
    std::fs::read_dir(records.dir()).into_iter().flatten().flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).any(|e| {
        let task = e.file_name().to_string_lossy().into_owned();
        records.sessions(&task).into_iter().any(|s| records.read(&task, s).is_some())
    })
}

fn store_failed(e: &StoreError) -> Exit {
    crate::errln!("error: {e}\n  help: {}", e.help());
    Exit::InvalidInput
}

/// Where a run is, for a run without an ending in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// It ended; the store says how.
    Ended,
    /// The baton that opened it holds the plan's lock now.
    Running,
    /// No ending, and its baton is gone: killed. The next run of the plan closes it.
    Interrupted,
}

/// A run's state from its row and the pid holding its plan's lock now.
pub fn run_state(run: &RunRow, holder: Option<u32>) -> RunState {
    match (&run.ending, holder) {
        (Some(_), _) => RunState::Ended,
        (None, Some(pid)) if run.pid == Some(i64::from(pid)) => RunState::Running,
        (None, _) => RunState::Interrupted,
    }
}

/// The state of `run`, asking the plan's lock only when the store has no ending for it.
fn state_of(place: &Place<'_>, run: &RunRow) -> RunState {
    if run.ending.is_some() {
        return RunState::Ended;
    }
    // The backlog daemon holds a lock of its own, named like a plan.
    let locked = if run.kind == "pipeline" { place.root.join("baton-pipeline") } else { place.root.join(&run.plan) };
    run_state(run, crate::run::lock::plan_holder(&place.logs_dir.join("locks"), &locked))
}

/// A run as the commands show it: an attempt left `running` by a baton that is gone (or that
/// ended without ending it) was interrupted.
fn settle(mut run: RunRow, state: RunState) -> ShownRun {
    if state != RunState::Running {
        for a in run.attempts.iter_mut().filter(|a| a.outcome == "running") {
            a.outcome = "interrupted".into();
        }
    }
    ShownRun { run, state }
}

/// A run with its state.
#[derive(Debug, Clone, Serialize)]
pub struct ShownRun {
    #[serde(flatten)]
    pub run: RunRow,
    pub state: RunState,
}

/// What `baton history` is asked.
pub struct HistoryOptions<'a> {
    /// One task's attempts instead of the runs (needs a plan).
    pub task: Option<&'a str>,
    /// At most this many runs.
    pub limit: usize,
    pub json: bool,
    /// The terminal's width.
    pub width: usize,
}

/// `baton history`.
pub fn history(place: &Place<'_>, opts: &HistoryOptions<'_>) -> Exit {
    let store = match open(place) {
        Ok(s) => s,
        Err(e) => return store_failed(&e),
    };
    if let Some(exit) = unknown_plan(place, store.as_ref()) {
        return exit;
    }
    if let Some(task) = opts.task {
        return task_history(place, store.as_ref(), task, opts);
    }
    let (runs, more) = match shown_runs(place, store.as_ref(), opts.limit) {
        Ok(r) => r,
        Err(e) => return store_failed(&e),
    };
    if opts.json {
        crate::outln!("{}", runs_json(place.key().as_deref(), &runs));
    } else if runs.is_empty() {
        crate::outln!("{}", place.nothing());
    } else {
        crate::out!("{}", runs_table(&runs, opts.width, Timestamp::now()));
        if more {
            crate::outln!("\n(the {} newest runs; older ones: `--limit N`)", opts.limit);
        }
    }
    Exit::Completed
}

/// The newest `limit` runs (of the place's plan, or all), each with its state, and whether older
/// ones are left out.
pub fn shown_runs(place: &Place<'_>, store: Option<&Store>, limit: usize) -> Result<(Vec<ShownRun>, bool), StoreError> {
    // One more than shown: whether older runs are left out.
    let mut runs = store.map(|s| s.runs(place.key().as_deref(), limit.saturating_add(1))).transpose()?.unwrap_or_default();
    let more = runs.len() > limit;
    runs.truncate(limit);
    let runs = runs
        .into_iter()
        .map(|r| {
            let state = state_of(place, &r);
            settle(r, state)
        })
        .collect();
    Ok((runs, more))
}

/// `baton history --json`: `{"plan", "runs": [...]}`.
pub fn runs_json(plan: Option<&str>, runs: &[ShownRun]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        plan: Option<&'a str>,
        runs: &'a [ShownRun],
    }
    serde_json::to_string_pretty(&Doc { plan, runs }).unwrap_or_default()
}

/// The run history of the place as `baton history --json` prints it; the store opened (and the
/// plan's old attempt records imported) as the command does.
pub fn history_json(place: &Place<'_>, limit: usize) -> Result<String, StoreError> {
    let store = open(place)?;
    let (runs, _) = shown_runs(place, store.as_ref(), limit)?;
    Ok(runs_json(place.key().as_deref(), &runs))
}

/// The runs, each a line and its attempts under it as a table (every run's rows aligned
/// alike), for a terminal `width` wide.
pub fn runs_table(runs: &[ShownRun], width: usize, now: Timestamp) -> String {
    let mut header = vec!["TASK", "TRY", "STARTED", "TIME", "COST", "MODEL", "OUTCOME", "MESSAGE"];
    let right = [false, true, false, true, true, false, false, false];
    let mut rows: Vec<Vec<Vec<String>>> = runs.iter().map(|r| r.run.attempts.iter().map(attempt_cells).collect()).collect();
    // A MESSAGE column only when an attempt has one.
    if rows.iter().flatten().all(|r| r.last().is_none_or(String::is_empty)) {
        header.pop();
        rows.iter_mut().flatten().for_each(|r| drop(r.pop()));
    }
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    let table = Table::new(&header, &right, rows.iter().flatten());
    let mut out = String::new();
    for (n, (run, rows)) in runs.iter().zip(&rows).enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&run_line(run, now));
        out.push('\n');
        // Why it ended so: the budget's figures, the error.
        if let Some(m) = run.run.message.as_deref().filter(|m| !m.is_empty()) {
            out.push_str(&format!("  {}\n", cut(&terminal_line(m), width.saturating_sub(2).max(40))));
        }
        if rows.is_empty() {
            out.push_str("  (no attempts)\n");
            continue;
        }
        out.push_str(&table.line(&header, width));
        for row in rows {
            out.push_str(&table.line(row, width));
        }
    }
    terminal_text(&out)
}

/// `run 12 · plan.yaml · 2026-11-30 14:02:11 UTC · 3m 20s · $0.4210 · finished`
fn run_line(shown: &ShownRun, now: Timestamp) -> String {
    let run = &shown.run;
    let started: Option<Timestamp> = run.started_at.parse().ok();
    let mut parts = vec![match run.kind.as_str() {
        "run" => format!("run {}", run.id),
        "imported" => format!("run {} (attempt records from before the history)", run.id),
        other => format!("{} {}", terminal_line(other), run.id),
    }];
    if !run.plan.is_empty() {
        parts.push(terminal_line(&run.plan));
    }
    parts.push(started.map(local_time).unwrap_or_else(|| terminal_line(&run.started_at)));
    let ended = match shown.state {
        RunState::Running => Some(now),
        _ => run.ended_at.as_deref().and_then(|t| t.parse().ok()),
    };
    if let (Some(a), Some(b), false) = (started, ended, run.kind == "imported") {
        parts.push(human_secs(b.duration_since(a).as_secs_f64().max(0.0)));
    }
    parts.push(money(run.cost_usd));
    parts.push(ending_text(shown));
    parts.join(" · ")
}

/// How a run ended, in words.
pub fn ending_text(shown: &ShownRun) -> String {
    let run = &shown.run;
    match shown.state {
        RunState::Running => return format!("running (pid {})", run.pid.unwrap_or_default()),
        // Only a run of a plan is closed by the next one (`Store::close_interrupted`).
        RunState::Interrupted if run.kind == "run" => return "interrupted (baton was killed; the next run closes it)".into(),
        RunState::Interrupted => return "interrupted (baton was killed)".into(),
        RunState::Ended => {}
    }
    let ending = run.ending.as_deref().unwrap_or_default();
    let mut text = match ending {
        "finished_with_failures" => "finished with failures".to_string(),
        "budget_exhausted" => "budget exhausted".into(),
        "single_task" => "one task run (--single-task)".into(),
        "killed" => "killed (closed by the next run)".into(),
        other => terminal_line(other),
    };
    if let Some(by) = run.stopped_by.as_deref().filter(|b| !(ending == "budget_exhausted" && *b == "budget")) {
        text.push_str(&format!(" (by {})", terminal_line(by)));
    }
    if let Some(code) = run.exit_code.filter(|c| *c != 0) {
        text.push_str(&format!(", exit {code}"));
    }
    text
}

fn attempt_cells(a: &AttemptRow) -> Vec<String> {
    let started = a.started_at.parse::<Timestamp>().map(clock).unwrap_or_default();
    vec![
        cut(&terminal_line(&a.task), ID_CHARS),
        a.attempt.map_or_else(|| "-".into(), |n| n.to_string()),
        started,
        a.duration_secs.map(human_secs).unwrap_or_default(),
        if a.cost_usd.is_some() || a.review_cost_usd.is_some() { format!("{}{}", if a.cost_estimated { "~" } else { "" }, money(a.total_cost())) } else { String::new() },
        cut(&terminal_line(a.model.as_deref().unwrap_or("")), MODEL_CHARS),
        outcome_text(a),
        one_line(a.message.as_deref().unwrap_or("")),
    ]
}

/// The outcome, with the reviewer's verdict when there was one: `verified (PASS)`.
fn outcome_text(a: &AttemptRow) -> String {
    match &a.verdict {
        Some(v) => format!("{} ({})", terminal_line(&a.outcome), terminal_line(v)),
        None => terminal_line(&a.outcome),
    }
}

/// The widest task id, plan and model a column shows; longer ones are cut.
const ID_CHARS: usize = 24;
const MODEL_CHARS: usize = 24;
const KEY_CHARS: usize = 40;

/// `$0.0123`.
fn money(usd: f64) -> String {
    format!("${usd:.4}")
}

/// Plain aligned columns; the last one, when it is text (left-aligned), takes what room the
/// terminal has left and is cut to it.
struct Table {
    widths: Vec<usize>,
    right: Vec<bool>,
}

impl Table {
    fn new<'a>(header: &[impl AsRef<str>], right: &[bool], rows: impl Iterator<Item = &'a Vec<String>>) -> Table {
        let mut widths: Vec<usize> = header.iter().map(|h| h.as_ref().chars().count()).collect();
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        Table { widths, right: right.to_vec() }
    }

    /// One row, indented by two spaces, ending in a newline.
    fn line(&self, cells: &[String], width: usize) -> String {
        let last = cells.len().saturating_sub(1);
        let mut row = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            row.push(' ');
            let w = self.widths.get(i).copied().unwrap_or(0);
            let right = self.right.get(i).copied().unwrap_or(false);
            if i == last && !right {
                let room = width.saturating_sub(row.chars().count()).max(20);
                row.push_str(&cut(cell, room));
            } else if right {
                row.push_str(&format!("{cell:>w$}"));
            } else {
                row.push_str(&format!("{cell:<w$}"));
            }
            row.push(' ');
        }
        format!("{}\n", row.trim_end())
    }
}

/// `baton history PLAN --task ID`: every attempt of the task, oldest first, in detail.
fn task_history(place: &Place<'_>, store: Option<&Store>, task: &str, opts: &HistoryOptions<'_>) -> Exit {
    let (Some(key), Some(shown)) = (place.key(), place.shown()) else {
        crate::errln!("error: --task needs the plan\n  help: `baton history PLAN --task {}`", terminal_line(task));
        return Exit::InvalidInput;
    };
    let attempts = match task_attempts(place, store, &key, task) {
        Ok(a) => a,
        Err(e) => return store_failed(&e),
    };
    if attempts.is_empty() {
        let in_plan = plan_task_ids(place.plan);
        if !in_plan.iter().flatten().any(|id| id == task) {
            let why = if in_plan.is_some() { ", and the plan has no such task" } else { "" };
            let mut known = in_plan.unwrap_or_default();
            if let Some(s) = store {
                for id in s.task_ids(&key).unwrap_or_default() {
                    if !known.contains(&id) {
                        known.push(id);
                    }
                }
            }
            crate::errln!("error: no attempts recorded for task {} in plan {shown}{why}\n  help: {}", terminal_line(task), near_help(task, &known, &shown));
            return Exit::InvalidInput;
        }
    }
    if opts.json {
        crate::outln!("{}", task_json(&key, task, &attempts));
    } else if attempts.is_empty() {
        crate::outln!("no attempts recorded for task {} in plan {shown} yet", terminal_line(task));
    } else {
        crate::out!("{}", task_text(task, &shown, &attempts));
    }
    Exit::Completed
}

/// Every attempt of a task of the plan `key`, oldest first; one left `running` by a baton that is
/// gone (or that ended without ending it) told `interrupted`.
pub fn task_attempts(place: &Place<'_>, store: Option<&Store>, key: &str, task: &str) -> Result<Vec<AttemptRow>, StoreError> {
    let mut attempts = store.map(|s| s.task_attempts(key, task)).transpose()?.unwrap_or_default();
    // An attempt left `running`: by a run going on, or by a baton that was killed.
    let mut states: HashMap<i64, RunState> = HashMap::new();
    for a in attempts.iter_mut().filter(|a| a.outcome == "running") {
        let state = match states.get(&a.run_id) {
            Some(s) => *s,
            None => {
                let run = store.map(|s| s.run(a.run_id)).transpose()?.flatten();
                let s = run.map_or(RunState::Interrupted, |r| state_of(place, &r));
                states.insert(a.run_id, s);
                s
            }
        };
        if state != RunState::Running {
            a.outcome = "interrupted".into();
        }
    }
    Ok(attempts)
}

/// `baton history PLAN --task ID --json`: `{"plan", "task", "attempts": [...]}`.
pub fn task_json(plan: &str, task: &str, attempts: &[AttemptRow]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        plan: &'a str,
        task: &'a str,
        attempts: &'a [AttemptRow],
    }
    serde_json::to_string_pretty(&Doc { plan, task, attempts }).unwrap_or_default()
}

/// One task's attempts as `baton history PLAN --task ID --json` prints them (no check that the
/// task exists: the caller knows it does).
pub fn task_history_json(place: &Place<'_>, task: &str) -> Result<String, StoreError> {
    let store = open(place)?;
    let key = place.key().unwrap_or_default();
    let attempts = task_attempts(place, store.as_ref(), &key, task)?;
    Ok(task_json(&key, task, &attempts))
}

/// The task ids of the plan file; `None` when it cannot be read as a plan.
fn plan_task_ids(plan: Option<&Path>) -> Option<Vec<String>> {
    let parsed = plan.and_then(|p| crate::fsx::open_regular_following(p).and_then(crate::fsx::read_text).ok()).and_then(|t| crate::plan::parse_plan(&t).ok());
    parsed.map(|p| p.tasks().map(|t| t.id.to_string()).collect())
}

/// Help for an unknown task: the close ids, else the ids there are.
fn near_help(task: &str, known: &[String], plan: &str) -> String {
    let mut near: Vec<(usize, &String)> =
        known.iter().map(|k| (crate::plan::edit_distance(task, k), k)).filter(|(d, k)| *d <= k.chars().count().div_ceil(3).max(1)).collect();
    near.sort();
    // The closest only: `1.3` means `1.1` or `1.2` rather than `2.1`.
    let best = near.first().map(|(d, _)| *d);
    near.retain(|(d, _)| Some(*d) == best);
    let quoted = |ids: Vec<&String>| ids.iter().take(8).map(|k| format!("`{}`", terminal_line(k))).collect::<Vec<_>>().join(", ");
    if !near.is_empty() {
        format!("did you mean {}?", quoted(near.into_iter().map(|(_, k)| k).collect()))
    } else if !known.is_empty() {
        format!("its tasks are {}{}", quoted(known.iter().collect()), if known.len() > 8 { ", …" } else { "" })
    } else {
        format!("`baton status {plan}` lists the task ids")
    }
}

/// One task's attempts, each a block of fields.
pub fn task_text(task: &str, plan: &str, attempts: &[AttemptRow]) -> String {
    let seconds: f64 = attempts.iter().filter_map(|a| a.duration_secs).sum();
    let cost: f64 = attempts.iter().map(AttemptRow::total_cost).sum();
    let n = attempts.len();
    let mut out = format!("task {task} of {plan}: {n} session{} · {} · {}\n", if n == 1 { "" } else { "s" }, human_secs(seconds), money(cost));
    for a in attempts {
        out.push('\n');
        let which = match a.attempt {
            Some(k) => format!("attempt {k} (session {})", a.session),
            None => format!("session {} (not counted as an attempt)", a.session),
        };
        let started = a.started_at.parse::<Timestamp>().map(local_time).unwrap_or_else(|_| a.started_at.clone());
        out.push_str(&format!("{which} · run {} · {started}\n", a.run_id));
        let mut field = |name: &str, value: String| out.push_str(&format!("  {name:<11} {value}\n"));
        let outcome = match a.message.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(m) => format!("{}: {}", outcome_text(a), one_line(m)),
            None => outcome_text(a),
        };
        field("outcome", outcome);
        let agent = match &a.named_agent {
            Some(named) => format!("{} (as {named})", a.agent),
            None => a.agent.clone(),
        };
        if !agent.is_empty() {
            field("agent", agent);
        }
        if let Some(m) = &a.model {
            field("model", m.clone());
        }
        if let Some(s) = a.duration_secs {
            field("time", human_secs(s));
        }
        if let Some(w) = a.waited_secs.filter(|w| *w > 0.0) {
            field("waited", human_secs(w));
        }
        if a.cost_usd.is_some() || a.review_cost_usd.is_some() {
            let review = a.review_cost_usd.map(|r| format!(" (review {})", money(r))).unwrap_or_default();
            let estimate = if a.cost_estimated { " (estimated from the tokens at [prices])" } else { "" };
            field("cost", format!("{}{review}{estimate}", money(a.total_cost())));
        }
        if let Some(tokens) = tokens_text(a) {
            field("tokens", tokens);
        }
        if let Some(t) = a.turns {
            field("turns", t.to_string());
        }
        for c in &a.checks {
            field("check", check_text(c));
        }
        if let Some(v) = &a.verdict {
            field("verdict", v.clone());
        }
        if let Some(t) = &a.transcript {
            field("transcript", t.clone());
        }
    }
    terminal_text(&out)
}

/// `1200 in · 340 out · 5000 cache read · 0 cache write`, when any is known.
fn tokens_text(a: &AttemptRow) -> Option<String> {
    let parts: Vec<String> = [(a.input_tokens, "in"), (a.output_tokens, "out"), (a.cache_read_tokens, "cache read"), (a.cache_creation_tokens, "cache write")]
        .iter()
        .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// As `baton logs` says it: `cargo test [task] — failed (exit 101) · 12.3s`.
fn check_text(c: &CheckRow) -> String {
    let how = match (c.passed, c.timed_out, c.exit_code) {
        (true, ..) => "ok".to_string(),
        (_, true, _) => "timed out".into(),
        (_, _, Some(code)) => format!("failed (exit {code})"),
        (_, _, None) => "failed (killed by a signal)".into(),
    };
    format!("{} [{}] — {how} · {:.1}s", one_line(&c.command), terminal_line(&c.source), c.duration_secs)
}

/// What `baton cost` adds up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CostBy {
    Plan,
    Task,
    Model,
    // The day an attempt started, in the local time zone.
    Day,
}

impl CostBy {
    /// The keys of a group, as its JSON names them.
    fn keys(self) -> &'static [&'static str] {
        match self {
            CostBy::Plan => &["plan"],
            CostBy::Task => &["plan", "task"],
            CostBy::Model => &["model"],
            CostBy::Day => &["day"],
        }
    }
}

/// Attempts added up: one group's, or all of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Sum {
    pub sessions: usize,
    pub seconds: f64,
    pub cost_usd: f64,
    /// Sessions whose cost is unknown (not in `cost_usd`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unknown_cost_sessions: usize,
    /// Sessions whose cost is baton's estimate from the tokens and `[prices]`.
    #[serde(skip_serializing_if = "is_zero")]
    pub estimated_cost_sessions: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Sum {
    fn add(&mut self, r: &CostRow) {
        self.sessions += usize::from(!r.review);
        self.unknown_cost_sessions += usize::from(r.unknown);
        self.estimated_cost_sessions += usize::from(r.estimated);
        self.seconds = ((self.seconds + r.duration_secs) * 1e6).round() / 1e6;
        self.cost_usd = crate::store::usd(self.cost_usd + r.cost_usd);
    }
}

/// A group's key (in the order of [`CostBy::keys`]; a model may be unknown) and its sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: Vec<Option<String>>,
    pub sum: Sum,
}

/// The rows added up by `by`, days in `tz`. Days in order, tasks in the order they first ran,
/// plans and models the costliest first.
pub fn group(rows: &[CostRow], by: CostBy, tz: &TimeZone) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    for r in rows {
        let key = match by {
            CostBy::Plan => vec![Some(r.plan.clone())],
            CostBy::Task => vec![Some(r.plan.clone()), Some(r.task.clone())],
            CostBy::Model => vec![r.model.clone().filter(|m| !m.trim().is_empty())],
            CostBy::Day => vec![Some(r.started_at.to_zoned_datetime(tz.clone()).date().to_string())],
        };
        let at = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Group { key, sum: Sum::default() });
            groups.len() - 1
        });
        groups[at].sum.add(r);
    }
    match by {
        CostBy::Day => groups.sort_by(|a, b| a.key.cmp(&b.key)),
        CostBy::Plan | CostBy::Model => groups.sort_by(|a, b| b.sum.cost_usd.total_cmp(&a.sum.cost_usd)),
        CostBy::Task => {}
    }
    groups
}

/// What `baton cost` is asked.
pub struct CostOptions {
    /// Default: by plan over every plan, by task for one plan.
    pub by: Option<CostBy>,
    pub since: Option<Timestamp>,
    pub json: bool,
    pub width: usize,
}

/// `baton cost`.
pub fn cost(place: &Place<'_>, opts: &CostOptions) -> Exit {
    let by = opts.by.unwrap_or(if place.plan.is_some() { CostBy::Task } else { CostBy::Plan });
    let store = match open(place) {
        Ok(s) => s,
        Err(e) => return store_failed(&e),
    };
    if let Some(exit) = unknown_plan(place, store.as_ref()) {
        return exit;
    }
    let key = place.key();
    let (groups, total) = match sums(store.as_ref(), key.as_deref(), by, opts.since) {
        Ok(s) => s,
        Err(e) => return store_failed(&e),
    };
    if opts.json {
        crate::outln!("{}", cost_json(key.as_deref(), by, opts.since, &groups, &total));
    } else if store.is_none() {
        crate::outln!("{}", place.nothing());
    } else {
        let scope = CostScope { plan: place.shown(), by, since: opts.since };
        crate::out!("{}", cost_table(&scope, &groups, &total, opts.width));
    }
    Exit::Completed
}

/// The costs of the plan `key` (or of every plan) since then, added up by `by`, and the total.
pub fn sums(store: Option<&Store>, key: Option<&str>, by: CostBy, since: Option<Timestamp>) -> Result<(Vec<Group>, Sum), StoreError> {
    let rows = store.map(|s| s.cost_rows(key, since)).transpose()?.unwrap_or_default();
    let groups = group(&rows, by, &TimeZone::system());
    let mut total = Sum::default();
    for r in &rows {
        total.add(r);
    }
    Ok((groups, total))
}

/// What the agents cost as `baton cost --json` prints it (`by` defaults as the command's does).
pub fn cost_json_of(place: &Place<'_>, by: Option<CostBy>, since: Option<Timestamp>) -> Result<String, StoreError> {
    let by = by.unwrap_or(if place.plan.is_some() { CostBy::Task } else { CostBy::Plan });
    let store = open(place)?;
    let key = place.key();
    let (groups, total) = sums(store.as_ref(), key.as_deref(), by, since)?;
    Ok(cost_json(key.as_deref(), by, since, &groups, &total))
}

/// `{"plan", "by", "since", "rows": [{<keys>, "sessions", "seconds", "cost_usd"}], "total"}`.
pub fn cost_json(plan: Option<&str>, by: CostBy, since: Option<Timestamp>, groups: &[Group], total: &Sum) -> String {
    /// A row's keys: absent when not grouped by, `null` for an unknown model.
    #[derive(Serialize)]
    struct Row<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<Option<&'a str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        task: Option<Option<&'a str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        model: Option<Option<&'a str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        day: Option<Option<&'a str>>,
        #[serde(flatten)]
        sum: &'a Sum,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        plan: Option<&'a str>,
        by: CostBy,
        since: Option<String>,
        rows: Vec<Row<'a>>,
        total: &'a Sum,
    }
    let rows = groups
        .iter()
        .map(|g| {
            let key = |name: &str| by.keys().iter().position(|k| *k == name).map(|i| g.key[i].as_deref());
            Row { plan: key("plan"), task: key("task"), model: key("model"), day: key("day"), sum: &g.sum }
        })
        .collect();
    let doc = Doc { plan, by, since: since.map(|t| t.to_string()), rows, total };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// What a cost table covers, for its title.
pub struct CostScope {
    /// The plan named, as the user wrote it.
    pub plan: Option<String>,
    pub by: CostBy,
    pub since: Option<Timestamp>,
}

/// The groups as a table with the total under them.
pub fn cost_table(scope: &CostScope, groups: &[Group], total: &Sum, width: usize) -> String {
    let by = match scope.by {
        CostBy::Plan => "plan",
        CostBy::Task => "task",
        CostBy::Model => "model",
        CostBy::Day => "day (local time)",
    };
    let mut out = match &scope.plan {
        Some(plan) => format!("cost of {plan} by {by}"),
        None if by == "plan" => "cost of every plan".to_string(),
        None => format!("cost of every plan by {by}"),
    };
    if let Some(t) = scope.since {
        out.push_str(&format!(" since {}", local_time(t)));
    }
    out.push_str("\n\n");
    // One plan: its name is in the title, not in every row.
    let skip = usize::from(scope.by == CostBy::Task && scope.plan.is_some());
    let names: Vec<String> = scope.by.keys()[skip..].iter().map(|k| k.to_uppercase()).collect();
    let mut header: Vec<&str> = names.iter().map(String::as_str).collect();
    header.extend(["SESSIONS", "TIME", "COST"]);
    let mut right = vec![false; header.len() - 3];
    right.extend([true, true, true]);
    let cells = |key: Vec<String>, sum: &Sum| -> Vec<String> {
        let mut row = key;
        row.extend([sum.sessions.to_string(), human_secs(sum.seconds), money(sum.cost_usd)]);
        row
    };
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let key = g.key[skip..].iter().map(|k| cut(&terminal_line(k.as_deref().unwrap_or("(unknown)")), KEY_CHARS)).collect();
            cells(key, &g.sum)
        })
        .collect();
    let mut last = vec![String::new(); header.len() - 3];
    last[0] = "total".into();
    rows.push(cells(last, total));
    let table = Table::new(&header, &right, rows.iter());
    out.push_str(&table.line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>(), width));
    for row in &rows {
        out.push_str(&table.line(row, width));
    }
    if total.unknown_cost_sessions > 0 {
        let n = total.unknown_cost_sessions;
        out.push_str(&format!(
            "\n{n} session{} of unknown cost not in these figures: their agent says no cost; set [prices] in baton.toml\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    terminal_text(&out)
}

/// `--since`: a date (`2026-11-30`: its start in the local time zone), a time (RFC 3339, or
/// `2026-11-30 14:00` in the local time zone), or how long ago (`7d`, `24h`, `1h30m`, `2w`).
pub fn parse_since(text: &str, now: &ZonedDateTime) -> Result<Timestamp, String> {
    let t = text.trim();
    let local = |zoned: Result<ZonedDateTime, jiff::Error>| zoned.map(|z| z.timestamp()).map_err(|e| format!("`{text}`: {e}"));
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let dateish = t.len() >= 10 && t.as_bytes()[..4].iter().all(u8::is_ascii_digit) && t.as_bytes()[4] == b'-';
    if dateish {
        if t.len() == 10 {
            if let Ok(day) = t.parse::<jiff::civil::Date>() {
                return local(day.to_zoned_datetime(now.time_zone().clone()));
            }
        }
        if let Ok(at) = t.parse::<jiff::civil::DateTime>() {
            return local(at.to_zoned_datetime(now.time_zone().clone()));
        }
    } else if let Ok(span) = t.parse::<jiff::Span>() {
        return now.checked_sub(span.abs()).map(|z| z.timestamp()).map_err(|e| format!("`{text}`: {e}"));
    }
    Err(format!("`{text}` is not a date (2026-11-30), a time (2026-11-30T14:00:00Z) or how long ago (7d, 24h)"))
}


#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn since_takes_a_local_date_a_time_or_how_long_ago() {
        let tz = TimeZone::get("America/Toronto").unwrap();
        let now = at("2026-12-01T15:00:00Z").to_zoned_datetime(tz);
        // A date starts at local midnight (EST: 5:00 UTC).
        assert_eq!(parse_since("2026-11-30", &now), Ok(at("2026-11-30T05:00:00Z")));
        assert_eq!(parse_since("2026-11-30 14:30", &now), Ok(at("2026-11-30T19:30:00Z")));
        assert_eq!(parse_since("2026-11-30T14:30:00+01:00", &now), Ok(at("2026-11-30T13:30:00Z")));
        assert_eq!(parse_since("24h", &now), Ok(at("2026-11-30T15:00:00Z")));
        assert_eq!(parse_since("7d", &now), Ok(at("2026-11-24T15:00:00Z")));
        assert_eq!(parse_since("1h30m", &now), Ok(at("2026-12-01T13:30:00Z")));
        assert_eq!(parse_since("2 weeks ago", &now), Ok(at("2026-11-17T15:00:00Z")));
        for bad in ["last tuesday", "2026-13-01", "", "yesterday"] {
            let e = parse_since(bad, &now).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    fn run(ending: Option<&str>, pid: i64) -> RunRow {
        RunRow {
            id: 3,
            plan: "plan.yaml".into(),
            plan_name: None,
            kind: "run".into(),
            command: "baton run plan.yaml".into(),
            pid: Some(pid),
            started_at: "2026-11-30T10:00:00Z".into(),
            ended_at: ending.map(|_| "2026-11-30T10:03:20Z".into()),
            exit_code: ending.map(|_| 1),
            ending: ending.map(String::from),
            stopped_by: None,
            message: None,
            cost_usd: 0.5,
            attempts: Vec::new(),
        }
    }

    fn attempt(task: &str, outcome: &str, model: Option<&str>, message: &str) -> AttemptRow {
        AttemptRow {
            id: 1,
            run_id: 3,
            plan: "plan.yaml".into(),
            task: task.into(),
            kind: "task".into(),
            session: 1,
            attempt: Some(1),
            agent: "claude".into(),
            named_agent: None,
            model: model.map(String::from),
            started_at: "2026-11-30T10:00:01Z".into(),
            ended_at: None,
            duration_secs: Some(12.0),
            outcome: outcome.into(),
            verdict: None,
            message: Some(message.into()),
            cost_usd: Some(0.25),
            review_cost_usd: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_creation_tokens: None,
            turns: None,
            waited_secs: None,
            transcript: None,
            cost_estimated: false,
            checks: Vec::new(),
        }
    }

    #[test]
    fn a_run_without_an_ending_runs_only_while_its_baton_holds_the_plan() {
        assert_eq!(run_state(&run(Some("finished"), 7), None), RunState::Ended);
        assert_eq!(run_state(&run(None, 7), Some(7)), RunState::Running);
        // Another baton holds it now (this one was killed and the plan run again), or none.
        assert_eq!(run_state(&run(None, 7), Some(8)), RunState::Interrupted);
        assert_eq!(run_state(&run(None, 7), None), RunState::Interrupted);
        let mut r = run(None, 7);
        r.attempts = vec![attempt("1.1", "running", None, "")];
        let shown = settle(r, RunState::Interrupted);
        assert_eq!(shown.run.attempts[0].outcome, "interrupted");
        assert_eq!(ending_text(&shown), "interrupted (baton was killed; the next run closes it)");
        let mut pipeline = shown.clone();
        pipeline.run.kind = "pipeline".into();
        assert_eq!(ending_text(&pipeline), "interrupted (baton was killed)");
        let running = ShownRun { state: RunState::Running, ..shown };
        assert_eq!(ending_text(&running), "running (pid 7)");
    }

    #[test]
    fn the_runs_table_fits_the_width_and_makes_outside_text_safe() {
        let mut r = run(Some("finished_with_failures"), 7);
        r.attempts = vec![
            attempt("1.1\u{1b}[2J", "failed", Some("claude-sonnet-4-5"), &format!("tests\nfail {}", "x".repeat(200))),
            attempt("1.2", "completed", None, ""),
        ];
        let text = runs_table(&[ShownRun { run: r, state: RunState::Ended }], 100, Timestamp::UNIX_EPOCH);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "run 3 · plan.yaml · 2026-11-30 10:00:00 UTC · 3m 20s · $0.5000 · finished with failures, exit 1");
        let column = |line: &str, word: &str| line.find(word).map(|at| line[..at].chars().count());
        assert_eq!(column(lines[1], "MESSAGE"), column(lines[2], "tests fail"), "{text}");
        assert!(lines[2].contains("1.1\u{fffd}[2J") && !text.contains('\u{1b}'), "{text}");
        assert!(lines[2].contains("$0.2500") && lines[2].contains("12s") && lines[2].ends_with('…'), "{text}");
        // The attempts' rows fit; the run's line says all it has to.
        assert!(lines[1..].iter().all(|l| l.chars().count() <= 100), "{text}");
        assert_eq!(lines[3].split_whitespace().last(), Some("completed"), "no message, nothing after the outcome: {text}");
    }

    fn cost_row(plan: &str, task: &str, model: Option<&str>, started: &str, cost: f64) -> CostRow {
        CostRow { plan: plan.into(), task: task.into(), model: model.map(String::from), started_at: at(started), cost_usd: cost, duration_secs: 2.0, counted: true, review: false, unknown: false, estimated: false }
    }

    #[test]
    fn costs_are_grouped_by_day_in_the_time_zone_and_by_model_costliest_first() {
        let rows = [
            cost_row("a.yaml", "2", Some("opus"), "2026-11-30T04:00:00Z", 0.5),
            cost_row("a.yaml", "1", None, "2026-11-30T06:00:00Z", 0.25),
            cost_row("b.yaml", "1", Some("opus"), "2026-11-30T07:00:00Z", 1.0),
            cost_row("a.yaml", "2", Some(""), "2026-11-30T08:00:00Z", 0.125),
        ];
        let keys = |groups: &[Group]| -> Vec<(Vec<Option<String>>, f64)> { groups.iter().map(|g| (g.key.clone(), g.sum.cost_usd)).collect() };
        let s = |v: &str| Some(v.to_string());
        // 04:00 UTC is the evening before in Toronto.
        let toronto = TimeZone::get("America/Toronto").unwrap();
        assert_eq!(keys(&group(&rows, CostBy::Day, &toronto)), [(vec![s("2026-11-29")], 0.5), (vec![s("2026-11-30")], 1.375)]);
        assert_eq!(keys(&group(&rows, CostBy::Day, &TimeZone::UTC)), [(vec![s("2026-11-30")], 1.875)]);
        assert_eq!(keys(&group(&rows, CostBy::Model, &TimeZone::UTC)), [(vec![s("opus")], 1.5), (vec![None], 0.375)]);
        assert_eq!(
            keys(&group(&rows, CostBy::Task, &TimeZone::UTC)),
            [(vec![s("a.yaml"), s("2")], 0.625), (vec![s("a.yaml"), s("1")], 0.25), (vec![s("b.yaml"), s("1")], 1.0)]
        );
        let groups = group(&rows, CostBy::Model, &TimeZone::UTC);
        let total = Sum { sessions: 4, seconds: 8.0, cost_usd: 1.875, ..Sum::default() };
        let v: serde_json::Value = serde_json::from_str(&cost_json(None, CostBy::Model, None, &groups, &total)).unwrap();
        assert_eq!(v["rows"][1], serde_json::json!({"model": null, "sessions": 2, "seconds": 4.0, "cost_usd": 0.375}));
        assert_eq!(v["total"]["cost_usd"], 1.875);
        let text = cost_table(&CostScope { plan: None, by: CostBy::Model, since: None }, &groups, &total, 80);
        assert_eq!(text, "cost of every plan by model\n\n  MODEL      SESSIONS  TIME     COST\n  opus              2  4.0s  $1.5000\n  (unknown)         2  4.0s  $0.3750\n  total             4  8.0s  $1.8750\n");
    }

    #[test]
    fn an_unknown_task_is_helped_by_the_close_ids() {
        let ids: Vec<String> = ["1.1", "1.2", "2.1", "setup"].map(String::from).to_vec();
        assert_eq!(near_help("1.3", &ids, "p.yaml"), "did you mean `1.1`, `1.2`?");
        assert_eq!(near_help("setpu", &ids, "p.yaml"), "did you mean `setup`?");
        assert_eq!(near_help("9.9", &ids, "p.yaml"), "its tasks are `1.1`, `1.2`, `2.1`, `setup`");
        assert_eq!(near_help("zzzzzz", &ids, "p.yaml"), "its tasks are `1.1`, `1.2`, `2.1`, `setup`");
        assert_eq!(near_help("1.3", &[], "p.yaml"), "`baton status p.yaml` lists the task ids");
    }
}
