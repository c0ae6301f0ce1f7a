//! The dispatcher of `baton run`: the `select!` loop between the run state (`state`: which tasks
//! may start, what an attempt's end means), the attempts running as futures in a join set, and
//! the effects (`record` for the plan, `workspace` for where tasks run, land and commit).
//!
//! Sequential and parallel runs are the same loop; only the workspace differs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::record;
use super::setup::Clock;
use super::state::{Consequence, Outcome, PlanChange, RunState, Slot};
use super::workspace::{NotLanded, Workspace};
use crate::agent::{Agent, Invocation, NamedAgent};
use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::plan::{PlanFile, Status, Task, TaskId};
use crate::policy::backoff::jitter_from_seed;
use crate::policy::limit;
use crate::report::event::{AttemptOutcome, Ending, EventKind, Note, Reporter, Summary, TaskReport, TaskUsage, WaitReason};
use crate::report::status::Counts;
use crate::run::attempt::{self, AttemptRun, AttemptSpec};
use crate::run::process::SpawnError;
use crate::run::prompt::{self, PromptVars};
use crate::run::record::{AttemptRecord, Records};
use crate::run::schedule::{Active, Footprint};
use crate::run::stop::{self, Stop};
use crate::run::verdict::{self, Evidence, Verdict};
use crate::run::RunOptions;

/// A task whose attempt is running: what the dispatcher needs when it ends.
struct Running {
    name: String,
    session: u32,
    started_at: jiff::Timestamp,
    /// The working copy the agent runs in (the repository, or the task's worktree).
    cwd: PathBuf,
    /// The named agent the session runs as (the task's `agent:`), when one was passed.
    named_agent: Option<String>,
}

pub(super) struct Engine {
    pub(super) clock: Clock,
    pub(super) root: PathBuf,
    pub(super) config: Config,
    pub(super) opts: RunOptions,
    pub(super) file: PlanFile,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) reporter: Reporter,
    pub(super) records: Records,
    pub(super) stop: watch::Receiver<Stop>,
    pub(super) guard_exe: PathBuf,
    pub(super) state: RunState,
    pub(super) workspace: Workspace,
    pub(super) cost: f64,
    pub(super) started: std::time::Instant,
    running: HashMap<TaskId, Running>,
    set: JoinSet<(TaskId, Result<AttemptRun, SpawnError>)>,
    attempt_ids: HashMap<tokio::task::Id, TaskId>,
    /// The errors told so far, by their text.
    errors_told: std::collections::HashSet<String>,
    /// The named agents (`agent: NAME`) told to be ignored so far: once per name in a run.
    named_agents_told: std::collections::HashSet<String>,
    /// What this run's agent sessions spent on each task, for the summary.
    usage: HashMap<TaskId, TaskUsage>,
}

/// What the loop does after looking.
enum Step {
    End(Exit),
    Wait(Option<std::time::Instant>),
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        clock: Clock,
        root: PathBuf,
        config: Config,
        opts: RunOptions,
        file: PlanFile,
        agent: Arc<dyn Agent>,
        reporter: Reporter,
        records: Records,
        stop: watch::Receiver<Stop>,
        guard_exe: PathBuf,
        state: RunState,
        workspace: Workspace,
    ) -> Engine {
        Engine {
            clock,
            root,
            config,
            opts,
            file,
            agent,
            reporter,
            records,
            stop,
            guard_exe,
            state,
            workspace,
            cost: 0.0,
            started: std::time::Instant::now(),
            running: HashMap::new(),
            set: JoinSet::new(),
            attempt_ids: HashMap::new(),
            errors_told: Default::default(),
            named_agents_told: Default::default(),
            usage: HashMap::new(),
        }
    }

    /// The loop: start what may start, wait for an attempt to end, a stop or a timer, record
    /// the end; until the run ends.
    pub(super) async fn run(&mut self) -> Exit {
        if let Some(from) = &self.opts.resume_from {
            self.reporter.note(super::state::resuming(self.file.plan(), from));
        }
        let exit = loop {
            // baton's own work (git, saves) runs on this thread without yielding: let the stop
            // watcher take a Ctrl+C that arrived meanwhile before deciding anything.
            stop::caught_up(&self.stop).await;
            // A stop by signal was told by the stop watcher already.
            if *self.stop.borrow() != Stop::Running && self.state.stop_requested() && !stop::by_signal() {
                self.reporter.note(Note::StopRequested { running: self.state.running() });
            }
            let wake = match self.step() {
                Step::End(exit) => break exit,
                Step::Wait(wake) => wake,
            };
            tokio::select! {
                joined = self.set.join_next_with_id(), if !self.running.is_empty() => match joined {
                    Some(Ok((_, (id, result)))) => {
                        self.attempt_ids.retain(|_, t| *t != id);
                        if self.finished(&id, result) {
                            self.notify(crate::after::notify::RunEnding::BreakerTripped, None).await;
                        }
                    }
                    Some(Err(e)) => {
                        // An attempt future panicked: a bug. Its task goes back to pending
                        // and the run ends once the others are done.
                        if let Some(id) = self.attempt_ids.remove(&e.id()) {
                            self.running.remove(&id);
                            self.attempt_never_ran(&id, AttemptOutcome::Systemic { message: "internal error: the attempt panicked".into() });
                            self.state.ended(&id, Outcome::Broken, std::time::Instant::now());
                            record::back_to_pending(&mut self.file, &self.reporter, &id);
                        }
                        self.fail(Error::Bug(e.to_string()));
                    }
                    None => {}
                },
                _ = self.stop.changed() => {}
                _ = sleep_until(wake) => {}
            }
        };
        self.finish(exit)
    }

    /// Ends the run now, or starts what may start and says when to look again.
    fn step(&mut self) -> Step {
        self.tell_git_notices();
        if self.running.is_empty() {
            self.commit_round();
            if let Some((exit, note)) = self.state.ends_now(self.file.plan()) {
                if let Some(n) = note {
                    self.reporter.note(n);
                }
                return Step::End(exit);
            }
        }
        let now = std::time::Instant::now();
        let admit = self.state.admit(self.file.plan(), now);
        if !admit.start.is_empty() {
            self.workspace.before_starts(self.state.running_ids());
        }
        for note in admit.notes {
            self.reporter.note(note);
        }
        if let Some((until, reason)) = admit.waiting {
            self.wait(until, reason);
        }
        for id in admit.start {
            if let Err(e) = self.start(&id) {
                self.fail(e);
                break;
            }
        }
        if self.running.is_empty() {
            if let Some((exit, _)) = self.state.ends_now(self.file.plan()) {
                // A task could not be started: the run ends with that error.
                return Step::End(exit);
            }
            if admit.wake.is_none() {
                let (exit, blocked) = self.state.idle_exit(self.file.plan());
                if !blocked.is_empty() {
                    self.reporter.note(Note::Blocked { tasks: blocked });
                }
                return Step::End(exit);
            }
        }
        Step::Wait(admit.wake)
    }

    /// Marks a task in progress, prepares its working copy and prompt, and starts its attempt.
    fn start(&mut self, id: &TaskId) -> Result<(), Error> {
        let Some(task) = self.file.plan().task(id.as_str()).cloned() else { return Ok(()) };
        let plan = self.file.plan();
        let attempt_no = task.attempts + 1;
        // A task `baton retry` gave one more attempt after it used them all: this one is its
        // last, said as `attempt 3/3`, never `3/2`.
        let max = plan.max_attempts(&task, self.config.run.max_attempts).max(attempt_no);
        let section = plan.section_of(id.as_str()).map(|s| s.id.clone()).unwrap_or_default();
        self.reporter.note(Note::NextTask { task: id.clone(), name: task.name.clone(), section, deps: task.depends_on.clone() });
        record::started(&mut self.file, &self.reporter, id).map_err(|e| Error::Plan(e.render_in_run()))?;
        let place = match self.workspace.workplace_for(&task, &mut self.file) {
            Ok(p) => p,
            Err(e) => {
                record::back_to_pending(&mut self.file, &self.reporter, id);
                return Err(e);
            }
        };
        let status_rel = self.config.paths.status_file.clone();
        let status_file = place.cwd.join(&status_rel);
        match verdict::remove_status_file(&status_file) {
            Ok(true) => self.reporter.note(Note::StatusFileRemoved { path: status_rel.clone() }),
            Ok(false) => {}
            Err(e) => self.reporter.warn(format!("cannot remove the old status file {}: {e}", status_file.display())),
        }
        if let Some(dir) = status_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let prompt = match self.prompt(&task, &status_rel, &place.prompt_extra) {
            Ok(p) => p,
            Err(e) => {
                record::back_to_pending(&mut self.file, &self.reporter, id);
                return Err(e);
            }
        };
        let named_agent = self.named_agent(&task, &place.cwd);
        let plan = self.file.plan();
        let model = task.model.clone().or_else(|| plan.meta.model.clone()).or_else(|| self.config.agent.model.clone());
        let total = task.timeout_seconds.or(plan.meta.timeout_seconds).unwrap_or(self.config.run.timeout_seconds);
        let idle = task.idle_timeout_seconds.or(plan.meta.idle_timeout_seconds).unwrap_or(self.config.run.idle_timeout_seconds);
        // Reserve the session number now: parallel attempts of other tasks never share it, and
        // a transcript that cannot be created must not make two attempts share a number.
        let session = self.records.next_session(id.as_str());
        let transcript = self.records.transcript(id.as_str(), session);
        if let Some(d) = transcript.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let spec = AttemptSpec {
            task: id.clone(),
            agent: self.agent.clone(),
            prompt,
            invocation: Invocation { model, agent: named_agent.clone() },
            cwd: place.cwd.clone(),
            total_timeout: Duration::from_secs_f64(total),
            idle_timeout: Duration::from_secs_f64(idle),
            transcript,
            guard_exe: self.guard_exe.clone(),
            env: place.env,
            heartbeat: place.heartbeat,
        };
        self.reporter.emit(EventKind::AttemptStarted { task: id.clone(), name: task.name.clone(), attempt: attempt_no, max_attempts: max });
        let active = Active { id: id.clone(), group: task.parallel_group.clone(), footprint: Footprint::of(&task) };
        self.state.started(id.clone(), Slot { active, attempt: attempt_no, max });
        self.running.insert(id.clone(), Running { name: task.name.clone(), session, started_at: jiff::Timestamp::now(), cwd: place.cwd, named_agent });
        let reporter = self.reporter.clone();
        let stop = self.stop.clone();
        let task_id = id.clone();
        let handle = self.set.spawn(async move { (task_id, attempt::run(spec, reporter, stop).await) });
        self.attempt_ids.insert(handle.id(), id.clone());
        Ok(())
    }

    /// The named agent a task asks for (`agent: NAME`), when its working copy defines it (the
    /// checkout, or the task's worktree); otherwise the task runs without one, told once per
    /// name in the run.
    fn named_agent(&mut self, task: &Task, cwd: &Path) -> Option<String> {
        let name = task.agent.as_deref()?;
        let file = match crate::agent::named_agent(self.agent.as_ref(), name, cwd) {
            NamedAgent::Use(name) => return Some(name),
            NamedAgent::Missing { file } => Some(file),
            NamedAgent::Unsupported => None,
        };
        if self.named_agents_told.insert(name.to_string()) {
            // A worktree has only what is committed: say so when the checkout has the file.
            let uncommitted = cwd != self.root && file.as_ref().is_some_and(|f| self.root.join(f).is_file());
            self.reporter.note(Note::NamedAgentIgnored { task: task.id.clone(), name: name.to_string(), cli: self.agent.name().to_string(), file, uncommitted });
        }
        None
    }

    /// An attempt ended: judge it, land it, let the state decide what it means, and record
    /// that. True when the circuit breaker just tripped (someone should hear about it).
    fn finished(&mut self, id: &TaskId, result: Result<AttemptRun, SpawnError>) -> bool {
        let Some(r) = self.running.remove(id) else { return false };
        let orphans = crate::run::process::orphans::sweep();
        if orphans > 0 {
            self.reporter.warn(format!("{id}: ended {orphans} process(es) an agent had started whose guard was gone"));
        }
        let run = match result {
            Ok(run) => run,
            Err(e) => {
                // A Ctrl+C that reaches the guard before it is in a group of its own ends it
                // before it starts the agent: the stop, not a broken set-up.
                let stopping = stop::level(&self.stop) != Stop::Running;
                let outcome = if stopping { Outcome::Interrupted } else { Outcome::Broken };
                self.attempt_never_ran(
                    id,
                    if stopping { AttemptOutcome::Interrupted } else { AttemptOutcome::Systemic { message: crate::exit::render_chain(&e) } },
                );
                self.state.ended(id, outcome, std::time::Instant::now());
                record::back_to_pending(&mut self.file, &self.reporter, id);
                if !stopping {
                    self.fail(Error::AgentSpawn(crate::exit::render_chain(&e)));
                }
                return false;
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
        let used = self.usage.entry(id.clone()).or_default();
        used.sessions += 1;
        used.time += run.duration;
        used.cost += cost.unwrap_or(0.0);
        let slot = self.state.slot(id).map(|s| (s.attempt, s.max)).unwrap_or((1, 1));
        let mut rec = AttemptRecord {
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
            named_agent: r.named_agent.clone(),
            model: None,
            changed: None,
            checks: Vec::new(),
            review: None,
        };
        let (attempt_outcome, outcome, message) = self.meaning(id, &r, verdict, &mut rec);
        self.reporter.emit(EventKind::AttemptEnded { task: id.clone(), outcome: attempt_outcome, duration: run.duration, cost_usd: cost });
        if let Outcome::Done(_) = outcome {
            // The record first: a crash while landing finds how the attempt ended in it.
            self.write_record(&rec);
        }
        // Landing, when the agent finished: its result is what lands.
        let (outcome, message) = match outcome {
            Outcome::Done(status) => match self.workspace.land(id, &mut self.file) {
                Ok(()) => (Outcome::Done(status), message),
                Err(NotLanded::Conflict(m)) => (Outcome::Failed { conflict: true }, m),
                Err(NotLanded::Protected(e)) => {
                    self.tell_error(&e);
                    (Outcome::NotLanded, message)
                }
            },
            o => (o, message),
        };
        let (tripped, waited) = self.record_end(id, &r, slot, outcome.clone(), &message);
        if !matches!(outcome, Outcome::Done(_) | Outcome::NotLanded | Outcome::Failed { conflict: true }) {
            rec.waited_seconds = rec.waited_seconds.or(waited.map(|w| w.as_secs_f64()));
            self.write_record(&rec);
        }
        tripped
    }

    /// Every started attempt is told to end, also one whose agent never ran.
    fn attempt_never_ran(&self, id: &TaskId, outcome: AttemptOutcome) {
        self.reporter.emit(EventKind::AttemptEnded { task: id.clone(), outcome, duration: Duration::ZERO, cost_usd: None });
    }

    fn write_record(&self, rec: &AttemptRecord) {
        if let Err(e) = self.records.write(rec) {
            self.reporter.warn(format!("cannot write the attempt record: {e}"));
        }
    }

    /// The verdict as the attempt's line says it, as the state takes it, and the message for
    /// the plan; the attempt record is filled in. The agent's edits of the plan are taken.
    fn meaning(&mut self, id: &TaskId, r: &Running, verdict: Verdict, rec: &mut AttemptRecord) -> (AttemptOutcome, Outcome, String) {
        let (attempt, _) = self.state.slot(id).map(|s| (s.attempt, s.max)).unwrap_or((1, 1));
        match verdict {
            Verdict::Done(report) => {
                rec.attempt = Some(attempt);
                if report.plan_modified {
                    self.take_plan_edit(id, &r.cwd);
                }
                if report.status == Status::Failed {
                    let message = if report.message.is_empty() { "the agent reported failure".into() } else { report.message };
                    rec.outcome = "failed".into();
                    rec.message = message.clone();
                    return (AttemptOutcome::Failed { message: message.clone() }, Outcome::Failed { conflict: false }, message);
                }
                rec.outcome = report.status.to_string();
                rec.message = report.message.clone();
                let from_file = report.source == verdict::ReportSource::File;
                (AttemptOutcome::Reported { status: report.status, from_file }, Outcome::Done(report.status), report.message)
            }
            Verdict::Failed { message } => {
                rec.attempt = Some(attempt);
                rec.outcome = "failed".into();
                rec.message = message.clone();
                (AttemptOutcome::Failed { message: message.clone() }, Outcome::Failed { conflict: false }, message)
            }
            Verdict::Limited(l) => {
                let wake = limit::wake_at(
                    l.resets_at,
                    self.clock.now(),
                    Duration::from_secs_f64(self.config.run.limit_margin_seconds),
                    Duration::from_secs_f64(self.config.run.limit_fallback_seconds),
                );
                let wait = wake.duration_since(self.clock.now()).unsigned_abs();
                rec.outcome = "limited".into();
                rec.message = l.message.clone();
                rec.waited_seconds = Some(wait.as_secs_f64());
                let reset = match (&l.zone, l.resets_at) {
                    (Some(z), Some(t)) => t.in_tz(z).map(|t| format!("{} in {z}", t.strftime("%H:%M"))).ok(),
                    _ => None,
                };
                let reason = WaitReason::UsageLimit { message: l.message, reset, known: l.resets_at.is_some(), wait };
                (AttemptOutcome::Limited, Outcome::Limited { wait, reason }, String::new())
            }
            Verdict::Throttled(t) => {
                let jitter = jitter_from_seed(jiff::Timestamp::now().as_nanosecond() as u64);
                rec.outcome = "throttled".into();
                rec.message = t.message.clone();
                (AttemptOutcome::Throttled, Outcome::Throttled { jitter, message: t.message }, String::new())
            }
            Verdict::Systemic(s) => {
                rec.outcome = "systemic".into();
                rec.message = s.message.clone();
                self.tell_error(&Error::Systemic { message: s.message.clone(), help: s.help.clone() });
                (AttemptOutcome::Systemic { message: s.message }, Outcome::Systemic, String::new())
            }
            Verdict::Interrupted => {
                rec.outcome = "interrupted".into();
                (AttemptOutcome::Interrupted, Outcome::Interrupted, String::new())
            }
        }
    }

    /// The state decides what the end means; the plan, the workspace and the reporter are told.
    /// Whether the breaker just tripped, and how long starts now wait (throttling).
    fn record_end(&mut self, id: &TaskId, r: &Running, (attempt, max): (u32, u32), outcome: Outcome, message: &str) -> (bool, Option<Duration>) {
        let conflict = outcome == Outcome::Failed { conflict: true };
        let now = std::time::Instant::now();
        let Some(c) = self.state.ended(id, outcome, now) else { return (false, None) };
        let Consequence { plan, pause, notes, warning, breaker_tripped, waited } = c;
        if let Some(w) = &warning {
            self.reporter.warn(w.clone());
        }
        let text = verdict::plan_text(message, &format!("baton logs {} {id}", self.opts.plan.display()));
        match record::apply(&mut self.file, &self.reporter, id, plan, &text) {
            Ok(true) => {}
            Ok(false) => return (breaker_tripped, waited),
            Err(e) => {
                self.fail(Error::Plan(e.render_in_run()));
                return (breaker_tripped, waited);
            }
        }
        for n in notes {
            self.reporter.note(n);
        }
        match plan {
            PlanChange::Final { status, attempts } => {
                let failed = status == Status::Failed;
                self.reporter.emit(EventKind::TaskFinished {
                    task: id.clone(),
                    name: r.name.clone(),
                    status,
                    message: text.clone(),
                    attempts: (failed && !conflict).then_some(attempts),
                });
                if let Err(e) = self.workspace.task_final(&mut self.file, id, &r.name, status, attempts) {
                    self.fail(e);
                }
            }
            PlanChange::Retry { after, .. } => {
                self.wait(now + after, WaitReason::Retry { task: id.clone(), attempt, max });
            }
            PlanChange::Pending => {}
        }
        if let Some((until, reason)) = pause {
            self.wait(until, reason);
        }
        (breaker_tripped, waited)
    }

    fn tell_git_notices(&self) {
        for n in crate::git::take_notices() {
            self.reporter.warn(n);
        }
    }

    /// Tells a wait until `until` (a monotonic instant) in wall-clock time.
    fn wait(&self, until: std::time::Instant, reason: WaitReason) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        self.reporter.emit(EventKind::Waiting { reason, until: jiff::Timestamp::now() + left });
    }

    /// The agent said it changed the plan: in the main checkout, reload it; in a worktree, the
    /// tasks it added go into the main plan (its other edits merge as it lands).
    fn take_plan_edit(&mut self, id: &TaskId, cwd: &Path) {
        if cwd == self.root {
            return record::reload(&mut self.file, &self.reporter);
        }
        let abs = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        let rel = abs.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs);
        record::merge_added(&mut self.file, &self.reporter, id, &cwd.join(rel));
    }

    /// An error that ends the run: told to every sink (once: parallel attempts meet the same
    /// one), and no new task starts.
    pub(super) fn fail(&mut self, e: Error) {
        self.tell_error(&e);
        self.state.end(e.exit());
    }

    fn tell_error(&mut self, e: &Error) {
        if self.errors_told.insert(e.to_string()) {
            self.reporter.error(e);
        }
    }

    /// A commit that fails ends the run: going on would pile up work that no commit records,
    /// under the wrong task. The next start commits what is in the working tree under its task.
    fn commit_round(&mut self) {
        if let Err(e) = self.workspace.commit_round(&mut self.file) {
            self.fail(e);
        }
    }

    /// The run's end: the plan saved, the workspace finished, the summary told.
    pub(super) fn finish(&mut self, exit: Exit) -> Exit {
        if let Err(e) = record::save(&mut self.file, &self.reporter) {
            // A run that ended on an error has said so already; when the plan cannot be read
            // or saved (deleted, unwritable), this last save fails the same way: said again,
            // as a warning, it would only repeat that error.
            if exit != Exit::InvalidInput {
                self.reporter.warn(e.render_in_run());
            }
        }
        if let Err(e) = self.workspace.finish(&mut self.file, exit == Exit::Stopped) {
            self.fail(e);
        }
        self.tell_git_notices();
        let counts = Counts::of(self.file.plan());
        let how = match (exit, self.state.single()) {
            (Exit::Completed | Exit::TaskFailed, Some(id)) => {
                Ending::SingleTask { task: id.clone(), status: self.file.plan().task(id.as_str()).map(|t| t.status) }
            }
            (Exit::Completed, None) if counts.pending > 0 => match &self.opts.resume_from {
                Some(from) => Ending::FinishedFrom { from: from.clone(), pending: counts.pending },
                None => Ending::Finished,
            },
            (Exit::Completed, None) => Ending::Finished,
            (Exit::TaskFailed, None) => Ending::FinishedWithFailures,
            (Exit::Blocked, _) => Ending::Blocked,
            (Exit::Stopped, _) => Ending::Stopped,
            _ => Ending::Error { attempts: self.state.attempts_started() },
        };
        let tasks = TaskReport::of_plan(self.file.plan(), &self.usage);
        self.reporter.emit(EventKind::Summary(Summary { how, elapsed: self.started.elapsed(), counts, cost: self.cost, tasks }));
        exit
    }

    fn prompt(&self, task: &Task, status_rel: &Path, extra: &str) -> Result<String, Error> {
        let template = match &self.config.agent.prompt_template {
            Some(p) => {
                let path = self.root.join(p);
                std::fs::read_to_string(&path)
                    .map_err(|e| Error::Prompt(format!("cannot read the prompt template {} (baton.toml [agent] prompt_template): {e}", path.display())))?
            }
            None => prompt::DEFAULT_TEMPLATE.to_string(),
        };
        let abs_plan = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        // In a worktree the agent edits its own copy of the plan, at the same relative path.
        let plan_rel = abs_plan.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs_plan);
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

async fn sleep_until(when: Option<std::time::Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
