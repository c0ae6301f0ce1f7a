//! Turning one backlog item into a design doc and a valid plan, through a fresh agent session —
//! the same adapter, status protocol, and limit and throttle handling as a task. An invalid plan
//! is asked for once more with the exact validation errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::backlog::Item;
use crate::agent::Agent;
use crate::config::Config;
use crate::plan::{PlanError, TaskId};
use crate::policy::backoff::{jitter_from_seed, Throttle, ThrottleBackoff};
use crate::policy::limit;
use crate::report::event::{AttemptOutcome, EventKind, Note, PipelineNote, Reporter, WaitReason};
use crate::run::attempt::{self, AttemptSpec};
use crate::run::record::Records;
use crate::run::stop::{self, Stop};
use crate::run::verdict::{self, Evidence, Verdict};

/// What a plan-creation session needs from the daemon.
pub struct Planner {
    pub root: PathBuf,
    pub config: Config,
    pub agent: Arc<dyn Agent>,
    pub reporter: Reporter,
    pub stop: watch::Receiver<Stop>,
    pub guard_exe: PathBuf,
    /// Transcripts of plan-creation sessions: `<logs>/pipeline/plan-<slug>/attempt-N.jsonl`.
    pub records: Records,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Ok,
    Failed(String),
    /// The environment is broken (e.g. root refusal): the daemon stops.
    Systemic { message: String, help: String },
    Stopped,
}

const TEMPLATE: &str = r#"You are planning one backlog item for baton, a plan orchestrator that later hands each task of your plan to a fresh coding-agent session. Do not implement the item now: write a design document and a YAML plan, then report.

Task ID: {task_id}
Backlog item: {item_path}
Design document: {design_path}
Plan file: {plan_path}
Status file: {status_file}

## The backlog item

{item_text}

## What to write

1. Read the code the item concerns. Then write the design document at `{design_path}`: the problem, the approach, the files involved, how it will be tested.
2. Write the plan at `{plan_path}` in exactly this schema:

```yaml
meta:
  name: Short name of the work
  description: One sentence
  plan_doc: {design_path}
  created: '{today}'
  max_attempts_default: 3
sections:
- id: phase-1
  name: What this phase achieves
  status: pending
  tasks:
  - id: '1.1'
    name: A small task one session can finish
    status: pending
    description: 'What to do, precisely. Files: src/example.rs'
  - id: '1.2'
    name: The next small task
    status: pending
    depends_on: ['1.1']
    description: 'What to do. Files: tests/example_test.rs'
```

Rules: task ids are quoted strings and unique; every task has `id`, `name`, `status: pending` and a `description`; a value that contains `: ` must be quoted; `depends_on` names only ids in this plan and never forms a cycle; tasks that may run at the same time can share a `parallel_group`; name the files each task touches in its description. Keep tasks small: one focused change each, with its tests.
{existing_plans}{previous_errors}
3. Commit the design document and the plan with git.
4. As your very last step, write this JSON object to `{status_file}`:

```json
{status_example}
```
"#;

impl Planner {
    /// Asks the agent for the item's design and plan; validates the plan; asks once more with
    /// the errors when it is invalid.
    pub async fn create(&mut self, item: &Item, plan_rel: &Path, design_rel: &Path) -> Created {
        // The content the daemon found complete and stable, not whatever the file holds now.
        let item_text = item.text.clone();
        let mut errors: Option<String> = None;
        for round in 1..=2 {
            if *self.stop.borrow() != Stop::Running {
                return Created::Stopped;
            }
            let prompt = self.prompt(item, &item_text, plan_rel, design_rel, errors.as_deref());
            match self.session(item, prompt).await {
                Created::Ok => {}
                other => return other,
            }
            let plan_path = self.root.join(plan_rel);
            match crate::plan::PlanFile::load(&plan_path) {
                Ok(f) if f.plan().tasks().any(|t| t.status.is_runnable()) => return Created::Ok,
                Ok(_) => {
                    let problem = format!(
                        "the plan at {} has no task left to do; a plan for a backlog item needs at least one pending task",
                        plan_rel.display()
                    );
                    self.reporter.warn(format!("the plan written for {} is not usable: {problem}", item.path.display()));
                    errors = Some(problem);
                }
                Err(e @ PlanError::Invalid { .. }) => {
                    let rendered = e.render();
                    self.reporter.warn(format!("the plan written for {} is not valid:\n{rendered}", item.path.display()));
                    if round == 1 {
                        self.reporter.note(Note::Pipeline(PipelineNote::AskingAgain { plan: plan_rel.to_path_buf() }));
                    }
                    errors = Some(rendered);
                }
                Err(e) => {
                    let problem = format!("the agent wrote no plan at {}: {}", plan_rel.display(), e.render());
                    if round == 2 {
                        return Created::Failed(problem);
                    }
                    errors = Some(problem);
                }
            }
        }
        Created::Failed(format!("the plan is still invalid after a second try:\n{}", errors.unwrap_or_default()))
    }

    /// One agent session, retried across usage limits and throttling (which spend nothing).
    async fn session(&mut self, item: &Item, prompt: String) -> Created {
        let task = TaskId(format!("plan:{}", item.slug));
        let record_key = format!("plan-{}", item.slug);
        let status_rel = self.config.paths.status_file.clone();
        let status_file = self.root.join(&status_rel);
        let mut throttle = Throttle::default();
        let throttle_backoff = ThrottleBackoff {
            initial: Duration::from_secs_f64(self.config.run.throttle_initial_seconds),
            cap: Duration::from_secs_f64(self.config.run.throttle_max_seconds),
            ..ThrottleBackoff::default()
        };
        loop {
            if *self.stop.borrow() != Stop::Running {
                return Created::Stopped;
            }
            let _ = std::fs::remove_file(&status_file);
            if let Some(d) = status_file.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            let session = self.records.next_session(&record_key);
            let spec = AttemptSpec {
                task: task.clone(),
                agent: self.agent.clone(),
                prompt: prompt.clone(),
                invocation: crate::agent::Invocation { model: self.config.agent.model.clone(), agent: None, max_budget_usd: None },
                cwd: self.root.clone(),
                total_timeout: Duration::from_secs_f64(self.config.run.timeout_seconds),
                idle_timeout: Duration::from_secs_f64(self.config.run.idle_timeout_seconds),
                transcript: self.records.transcript(&record_key, session),
                guard_exe: self.guard_exe.clone(),
                env: Vec::new(),
                heartbeat: None,
                executor: crate::exec::Executor::Local,
                place: crate::exec::AttemptPlace::here(task.clone()),
            };
            self.reporter.emit(EventKind::AttemptStarted {
                task: task.clone(),
                name: format!("write the design and plan for {}", item.path.display()),
                attempt: session,
                max_attempts: session,
                session,
                model: self.config.agent.model.clone(),
                transcript: self.records.transcript(&record_key, session),
                max_budget_usd: None,
                agent: None,
            });
            let run = attempt::run(spec, self.reporter.clone(), self.stop.clone()).await;
            let orphans = crate::run::process::orphans::sweep();
            if orphans > 0 {
                self.reporter.warn(format!("ended {orphans} process(es) the planning agent had started whose guard was gone"));
            }
            let run = match run {
                Ok(r) => r,
                Err(e) => {
                    return Created::Systemic {
                        message: format!("cannot start the agent: {e}"),
                        help: "check the agent's `binary` in baton.toml ([agent], or its [agents.NAME]), or BATON_CLAUDE_BIN / BATON_CODEX_BIN / BATON_GEMINI_BIN".into(),
                    }
                }
            };
            let verdict = verdict::judge(
                &Evidence {
                    task_id: task.as_str(),
                    status_file: &status_file,
                    status_shown: &status_rel,
                    ended: run.ended,
                    exit: run.exit,
                    dialect: self.agent.dialect(),
                    summary: &run.summary,
                    stderr_tail: &run.stderr_tail,
                    systemic: run.systemic.clone(),
                    prompt: Some(&prompt),
                },
                &jiff::ZonedDateTime::now(),
            );
            let _ = std::fs::remove_file(&status_file);
            let ok = matches!(&verdict, Verdict::Done(r) if r.status != crate::plan::Status::Failed);
            self.reporter.emit(EventKind::AttemptEnded {
                task: task.clone(),
                outcome: AttemptOutcome::Planned { written: ok },
                duration: run.duration,
                cost_usd: run.summary.cost_usd(),
            });
            match verdict {
                Verdict::Done(r) if r.status == crate::plan::Status::Failed => {
                    return Created::Failed(format!("the agent could not plan it: {}", r.message))
                }
                Verdict::Done(_) => return Created::Ok,
                Verdict::Failed { message } => return Created::Failed(message),
                Verdict::Systemic(s) => return Created::Systemic { message: s.message, help: s.help },
                Verdict::Interrupted => return Created::Stopped,
                // Planning sessions get no cap; a CLI that says so anyway failed to plan.
                Verdict::Capped { message } => return Created::Failed(message),
                // Planning sessions run here; an executor that loses one failed to plan.
                Verdict::Lost { message } => return Created::Failed(message),
                Verdict::Limited(l) => {
                    let wake = limit::wake_at(
                        l.resets_at,
                        jiff::Timestamp::now(),
                        Duration::from_secs_f64(self.config.run.limit_margin_seconds),
                        Duration::from_secs_f64(self.config.run.limit_fallback_seconds),
                    );
                    let wait = wake.duration_since(jiff::Timestamp::now()).unsigned_abs();
                    self.reporter.emit(EventKind::Waiting {
                        reason: WaitReason::Planning { limit: true, message: l.message.clone() },
                        until: jiff::Timestamp::now() + wait,
                    });
                    if stop::sleep_or_stop(wait, &mut self.stop).await {
                        return Created::Stopped;
                    }
                }
                Verdict::Throttled(t) => {
                    throttle.record_throttle(std::time::Instant::now());
                    let wait = throttle.delay(&throttle_backoff, jitter_from_seed(jiff::Timestamp::now().as_nanosecond() as u64));
                    self.reporter.emit(EventKind::Waiting {
                        reason: WaitReason::Planning { limit: false, message: t.message.clone() },
                        until: jiff::Timestamp::now() + wait,
                    });
                    if stop::sleep_or_stop(wait, &mut self.stop).await {
                        return Created::Stopped;
                    }
                }
            }
        }
    }

    fn prompt(&self, item: &Item, item_text: &str, plan_rel: &Path, design_rel: &Path, errors: Option<&str>) -> String {
        let task_id = format!("plan:{}", item.slug);
        let existing: Vec<String> = std::fs::read_dir(self.root.join(&self.config.paths.plans_dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .filter_map(|p| p.strip_prefix(&self.root).ok().map(|r| r.display().to_string()))
            .filter(|p| Path::new(p) != plan_rel)
            .collect();
        let existing_plans = if existing.is_empty() {
            String::new()
        } else {
            format!("\nThe project's existing plans, for reference (read one to see the style): {}\n", existing.join(", "))
        };
        let previous_errors = match errors {
            Some(e) => format!(
                "\n## Fix the plan you wrote\n\nThe plan at `{}` did not validate. Fix these problems, keeping the rest:\n\n{e}\n",
                plan_rel.display()
            ),
            None => String::new(),
        };
        let example = serde_json::json!({
            "task_id": task_id,
            "status": "completed",
            "message": "design and plan written",
            "timestamp": "2026-01-01T12:00:00Z",
            "plan_modified": true,
        });
        let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date().strftime("%Y-%m-%d").to_string();
        let vars: [(&str, String); 10] = [
            ("task_id", task_id.clone()),
            ("item_path", item.path.display().to_string()),
            ("design_path", design_rel.display().to_string()),
            ("plan_path", plan_rel.display().to_string()),
            ("status_file", self.config.paths.status_file.display().to_string()),
            ("item_text", item_text.trim().to_string()),
            ("today", today),
            ("existing_plans", existing_plans),
            ("previous_errors", previous_errors),
            ("status_example", serde_json::to_string_pretty(&example).unwrap_or_default()),
        ];
        crate::run::prompt::fill(TEMPLATE, &vars)
    }
}
