//! Which agent a task's attempt runs on: its own (the task's `agent: NAME`, else the default),
//! or — while that one waits out a long usage limit — the next of `[agent] fallback` that is
//! not limited itself. Each agent's limit is kept apart. Pure: time is passed in.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The agents a run may use, and how a task's choice falls back.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// The agent of a task that names none (or names one baton.toml does not define).
    pub default: String,
    /// Where a task goes, in order, while its own agent waits out a long limit.
    pub fallback: Vec<String>,
    /// Every agent a task's `agent:` can name.
    pub known: BTreeSet<String>,
    /// A limit resetting sooner than this is waited out on the same agent.
    pub failover_after: Duration,
}

impl Routing {
    /// One agent for every task (no fallback): `--agent simulated`, and tests.
    pub fn single(name: &str) -> Routing {
        Routing { default: name.to_string(), fallback: Vec::new(), known: BTreeSet::from([name.to_string()]), failover_after: Duration::from_secs(15 * 60) }
    }

    /// The agent a task runs on when none is limited: the one it names, else the default.
    pub fn primary<'a>(&'a self, task_agent: Option<&'a str>) -> &'a str {
        task_agent.filter(|a| self.known.contains(*a)).unwrap_or(&self.default)
    }

    /// The agents a task may run on, in order of preference: its own, then the fallbacks.
    pub fn candidates(&self, task_agent: Option<&str>) -> Vec<String> {
        let primary = self.primary(task_agent);
        std::iter::once(primary).chain(self.fallback.iter().map(String::as_str).filter(|f| *f != primary)).map(str::to_string).collect()
    }
}

/// A usage limit one agent met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub until: Instant,
    /// Long enough that its tasks move to a fallback meanwhile.
    pub failover: bool,
    /// When it was met (a session started after it and answered proves it over).
    pub met: Instant,
}

/// Where a task's next attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Start it now on this agent.
    Run(String),
    /// Every agent it may use is limited: not before this.
    Wait(Instant),
}

/// The usage limits of the run's agents, each kept apart.
#[derive(Debug, Clone, Default)]
pub struct AgentLimits {
    limited: HashMap<String, Limit>,
}

impl AgentLimits {
    /// `agent` met a usage limit that resets at `until`; the later of two limits wins. Whether
    /// its tasks move elsewhere meanwhile: the limit is further away than `failover_after` from
    /// `now` and the routing has a fallback.
    pub fn hit(&mut self, agent: &str, until: Instant, now: Instant, routing: &Routing) -> Limit {
        let failover = until.saturating_duration_since(now) > routing.failover_after && !routing.fallback.is_empty();
        let limit = match self.limited.get(agent) {
            Some(old) if old.until >= until => Limit { until: old.until, failover: old.failover || failover, met: now },
            _ => Limit { until, failover, met: now },
        };
        self.limited.insert(agent.to_string(), limit);
        limit
    }

    /// A limit of `agent` an earlier run recorded, resetting `left` from `now`: honoured when
    /// its tasks can fail over from it (the run has a fallback and the limit is long enough);
    /// otherwise the agent is tried (a limit costs nothing to meet, and a recorded reset may be
    /// a guess). Whether it was taken.
    pub fn recorded(&mut self, agent: &str, left: Duration, now: Instant, routing: &Routing) -> bool {
        if !routing.known.contains(agent) || left <= routing.failover_after || routing.fallback.is_empty() {
            return false;
        }
        self.hit(agent, now + left, now, routing);
        true
    }

    /// `agent` answered a session that started at `started`: a limit it met before that is
    /// over (a session that was running when the limit came proves nothing).
    pub fn answered(&mut self, agent: &str, started: Instant) {
        if self.limited.get(agent).is_some_and(|l| l.met < started) {
            self.limited.remove(agent);
        }
    }

    /// The limit `agent` is under at `now`, if any.
    pub fn of(&self, agent: &str, now: Instant) -> Option<Limit> {
        self.limited.get(agent).copied().filter(|l| l.until > now)
    }

    /// Every agent limited at `now`, with its reset, by name.
    pub fn active(&self, now: Instant) -> Vec<(String, Limit)> {
        let mut out: Vec<(String, Limit)> = self.limited.iter().filter(|(_, l)| l.until > now).map(|(a, l)| (a.clone(), *l)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Where a task whose agents are `candidates` (its own first) goes now. Its own agent under
    /// a short limit keeps it (the limit is waited out there); under a long one, the first
    /// candidate that is not limited takes it; when all are, it waits for the earliest reset.
    pub fn route(&self, candidates: &[String], now: Instant) -> Route {
        let mut earliest: Option<Instant> = None;
        for (i, agent) in candidates.iter().enumerate() {
            match self.of(agent, now) {
                None => return Route::Run(agent.clone()),
                Some(l) if i == 0 && !l.failover => return Route::Wait(l.until),
                Some(l) => earliest = Some(earliest.map_or(l.until, |e| e.min(l.until))),
            }
        }
        Route::Wait(earliest.unwrap_or(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn routing() -> Routing {
        Routing {
            default: "claude".into(),
            fallback: vec!["codex".into(), "gemini".into()],
            known: ["claude", "codex", "gemini", "script"].map(String::from).into(),
            failover_after: 15 * MIN,
        }
    }

    #[test]
    fn a_task_runs_on_the_agent_it_names_else_the_default_then_the_fallbacks() {
        let r = routing();
        assert_eq!(r.candidates(None), ["claude", "codex", "gemini"]);
        assert_eq!(r.candidates(Some("script")), ["script", "codex", "gemini"]);
        assert_eq!(r.candidates(Some("codex")), ["codex", "gemini"], "its own agent is not its fallback too");
        assert_eq!(r.candidates(Some("coder")), ["claude", "codex", "gemini"], "a Claude Code subagent's name runs on the default");
    }

    #[test]
    fn a_long_limit_moves_tasks_to_the_next_free_agent_and_a_short_one_is_waited_out() {
        let (r, now) = (routing(), Instant::now());
        let mut l = AgentLimits::default();
        let c = r.candidates(None);
        assert_eq!(l.route(&c, now), Route::Run("claude".into()));
        let short = l.hit("claude", now + 10 * MIN, now, &r);
        assert!(!short.failover);
        assert_eq!(l.route(&c, now), Route::Wait(now + 10 * MIN), "a 10-minute limit is waited out on Claude");
        let long = l.hit("claude", now + 300 * MIN, now, &r);
        assert!(long.failover);
        assert_eq!(l.route(&c, now), Route::Run("codex".into()));
        l.hit("codex", now + 5 * MIN, now, &r);
        assert_eq!(l.route(&c, now), Route::Run("gemini".into()), "a fallback under any limit is passed over");
        l.hit("gemini", now + 60 * MIN, now, &r);
        assert_eq!(l.route(&c, now), Route::Wait(now + 5 * MIN), "all limited: the earliest reset");
        // Once Claude's limit is over, its tasks go back to it.
        assert_eq!(l.route(&c, now + 301 * MIN), Route::Run("claude".into()));
        assert_eq!(l.active(now).iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["claude", "codex", "gemini"]);
        assert!(l.active(now + 301 * MIN).is_empty());
    }

    #[test]
    fn only_a_session_begun_after_the_limit_proves_it_over() {
        let (r, t0) = (Routing::single("claude"), Instant::now());
        let mut l = AgentLimits::default();
        let before = t0;
        l.hit("claude", t0 + 300 * MIN, t0 + MIN, &r);
        l.answered("claude", before);
        assert!(l.of("claude", t0 + MIN).is_some(), "a session running when the limit came proves nothing");
        l.answered("claude", t0 + 2 * MIN);
        assert!(l.of("claude", t0 + 2 * MIN).is_none());
    }

    #[test]
    fn without_a_fallback_every_limit_is_waited_out_and_the_later_reset_wins() {
        let (r, now) = (Routing::single("claude"), Instant::now());
        let mut l = AgentLimits::default();
        assert!(!l.hit("claude", now + 300 * MIN, now, &r).failover);
        l.hit("claude", now + MIN, now, &r);
        assert_eq!(l.route(&r.candidates(None), now), Route::Wait(now + 300 * MIN));
    }
}
