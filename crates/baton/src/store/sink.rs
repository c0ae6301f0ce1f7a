//! The store as a sink of the event stream: a run's row when it opens, an attempt's row when
//! it starts (`running`), filled in when it ends and again when its record is written, the
//! waits, who stopped the run, its summary and its exit code; the pipeline's items and planning
//! sessions. Nothing in the engine calls the store: it hears what the terminal hears.
//!
//! A write that meets another process's lock waits in the sink, in order, and is done with the
//! next event; any other failure is told once as a warning (through the other sinks) and the
//! run goes on: the history is not worth a night's work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::params;

use super::{now_text, relative, write_record, Store, StoreError};
use crate::report::event::{AttemptOutcome, Ending, EventKind, Note, PipelineNote, RunEvent, Sink, WaitReason};

/// What kind of process the sink records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `baton run` (also a plan the pipeline runs).
    Run,
    /// The backlog daemon: its planning sessions and items.
    Pipeline,
}

/// The run as the sink opens its row.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub kind: RunKind,
    /// The repository root: paths are kept relative to it.
    pub root: PathBuf,
    /// The plan's key ([`super::plan_key`]); for the pipeline, empty.
    pub plan: String,
    pub command: String,
}

pub struct StoreSink {
    store: Store,
    root: PathBuf,
    run: i64,
    plan: String,
    agent: String,
    /// The attempt row of each task whose attempt is running.
    open: HashMap<String, i64>,
    /// The pipeline's item being worked on: its row, and its plan.
    item: Option<(i64, Option<String>)>,
    stopped_by: Option<&'static str>,
    warnings: Vec<String>,
    failed: bool,
    /// Events whose write met another process's lock on the store: written, in order, before
    /// the next event (the run never waits long on the history).
    pending: std::collections::VecDeque<RunEvent>,
    /// The lock was told about once.
    told_locked: bool,
}

/// How long one write waits for another process's lock on the store before the event waits in
/// `pending` instead: the engine must not stall on its history.
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
/// How long the last event (the exit code) waits, so that the run's rows are all written.
const LAST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most events kept waiting for the lock; past it the history gives up on this run.
const MAX_PENDING: usize = 100_000;

/// Whether the store writes this event (the others pass by untouched).
fn recorded(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Banner { .. }
            | EventKind::AttemptStarted { .. }
            | EventKind::AttemptEnded { .. }
            | EventKind::AttemptRecorded { .. }
            | EventKind::Waiting { .. }
            | EventKind::Error { .. }
            | EventKind::Summary(_)
            | EventKind::Exit { .. }
            | EventKind::Note(
                Note::StopRequested { .. } | Note::Interrupted { .. } | Note::BudgetExhausted { .. } | Note::Pipeline(_) | Note::AgentStarted { .. } | Note::Failover { .. }
            )
    )
}

impl StoreSink {
    /// Opens the run's row (and, for a run, closes what a killed run of the plan left open and
    /// imports the plan's attempt records once).
    pub fn open(mut store: Store, info: RunInfo, records: Option<&crate::run::record::Records>) -> Result<StoreSink, StoreError> {
        match info.kind {
            RunKind::Run => {
                store.close_interrupted(&info.plan)?;
                if let Some(r) = records {
                    store.import_records(&info.plan, r, &info.root)?;
                }
            }
            RunKind::Pipeline => store.close_interrupted_pipeline()?,
        }
        let kind = match info.kind {
            RunKind::Run => "run",
            RunKind::Pipeline => "pipeline",
        };
        store
            .conn()
            .execute(
                "INSERT INTO runs (plan, kind, command, pid, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![info.plan, kind, info.command, std::process::id(), now_text()],
            )
            .map_err(|e| store.sql(e))?;
        let run = store.conn().last_insert_rowid();
        // From here on a write does not hold the run up for long (see `write_in_order`).
        store.conn().busy_timeout(WRITE_WAIT).map_err(|e| store.sql(e))?;
        Ok(StoreSink {
            store,
            // Paths are kept relative to the main checkout, where the store is.
            root: super::home(&info.root),
            run,
            plan: info.plan,
            agent: String::new(),
            open: HashMap::new(),
            item: None,
            stopped_by: None,
            warnings: Vec::new(),
            failed: false,
            pending: std::collections::VecDeque::new(),
            told_locked: false,
        })
    }

    pub fn run_id(&self) -> i64 {
        self.run
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn write(&mut self, ev: &RunEvent) -> rusqlite::Result<()> {
        let conn = self.store.conn();
        let time = super::stamp(ev.time);
        match &ev.kind {
            EventKind::Banner { plan, agent, .. } => {
                self.agent = agent.clone();
                conn.prepare_cached("UPDATE runs SET plan_name = ?2 WHERE id = ?1")?.execute(params![self.run, plan])?;
            }
            EventKind::AttemptStarted { task, attempt, session, model, transcript, max_budget_usd, agent, .. } => {
                let (plan, kind, attempt) = match &self.item {
                    // A planning session: of the plan it writes; it is no attempt of a task.
                    Some((_, plan)) if task.as_str().starts_with("plan:") => (plan.clone().unwrap_or_default(), "planning", None),
                    _ => (self.plan.clone(), "task", Some(*attempt)),
                };
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO attempts (run_id, plan, task, kind, session, attempt, agent, model, started_at, outcome, transcript, cap_usd)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running', ?10, ?11)
                         ON CONFLICT (run_id, task, session) DO UPDATE SET outcome = 'running', started_at = excluded.started_at
                         RETURNING id",
                    )?
                .query_row(params![self.run, plan, task.as_str(), kind, session, attempt, agent.as_ref().unwrap_or(&self.agent), model, time, relative(&self.root, transcript), max_budget_usd.map(super::usd)], |r| r.get(0))?;
                self.open.insert(task.to_string(), id);
            }
            EventKind::AttemptEnded { task, outcome, duration, cost_usd } => {
                // Forgotten only once written: a write that waits for a lock is done again.
                let Some(&id) = self.open.get(task.as_str()) else { return Ok(()) };
                let answered = matches!(outcome, AttemptOutcome::Reported { .. });
                let (outcome, message) = outcome_words(outcome);
                conn.prepare_cached(
                    "UPDATE attempts SET outcome = ?2, message = COALESCE(?3, message), ended_at = ?4, duration_secs = ?5, cost_usd = ?6,
                        attempt = CASE WHEN ?2 IN ('limited', 'throttled', 'interrupted', 'systemic', 'capped') THEN NULL ELSE attempt END
                     WHERE id = ?1",
                )?
                .execute(params![id, outcome, message, time, duration.as_secs_f64(), cost_usd])?;
                if answered {
                    // Its agent answered a session begun after a limit was recorded: that limit is over.
                    conn.prepare_cached(
                        "UPDATE waits SET until = ?2 WHERE kind = 'usage_limit' AND until > ?2
                            AND agent = (SELECT agent FROM attempts WHERE id = ?1) AND started_at < (SELECT started_at FROM attempts WHERE id = ?1)",
                    )?
                    .execute(params![id, time])?;
                }
                self.open.remove(task.as_str());
            }
            EventKind::AttemptRecorded { task, record } => {
                let found: Option<i64> = conn
                    .prepare_cached("SELECT id FROM attempts WHERE run_id = ?1 AND task = ?2 AND session = ?3")?
                    .query_row(params![self.run, task.as_str(), record.session], |r| r.get(0))
                    .ok();
                if let Some(id) = found {
                    // The row, its checks and its review as one commit.
                    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
                    write_record(&tx, id, record)?;
                    tx.commit()?;
                }
            }
            EventKind::Waiting { reason, until } => {
                let (kind, task, message) = wait_words(reason);
                conn.prepare_cached("INSERT INTO waits (run_id, task, kind, message, started_at, until, agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                    .execute(params![self.run, task, kind, message, time, super::stamp(*until), limited_agent(reason)])?;
            }
            EventKind::Note(Note::Failover { task, from, reason, .. }) => {
                // The agent's limit, though nothing waits for it: its tasks went elsewhere.
                let (kind, _, message) = wait_words(reason);
                let wait = match reason {
                    WaitReason::UsageLimit { wait, .. } => *wait,
                    _ => Duration::ZERO,
                };
                conn.prepare_cached("INSERT INTO waits (run_id, task, kind, message, started_at, until, agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                    .execute(params![self.run, task.as_str(), kind, message, time, super::stamp(ev.time + wait), from])?;
            }
            EventKind::Note(Note::AgentStarted { task, pid, .. }) => {
                if let Some(&id) = self.open.get(task.as_str()) {
                    conn.prepare_cached("UPDATE attempts SET agent_pid = ?2 WHERE id = ?1")?.execute(params![id, pid])?;
                }
            }
            EventKind::Note(Note::StopRequested { .. }) => {
                self.stopped_by.get_or_insert("stop file");
            }
            EventKind::Note(Note::Interrupted { .. }) => {
                self.stopped_by.get_or_insert("signal");
            }
            EventKind::Note(n @ Note::BudgetExhausted { .. }) => {
                self.stopped_by.get_or_insert("budget");
                conn.prepare_cached("UPDATE runs SET message = COALESCE(message, ?2) WHERE id = ?1")?.execute(params![self.run, crate::report::render::note_text(n)])?;
            }
            EventKind::Error { error, .. } => {
                conn.prepare_cached("UPDATE runs SET message = COALESCE(message, ?2) WHERE id = ?1")?.execute(params![self.run, error.lines().next().unwrap_or_default()])?;
            }
            EventKind::Note(Note::Pipeline(p)) => self.pipeline(p, &time)?,
            EventKind::Summary(s) => {
                let ending = ending_word(&s.how);
                conn.prepare_cached("UPDATE runs SET ended_at = ?2, ending = ?3, stopped_by = ?4, cost_usd = ?5 WHERE id = ?1")?
                    .execute(params![self.run, time, ending, self.stopped_by, s.cost])?;
            }
            EventKind::Exit { code } => {
                // The pipeline and a run that ended before its summary (an error) end here.
                conn.prepare_cached(
                    "UPDATE runs SET exit_code = ?2, ended_at = COALESCE(ended_at, ?3),
                        ending = COALESCE(ending, CASE ?2 WHEN 0 THEN 'finished' WHEN 4 THEN 'stopped' WHEN 6 THEN 'budget_exhausted' ELSE 'error' END),
                        stopped_by = COALESCE(stopped_by, ?4),
                        cost_usd = CASE WHEN cost_usd > 0 THEN cost_usd ELSE (SELECT COALESCE(SUM(COALESCE(cost_usd, 0) + COALESCE(review_cost_usd, 0)), 0) FROM attempts WHERE run_id = ?1) END
                     WHERE id = ?1",
                )?
                .execute(params![self.run, code, time, self.stopped_by])?;
                if let Some((id, _)) = &self.item {
                    let outcome = if *code == crate::exit::Exit::Stopped.code() { "stopped" } else { "failed" };
                    conn.execute("UPDATE pipeline_items SET outcome = ?3, ended_at = ?2 WHERE id = ?1 AND outcome = 'running'", params![id, time, outcome])?;
                    self.item = None;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &PipelineNote, time: &str) -> rusqlite::Result<()> {
        let conn = self.store.conn();
        let rel = |p: &Path| relative(&self.root, p);
        match p {
            PipelineNote::PickedUp { item, .. } => {
                conn.execute("INSERT INTO pipeline_items (run_id, item, started_at, outcome) VALUES (?1, ?2, ?3, 'running')", params![self.run, rel(item), time])?;
                self.item = Some((conn.last_insert_rowid(), None));
            }
            PipelineNote::Planning { plan, .. }
            | PipelineNote::Resuming { plan, .. }
            | PipelineNote::Replanning { plan, .. }
            | PipelineNote::Asking { plan, .. }
            | PipelineNote::PlanWritten { plan, .. } => {
                if let Some((id, known)) = &mut self.item {
                    let plan = rel(&self.root.join(plan));
                    conn.execute("UPDATE pipeline_items SET plan = ?2 WHERE id = ?1", params![*id, plan])?;
                    *known = Some(plan);
                }
            }
            PipelineNote::Archived { .. } => {
                if let Some((id, _)) = &self.item {
                    conn.execute("UPDATE pipeline_items SET outcome = 'archived', ended_at = ?2 WHERE id = ?1", params![id, time])?;
                    self.item = None;
                }
            }
            PipelineNote::ItemFailed { why, .. } => {
                if let Some((id, _)) = &self.item {
                    conn.execute("UPDATE pipeline_items SET outcome = 'failed', message = ?3, ended_at = ?2 WHERE id = ?1", params![id, time, why])?;
                    self.item = None;
                }
            }
            PipelineNote::Idle | PipelineNote::Watching { .. } => {
                // Back to watching: the item before is over (failed or archived, told already).
                self.item = None;
            }
            _ => {}
        }
        Ok(())
    }
}

impl StoreSink {
    /// Writes the waiting events, then `ev`; an event that meets another process's lock waits
    /// with those after it. Any other failure ends the history of this run, told once.
    fn write_in_order(&mut self, ev: &RunEvent) {
        let last = matches!(ev.kind, EventKind::Exit { .. });
        if last {
            let _ = self.store.conn().busy_timeout(LAST_WAIT);
        }
        while let Some(next) = self.pending.pop_front() {
            if let Err(e) = self.write(&next) {
                self.pending.push_front(next);
                self.pending.push_back(ev.clone());
                return self.met(e, last);
            }
        }
        if let Err(e) = self.write(ev) {
            self.pending.push_back(ev.clone());
            self.met(e, last);
        }
    }

    /// A write failed: a lock keeps the events waiting (told once, and at the end what stayed
    /// unwritten); anything else ends this run's history.
    fn met(&mut self, e: rusqlite::Error, last: bool) {
        let locked = super::busy(&e) && self.pending.len() < MAX_PENDING;
        let e = self.store.sql(e);
        if !locked {
            self.failed = true;
            self.pending.clear();
            self.warnings.push(format!("{e}; the run goes on, but its history from here on is not recorded ({})", e.help()));
            return;
        }
        if !self.told_locked {
            self.told_locked = true;
            self.warnings.push(format!("{e}; the run goes on and its history is written once the lock is free ({})", e.help()));
        }
        if last {
            let n = self.pending.len();
            self.warnings.push(format!("the run ended with {n} event(s) of its history unwritten: {} stayed locked; its spending may be missing from the history and the budget", self.store.path().display()));
        }
    }
}

impl Sink for StoreSink {
    fn event(&mut self, ev: &RunEvent) {
        if self.failed || !recorded(&ev.kind) {
            return;
        }
        self.write_in_order(ev);
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// An attempt's outcome as the store says it, and its message when it has one.
fn outcome_words(o: &AttemptOutcome) -> (String, Option<String>) {
    match o {
        AttemptOutcome::Reported { status, .. } => (status.to_string(), None),
        AttemptOutcome::Failed { message } => ("failed".into(), Some(message.clone())),
        AttemptOutcome::Limited => ("limited".into(), None),
        AttemptOutcome::Throttled => ("throttled".into(), None),
        AttemptOutcome::Lost { message } => ("lost".into(), Some(message.clone())),
        AttemptOutcome::Systemic { message } => ("systemic".into(), Some(message.clone())),
        AttemptOutcome::Interrupted => ("interrupted".into(), None),
        AttemptOutcome::Capped { message } => ("capped".into(), Some(message.clone())),
        AttemptOutcome::Planned { written: true } => ("planned".into(), None),
        AttemptOutcome::Planned { written: false } => ("failed".into(), None),
    }
}

/// The agent whose usage limit a wait is.
fn limited_agent(r: &WaitReason) -> Option<&str> {
    match r {
        WaitReason::UsageLimit { agent, .. } => agent.as_deref(),
        _ => None,
    }
}

fn wait_words(r: &WaitReason) -> (&'static str, Option<String>, Option<String>) {
    match r {
        WaitReason::Retry { task, attempt, max } => ("retry", Some(task.to_string()), Some(format!("after attempt {attempt}/{max}"))),
        WaitReason::Breaker { failures, .. } => ("breaker", None, Some(format!("{failures} failures in a row"))),
        WaitReason::UsageLimit { message, .. } => ("usage_limit", None, Some(message.clone())),
        WaitReason::Throttling { message } => ("throttling", None, Some(message.clone())),
        WaitReason::Planning { limit: true, message } => ("usage_limit", None, Some(message.clone())),
        WaitReason::Planning { limit: false, message } => ("throttling", None, Some(message.clone())),
    }
}

fn ending_word(e: &Ending) -> &'static str {
    match e {
        Ending::Finished | Ending::FinishedFrom { .. } => "finished",
        Ending::FinishedWithFailures => "finished_with_failures",
        Ending::SingleTask { .. } => "single_task",
        Ending::Blocked => "blocked",
        Ending::Stopped => "stopped",
        Ending::BudgetExhausted => "budget_exhausted",
        Ending::Error { .. } => "error",
    }
}
