//! The run's state as data: its phase, the circuit breaker, back-offs and pauses, which tasks
//! may start now, and what an attempt's end means. Pure: it reads no clock (every call is given
//! `now`), spawns nothing and touches no file; the dispatcher applies what it decides.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::exit::Exit;
use crate::plan::graph::{self, Wait};
use crate::plan::{Plan, Status, TaskId};
use crate::policy::backoff::{RetryBackoff, Throttle, ThrottleBackoff};
use crate::policy::breaker::{Admission, BreakerState, CircuitBreaker};
use crate::policy::budget::Budget;
use crate::policy::failover::{AgentLimits, Route, Routing};
use crate::report::event::{Note, WaitReason};
use crate::run::schedule::{self, Active};
use crate::store::usd;

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Tasks start as they may.
    Running,
    /// No new task starts; the run ends with this code once the running attempts are done.
    Ending(Exit),
}

/// The settings the state's policies are made from.
#[derive(Debug, Clone)]
pub struct Policies {
    pub breaker: CircuitBreaker,
    pub backoff: RetryBackoff,
    pub throttle_backoff: ThrottleBackoff,
    /// How many agents may run at once (1 when sequential).
    pub jobs: usize,
    /// Sequential runs keep plan order: a task waiting out its back-off holds the line.
    pub parallel: bool,
    /// `--single-task`: one task is the whole run.
    pub single_task: bool,
    /// Tasks `--resume-from` leaves out.
    pub exclude: HashSet<TaskId>,
    /// The budget, when one is set.
    pub budget: Option<Budget>,
    /// Which agent each task runs on, and where it goes while that one is limited.
    pub routing: Routing,
    /// `[review]`: a task that will be reviewed waits while no agent can review it (its work
    /// would be thrown away when the reviewer met the limit).
    pub review: crate::config::Review,
}

/// A task whose attempt is running, as the state knows it.
#[derive(Debug, Clone)]
pub struct Slot {
    pub active: Active,
    pub attempt: u32,
    pub max: u32,
    /// The agent it runs on.
    pub agent: String,
    /// The agent its plan names (`agent:`), if any.
    pub task_agent: Option<String>,
    /// When its session started.
    pub since: Instant,
}

/// How an attempt (and, in a parallel run, its landing) ended, as the state needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Completed or skipped, and landed.
    Done(Status),
    /// The attempt failed; a merge conflict (`conflict`) fails the task at once.
    Failed { conflict: bool },
    /// The reviewer failed the attempt: like a failure, but when the reviewer has failed the
    /// task as often as it may (`exhausted`), the task ends `validation_exhausted`.
    Rejected { exhausted: bool },
    /// The session reached its spending cap: not counted; the budget is spent, the run ends.
    Capped,
    /// A usage limit: wait `wait`, attempt not counted; `reason` says why to the user.
    Limited { wait: Duration, reason: WaitReason },
    /// Server-side throttling: back off, attempt not counted.
    Throttled { jitter: f64, message: String },
    /// The environment is broken: the run ends with an error, attempt not counted.
    Systemic,
    /// baton's stop ended it: attempt not counted.
    Interrupted,
    /// The executor lost it (a cluster's node died): attempt not counted; the task runs again
    /// after a short back-off.
    Lost,
    /// Its work would overwrite the user's change (or its landing was cut short): it waits,
    /// attempt not counted, and the run stops.
    NotLanded,
    /// The agent could not be started, or the attempt's future panicked: an error.
    Broken,
}

/// What the plan should say about the task now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange {
    /// Completed, skipped, or failed for good: `attempts` is recorded with it.
    Final { status: Status, attempts: u32 },
    /// The attempt counted and failed; the task is pending again and retries after `after`.
    Retry { attempts: u32, after: Duration },
    /// Back to pending, attempts untouched.
    Pending,
}

/// What an attempt's end means.
#[derive(Debug, Clone, PartialEq)]
pub struct Consequence {
    pub plan: PlanChange,
    /// No task starts before this, for this reason (a limit, throttling).
    pub pause: Option<(Instant, WaitReason)>,
    /// Notes for the reporter (the breaker opened, throttling cut the concurrency).
    pub notes: Vec<Note>,
    /// A warning worth telling (throttled many times in a row).
    pub warning: Option<String>,
    /// The breaker just opened from closed: one notification for the episode.
    pub breaker_tripped: bool,
    /// How long this end holds starts back (a limit's or throttling's wait).
    pub waited: Option<Duration>,
}

/// What may happen now.
#[derive(Debug, Default)]
pub struct Admit {
    /// Tasks to start, in this order, each with the agent it runs on.
    pub start: Vec<(TaskId, String)>,
    pub notes: Vec<Note>,
    /// Why nothing starts for a while, and until when (told once per wait).
    pub waiting: Option<(Instant, WaitReason)>,
    /// When to look again if nothing finishes first.
    pub wake: Option<Instant>,
}

#[derive(Debug)]
pub struct RunState {
    phase: Phase,
    breaker: CircuitBreaker,
    backoff: RetryBackoff,
    throttle: Throttle,
    throttle_backoff: ThrottleBackoff,
    jobs: usize,
    parallel: bool,
    single_task: bool,
    exclude: HashSet<TaskId>,
    /// `--single-task`: the one task this run is about, once started.
    single: Option<TaskId>,
    running: HashMap<TaskId, Slot>,
    /// Tasks waiting out their retry back-off.
    delayed: HashMap<TaskId, Instant>,
    /// Attempts the executor lost since an attempt last ended by its agent's doing.
    lost_in_a_row: u32,
    /// No task starts before this (a usage limit or throttling).
    paused_until: Option<Instant>,
    /// The breaker wait last told, so that it is told once.
    told_breaker: Option<Instant>,
    /// Each agent's limit last told, so that parallel attempts meeting it tell it once.
    told_limit: HashMap<String, Instant>,
    /// The end of the last wait told for tasks whose agents are all limited.
    told_held: Option<Instant>,
    attempts_started: u32,
    budget: Option<Budget>,
    routing: Routing,
    review: crate::config::Review,
    /// Each agent's usage limit.
    limits: AgentLimits,
}

impl RunState {
    pub fn new(p: Policies) -> RunState {
        RunState {
            phase: Phase::Running,
            breaker: p.breaker,
            backoff: p.backoff,
            throttle: Throttle::default(),
            throttle_backoff: p.throttle_backoff,
            jobs: p.jobs.max(1),
            parallel: p.parallel,
            single_task: p.single_task,
            exclude: p.exclude,
            single: None,
            running: HashMap::new(),
            delayed: HashMap::new(),
            lost_in_a_row: 0,
            paused_until: None,
            told_breaker: None,
            told_limit: HashMap::new(),
            told_held: None,
            attempts_started: 0,
            budget: p.budget,
            routing: p.routing,
            review: p.review,
            limits: AgentLimits::default(),
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn running_ids(&self) -> impl Iterator<Item = &TaskId> {
        self.running.keys()
    }

    pub fn slot(&self, id: &TaskId) -> Option<&Slot> {
        self.running.get(id)
    }

    pub fn single(&self) -> Option<&TaskId> {
        self.single.as_ref()
    }

    pub fn attempts_started(&self) -> u32 {
        self.attempts_started
    }

    #[cfg(test)]
    pub fn excluded(&self) -> &HashSet<TaskId> {
        &self.exclude
    }

    /// The run ends with `exit` once running attempts are done. An error outranks a stop; the
    /// first reason is kept otherwise.
    pub fn end(&mut self, exit: Exit) {
        self.phase = match self.phase {
            Phase::Running => Phase::Ending(exit),
            Phase::Ending(Exit::Stopped) if exit == Exit::InvalidInput => Phase::Ending(exit),
            p => p,
        };
    }

    /// A stop was asked for; true the first time (to tell it).
    pub fn stop_requested(&mut self) -> bool {
        if self.phase == Phase::Running {
            self.phase = Phase::Ending(Exit::Stopped);
            return true;
        }
        false
    }

    /// With nothing running: the exit the run ends with now, if it ends now — it is ending, or
    /// its `--single-task` is done.
    pub fn ends_now(&self, plan: &Plan) -> Option<(Exit, Option<Note>)> {
        if !self.running.is_empty() {
            return None;
        }
        if let Phase::Ending(exit) = self.phase {
            // A stop that came when nothing was left to start stopped nothing: the run ends as
            // it would have (its smoke tests run, its exit code says how it went).
            let nothing_left = plan.tasks().all(|t| t.status.is_final() || self.exclude.contains(&t.id));
            if exit == Exit::Stopped && nothing_left {
                return Some((self.idle_exit(plan).0, None));
            }
            return Some((exit, None));
        }
        let id = self.single.as_ref()?;
        match plan.task(id.as_str()) {
            Some(t) if !t.status.is_final() => None,
            t => {
                let exit = if t.is_some_and(|t| t.status.is_failure()) { Exit::TaskFailed } else { Exit::Completed };
                Some((exit, Some(Note::SingleTaskDone)))
            }
        }
    }

    /// Which tasks start now, and when to look again.
    pub fn admit(&mut self, plan: &Plan, now: Instant) -> Admit {
        let mut out = Admit::default();
        if self.phase != Phase::Running {
            return out;
        }
        if let Some(until) = self.paused_until {
            if now < until {
                out.wake = Some(until);
                return out;
            }
            self.paused_until = None;
        }
        self.delayed.retain(|_, t| *t > now);
        let next_delay = self.delayed.values().min().copied();
        out.wake = next_delay;
        let mut skip: HashSet<TaskId> = self.exclude.clone();
        skip.extend(self.running.keys().cloned());
        // Where each task would go now; one whose agents are all limited waits.
        let mut routes: HashMap<TaskId, String> = HashMap::new();
        let mut by_limits: HashMap<TaskId, Instant> = HashMap::new();
        let reviewer = self.limits.route(&self.routing.candidates(None), now);
        for t in plan.tasks().filter(|t| t.status.is_runnable() && !skip.contains(&t.id)) {
            let route = match self.limits.route(&self.routing.candidates(t.agent.as_deref()), now) {
                // Reviewed work waits for a reviewer: done now, it would be done again.
                Route::Run(_) if matches!(reviewer, Route::Wait(_)) && crate::run::review::review_for(&self.review, plan, t).is_some() => reviewer.clone(),
                route => route,
            };
            match route {
                Route::Run(agent) => {
                    routes.insert(t.id.clone(), agent);
                }
                Route::Wait(until) => {
                    by_limits.insert(t.id.clone(), until);
                }
            }
        }
        let limit_wake = |first: Option<&TaskId>| first.and_then(|id| by_limits.get(id)).copied();
        if !self.parallel {
            // Sequential runs keep plan order: a task waiting out its back-off or its agent's
            // limit holds the line.
            if let Some(first) = graph::next_ready(plan, &skip) {
                if let Some(until) = limit_wake(Some(&first.id)) {
                    out.wake = Some(next_delay.map_or(until, |d| d.min(until)));
                    if self.running.is_empty() {
                        let first = HashMap::from([(first.id.clone(), until)]);
                        self.tell_held(&first, now, &mut out);
                    }
                    return out;
                }
                if self.delayed.contains_key(&first.id) || !self.running.is_empty() {
                    return out;
                }
            }
        }
        if let Some(until) = by_limits.values().min().copied() {
            out.wake = Some(out.wake.map_or(until, |d| d.min(until)));
        }
        skip.extend(by_limits.keys().cloned());
        skip.extend(self.delayed.keys().cloned());
        if let Some(id) = &self.single {
            // Only the single task may run.
            skip.extend(plan.tasks().filter(|t| &t.id != id).map(|t| t.id.clone()));
        }
        let limit = self.throttle.concurrency_limit(self.jobs).min(self.jobs);
        let active: Vec<Active> = self.running.values().map(|s| s.active.clone()).collect();
        let (picks, held) = schedule::pick(plan, &active, limit, &skip);
        if self.parallel && !picks.is_empty() {
            out.notes.extend(held.into_iter().map(|h| Note::Held { task: h.id, why: h.why }));
        }
        for id in picks {
            if let Some(b) = &self.budget {
                let in_flight = self.running.len() + out.start.len();
                if let Err(e) = b.admit(in_flight) {
                    if in_flight > 0 && b.admit(0).is_ok() {
                        // What the running attempts are expected to cost holds it back: look
                        // again when one ends and its real cost is known.
                        return out;
                    }
                    out.notes.push(exhausted(&e, in_flight));
                    self.end(Exit::BudgetExhausted);
                    return out;
                }
            }
            match self.breaker.may_start(now) {
                Admission::Admit => {}
                Admission::AdmitProbe => out.notes.push(Note::BreakerHalfOpen),
                Admission::Wait { until } => {
                    if self.told_breaker != Some(until) {
                        self.told_breaker = Some(until);
                        let failures = self.breaker.consecutive_failures();
                        out.waiting = Some((until, WaitReason::Breaker { failures, remaining: until.saturating_duration_since(now) }));
                    }
                    out.wake = Some(next_delay.map_or(until, |d| d.min(until)));
                    return out;
                }
                Admission::AwaitProbe => return out,
            }
            let agent = routes.get(&id).cloned().unwrap_or_else(|| self.routing.default.clone());
            out.start.push((id.clone(), agent));
            if self.single_task {
                // One task is the whole run, even when others could run beside it.
                self.single.get_or_insert(id);
                break;
            }
            if matches!(self.breaker.state(), BreakerState::HalfOpen) {
                break;
            }
        }
        if out.start.is_empty() && self.running.is_empty() && out.waiting.is_none() {
            self.tell_held(&by_limits, now, &mut out);
        }
        out
    }

    /// Nothing starts and nothing runs because every agent the waiting tasks may use is under
    /// a usage limit: say until when (once per wait; a limit met in this run told it already).
    fn tell_held(&mut self, held: &HashMap<TaskId, Instant>, now: Instant, out: &mut Admit) {
        let Some(until) = held.values().min().copied() else { return };
        if self.told_held.is_some_and(|t| t == until) || self.delayed.values().any(|d| *d < until) {
            return;
        }
        self.told_held = Some(until);
        let message = "every agent the waiting tasks may run on is under a usage limit".to_string();
        out.waiting = Some((until, WaitReason::UsageLimit { message, reset: None, known: true, wait: until.saturating_duration_since(now), agent: None }));
    }

    /// Usage limits an earlier run met that have not reset yet: with a fallback to go to, the
    /// agent is passed over from the start (its tasks go to the fallback at once) — without one,
    /// the run tries it anyway (a limit costs nothing to meet, and a recorded reset may be a
    /// guess). The notes to tell. `now`: the same instant as a timestamp and on the monotonic
    /// clock.
    pub fn known_limits(&mut self, limits: &[crate::store::query::AgentLimit], at: jiff::Timestamp, now: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        for l in limits {
            let Some(until) = l.until() else { continue };
            let left = Duration::try_from(until.duration_since(at)).unwrap_or_default();
            if !self.limits.recorded(&l.agent, left, now, &self.routing) {
                continue;
            }
            let reset = Some(crate::report::status::local_time(until, at));
            let reason = WaitReason::UsageLimit { message: l.message.clone().unwrap_or_default(), reset, known: true, wait: left, agent: Some(l.agent.clone()) };
            notes.push(Note::KnownLimit { agent: l.agent.clone(), reason });
        }
        notes
    }

    /// Where a session of a task naming `task_agent` (the reviewer's: `None`) would run now.
    pub fn route(&self, task_agent: Option<&str>, now: Instant) -> Route {
        self.limits.route(&self.routing.candidates(task_agent), now)
    }

    /// The spending cap of a session that starts now beside the running ones, when a budget
    /// is set.
    pub fn session_cap(&self) -> Option<f64> {
        self.budget.as_ref().and_then(|b| b.admit(self.running.len()).ok())
    }

    /// Money this run spent: an agent's session, a reviewer's.
    pub fn spent(&mut self, cost: f64) {
        if let Some(b) = &mut self.budget {
            b.spent(cost);
        }
    }

    /// What the plan spent in its other runs (earlier ones, and ones going on elsewhere now).
    pub fn spent_elsewhere(&mut self, spent: f64) {
        if let Some((_, before)) = self.budget.as_mut().and_then(|b| b.plan.as_mut()) {
            *before = spent;
        }
    }

    /// What a counted attempt cost, its reviewer's included: the next ones are expected to
    /// cost the median of these.
    pub fn sample(&mut self, cost: f64) {
        if let Some(b) = &mut self.budget {
            b.sample(cost);
        }
    }

    /// What a session that ended before saying its cost is charged: the median attempt cost,
    /// at most its cap; `None` without a budget or a cost to go by.
    pub fn charge_for_unknown(&self, cap: Option<f64>) -> Option<f64> {
        let b = self.budget.as_ref()?;
        let median = crate::store::query::median(&b.costs)?;
        Some(cap.map_or(median, |c| median.min(c)))
    }

    /// The spending cap of a reviewer of an attempt (which still holds its slot): what
    /// remains less what the other running attempts hold.
    pub fn review_cap(&self) -> Option<f64> {
        self.budget.as_ref().map(|b| b.cap_beside(self.running.len().saturating_sub(1)))
    }

    /// Where the budget stands, as the note told at the start of a run.
    pub fn budget_note(&self) -> Option<Note> {
        Self::budget_note_of(self.budget.as_ref()?)
    }

    /// Where `b` stands, as a note.
    pub fn budget_note_of(b: &Budget) -> Option<Note> {
        let e = b.state();
        Some(Note::Budget {
            scope: e.scope.to_string(),
            budget_usd: usd(e.budget),
            spent_usd: usd(e.spent),
            remaining_usd: usd(e.remaining),
            estimate_usd: usd(e.estimate),
            estimate_from: e.estimate_from,
        })
    }

    /// The note for a run that spent more than its budget, if it did.
    pub fn over_budget(&self) -> Option<Note> {
        let e = self.budget.as_ref()?.state();
        (e.spent > e.budget + 1e-9).then(|| Note::OverBudget { scope: e.scope.to_string(), budget_usd: usd(e.budget), spent_usd: usd(e.spent) })
    }

    /// Attempts the executor lost in a row (a cluster that loses every job is broken).
    pub fn lost_in_a_row(&self) -> u32 {
        self.lost_in_a_row
    }

    /// The task's attempt started.
    pub fn started(&mut self, id: TaskId, slot: Slot) {
        self.attempts_started += 1;
        self.running.insert(id, slot);
    }

    /// An attempt ended: what it means for the task, the breaker, the back-offs and the run.
    /// `None` when the task was not running.
    pub fn ended(&mut self, id: &TaskId, outcome: Outcome, now: Instant) -> Option<Consequence> {
        let slot = self.running.remove(id)?;
        let mut c = Consequence { plan: PlanChange::Pending, pause: None, notes: Vec::new(), warning: None, breaker_tripped: false, waited: None };
        match outcome {
            Outcome::Done(status) => {
                self.lost_in_a_row = 0;
                self.breaker.record_success();
                self.throttle.record_success();
                // Its agent answered: a limit it met before this session began is over.
                self.limits.answered(&slot.agent, slot.since);
                c.plan = PlanChange::Final { status, attempts: slot.attempt };
            }
            Outcome::Failed { .. } | Outcome::Rejected { .. } => {
                self.lost_in_a_row = 0;
                let conflict = outcome == Outcome::Failed { conflict: true };
                let exhausted = outcome == Outcome::Rejected { exhausted: true };
                let was_closed = matches!(self.breaker.state(), BreakerState::Closed { .. });
                let was_open = matches!(self.breaker.state(), BreakerState::Open { .. });
                if !conflict {
                    // A merge conflict says nothing about the agents' health.
                    self.breaker.record_failure(now);
                }
                if !was_open && matches!(self.breaker.state(), BreakerState::Open { .. }) {
                    c.notes.push(Note::BreakerOpened { failures: self.breaker.consecutive_failures(), cool_down: self.breaker.cool_down() });
                    // One notice when it trips; a failed probe re-opening it is the same episode.
                    c.breaker_tripped = was_closed;
                }
                c.plan = if exhausted {
                    PlanChange::Final { status: Status::ValidationExhausted, attempts: slot.attempt }
                } else if conflict || slot.attempt >= slot.max {
                    PlanChange::Final { status: Status::Failed, attempts: slot.attempt }
                } else {
                    let after = self.backoff.delay(slot.attempt);
                    self.delayed.insert(id.clone(), now + after);
                    PlanChange::Retry { attempts: slot.attempt, after }
                };
            }
            Outcome::Limited { wait, reason } => {
                self.breaker.record_inconclusive();
                c.waited = Some(wait);
                // The agent whose limit it is (the reviewer's may not be the task's).
                let agent = match &reason {
                    WaitReason::UsageLimit { agent: Some(a), .. } => a.clone(),
                    _ => slot.agent.clone(),
                };
                let limit = self.limits.hit(&agent, now + wait, now, &self.routing);
                let next = match self.limits.route(&self.routing.candidates(slot.task_agent.as_deref()), now) {
                    Route::Run(a) if limit.failover && a != agent => Some(a),
                    _ => None,
                };
                match next {
                    // Its tasks go on elsewhere at once: the wait is the agent's, not the task's.
                    Some(to) => {
                        c.waited = None;
                        c.notes.push(Note::Failover { task: id.clone(), from: agent, to, reason });
                    }
                    None if self.told_limit.get(&agent).is_some_and(|t| *t >= limit.until) => {}
                    None => {
                        self.told_limit.insert(agent, limit.until);
                        self.told_held = Some(limit.until);
                        c.pause = Some((limit.until, reason));
                    }
                }
            }
            Outcome::Throttled { jitter, message } => {
                self.breaker.record_inconclusive();
                self.throttle.record_throttle(now);
                let wait = self.throttle.delay(&self.throttle_backoff, jitter);
                if self.throttle.consecutive >= 3 {
                    c.warning = Some(format!(
                        "the API has throttled {} attempts in a row; baton keeps backing off (not a usage limit, attempts are not spent)",
                        self.throttle.consecutive
                    ));
                }
                if self.parallel {
                    c.notes.push(Note::Throttling { limit: self.throttle.concurrency_limit(self.jobs) });
                }
                c.waited = Some(wait);
                c.pause = self.pause(now + wait, WaitReason::Throttling { message });
            }
            Outcome::Systemic | Outcome::Broken => self.end(Exit::InvalidInput),
            Outcome::Interrupted => self.end(Exit::Stopped),
            Outcome::Lost => {
                self.breaker.record_inconclusive();
                self.lost_in_a_row += 1;
                self.delayed.insert(id.clone(), now + self.backoff.delay(self.lost_in_a_row));
            }
            Outcome::Capped => {
                self.breaker.record_inconclusive();
                if self.phase == Phase::Running {
                    if let Some(b) = &self.budget {
                        c.notes.push(exhausted(&b.state(), self.running.len()));
                    }
                }
                self.end(Exit::BudgetExhausted);
            }
            Outcome::NotLanded => self.end(Exit::Stopped),
        }
        Some(c)
    }

    /// No task starts before `until`; the longest pause wins. The pause to tell, if it is new.
    fn pause(&mut self, until: Instant, reason: WaitReason) -> Option<(Instant, WaitReason)> {
        if self.paused_until.is_some_and(|p| p >= until) {
            return None;
        }
        self.paused_until = Some(until);
        Some((until, reason))
    }

    /// No task can start and none runs: how the run ends — everything done, or the rest
    /// blocked (with why).
    pub fn idle_exit(&self, plan: &Plan) -> (Exit, Vec<(TaskId, Wait)>) {
        let blocked = never_runnable(plan, &self.exclude);
        if !blocked.is_empty() {
            return (Exit::Blocked, blocked);
        }
        let exit = if plan.tasks().any(|t| t.status.is_failure()) { Exit::TaskFailed } else { Exit::Completed };
        (exit, blocked)
    }
}

/// The note that says the budget cannot pay for another attempt, `running` still running.
pub fn exhausted(e: &crate::policy::budget::Exhausted, running: usize) -> Note {
    Note::BudgetExhausted {
        scope: e.scope.to_string(),
        budget_usd: usd(e.budget),
        spent_usd: usd(e.spent),
        remaining_usd: usd(e.remaining),
        estimate_usd: usd(e.estimate),
        running,
        raise: e.raise.to_string(),
        estimate_from: e.estimate_from.clone(),
    }
}


/// Tasks `--resume-from` leaves out: every task before it in plan order.
pub fn left_out(plan: &Plan, from: Option<&str>) -> HashSet<TaskId> {
    let Some(from) = from else { return HashSet::new() };
    plan.tasks().take_while(|t| t.id.as_str() != from).map(|t| t.id.clone()).collect()
}

/// What `--resume-from` does with this plan, as a note: the unfinished tasks it leaves out and
/// whether the task it names will run at all.
pub fn resuming(plan: &Plan, from: &str) -> Note {
    let left = left_out(plan, Some(from));
    let left_out = plan.tasks().filter(|t| left.contains(&t.id) && !t.status.is_final()).map(|t| t.id.clone()).collect();
    let status = plan.task(from).map_or(Status::Pending, |t| t.status);
    Note::Resuming { from: from.to_string(), status, left_out }
}

/// Pending tasks that can never run in this run, and why: their dependency failed, is missing
/// or waits in a cycle, or is a task `--resume-from` left out (`exclude`) that is not done.
pub fn never_runnable(plan: &Plan, exclude: &HashSet<TaskId>) -> Vec<(TaskId, Wait)> {
    let mut blocked: Vec<(TaskId, Wait)> = graph::blocked(plan).into_iter().filter(|(id, _)| !exclude.contains(id)).collect();
    // Work that waits on a task --resume-from left out can never run in this run either.
    loop {
        let stuck = plan.tasks().find_map(|t| {
            if t.status.is_final() || exclude.contains(&t.id) || blocked.iter().any(|(b, _)| *b == t.id) {
                return None;
            }
            t.depends_on.iter().find_map(|d| {
                let dep_done = plan.task(d.as_str()).is_some_and(|x| x.status.is_done());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::schedule::Footprint;

    const SECOND: Duration = Duration::from_secs(1);

    fn plan(src: &str) -> Plan {
        crate::plan::parse_plan(src).unwrap()
    }

    fn three() -> Plan {
        plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B}\n  - {id: c, name: C}\n")
    }

    fn policies(parallel: bool, jobs: usize) -> Policies {
        Policies {
            breaker: CircuitBreaker::new(3, Duration::from_secs(60)),
            backoff: RetryBackoff { initial: Duration::from_secs(2), factor: 2, cap: Duration::from_secs(30) },
            throttle_backoff: ThrottleBackoff { initial: Duration::from_secs(5), cap: Duration::from_secs(60), ..ThrottleBackoff::default() },
            jobs,
            parallel,
            single_task: false,
            exclude: HashSet::new(),
            budget: None,
            routing: Routing::single("claude"),
            review: crate::config::Review::default(),
        }
    }

    fn start(state: &mut RunState, p: &Plan, id: &str, attempt: u32, max: u32) {
        let t = p.task(id).unwrap();
        let active = Active { id: t.id.clone(), group: t.parallel_group.clone(), footprint: Footprint::of(t) };
        state.started(t.id.clone(), Slot { active, attempt, max, agent: "claude".into(), task_agent: t.agent.clone(), since: Instant::now() });
    }

    fn start_on(state: &mut RunState, p: &Plan, id: &str, agent: &str) {
        let t = p.task(id).unwrap();
        let active = Active { id: t.id.clone(), group: t.parallel_group.clone(), footprint: Footprint::of(t) };
        state.started(t.id.clone(), Slot { active, attempt: 1, max: 3, agent: agent.into(), task_agent: t.agent.clone(), since: Instant::now() });
    }

    fn set(p: &mut Plan, id: &str, status: Status) {
        for s in &mut p.sections {
            for t in &mut s.tasks {
                if t.id.as_str() == id {
                    t.status = status;
                }
            }
        }
    }

    fn limit() -> WaitReason {
        WaitReason::UsageLimit { message: "hit your limit".into(), reset: None, known: false, wait: SECOND, agent: None }
    }

    fn ids(v: &[(TaskId, String)]) -> Vec<&str> {
        v.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn a_sequential_run_starts_one_task_in_plan_order() {
        let p = three();
        let mut s = RunState::new(policies(false, 1));
        let now = Instant::now();
        assert_eq!(ids(&s.admit(&p, now).start), ["a"]);
        start(&mut s, &p, "a", 1, 3);
        assert!(s.admit(&p, now).start.is_empty(), "one at a time");
    }

    #[test]
    fn a_failed_attempt_retries_after_its_back_off_and_holds_the_line() {
        let p = three();
        let mut s = RunState::new(policies(false, 1));
        let t0 = Instant::now();
        start(&mut s, &p, "a", 1, 3);
        let c = s.ended(&"a".into(), Outcome::Failed { conflict: false }, t0).unwrap();
        assert_eq!(c.plan, PlanChange::Retry { attempts: 1, after: 2 * SECOND });
        // b does not jump the queue while a waits.
        let admit = s.admit(&p, t0 + SECOND);
        assert!(admit.start.is_empty());
        assert_eq!(admit.wake, Some(t0 + 2 * SECOND));
        assert_eq!(ids(&s.admit(&p, t0 + 2 * SECOND).start), ["a"]);
        // The second failure waits twice as long.
        start(&mut s, &p, "a", 2, 3);
        let c = s.ended(&"a".into(), Outcome::Failed { conflict: false }, t0).unwrap();
        assert_eq!(c.plan, PlanChange::Retry { attempts: 2, after: 4 * SECOND });
    }

    #[test]
    fn the_last_attempt_fails_the_task_and_a_conflict_fails_it_at_once() {
        let p = three();
        let mut s = RunState::new(policies(true, 2));
        let now = Instant::now();
        start(&mut s, &p, "a", 3, 3);
        assert_eq!(s.ended(&"a".into(), Outcome::Failed { conflict: false }, now).unwrap().plan, PlanChange::Final { status: Status::Failed, attempts: 3 });
        start(&mut s, &p, "b", 1, 3);
        assert_eq!(s.ended(&"b".into(), Outcome::Failed { conflict: true }, now).unwrap().plan, PlanChange::Final { status: Status::Failed, attempts: 1 });
    }

    #[test]
    fn the_breaker_opens_after_three_failures_in_a_row_then_lets_one_probe_through() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, max_attempts: 9}\n");
        let mut s = RunState::new(policies(false, 1));
        let t0 = Instant::now();
        let mut tripped = Vec::new();
        for n in 1..=3 {
            start(&mut s, &p, "a", n, 9);
            let c = s.ended(&"a".into(), Outcome::Failed { conflict: false }, t0).unwrap();
            tripped.push(c.breaker_tripped);
            if n == 3 {
                assert!(matches!(c.notes[..], [Note::BreakerOpened { failures: 3, .. }]));
            }
        }
        assert_eq!(tripped, [false, false, true]);
        // Past the back-off but inside the cool-down: nothing starts, and the wait is told once.
        let later = t0 + 40 * SECOND;
        let admit = s.admit(&p, later);
        assert!(admit.start.is_empty());
        assert!(matches!(admit.waiting, Some((_, WaitReason::Breaker { failures: 3, .. }))));
        assert_eq!(admit.wake, Some(t0 + 60 * SECOND));
        assert!(s.admit(&p, later).waiting.is_none(), "told once");
        // After the cool-down: one probe.
        let admit = s.admit(&p, t0 + 61 * SECOND);
        assert_eq!(ids(&admit.start), ["a"]);
        assert_eq!(admit.notes, [Note::BreakerHalfOpen]);
        start(&mut s, &p, "a", 4, 9);
        // The probe succeeds: closed again.
        s.ended(&"a".into(), Outcome::Done(Status::Completed), t0 + 62 * SECOND).unwrap();
        assert!(matches!(s.breaker.state(), BreakerState::Closed { consecutive_failures: 0 }));
    }

    #[test]
    fn a_usage_limit_pauses_every_start_and_spends_no_attempt() {
        let p = three();
        let mut s = RunState::new(policies(true, 3));
        let now = Instant::now();
        start(&mut s, &p, "a", 1, 3);
        let c = s.ended(&"a".into(), Outcome::Limited { wait: 600 * SECOND, reason: limit() }, now).unwrap();
        assert_eq!(c.plan, PlanChange::Pending);
        assert_eq!(c.pause.map(|(t, _)| t), Some(now + 600 * SECOND));
        let admit = s.admit(&p, now + 599 * SECOND);
        assert!(admit.start.is_empty());
        assert_eq!(admit.wake, Some(now + 600 * SECOND));
        // A shorter pause does not cut the longer one short.
        start(&mut s, &p, "b", 1, 3);
        assert!(s.ended(&"b".into(), Outcome::Limited { wait: SECOND, reason: limit() }, now).unwrap().pause.is_none());
        assert!(!s.admit(&p, now + 600 * SECOND).start.is_empty());
        // Limits say nothing about the agent's health.
        assert!(matches!(s.breaker.state(), BreakerState::Closed { consecutive_failures: 0 }));
    }

    #[test]
    fn a_long_limit_moves_the_tasks_of_its_agent_to_the_fallback_and_each_agent_waits_apart() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g}\n  - {id: b, name: B, parallel_group: g}\n  - {id: c, name: C, agent: gemini, parallel_group: g}\n");
        let mut pol = policies(true, 3);
        pol.routing = Routing {
            default: "claude".into(),
            fallback: vec!["codex".into()],
            known: ["claude", "codex", "gemini"].map(String::from).into(),
            failover_after: 900 * SECOND,
        };
        let mut s = RunState::new(pol);
        let now = Instant::now();
        let on = |a: &Admit| a.start.iter().map(|(t, agent)| format!("{t}@{agent}")).collect::<Vec<_>>();
        assert_eq!(on(&s.admit(&p, now)), ["a@claude", "b@claude", "c@gemini"]);
        // a runs on Claude and meets a 5-hour limit: it goes back to pending, spends nothing,
        // and runs on Codex at once; nothing pauses.
        start_on(&mut s, &p, "a", "claude");
        let c = s.ended(&"a".into(), Outcome::Limited { wait: 18_000 * SECOND, reason: limit() }, now).unwrap();
        assert_eq!(c.plan, PlanChange::Pending);
        assert!(c.pause.is_none());
        assert!(matches!(&c.notes[..], [Note::Failover { from, to, .. }] if from == "claude" && to == "codex"), "{:?}", c.notes);
        assert_eq!(on(&s.admit(&p, now)), ["a@codex", "b@codex", "c@gemini"]);
        // Gemini's short limit holds only its own task, until its reset.
        start_on(&mut s, &p, "c", "gemini");
        let c = s.ended(&"c".into(), Outcome::Limited { wait: 60 * SECOND, reason: limit() }, now).unwrap();
        assert_eq!(c.pause.map(|(t, _)| t), Some(now + 60 * SECOND), "a limit it waits out is told");
        let admit = s.admit(&p, now);
        assert_eq!(on(&admit), ["a@codex", "b@codex"]);
        assert_eq!(admit.wake, Some(now + 60 * SECOND));
        // Codex limited too: Claude's tasks wait for the earliest reset of the two.
        start_on(&mut s, &p, "a", "codex");
        s.ended(&"a".into(), Outcome::Limited { wait: 7_200 * SECOND, reason: limit() }, now).unwrap();
        let admit = s.admit(&p, now + 61 * SECOND);
        assert_eq!(on(&admit), ["c@gemini"]);
        assert_eq!(admit.wake, Some(now + 7_200 * SECOND));
        // After Claude's reset its tasks are Claude's again.
        assert_eq!(on(&s.admit(&p, now + 18_001 * SECOND))[..2], ["a@claude", "b@claude"]);
    }

    #[test]
    fn a_run_whose_agents_are_all_limited_from_the_start_says_until_when_it_waits() {
        let p = three();
        let mut pol = policies(false, 1);
        pol.routing = Routing { default: "claude".into(), fallback: vec!["codex".into()], known: ["claude", "codex"].map(String::from).into(), failover_after: 900 * SECOND };
        let mut s = RunState::new(pol);
        let (at, now) = (jiff::Timestamp::now(), Instant::now());
        let limit = |agent: &str, secs: i64| crate::store::query::AgentLimit { agent: agent.into(), until: (at + jiff::SignedDuration::from_secs(secs)).to_string(), message: None };
        let notes = s.known_limits(&[limit("claude", 18_000), limit("codex", 7_200)], at, now);
        assert_eq!(notes.len(), 2);
        let admit = s.admit(&p, now);
        assert!(admit.start.is_empty());
        let (until, reason) = admit.waiting.expect("the wait is told");
        assert!(until.duration_since(now).as_secs().abs_diff(7_200) <= 1, "the earliest reset");
        assert!(matches!(reason, WaitReason::UsageLimit { agent: None, .. }), "{reason:?}");
        assert!(s.admit(&p, now).waiting.is_none(), "told once");
    }

    #[test]
    fn a_sequential_run_waits_for_its_next_task_s_agent() {
        let p = three();
        let mut s = RunState::new(policies(false, 1));
        let now = Instant::now();
        start(&mut s, &p, "a", 1, 3);
        s.ended(&"a".into(), Outcome::Limited { wait: 18_000 * SECOND, reason: limit() }, now).unwrap();
        let admit = s.admit(&p, now);
        assert!(admit.start.is_empty(), "b must not jump the queue");
        assert_eq!(admit.wake, Some(now + 18_000 * SECOND));
    }

    #[test]
    fn throttling_backs_off_and_halves_the_agents_started_at_once() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g}\n  - {id: b, name: B, parallel_group: g}\n  - {id: c, name: C, parallel_group: g}\n  - {id: d, name: D, parallel_group: g}\n");
        let mut s = RunState::new(policies(true, 4));
        let now = Instant::now();
        start(&mut s, &p, "a", 1, 3);
        let c = s.ended(&"a".into(), Outcome::Throttled { jitter: 0.5, message: "429".into() }, now).unwrap();
        assert_eq!(c.plan, PlanChange::Pending);
        assert_eq!(c.notes, [Note::Throttling { limit: 2 }]);
        let (until, _) = c.pause.unwrap();
        assert!(s.admit(&p, now).start.is_empty());
        assert_eq!(s.admit(&p, until).start.len(), 2);
        for n in 2..=3 {
            start(&mut s, &p, "d", 1, 3);
            let c = s.ended(&"d".into(), Outcome::Throttled { jitter: 0.5, message: "429".into() }, until).unwrap();
            assert_eq!(c.warning.is_some(), n == 3);
        }
    }

    #[test]
    fn a_lost_attempt_is_not_counted_backs_off_and_is_counted_in_a_row_until_an_agent_ends_one() {
        let p = three();
        let mut s = RunState::new(policies(true, 2));
        let now = Instant::now();
        for n in 1..=2 {
            start(&mut s, &p, "a", 1, 3);
            let c = s.ended(&"a".into(), Outcome::Lost, now).unwrap();
            assert_eq!(c.plan, PlanChange::Pending, "not an attempt");
            assert_eq!(s.lost_in_a_row(), n);
            assert!(!s.admit(&p, now).start.iter().any(|(id, _)| id.as_str() == "a"), "a waits out a back-off");
        }
        start(&mut s, &p, "a", 1, 3);
        s.ended(&"a".into(), Outcome::Failed { conflict: false }, now).unwrap();
        assert_eq!(s.lost_in_a_row(), 0, "an attempt its agent ended breaks the run of losses");
    }

    #[test]
    fn a_stop_ends_the_run_once_running_attempts_are_done() {
        let p = three();
        let mut s = RunState::new(policies(true, 2));
        let now = Instant::now();
        start(&mut s, &p, "a", 1, 3);
        assert!(s.stop_requested());
        assert!(!s.stop_requested(), "told once");
        assert!(s.admit(&p, now).start.is_empty());
        assert_eq!(s.ends_now(&p), None, "a still runs");
        s.ended(&"a".into(), Outcome::Interrupted, now).unwrap();
        assert_eq!(s.ends_now(&p), Some((Exit::Stopped, None)));
    }

    #[test]
    fn a_budget_that_cannot_pay_for_the_next_attempt_starts_none_and_ends_with_6_once_the_running_finish() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g}\n  - {id: b, name: B, parallel_group: g}\n  - {id: c, name: C, parallel_group: g}\n");
        let budget = Budget::new(Some((1.0, 0.0)), None, vec![0.4], 0.0);
        let mut s = RunState::new(Policies { budget, ..policies(true, 3) });
        let now = Instant::now();
        // $1 left, $0.40 an attempt: two start; the third waits for their real costs.
        let a = s.admit(&p, now);
        assert_eq!(ids(&a.start), ["a", "b"]);
        assert!(a.notes.iter().all(|n| !matches!(n, Note::BudgetExhausted { .. })), "{:?}", a.notes);
        assert!((s.session_cap().unwrap() - 1.0).abs() < 1e-12, "the first session may spend all that is left");
        start(&mut s, &p, "a", 1, 3);
        assert!((s.session_cap().unwrap() - 0.6).abs() < 1e-12, "the second, what the first does not hold");
        start(&mut s, &p, "b", 1, 3);
        assert!(s.admit(&p, now).start.is_empty());
        s.spent(0.4);
        s.sample(0.4);
        s.ended(&"a".into(), Outcome::Done(Status::Completed), now).unwrap();
        let held = s.admit(&p, now);
        assert!(held.start.is_empty() && held.notes.is_empty(), "b holds $0.40 of the $0.60 left: c waits, the run goes on");
        assert_eq!(s.ends_now(&p), None);
        s.spent(0.4);
        s.sample(0.4);
        s.ended(&"b".into(), Outcome::Done(Status::Completed), now).unwrap();
        let ended = s.admit(&p, now);
        assert!(ended.start.is_empty());
        assert!(matches!(ended.notes.as_slice(), [Note::BudgetExhausted { running: 0, .. }]), "{:?}", ended.notes);
        assert_eq!(s.ends_now(&p), Some((Exit::BudgetExhausted, None)));
    }

    #[test]
    fn a_session_stopped_at_its_spending_cap_spends_no_attempt_and_ends_the_run_with_6() {
        let p = three();
        let budget = Budget::new(None, Some(0.5), Vec::new(), 0.0);
        let mut s = RunState::new(Policies { budget, ..policies(false, 1) });
        let now = Instant::now();
        assert_eq!(ids(&s.admit(&p, now).start), ["a"]);
        start(&mut s, &p, "a", 1, 3);
        s.spent(0.52);
        let c = s.ended(&"a".into(), Outcome::Capped, now).unwrap();
        assert_eq!(c.plan, PlanChange::Pending, "back to pending, no attempt counted");
        assert!(matches!(c.notes.as_slice(), [Note::BudgetExhausted { remaining_usd, .. }] if *remaining_usd == 0.0), "{:?}", c.notes);
        assert!(s.admit(&p, now).start.is_empty());
        assert_eq!(s.ends_now(&p), Some((Exit::BudgetExhausted, None)));
    }

    #[test]
    fn a_stop_during_the_last_task_stops_nothing() {
        let mut p = three();
        let mut s = RunState::new(policies(false, 1));
        let now = Instant::now();
        set(&mut p, "a", Status::Completed);
        set(&mut p, "b", Status::Completed);
        start(&mut s, &p, "c", 1, 3);
        s.stop_requested();
        s.ended(&"c".into(), Outcome::Done(Status::Completed), now).unwrap();
        set(&mut p, "c", Status::Completed);
        assert_eq!(s.ends_now(&p), Some((Exit::Completed, None)));
        // With a task left, the stop is a stop.
        set(&mut p, "c", Status::Pending);
        assert_eq!(s.ends_now(&p), Some((Exit::Stopped, None)));
    }

    #[test]
    fn an_error_outranks_a_stop() {
        let mut s = RunState::new(policies(false, 1));
        s.stop_requested();
        s.end(Exit::InvalidInput);
        assert_eq!(s.phase(), Phase::Ending(Exit::InvalidInput));
        s.end(Exit::Stopped);
        assert_eq!(s.phase(), Phase::Ending(Exit::InvalidInput));
    }

    #[test]
    fn single_task_starts_one_and_ends_when_it_is_final() {
        let mut p = three();
        let mut s = RunState::new(Policies { single_task: true, ..policies(true, 3) });
        let now = Instant::now();
        assert_eq!(ids(&s.admit(&p, now).start), ["a"]);
        start(&mut s, &p, "a", 1, 3);
        s.ended(&"a".into(), Outcome::Failed { conflict: false }, now).unwrap();
        // Retrying: only a may start, and the run does not end.
        assert_eq!(s.ends_now(&p), None);
        assert_eq!(ids(&s.admit(&p, now + 2 * SECOND).start), ["a"]);
        set(&mut p, "a", Status::Completed);
        assert_eq!(s.ends_now(&p), Some((Exit::Completed, Some(Note::SingleTaskDone))));
    }

    #[test]
    fn an_idle_run_ends_completed_failed_or_blocked() {
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B, depends_on: [a]}\n");
        let s = RunState::new(policies(false, 1));
        set(&mut p, "a", Status::Completed);
        set(&mut p, "b", Status::Completed);
        assert_eq!(s.idle_exit(&p).0, Exit::Completed);
        set(&mut p, "a", Status::Failed);
        set(&mut p, "b", Status::Pending);
        let (exit, blocked) = s.idle_exit(&p);
        assert_eq!(exit, Exit::Blocked);
        assert_eq!(blocked[0].0.as_str(), "b");
    }

    #[test]
    fn resume_from_leaves_earlier_tasks_out_and_blocks_what_waits_on_them() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B}\n  - {id: c, name: C, depends_on: [a]}\n");
        let exclude = left_out(&p, Some("b"));
        assert_eq!(exclude.len(), 1);
        let mut s = RunState::new(Policies { exclude, ..policies(false, 1) });
        assert_eq!(ids(&s.admit(&p, Instant::now()).start), ["b"]);
        let blocked = never_runnable(&p, s.excluded());
        assert!(matches!(&blocked[..], [(c, Wait::LeftOut(_))] if c.as_str() == "c"));
    }

    #[test]
    fn resuming_names_the_unfinished_tasks_left_out_and_the_start_tasks_status() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, status: completed}\n  - {id: b, name: B}\n  - {id: f, name: F, status: failed}\n  - {id: c, name: C, status: completed}\n  - {id: d, name: D}\n");
        let Note::Resuming { left_out, status, .. } = resuming(&p, "c") else { panic!("not a resuming note") };
        assert_eq!(left_out.iter().map(TaskId::as_str).collect::<Vec<_>>(), ["b"], "done and failed tasks change nothing");
        assert_eq!(status, Status::Completed);
        let text = crate::report::render::note_text(&resuming(&p, "c"));
        assert_eq!(text, "resuming from c: leaving out 1 unfinished task before it (b); it stays as it is; c itself is already completed, so the run goes on with the tasks after it");
        let text = crate::report::render::note_text(&resuming(&p, "a"));
        assert!(text.starts_with("resuming from a: no unfinished task comes before it; a itself is already completed"), "{text}");
    }
}
