//! `--dry-run`: what would run, in order, assuming each task completes, and how the run would
//! end; nothing is started or changed.

use std::collections::HashSet;
use std::path::Path;

use super::state::{left_out, never_runnable};
use super::workspace::{uncommitted, DirtyTree, OwnFiles};
use super::RunOptions;
use crate::agent::Roster;
use crate::policy::failover::{AgentLimits, Route};
use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::plan::graph;
use crate::plan::{PlanFile, Status, TaskId};
use crate::report::event::Note;
use crate::root::GitUse;
use crate::run::schedule;

/// The budget the run would start with, read from the history without changing it; `None`
/// without a budget (or for the simulated agent, which costs nothing). A history that cannot
/// be read is the error the run would refuse to start with.
fn dry_budget(plan: &crate::plan::Plan, opts: &RunOptions, config: &Config, root: &Path) -> Result<Option<crate::policy::budget::Budget>, Error> {
    let budgets = super::setup::Budgets::of(plan, opts, config);
    if !budgets.is_set() {
        return Ok(None);
    }
    let key = crate::store::plan_key(root, &opts.plan);
    let read = || -> Result<(f64, Vec<f64>), crate::store::StoreError> {
        match crate::store::Store::open_existing(root)? {
            Some(store) => Ok((store.plan_spent(&key)?, store.attempt_costs(&key)?)),
            None => Ok((0.0, Vec::new())),
        }
    };
    let (spent, costs) = read().map_err(super::setup::unenforceable)?;
    Ok(budgets.with(spent, costs, config.budget.attempt_estimate_usd))
}

/// Where a dry run would work, for what the real run would refuse.
pub(super) struct DryGit<'a> {
    pub root: &'a Path,
    pub own: &'a OwnFiles,
    pub git_use: GitUse,
}

/// `--dry-run`: what would run, in order, assuming each task completes, and how the run would
/// end (its exit code is the dry run's); nothing changes.
pub(super) fn dry_run(file: &PlanFile, opts: &RunOptions, config: &Config, roster: &Roster, jobs: usize, git: &DryGit<'_>) -> Result<Exit, Error> {
    if git.git_use == GitUse::Commit && opts.dirty == DirtyTree::Refuse {
        match uncommitted(git.root, git.own) {
            Ok(paths) if !paths.is_empty() => return Err(Error::Dirty(paths)),
            Ok(_) => {}
            Err(e) => crate::outln!("warning: cannot read the working tree's state: {}", crate::exit::render_chain(&e)),
        }
    }
    let mut plan = file.plan().clone();
    crate::outln!("dry run of {} — nothing will be started or changed", opts.plan.display());
    let agent = &roster.default().agent;
    crate::outln!("agent: {} ({})", agent.name(), agent.binary().description);
    let routing = roster.routing();
    let several = roster.members().count() > 1;
    for m in roster.members().filter(|m| m.name != routing.default) {
        crate::outln!("also: {} ({}, {})", m.name, m.agent.name(), m.agent.binary().description);
    }
    // An agent the run needs that cannot be found refuses the run (the warning said which).
    let missing: Vec<&str> = roster.members().filter(|m| m.agent.binary().is_missing()).map(|m| m.name.as_str()).collect();
    if !missing.is_empty() {
        crate::outln!("the run would be refused (exit 2): agent {} cannot be found (see the warning above)", missing.join(", "));
        return Ok(Exit::InvalidInput);
    }
    // Limits an earlier run recorded: the agents a run would pass over from the start.
    let (at, now) = (jiff::Timestamp::now(), std::time::Instant::now());
    let recorded = crate::store::Store::open_existing(git.root).ok().flatten().and_then(|s| s.agent_limits(at).ok()).unwrap_or_default();
    let mut limits = AgentLimits::default();
    for l in recorded.iter().filter(|l| opts.agent.as_deref() != Some(l.agent.as_str())) {
        let Some(until) = l.until() else { continue };
        let left = std::time::Duration::try_from(until.duration_since(at)).unwrap_or_default();
        if limits.recorded(&l.agent, left, now, routing) {
            crate::outln!("{}: usage limit until {} (an earlier run met it): passed over until then", l.agent, crate::report::status::local_time(until, at));
        }
    }
    if !routing.fallback.is_empty() {
        crate::outln!(
            "fallback: {} (for the tasks of an agent whose usage limit resets more than {} min away)",
            routing.fallback.join(", "),
            config.agent.failover_after_minutes
        );
    }
    if git.git_use == GitUse::Off {
        crate::outln!("no git: nothing would be committed (baton.toml [run] commit = false)");
    }
    let shown = opts.plan.display().to_string();
    for w in &plan.warnings {
        crate::outln!("warning: {}", w.render(&shown).lines().next().unwrap_or_default());
    }
    let exclude: HashSet<TaskId> = left_out(&plan, opts.resume_from.as_deref());
    if let Some(from) = &opts.resume_from {
        crate::outln!("{}", crate::report::render::note_text(&super::state::resuming(&plan, from)));
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
            let max = plan.max_attempts(t, config.run.max_attempts).max(t.attempts + 1);
            let on = match limits.route(&routing.candidates(t.agent.as_deref()), now) {
                _ if !several => String::new(),
                Route::Run(agent) => format!(" on {agent}"),
                Route::Wait(until) => format!(" after a usage limit's reset (in {})", crate::report::render::human(until.saturating_duration_since(now))),
            };
            crate::outln!("{n:>3}. {} {} (attempt {}/{max}){on}", id, t.name, t.attempts + 1);
        }
        if opts.parallel {
            for h in held.iter().filter(|h| h.why.starts_with("conflicts with")) {
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
            return Ok(Exit::Completed);
        }
    }
    if let Some(b) = dry_budget(file.plan(), opts, config, git.root)? {
        let st = b.state();
        if let Some(note) = super::state::RunState::budget_note_of(&b) {
            crate::outln!("{}", crate::report::render::note_text(&note));
        }
        if n > 0 {
            if let Err(e) = b.admit(0) {
                crate::outln!("{}", crate::report::render::note_text(&super::state::exhausted(&e, 0)));
                crate::outln!("the run would start no attempt (exit 6)");
                return Ok(Exit::BudgetExhausted);
            }
        }
        if st.estimate > 0.0 && (n as f64) * st.estimate > st.remaining {
            let fits = (st.remaining / st.estimate).floor() as usize;
            crate::outln!("at that, the budget pays for about {fits} of these {n} attempts; the run would then end with exit 6");
        }
    }
    let blocked = never_runnable(&plan, &exclude);
    let failed: Vec<String> = plan.tasks().filter(|t| t.status.is_failure()).map(|t| t.id.to_string()).collect();
    if n == 0 {
        crate::outln!("nothing to run");
    }
    if !blocked.is_empty() {
        crate::outln!("{}", crate::report::render::note_text(&Note::Blocked { tasks: blocked }));
        crate::outln!("the run would end blocked (exit 3)");
        return Ok(Exit::Blocked);
    }
    if !failed.is_empty() {
        crate::outln!("the run would end with failed tasks (exit 1): {} failed before and stays so", failed.join(", "));
        return Ok(Exit::TaskFailed);
    }
    if n == 0 {
        crate::outln!("every task is completed, verified or skipped (exit 0)");
    }
    Ok(Exit::Completed)
}
