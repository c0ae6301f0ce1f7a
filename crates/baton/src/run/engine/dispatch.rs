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
use super::verification::ReviewSetup;
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

/// After this many attempts lost by the executor in a row, the run stops.
const MAX_LOST_IN_A_ROW: u32 = 3;

/// A task whose attempt is running: what the dispatcher needs when it ends.
#[derive(Clone)]
struct Running {
    name: String,
    session: u32,
    started_at: jiff::Timestamp,
    /// The working copy the agent runs in (the repository, or the task's worktree).
    cwd: PathBuf,
    /// The named agent the session runs as (the task's `agent:`), when one was passed.
    named_agent: Option<String>,
    /// The agent it runs on (its name in baton.toml), and the agent itself.
    agent: String,
    cli: Arc<dyn Agent>,
    /// The model baton asked for (`--model`), if any.
    model: Option<String>,
    /// The session's spending cap, when a budget is set.
    cap: Option<f64>,
    /// HEAD of its working copy when the attempt started: what it changed is measured from it.
    start_point: Option<String>,
    /// The checks and the review of this attempt, as the plan said when it started: an agent
    /// that edits the plan cannot weaken its own.
    checks: Vec<crate::run::verify::Check>,
    review: Option<crate::run::review::ReviewPlan>,
    /// The task as it started (what the reviewer is told it is).
    task: Task,
}

/// What a task's future in the join set gives back: its agent's session, or the checks and
/// the review of an attempt its agent reported completed.
enum Joined {
    Attempt(Box<Result<AttemptRun, SpawnError>>),
    Verified(Box<Verification>),
}

/// The checks' and the reviewer's judgement of an attempt.
struct Verification {
    checked: crate::run::verify::Checked,
    review: Option<crate::run::record::ReviewRecord>,
}

/// An attempt its agent reported completed, while its checks and review run.
struct Verifying {
    rec: AttemptRecord,
    message: String,
    duration: Duration,
    cost: Option<f64>,
    from_file: bool,
    /// How many reviewer FAILs the task may get before it is `validation_exhausted`.
    max_fails: u32,
    /// The working copy as the agent left it ([`crate::run::verify::tracked_state`]).
    left: Option<String>,
    /// When the checks began: an attempt's time counts its checks and review.
    since: std::time::Instant,
    /// The agent the reviewer runs on: the default, else a fallback while it is limited.
    reviewer: String,
}

pub(super) struct Engine {
    pub(super) clock: Clock,
    pub(super) root: PathBuf,
    pub(super) config: Config,
    pub(super) opts: RunOptions,
    pub(super) file: PlanFile,
    /// Every agent of the run, by name.
    pub(super) roster: crate::agent::Roster,
    pub(super) reporter: Reporter,
    pub(super) records: Records,
    pub(super) stop: watch::Receiver<Stop>,
    pub(super) guard_exe: PathBuf,
    pub(super) state: RunState,
    pub(super) workspace: Workspace,
    pub(super) cost: f64,
    /// Sessions whose cost is unknown.
    pub(super) unpriced: u32,
    pub(super) started: std::time::Instant,
    running: HashMap<TaskId, Running>,
    set: JoinSet<(TaskId, Joined)>,
    /// Attempts whose checks or review are running.
    verifying: HashMap<TaskId, Verifying>,
    attempt_ids: HashMap<tokio::task::Id, TaskId>,
    /// The errors told so far, by their text.
    errors_told: std::collections::HashSet<String>,
    /// The named agents (`agent: NAME`) told to be ignored so far: once per name in a run.
    named_agents_told: std::collections::HashSet<String>,
    /// Each task's checks as the plan said when the run began: an agent that edits them in the
    /// plan does not weaken its own, nor a later attempt's, in this run.
    checks_at_start: HashMap<TaskId, Vec<crate::run::verify::Check>>,
    /// What this run's agent sessions spent on each task, for the summary.
    usage: HashMap<TaskId, TaskUsage>,
    /// With a plan budget: the history, to count what runs of the plan elsewhere spend.
    pub(super) budget_sync: Option<BudgetSync>,
    /// Where attempts run.
    pub(super) executor: crate::exec::Executor,
}

/// Where a budgeted run reads what runs of its plan elsewhere (other checkouts) spend.
pub(super) struct BudgetSync {
    pub store: crate::store::Store,
    pub key: String,
    /// This run's row: its own spending is counted by the state itself.
    pub run: i64,
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
        roster: crate::agent::Roster,
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
            roster,
            reporter,
            records,
            stop,
            guard_exe,
            state,
            workspace,
            cost: 0.0,
            unpriced: 0,
            started: std::time::Instant::now(),
            running: HashMap::new(),
            set: JoinSet::new(),
            verifying: HashMap::new(),
            attempt_ids: HashMap::new(),
            errors_told: Default::default(),
            named_agents_told: Default::default(),
            checks_at_start: Default::default(),
            usage: HashMap::new(),
            budget_sync: None,
            executor: crate::exec::Executor::Local,
        }
    }

    /// The loop: start what may start, wait for an attempt to end, a stop or a timer, record
    /// the end; until the run ends.
    pub(super) async fn run(&mut self) -> Exit {
        let plan = self.file.plan();
        self.checks_at_start = plan.tasks().map(|t| (t.id.clone(), crate::run::verify::checks_for(&self.config.verify, plan, t))).collect();
        if let Some(from) = &self.opts.resume_from {
            self.reporter.note(super::state::resuming(self.file.plan(), from));
        }
        let exit = loop {
            // baton's own work (git, saves) runs on this thread without yielding: let the stop
            // watcher take a Ctrl+C that arrived meanwhile before deciding anything.
            stop::caught_up(&self.stop).await;
            // The watcher looks at the stop file a few times a second; one look here too, so
            // that once `baton stop` has written it no task starts.
            let stop_file = *self.stop.borrow() == Stop::Running && self.root.join(&self.config.paths.stop_file).exists();
            // A stop by signal was told by the stop watcher already.
            if (*self.stop.borrow() != Stop::Running || stop_file) && self.state.stop_requested() && !stop::by_signal() {
                self.reporter.note(Note::StopRequested { running: self.state.running() });
            }
            let wake = match self.step() {
                Step::End(exit) => break exit,
                Step::Wait(wake) => wake,
            };
            tokio::select! {
                joined = self.set.join_next_with_id(), if !self.running.is_empty() => match joined {
                    Some(Ok((_, (id, joined)))) => {
                        self.attempt_ids.retain(|_, t| *t != id);
                        let tripped = match joined {
                            Joined::Attempt(result) => self.finished(&id, *result),
                            Joined::Verified(v) => self.verified(&id, *v),
                        };
                        if tripped {
                            self.notify(crate::after::notify::RunEnding::BreakerTripped, None).await;
                        }
                    }
                    Some(Err(e)) => {
                        // An attempt future panicked: a bug. Its task goes back to pending
                        // and the run ends once the others are done.
                        if let Some(id) = self.attempt_ids.remove(&e.id()) {
                            self.running.remove(&id);
                            self.verifying.remove(&id);
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
        if let Some(sync) = &self.budget_sync {
            // A figure that cannot be read now keeps the last one; the sink tells store trouble.
            if let Ok(elsewhere) = sync.store.plan_spent_elsewhere(&sync.key, sync.run) {
                self.state.spent_elsewhere(elsewhere);
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
        for (id, agent) in admit.start {
            if let Err(e) = self.start(&id, &agent) {
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

    /// Marks a task in progress, prepares its working copy and prompt, and starts its attempt
    /// on `agent`.
    fn start(&mut self, id: &TaskId, agent: &str) -> Result<(), Error> {
        let Some(task) = self.file.plan().task(id.as_str()).cloned() else { return Ok(()) };
        let member = self.roster.member(agent).map_err(Error::Agent)?.clone();
        let plan = self.file.plan();
        let attempt_no = task.attempts + 1;
        // A task `baton retry` gave one more attempt after it used them all: this one is its
        // last, said as `attempt 3/3`, never `3/2`.
        let max = plan.max_attempts(&task, self.config.run.max_attempts).max(attempt_no);
        let section = plan.section_of(id.as_str()).map(|s| s.id.clone()).unwrap_or_default();
        self.reporter.note(Note::NextTask { task: id.clone(), name: task.name.clone(), section, deps: task.depends_on.clone() });
        record::started(&mut self.file, &self.reporter, id).map_err(|e| Error::Plan(e.render_in_run()))?;
        let place = match self.workspace.workplace_for(&task, &mut self.file) {
            // On a cluster the agent cannot reach this machine's coordination files.
            Ok(p) if !self.executor.is_local() => super::workspace::Workplace { prompt_extra: String::new(), env: Vec::new(), heartbeat: None, ..p },
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
        let named_agent = self.named_agent(&task, &place.cwd, &member);
        // Only looked at when something will ask what the attempt changed.
        let start_point = (self.workspace.uses_git() && self.verifies_changes(&task)).then(|| crate::run::verify::start_point(&place.cwd)).flatten();
        let now = crate::run::verify::checks_for(&self.config.verify, self.file.plan(), &task);
        let checks = match self.checks_at_start.get(&task.id) {
            Some(first) if *first != now => {
                self.reporter.warn(format!("{id}: its checks were changed in the plan during this run; this run keeps the checks it began with"));
                first.clone()
            }
            Some(first) => first.clone(),
            None => now,
        };
        let review = crate::run::review::review_for(&self.config.review, self.file.plan(), &task);
        let plan = self.file.plan();
        let model = self.roster.model_for(plan, &task, attempt_no, &member);
        let total = task.timeout_seconds.or(plan.meta.timeout_seconds).unwrap_or(self.config.run.timeout_seconds);
        let idle = task.idle_timeout_seconds.or(plan.meta.idle_timeout_seconds).unwrap_or(self.config.run.idle_timeout_seconds);
        // Reserve the session number now: parallel attempts of other tasks never share it, and
        // a transcript that cannot be created must not make two attempts share a number.
        let session = self.records.next_session(id.as_str());
        let transcript = self.records.transcript(id.as_str(), session);
        if let Some(d) = transcript.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        // A transcript now: the session number is taken even if baton dies before the agent
        // starts (the next start must not give it again).
        let _ = std::fs::OpenOptions::new().create(true).append(true).open(&transcript);
        // Which agent's dialect `baton logs` reads it in.
        crate::agent::write_kind_file(&transcript, member.def.kind);
        let cap = self.state.session_cap();
        let spec = AttemptSpec {
            task: id.clone(),
            agent: member.agent.clone(),
            prompt,
            invocation: Invocation { model: model.clone(), agent: named_agent.clone(), max_budget_usd: cap.filter(|_| self.config.budget.cap_sessions) },
            cwd: place.cwd.clone(),
            total_timeout: Duration::from_secs_f64(total),
            idle_timeout: Duration::from_secs_f64(idle),
            transcript,
            guard_exe: self.guard_exe.clone(),
            env: place.env,
            heartbeat: place.heartbeat,
            executor: self.executor.clone(),
            place: crate::exec::AttemptPlace { task: id.clone(), session, status_file: status_rel.clone(), resources: task.resources.clone() },
        };
        self.reporter.emit(EventKind::AttemptStarted {
            task: id.clone(),
            name: task.name.clone(),
            attempt: attempt_no,
            max_attempts: max,
            session,
            model: model.clone(),
            transcript: spec.transcript.clone(),
            max_budget_usd: cap,
            agent: Some(member.name.clone()),
        });
        let active = Active { id: id.clone(), group: task.parallel_group.clone(), footprint: Footprint::of(&task) };
        self.state.started(id.clone(), Slot { active, attempt: attempt_no, max, agent: member.name.clone(), task_agent: task.agent.clone(), since: std::time::Instant::now() });
        self.running.insert(
            id.clone(),
            Running { name: task.name.clone(), session, started_at: jiff::Timestamp::now(), cwd: place.cwd, named_agent, agent: member.name, cli: member.agent, model, cap, start_point, checks, review, task: task.clone() },
        );
        let reporter = self.reporter.clone();
        let stop = self.stop.clone();
        let task_id = id.clone();
        let handle = self.set.spawn(async move { (task_id, Joined::Attempt(Box::new(attempt::run(spec, reporter, stop).await))) });
        self.attempt_ids.insert(handle.id(), id.clone());
        Ok(())
    }

    /// What a session's tokens cost at `[prices]`: the price of its model (as the CLI said it,
    /// else as baton asked), else of its agent's name; `None` without a price or a token count.
    fn priced(&self, summary: &crate::agent::StreamSummary, r: &Running) -> Option<f64> {
        let usage = summary.result()?.usage;
        let model = summary.model().map(str::to_string).or_else(|| r.model.clone());
        let price = model.and_then(|m| self.config.prices.get(&m)).or_else(|| self.config.prices.get(&r.agent))?;
        let input = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
        Some(price.cost(input, usage.cache_read_input_tokens, usage.output_tokens))
    }

    /// The named agent a task asks for (`agent: NAME`), when its working copy defines it (the
    /// checkout, or the task's worktree); otherwise the task runs without one, told once per
    /// name in the run.
    fn named_agent(&mut self, task: &Task, cwd: &Path, member: &crate::agent::Member) -> Option<String> {
        // A task that names an agent of baton.toml runs on it, not as a subagent of it.
        let name = task.agent.as_deref().filter(|a| !self.roster.routing().known.contains(*a))?;
        let file = match crate::agent::named_agent(member.agent.as_ref(), name, cwd) {
            NamedAgent::Use(name) => return Some(name),
            NamedAgent::Missing { file } => Some(file),
            NamedAgent::Unsupported => None,
        };
        if self.named_agents_told.insert(name.to_string()) {
            // A worktree has only what is committed: say so when the checkout has the file.
            let uncommitted = cwd != self.root && file.as_ref().is_some_and(|f| self.root.join(f).is_file());
            self.reporter.note(Note::NamedAgentIgnored { task: task.id.clone(), name: name.to_string(), cli: member.agent.name().to_string(), file, uncommitted });
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
                    self.fail(match e {
                        SpawnError::Remote { message, help } => Error::Systemic { message, help },
                        e => Error::AgentSpawn(crate::exit::render_chain(&e)),
                    });
                }
                return false;
            }
        };
        let status_rel = self.config.paths.status_file.clone();
        let status_file = r.cwd.join(&status_rel);
        // The prompt as it was sent (kept beside the transcript), capped like a status file.
        let prompt = crate::run::verdict::read_status_file(&crate::run::attempt::prompt_path(&self.records.transcript(id.as_str(), r.session))).ok().flatten();
        let verdict = verdict::judge(
            &Evidence {
                task_id: id.as_str(),
                status_file: &status_file,
                status_shown: &status_rel,
                ended: run.ended,
                exit: run.exit,
                dialect: r.cli.dialect(),
                summary: &run.summary,
                stderr_tail: &run.stderr_tail,
                systemic: run.systemic.clone(),
                prompt: prompt.as_deref(),
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
        // What the agent said it cost, else what its tokens cost at `[prices]`.
        let said = run.summary.cost_usd();
        let priced = said.is_none().then(|| self.priced(&run.summary, &r)).flatten();
        let cost = said.or(priced);
        self.cost += cost.unwrap_or(0.0);
        // A session that ran and whose cost nobody knows (the simulated agent's is 0, known).
        if cost.is_none() && run.exit.is_some() {
            self.unpriced += 1;
        }
        let used = self.usage.entry(id.clone()).or_default();
        used.sessions += 1;
        used.time += run.duration;
        used.cost += cost.unwrap_or(0.0);
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
            cost_from_prices: priced.is_some(),
            turns: run.summary.turns(),
            input_tokens: run.summary.result().map(|x| x.usage.input_tokens),
            output_tokens: run.summary.result().map(|x| x.usage.output_tokens),
            cache_read_tokens: run.summary.result().map(|x| x.usage.cache_read_input_tokens),
            cache_creation_tokens: run.summary.result().map(|x| x.usage.cache_creation_input_tokens),
            session_id: run.summary.session_id().map(str::to_string),
            exit: run.exit.map(|x| x.to_string()),
            waited_seconds: None,
            estimated_cost_usd: None,
            named_agent: r.named_agent.clone(),
            agent: Some(r.agent.clone()),
            // What the CLI says it ran, else what baton asked for.
            model: run.summary.model().map(str::to_string).or_else(|| r.model.clone()),
            changed: None,
            checks: Vec::new(),
            review: None,
        };
        let (attempt_outcome, outcome, message) = self.meaning(id, &r, verdict, &mut rec);
        // A session baton ended before it said its cost spent something all the same: the
        // budget is charged the plan's median attempt cost (at most its cap).
        if cost.is_none() && rec.outcome == "interrupted" {
            rec.estimated_cost_usd = self.state.charge_for_unknown(r.cap);
        }
        self.state.spent(cost.or(rec.estimated_cost_usd).unwrap_or(0.0));
        if outcome == Outcome::Done(Status::Completed) {
            let from_file = matches!(attempt_outcome, AttemptOutcome::Reported { from_file: true, .. });
            return self.verify(id, r, rec, message, (run.duration, cost, from_file));
        }
        self.conclude(id, r, rec, (attempt_outcome, outcome, message), (run.duration, cost))
    }

    /// Whether anything will ask what an attempt of this task changed: the no-op rule, or a
    /// reviewer (it reads the diff).
    fn verifies_changes(&self, task: &Task) -> bool {
        let rule = self.config.verify.require_changes != crate::config::RequireChanges::Off && task.expect_changes != Some(false);
        rule || crate::run::review::review_for(&self.config.review, self.file.plan(), task).is_some()
    }

    /// The paths an attempt's change is not measured on: the plan, the status file, the stop
    /// file, baton's logs, history, worktrees and coordination files (relative to the working
    /// copy, the same in a worktree).
    fn own_paths(&self) -> Vec<PathBuf> {
        let abs = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        let plan = abs.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs);
        let p = &self.config.paths;
        // baton's own files: the run history and logs, the worktrees, the parallel agents'
        // coordination files (relative to the repository root).
        let own = [".baton", ".claude/subagent-status", ".claude/agent-claims.json", ".claude/agent-claims.json.lock"].map(PathBuf::from);
        [plan, p.status_file.clone(), p.stop_file.clone(), p.logs_dir.clone(), p.worktrees_dir.clone()].into_iter().chain(own).collect()
    }

    /// The agent reported the task completed: did it change anything, do its checks pass,
    /// does its reviewer agree? The no-op rule is decided now; checks and the review run as a
    /// future of the join set (the loop goes on meanwhile), and `verified` takes it from there.
    fn verify(&mut self, id: &TaskId, r: Running, mut rec: AttemptRecord, message: String, (duration, cost, from_file): (Duration, Option<f64>, bool)) -> bool {
        if self.file.plan().task(id.as_str()).is_none() {
            let outcome = (AttemptOutcome::Reported { status: Status::Completed, from_file }, Outcome::Done(Status::Completed), message);
            return self.conclude(id, r, rec, outcome, (duration, cost));
        }
        let task = r.task.clone();
        let own = self.own_paths();
        if self.workspace.uses_git() && self.verifies_changes(&task) {
            rec.changed = crate::run::verify::changed_since(&r.cwd, r.start_point.as_deref(), &own);
        }
        let mut message = message;
        if rec.changed == Some(false) && task.expect_changes != Some(false) {
            match self.config.verify.require_changes {
                crate::config::RequireChanges::Off => {}
                crate::config::RequireChanges::Warn => {
                    self.reporter.warn(format!("{id} was reported completed without any change (no commit, no diff since its attempt started); if that is right for the task, give it `expect_changes: false`"));
                }
                crate::config::RequireChanges::Fail => {
                    message = "reported completed without any change (no commit, no diff since the attempt started); [verify] require_changes = \"fail\"".to_string();
                    rec.outcome = "failed".into();
                    rec.message = message.clone();
                    let outcome = (AttemptOutcome::Failed { message: message.clone() }, Outcome::Failed { conflict: false }, message);
                    return self.conclude(id, r, rec, outcome, (duration, cost));
                }
            }
        }
        let (checks, review) = (r.checks.clone(), r.review.clone());
        if checks.is_empty() && review.is_none() {
            let outcome = (AttemptOutcome::Reported { status: Status::Completed, from_file }, Outcome::Done(Status::Completed), message);
            return self.conclude(id, r, rec, outcome, (duration, cost));
        }
        let dir = self.records.task_dir(id.as_str());
        let check_job = crate::run::verify::CheckJob {
            task: id.clone(),
            cwd: r.cwd.clone(),
            env: Vec::new(),
            guard_exe: self.guard_exe.clone(),
            timeout: Duration::from_secs_f64(self.config.verify.timeout_seconds),
            log_prefix: dir.join(format!("attempt-{}.check", r.session)),
        };
        let template = match self.config.review.prompt_template.as_ref().filter(|_| review.is_some()) {
            Some(p) => match std::fs::read_to_string(self.root.join(p)) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.fail(Error::Prompt(format!("cannot read the reviewer prompt template {} (baton.toml [review] prompt_template): {e}", self.root.join(p).display())));
                    let outcome = (AttemptOutcome::Interrupted, Outcome::Interrupted, String::new());
                    return self.conclude(id, r, rec, outcome, (duration, cost));
                }
            },
            None => None,
        };
        // The reviewer runs on the default agent, or on a fallback while the default waits out
        // a long usage limit (a limited reviewer would send the task round again and again).
        let reviewer = match self.state.route(None, std::time::Instant::now()) {
            crate::policy::failover::Route::Run(name) => self.roster.member(&name).cloned().unwrap_or_else(|_| self.roster.default().clone()),
            crate::policy::failover::Route::Wait(_) => self.roster.default().clone(),
        };
        let on_default = reviewer.name == self.roster.routing().default;
        let review_job = review.as_ref().map(|plan| {
            let named_agent = plan.named_agent.as_deref().and_then(|name| match crate::agent::named_agent(reviewer.agent.as_ref(), name, &r.cwd) {
                NamedAgent::Use(n) => Some(n),
                _ => None,
            });
            let total = task.timeout_seconds.or(self.file.plan().meta.timeout_seconds).unwrap_or(self.config.run.timeout_seconds);
            let idle = task.idle_timeout_seconds.or(self.file.plan().meta.idle_timeout_seconds).unwrap_or(self.config.run.idle_timeout_seconds);
            ReviewSetup {
                job: crate::run::review::ReviewJob {
                    task: id.clone(),
                    cwd: r.cwd.clone(),
                    env: Vec::new(),
                    guard_exe: self.guard_exe.clone(),
                    prompt: String::new(),
                    // `[review] model` names a model of the default agent; a fallback's own.
                    model: if on_default { plan.model.clone() } else { reviewer.def.models.first().cloned().or_else(|| reviewer.def.model.clone()) },
                    named_agent,
                    transcript_prefix: dir.join(format!("attempt-{}.review", r.session)),
                    status_file: r.cwd.join(&self.config.paths.status_file),
                    total_timeout: Duration::from_secs_f64(total),
                    idle_timeout: Duration::from_secs_f64(idle),
                    max_budget_usd: self.state.review_cap().filter(|_| self.config.budget.cap_sessions),
                },
                diff: crate::run::review::attempt_diff(&r.cwd, r.start_point.as_deref(), &own),
                plan: self.file.plan().clone(),
                template: template.clone(),
                task: task.clone(),
                agent_message: message.clone(),
                status_rel: self.config.paths.status_file.clone(),
            }
        });
        self.verifying.insert(
            id.clone(),
            Verifying {
                rec,
                message,
                duration,
                cost,
                from_file,
                max_fails: review.as_ref().map_or(2, |p| p.max_fails),
                left: if self.workspace.uses_git() { crate::run::verify::tracked_state(&r.cwd) } else { None },
                since: std::time::Instant::now(),
                reviewer: reviewer.name.clone(),
            },
        );
        let (reporter, stop, agent) = (self.reporter.clone(), self.stop.clone(), reviewer.agent.clone());
        self.running.insert(id.clone(), r);
        let task_id = id.clone();
        let handle = self.set.spawn(async move {
            let checked = crate::run::verify::run_checks(&checks, &check_job, &reporter, stop.clone()).await;
            let passed = checked.failed.is_none() && !checked.interrupted;
            let review = match review_job {
                Some(setup) if passed => Some(setup.run(&checked, agent, &reporter, stop).await),
                _ => None,
            };
            (task_id, Joined::Verified(Box::new(Verification { checked, review })))
        });
        self.attempt_ids.insert(handle.id(), id.clone());
        false
    }

    /// The checks and the review of an attempt are done: what they mean for it, then as any
    /// attempt's end.
    fn verified(&mut self, id: &TaskId, v: Verification) -> bool {
        let Some(p) = self.verifying.remove(id) else { return false };
        let Some(r) = self.running.remove(id) else { return false };
        let Verifying { mut rec, message, duration, cost, from_file, max_fails, left, since, reviewer } = p;
        self.usage.entry(id.clone()).or_default().time += since.elapsed();
        let duration = duration + since.elapsed();
        rec.duration_seconds = duration.as_secs_f64();
        rec.ended_at = jiff::Timestamp::now().to_string();
        // A check or the reviewer that moved HEAD or changed tracked files would have baton
        // record (and land) something other than what the agent did, and what was checked.
        let changed_by_verification = left.is_some() && crate::run::verify::tracked_state(&r.cwd) != left;
        rec.checks = v.checked.records;
        if let Some(review) = &v.review {
            self.state.spent(review.cost_usd.unwrap_or(0.0));
            self.cost += review.cost_usd.unwrap_or(0.0);
            self.usage.entry(id.clone()).or_default().cost += review.cost_usd.unwrap_or(0.0);
        }
        rec.review = v.review.clone();
        let stopped_now = stop::level(&self.stop) == Stop::Now;
        let outcome = if v.checked.interrupted || (stopped_now && v.review.as_ref().is_some_and(|r| r.verdict.is_none())) {
            rec.outcome = "interrupted".into();
            // Not counted: the record must not say it was.
            rec.attempt = None;
            (AttemptOutcome::Interrupted, Outcome::Interrupted, String::new())
        } else if changed_by_verification {
            let text = "the checks or the reviewer changed the task's working copy after its agent had finished (HEAD, the branch or a tracked file); baton records nothing it did not check — make them leave the repository as they found it".to_string();
            rec.outcome = "failed".into();
            rec.message = text.clone();
            (AttemptOutcome::Failed { message: text.clone() }, Outcome::Failed { conflict: false }, text)
        } else if let Some(review) = v.review.as_ref().filter(|r| crate::run::review::capped(r)) {
            // The reviewer spent what remained: not counted, and the budget ends the run.
            let message = review.problem.clone().unwrap_or_default();
            rec.outcome = "capped".into();
            rec.attempt = None;
            rec.message = message.clone();
            (AttemptOutcome::Capped { message }, Outcome::Capped, String::new())
        } else if let Some(review) = v.review.as_ref().filter(|r| crate::run::review::limited(r)) {
            // The reviewer met a usage limit: the attempt waits like one whose agent did, and
            // is not counted; nothing is recorded as reviewed.
            let resets_at = review.limit_resets_at.and_then(|s| jiff::Timestamp::from_second(s).ok());
            let wake = limit::wake_at(
                resets_at,
                self.clock.now(),
                Duration::from_secs_f64(self.config.run.limit_margin_seconds),
                Duration::from_secs_f64(self.config.run.limit_fallback_seconds),
            );
            let wait = wake.duration_since(self.clock.now()).unsigned_abs();
            let message = review.problem.clone().unwrap_or_default();
            rec.outcome = "limited".into();
            rec.attempt = None;
            rec.message = message.clone();
            // The reviewer's agent's limit.
            let reason = WaitReason::UsageLimit { message, reset: None, known: resets_at.is_some(), wait, agent: Some(reviewer) };
            (AttemptOutcome::Limited, Outcome::Limited { wait, reason }, String::new())
        } else if let Some(failed) = v.checked.failed.and_then(|i| rec.checks.get(i)) {
            let line = crate::run::verify::failure_line(failed);
            rec.outcome = "failed".into();
            rec.message = line.clone();
            (AttemptOutcome::Failed { message: line.clone() }, Outcome::Failed { conflict: false }, line)
        } else {
            match v.review.as_ref().map(|r| (r.verdict.as_deref(), r)) {
                None => (AttemptOutcome::Reported { status: Status::Completed, from_file }, Outcome::Done(Status::Completed), message),
                Some((Some("PASS"), _)) => {
                    rec.outcome = Status::Verified.to_string();
                    (AttemptOutcome::Reported { status: Status::Verified, from_file }, Outcome::Done(Status::Verified), message)
                }
                Some((Some("WARN"), review)) => {
                    let text = with_findings(&message, "review: WARN", &review.findings);
                    rec.message = text.clone();
                    (AttemptOutcome::Reported { status: Status::Completed, from_file }, Outcome::Done(Status::Completed), text)
                }
                Some((Some(_), review)) => {
                    // FAIL: this one and those before it, in this run or earlier ones.
                    let fails = 1 + self.review_fails(id, rec.session);
                    let text = with_findings("", "review: FAIL", &review.findings);
                    rec.outcome = "failed".into();
                    rec.message = text.clone();
                    (AttemptOutcome::Failed { message: text.clone() }, Outcome::Rejected { exhausted: fails >= max_fails }, text)
                }
                Some((None, review)) => {
                    let why = review.problem.clone().unwrap_or_else(|| "no valid verdict".into());
                    self.reporter.warn(format!("{id} could not be reviewed ({why}); it is completed without a review"));
                    (AttemptOutcome::Reported { status: Status::Completed, from_file }, Outcome::Done(Status::Completed), message)
                }
            }
        };
        self.conclude(id, r, rec, outcome, (duration, cost))
    }

    /// Reviewer FAILs the task got before the attempt of session `before`.
    fn review_fails(&self, id: &TaskId, before: u32) -> u32 {
        let id = id.as_str();
        self.records
            .sessions(id)
            .into_iter()
            .filter(|s| *s < before)
            .filter_map(|s| self.records.read(id, s))
            .filter(|r| r.review.as_ref().and_then(|v| v.verdict.as_deref()) == Some("FAIL"))
            .count() as u32
    }

    /// The end of an attempt, judged: told, landed when done, decided by the state, recorded.
    fn conclude(
        &mut self,
        id: &TaskId,
        r: Running,
        mut rec: AttemptRecord,
        (attempt_outcome, outcome, message): (AttemptOutcome, Outcome, String),
        (duration, cost): (Duration, Option<f64>),
    ) -> bool {
        let slot = self.state.slot(id).map(|s| (s.attempt, s.max)).unwrap_or((1, 1));
        if rec.attempt.is_some() {
            // A counted attempt whose cost is known: what the next ones are expected to cost.
            if let Some(c) = rec.cost_usd {
                self.state.sample(c + rec.review.as_ref().and_then(|r| r.cost_usd).unwrap_or(0.0));
            }
        }
        self.reporter.emit(EventKind::AttemptEnded { task: id.clone(), outcome: attempt_outcome, duration, cost_usd: cost });
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
        let (tripped, waited) = self.record_end(id, &r, slot, outcome.clone(), &message, rec.model.as_deref());
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

    /// Writes the attempt's record beside its transcript, and tells it (the store keeps it).
    fn write_record(&self, rec: &AttemptRecord) {
        if let Err(e) = self.records.write(rec) {
            self.reporter.warn(format!("cannot write the attempt record: {e}"));
        }
        self.reporter.emit(EventKind::AttemptRecorded { task: TaskId(rec.task.clone()), record: Box::new(rec.clone()) });
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
                    let reset = match (&l.zone, l.resets_at) {
                    (Some(z), Some(t)) => t.in_tz(z).map(|t| format!("{} in {z}", t.strftime("%H:%M"))).ok(),
                    _ => None,
                };
                let reason = WaitReason::UsageLimit { message: l.message, reset, known: l.resets_at.is_some(), wait, agent: Some(r.agent.clone()) };
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
            Verdict::Capped { message } => {
                rec.outcome = "capped".into();
                rec.message = message.clone();
                (AttemptOutcome::Capped { message }, Outcome::Capped, String::new())
            }
            Verdict::Interrupted => {
                rec.outcome = "interrupted".into();
                (AttemptOutcome::Interrupted, Outcome::Interrupted, String::new())
            }
            Verdict::Lost { message } => {
                rec.outcome = "lost".into();
                rec.message = message.clone();
                if self.state.lost_in_a_row() + 1 >= MAX_LOST_IN_A_ROW {
                    // A cluster that loses every job is broken: no more are sent to it.
                    let message = format!("the cluster lost {MAX_LOST_IN_A_ROW} attempts in a row; the last: {message}");
                    self.tell_error(&Error::Systemic {
                        message: message.clone(),
                        help: "look at the cluster (`ray status`, the job logs in its dashboard); the tasks wait as pending for the next run".into(),
                    });
                    return (AttemptOutcome::Lost { message }, Outcome::Systemic, String::new());
                }
                (AttemptOutcome::Lost { message }, Outcome::Lost, String::new())
            }
        }
    }

    /// The state decides what the end means; the plan, the workspace and the reporter are told.
    /// Whether the breaker just tripped, and how long starts now wait (throttling).
    fn record_end(&mut self, id: &TaskId, r: &Running, (attempt, max): (u32, u32), outcome: Outcome, message: &str, model: Option<&str>) -> (bool, Option<Duration>) {
        let conflict = outcome == Outcome::Failed { conflict: true };
        let now = std::time::Instant::now();
        let Some(c) = self.state.ended(id, outcome, now) else { return (false, None) };
        let Consequence { plan, pause, notes, warning, breaker_tripped, waited } = c;
        if let Some(w) = &warning {
            self.reporter.warn(w.clone());
        }
        let text = verdict::plan_text(message, &format!("baton logs {} {id}", self.opts.plan.display()));
        match record::apply(&mut self.file, &self.reporter, id, plan, &text, model) {
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
                let failed = status.is_failure();
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
            (Exit::BudgetExhausted, _) => Ending::BudgetExhausted,
            _ => Ending::Error { attempts: self.state.attempts_started() },
        };
        if let Some(n) = self.state.over_budget() {
            self.reporter.note(n);
        }
        let tasks = TaskReport::of_plan(self.file.plan(), &self.usage);
        self.reporter.emit(EventKind::Summary(Summary { how, elapsed: self.started.elapsed(), counts, cost: self.cost, unpriced_sessions: self.unpriced, tasks }));
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
        let feedback = self.feedback(task);
        Ok(prompt::render(
            &template,
            &PromptVars {
                plan: self.file.plan(),
                task,
                plan_file: &plan_rel,
                status_file: status_rel,
                build_command: self.config.agent.build_command.as_deref(),
                extra,
                feedback: feedback.as_deref(),
            },
        ))
    }

    /// What the task's last counted attempt was failed for by its checks or its reviewer, for
    /// the next attempt's prompt. Nothing for a task started afresh (`attempts: 0`).
    fn feedback(&self, task: &Task) -> Option<String> {
        if task.attempts == 0 {
            return None;
        }
        let id = task.id.as_str();
        let rec = self.records.sessions(id).into_iter().rev().filter_map(|s| self.records.read(id, s)).find(|r| r.attempt.is_some())?;
        if let Some(check) = rec.checks.iter().find(|c| !c.passed) {
            return Some(crate::run::verify::failure_feedback(check));
        }
        let review = rec.review.as_ref().filter(|r| r.verdict.as_deref() == Some("FAIL"))?;
        let mut text = "A reviewer judged the last attempt and failed it. Fix what it found:\n".to_string();
        for f in &review.findings {
            text.push_str(&format!("\n- {f}"));
        }
        Some(text)
    }
}

/// The agent's message with a reviewer's findings after it, on one line each: "`head`: a; b".
fn with_findings(message: &str, head: &str, findings: &[String]) -> String {
    let list = if findings.is_empty() { "no findings given".to_string() } else { findings.join("; ") };
    if message.is_empty() {
        format!("{head}: {list}")
    } else {
        format!("{message} — {head}: {list}")
    }
}

async fn sleep_until(when: Option<std::time::Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
