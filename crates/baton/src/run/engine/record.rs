//! The effects on the plan: what the run state decided, written into the plan file (owned
//! fields only, saved atomically and re-based onto edits), and the agent's own edits of the
//! plan taken in. Nothing here decides; the dispatcher calls it with the state's decisions.

use std::path::Path;

use super::state::PlanChange;
use crate::plan::{PlanError, PlanFile, SaveOutcome, Status, TaskField, TaskId};
use crate::report::event::{Note, Reporter};

/// Saves the plan, telling what happened to an edit made meanwhile.
pub(super) fn save(file: &mut PlanFile, reporter: &Reporter) -> Result<(), PlanError> {
    match file.save()? {
        SaveOutcome::Saved | SaveOutcome::Unchanged => {}
        SaveOutcome::Rebased => reporter.note(Note::PlanRebased),
        SaveOutcome::RejectedEdit { kept_at, diagnostics } => {
            let first = diagnostics.first().map(|d| d.render(&file.path().display().to_string())).unwrap_or_default();
            reporter.warn(format!(
                "the plan was edited into an invalid state ({first}); baton wrote back the last valid plan and kept the edit at {}",
                kept_at.display()
            ));
        }
    }
    tell_restored(file, reporter);
    Ok(())
}

/// Says which owned fields an edit of the plan changed and baton put back.
pub(super) fn tell_restored(file: &mut PlanFile, reporter: &Reporter) {
    for line in file.take_restored() {
        reporter.warn(format!("the plan edit changed a field baton owns; put back: {line}"));
    }
}

/// Tasks left `in_progress` by an interrupted run go back to pending, attempts untouched.
pub(super) fn recover(file: &mut PlanFile, reporter: &Reporter) -> Result<(), PlanError> {
    let stale: Vec<TaskId> = file.plan().tasks().filter(|t| t.status == crate::plan::Status::InProgress).map(|t| t.id.clone()).collect();
    for id in &stale {
        file.set_status(id.as_str(), crate::plan::Status::Pending)?;
        reporter.note(Note::Recovered { task: id.clone() });
    }
    if !stale.is_empty() {
        save(file, reporter)?;
    }
    Ok(())
}

/// Marks a task in progress and saves.
pub(super) fn started(file: &mut PlanFile, reporter: &Reporter, id: &TaskId) -> Result<(), PlanError> {
    file.set_status(id.as_str(), Status::InProgress)?;
    // A task done before and started again (retried by hand) is not completed now: an old
    // completion time would outlive a failure of this run.
    file.clear_text(id.as_str(), crate::plan::TaskField::CompletedAt)?;
    save(file, reporter)
}

/// Puts a task back to pending (its attempt not counted); a problem is a warning.
pub(super) fn back_to_pending(file: &mut PlanFile, reporter: &Reporter, id: &TaskId) {
    if file.plan().task(id.as_str()).is_some() {
        let r = file.set_status(id.as_str(), Status::Pending).and_then(|_| save(file, reporter));
        if let Err(e) = r {
            reporter.warn(e.render_in_run());
        }
    }
}

/// Records what an attempt's end means for its task. `message` is the agent's (or baton's)
/// text as it goes into the plan: the result message of a finished task, the last error of a
/// failed one. Returns false when the task is no longer in the plan.
pub(super) fn apply(file: &mut PlanFile, reporter: &Reporter, id: &TaskId, change: PlanChange, message: &str, model: Option<&str>) -> Result<bool, PlanError> {
    if file.plan().task(id.as_str()).is_none() {
        reporter.note(Note::TaskGone { task: id.clone() });
        return Ok(false);
    }
    let task = id.as_str();
    // The model of a counted attempt is the task's `model_used`, as the original tool wrote it.
    if let (Some(m), PlanChange::Final { .. } | PlanChange::Retry { .. }) = (model, change) {
        file.set_text(task, TaskField::ModelUsed, m)?;
    }
    match change {
        PlanChange::Pending => file.set_status(task, Status::Pending)?,
        PlanChange::Retry { attempts, .. } => failed(file, task, attempts, message, Status::Pending)?,
        PlanChange::Final { status, attempts } if status.is_failure() => failed(file, task, attempts, message, status)?,
        PlanChange::Final { status, attempts } => {
            file.set_attempts(task, attempts)?;
            file.set_status(task, status)?;
            if !message.is_empty() {
                file.set_text(task, TaskField::ResultMessage, message)?;
            }
            let stamp = jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
            file.set_text(task, TaskField::CompletedAt, &stamp)?;
        }
    }
    save(file, reporter)?;
    Ok(true)
}

/// A counted attempt that failed: its count, its error, and the status it leaves the task in.
fn failed(file: &mut PlanFile, task: &str, attempts: u32, message: &str, status: Status) -> Result<(), PlanError> {
    file.set_attempts(task, attempts)?;
    file.set_text(task, TaskField::LastError, message)?;
    file.set_status(task, status)
}

/// The agent said it changed the plan in the main checkout: reload it (a worktree's copy is
/// merged when the task lands).
pub(super) fn reload(file: &mut PlanFile, reporter: &Reporter) {
    match file.reload() {
        Ok(()) => {
            reporter.note(Note::PlanReloaded);
            tell_restored(file, reporter);
        }
        Err(e) => reporter.warn(format!(
            "the agent's edit of the plan is not valid, so baton keeps the last valid plan (the edit is kept aside at the next save):\n{}",
            e.render_in_run()
        )),
    }
}

/// The agent of a task that failed in a worktree said it changed its copy of the plan: the
/// tasks it added go into the main plan.
pub(super) fn merge_added(file: &mut PlanFile, reporter: &Reporter, id: &TaskId, copy: &Path) {
    let theirs = match std::fs::read_to_string(copy) {
        Ok(t) => t,
        Err(e) => {
            reporter.warn(format!("{id}: cannot read the plan in its worktree: {e}"));
            return;
        }
    };
    match file.merge_added_tasks(&theirs) {
        Ok(added) if added.is_empty() => {}
        Ok(added) => {
            reporter.note(Note::TasksAdded { task: id.clone(), added });
            if let Err(e) = save(file, reporter) {
                reporter.warn(e.render_in_run());
            }
        }
        Err(e) => reporter.warn(format!("{id}: the agent's plan edit could not be merged: {}", e.render_in_run())),
    }
}
