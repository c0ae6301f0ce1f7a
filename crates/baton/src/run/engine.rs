//! The dispatcher of `baton run`: one loop that owns the run's state and decides what happens
//! next — which task, whether the breaker lets it start, how long to wait, when to stop — and
//! records every outcome in the plan. Attempts report back to it; nothing else writes the plan.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::attempt::{self, AttemptSpec};
use super::lock::PlanLock;
use super::prompt::{self, PromptVars};
use super::record::{self, AttemptRecord, Records};
use super::stop::{self, Stop};
use super::verdict::{self, Evidence, Verdict};
use crate::agent::claude::ClaudeCode;
use crate::agent::Agent;
use crate::config::{AgentKind, Config};
use crate::exit::Exit;
use crate::git;
use crate::plan::graph::{self, Wait};
use crate::plan::{PlanError, PlanFile, SaveOutcome, Status, TaskField, TaskId};
use crate::policy::backoff::{jitter_from_seed, RetryBackoff, Throttle, ThrottleBackoff};
use crate::policy::breaker::{Admission, CircuitBreaker};
use crate::policy::limit;
use crate::report::event::{self, EventKind, Reporter};
use crate::report::status::Counts;
use crate::report::terminal::{RunLog, Terminal};

/// Wall-clock "now" for usage-limit reset times. Tests pin it with `BATON_FAKE_NOW` (a zoned
/// date-time such as `2026-11-25T17:59:58-05:00[America/Toronto]`); time then flows on from
/// there at the real rate, so waits are computed against the pinned instant.
#[derive(Debug, Clone, Copy)]
struct Clock {
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
}

/// Runs a plan to its end and says how it ended.
pub fn run(opts: RunOptions) -> Exit {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start baton's runtime: {e}");
            return Exit::InvalidInput;
        }
    };
    rt.block_on(run_plan(opts, None))
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
    let agent: Box<dyn Agent> = match config.agent.kind {
        AgentKind::Claude => match ClaudeCode::resolve(config.agent.binary.as_deref()) {
            Ok(binary) => Box::new(ClaudeCode {
                binary,
                extra_args: config.agent.extra_args.clone(),
            }),
            Err(e) if opts.dry_run => {
                eprintln!("warning: {e}");
                Box::new(ClaudeCode {
                    binary: crate::agent::Resolved::plain("claude".into(), "not found".into()),
                    extra_args: Vec::new(),
                })
            }
            Err(e) => {
                eprintln!(
                    "error: {e}\n  help: install Claude Code (npm install -g @anthropic-ai/claude-code), or name the binary in baton.toml `[agent] binary` or {}",
                    crate::agent::claude::BIN_ENV
                );
                return Exit::InvalidInput;
            }
        },
        other => {
            eprintln!("error: baton.toml `[agent] kind = \"{}\"` is not built yet; use \"claude\"", format!("{other:?}").to_lowercase());
            return Exit::InvalidInput;
        }
    };
    if opts.dry_run {
        return dry_run(&file, &opts, &config, agent.as_ref());
    }
    if opts.parallel {
        eprintln!("note: --parallel is not built yet; running the tasks one at a time");
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
    let records = Records::new(&logs_dir, &opts.plan);
    let mut reporter = Reporter::new(vec![Box::new(Terminal::new(opts.verbose))]);
    let _ = std::fs::create_dir_all(records.dir());
    match RunLog::create(&records.dir().join("run.log")) {
        Ok(log) => reporter.add(Box::new(log)),
        Err(e) => eprintln!("warning: cannot write the run log in {}: {e}", records.dir().display()),
    }

    let stop = match stop {
        Some(s) => s,
        None => {
            let stop_file = root.join(&config.paths.stop_file);
            if stop_file.exists() {
                let _ = std::fs::remove_file(&stop_file);
                reporter.decision("CLEANUP", format!("removed a stale stop file {}", stop_file.display()));
            }
            match stop::watch(stop_file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: cannot watch for Ctrl+C: {e}");
                    return Exit::InvalidInput;
                }
            }
        }
    };
    let guard_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find baton's own binary (needed to guard agent processes): {e}");
            return Exit::InvalidInput;
        }
    };
    let in_git = git::is_repo(&root);
    let clock = match Clock::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::InvalidInput;
        }
    };
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
        root,
        config,
        file,
        agent,
        reporter,
        records,
        stop,
        guard_exe,
        in_git,
        cost: 0.0,
        started: std::time::Instant::now(),
        opts,
    };
    let exit = engine.run().await;
    engine.reporter.finish();
    exit
}

struct Engine {
    clock: Clock,
    root: PathBuf,
    config: Config,
    file: PlanFile,
    agent: Box<dyn Agent>,
    reporter: Reporter,
    records: Records,
    stop: watch::Receiver<Stop>,
    guard_exe: PathBuf,
    in_git: bool,
    breaker: CircuitBreaker,
    backoff: RetryBackoff,
    throttle: Throttle,
    throttle_backoff: ThrottleBackoff,
    cost: f64,
    started: std::time::Instant,
    opts: RunOptions,
}

/// What the loop does after an attempt.
enum Next {
    Continue,
    Finish(Exit),
}

impl Engine {
    async fn run(&mut self) -> Exit {
        let plan = self.file.plan();
        let counts = Counts::of(plan);
        self.reporter.emit(EventKind::Banner {
            plan: plan.meta.name.clone().unwrap_or_else(|| self.opts.plan.display().to_string()),
            agent: self.agent.name().to_string(),
            binary: self.agent.binary().description.clone(),
            tasks: counts.sentence(),
        });
        if let Err(e) = self.recover() {
            eprintln!("{}", e.render());
            return Exit::InvalidInput;
        }
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
        let mut ran: Option<TaskId> = None;
        let exit = loop {
            if *self.stop.borrow() != Stop::Running {
                self.reporter.decision("STOP", "stop requested: no new task starts");
                break Exit::Stopped;
            }
            if let Some(id) = &ran {
                let done = self.file.plan().task(id.as_str()).is_none_or(|t| t.status.is_final());
                if self.opts.single_task && done {
                    self.reporter.decision("FIND", "--single-task: one task done, stopping");
                    break self.single_task_exit(id);
                }
            }
            let Some(task) = graph::next_ready(self.file.plan(), &exclude) else {
                break self.end_exit(&exclude);
            };
            let id = task.id.clone();
            if !task.depends_on.is_empty() {
                let deps: Vec<&str> = task.depends_on.iter().map(|d| d.as_str()).collect();
                self.reporter.decision("DEPS", format!("{id}: dependencies {} completed", deps.join(", ")));
            }
            self.reporter.decision("FIND", format!("next task: {id} {}", task.name));
            match self.breaker.may_start(std::time::Instant::now()) {
                Admission::Admit => {}
                Admission::AdmitProbe => {
                    self.reporter.decision("BREAKER", "circuit breaker half-open: letting one attempt through")
                }
                Admission::Wait { until } => {
                    let now = std::time::Instant::now();
                    let wait = until.saturating_duration_since(now);
                    let text = self.breaker.describe(now);
                    self.reporter.emit(EventKind::Waiting {
                        reason: text,
                        until: jiff::Timestamp::now() + wait,
                    });
                    if stop::sleep_or_stop(wait, &mut self.stop).await {
                        continue;
                    }
                    continue;
                }
                Admission::AwaitProbe => {}
            }
            ran = Some(id.clone());
            match self.attempt(&id).await {
                Next::Continue => {}
                Next::Finish(exit) => break exit,
            }
        };
        self.finish(exit)
    }

    /// Tasks left `in_progress` by an interrupted run go back to pending, attempts untouched.
    fn recover(&mut self) -> Result<(), PlanError> {
        let stale: Vec<TaskId> = self
            .file
            .plan()
            .tasks()
            .filter(|t| t.status == Status::InProgress)
            .map(|t| t.id.clone())
            .collect();
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

    async fn attempt(&mut self, id: &TaskId) -> Next {
        let Some(task) = self.file.plan().task(id.as_str()).cloned() else {
            return Next::Continue;
        };
        let max = self.file.plan().max_attempts(&task, self.config.run.max_attempts);
        let attempt_no = task.attempts + 1;
        if let Err(e) = self.file.set_status(id.as_str(), Status::InProgress).map(|_| ()).and_then(|_| self.save()) {
            eprintln!("{}", e.render());
            return Next::Finish(Exit::InvalidInput);
        }
        let status_rel = self.config.paths.status_file.clone();
        let status_file = self.root.join(&status_rel);
        match std::fs::remove_file(&status_file) {
            Ok(()) => self.reporter.decision("CLEANUP", format!("removed the previous status file {}", status_rel.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.reporter.warn(format!("cannot remove the old status file {}: {e}", status_file.display())),
        }
        if let Some(dir) = status_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let prompt = match self.prompt(&task, &status_rel) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                let _ = self.file.set_status(id.as_str(), Status::Pending);
                let _ = self.save();
                return Next::Finish(Exit::InvalidInput);
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
        let spec = AttemptSpec {
            task: id.clone(),
            agent: self.agent.as_ref(),
            prompt,
            model,
            cwd: self.root.clone(),
            total_timeout: Duration::from_secs_f64(total),
            idle_timeout: Duration::from_secs_f64(idle),
            transcript: self.records.transcript(id.as_str(), session),
            guard_exe: self.guard_exe.clone(),
        };
        self.reporter.emit(EventKind::AttemptStarted {
            task: id.clone(),
            name: task.name.clone(),
            attempt: attempt_no,
            max_attempts: max,
        });
        let started_at = jiff::Timestamp::now();
        let run = match attempt::run(&spec, &mut self.reporter, &mut self.stop).await {
            Ok(r) => r,
            Err(e) => {
                let _ = self.file.set_status(id.as_str(), Status::Pending);
                let _ = self.save();
                eprintln!(
                    "error: cannot start the agent: {}\n  help: check `[agent] binary` in baton.toml or {}",
                    render_chain(&e),
                    crate::agent::claude::BIN_ENV
                );
                return Next::Finish(Exit::InvalidInput);
            }
        };
        let now = self.clock.zoned();
        let verdict = verdict::judge(
            &Evidence {
                task_id: id.as_str(),
                status_file: &status_file,
                status_shown: &status_rel,
                ended: run.ended,
                exit: run.exit,
                summary: &run.summary,
                stderr_tail: &run.stderr_tail,
                systemic: run.systemic.clone(),
            },
            &now,
        );
        if let Some(w) = run.summary.rate_limit_warning() {
            let used = w.utilization.map(|u| format!(" ({:.0} % used)", u * 100.0)).unwrap_or_default();
            let window = w.limit_type.as_deref().map(|t| format!(" of the {t} window")).unwrap_or_default();
            self.reporter.warn(format!("approaching the usage limit{window}{used}; baton goes on until the CLI reports the limit"));
        }
        // The report is consumed: leave no stale file for the next attempt, or for git.
        let _ = std::fs::remove_file(&status_file);
        let cost = run.summary.cost_usd();
        self.cost += cost.unwrap_or(0.0);
        let mut record = AttemptRecord {
            task: id.to_string(),
            session,
            attempt: None,
            started_at: started_at.to_string(),
            ended_at: jiff::Timestamp::now().to_string(),
            duration_seconds: run.duration.as_secs_f64(),
            outcome: String::new(),
            message: String::new(),
            cost_usd: cost,
            turns: run.summary.turns(),
            input_tokens: run.summary.result().map(|r| r.usage.input_tokens),
            output_tokens: run.summary.result().map(|r| r.usage.output_tokens),
            session_id: run.summary.session_id().map(str::to_string),
            exit: run.exit.map(|x| x.to_string()),
            waited_seconds: None,
        };
        let ended = |reporter: &mut Reporter, ok: bool, outcome: String| {
            reporter.emit(EventKind::AttemptEnded {
                task: id.clone(),
                ok,
                outcome,
                duration: run.duration,
                cost_usd: cost,
            })
        };
        let next = match verdict {
            Verdict::Done(report) if report.status != Status::Failed => {
                ended(&mut self.reporter, true, format!("{} ({})", report.status, match report.source {
                    verdict::ReportSource::File => "status file",
                    verdict::ReportSource::ResultText => "status in the final answer",
                }));
                self.breaker.record_success();
                self.throttle.record_success();
                record.attempt = Some(attempt_no);
                record.outcome = report.status.to_string();
                record.message = report.message.clone();
                if report.plan_modified {
                    self.reload_plan();
                }
                self.finish_task(id, &task.name, report.status, &report.message, attempt_no)
            }
            Verdict::Done(report) => {
                let message = if report.message.is_empty() { "the agent reported failure".into() } else { report.message };
                ended(&mut self.reporter, false, format!("failed: {}", crate::report::status::cut(&message, 120)));
                if report.plan_modified {
                    self.reload_plan();
                }
                record.attempt = Some(attempt_no);
                record.outcome = "failed".into();
                record.message = message.clone();
                self.failed_attempt(id, &task.name, &message, attempt_no, max).await
            }
            Verdict::Failed { message } => {
                ended(&mut self.reporter, false, format!("failed: {}", crate::report::status::cut(&message, 120)));
                record.attempt = Some(attempt_no);
                record.outcome = "failed".into();
                record.message = message.clone();
                self.failed_attempt(id, &task.name, &message, attempt_no, max).await
            }
            Verdict::Limited(limit) => {
                ended(&mut self.reporter, false, "usage limit reached (not counted as an attempt)".into());
                self.breaker.record_inconclusive();
                record.outcome = "limited".into();
                record.message = limit.message.clone();
                let wake = limit::wake_at(
                    limit.resets_at,
                    self.clock.now(),
                    Duration::from_secs_f64(self.config.run.limit_margin_seconds),
                    Duration::from_secs_f64(self.config.run.limit_fallback_seconds),
                );
                let wait = wake.duration_since(self.clock.now()).unsigned_abs();
                let wake = jiff::Timestamp::now() + wait;
                record.waited_seconds = Some(wait.as_secs_f64());
                let zone = match (&limit.zone, limit.resets_at) {
                    (Some(z), Some(r)) => r
                        .in_tz(z)
                        .map(|t| format!(" ({} in {z})", t.strftime("%H:%M")))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let reason = match limit.resets_at {
                    Some(_) => format!("usage limit: {}; retrying {id} after the reset{zone}", limit.message),
                    None => format!("usage limit: {}; the reset time could not be read, retrying {id} in {}", limit.message, event::human(wait)),
                };
                self.back_to_pending(id);
                self.write_record(&record);
                self.reporter.emit(EventKind::Waiting { reason, until: wake });
                if stop::sleep_or_stop(wait, &mut self.stop).await {
                    return Next::Continue;
                }
                return Next::Continue;
            }
            Verdict::Throttled(t) => {
                ended(&mut self.reporter, false, "the API is throttling requests (not counted as an attempt)".into());
                self.breaker.record_inconclusive();
                self.throttle.record_throttle(std::time::Instant::now());
                let jitter = jitter_from_seed(jiff::Timestamp::now().as_nanosecond() as u64);
                let wait = self.throttle.delay(&self.throttle_backoff, jitter);
                record.outcome = "throttled".into();
                record.message = t.message.clone();
                record.waited_seconds = Some(wait.as_secs_f64());
                self.back_to_pending(id);
                self.write_record(&record);
                if self.throttle.consecutive >= 3 {
                    self.reporter.warn(format!(
                        "the API has throttled {} attempts in a row; baton keeps backing off (not a usage limit, attempts are not spent)",
                        self.throttle.consecutive
                    ));
                }
                self.reporter.emit(EventKind::Waiting {
                    reason: format!("server-side throttling ({}); backing off", crate::report::status::cut(&t.message, 100)),
                    until: jiff::Timestamp::now() + wait,
                });
                stop::sleep_or_stop(wait, &mut self.stop).await;
                return Next::Continue;
            }
            Verdict::Systemic(s) => {
                ended(&mut self.reporter, false, s.message.clone());
                record.outcome = "systemic".into();
                record.message = s.message.clone();
                self.back_to_pending(id);
                self.write_record(&record);
                eprintln!("error: {}\n  help: {}\nThe run stopped; no attempt was spent. Fix this, then run again.", s.message, s.help);
                return Next::Finish(Exit::InvalidInput);
            }
            Verdict::Interrupted => {
                ended(&mut self.reporter, false, "ended by stop (not counted as an attempt)".into());
                record.outcome = "interrupted".into();
                self.back_to_pending(id);
                self.write_record(&record);
                return Next::Finish(Exit::Stopped);
            }
        };
        self.write_record(&record);
        next
    }

    fn write_record(&mut self, record: &AttemptRecord) {
        if let Err(e) = self.records.write(record) {
            self.reporter.warn(format!("cannot write the attempt record: {e}"));
        }
    }

    fn back_to_pending(&mut self, id: &TaskId) {
        if self.file.plan().task(id.as_str()).is_some() {
            let r = self.file.set_status(id.as_str(), Status::Pending).and_then(|_| self.save());
            if let Err(e) = r {
                self.reporter.warn(e.render());
            }
        }
    }

    /// Completed or skipped.
    fn finish_task(&mut self, id: &TaskId, name: &str, status: Status, message: &str, attempt_no: u32) -> Next {
        if self.file.plan().task(id.as_str()).is_none() {
            self.reporter.decision("PLAN", format!("{id} is no longer in the plan (the agent replaced it); moving on"));
            return Next::Continue;
        }
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
            eprintln!("{}", e.render());
            return Next::Finish(Exit::InvalidInput);
        }
        self.reporter.emit(EventKind::TaskFinished {
            task: id.clone(),
            name: name.to_string(),
            status,
            message: message.to_string(),
        });
        self.commit(&format!("baton: {id} {status} — {name}"));
        Next::Continue
    }

    async fn failed_attempt(&mut self, id: &TaskId, name: &str, message: &str, attempt_no: u32, max: u32) -> Next {
        let was_closed = !matches!(self.breaker.state(), crate::policy::breaker::BreakerState::Open { .. });
        self.breaker.record_failure(std::time::Instant::now());
        if self.file.plan().task(id.as_str()).is_none() {
            self.reporter.decision("PLAN", format!("{id} is no longer in the plan (the agent replaced it); moving on"));
            return Next::Continue;
        }
        let final_failure = attempt_no >= max;
        let status = if final_failure { Status::Failed } else { Status::Pending };
        let r = (|| {
            self.file.set_attempts(id.as_str(), attempt_no)?;
            self.file.set_text(id.as_str(), TaskField::LastError, message)?;
            self.file.set_status(id.as_str(), status)?;
            self.save()
        })();
        if let Err(e) = r {
            eprintln!("{}", e.render());
            return Next::Finish(Exit::InvalidInput);
        }
        if was_closed && matches!(self.breaker.state(), crate::policy::breaker::BreakerState::Open { .. }) {
            let text = self.breaker.describe(std::time::Instant::now());
            self.reporter.decision("BREAKER", format!("{text} — no task starts until the cool-down ends"));
        }
        if final_failure {
            self.reporter.emit(EventKind::TaskFinished {
                task: id.clone(),
                name: name.to_string(),
                status: Status::Failed,
                message: format!("failed after {attempt_no} attempt{}: {message}", if attempt_no == 1 { "" } else { "s" }),
            });
            self.commit(&format!("baton: {id} failed after {attempt_no} attempts — {name}"));
            return Next::Continue;
        }
        let wait = self.backoff.delay(attempt_no);
        self.reporter.emit(EventKind::Waiting {
            reason: format!("{id} failed (attempt {attempt_no}/{max}); retrying"),
            until: jiff::Timestamp::now() + wait,
        });
        stop::sleep_or_stop(wait, &mut self.stop).await;
        Next::Continue
    }

    fn reload_plan(&mut self) {
        match self.file.reload() {
            Ok(()) => self.reporter.decision("PLAN", "the agent changed the plan; reloaded and re-validated it"),
            Err(e) => self.reporter.warn(format!(
                "the agent's edit of the plan is not valid, so baton keeps the last valid plan (the edit is kept aside at the next save):\n{}",
                e.render()
            )),
        }
    }

    fn save(&mut self) -> Result<(), PlanError> {
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
        Ok(())
    }

    fn commit(&mut self, message: &str) {
        if !self.in_git {
            return;
        }
        let path = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        match git::commit_file(&self.root, &path, message) {
            Ok(git::Committed::Yes) => self.reporter.decision("GIT", format!("committed the plan: {message}")),
            Ok(git::Committed::NothingToCommit) => {}
            Err(e) => {
                self.reporter.warn(format!("could not commit the plan state (the plan file is saved): {e}"));
                self.in_git = false;
            }
        }
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
        let blocked: Vec<(TaskId, Wait)> = graph::blocked(plan).into_iter().filter(|(id, _)| !exclude.contains(id)).collect();
        let failed = plan.tasks().any(|t| t.status == Status::Failed);
        if !blocked.is_empty() {
            let lines: Vec<String> = blocked.iter().map(|(id, why)| format!("  {id}: {why}")).collect();
            self.reporter.decision("BLOCKED", format!("blocked: {} task{} can never run:\n{}", blocked.len(), if blocked.len() == 1 { "" } else { "s" }, lines.join("\n")));
            return Exit::Blocked;
        }
        if failed {
            Exit::TaskFailed
        } else {
            Exit::Completed
        }
    }

    fn finish(&mut self, exit: Exit) -> Exit {
        let _ = self.save();
        if exit == Exit::Stopped {
            self.commit("baton: plan state at stop");
        }
        let counts = Counts::of(self.file.plan());
        let how = match exit {
            Exit::Completed => "finished",
            Exit::TaskFailed => "finished with failures",
            Exit::Blocked => "blocked",
            Exit::Stopped => "stopped",
            Exit::InvalidInput => "stopped on an error",
            _ => "ended",
        };
        self.reporter.emit(EventKind::Summary {
            text: format!(
                "{how} in {}: {} · agent cost ${:.4}",
                event::human(self.started.elapsed()),
                counts.sentence(),
                self.cost
            ),
        });
        if !self.opts.skip_smoke && exit == Exit::Completed {
            // Smoke tests arrive with their own issue; say so rather than pretend.
            self.reporter.decision("SMOKE", "smoke tests are not built yet; skipped");
        }
        exit
    }

    fn prompt(&self, task: &crate::plan::Task, status_rel: &Path) -> Result<String, String> {
        let template = match &self.config.agent.prompt_template {
            Some(p) => {
                let path = self.root.join(p);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the prompt template {} (baton.toml [agent] prompt_template): {e}", path.display()))?
            }
            None => prompt::DEFAULT_TEMPLATE.to_string(),
        };
        let abs_plan = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        let plan_rel = abs_plan.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs_plan);
        Ok(prompt::render(
            &template,
            &PromptVars {
                plan: self.file.plan(),
                task,
                plan_file: &plan_rel,
                status_file: status_rel,
                build_command: self.config.agent.build_command.as_deref(),
                extra: "",
            },
        ))
    }
}

/// `--dry-run`: what would run, in order, assuming each task completes; nothing changes.
fn dry_run(file: &PlanFile, opts: &RunOptions, config: &Config, agent: &dyn Agent) -> Exit {
    let mut plan = file.plan().clone();
    println!("dry run of {} — nothing will be started or changed", opts.plan.display());
    println!("agent: {} ({})", agent.name(), agent.binary().description);
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
    while let Some(t) = graph::next_ready(&plan, &exclude) {
        let id = t.id.clone();
        n += 1;
        let max = plan.max_attempts(t, config.run.max_attempts);
        println!("{n:>3}. {} {} (attempt {}/{max})", id, t.name, t.attempts + 1);
        for s in &mut plan.sections {
            for t in &mut s.tasks {
                if t.id == id {
                    t.status = Status::Completed;
                }
            }
        }
        if opts.single_task {
            break;
        }
    }
    if n == 0 {
        println!("nothing to run");
    }
    let blocked = graph::blocked(&plan);
    for (id, why) in &blocked {
        println!("  blocked: {id} ({why})");
    }
    Exit::Completed
}

fn render_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(&format!(": {s}"));
        src = s.source();
    }
    out
}
