//! How events read: the words of every event, for the terminal's calm and verbose views and the
//! run log. The engine says what happened; this module alone says it in English.

use std::time::Duration;

use super::event::{AttemptOutcome, Ending, EventKind, JobEnd, Note, PipelineNote, Summary, WaitReason};
use crate::plan::{Status, TaskId};

/// The tag of a note in verbose output and the run log (`[PLAN] …`).
pub fn tag(note: &Note) -> &'static str {
    match note {
        Note::Resuming { .. } | Note::NextTask { .. } | Note::SingleTaskDone => "FIND",
        Note::StopRequested { .. } | Note::StoppingAgent { .. } | Note::Interrupted { .. } => "STOP",
        Note::AgentStarted { .. } | Note::Deadline { .. } => "EXEC",
        Note::NamedAgentIgnored { .. } => "WARN",
        Note::Recovered { .. } | Note::PartialWorkCommitted { .. } | Note::LandingFinished { .. } | Note::LandedBeforeInterruption { .. } | Note::JobRecovered { .. } => {
            "RECOVER"
        }
        Note::BreakerHalfOpen | Note::BreakerOpened { .. } => "BREAKER",
        Note::Blocked { .. } => "BLOCKED",
        Note::PlanReloaded | Note::PlanRebased | Note::PlanMerged { .. } | Note::TasksAdded { .. } | Note::TaskGone { .. } => "PLAN",
        Note::Committed { .. } => "GIT",
        Note::StatusFileRemoved { .. }
        | Note::StaleStopFileRemoved { .. }
        | Note::ClaimRemoved { .. }
        | Note::Cleared { .. }
        | Note::RescuedBranchDeleted { .. } => "CLEANUP",
        Note::WorktreeReady { .. } | Note::Landed { .. } | Note::WorkKept { .. } | Note::MergeConflict { .. } | Note::UserChangesProtected { .. } => {
            "WORKTREE"
        }
        Note::Held { .. } | Note::OnCluster { .. } => "PARALLEL",
        Note::Failover { .. } | Note::KnownLimit { .. } => "LIMIT",
        Note::Throttling { .. } => "THROTTLE",
        Note::BudgetExhausted { .. } | Note::Budget { .. } => "BUDGET",
        Note::OverBudget { .. } => "WARN",
        Note::HookStarted { .. } | Note::HookOutput { .. } | Note::HookEnded { .. } => "HOOK",
        Note::SmokeOutput { .. } | Note::SmokeEnded { .. } => "SMOKE",
        Note::Notice { .. } | Note::PartialRun { .. } => "NOTIFY",
        Note::Pipeline(PipelineNote::Stopping) => "STOP",
        Note::Pipeline(PipelineNote::ItemFailed { .. }) => "WARN",
        Note::Pipeline(_) => "PIPELINE",
    }
}

/// Whether the note is a warning: shown with the warnings (on stderr, `warning: …`) in every view.
pub fn warning(note: &Note) -> bool {
    tag(note) == "WARN"
}

/// Whether the calm view shows the note (the verbose view and the run log show them all).
pub fn calm(note: &Note) -> bool {
    // Where a task's work is when it did not land is worth a line too, and so is what
    // --resume-from leaves out.
    if matches!(note, Note::WorkKept { .. } | Note::MergeConflict { .. } | Note::UserChangesProtected { .. } | Note::Resuming { .. } | Note::OnCluster { .. }) {
        return true;
    }
    matches!(tag(note), "STOP" | "BUDGET" | "BREAKER" | "BLOCKED" | "RECOVER" | "PLAN" | "SMOKE" | "NOTIFY" | "HOOK" | "PIPELINE" | "THROTTLE" | "LIMIT")
}

/// Which budget: the plan's over all its runs, or this run's.
fn budget_whose(scope: &str) -> &'static str {
    if scope == "run" {
        "this run's budget"
    } else {
        "the plan's budget over all its runs"
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn paths(p: &[std::path::PathBuf]) -> String {
    p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The text of a note.
pub fn note_text(note: &Note) -> String {
    match note {
        Note::Resuming { from, status, left_out } => {
            let before = match left_out.len() {
                0 => "no unfinished task comes before it".to_string(),
                n => {
                    let ids: Vec<&str> = left_out.iter().take(8).map(TaskId::as_str).collect();
                    let more = if n > 8 { format!(", … {n} in all") } else { String::new() };
                    let stay = if n == 1 { "it stays as it is" } else { "they stay as they are" };
                    format!("leaving out {} before it ({}{more}); {stay}", plural(n, "unfinished task", "unfinished tasks"), ids.join(", "))
                }
            };
            let from_itself = match status {
                Status::Pending | Status::InProgress => String::new(),
                Status::Failed | Status::ValidationExhausted | Status::Suspended => {
                    format!("; {from} itself is {status} and does not run (`baton retry` makes it pending)")
                }
                done => format!("; {from} itself is already {done}, so the run goes on with the tasks after it"),
            };
            format!("resuming from {from}: {before}{from_itself}")
        }
        Note::NextTask { task, name, section, deps } => {
            let deps = if deps.is_empty() {
                String::new()
            } else {
                format!(" (dependencies {} completed)", deps.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", "))
            };
            format!("next task: {task} {name} (section {section}){deps}")
        }
        Note::SingleTaskDone => "--single-task: one task done, stopping".into(),
        Note::StopRequested { running: 0 } => "stop requested: no new task starts".into(),
        Note::StopRequested { running } => format!("stop requested: no new task starts; waiting for {running} running"),
        Note::Interrupted { now: false } => {
            "stopping gracefully: no new task starts; running tasks finish (Ctrl+C again to end them now)".into()
        }
        Note::Interrupted { now: true } => "stopping now: ending running agents; their tasks go back to pending".into(),
        Note::StoppingAgent { task } => format!("{task}: ending the agent now"),
        Note::Failover { task, from, to, reason } => {
            let (message, reset) = match reason {
                WaitReason::UsageLimit { message, reset: Some(r), .. } => (message.as_str(), format!(" (resets {r})")),
                WaitReason::UsageLimit { message, wait, .. } => (message.as_str(), format!(" (for {})", human(*wait))),
                other => ("", format!(" ({})", wait_text(other))),
            };
            format!("{from} hit its usage limit{reset}: {message}; {task} and the tasks of {from} run on {to} until then (attempts not spent)")
        }
        Note::KnownLimit { agent, reason } => {
            let until = match reason {
                WaitReason::UsageLimit { reset: Some(r), .. } => format!(" until {r}"),
                _ => String::new(),
            };
            format!("{agent} is under a usage limit an earlier run met{until}: it is passed over until then (its tasks go to a fallback that is not limited, or wait)")
        }
        Note::AgentStarted { agent, named_agent, job: Some(job), cwd, .. } => {
            let named = named_agent.as_ref().map(|n| format!(" as agent '{n}'")).unwrap_or_default();
            format!("{agent} started{named} as the Ray job {job}; its work comes back to {}", cwd.display())
        }
        Note::AgentStarted { agent, named_agent: None, pid, group, cwd, .. } => format!("{agent} started (pid {pid}, group {group}) in {}", cwd.display()),
        Note::AgentStarted { agent, named_agent: Some(named), pid, group, cwd, .. } => {
            format!("{agent} started as agent '{named}' (pid {pid}, group {group}) in {}", cwd.display())
        }
        Note::NamedAgentIgnored { task, name, file: Some(file), uncommitted: true, .. } => format!(
            "task {task} names agent '{name}': {} is in the checkout but not in the task's worktree, which is made from the last commit (commit the file); it runs without --agent (told once per agent)",
            file.display()
        ),
        Note::NamedAgentIgnored { task, name, file: Some(file), .. } => format!(
            "task {task} names agent '{name}', but {} does not exist; it runs without --agent (told once per agent)",
            file.display()
        ),
        Note::NamedAgentIgnored { task, name, cli, file: None, .. } => {
            format!("the {cli} agent has no named agents; '{name}' is ignored (named by task {task}; told once per agent)")
        }
        Note::Deadline { task, total: Some(s), .. } => format!("{task}: total timeout of {s} s reached; ending the agent's process group"),
        Note::Deadline { task, idle, .. } => {
            format!("{task}: no output for {} s (idle timeout); ending the agent's process group", idle.unwrap_or(0))
        }
        Note::Recovered { task } => {
            format!("{task} was left in progress by an interrupted run; back to pending (its attempt is not counted)")
        }
        Note::PartialWorkCommitted { task, files, message } => {
            let more = if files.len() > 5 { format!(", … {} in all", files.len()) } else { String::new() };
            format!(
                "{task} left {} uncommitted file{} ({}{more}); committed as `{message}`",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                paths(&files[..files.len().min(5)])
            )
        }
        Note::LandingFinished { tasks, files } => {
            format!("finished and committed the landing of {} an interrupted run had begun ({files} file(s))", tasks.join(", "))
        }
        Note::OnCluster { address, remote } => format!("attempts run as jobs of the Ray cluster at {address}; their work goes through {remote}"),
        Note::JobRecovered { task, job, branch, how } => {
            let what = match how {
                JobEnd::Stopped => format!("stopped the Ray job {job} an interrupted run left"),
                JobEnd::Waiting => format!("the Ray job {job} an interrupted run left still waits for resources; its input is deleted, so it runs nothing when Ray starts it, and a later run deletes it"),
                JobEnd::Gone => format!("the Ray job {job} an interrupted run left is no longer on the cluster (it had been deleted, or the head restarted)"),
            };
            match branch {
                Some(b) => format!("{task}: {what}; the work it sent back is on the branch {b}"),
                None => format!("{task}: {what}; it had sent nothing back"),
            }
        }
        Note::LandedBeforeInterruption { task, status } => format!("{task}: its work had landed before the interruption; recorded {status}"),
        Note::BreakerHalfOpen => "circuit breaker half-open: letting one attempt through".into(),
        Note::BreakerOpened { failures, cool_down } => format!(
            "circuit breaker open: {} consecutive failure{}, retrying in {} — no task starts until the cool-down ends",
            failures,
            if *failures == 1 { "" } else { "s" },
            crate::policy::breaker::human_duration(*cool_down)
        ),
        Note::Blocked { tasks } => {
            let lines: Vec<String> = tasks.iter().map(|(id, why)| format!("  {id}: {why}")).collect();
            format!("blocked: {} can never run:\n{}", plural(tasks.len(), "task", "tasks"), lines.join("\n"))
        }
        Note::PlanReloaded => "the agent changed the plan; reloaded and re-validated it".into(),
        Note::PlanRebased => "the plan was edited on disk; baton's changes were applied on top of the edit".into(),
        Note::PlanMerged { task } => format!("{task}: merged the agent's edits of the plan into the main plan"),
        Note::TasksAdded { task, added } => format!(
            "{task}: the agent added task(s) {}; merged into the main plan",
            added.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Note::TaskGone { task } => format!("{task} is no longer in the plan (the agent replaced it); moving on"),
        Note::Committed { message, plan: true } => format!("committed the plan: {message}"),
        Note::Committed { message, plan: false } => format!("committed: {message}"),
        Note::StatusFileRemoved { path } => format!("removed the previous status file {}", path.display()),
        Note::StaleStopFileRemoved { path } => format!("removed a stale stop file {}", path.display()),
        Note::ClaimRemoved { agent, path, run_ended: true } => {
            format!("removed the claim of {agent} on {path}: the run it belonged to has ended")
        }
        Note::ClaimRemoved { agent, path, run_ended: false } => format!("removed the stale claim of {agent} on {path}"),
        Note::Cleared { task: Some(t), what } => format!("{t}: {what}"),
        Note::Cleared { task: None, what } => what.clone(),
        Note::RescuedBranchDeleted { branch, landed: true, .. } => format!("deleted {branch}: everything on it has landed"),
        Note::RescuedBranchDeleted { branch, tip, landed: false } => format!(
            "deleted {branch}: an interrupted attempt's work, replaced by the attempt that completed the task (it was {tip}; `git branch {branch} {tip}` brings it back until git's garbage collection)"
        ),
        Note::WorktreeReady { task, path, branch, fork, reused } => format!(
            "{task}: worktree {} on {branch} from {}{}",
            path.display(),
            fork.get(..10).unwrap_or(fork),
            if *reused { " (reused)" } else { "" }
        ),
        Note::Landed { task, files, merged: 0 } => format!("{task}: landed {files} file(s)"),
        Note::Landed { task, files, merged } => format!("{task}: landed {files} file(s) ({merged} merged three-way)"),
        Note::WorkKept { task, path, branch } => format!("{task}: its work is kept in {} (branch {branch})", path.display()),
        Note::MergeConflict { task, paths: p, hint } => format!("{task}: merge conflict in {}; main is untouched. {hint}", paths(p)),
        Note::UserChangesProtected { paths: p } => {
            let more = if p.len() > 5 { ", …" } else { "" };
            format!(
                "your uncommitted changes are protected: a task that would overwrite them stops the run ({}{more})",
                paths(&p[..p.len().min(5)])
            )
        }
        Note::Held { task, why } => format!("{task} waits: {why}"),
        Note::BudgetExhausted { scope, budget_usd, spent_usd, remaining_usd, estimate_usd, running, raise, estimate_from } => {
            let then = match running {
                0 => "no new attempt starts".to_string(),
                n => format!("no new attempt starts; {} finish{}", plural(*n, "running attempt", "running attempts"), if *n == 1 { "es" } else { "" }),
            };
            let left = if *remaining_usd <= 0.0 {
                "nothing is left".to_string()
            } else {
                format!("${remaining_usd:.4} left, less than an attempt is expected to cost (${estimate_usd:.4}: {estimate_from})")
            };
            format!("budget exhausted: spent ${spent_usd:.4} of {} (${budget_usd:.4}); {left}; {then} (raise {raise} to go on)", budget_whose(scope))
        }
        Note::Budget { scope, budget_usd, spent_usd, remaining_usd, estimate_usd, estimate_from } => {
            let expected = if *estimate_usd > 0.0 { format!("; an attempt is expected to cost ${estimate_usd:.4} ({estimate_from})") } else { String::new() };
            format!("budget: spent ${spent_usd:.4} of {} (${budget_usd:.4}), ${remaining_usd:.4} left{expected}", budget_whose(scope))
        }
        Note::OverBudget { scope, budget_usd, spent_usd } => {
            format!(
                "spent ${spent_usd:.4} of {} (${budget_usd:.4}): over by ${:.4} — a session went past its spending cap",
                budget_whose(scope),
                spent_usd - budget_usd
            )
        }
        Note::Throttling { limit } => format!("throttled: starting at most {limit} agent(s) at once until runs succeed again"),
        Note::HookStarted { which, command } => format!("{which}: {command}"),
        Note::HookOutput { line } | Note::SmokeOutput { line } | Note::Notice { line } => line.clone(),
        Note::HookEnded { text } | Note::SmokeEnded { text } => text.clone(),
        Note::PartialRun { what, unfinished } => {
            format!("{what}; the plan is not finished ({unfinished} pending), so no smoke tests and no notification")
        }
        Note::Pipeline(p) => pipeline_text(p),
    }
}

fn pipeline_text(p: &PipelineNote) -> String {
    match p {
        PipelineNote::Stopping => "stop requested: the pipeline ends".into(),
        PipelineNote::Idle => "nothing to do: no backlog item is waiting".into(),
        PipelineNote::BeingWritten { item, pid, by } => {
            format!("{} is open for writing (pid {pid}, {by}); reading it once it is closed", item.display())
        }
        PipelineNote::Other { text } => text.clone(),
        PipelineNote::ItemFailed { item, why } => {
            format!("{} failed: {why}; it stays in the backlog and is not tried again until its content changes", item.display())
        }
        PipelineNote::StillBeingWritten { items, waited } => {
            format!("nothing to do: still being written after {}: {}", human(*waited), paths(items))
        }
        PipelineNote::Watching { folders, waiting } => {
            format!("watching {folders} folders, {waiting} item{} waiting", if *waiting == 1 { "" } else { "s" })
        }
        PipelineNote::KeptAside { item, aside } => {
            format!("{}: its plan was never accepted; kept it as {} and planning again", item.display(), aside.display())
        }
        PipelineNote::Archived { item, elapsed, dest } => {
            format!("{}: done in {}; archived to {}", item.display(), human(*elapsed), dest.display())
        }
        PipelineNote::PickedUp { kind, item } => format!("{kind} {}: picked up", item.display()),
        PipelineNote::Planning { item, plan, why } => format!("{}: {why}; planning it as {}", item.display(), plan.display()),
        PipelineNote::Resuming { item, plan } => format!("{}: resuming its plan {}", item.display(), plan.display()),
        PipelineNote::Replanning { item, plan } => format!("{}: its plan {} is gone; planning it again", item.display(), plan.display()),
        PipelineNote::Asking { item, design, plan } => {
            format!("{}: asking the agent for {} and {}", item.display(), design.display(), plan.display())
        }
        PipelineNote::AskingAgain { plan } => format!("asking the agent once more, with the errors, to fix {}", plan.display()),
        PipelineNote::PlanWritten { item, plan } => format!("{}: plan {} written and valid", item.display(), plan.display()),
    }
}

/// How an attempt's end reads after the task id.
pub fn outcome_text(o: &AttemptOutcome) -> String {
    match o {
        AttemptOutcome::Reported { status, from_file: true } => format!("{status} (status file)"),
        AttemptOutcome::Reported { status, from_file: false } => format!("{status} (status in the final answer)"),
        AttemptOutcome::Failed { message } => format!("failed: {}", super::status::cut(message, 120)),
        AttemptOutcome::Limited => "usage limit reached (not counted as an attempt)".into(),
        AttemptOutcome::Throttled => "the API is throttling requests (not counted as an attempt)".into(),
        AttemptOutcome::Lost { message } => format!("lost by the cluster, not counted as an attempt: {message}"),
        AttemptOutcome::Systemic { message } => message.clone(),
        AttemptOutcome::Interrupted => "ended by stop (not counted as an attempt)".into(),
        AttemptOutcome::Capped { message } => format!("stopped at its spending cap, what remained of the budget (not counted as an attempt): {}", super::status::cut(message, 120)),
        AttemptOutcome::Planned { written: true } => "plan written".into(),
        AttemptOutcome::Planned { written: false } => "no plan".into(),
    }
}

/// ` of codex-main`: whose limit it is.
fn of_agent(agent: Option<&str>) -> String {
    agent.map(|a| format!(" of {a}")).unwrap_or_default()
}

pub fn wait_text(r: &WaitReason) -> String {
    match r {
        WaitReason::Retry { task, attempt, max } => format!("{task} failed (attempt {attempt}/{max}); retrying"),
        WaitReason::Breaker { failures, remaining } => format!(
            "circuit breaker open: {} consecutive failure{}, retrying in {}",
            failures,
            if *failures == 1 { "" } else { "s" },
            crate::policy::breaker::human_duration(*remaining)
        ),
        WaitReason::UsageLimit { message, reset, known: true, agent, .. } => {
            let zone = reset.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            format!("usage limit{}: {message}; no task starts on it until the reset{zone}", of_agent(agent.as_deref()))
        }
        WaitReason::UsageLimit { message, wait, agent, .. } => {
            format!("usage limit{}: {message}; the reset time could not be read, so its tasks wait {}", of_agent(agent.as_deref()), human(*wait))
        }
        WaitReason::Throttling { message } => format!("server-side throttling ({}); backing off", super::status::cut(message, 100)),
        WaitReason::Planning { limit: true, message } => format!("usage limit while planning: {message}; retrying after the reset"),
        WaitReason::Planning { limit: false, message } => format!("server-side throttling while planning ({message}); backing off"),
    }
}

/// The task's line when it reaches a final state.
/// How a task ended, with its message: `completed: done`, `failed after 3 attempts: red`.
/// The most of one finding a line shows (the attempt record keeps it whole).
const FINDING_CHARS: usize = 200;

/// A review's end: `1.2: PASS`, `1.2: FAIL — 2 findings:` with a finding per line, or
/// `1.2: no valid verdict (…); completed without review`.
pub fn review_text(task: &TaskId, verdict: Option<&str>, findings: &[String], problem: Option<&str>) -> String {
    let Some(verdict) = verdict else {
        let problem = super::status::cut(&super::safe::one_line(problem.unwrap_or("no reason given")), 300);
        let stopped = problem.starts_with(crate::run::review::PROBLEM_STOPPED) || problem.starts_with(crate::run::review::PROBLEM_LIMIT);
        return if stopped { format!("{task}: not finished ({problem})") } else { format!("{task}: no valid verdict ({problem}); completed without review") };
    };
    let mut text = format!("{task}: {verdict}");
    match findings.len() {
        0 => {}
        n => {
            text.push_str(&format!(" — {n} finding{}:", if n == 1 { "" } else { "s" }));
            for f in findings {
                text.push_str(&format!("\n  - {}", super::status::cut(&super::safe::one_line(f), FINDING_CHARS)));
            }
        }
    }
    text
}

pub fn finished_text(status: Status, message: &str, attempts: Option<u32>) -> String {
    let how = match (status, attempts) {
        (Status::Failed, Some(n)) => format!("failed after {n} attempt{}", if n == 1 { "" } else { "s" }),
        (Status::ValidationExhausted, Some(n)) => format!("validation exhausted after {n} attempt{}", if n == 1 { "" } else { "s" }),
        _ => status.to_string(),
    };
    if message.is_empty() {
        how
    } else {
        format!("{how}: {message}")
    }
}

pub fn summary_text(s: &Summary) -> String {
    let how = match &s.how {
        Ending::Finished => "finished".to_string(),
        Ending::FinishedFrom { from, pending } => {
            format!("finished from {from} (--resume-from); {pending} task(s) left out are still pending")
        }
        Ending::FinishedWithFailures => "finished with failures".into(),
        Ending::SingleTask { task, status } => format!(
            "--single-task: {task} {}",
            status.map_or_else(|| "replaced by the agent".to_string(), |s| s.to_string())
        ),
        Ending::Blocked => "blocked".into(),
        Ending::Stopped => "stopped".into(),
        Ending::BudgetExhausted => "stopped: budget exhausted".into(),
        Ending::Error { attempts: 0 } => "stopped on an error before any task ran".into(),
        Ending::Error { attempts: n } => format!("stopped on an error after {n} attempt{}", if *n == 1 { "" } else { "s" }),
    };
    let mut text = format!("{how} in {}: {} · agent cost ${:.4}", human(s.elapsed), s.counts.sentence(), s.cost);
    if s.unpriced_sessions > 0 {
        text.push_str(&format!(" (and {} of unknown cost: set [prices] in baton.toml)", plural(s.unpriced_sessions as usize, "session", "sessions")));
    }
    text.push_str(&summary_details(s));
    text
}

/// How many of the slowest tasks the summary lists.
const SLOWEST: usize = 5;

/// The summary's lines after the first, as nextest ends a run: the slowest tasks of this run
/// (when more than one ran) with their time, and every failed task with its error.
fn summary_details(s: &Summary) -> String {
    let mut text = String::new();
    let mut ran: Vec<_> = s.tasks.iter().filter(|t| t.sessions > 0).collect();
    if ran.len() > 1 {
        ran.sort_by_key(|t| std::cmp::Reverse(t.agent_time));
        text.push_str("\n  slowest:");
        for t in ran.iter().take(SLOWEST) {
            let sessions = if t.sessions > 1 { format!(" ({} sessions)", t.sessions) } else { String::new() };
            text.push_str(&format!("\n    {:>7}  {} {}{sessions}", human(t.agent_time), t.id, t.name));
        }
    }
    let failed: Vec<_> = s.tasks.iter().filter(|t| t.status.is_failure()).collect();
    if !failed.is_empty() {
        text.push_str("\n  failed:");
        for t in failed {
            let error = t.last_error.as_deref().filter(|e| !e.is_empty()).unwrap_or("no error recorded");
            let when = if t.sessions == 0 { ", in an earlier run" } else { "" };
            let exhausted = if t.status == Status::ValidationExhausted { ", validation exhausted" } else { "" };
            let attempts = format!("{} attempt{}{exhausted}{when}", t.attempts, if t.attempts == 1 { "" } else { "s" });
            text.push_str(&format!("\n    ✗ {} {} ({attempts}): {}", t.id, t.name, super::safe::cut(&super::safe::one_line(error), 200)));
        }
    }
    text
}

pub fn banner_text(plan: &str, counts: &super::status::Counts, parallel: Option<usize>, commit: bool) -> String {
    let mut mode = parallel.map(|j| format!(" · parallel, up to {j} at once")).unwrap_or_default();
    if !commit {
        mode.push_str(" · no git: nothing is committed (baton.toml [run] commit = false)");
    }
    format!("{plan}: {}{mode}", counts.sentence())
}

pub fn error_text(error: &str, help: Option<&str>) -> String {
    struct Shown<'a>(&'a str, Option<&'a str>);
    impl std::fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl crate::error::Help for Shown<'_> {
        fn help(&self) -> Option<String> {
            self.1.map(str::to_string)
        }
    }
    crate::error::render(&Shown(error, help))
}

/// The line an event shows as in verbose output and in the run log (without the time).
/// Safe for a terminal: agents' text reaches these lines (see
/// [`crate::report::safe::terminal_line`]); only baton's own multi-line texts keep their line
/// breaks.
pub fn verbose_text(kind: &EventKind) -> Option<String> {
    let text = raw_verbose_text(kind)?;
    Some(match kind {
        // A verdict's findings are one line each (made so by `review_text`).
        EventKind::Banner { .. } | EventKind::Summary { .. } | EventKind::Warning { .. } | EventKind::Note(_) | EventKind::Error { .. } | EventKind::ReviewEnded { .. } => {
            crate::report::safe::terminal_text(&text)
        }
        _ => crate::report::safe::terminal_line(&text),
    })
}

fn raw_verbose_text(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Banner { plan, agent, binary, counts, parallel, commit, others } => {
            let others = if others.is_empty() { String::new() } else { format!("; other agents: {}", others.join(", ")) };
            format!("[START] {}; agent: {agent} ({binary}){others}", banner_text(plan, counts, *parallel, *commit))
        }
        EventKind::Note(n) => format!("[{}] {}", tag(n), note_text(n)),
        EventKind::AttemptStarted { task, name, attempt, max_attempts, .. } => {
            format!("[EXEC] {task} {name} — attempt {attempt}/{max_attempts}")
        }
        // Data for the store and JSON consumers: the attempt's line said it already.
        EventKind::AttemptRecorded { .. } => return None,
        EventKind::Exit { code } => format!("[EXIT] exit code {code}"),
        EventKind::Agent { task, event, agent } => {
            let line = super::agent_line::verbose_line(event)?;
            // The task first: agents of a parallel run interleave.
            match line.strip_prefix("[Claude]") {
                Some(rest) if *agent != "Claude" => format!("[{task}] [{agent}]{rest}"),
                // Every line of another agent carries its name (the simulated agent's must say so).
                _ if *agent != "Claude" => format!("[{task}] [{agent}] {line}"),
                _ => format!("[{task}] {line}"),
            }
        }
        EventKind::AttemptEnded { task, outcome, duration, cost_usd } => {
            format!("[DONE] {task}: {} in {}{}", outcome_text(outcome), human(*duration), cost(*cost_usd))
        }
        EventKind::CheckStarted { task, command, index, count } => {
            format!("[CHECK] {task}: {command} — running ({index} of {count})")
        }
        EventKind::CheckEnded { task, command, passed, exit, signal, timed_out, duration } => {
            format!("[CHECK] {task}: {command} — {}", check_end_text(*passed, *exit, *signal, *timed_out, *duration))
        }
        EventKind::TaskFinished { task, status, message, attempts, .. } => {
            format!("[TASK] {task} {}", finished_text(*status, message, *attempts))
        }
        EventKind::ReviewStarted { task, model } => {
            format!("[REVIEW] {task}: reviewing{}", model.as_deref().map(|m| format!(" (model {m})")).unwrap_or_default())
        }
        EventKind::ReviewEnded { task, verdict, findings, problem } => {
            format!("[REVIEW] {}", review_text(task, verdict.as_deref(), findings, problem.as_deref()))
        }
        EventKind::Waiting { reason, until } => format!("[WAIT] {}; waiting until {}", wait_text(reason), local_time(*until)),
        EventKind::Warning { text } => format!("[WARN] {text}"),
        EventKind::Error { error, help } => {
            // The tag says it is an error: `[ERROR] error: …` would say it twice.
            let text = error_text(error, help.as_deref());
            format!("[ERROR] {}", text.strip_prefix("error: ").unwrap_or(&text))
        }
        EventKind::Summary(s) => format!("[SUMMARY] {}", summary_text(s)),
    })
}

/// How a check ended: `ok 12.3 s`, `failed (exit 101)`, `timed out after 600 s`.
pub fn check_end_text(passed: bool, exit: Option<i32>, signal: Option<i32>, timed_out: bool, duration: Duration) -> String {
    match (passed, timed_out, exit, signal) {
        (true, ..) => format!("ok {:.1} s", duration.as_secs_f64()),
        (_, true, ..) => format!("timed out after {} s", duration.as_secs_f64().round() as u64),
        (_, _, Some(code), _) => format!("failed (exit {code})"),
        (_, _, None, Some(signo)) => format!("failed (ended by signal {signo})"),
        _ => "failed (could not be run)".to_string(),
    }
}

pub fn cost(c: Option<f64>) -> String {
    match c {
        Some(c) if c > 0.0 => format!(", ${c:.4}"),
        _ => String::new(),
    }
}

/// `2m 05s`, `41s`, `1h 02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if d.as_millis() < 10_000 && s < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{s}s")
    }
}

/// [`human`] for a number of seconds read from a file (nonsense reads as 0).
pub fn human_secs(secs: f64) -> String {
    human(Duration::try_from_secs_f64(secs).unwrap_or_default())
}

/// `14:30:05` in the machine's time zone.
pub fn clock(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string()
}

/// `2026-11-25 18:30:30 EST` in the machine's time zone.
pub fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_reads_as_its_verdict() {
        let text = |verdict: Option<&str>, findings: &[&str], problem: Option<&str>| {
            let findings: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
            verbose_text(&EventKind::ReviewEnded { task: "1.2".into(), verdict: verdict.map(Into::into), findings, problem: problem.map(Into::into) }).unwrap()
        };
        assert_eq!(text(Some("PASS"), &[], None), "[REVIEW] 1.2: PASS");
        assert_eq!(text(Some("FAIL"), &["no tests", "two\nlines \u{1b}[2J"], None), "[REVIEW] 1.2: FAIL — 2 findings:\n  - no tests\n  - two lines \u{fffd}[2J");
        assert_eq!(
            text(None, &[], Some("no valid verdict from 2 reviewer sessions: garbage")),
            "[REVIEW] 1.2: no valid verdict (no valid verdict from 2 reviewer sessions: garbage); completed without review"
        );
        assert_eq!(text(None, &[], Some(crate::run::review::PROBLEM_STOPPED)), format!("[REVIEW] 1.2: not finished ({})", crate::run::review::PROBLEM_STOPPED));
    }

    #[test]
    fn notes_read_as_they_always_have() {
        assert_eq!(
            note_text(&Note::Recovered { task: "1.2".into() }),
            "1.2 was left in progress by an interrupted run; back to pending (its attempt is not counted)"
        );
        assert_eq!(
            note_text(&Note::PartialWorkCommitted { task: "1.1".into(), files: vec!["one.txt".into()], message: "baton: 1.1 partial work".into() }),
            "1.1 left 1 uncommitted file (one.txt); committed as `baton: 1.1 partial work`"
        );
        assert_eq!(note_text(&Note::Landed { task: "1".into(), files: 1, merged: 0 }), "1: landed 1 file(s)");
        assert_eq!(tag(&Note::Held { task: "c".into(), why: "x".into() }), "PARALLEL");
        assert!(!calm(&Note::Committed { message: "m".into(), plan: true }));
        assert!(calm(&Note::BreakerHalfOpen));
    }

    #[test]
    fn an_error_reads_with_its_help() {
        assert_eq!(error_text("boom", Some("do this\nNothing changed.")), "error: boom\n  help: do this\nNothing changed.");
        assert_eq!(error_text("error: already", None), "error: already");
        let kind = EventKind::Error { error: "boom".into(), help: Some("do this".into()) };
        assert_eq!(verbose_text(&kind).as_deref(), Some("[ERROR] boom\n  help: do this"));
    }

    #[test]
    fn the_summary_ends_with_the_slowest_tasks_and_the_failed_ones() {
        use crate::report::event::TaskReport;
        let task = |id: &str, status: Status, sessions: u32, ms: u64, error: Option<&str>| TaskReport {
            id: id.into(),
            name: format!("Task {id}"),
            section: "s1".into(),
            section_name: None,
            status,
            attempts: sessions.max(1),
            sessions,
            agent_time: Duration::from_millis(ms),
            cost: 0.0,
            last_error: error.map(str::to_string),
            result_message: None,
            blocked: None,
        };
        let tasks = vec![
            task("1", Status::Completed, 1, 1_500, None),
            task("2", Status::Failed, 2, 75_000, Some("tests\nfailed")),
            task("3", Status::Completed, 1, 12_000, None),
            task("4", Status::Failed, 0, 0, Some("from before")),
            task("5", Status::Pending, 0, 0, None),
        ];
        let counts = crate::report::status::Counts { total: 5, completed: 2, failed: 2, pending: 1, ..Default::default() };
        let s = Summary { how: Ending::FinishedWithFailures, elapsed: Duration::from_secs(90), counts, cost: 1.25, unpriced_sessions: 0, tasks };
        insta::assert_snapshot!(summary_text(&s), @r"
        finished with failures in 1m 30s: 2 of 5 completed · 2 failed · 1 pending · agent cost $1.2500
          slowest:
             1m 15s  2 Task 2 (2 sessions)
                12s  3 Task 3
               1.5s  1 Task 1
          failed:
            ✗ 2 Task 2 (2 attempts): tests failed
            ✗ 4 Task 4 (1 attempt, in an earlier run): from before
        ");
        // One task that ran: its time is the run's; no list.
        let one = Summary { tasks: s.tasks[..1].to_vec(), ..s };
        assert!(!summary_text(&one).contains("slowest"), "{}", summary_text(&one));
    }

    #[test]
    fn checks_read_as_the_run_log_says_them() {
        let ended = |passed, exit, signal, timed_out, secs: f64| {
            verbose_text(&EventKind::CheckEnded {
                task: "1.2".into(),
                command: "cargo test".into(),
                passed,
                exit,
                signal,
                timed_out,
                duration: Duration::from_secs_f64(secs),
            })
            .unwrap()
        };
        assert_eq!(ended(true, Some(0), None, false, 12.34), "[CHECK] 1.2: cargo test — ok 12.3 s");
        assert_eq!(ended(false, Some(101), None, false, 3.0), "[CHECK] 1.2: cargo test — failed (exit 101)");
        assert_eq!(ended(false, None, None, true, 600.0), "[CHECK] 1.2: cargo test — timed out after 600 s");
        assert_eq!(ended(false, None, Some(9), false, 1.0), "[CHECK] 1.2: cargo test — failed (ended by signal 9)");
        assert_eq!(ended(false, None, None, false, 0.0), "[CHECK] 1.2: cargo test — failed (could not be run)");
        let started = EventKind::CheckStarted { task: "1.2".into(), command: "make \u{1b}[2J lint".into(), index: 2, count: 3 };
        assert_eq!(verbose_text(&started).unwrap(), "[CHECK] 1.2: make \u{fffd}[2J lint — running (2 of 3)");
    }

    #[test]
    fn waits_and_outcomes_read_plainly() {
        assert_eq!(wait_text(&WaitReason::Retry { task: "1.1".into(), attempt: 1, max: 3 }), "1.1 failed (attempt 1/3); retrying");
        assert_eq!(outcome_text(&AttemptOutcome::Limited), "usage limit reached (not counted as an attempt)");
        assert_eq!(finished_text(Status::Failed, "red", Some(2)), "failed after 2 attempts: red");
        assert_eq!(finished_text(Status::Completed, "done", None), "completed: done");
        assert_eq!(finished_text(Status::Skipped, "", None), "skipped");
        // The calm view's wording: a usage limit's reason ends "until the reset (…)", and
        // "… until the reset (…) until 2026-…" said "until" twice.
        let until = jiff::Timestamp::from_second(0).unwrap_or_default();
        let text = verbose_text(&EventKind::Waiting { reason: WaitReason::Retry { task: "1.1".into(), attempt: 1, max: 3 }, until });
        assert!(text.is_some_and(|t| t.starts_with("[WAIT] 1.1 failed (attempt 1/3); retrying; waiting until ")));
    }
}
