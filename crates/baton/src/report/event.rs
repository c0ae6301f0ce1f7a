//! The one event type of a run, and the reporter that hands each event to every sink.
//!
//! Events are data: the engine, the pipeline and the attempts say what happened with typed
//! fields, and the sinks decide how it reads (`report::render` for the words, the terminal,
//! the run log). Sinks only listen and never reach back into the engine.
//!
//! The events are also a public format: `baton run --message-format json` prints each one as a
//! JSON object (`report::json`, documented in docs/events.md). The serde attributes here are
//! that format: renaming a variant or a field changes it, so only add.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::agent::StreamEvent;
use crate::plan::graph::Wait;
use crate::plan::{Status, TaskId};
use crate::report::json::{blocked_tasks, path_text, paths_text, pipeline_kind, secs, stream_kind, timestamp};
use crate::report::status::Counts;

pub use super::render::{clock, cost, human, human_secs, local_time, verbose_text};

#[derive(Debug, Clone)]
pub struct RunEvent {
    pub time: jiff::Timestamp,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Which plan, which agent, found where, and how the run goes.
    Banner {
        plan: String,
        agent: String,
        binary: String,
        counts: Counts,
        parallel: Option<usize>,
        commit: bool,
        /// The run's other agents (fallbacks, those tasks name): `name (kind, where)`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        others: Vec<String>,
    },
    /// One of baton's own decisions.
    Note(Note),
    /// `session` numbers every agent session of the task (limits and stops included), the name
    /// of its files in the logs; `model` is the one baton asked for; `transcript` where the
    /// agent's stream goes.
    AttemptStarted {
        task: TaskId,
        name: String,
        attempt: u32,
        max_attempts: u32,
        session: u32,
        model: Option<String>,
        #[serde(serialize_with = "path_text")]
        transcript: PathBuf,
        /// The session's spending cap (what remained of the budget), when one is set.
        max_budget_usd: Option<f64>,
        /// The agent it runs on, by its name in baton.toml (`claude`, `codex-main`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// A line of the agent's live stream.
    Agent {
        task: TaskId,
        agent: &'static str,
        #[serde(serialize_with = "stream_kind")]
        event: StreamEvent,
    },
    /// An attempt ended.
    AttemptEnded {
        task: TaskId,
        outcome: AttemptOutcome,
        #[serde(rename = "duration_secs", serialize_with = "secs")]
        duration: Duration,
        cost_usd: Option<f64>,
    },
    /// A check (`[verify]`, `meta.verify`, the task's `verify`) started after the agent reported
    /// the task completed: the `index`th (from 1) of `count`.
    CheckStarted { task: TaskId, command: String, index: usize, count: usize },
    /// A check ended: `exit` its exit code, `signal` the signal that ended it, `timed_out` when
    /// `[verify] timeout_seconds` did. Not sent for a check that a stop ended.
    CheckEnded {
        task: TaskId,
        command: String,
        passed: bool,
        exit: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        #[serde(rename = "duration_secs", serialize_with = "secs")]
        duration: Duration,
    },
    /// A reviewer session judges the task's attempt (see `crate::run::review`).
    ReviewStarted { task: TaskId, model: Option<String> },
    /// The review ended: a verdict (`PASS`, `WARN`, `FAIL`) with findings, or `problem` saying
    /// why there is none.
    ReviewEnded { task: TaskId, verdict: Option<String>, findings: Vec<String>, problem: Option<String> },
    /// The attempt's record was written (`.baton/logs/<plan>/<task>/attempt-<session>.json`):
    /// everything known about it — tokens, model, checks, review, cost.
    AttemptRecorded { task: TaskId, record: Box<crate::run::record::AttemptRecord> },
    /// A task reached a state the run will not change again; `attempts` when it failed.
    TaskFinished { task: TaskId, name: String, status: Status, message: String, attempts: Option<u32> },
    /// baton is waiting (back-off, limit, breaker) until `until`.
    Waiting {
        reason: WaitReason,
        #[serde(serialize_with = "timestamp")]
        until: jiff::Timestamp,
    },
    Warning { text: String },
    /// An error that ends the run (or stops it from starting), and how to get past it.
    Error { error: String, help: Option<String> },
    Summary(Summary),
    /// The last event: the exit code the command ends with (after hooks, smoke tests and the
    /// notification).
    Exit { code: i32 },
}

/// How an attempt ended, as its line says it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The agent reported done: completed or skipped, from the status file or its final answer.
    Reported { status: Status, from_file: bool },
    Failed { message: String },
    /// A usage limit: not counted as an attempt.
    Limited,
    /// Server-side throttling: not counted as an attempt.
    Throttled,
    /// The environment is broken (not logged in, …): the run stops.
    Systemic { message: String },
    /// baton's stop ended it: not counted as an attempt.
    Interrupted,
    /// The executor lost it (a cluster's node died, its job never started): not counted.
    Lost { message: String },
    /// It reached the spending cap it was given (what remained of the budget): not counted;
    /// the run ends, budget exhausted.
    Capped { message: String },
    /// A planning session of the pipeline: whether it wrote a plan.
    Planned { written: bool },
}

impl AttemptOutcome {
    pub fn ok(&self) -> bool {
        matches!(self, AttemptOutcome::Reported { .. } | AttemptOutcome::Planned { written: true })
    }
}

/// What became of a cluster job a killed baton left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEnd {
    /// It was stopped (or had ended) and is deleted.
    Stopped,
    /// It still waited for resources: Ray cannot cancel it, but its input is gone, so it runs
    /// nothing; Ray fails it once its start times out.
    Waiting,
    /// The cluster does not know it (its head restarted, or it is another cluster's).
    Gone,
}

/// Why nothing (or a task) starts for a while.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// A failed attempt's back-off before the task's next attempt.
    Retry { task: TaskId, attempt: u32, max: u32 },
    /// The circuit breaker is open.
    Breaker {
        failures: u32,
        #[serde(rename = "remaining_secs", serialize_with = "secs")]
        remaining: Duration,
    },
    /// A usage limit; `reset` is the reset time in the zone the CLI named, when it said one.
    UsageLimit {
        message: String,
        reset: Option<String>,
        known: bool,
        #[serde(rename = "wait_secs", serialize_with = "secs")]
        wait: Duration,
        /// The agent (its name in baton.toml) whose limit it is: its tasks wait.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    Throttling { message: String },
    /// The pipeline's planning session met a usage limit (`limit`) or throttling.
    Planning { limit: bool, message: String },
}

/// One of baton's decisions, with what it was about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// `--resume-from`: the run starts at this task (whose status is `status`), leaving out the
    /// unfinished tasks before it (`left_out`).
    Resuming { from: String, status: Status, left_out: Vec<TaskId> },
    /// The next task, its section, and the dependencies it waited for.
    NextTask { task: TaskId, name: String, section: String, deps: Vec<TaskId> },
    /// `--single-task`: the task is done and the run stops.
    SingleTaskDone,
    StopRequested { running: usize },
    /// Ctrl+C: a graceful stop, or (`now`) the second one that ends running agents.
    Interrupted { now: bool },
    /// Stopping a run that had one: the agent is ended now.
    StoppingAgent { task: TaskId },
    /// The agent's process started; `named_agent` when it runs as one of the CLI's named
    /// agents (the task's `agent:`).
    AgentStarted {
        task: TaskId,
        agent: String,
        named_agent: Option<String>,
        pid: i32,
        group: i32,
        #[serde(serialize_with = "path_text")]
        cwd: PathBuf,
        /// The cluster job that runs it, when it runs on one (`[executor] kind = "ray"`): then
        /// `pid` and `group` are 0 and `cwd` is the working copy its result comes back to.
        #[serde(skip_serializing_if = "Option::is_none")]
        job: Option<String>,
    },
    /// A task names an agent (`agent: NAME`) the run cannot pass: the working copy has no
    /// `file` defining it, or (`file` is `None`) the agent kind `cli` has no named agents. The
    /// task runs without it; told once per name in a run.
    NamedAgentIgnored {
        task: TaskId,
        name: String,
        cli: String,
        file: Option<PathBuf>,
        /// The file is in the checkout but not in the task's worktree: it is not committed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        uncommitted: bool,
    },
    /// `from` met a usage limit further away than `[agent] failover_after_minutes`: `task`
    /// (and every task that would run on `from`) runs on `to` until the reset in `reason`.
    Failover { task: TaskId, from: String, to: String, reason: WaitReason },
    /// An earlier run met this usage limit of `agent` and it has not reset yet: its tasks go to
    /// a fallback from the start.
    KnownLimit { agent: String, reason: WaitReason },
    /// A deadline ended the agent.
    Deadline { task: TaskId, total: Option<u64>, idle: Option<u64> },
    /// A task left in progress by an interrupted run goes back to pending.
    Recovered { task: TaskId },
    /// A crashed run's task had left uncommitted files: committed as its partial work.
    PartialWorkCommitted {
        task: TaskId,
        #[serde(serialize_with = "paths_text")]
        files: Vec<PathBuf>,
        message: String,
    },
    /// Landings an interrupted run had begun, finished and committed.
    LandingFinished { tasks: Vec<String>, files: usize },
    /// A task whose landing an interrupted run finished, recorded as its last attempt said.
    LandedBeforeInterruption { task: TaskId, status: Status },
    BreakerHalfOpen,
    BreakerOpened {
        failures: u32,
        #[serde(rename = "cool_down_secs", serialize_with = "secs")]
        cool_down: Duration,
    },
    /// Tasks that can never run in this run, and why.
    Blocked {
        #[serde(serialize_with = "blocked_tasks")]
        tasks: Vec<(TaskId, Wait)>,
    },
    /// The agent changed the plan in the main checkout.
    PlanReloaded,
    /// The plan was edited on disk; baton's changes went on top.
    PlanRebased,
    /// A worktree agent's edits of its plan merged into the main plan.
    PlanMerged { task: TaskId },
    TasksAdded { task: TaskId, added: Vec<TaskId> },
    /// The agent replaced the task in the plan.
    TaskGone { task: TaskId },
    /// A commit baton made; `plan` when it was (or included) the plan state.
    Committed { message: String, plan: bool },
    StatusFileRemoved {
        #[serde(serialize_with = "path_text")]
        path: PathBuf,
    },
    StaleStopFileRemoved {
        #[serde(serialize_with = "path_text")]
        path: PathBuf,
    },
    ClaimRemoved { agent: String, path: String, run_ended: bool },
    /// Something an earlier run left (a worktree, a branch) was cleared or rescued.
    Cleared { task: Option<TaskId>, what: String },
    /// The run's attempts run as jobs of the Ray cluster at `address`, their work going through
    /// the git remote `remote`.
    OnCluster { address: String, remote: String },
    /// A cluster job a killed baton left was stopped and deleted, its refs too; what it had sent
    /// back is kept on `branch`.
    JobRecovered { task: TaskId, job: String, branch: Option<String>, how: JobEnd },
    /// A rescued branch was deleted; `tip` restores it.
    RescuedBranchDeleted { branch: String, tip: String, landed: bool },
    WorktreeReady {
        task: TaskId,
        #[serde(serialize_with = "path_text")]
        path: PathBuf,
        branch: String,
        fork: String,
        reused: bool,
    },
    Landed { task: TaskId, files: usize, merged: usize },
    WorkKept {
        task: TaskId,
        #[serde(serialize_with = "path_text")]
        path: PathBuf,
        branch: String,
    },
    MergeConflict {
        task: TaskId,
        #[serde(serialize_with = "paths_text")]
        paths: Vec<PathBuf>,
        hint: String,
    },
    /// The user's uncommitted changes a parallel run protects.
    UserChangesProtected {
        #[serde(serialize_with = "paths_text")]
        paths: Vec<PathBuf>,
    },
    /// A ready task that does not start beside the running ones, and why.
    Held { task: TaskId, why: String },
    /// No new attempt starts: the budget (`scope`: `plan` over all its runs, or this `run`)
    /// has `remaining_usd` left of `budget_usd`, less than the next attempt is expected to
    /// cost (`estimate_usd`: the median of the plan's recorded attempts, or `[budget]
    /// attempt_estimate_usd`); running attempts finish.
    /// `raise` names where that budget was set (`meta.budget_usd`, `[budget] plan_usd`,
    /// `--max-cost`, `[budget] run_usd`), `estimate_from` where the estimate comes from.
    BudgetExhausted {
        scope: String,
        budget_usd: f64,
        spent_usd: f64,
        remaining_usd: f64,
        estimate_usd: f64,
        running: usize,
        raise: String,
        estimate_from: String,
    },
    /// The run starts with a budget: where it stands (the tighter of the plan's and the
    /// run's), told once before the first task.
    Budget { scope: String, budget_usd: f64, spent_usd: f64, remaining_usd: f64, estimate_usd: f64, estimate_from: String },
    /// The run spent more than its budget: a session went past its cap (or the agent cannot
    /// be capped).
    OverBudget { scope: String, budget_usd: f64, spent_usd: f64 },
    /// Throttling cut how many agents start at once.
    Throttling { limit: usize },
    HookStarted { which: &'static str, command: String },
    HookOutput { line: String },
    HookEnded { text: String },
    SmokeOutput { line: String },
    SmokeEnded { text: String },
    /// A line of the notification as the console shows it.
    Notice { line: String },
    /// Part of the plan ran (`what`), the rest waits: no smoke tests, no notification.
    PartialRun { what: String, unfinished: usize },
    /// The pipeline has no JSON output of its own: its notes serialize as their kind alone
    /// (`{"note": "pipeline", "pipeline": "archived"}`), their words in the event's `text`.
    Pipeline(#[serde(serialize_with = "pipeline_kind")] PipelineNote),
}

/// The backlog daemon's decisions.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineNote {
    Stopping,
    Idle,
    /// An item another process holds open for writing: read once it is closed.
    BeingWritten { item: PathBuf, pid: u32, by: String },
    /// `--once` gave up on items still being written after `waited`.
    StillBeingWritten { items: Vec<PathBuf>, waited: Duration },
    Watching { folders: usize, waiting: usize },
    /// A plan the pipeline never accepted, kept aside before planning again.
    KeptAside { item: PathBuf, aside: PathBuf },
    Archived { item: PathBuf, elapsed: Duration, dest: PathBuf },
    PickedUp { kind: String, item: PathBuf },
    Planning { item: PathBuf, plan: PathBuf, why: String },
    Resuming { item: PathBuf, plan: PathBuf },
    Replanning { item: PathBuf, plan: PathBuf },
    Asking { item: PathBuf, design: PathBuf, plan: PathBuf },
    AskingAgain { plan: PathBuf },
    PlanWritten { item: PathBuf, plan: PathBuf },
    /// The item failed (`why`): it stays in the backlog, not tried again until it changes.
    ItemFailed { item: PathBuf, why: String },
    Other { text: String },
}

/// How the run ended, in numbers: the last line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub how: Ending,
    #[serde(rename = "elapsed_secs", serialize_with = "secs")]
    pub elapsed: Duration,
    pub counts: Counts,
    #[serde(rename = "cost_usd")]
    pub cost: f64,
    /// Agent sessions whose cost is not in `cost` (their agent said none, and baton.toml has
    /// no `[prices]` for their tokens).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unpriced_sessions: u32,
    /// Every task of the plan as the run left it, in plan order.
    pub tasks: Vec<TaskReport>,
}

/// One task at the end of a run: where the plan left it and what this run spent on it. The
/// summary's slowest and failed tasks and the JUnit report are read from these.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskReport {
    pub id: TaskId,
    pub name: String,
    /// The id of its section, and the section's name.
    pub section: String,
    pub section_name: Option<String>,
    pub status: Status,
    /// Attempts counted in the plan, over every run.
    pub attempts: u32,
    /// Agent sessions this run started for the task (usage limits and stops included).
    pub sessions: u32,
    /// The agent's time on the task in this run: its sessions added up.
    #[serde(rename = "agent_secs", serialize_with = "secs")]
    pub agent_time: Duration,
    #[serde(rename = "cost_usd")]
    pub cost: f64,
    pub last_error: Option<String>,
    pub result_message: Option<String>,
    /// Why a pending task can never run (a failed dependency, a cycle, …).
    pub blocked: Option<String>,
}

/// What a run spent on one task: its sessions, their time and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskUsage {
    pub sessions: u32,
    pub time: Duration,
    pub cost: f64,
}

impl TaskReport {
    /// Every task of `plan`, in plan order, with what `usage` says this run spent on it.
    pub fn of_plan(plan: &crate::plan::Plan, usage: &std::collections::HashMap<TaskId, TaskUsage>) -> Vec<TaskReport> {
        let blocked: std::collections::HashMap<TaskId, Wait> = crate::plan::graph::blocked(plan).into_iter().collect();
        plan.sections
            .iter()
            .flat_map(|s| s.tasks.iter().map(move |t| (s, t)))
            .map(|(s, t)| {
                let used = usage.get(&t.id).copied().unwrap_or_default();
                TaskReport {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    section: s.id.clone(),
                    section_name: s.name.clone(),
                    status: t.status,
                    attempts: t.attempts,
                    sessions: used.sessions,
                    agent_time: used.time,
                    cost: used.cost,
                    last_error: t.last_error.clone(),
                    result_message: t.result_message.clone(),
                    blocked: blocked.get(&t.id).map(|w| w.to_string()),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    Finished,
    /// `--resume-from` left these many tasks pending.
    FinishedFrom { from: String, pending: usize },
    FinishedWithFailures,
    SingleTask { task: TaskId, status: Option<Status> },
    Blocked,
    Stopped,
    /// The budget could not pay for another attempt.
    BudgetExhausted,
    /// An error; `attempts` started before it.
    Error { attempts: u32 },
}

/// Something that shows or stores events.
pub trait Sink: Send {
    fn event(&mut self, ev: &RunEvent);
    /// Called once at the end of the run.
    fn finish(&mut self) {}
    /// What the sink could not do (a store that cannot be written), told to every sink as
    /// warnings after the event that met it: a sink never reaches back into the reporter.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Fans events out to every sink. Cloning gives another handle to the same sinks, so that
/// attempts running at the same time can all report; a sink sees one event at a time.
#[derive(Clone, Default)]
pub struct Reporter {
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
}

impl Reporter {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Reporter {
        Reporter {
            sinks: Arc::new(Mutex::new(sinks)),
        }
    }

    fn with_sinks(&self, f: impl FnOnce(&mut Vec<Box<dyn Sink>>)) {
        // A sink that panicked poisons the lock; reporting must go on regardless.
        let mut guard = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }

    pub fn add(&self, sink: Box<dyn Sink>) {
        self.with_sinks(|s| s.push(sink));
    }

    pub fn emit(&self, kind: EventKind) {
        let ev = RunEvent {
            time: jiff::Timestamp::now(),
            kind,
        };
        self.with_sinks(|sinks| {
            for s in sinks.iter_mut() {
                s.event(&ev);
            }
            let told: Vec<String> = sinks.iter_mut().flat_map(|s| s.take_warnings()).collect();
            for text in told {
                let warning = RunEvent { time: ev.time, kind: EventKind::Warning { text } };
                for s in sinks.iter_mut() {
                    s.event(&warning);
                }
            }
        });
    }

    pub fn note(&self, note: Note) {
        self.emit(EventKind::Note(note));
    }

    pub fn warn(&self, text: impl Into<String>) {
        self.emit(EventKind::Warning { text: text.into() });
    }

    /// An error that ends the run, for every sink.
    pub fn error(&self, e: &dyn crate::error::Help) {
        self.emit(EventKind::Error { error: e.to_string(), help: e.help() });
    }

    pub fn finish(&self) {
        self.with_sinks(|sinks| {
            for s in sinks.iter_mut() {
                s.finish();
            }
        });
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
