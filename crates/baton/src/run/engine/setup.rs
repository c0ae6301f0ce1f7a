//! Everything before the first task: configuration, the plan, the agent, git or not, the
//! locks, the workspace, the stop watcher — any problem is an [`Error`] and nothing is touched
//! — then the dispatcher, the hooks around it, and the exit code.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::dispatch::Engine;
use super::record;
use super::state::{left_out, Policies, RunState};
use super::workspace::{DirtyTree, OwnFiles, Place, Workspace};
use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::plan::{Diagnostic, PlanFile};
use crate::policy::backoff::{RetryBackoff, ThrottleBackoff};
use crate::policy::breaker::CircuitBreaker;
use crate::report::event::{EventKind, Note, Reporter};
use crate::report::status::Counts;
use crate::report::terminal::{output_reporter, MessageFormat, Output};
use crate::root::GitUse;
use crate::run::lock::{CheckoutLock, PlanLock};
use crate::run::record::{self as records, Records};
use crate::run::stop::{self, Stop};

/// Wall-clock "now" for usage-limit reset times. Tests pin it with `BATON_FAKE_NOW` (a zoned
/// date-time such as `2026-11-25T17:59:58-05:00[America/Toronto]`); time then flows on from
/// there at the real rate, so waits are computed against the pinned instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    offset: jiff::SignedDuration,
}

impl Clock {
    fn from_env() -> Result<Clock, Error> {
        let offset = match std::env::var("BATON_FAKE_NOW") {
            Ok(s) if !s.is_empty() => {
                let pinned: jiff::ZonedDateTime =
                    s.parse().map_err(|e| Error::Setup(format!("BATON_FAKE_NOW={s:?} is not a zoned date-time: {e}")))?;
                pinned.timestamp().duration_since(jiff::Timestamp::now())
            }
            _ => jiff::SignedDuration::ZERO,
        };
        Ok(Clock { offset })
    }

    pub(super) fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now() + self.offset
    }

    pub(super) fn zoned(&self) -> jiff::ZonedDateTime {
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
    /// `--agent NAME`: the agent tasks run on instead of `baton.toml`'s default (`simulated`:
    /// every task, no fallback).
    pub agent: Option<String>,
    /// `--message-format`: the human view on stdout, or JSON events there (the view on stderr).
    pub format: MessageFormat,
    /// `--junit PATH`: a JUnit XML report written when the run ends.
    pub junit: Option<PathBuf>,
    /// `--max-cost USD`: this run's budget.
    pub max_cost: Option<f64>,
}

impl RunOptions {
    fn output(&self) -> Output {
        Output { verbose: self.verbose, format: self.format, junit: self.junit.clone() }
    }
}

/// Runs a plan to its end and says how it ended.
pub fn run(opts: RunOptions) -> Exit {
    crate::exit::block_on(run_plan(opts, None))
}

/// Runs one plan inside a runtime. `stop` is the caller's stop signal (the pipeline daemon
/// drives plans in-process under its own); without one, this run clears a stale stop file and
/// watches signals and the stop file itself. An error before the run log exists goes to the
/// terminal; after, to every sink.
pub async fn run_plan(opts: RunOptions, stop: Option<watch::Receiver<Stop>>) -> Exit {
    let mut early = None;
    let output = opts.output();
    match start(opts, stop, &mut early).await {
        Ok(exit) => exit,
        // Before the run log: the sinks the command line asked for still hear it (the JSON
        // line, the JUnit report).
        Err(e) => crate::error::end(early.or_else(|| Some(output.error_reporter())), e),
    }
}

/// The largest prompt template baton reads.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// The run's set-up, the run, and what comes after it. `reporter` is set once the run log is.
async fn start(opts: RunOptions, stop: Option<watch::Receiver<Stop>>, reporter_out: &mut Option<Reporter>) -> Result<Exit, Error> {
    let root = crate::root::root_for_plan(&opts.plan);
    // A plan reached through a symlinked folder from outside its repository would be run as if
    // that folder were a repository of its own (its own baton.toml, logs and history): refused.
    if let (Ok(real_plan), Ok(real_root)) = (std::fs::canonicalize(&opts.plan), std::fs::canonicalize(&root)) {
        let real_repo = std::fs::canonicalize(crate::root::root_for_plan(&real_plan)).unwrap_or_else(|_| real_root.clone());
        if real_repo != real_root {
            return Err(Error::Setup(format!(
                "{} is reached through a symbolic link: the file is {}, in {}\n  help: name the plan by its path inside its repository (`baton run {}`); nothing was run or changed",
                opts.plan.display(),
                real_plan.display(),
                real_repo.display(),
                real_plan.display()
            )));
        }
    }
    let mut config = Config::load(&root)?;
    if let Some(choice) = &opts.agent {
        config.use_agent(choice).map_err(Error::Agent)?;
    }
    // The reviewer's prompt is read after a coder's session: a template that cannot serve is
    // told now, before anything is spent.
    if let Some(p) = &config.review.prompt_template {
        let path = root.join(p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_TEMPLATE_BYTES => {}
            Ok(m) if m.is_file() => {
                return Err(Error::Prompt(format!("the reviewer prompt template {} (baton.toml [review] prompt_template) is {} bytes; at most {MAX_TEMPLATE_BYTES}", path.display(), m.len())))
            }
            Ok(_) => return Err(Error::Prompt(format!("the reviewer prompt template {} (baton.toml [review] prompt_template) is not a regular file", path.display()))),
            Err(e) => return Err(Error::Prompt(format!("cannot read the reviewer prompt template {} (baton.toml [review] prompt_template): {e}", path.display()))),
        }
    }
    let mut file = PlanFile::load(&opts.plan)?;
    if let Some(id) = &opts.resume_from {
        if file.plan().task(id).is_none() {
            let near = file.plan().similar_ids(id).into_iter().map(ToString::to_string).collect();
            return Err(Error::NoSuchTask { id: id.clone(), plan: opts.plan.clone(), near });
        }
    }
    let roster = crate::agent::Roster::for_plan(&config, file.plan(), &root, opts.dry_run).map_err(Error::Agent)?;
    let agent = roster.default().agent.clone();
    let jobs = if opts.parallel { opts.jobs.unwrap_or(config.run.jobs).max(1) } else { 1 };
    // Decided before anything is written: a refusal leaves the folder as it was.
    let git_use = crate::root::git_use(&root, &config).map_err(|e| Error::GitUse { error: e.to_string(), help: e.help() })?;
    if opts.parallel && git_use == GitUse::Off {
        return Err(Error::ParallelNeedsGit);
    }
    let plan_abs = std::path::absolute(&opts.plan).unwrap_or_else(|_| opts.plan.clone());
    let own = OwnFiles::new(plan_abs.strip_prefix(&root).unwrap_or(&plan_abs), &config);
    if opts.dry_run {
        return super::dry_run::dry_run(&file, &opts, &config, &roster, jobs, &super::dry_run::DryGit { root: &root, own: &own, git_use });
    }

    let logs_dir = root.join(&config.paths.logs_dir);
    if config.paths.logs_dir.starts_with(".baton") {
        records::ignore_logs_root(&root.join(".baton"));
    }
    let _lock = PlanLock::acquire(&logs_dir.join("locks"), &opts.plan).map_err(|e| Error::PlanLocked(e.to_string()))?;
    // Two plans in one checkout would share its status file and working tree, and each one's
    // commits could take the other's work.
    records::ignore_logs_root(&root.join(".baton"));
    let _checkout = match opts.checkout_held {
        true => None,
        false => Some(CheckoutLock::acquire(&root, &opts.plan).map_err(|e| Error::CheckoutLocked(e.to_string()))?),
    };
    // Holding the lock, no other baton can be saving this plan: a temp file is a crash's.
    crate::plan::remove_stale_temps(&opts.plan);
    let records = Records::new(&logs_dir, &opts.plan);
    records.remove_stale_temps();
    let reporter = output_reporter(&opts.output(), &records.dir().join("run.log"));
    *reporter_out = Some(reporter.clone());
    let executor = executor(&config, &root, &opts.plan, &records, &reporter, git_use).await?;
    let budgets = Budgets::of(file.plan(), &opts, &config);
    let spending = record_history(&root, &plan_abs, &records, &reporter, budgets.is_set())?;
    // The plan's budget counts what runs of it in other checkouts spend meanwhile: read again
    // before each start, on a connection of its own.
    let sync = match (&spending, budgets.plan) {
        (Some(h), Some(_)) => crate::store::Store::open(&root).ok().map(|store| super::dispatch::BudgetSync { store, key: h.key.clone(), run: h.run }),
        _ => None,
    };
    // An agent named with --agent is tried whatever an earlier run recorded of it: that is how
    // a user says a limit is over (another account, a lifted limit).
    let known_limits: Vec<_> = spending.as_ref().map(|h| h.limits.clone()).unwrap_or_default().into_iter().filter(|l| opts.agent.as_ref() != Some(&l.agent)).collect();
    let budget = spending.and_then(|History { spent, costs, .. }| budgets.with(spent, costs, config.budget.attempt_estimate_usd));
    let guard_exe = stop::guard_exe()?;
    let clock = Clock::from_env()?;
    let place = Place { root: &root, plan: &plan_abs, config: &config, records: &records, reporter: &reporter, guard_exe: &guard_exe, dirty: opts.dirty, jobs };
    // On a cluster every task runs in a worktree of its own, also one at a time: what goes to the
    // workers is the task's copy, never the user's uncommitted files (`--allow-dirty`).
    let mut workspace = Workspace::open(place, git_use == GitUse::Commit, opts.parallel || !executor.is_local())?;
    if workspace.plan_restored() {
        file = PlanFile::load(&opts.plan)?;
    }
    crate::run::process::orphans::become_subreaper();
    // A stop file this run watches itself is this run's to remove once honoured (the
    // pipeline's is the pipeline's).
    let own_stop_file = stop.is_none().then(|| root.join(&config.paths.stop_file));
    let stop = match stop {
        Some(s) => s,
        None => stop::watch_fresh(root.join(&config.paths.stop_file), &reporter)?,
    };

    let counts = Counts::of(file.plan());
    reporter.emit(EventKind::Banner {
        plan: file.plan().meta.name.clone().unwrap_or_else(|| opts.plan.display().to_string()),
        agent: banner_agent(&roster),
        binary: agent.binary().description.clone(),
        counts,
        parallel: opts.parallel.then_some(jobs),
        commit: config.run.commit,
        others: engine_others(&roster),
    });
    if let crate::exec::Executor::Ray(ray) = &executor {
        reporter.note(Note::OnCluster { address: ray.address(), remote: ray.remote().to_string() });
        // Jobs a killed baton left on the cluster are stopped before anything starts.
        ray.recover().await;
    }
    // A key that looks like a known one is ignored: say so before anything runs on it.
    for w in &file.plan().warnings {
        let at = Diagnostic::render(w, &opts.plan.display().to_string());
        reporter.warn(at.lines().next().unwrap_or_default().to_string());
    }
    // Nothing started yet: no hooks, no notification.
    record::recover(&mut file, &reporter).map_err(|e| Error::Plan(e.render_in_run()))?;
    workspace.prepare(&mut file, &own, opts.dirty)?;

    let state = RunState::new(Policies {
        breaker: CircuitBreaker::new(config.run.breaker_threshold, Duration::from_secs_f64(config.run.breaker_cooldown_seconds)),
        backoff: RetryBackoff {
            initial: Duration::from_secs_f64(config.run.backoff_initial_seconds),
            factor: 2,
            cap: Duration::from_secs_f64(config.run.backoff_max_seconds),
        },
        throttle_backoff: ThrottleBackoff {
            initial: Duration::from_secs_f64(config.run.throttle_initial_seconds),
            cap: Duration::from_secs_f64(config.run.throttle_max_seconds),
            ..ThrottleBackoff::default()
        },
        jobs,
        parallel: opts.parallel,
        single_task: opts.single_task,
        exclude: left_out(file.plan(), opts.resume_from.as_deref()).into_iter().collect::<HashSet<_>>(),
        budget,
        routing: roster.routing().clone(),
        review: config.review.clone(),
    });
    if let Some(n) = state.budget_note() {
        reporter.note(n);
    }
    let mut state = state;
    for n in state.known_limits(&known_limits, jiff::Timestamp::now(), std::time::Instant::now()) {
        reporter.note(n);
    }
    let mut engine = Engine::new(clock, root, config, opts, file, roster, reporter.clone(), records, stop, guard_exe, state, workspace);
    engine.budget_sync = sync;
    engine.executor = executor;
    let exit = match engine.before_hook().await {
        Ok(true) => engine.run().await,
        Ok(false) => engine.finish(Exit::Stopped),
        Err(e) => {
            let exit = e.exit();
            engine.fail(e);
            engine.finish(exit)
        }
    };
    engine.executor.finish().await;
    let exit = engine.after_run(exit).await;
    if let Some(file) = own_stop_file.filter(|_| stop::level(&engine.stop) != Stop::Running || exit == Exit::Stopped) {
        // Honoured: left behind it would only show in `git status` until the next start.
        let _ = std::fs::remove_file(file);
    }
    reporter.emit(EventKind::Exit { code: exit.code() });
    reporter.finish();
    Ok(exit)
}

/// Where the run's attempts run: here, or on the Ray cluster `[executor]` names — which must
/// answer now, with the git remote its workers use, or the run does not start.
async fn executor(config: &Config, root: &std::path::Path, plan: &std::path::Path, records: &Records, reporter: &Reporter, git_use: GitUse) -> Result<crate::exec::Executor, Error> {
    use crate::config::ExecutorKind;
    if config.executor.kind == ExecutorKind::Local {
        // Jobs a Ray run left (the cluster was gone when it ended) are only cleaned up by a run on it.
        if let Ok(mut left) = std::fs::read_dir(records.dir().join("jobs")) {
            if left.next().is_some() {
                reporter.warn(format!(
                    "an earlier run on a Ray cluster left jobs recorded in {} (and refs/baton/* on its remote); a run with [executor] kind = \"ray\" stops and deletes them",
                    records.dir().join("jobs").display()
                ));
            }
        }
        return Ok(crate::exec::Executor::Local);
    }
    if git_use != GitUse::Commit {
        let help = if git_use == GitUse::Off && crate::git::is_repo(root) && !config.run.commit {
            "set `[run] commit = true` (or remove it), or remove [executor] from baton.toml"
        } else {
            "run baton in a git repository, or remove [executor] from baton.toml"
        };
        return Err(Error::Setup(format!("[executor] kind = \"ray\" sends each task's work through git: it needs a git repository with `[run] commit` on\n  help: {help}; nothing was run or changed")));
    }
    let stem = plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
    // Each message says its fix (`help:`); nothing was run or changed yet.
    let untouched = |e: String| Error::Setup(if e.contains("\n  help: ") { format!("{e}; nothing was run or changed") } else { format!("{e}\n  help: see docs/scale-out.md; nothing was run or changed") });
    let ray = crate::exec::ray::Ray::new(&config.executor, root, &stem, records.dir(), reporter.clone()).map_err(untouched)?;
    ray.probe().await.map_err(untouched)?;
    Ok(crate::exec::Executor::Ray(std::sync::Arc::new(ray)))
}

/// The budgets of a run, each with where it was set: the plan's (its `meta.budget_usd`, else
/// `[budget] plan_usd`) and the run's (`--max-cost`, else `[budget] run_usd`). The simulated
/// agent calls no model: it costs nothing, and no budget holds it back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budgets {
    pub plan: Option<(f64, &'static str)>,
    pub run: Option<(f64, &'static str)>,
}

impl Budgets {
    pub(super) fn of(plan: &crate::plan::Plan, opts: &RunOptions, config: &Config) -> Budgets {
        if config.agent.kind == crate::config::AgentKind::Simulated {
            return Budgets { plan: None, run: None };
        }
        Budgets {
            plan: config.budget.for_plan(plan),
            run: opts.max_cost.map(|b| (b, "--max-cost")).or(config.budget.run_usd.map(|b| (b, "[budget] run_usd"))),
        }
    }

    pub(super) fn is_set(&self) -> bool {
        self.plan.is_some() || self.run.is_some()
    }

    /// The budget, given what the plan spent before this run and its attempts' costs.
    pub(super) fn with(&self, spent: f64, costs: Vec<f64>, estimate: f64) -> Option<crate::policy::budget::Budget> {
        let b = crate::policy::budget::Budget::new(self.plan.map(|(b, _)| (b, spent)), self.run.map(|(b, _)| b), costs, estimate)?;
        Some(b.set_in(self.plan.map_or("meta.budget_usd", |(_, from)| from), self.run.map_or("--max-cost", |(_, from)| from)))
    }
}

/// The history a budget needs cannot be read: the run does not start.
pub(super) fn unenforceable(e: crate::store::StoreError) -> Error {
    Error::Store { error: format!("{e}; the budget cannot be enforced without it"), help: e.help() }
}

/// What the history says as a run opens: what the plan spent before, its attempts' costs, the
/// run's own row and the plan's key.
struct History {
    spent: f64,
    costs: Vec<f64>,
    run: i64,
    key: String,
    /// The agents still under a usage limit an earlier run met.
    limits: Vec<crate::store::query::AgentLimit>,
}

/// Opens the run's history in the store (a sink of the run's events) and says what the plan
/// spent before this run and its attempts' costs, for the budget. A store that cannot be
/// opened is a warning, unless a budget depends on it (`budgeted`): then the run does not
/// start.
/// The default agent as the banner names it: its kind (`Claude`), and its name when baton.toml
/// gives it one (`claude-main (Claude)`).
fn banner_agent(roster: &crate::agent::Roster) -> String {
    let m = roster.default();
    if m.name == m.def.kind.as_str() { m.agent.name().to_string() } else { format!("{} ({})", m.name, m.agent.name()) }
}

/// The run's agents but the default, as the banner names them: `codex-main (Codex, …)`.
fn engine_others(roster: &crate::agent::Roster) -> Vec<String> {
    let default = &roster.routing().default;
    roster.members().filter(|m| &m.name != default).map(|m| format!("{} ({}, {})", m.name, m.agent.name(), m.agent.binary().description)).collect()
}

fn record_history(root: &std::path::Path, plan: &std::path::Path, records: &Records, reporter: &Reporter, budgeted: bool) -> Result<Option<History>, Error> {
    use crate::store::sink::{RunInfo, RunKind, StoreSink};
    let key = crate::store::plan_key(root, plan);
    let info = RunInfo { kind: RunKind::Run, root: root.to_path_buf(), plan: key.clone(), command: crate::store::command_line() };
    let opened = crate::store::Store::open(root).and_then(|store| StoreSink::open(store, info, Some(records)));
    let spending = opened.and_then(|sink| {
        let spent = sink.store().plan_spent(&key)?;
        let costs = sink.store().attempt_costs(&key)?;
        // Not worth failing a run over: without it, the limit is met again.
        let limits = sink.store().agent_limits(jiff::Timestamp::now()).unwrap_or_default();
        let run = sink.run_id();
        reporter.add(Box::new(sink));
        Ok(History { spent, costs, run, key, limits })
    });
    match spending {
        Ok(s) => Ok(Some(s)),
        Err(e) if budgeted => Err(unenforceable(e)),
        Err(e) => {
            reporter.warn(format!("{e}; this run is not recorded in the history ({})", e.help()));
            Ok(None)
        }
    }
}
