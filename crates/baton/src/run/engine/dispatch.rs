//! The dispatcher of `baton run`: one loop that owns the run's state and decides what happens
//! next — which tasks start, whether the breaker or a usage limit holds them back, how long to
//! wait, when to stop — and records every outcome in the plan. Attempts run as their own
//! futures and report back through the join set; nothing else writes the plan.
//!
//! Sequential and parallel runs are the same loop: sequential runs one task at a time in the
//! main checkout; `--parallel` runs tasks of one `parallel_group` side by side, each in its own
//! git worktree, and lands their work with copy-back.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::parallel::NotLanded;
use super::workspace::{self, DirtyTree, NotStarted, Workspace};
use crate::run::attempt::{self, AttemptRun, AttemptSpec};
use crate::root::GitUse;
use crate::run::lock::{CheckoutLock, PlanLock};
use crate::run::process::SpawnError;
use crate::run::prompt::{self, PromptVars};
use crate::run::record::{self, AttemptRecord, Records};
use crate::run::schedule::{self, Active, Footprint};
use crate::run::stop::{self, Stop};
use crate::run::verdict::{self, Evidence, Verdict};
use crate::agent::Agent;
use crate::config::Config;
use crate::exit::Exit;
use crate::git;
use crate::plan::graph::{self, Wait};
use crate::plan::{PlanError, PlanFile, SaveOutcome, Status, Task, TaskField, TaskId};
use crate::policy::backoff::{jitter_from_seed, RetryBackoff, Throttle, ThrottleBackoff};
use crate::policy::breaker::{Admission, BreakerState, CircuitBreaker};
use crate::policy::limit;
use crate::report::event::{self, EventKind, Reporter};
use crate::report::status::{cut, Counts};
use crate::report::terminal::run_reporter;

/// Wall-clock "now" for usage-limit reset times. Tests pin it with `BATON_FAKE_NOW` (a zoned
/// date-time such as `2026-11-25T17:59:58-05:00[America/Toronto]`); time then flows on from
/// there at the real rate, so waits are computed against the pinned instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    offset: jiff::SignedDuration,
}

impl Clock {
    fn from_env() -> Result<Clock, String> {
        let offset = match std::env::var("BATON_FAKE_NOW") {
            Ok(s) if !s.is_empty() => {
                let pinned: jiff::ZonedDateTime =
                    s.parse().map_err(|e| format!("BATON_FAKE_NOW={s:?} is not a zoned date-time: {e}"))?;
                pinned.timestamp().duration_since(jiff::Timestamp::now())
            }
            _ => jiff::SignedDuration::ZERO,
        };
        Ok(Clock { offset })
    }

    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now() + self.offset
    }

    fn zoned(&self) -> jiff::ZonedDateTime {
        self.now().to_zoned_datetime(jiff::tz::TimeZone::system())
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub plan: PathBuf,
    pub dry_run: bool,
    pub resume_from: Option<String>,
    pub single_task: bool,
    pub verbose: bool,
    pub parallel: bool,
    pub jobs: Option<usize>,
    pub skip_smoke: bool,
    /// Uncommitted changes at the start: refused (`baton run`), or kept out of every commit
    /// (`--allow-dirty`; the default, which the pipeline uses).
    pub dirty: DirtyTree,
    /// The caller (the pipeline daemon) holds the checkout's lock for this run already.
    pub checkout_held: bool,
}

/// Runs a plan to its end and says how it ended.
pub fn run(opts: RunOptions) -> Exit {
    crate::exit::block_on(run_plan(opts, None))
}

/// Runs one plan inside a runtime. `stop` is the caller's stop signal (the pipeline daemon
/// drives plans in-process under its own); without one, this run clears a stale stop file and
/// watches signals and the stop file itself.
pub async fn run_plan(opts: RunOptions, stop: Option<watch::Receiver<Stop>>) -> Exit {
    let root = crate::root::root_for_plan(&opts.plan);
    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n  help: fix or remove this setting (see README.md, \"Configuration\")");
            return Exit::InvalidInput;
        }
    };
    let file = match PlanFile::load(&opts.plan) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}", e.render());
            return Exit::InvalidInput;
        }
    };
    if let Some(id) = &opts.resume_from {
        if file.plan().task(id).is_none() {
            eprintln!(
                "error: --resume-from {id}: no task '{id}' in {}\n  help: `baton status {}` lists the task ids",
                opts.plan.display(),
                opts.plan.display()
            );
            return Exit::InvalidInput;
        }
    }
    let agent = match crate::agent::for_config(&config, &root, opts.dry_run) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return Exit::InvalidInput;
        }
    };
    let jobs = if opts.parallel { opts.jobs.unwrap_or(config.run.jobs).max(1) } else { 1 };
    // Decided before anything is written: a refusal leaves the folder as it was.
    let git_use = match crate::root::git_use(&root, &config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}\n  help: {}\nNothing was run or changed.", e.help());
            return Exit::InvalidInput;
        }
    };
    if opts.parallel && git_use == GitUse::Off {
        eprintln!("error: --parallel needs git (each task runs in its own worktree), and baton.toml sets `[run] commit = false`\n  help: run without --parallel, or remove `commit = false`");
        return Exit::InvalidInput;
    }
    let plan_abs = std::path::absolute(&opts.plan).unwrap_or_else(|_| opts.plan.clone());
    if opts.dry_run {
        return dry_run(&file, &opts, &config, agent.as_ref(), jobs, &DryGit { root: &root, plan: &plan_abs, git_use });
    }

    let logs_dir = root.join(&config.paths.logs_dir);
    if config.paths.logs_dir.starts_with(".baton") {
        record::ignore_logs_root(&root.join(".baton"));
    }
    let _lock = match PlanLock::acquire(&logs_dir.join("locks"), &opts.plan) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}\n  help: wait for it to finish, or stop it with `baton stop {}`", opts.plan.display());
            return Exit::InvalidInput;
        }
    };
    // Two plans in one checkout would share its status file and working tree, and each one's
    // commits could take the other's work.
    record::ignore_logs_root(&root.join(".baton"));
    let _checkout = match (opts.checkout_held, CheckoutLock::acquire(&root, &opts.plan)) {
        (true, _) => None,
        (false, Ok(l)) => Some(l),
        (false, Err(e)) => {
            eprintln!(
                "error: {e}\n  help: wait for it to finish or stop it (`baton stop`), or run this plan in a checkout of its own (`git worktree add …`)"
            );
            return Exit::InvalidInput;
        }
    };
    // Holding the lock, no other baton can be saving this plan: a temp file is a crash's.
    crate::plan::remove_stale_temps(&opts.plan);
    let records = Records::new(&logs_dir, &opts.plan);
    records.remove_stale_temps();
    let reporter = run_reporter(opts.verbose, &records.dir().join("run.log"));
    let workspace = if !opts.parallel && git_use == GitUse::Commit {
        match Workspace::open(&root, &plan_abs, &config, records.dir().join("task-in-progress.json"), opts.dirty, &reporter) {
            Ok(w) => Some(w),
            Err(NotStarted::Dirty(paths)) => {
                eprintln!("{}", workspace::refusal(&paths));
                reporter.finish();
                return Exit::InvalidInput;
            }
            Err(NotStarted::Git(e)) => {
                eprintln!("error: cannot read the working tree's state: {}", crate::exit::render_chain(&e));
                reporter.finish();
                return Exit::InvalidInput;
            }
        }
    } else {
        None
    };
    crate::run::process::orphans::become_subreaper();
    // A stop file this run watches itself is this run's to remove once honoured (the
    // pipeline's is the pipeline's).
    let own_stop_file = stop.is_none().then(|| root.join(&config.paths.stop_file));
    let stop = match stop {
        Some(s) => s,
        None => match stop::watch_fresh(root.join(&config.paths.stop_file), &reporter) {
            Ok(s) => s,
            Err(exit) => return exit,
        },
    };
    let guard_exe = match stop::guard_exe() {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    let clock = match Clock::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::InvalidInput;
        }
    };
    let in_git = git_use == GitUse::Commit;
    let mut engine = Engine {
        clock,
        breaker: CircuitBreaker::new(
            config.run.breaker_threshold,
            Duration::from_secs_f64(config.run.breaker_cooldown_seconds),
        ),
        backoff: RetryBackoff {
            initial: Duration::from_secs_f64(config.run.backoff_initial_seconds),
            factor: 2,
            cap: Duration::from_secs_f64(config.run.backoff_max_seconds),
        },
        throttle: Throttle::default(),
        throttle_backoff: ThrottleBackoff {
            initial: Duration::from_secs_f64(config.run.throttle_initial_seconds),
            cap: Duration::from_secs_f64(config.run.throttle_max_seconds),
            ..ThrottleBackoff::default()
        },
        jobs,
        root,
        config,
        file,
        agent,
        reporter,
        records,
        stop,
        guard_exe,
        in_git,
        workspace,
        attempts_started: 0,
        cost: 0.0,
        started: std::time::Instant::now(),
        running: HashMap::new(),
        set: JoinSet::new(),
        attempt_ids: HashMap::new(),
        delayed: HashMap::new(),
        paused_until: None,
        finishing: None,
        single: None,
        breaker_tripped: false,
        worktrees: HashMap::new(),
        landed: Vec::new(),
        protected: HashSet::new(),
        agents: HashSet::new(),
        opts,
    };
    let exit = match engine.prepare() {
        Ok(()) => {
            let exit = if engine.before_hook().await { engine.run().await } else { Exit::InvalidInput };
            engine.after_run(exit).await
        }
        // Nothing started: no hooks, no notification.
        Err(exit) => exit,
    };
    if let Some(file) = own_stop_file.filter(|_| exit == Exit::Stopped) {
        // Honoured: left behind it would only show in `git status` until the next start.
        let _ = std::fs::remove_file(file);
    }
    engine.reporter.finish();
    exit
}

/// A task whose attempt is running.
pub(super) struct Running {
    pub(super) name: String,
    pub(super) attempt_no: u32,
    pub(super) max: u32,
    pub(super) session: u32,
    pub(super) started_at: jiff::Timestamp,
    /// The working copy the agent runs in (the repository, or the task's worktree).
    pub(super) cwd: PathBuf,
    pub(super) group: Option<String>,
    pub(super) footprint: Footprint,
}

pub(super) struct Engine {
    pub(super) clock: Clock,
    pub(super) root: PathBuf,
    pub(super) config: Config,
    pub(super) file: PlanFile,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) reporter: Reporter,
    pub(super) records: Records,
    pub(super) stop: watch::Receiver<Stop>,
    pub(super) guard_exe: PathBuf,
    pub(super) in_git: bool,
    /// Sequential runs in git: the user's working tree, and each task's changes in it.
    pub(super) workspace: Option<Workspace>,
    /// Attempts this run started (to tell "stopped before anything ran" from "stopped later").
    pub(super) attempts_started: u32,
    pub(super) breaker: CircuitBreaker,
    pub(super) backoff: RetryBackoff,
    pub(super) throttle: Throttle,
    pub(super) throttle_backoff: ThrottleBackoff,
    /// How many agents may run at once (1 unless `--parallel`).
    pub(super) jobs: usize,
    pub(super) cost: f64,
    pub(super) started: std::time::Instant,
    pub(super) opts: RunOptions,
    pub(super) running: HashMap<TaskId, Running>,
    pub(super) set: JoinSet<(TaskId, Result<AttemptRun, SpawnError>)>,
    pub(super) attempt_ids: HashMap<tokio::task::Id, TaskId>,
    /// Tasks waiting out their retry back-off.
    pub(super) delayed: HashMap<TaskId, Instant>,
    /// No task starts before this (a usage limit or throttling), and why.
    pub(super) paused_until: Option<Instant>,
    /// The run is ending with this code once running attempts are done.
    pub(super) finishing: Option<Exit>,
    /// `--single-task`: the one task this run is about.
    pub(super) single: Option<TaskId>,
    /// The breaker just opened: someone should hear about it.
    pub(super) breaker_tripped: bool,
    /// Parallel: each task's worktree, kept across its retries until its work lands.
    pub(super) worktrees: HashMap<TaskId, git::worktree::Worktree>,
    /// Parallel: tasks landed since the last round commit, and the files they wrote.
    pub(super) landed: Vec<(TaskId, Vec<PathBuf>)>,
    /// Parallel: files the user had changed in the main checkout before the run.
    pub(super) protected: HashSet<PathBuf>,
    /// Parallel: the agent ids this run gave out (its claims and heartbeats are its own).
    pub(super) agents: HashSet<String>,
}


impl Engine {
    /// The banner, recovery after an interrupted run, and the parallel run's preparations.
    fn prepare(&mut self) -> Result<(), Exit> {
        let plan = self.file.plan();
        let counts = Counts::of(plan);
        let mut mode = if self.opts.parallel { format!(" · parallel, up to {} at once", self.jobs) } else { String::new() };
        if !self.config.run.commit {
            mode.push_str(" · no git: nothing is committed (baton.toml [run] commit = false)");
        }
        self.reporter.emit(EventKind::Banner {
            plan: plan.meta.name.clone().unwrap_or_else(|| self.opts.plan.display().to_string()),
            agent: self.agent.name().to_string(),
            binary: self.agent.binary().description.clone(),
            tasks: format!("{}{mode}", counts.sentence()),
        });
        if let Err(e) = self.recover() {
            eprintln!("{}", e.render_in_run());
            return Err(Exit::InvalidInput);
        }
        if self.opts.parallel {
            if let Err(e) = self.prepare_parallel() {
                eprintln!("error: {e}");
                return Err(Exit::InvalidInput);
            }
            // The same rule as sequential runs; with --allow-dirty the changes are protected.
            if self.opts.dirty == DirtyTree::Refuse {
                let plan = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
                let own = workspace::OwnFiles::new(plan.strip_prefix(&self.root).unwrap_or(&plan), &self.config);
                let dirty: std::collections::BTreeSet<PathBuf> = self.protected.iter().filter(|p| !own.contains(p)).cloned().collect();
                if !dirty.is_empty() {
                    eprintln!("{}", workspace::refusal(&dirty));
                    return Err(Exit::InvalidInput);
                }
            }
        }
        Ok(())
    }

    async fn run(&mut self) -> Exit {
        let mut exclude: HashSet<TaskId> = HashSet::new();
        if let Some(from) = &self.opts.resume_from {
            for t in self.file.plan().tasks() {
                if t.id.as_str() == from {
                    break;
                }
                exclude.insert(t.id.clone());
            }
            self.reporter.decision("FIND", format!("resuming from {from}"));
        }
        let exit = loop {
            if self.running.is_empty() {
                self.commit_round();
            }
            // baton's own work (git, saves) runs on this thread without yielding: let the stop
            // watcher take a Ctrl+C that arrived meanwhile before deciding anything.
            crate::run::stop::caught_up(&self.stop).await;
            let stop = *self.stop.borrow();
            if stop != Stop::Running && self.finishing.is_none() {
                self.reporter.decision("STOP", if self.running.is_empty() {
                    "stop requested: no new task starts".to_string()
                } else {
                    format!("stop requested: no new task starts; waiting for {} running", self.running.len())
                });
                self.finishing = Some(Exit::Stopped);
            }
            if self.running.is_empty() {
                if let Some(exit) = self.finishing {
                    break exit;
                }
                if let Some(id) = self.single.clone() {
                    if self.file.plan().task(id.as_str()).is_none_or(|t| t.status.is_final()) {
                        self.reporter.decision("FIND", "--single-task: one task done, stopping");
                        break self.single_task_exit(&id);
                    }
                }
            }
            let mut next_timer = self.start_what_can(&exclude);
            if self.running.is_empty() {
                if let Some(exit) = self.finishing {
                    // A task could not be started: the run ends with that error.
                    break exit;
                }
                if next_timer.is_none() {
                    break self.end_exit(&exclude);
                }
            }
            if let Some(t) = self.paused_until {
                next_timer = Some(next_timer.map_or(t, |n| n.min(t)));
            }
            tokio::select! {
                joined = self.set.join_next_with_id(), if !self.running.is_empty() => {
                    match joined {
                        Some(Ok((_, (id, result)))) => {
                            self.attempt_ids.retain(|_, t| *t != id);
                            self.finished(&id, result);
                            if std::mem::take(&mut self.breaker_tripped) {
                                self.notify(crate::after::notify::RunEnding::BreakerTripped, None).await;
                            }
                        }
                        Some(Err(e)) => {
                            // An attempt future panicked: a bug. Its task goes back to pending
                            // and the run ends once the others are done.
                            if let Some(id) = self.attempt_ids.remove(&e.id()) {
                                self.running.remove(&id);
                                self.back_to_pending(&id);
                            }
                            self.reporter.warn(format!("an attempt ended abnormally (a bug in baton): {e}"));
                            self.finishing = Some(Exit::InvalidInput);
                        }
                        None => {}
                    }
                }
                _ = self.stop.changed() => {}
                _ = sleep_until(next_timer) => {}
            }
        };
        self.finish(exit)
    }

    /// Starts every task that may start now; returns when the loop should look again if
    /// nothing finishes first (a back-off, the breaker, a pause).
    fn start_what_can(&mut self, exclude: &HashSet<TaskId>) -> Option<Instant> {
        if self.finishing.is_some() || *self.stop.borrow() != Stop::Running {
            return None;
        }
        let now = Instant::now();
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until);
            }
            self.paused_until = None;
        }
        self.delayed.retain(|_, t| *t > now);
        let mut skip: HashSet<TaskId> = exclude.clone();
        skip.extend(self.running.keys().cloned());
        skip.extend(self.delayed.keys().cloned());
        if let Some(id) = &self.single {
            // Only the single task may run.
            skip.extend(self.file.plan().tasks().filter(|t| &t.id != id).map(|t| t.id.clone()));
        }
        let next_delay = self.delayed.values().min().copied();
        if !self.opts.parallel {
            // Sequential runs keep plan order: a task waiting out its back-off holds the line.
            let first = graph::next_ready(self.file.plan(), &{
                let mut s = exclude.clone();
                s.extend(self.running.keys().cloned());
                s
            });
            if let Some(first) = first {
                if self.delayed.contains_key(&first.id) || !self.running.is_empty() {
                    return next_delay;
                }
            }
        }
        let limit = self.throttle.concurrency_limit(self.jobs).min(self.jobs);
        let active: Vec<Active> = self
            .running
            .iter()
            .map(|(id, r)| Active { id: id.clone(), group: r.group.clone(), footprint: r.footprint.clone() })
            .collect();
        let (picks, held) = schedule::pick(self.file.plan(), &active, limit, &skip);
        if self.opts.parallel && !picks.is_empty() {
            self.remove_stale_claims();
            for h in &held {
                self.reporter.decision("PARALLEL", format!("{} waits: {}", h.id, h.why));
            }
        }
        for id in picks {
            match self.breaker.may_start(std::time::Instant::now()) {
                Admission::Admit => {}
                Admission::AdmitProbe => {
                    self.reporter.decision("BREAKER", "circuit breaker half-open: letting one attempt through");
                }
                Admission::Wait { until } => {
                    let wait = until.saturating_duration_since(std::time::Instant::now());
                    let text = self.breaker.describe(std::time::Instant::now());
                    self.reporter.emit(EventKind::Waiting { reason: text, until: jiff::Timestamp::now() + wait });
                    let t = Instant::now() + wait;
                    return Some(next_delay.map_or(t, |d| d.min(t)));
                }
                Admission::AwaitProbe => return next_delay,
            }
            if let Err(exit) = self.start(&id) {
                self.finishing = Some(exit);
                return None;
            }
            if self.opts.single_task {
                // One task is the whole run, even when others could run beside it.
                self.single.get_or_insert(id.clone());
                break;
            }
            if matches!(self.breaker.state(), BreakerState::HalfOpen) {
                break;
            }
        }
        next_delay
    }

    /// Marks a task in progress, prepares its working copy and prompt, and starts its attempt.
    fn start(&mut self, id: &TaskId) -> Result<(), Exit> {
        let Some(task) = self.file.plan().task(id.as_str()).cloned() else {
            return Ok(());
        };
        let plan = self.file.plan();
        let max = plan.max_attempts(&task, self.config.run.max_attempts);
        let attempt_no = task.attempts + 1;
        let section = plan.section_of(id.as_str()).map(|s| s.id.clone()).unwrap_or_default();
        if !task.depends_on.is_empty() {
            let deps: Vec<&str> = task.depends_on.iter().map(|d| d.as_str()).collect();
            self.reporter.decision("DEPS", format!("{id}: dependencies {} completed", deps.join(", ")));
        }
        self.reporter.decision("FIND", format!("next task: {id} {} (section {section})", task.name));
        if let Err(e) = self.file.set_status(id.as_str(), Status::InProgress).and_then(|_| self.save()) {
            eprintln!("{}", e.render_in_run());
            return Err(Exit::InvalidInput);
        }
        if let Some(w) = self.workspace.as_mut().filter(|_| self.in_git) {
            w.task_started(id, &task.name, &self.reporter);
        }
        let status_rel = self.config.paths.status_file.clone();
        let (cwd, extra, env) = if self.opts.parallel {
            match self.worktree_for(&task) {
                Ok(w) => (w.cwd, w.prompt_extra, w.env),
                Err(msg) => {
                    self.reporter.warn(msg);
                    self.back_to_pending(id);
                    return Err(Exit::InvalidInput);
                }
            }
        } else {
            (self.root.clone(), String::new(), Vec::new())
        };
        let status_file = cwd.join(&status_rel);
        match verdict::remove_status_file(&status_file) {
            Ok(true) => self.reporter.decision("CLEANUP", format!("removed the previous status file {}", status_rel.display())),
            Ok(false) => {}
            Err(e) => self.reporter.warn(format!("cannot remove the old status file {}: {e}", status_file.display())),
        }
        if let Some(dir) = status_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let prompt = match self.prompt(&task, &status_rel, &extra, &cwd) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                self.back_to_pending(id);
                return Err(Exit::InvalidInput);
            }
        };
        let plan = self.file.plan();
        let model = task.model.clone().or_else(|| plan.meta.model.clone()).or_else(|| self.config.agent.model.clone());
        let total = task.timeout_seconds.or(plan.meta.timeout_seconds).unwrap_or(self.config.run.timeout_seconds);
        let idle = task
            .idle_timeout_seconds
            .or(plan.meta.idle_timeout_seconds)
            .unwrap_or(self.config.run.idle_timeout_seconds);
        let session = self.records.next_session(id.as_str());
        // Reserve the session number now: parallel attempts of other tasks never share it, and
        // a transcript that cannot be created must not make two attempts share a number.
        let transcript = self.records.transcript(id.as_str(), session);
        if let Some(d) = transcript.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let heartbeat = self.opts.parallel.then(|| self.root.join(crate::coord::heartbeat::STATUS_DIR).join(format!("{}.json", self.agent_id(id))));
        let spec = AttemptSpec {
            task: id.clone(),
            agent: self.agent.clone(),
            prompt,
            model,
            cwd: cwd.clone(),
            total_timeout: Duration::from_secs_f64(total),
            idle_timeout: Duration::from_secs_f64(idle),
            transcript,
            guard_exe: self.guard_exe.clone(),
            env,
            heartbeat,
        };
        self.reporter.emit(EventKind::AttemptStarted {
            task: id.clone(),
            name: task.name.clone(),
            attempt: attempt_no,
            max_attempts: max,
        });
        self.running.insert(
            id.clone(),
            Running {
                name: task.name.clone(),
                attempt_no,
                max,
                session,
                started_at: jiff::Timestamp::now(),
                cwd,
                group: task.parallel_group.clone(),
                footprint: Footprint::of(&task),
            },
        );
        let reporter = self.reporter.clone();
        let stop = self.stop.clone();
        let task_id = id.clone();
        let handle = self.set.spawn(async move {
            let result = attempt::run(spec, reporter, stop).await;
            (task_id, result)
        });
        self.attempt_ids.insert(handle.id(), id.clone());
        self.attempts_started += 1;
        Ok(())
    }

    /// An attempt ended: judge it and record what it means.
    fn finished(&mut self, id: &TaskId, result: Result<AttemptRun, SpawnError>) {
        let Some(r) = self.running.remove(id) else { return };
        let orphans = crate::run::process::orphans::sweep();
        if orphans > 0 {
            self.reporter.warn(format!("{id}: ended {orphans} process(es) an agent had started whose guard was gone"));
        }
        let run = match result {
            Ok(run) => run,
            Err(_) if crate::run::stop::level(&self.stop) != Stop::Running => {
                // A Ctrl+C that reaches the guard before it is in a group of its own ends it
                // before it starts the agent: the stop, not a broken set-up.
                self.back_to_pending(id);
                self.finishing.get_or_insert(Exit::Stopped);
                return;
            }
            Err(e) => {
                self.back_to_pending(id);
                eprintln!(
                    "error: cannot start the agent: {}\n  help: check `[agent] binary` in baton.toml or {}",
                    crate::exit::render_chain(&e),
                    crate::agent::claude::BIN_ENV
                );
                self.finishing = Some(Exit::InvalidInput);
                return;
            }
        };
        let status_rel = self.config.paths.status_file.clone();
        let status_file = r.cwd.join(&status_rel);
        let verdict = verdict::judge(
            &Evidence {
                task_id: id.as_str(),
                status_file: &status_file,
                status_shown: &status_rel,
                ended: run.ended,
                exit: run.exit,
                dialect: self.agent.dialect(),
                summary: &run.summary,
                stderr_tail: &run.stderr_tail,
                systemic: run.systemic.clone(),
            },
            &self.clock.zoned(),
        );
        if let Some(w) = run.summary.rate_limit_warning() {
            let used = w.utilization.map(|u| format!(" ({:.0} % used)", u * 100.0)).unwrap_or_default();
            let window = w.limit_type.as_deref().map(|t| format!(" of the {t} window")).unwrap_or_default();
            self.reporter.warn(format!("approaching the usage limit{window}{used}; baton goes on until the CLI reports the limit"));
        }
        // The report is consumed: leave no stale file for the next attempt, or for git.
        let _ = verdict::remove_status_file(&status_file);
        let cost = run.summary.cost_usd();
        self.cost += cost.unwrap_or(0.0);
        let mut record = AttemptRecord {
            task: id.to_string(),
            session: r.session,
            attempt: None,
            started_at: r.started_at.to_string(),
            ended_at: jiff::Timestamp::now().to_string(),
            duration_seconds: run.duration.as_secs_f64(),
            outcome: String::new(),
            message: String::new(),
            cost_usd: cost,
            turns: run.summary.turns(),
            input_tokens: run.summary.result().map(|x| x.usage.input_tokens),
            output_tokens: run.summary.result().map(|x| x.usage.output_tokens),
            session_id: run.summary.session_id().map(str::to_string),
            exit: run.exit.map(|x| x.to_string()),
            waited_seconds: None,
        };
        let ended = |reporter: &Reporter, ok: bool, outcome: String| {
            reporter.emit(EventKind::AttemptEnded { task: id.clone(), ok, outcome, duration: run.duration, cost_usd: cost })
        };
        match verdict {
            Verdict::Done(report) if report.status != Status::Failed => {
                let source = match report.source {
                    verdict::ReportSource::File => "status file",
                    verdict::ReportSource::ResultText => "status in the final answer",
                };
                ended(&self.reporter, true, format!("{} ({source})", report.status));
                self.breaker.record_success();
                self.throttle.record_success();
                record.attempt = Some(r.attempt_no);
                record.outcome = report.status.to_string();
                record.message = report.message.clone();
                self.write_record(&record);
                if report.plan_modified {
                    self.take_plan_edit(id, &r.cwd);
                }
                if self.opts.parallel {
                    match self.land(id) {
                        Ok(()) => {}
                        Err(NotLanded::Conflict(message)) => {
                            self.failed_attempt(id, &r, &message, true);
                            return;
                        }
                        Err(NotLanded::Protected(message)) => {
                            // Not the task's fault: it waits, its attempt unspent, and the run stops.
                            self.back_to_pending(id);
                            self.reporter.warn(format!("{id}: {message}; the run stops"));
                            self.finishing = Some(Exit::Stopped);
                            return;
                        }
                    }
                }
                self.finish_task(id, &r.name, report.status, &report.message, r.attempt_no);
            }
            Verdict::Done(report) => {
                let message = if report.message.is_empty() { "the agent reported failure".into() } else { report.message };
                ended(&self.reporter, false, format!("failed: {}", cut(&message, 120)));
                record.attempt = Some(r.attempt_no);
                record.outcome = "failed".into();
                record.message = message.clone();
                self.write_record(&record);
                if report.plan_modified {
                    self.take_plan_edit(id, &r.cwd);
                }
                self.failed_attempt(id, &r, &message, false);
            }
            Verdict::Failed { message } => {
                ended(&self.reporter, false, format!("failed: {}", cut(&message, 120)));
                record.attempt = Some(r.attempt_no);
                record.outcome = "failed".into();
                record.message = message.clone();
                self.write_record(&record);
                self.failed_attempt(id, &r, &message, false);
            }
            Verdict::Limited(limit) => {
                ended(&self.reporter, false, "usage limit reached (not counted as an attempt)".into());
                self.breaker.record_inconclusive();
                let wake = limit::wake_at(
                    limit.resets_at,
                    self.clock.now(),
                    Duration::from_secs_f64(self.config.run.limit_margin_seconds),
                    Duration::from_secs_f64(self.config.run.limit_fallback_seconds),
                );
                let wait = wake.duration_since(self.clock.now()).unsigned_abs();
                record.outcome = "limited".into();
                record.message = limit.message.clone();
                record.waited_seconds = Some(wait.as_secs_f64());
                self.write_record(&record);
                self.back_to_pending(id);
                let zone = match (&limit.zone, limit.resets_at) {
                    (Some(z), Some(t)) => t.in_tz(z).map(|t| format!(" ({} in {z})", t.strftime("%H:%M"))).unwrap_or_default(),
                    _ => String::new(),
                };
                let reason = match limit.resets_at {
                    Some(_) => format!("usage limit: {}; no task starts until the reset{zone}", limit.message),
                    None => format!("usage limit: {}; the reset time could not be read, so baton waits {}", limit.message, event::human(wait)),
                };
                self.pause(wait, reason);
            }
            Verdict::Throttled(t) => {
                ended(&self.reporter, false, "the API is throttling requests (not counted as an attempt)".into());
                self.breaker.record_inconclusive();
                self.throttle.record_throttle(std::time::Instant::now());
                let jitter = jitter_from_seed(jiff::Timestamp::now().as_nanosecond() as u64);
                let wait = self.throttle.delay(&self.throttle_backoff, jitter);
                record.outcome = "throttled".into();
                record.message = t.message.clone();
                record.waited_seconds = Some(wait.as_secs_f64());
                self.write_record(&record);
                self.back_to_pending(id);
                if self.throttle.consecutive >= 3 {
                    self.reporter.warn(format!(
                        "the API has throttled {} attempts in a row; baton keeps backing off (not a usage limit, attempts are not spent)",
                        self.throttle.consecutive
                    ));
                }
                if self.opts.parallel {
                    let limit = self.throttle.concurrency_limit(self.jobs);
                    self.reporter.decision("THROTTLE", format!("throttled: starting at most {limit} agent(s) at once until runs succeed again"));
                }
                self.pause(wait, format!("server-side throttling ({}); backing off", cut(&t.message, 100)));
            }
            Verdict::Systemic(s) => {
                ended(&self.reporter, false, s.message.clone());
                record.outcome = "systemic".into();
                record.message = s.message.clone();
                self.write_record(&record);
                self.back_to_pending(id);
                eprintln!("error: {}\n  help: {}\nThe run stopped; no attempt was spent. Fix this, then run again.", s.message, s.help);
                self.finishing = Some(Exit::InvalidInput);
            }
            Verdict::Interrupted => {
                ended(&self.reporter, false, "ended by stop (not counted as an attempt)".into());
                record.outcome = "interrupted".into();
                self.write_record(&record);
                self.back_to_pending(id);
                self.finishing.get_or_insert(Exit::Stopped);
            }
        }
    }

    /// No task starts for `wait`; the longest pause wins.
    fn pause(&mut self, wait: Duration, reason: String) {
        let until = Instant::now() + wait;
        if self.paused_until.is_some_and(|p| p >= until) {
            return;
        }
        self.paused_until = Some(until);
        self.reporter.emit(EventKind::Waiting { reason, until: jiff::Timestamp::now() + wait });
    }

    /// Tasks left `in_progress` by an interrupted run go back to pending, attempts untouched.
    fn recover(&mut self) -> Result<(), PlanError> {
        let stale: Vec<TaskId> = self.file.plan().tasks().filter(|t| t.status == Status::InProgress).map(|t| t.id.clone()).collect();
        for id in &stale {
            self.file.set_status(id.as_str(), Status::Pending)?;
            self.reporter.decision(
                "RECOVER",
                format!("{id} was left in progress by an interrupted run; back to pending (its attempt is not counted)"),
            );
        }
        if !stale.is_empty() {
            self.save()?;
        }
        Ok(())
    }

    fn write_record(&self, record: &AttemptRecord) {
        if let Err(e) = self.records.write(record) {
            self.reporter.warn(format!("cannot write the attempt record: {e}"));
        }
    }

    fn back_to_pending(&mut self, id: &TaskId) {
        if self.file.plan().task(id.as_str()).is_some() {
            let r = self.file.set_status(id.as_str(), Status::Pending).and_then(|_| self.save());
            if let Err(e) = r {
                self.reporter.warn(e.render_in_run());
            }
        }
    }

    /// Completed or skipped.
    fn finish_task(&mut self, id: &TaskId, name: &str, status: Status, message: &str, attempt_no: u32) {
        if self.file.plan().task(id.as_str()).is_none() {
            self.reporter.decision("PLAN", format!("{id} is no longer in the plan (the agent replaced it); moving on"));
            return;
        }
        let message = &self.plan_text(id, message);
        let r = (|| {
            self.file.set_attempts(id.as_str(), attempt_no)?;
            self.file.set_status(id.as_str(), status)?;
            if !message.is_empty() {
                self.file.set_text(id.as_str(), TaskField::ResultMessage, message)?;
            }
            let stamp = jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
            self.file.set_text(id.as_str(), TaskField::CompletedAt, &stamp)?;
            self.save()
        })();
        if let Err(e) = r {
            eprintln!("{}", e.render_in_run());
            self.finishing = Some(Exit::InvalidInput);
            return;
        }
        self.reporter.emit(EventKind::TaskFinished { task: id.clone(), name: name.to_string(), status, message: message.to_string() });
        if !self.opts.parallel {
            self.commit_task(id, &format!("baton: {id} {status} — {name}"));
        }
    }

    /// Counts a failed attempt; retries after a back-off or marks the task failed. A merge
    /// conflict is final at once: retrying would not change what main holds.
    fn failed_attempt(&mut self, id: &TaskId, r: &Running, message: &str, conflict: bool) {
        let was_closed = matches!(self.breaker.state(), BreakerState::Closed { .. });
        let was_open = matches!(self.breaker.state(), BreakerState::Open { .. });
        if !conflict {
            self.breaker.record_failure(std::time::Instant::now());
        }
        if self.file.plan().task(id.as_str()).is_none() {
            self.reporter.decision("PLAN", format!("{id} is no longer in the plan (the agent replaced it); moving on"));
            return;
        }
        let final_failure = conflict || r.attempt_no >= r.max;
        let status = if final_failure { Status::Failed } else { Status::Pending };
        let message = &self.plan_text(id, message);
        let res = (|| {
            self.file.set_attempts(id.as_str(), r.attempt_no)?;
            self.file.set_text(id.as_str(), TaskField::LastError, message)?;
            self.file.set_status(id.as_str(), status)?;
            self.save()
        })();
        if let Err(e) = res {
            eprintln!("{}", e.render_in_run());
            self.finishing = Some(Exit::InvalidInput);
            return;
        }
        if !was_open && matches!(self.breaker.state(), BreakerState::Open { .. }) {
            let text = self.breaker.describe(std::time::Instant::now());
            self.reporter.decision("BREAKER", format!("{text} — no task starts until the cool-down ends"));
            // One notice when it trips; a failed probe re-opening it is the same episode.
            self.breaker_tripped |= was_closed;
        }
        if final_failure {
            let n = r.attempt_no;
            self.reporter.emit(EventKind::TaskFinished {
                task: id.clone(),
                name: r.name.clone(),
                status: Status::Failed,
                message: if conflict { message.to_string() } else { format!("failed after {n} attempt{}: {message}", if n == 1 { "" } else { "s" }) },
            });
            if !self.opts.parallel {
                self.commit_task(id, &format!("baton: {id} failed after {n} attempt{} — {}", if n == 1 { "" } else { "s" }, r.name));
            } else if let Some(wt) = self.worktrees.get(id) {
                self.reporter.decision("WORKTREE", format!("{id}: its work is kept in {} (branch {})", wt.path.display(), wt.branch));
            }
            return;
        }
        let wait = self.backoff.delay(r.attempt_no);
        self.delayed.insert(id.clone(), Instant::now() + wait);
        self.reporter.emit(EventKind::Waiting {
            reason: format!("{id} failed (attempt {}/{}); retrying", r.attempt_no, r.max),
            until: jiff::Timestamp::now() + wait,
        });
    }

    /// The agent said it changed the plan: in the main checkout, reload it; in a worktree,
    /// merge the tasks it added into the main plan.
    fn take_plan_edit(&mut self, id: &TaskId, cwd: &Path) {
        if cwd == self.root {
            match self.file.reload() {
                Ok(()) => {
                    self.reporter.decision("PLAN", "the agent changed the plan; reloaded and re-validated it");
                    self.tell_restored();
                }
                Err(e) => self.reporter.warn(format!(
                    "the agent's edit of the plan is not valid, so baton keeps the last valid plan (the edit is kept aside at the next save):\n{}",
                    e.render_in_run()
                )),
            }
            return;
        }
        let rel = self.file.path().strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_else(|_| self.file.path().to_path_buf());
        let theirs = match std::fs::read_to_string(cwd.join(&rel)) {
            Ok(t) => t,
            Err(e) => {
                self.reporter.warn(format!("{id}: cannot read the plan in its worktree: {e}"));
                return;
            }
        };
        match self.file.merge_added_tasks(&theirs) {
            Ok(added) if added.is_empty() => {}
            Ok(added) => {
                let ids: Vec<String> = added.iter().map(|t| t.to_string()).collect();
                self.reporter.decision("PLAN", format!("{id}: the agent added task(s) {}; merged into the main plan", ids.join(", ")));
                if let Err(e) = self.save() {
                    self.reporter.warn(e.render_in_run());
                }
            }
            Err(e) => self.reporter.warn(format!("{id}: the agent's plan edit could not be merged: {}", e.render_in_run())),
        }
    }

    pub(super) fn save(&mut self) -> Result<(), PlanError> {
        match self.file.save()? {
            SaveOutcome::Saved | SaveOutcome::Unchanged => {}
            SaveOutcome::Rebased => self.reporter.decision("PLAN", "the plan was edited on disk; baton's changes were applied on top of the edit"),
            SaveOutcome::RejectedEdit { kept_at, diagnostics } => {
                let first = diagnostics.first().map(|d| d.render(&self.opts.plan.display().to_string())).unwrap_or_default();
                self.reporter.warn(format!(
                    "the plan was edited into an invalid state ({first}); baton wrote back the last valid plan and kept the edit at {}",
                    kept_at.display()
                ));
            }
        }
        self.tell_restored();
        Ok(())
    }

    /// Says which owned fields an edit of the plan changed and baton put back.
    pub(super) fn tell_restored(&mut self) {
        for line in self.file.take_restored() {
            self.reporter.warn(format!("the plan edit changed a field baton owns; put back: {line}"));
        }
    }

    /// An agent's message as it goes into the plan and the task's line: one line, capped; the
    /// attempt record keeps it whole.
    fn plan_text(&self, id: &TaskId, message: &str) -> String {
        verdict::plan_text(message, &format!("baton logs {} {id}", self.opts.plan.display()))
    }

    /// A task's end, in a sequential run: its changes (also what its agent left uncommitted)
    /// and the plan state in one commit under its name. Elsewhere the plan state alone.
    fn commit_task(&mut self, id: &TaskId, message: &str) {
        if !self.in_git {
            return;
        }
        let Some(w) = &mut self.workspace else { return self.commit(message) };
        if let Err(e) = w.commit_task(id, message, &self.reporter) {
            self.commit_failed(format!("could not commit {id}'s work and the plan state: {e}"));
        }
    }

    pub(super) fn commit(&mut self, message: &str) {
        if !self.in_git {
            return;
        }
        let path = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        match git::commit_file(&self.root, &path, message) {
            Ok(git::Committed::Yes) => self.reporter.decision("GIT", format!("committed the plan: {message}")),
            Ok(git::Committed::NothingToCommit) => {}
            Err(e) => self.commit_failed(format!("could not commit the plan state (the plan file is saved): {e}")),
        }
    }

    /// A commit failed: going on would pile up work that no commit records, under the wrong
    /// task. No new task starts; the run ends with an error, and the next start commits what
    /// is in the working tree under its task.
    pub(super) fn commit_failed(&mut self, what: String) {
        self.reporter.warn(format!("{what}; the run stops (no new task starts) — the work is in the working tree, and the next `baton run` commits it"));
        self.in_git = false;
        self.finishing.get_or_insert(Exit::InvalidInput);
    }

    fn single_task_exit(&self, id: &TaskId) -> Exit {
        match self.file.plan().task(id.as_str()).map(|t| t.status) {
            Some(Status::Failed) => Exit::TaskFailed,
            _ => Exit::Completed,
        }
    }

    /// No task can start: everything is done, or the rest is blocked.
    fn end_exit(&mut self, exclude: &HashSet<TaskId>) -> Exit {
        let plan = self.file.plan();
        let blocked = never_runnable(plan, exclude);
        if !blocked.is_empty() {
            self.reporter.decision("BLOCKED", blocked_text(&blocked));
            return Exit::Blocked;
        }
        if plan.tasks().any(|t| t.status == Status::Failed) {
            Exit::TaskFailed
        } else {
            Exit::Completed
        }
    }

    fn finish(&mut self, exit: Exit) -> Exit {
        let _ = self.save();
        self.commit_round();
        if self.in_git {
            if let Some(w) = &mut self.workspace {
                w.settle(&self.reporter, "the run ended before the task did");
            }
        }
        if exit == Exit::Stopped {
            self.commit("baton: plan state at stop");
        }
        let counts = Counts::of(self.file.plan());
        let n = self.attempts_started;
        // Says what happened, in the words of the exit code.
        let how = match (exit, &self.single) {
            (Exit::Completed | Exit::TaskFailed, Some(id)) => {
                let status = self.file.plan().task(id.as_str()).map_or_else(|| "replaced by the agent".to_string(), |t| t.status.to_string());
                format!("--single-task: {id} {status}")
            }
            (Exit::Completed, None) if counts.pending > 0 => match &self.opts.resume_from {
                Some(from) => format!("finished from {from} (--resume-from); {} task(s) left out are still pending", counts.pending),
                None => "finished".into(),
            },
            (Exit::Completed, None) => "finished".into(),
            (Exit::TaskFailed, None) => "finished with failures".into(),
            (Exit::Blocked, _) => "blocked".into(),
            (Exit::Stopped, _) => "stopped".into(),
            (Exit::InvalidInput, _) if n == 0 => "stopped on an error before any task ran".into(),
            (Exit::InvalidInput, _) => format!("stopped on an error after {n} attempt{}", if n == 1 { "" } else { "s" }),
            _ => "ended".into(),
        };
        self.reporter.emit(EventKind::Summary {
            text: format!("{how} in {}: {} · agent cost ${:.4}", event::human(self.started.elapsed()), counts.sentence(), self.cost),
        });
        if self.opts.parallel {
            // The coordination files belong to this run; leave none behind.
            self.clear_coordination();
        }
        exit
    }

    fn prompt(&self, task: &Task, status_rel: &Path, extra: &str, cwd: &Path) -> Result<String, String> {
        let template = match &self.config.agent.prompt_template {
            Some(p) => {
                let path = self.root.join(p);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the prompt template {} (baton.toml [agent] prompt_template): {e}", path.display()))?
            }
            None => prompt::DEFAULT_TEMPLATE.to_string(),
        };
        let abs_plan = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        // In a worktree the agent edits its own copy of the plan, at the same relative path.
        let plan_rel = abs_plan.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs_plan);
        let _ = cwd;
        Ok(prompt::render(
            &template,
            &PromptVars {
                plan: self.file.plan(),
                task,
                plan_file: &plan_rel,
                status_file: status_rel,
                build_command: self.config.agent.build_command.as_deref(),
                extra,
            },
        ))
    }
}

/// Pending tasks that can never run in this run, and why: their dependency failed, is missing
/// or waits in a cycle, or is a task `--resume-from` left out (`exclude`) that is not done.
fn never_runnable(plan: &crate::plan::Plan, exclude: &HashSet<TaskId>) -> Vec<(TaskId, Wait)> {
    let mut blocked: Vec<(TaskId, Wait)> = graph::blocked(plan).into_iter().filter(|(id, _)| !exclude.contains(id)).collect();
    // Work that waits on a task --resume-from left out can never run in this run either.
    loop {
        let stuck = plan.tasks().find_map(|t| {
            if t.status.is_final() || exclude.contains(&t.id) || blocked.iter().any(|(b, _)| *b == t.id) {
                return None;
            }
            t.depends_on.iter().find_map(|d| {
                let dep_done = plan.task(d.as_str()).is_some_and(|x| x.status == Status::Completed);
                let left_out = exclude.contains(d) && !dep_done;
                let waits_on_blocked = blocked.iter().any(|(b, _)| b == d);
                (left_out || waits_on_blocked).then(|| (t.id.clone(), if left_out { Wait::LeftOut(d.clone()) } else { Wait::On(d.clone()) }))
            })
        });
        match stuck {
            Some(b) => blocked.push(b),
            None => break,
        }
    }
    blocked
}

fn blocked_text(blocked: &[(TaskId, Wait)]) -> String {
    let lines: Vec<String> = blocked.iter().map(|(id, why)| format!("  {id}: {why}")).collect();
    format!("blocked: {} task{} can never run:\n{}", blocked.len(), if blocked.len() == 1 { "" } else { "s" }, lines.join("\n"))
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Where a dry run would work, for what the real run would refuse.
struct DryGit<'a> {
    root: &'a Path,
    plan: &'a Path,
    git_use: GitUse,
}

/// `--dry-run`: what would run, in order, assuming each task completes, and how the run would
/// end (its exit code is the dry run's); nothing changes.
fn dry_run(file: &PlanFile, opts: &RunOptions, config: &Config, agent: &dyn Agent, jobs: usize, git: &DryGit<'_>) -> Exit {
    if git.git_use == GitUse::Commit && opts.dirty == DirtyTree::Refuse {
        let rel = git.plan.strip_prefix(git.root).unwrap_or(git.plan);
        match workspace::uncommitted(git.root, &workspace::OwnFiles::new(rel, config)) {
            Ok(paths) if !paths.is_empty() => {
                eprintln!("{}", workspace::refusal(&paths));
                return Exit::InvalidInput;
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: cannot read the working tree's state: {}", crate::exit::render_chain(&e)),
        }
    }
    let mut plan = file.plan().clone();
    crate::outln!("dry run of {} — nothing will be started or changed", opts.plan.display());
    crate::outln!("agent: {} ({})", agent.name(), agent.binary().description);
    if git.git_use == GitUse::Off {
        crate::outln!("no git: nothing would be committed (baton.toml [run] commit = false)");
    }
    let mut exclude: HashSet<TaskId> = HashSet::new();
    if let Some(from) = &opts.resume_from {
        for t in plan.tasks() {
            if t.id.as_str() == from {
                break;
            }
            exclude.insert(t.id.clone());
        }
    }
    for s in &mut plan.sections {
        for t in &mut s.tasks {
            if t.status == Status::InProgress {
                t.status = Status::Pending;
            }
        }
    }
    let mut n = 0;
    let mut round = 0;
    loop {
        let (picks, held) = if opts.parallel {
            schedule::pick(&plan, &[], jobs, &exclude)
        } else {
            (graph::next_ready(&plan, &exclude).map(|t| vec![t.id.clone()]).unwrap_or_default(), Vec::new())
        };
        if picks.is_empty() {
            break;
        }
        round += 1;
        if opts.parallel {
            crate::outln!("round {round}: {}", picks.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" + "));
        }
        let mut picks = picks;
        if opts.single_task {
            picks.truncate(1);
        }
        for id in &picks {
            n += 1;
            let Some(t) = plan.task(id.as_str()) else { continue };
            let max = plan.max_attempts(t, config.run.max_attempts);
            crate::outln!("{n:>3}. {} {} (attempt {}/{max})", id, t.name, t.attempts + 1);
        }
        if opts.parallel {
            for h in held.iter().filter(|h| !h.why.contains("waits for group")) {
                crate::outln!("       not beside them: {} — {}", h.id, h.why);
            }
        }
        for s in &mut plan.sections {
            for t in &mut s.tasks {
                if picks.contains(&t.id) {
                    t.status = Status::Completed;
                }
            }
        }
        if opts.single_task {
            crate::outln!("then the run stops (--single-task); exit 0 if the task completes");
            return Exit::Completed;
        }
    }
    let blocked = never_runnable(&plan, &exclude);
    let failed: Vec<String> = plan.tasks().filter(|t| t.status == Status::Failed).map(|t| t.id.to_string()).collect();
    if n == 0 {
        crate::outln!("nothing to run");
    }
    if !blocked.is_empty() {
        crate::outln!("{}", blocked_text(&blocked));
        crate::outln!("the run would end blocked (exit 3)");
        return Exit::Blocked;
    }
    if !failed.is_empty() {
        crate::outln!("the run would end with failed tasks (exit 1): {} failed before and stays failed", failed.join(", "));
        return Exit::TaskFailed;
    }
    if n == 0 {
        crate::outln!("every task is completed or skipped (exit 0)");
    }
    Exit::Completed
}
