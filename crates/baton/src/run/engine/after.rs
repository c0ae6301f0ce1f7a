//! Around the plan: the `before_command` hook, and once the tasks are done the `after_command`
//! hook, the smoke tests, and the one notification that says how the run ended.

use std::time::Duration;

use super::dispatch::Engine;
use crate::after::hooks::{self, HookOutcome};
use crate::after::notify::{self, Notice, RunEnding};
use crate::after::smoke::{self, SmokeOutcome, SmokeSpec};
use crate::error::Error;
use crate::exit::Exit;
use crate::report::event::Note;
use crate::report::status::Counts;
use crate::run::stop::{self, Stop};

impl Engine {
    /// Runs `[run] before_command`; an error when it failed (the run then starts nothing).
    /// `Ok(false)` when a stop ended it (Ctrl+C twice, SIGTERM): nothing starts either.
    pub(super) async fn before_hook(&mut self) -> Result<bool, Error> {
        let Some(cmd) = self.config.run.before_command.clone() else { return Ok(true) };
        self.reporter.note(Note::HookStarted { which: "before_command", command: cmd.clone() });
        let Some(outcome) = self.hook_unless_stopped("before_command", &cmd).await else {
            self.reporter.warn("before_command was ended by the stop; no task was started");
            return Ok(false);
        };
        if outcome.is_ok() {
            return Ok(true);
        }
        Err(Error::BeforeHook(outcome.describe("before_command")))
    }

    /// Runs a hook to its end, or until a stop that comes while it runs asks to end things now
    /// (`None`; see [`Self::unless_stopped`]).
    async fn hook_unless_stopped(&self, which: &'static str, cmd: &str) -> Option<HookOutcome> {
        let reporter = self.reporter.clone();
        let mut on_line = |line: &str| reporter.note(Note::HookOutput { line: line.to_string() });
        let hook = hooks::run_hook(
            which,
            cmd,
            &self.root,
            Duration::from_secs_f64(self.config.run.hook_timeout_seconds),
            &mut on_line,
        );
        self.unless_stopped(hook).await
    }

    /// Runs `work` (a hook, the smoke tests) to its end, or until a stop that comes while it
    /// runs asks to end things now (`None`; dropping the work ends its command and everything
    /// that command started). Such a command may hang until its timeout (120 s for a hook, 300 s
    /// for smoke tests by default): Ctrl+C twice or SIGTERM must not wait for that. A stop that
    /// was already "now" when the work began does not end it: `after_command` runs however the
    /// run ended, Ctrl+C included.
    async fn unless_stopped<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        let mut stop = self.stop.clone();
        if stop::level(&stop) == Stop::Now {
            return Some(work.await);
        }
        tokio::select! {
            done = work => Some(done),
            // A watcher that is gone (Err) cannot stop anything: the work runs on.
            Ok(_) = stop.wait_for(|level| *level == Stop::Now) => None,
        }
    }

    /// After the last task: `after_command` (however the run ended), the smoke tests (only when
    /// every task completed), then the notification. Returns the final exit code.
    pub(super) async fn after_run(&mut self, mut exit: Exit) -> Exit {
        if let Some(cmd) = self.config.run.after_command.clone() {
            self.reporter.note(Note::HookStarted { which: "after_command", command: cmd.clone() });
            match self.hook_unless_stopped("after_command", &cmd).await {
                None => {
                    self.reporter.warn("after_command was ended by the stop");
                    // Ended by the user: no smoke tests, and the run says it was stopped.
                    if exit == Exit::Completed {
                        exit = Exit::Stopped;
                    }
                }
                Some(outcome) => self.tell_after_hook(outcome),
            }
        }

        let partial = match (self.state.single(), &self.opts.resume_from) {
            (Some(id), _) => Some(format!("--single-task ran {id}")),
            (None, Some(from)) => Some(format!("--resume-from {from} left earlier tasks out")),
            (None, None) => None,
        };
        if let (Some(what), Exit::Completed | Exit::TaskFailed) = (partial, exit) {
            let c = Counts::of(self.file.plan());
            if c.pending + c.in_progress > 0 {
                // Part of the plan ran and the rest waits: smoke tests and a notice about the
                // plan would say it ended.
                self.reporter.note(Note::PartialRun { what, unfinished: c.pending + c.in_progress });
                return exit;
            }
        }
        let mut smoke_result: Option<SmokeOutcome> = None;
        if exit == Exit::Completed && !self.opts.skip_smoke && self.state.single().is_none() {
            let spec = SmokeSpec {
                command: self.file.plan().meta.smoke_command.clone().or_else(|| self.config.smoke.command.clone()),
                timeout: Duration::from_secs_f64(self.config.smoke.timeout_seconds),
                root: self.root.clone(),
                log_path: self.records.dir().join("smoke.log"),
            };
            let reporter = self.reporter.clone();
            let mut on_line = |line: &str| reporter.note(Note::SmokeOutput { line: line.to_string() });
            match self.unless_stopped(smoke::run_smoke(&spec, &mut on_line)).await {
                Some(outcome) => {
                    self.reporter.note(Note::SmokeEnded { text: outcome.describe() });
                    if outcome.is_failure() {
                        exit = Exit::SmokeFailed;
                    }
                    smoke_result = Some(outcome);
                }
                None => {
                    // Ended by the user, not failed: the run says it was stopped.
                    self.reporter.warn("the smoke tests were ended by the stop");
                    exit = Exit::Stopped;
                }
            }
        }

        let ending = match exit {
            Exit::Completed => RunEnding::Completed,
            Exit::SmokeFailed => RunEnding::CompletedSmokeFailed,
            Exit::TaskFailed => RunEnding::SomeFailed,
            Exit::Blocked => RunEnding::Blocked,
            Exit::InvalidInput => RunEnding::Error,
            Exit::Stopped => RunEnding::Stopped,
            Exit::BudgetExhausted => RunEnding::BudgetExhausted,
        };
        self.notify(ending, smoke_result.as_ref().map(SmokeOutcome::describe)).await;
        exit
    }

    fn tell_after_hook(&mut self, outcome: HookOutcome) {
        if !outcome.is_ok() {
            self.reporter.warn(outcome.describe("after_command"));
        } else if let HookOutcome::Ok { .. } = outcome {
            self.reporter.note(Note::HookEnded { text: outcome.describe("after_command") });
        }
    }

    /// Tells the console, the webhook and the command. A broken notifier is reported once and
    /// never changes how the run ends.
    pub(super) async fn notify(&mut self, ending: RunEnding, smoke: Option<String>) {
        let plan = self.file.plan();
        let c = Counts::of(plan);
        let mut notice = Notice::new(
            ending,
            plan.meta.name.clone().unwrap_or_else(|| self.opts.plan.display().to_string()),
            self.opts.plan.display().to_string(),
            // Verified is completed, validation_exhausted failed.
            notify::Counts {
                completed: c.completed + c.verified,
                failed: c.failed + c.validation_exhausted,
                skipped: c.skipped,
                pending: c.pending + c.in_progress,
                suspended: c.suspended,
                total: c.total,
            },
            self.started.elapsed().as_secs_f64(),
            self.cost,
        );
        notice.failed_tasks = plan.tasks().filter(|t| t.status.is_failure()).map(|t| t.id.to_string()).collect();
        // As the run said it: also what waits on a task `--resume-from` left out.
        notice.blocked_tasks = self.state.idle_exit(plan).1.into_iter().map(|(id, _)| id.to_string()).collect();
        notice.smoke = smoke;
        notice.notification_email = plan.meta.notification_email.clone();
        let notice = notice.with_summary();
        for line in notice.console_lines() {
            self.reporter.note(Note::Notice { line });
        }
        let webhook = self.config.notify.webhook.clone();
        let command = self.config.notify.command.clone();
        if webhook.is_none() && command.is_none() {
            return;
        }
        let root = self.root.clone();
        let problems = tokio::task::spawn_blocking(move || notify::send(&notice, webhook.as_deref(), command.as_deref(), &root))
            .await
            .unwrap_or_else(|e| vec![format!("the notifier crashed: {e}")]);
        for p in problems {
            self.reporter.warn(p);
        }
    }
}
