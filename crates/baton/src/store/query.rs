//! Reading the store: a plan's spending (for the budget), the runs and attempts (`baton
//! history`), the rows costs are added up from (`baton cost`), a plan's tasks' totals (`baton
//! status`).

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{Store, StoreError};
use crate::run::record::TaskUsage;

/// One run, as `baton history` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub plan: String,
    pub plan_name: Option<String>,
    pub kind: String,
    pub command: String,
    pub pid: Option<i64>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i64>,
    /// How it ended; `None` while it runs (or until the next start closes a killed one).
    pub ending: Option<String>,
    pub stopped_by: Option<String>,
    /// Why it ended so, in words (the budget's figures, the error), when it says.
    pub message: Option<String>,
    pub cost_usd: f64,
    pub attempts: Vec<AttemptRow>,
}

/// One attempt (an agent session), as `baton history` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub run_id: i64,
    pub plan: String,
    pub task: String,
    pub kind: String,
    pub session: i64,
    pub attempt: Option<i64>,
    pub agent: String,
    pub named_agent: Option<String>,
    pub model: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_secs: Option<f64>,
    pub outcome: String,
    pub verdict: Option<String>,
    pub message: Option<String>,
    pub cost_usd: Option<f64>,
    pub review_cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub turns: Option<i64>,
    pub waited_secs: Option<f64>,
    pub transcript: Option<String>,
    /// `cost_usd` is baton's estimate from the tokens and `[prices]` (the agent said none).
    pub cost_estimated: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRow>,
}

impl AttemptRow {
    /// What the session and its reviewer cost.
    pub fn total_cost(&self) -> f64 {
        self.cost_usd.unwrap_or(0.0) + self.review_cost_usd.unwrap_or(0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRow {
    pub command: String,
    pub source: String,
    pub exit_code: Option<i64>,
    pub passed: bool,
    pub timed_out: bool,
    pub duration_secs: f64,
}

/// One attempt's cost with what it can be grouped by (`baton cost`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub plan: String,
    pub task: String,
    pub model: Option<String>,
    pub started_at: jiff::Timestamp,
    pub cost_usd: f64,
    pub duration_secs: f64,
    pub counted: bool,
    /// A reviewer's sessions: their cost, under the reviewer's model (no session of its own in
    /// the counts, no time: the attempt's time holds it).
    pub review: bool,
    /// A session that ran and whose cost nobody knows (its agent said none and no `[prices]`
    /// priced it): `cost_usd` is 0 for it, not its cost.
    pub unknown: bool,
    /// `cost_usd` is baton's estimate from the tokens and `[prices]`.
    pub estimated: bool,
}

const ATTEMPT_COLUMNS: &str = "id, run_id, plan, task, kind, session, attempt, agent, named_agent, model, started_at, ended_at, duration_secs, outcome,
    verdict, message, cost_usd, review_cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, turns, waited_secs, transcript,
    cost_estimated";

fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        plan: r.get(2)?,
        task: r.get(3)?,
        kind: r.get(4)?,
        session: r.get(5)?,
        attempt: r.get(6)?,
        agent: r.get(7)?,
        named_agent: r.get(8)?,
        model: r.get(9)?,
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
        duration_secs: r.get(12)?,
        outcome: r.get(13)?,
        verdict: r.get(14)?,
        message: r.get(15)?,
        cost_usd: r.get(16)?,
        review_cost_usd: r.get(17)?,
        input_tokens: r.get(18)?,
        output_tokens: r.get(19)?,
        cache_read_tokens: r.get(20)?,
        cache_creation_tokens: r.get(21)?,
        turns: r.get(22)?,
        waited_secs: r.get(23)?,
        transcript: r.get(24)?,
        cost_estimated: r.get(25)?,
        checks: Vec::new(),
    })
}

/// A run's row (`SELECT {RUN_COLUMNS}`), without its attempts.
fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        plan: r.get(1)?,
        plan_name: r.get(2)?,
        kind: r.get(3)?,
        command: r.get(4)?,
        pid: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        exit_code: r.get(8)?,
        ending: r.get(9)?,
        stopped_by: r.get(10)?,
        cost_usd: super::usd(r.get(11)?),
        message: r.get(12)?,
        attempts: Vec::new(),
    })
}

const RUN_COLUMNS: &str = "id, plan, plan_name, kind, command, pid, started_at, ended_at, exit_code, ending, stopped_by, cost_usd, message";

impl Store {
    /// What the plan's attempts (and their reviewers, and the pipeline's planning sessions
    /// for it) cost over all its runs.
    pub fn plan_spent(&self, plan: &str) -> Result<f64, StoreError> {
        // Run ids start at 1: every run is elsewhere than run 0.
        self.plan_spent_elsewhere(plan, 0)
    }

    /// The agents under a usage limit at `now`, repository-wide (a limit is the account's, not
    /// a plan's): each agent's latest reset still to come, with what the CLI said. A row whose
    /// reset is not a time, or is further than a usage limit can be (8 days), is left out: it
    /// must neither hide a real limit nor bench an agent for years.
    pub fn agent_limits(&self, now: jiff::Timestamp) -> Result<Vec<AgentLimit>, StoreError> {
        let mut st = self
            .conn()
            .prepare_cached(
                "SELECT CAST(agent AS TEXT), CAST(until AS TEXT), CAST(message AS TEXT) FROM waits
                 WHERE kind = 'usage_limit' AND agent IS NOT NULL AND until > ?1 ORDER BY agent, until DESC",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![super::stamp(now)], |r| Ok(AgentLimit { agent: r.get(0)?, until: r.get(1)?, message: r.get(2)? }))
            .map_err(|e| self.sql(e))?;
        let latest = now + jiff::SignedDuration::from_hours(8 * 24);
        let mut out: Vec<AgentLimit> = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.sql(e))?;
            let plausible = row.until().is_some_and(|t| t > now && t <= latest);
            if plausible && out.last().is_none_or(|l| l.agent != row.agent) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The waits of the plan's runs going on now that are not over at `now`: a retry's back-off,
    /// a usage limit, throttling, the breaker; soonest end first.
    pub fn open_waits(&self, plan: &str, now: jiff::Timestamp) -> Result<Vec<OpenWait>, StoreError> {
        let mut st = self
            .conn()
            .prepare_cached(
                "SELECT CAST(w.kind AS TEXT), CAST(w.task AS TEXT), CAST(w.message AS TEXT), CAST(w.until AS TEXT), CAST(w.agent AS TEXT) FROM waits w
                 JOIN runs r ON r.id = w.run_id WHERE r.plan = ?1 AND r.ended_at IS NULL AND w.until > ?2 ORDER BY w.until LIMIT 50",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![plan, super::stamp(now)], |r| Ok(OpenWait { kind: r.get(0)?, task: r.get(1)?, message: r.get(2)?, until: r.get(3)?, agent: r.get(4)? }))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// What the plan cost in every run but `run` (its earlier runs, and the runs of it in other
    /// checkouts going on now).
    pub fn plan_spent_elsewhere(&self, plan: &str, run: i64) -> Result<f64, StoreError> {
        self.conn()
            .prepare_cached("SELECT COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0) + COALESCE(review_cost_usd, 0)), 0) FROM attempts WHERE plan = ?1 AND run_id <> ?2")
            .and_then(|mut st| st.query_row(params![plan, run], |r| r.get(0)))
            .map_err(|e| self.sql(e))
    }

    /// The costs of the plan's counted attempts (each with its reviewer's), oldest first, those
    /// whose cost the agent did not say left out: what the next one is expected to cost is
    /// their median.
    pub fn attempt_costs(&self, plan: &str) -> Result<Vec<f64>, StoreError> {
        let mut st = self
            .conn()
            .prepare("SELECT cost_usd + COALESCE(review_cost_usd, 0) FROM attempts WHERE plan = ?1 AND kind = 'task' AND attempt IS NOT NULL AND cost_usd IS NOT NULL ORDER BY started_at")
            .map_err(|e| self.sql(e))?;
        let rows = st.query_map(params![plan], |r| r.get(0)).map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<f64>>>().map_err(|e| self.sql(e))
    }

    /// The runs, newest first (of one plan, or all), at most `limit`, each with its attempts
    /// in the order they started.
    pub fn runs(&self, plan: Option<&str>, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
                   WHERE (?1 IS NULL OR plan = ?1 OR id IN (SELECT run_id FROM attempts WHERE plan = ?1))
                   ORDER BY started_at DESC, id DESC LIMIT ?2"
        );
        let mut st = self.conn().prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![plan, limit.min(i64::MAX as usize) as i64], run_row)
            .map_err(|e| self.sql(e))?;
        let mut runs = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.sql(e))?;
        for run in &mut runs {
            run.attempts = self.attempts_where("run_id = ?1 AND (?2 IS NULL OR plan = ?2)", params![run.id, plan])?;
            if run.ending.is_none() {
                // Still running: what it spent so far.
                run.cost_usd = super::usd(run.attempts.iter().map(AttemptRow::total_cost).sum());
            }
        }
        Ok(runs)
    }

    /// The plans with recorded runs or attempts, by name.
    pub fn plans(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn().prepare("SELECT DISTINCT plan FROM attempts WHERE plan <> '' UNION SELECT DISTINCT plan FROM runs WHERE plan <> '' ORDER BY 1").map_err(|e| self.sql(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| self.sql(e))
    }

    /// Every attempt of one task of a plan, in the order they started, with their checks.
    pub fn task_attempts(&self, plan: &str, task: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let mut rows = self.attempts_where("plan = ?1 AND task = ?2", params![plan, task])?;
        for a in &mut rows {
            let mut st = self
                .conn()
                .prepare_cached("SELECT command, source, exit_code, passed, timed_out, duration_secs FROM checks WHERE attempt_id = ?1 ORDER BY position")
                .map_err(|e| self.sql(e))?;
            let checks = st
                .query_map(params![a.id], |r| {
                    Ok(CheckRow { command: r.get(0)?, source: r.get(1)?, exit_code: r.get(2)?, passed: r.get(3)?, timed_out: r.get(4)?, duration_secs: r.get(5)? })
                })
                .map_err(|e| self.sql(e))?;
            a.checks = checks.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.sql(e))?;
        }
        Ok(rows)
    }

    /// One run, without its attempts; `None` when there is no such run.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), params![id], run_row)
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The tasks of a plan that have an attempt recorded, in the order they first started.
    pub fn task_ids(&self, plan: &str) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn()
            .prepare("SELECT task FROM attempts WHERE plan = ?1 AND kind = 'task' GROUP BY task ORDER BY MIN(started_at), MIN(id)")
            .map_err(|e| self.sql(e))?;
        let rows = st.query_map(params![plan], |r| r.get(0)).map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| self.sql(e))
    }

    fn attempts_where(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<AttemptRow>, StoreError> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE {filter} ORDER BY started_at, id");
        let mut st = self.conn().prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let rows = st.query_map(args, attempt_row).map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.sql(e))
    }

    /// Each attempt's cost since `since` (of one plan, or all), oldest first, for adding up.
    pub fn cost_rows(&self, plan: Option<&str>, since: Option<jiff::Timestamp>) -> Result<Vec<CostRow>, StoreError> {
        // The store's times sort as text (`super::stamp`): the bound is one of them.
        let bound = since.map(super::stamp);
        let mut st = self
            .conn()
            .prepare(
                "SELECT plan, task, model, started_at, COALESCE(cost_usd, 0), COALESCE(duration_secs, 0), attempt IS NOT NULL, 0,
                        cost_usd IS NULL AND estimated_usd IS NULL AND agent_pid IS NOT NULL AND outcome NOT IN ('running', 'interrupted'), cost_estimated
                 FROM attempts WHERE (?1 IS NULL OR plan = ?1) AND (?2 IS NULL OR started_at >= ?2)
                 UNION ALL
                 SELECT a.plan, a.task, COALESCE(v.model, a.model), a.started_at, COALESCE(v.cost_usd, a.review_cost_usd, 0), 0, a.attempt IS NOT NULL, 1, 0, 0
                 FROM attempts a JOIN reviews v ON v.attempt_id = a.id
                 WHERE (?1 IS NULL OR a.plan = ?1) AND (?2 IS NULL OR a.started_at >= ?2)
                 ORDER BY 4",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![plan, bound], |r| {
                let started: String = r.get(3)?;
                Ok(CostRow {
                    plan: r.get(0)?,
                    task: r.get(1)?,
                    model: r.get(2)?,
                    started_at: started.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    cost_usd: r.get(4)?,
                    duration_secs: r.get(5)?,
                    counted: r.get(6)?,
                    review: r.get(7)?,
                    unknown: r.get(8)?,
                    estimated: r.get(9)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<CostRow>>>().map_err(|e| self.sql(e))
    }

    /// Agent time, cost, waiting and the last outcome per task of a plan, over every recorded
    /// session (what `baton status` shows).
    pub fn task_usage(&self, plan: &str) -> Result<HashMap<String, TaskUsage>, StoreError> {
        let mut st = self
            .conn()
            .prepare_cached(
                "SELECT task, COUNT(*), COALESCE(SUM(duration_secs), 0), COALESCE(SUM(COALESCE(cost_usd, 0) + COALESCE(review_cost_usd, 0)), 0),
                        COALESCE(SUM(waited_secs), 0),
                        (SELECT outcome FROM attempts l WHERE l.plan = a.plan AND l.task = a.task AND l.kind = 'task' ORDER BY started_at DESC, id DESC LIMIT 1),
                        (SELECT model FROM attempts m WHERE m.plan = a.plan AND m.task = a.task AND m.kind = 'task' AND m.model IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1)
                 FROM attempts a WHERE plan = ?1 AND kind = 'task' GROUP BY task",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![plan], |r| {
                let sessions: i64 = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    TaskUsage {
                        sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
                        seconds: r.get(2)?,
                        cost_usd: r.get(3)?,
                        waited_seconds: r.get(4)?,
                        last_outcome: r.get(5)?,
                        last_model: r.get(6)?,
                    },
                ))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<HashMap<_, _>>>().map_err(|e| self.sql(e))
    }
}


/// One backlog item the pipeline took up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRow {
    pub item: String,
    pub plan: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `running`, `archived`, `failed`, `stopped` or `interrupted`.
    pub outcome: String,
    pub message: Option<String>,
}

impl Store {
    /// The backlog items the pipeline took up, in the order it did.
    pub fn pipeline_items(&self) -> Result<Vec<ItemRow>, StoreError> {
        let mut st = self.conn().prepare("SELECT item, plan, started_at, ended_at, outcome, message FROM pipeline_items ORDER BY started_at, id").map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| Ok(ItemRow { item: r.get(0)?, plan: r.get(1)?, started_at: r.get(2)?, ended_at: r.get(3)?, outcome: r.get(4)?, message: r.get(5)? }))
            .map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.sql(e))
    }
}

/// The median of some costs (`None` for none).
pub fn median(costs: &[f64]) -> Option<f64> {
    if costs.is_empty() {
        return None;
    }
    let mut v = costs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one run of `plan.yaml` and its attempts: (task, kind, started_at).
    fn store_with(attempts: &[(&str, &str, &str)]) -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_at(&d.path().join("baton.db")).unwrap();
        store
            .conn()
            .execute("INSERT INTO runs (plan, kind, command, pid, started_at) VALUES ('plan.yaml', 'run', 'baton run plan.yaml', 42, '2026-11-30T10:00:00Z')", [])
            .unwrap();
        for (session, (task, kind, at)) in attempts.iter().enumerate() {
            store
                .conn()
                .execute(
                    "INSERT INTO attempts (run_id, plan, task, kind, session, agent, started_at, outcome, cost_usd) VALUES (1, 'plan.yaml', ?1, ?2, ?3, 'claude', ?4, 'completed', 0.5)",
                    params![task, kind, session as i64 + 1, super::super::stamp_text(at)],
                )
                .unwrap();
        }
        (d, store)
    }

    #[test]
    fn a_run_is_found_by_its_id() {
        let (_d, store) = store_with(&[]);
        let run = store.run(1).unwrap().unwrap();
        assert_eq!((run.plan.as_str(), run.pid, run.ending), ("plan.yaml", Some(42), None));
        assert_eq!(store.run(2).unwrap(), None);
    }

    #[test]
    fn task_ids_are_the_plans_tasks_in_the_order_they_first_ran() {
        let (_d, store) =
            store_with(&[("2", "task", "2026-11-30T10:00:02Z"), ("1", "task", "2026-11-30T10:00:01Z"), ("2", "task", "2026-11-30T10:00:03Z"), ("plan:x", "planning", "2026-11-30T10:00:00Z")]);
        assert_eq!(store.task_ids("plan.yaml").unwrap(), ["1", "2"]);
        assert!(store.task_ids("other.yaml").unwrap().is_empty());
    }

    #[test]
    fn since_compares_instants() {
        // A whole second and a fraction of it: as written, `…:05.000000000Z` sorts before
        // `…:05.250000000Z` (without the fixed digits, `…:05Z` would sort after it).
        let (_d, store) = store_with(&[("a", "task", "2026-11-30T10:00:04.9Z"), ("b", "task", "2026-11-30T10:00:05Z"), ("c", "task", "2026-11-30T10:00:05.25Z")]);
        let tasks = |since: &str| -> Vec<String> { store.cost_rows(None, Some(since.parse().unwrap())).unwrap().into_iter().map(|r| r.task).collect() };
        assert_eq!(tasks("2026-11-30T10:00:05Z"), ["b", "c"]);
        assert_eq!(tasks("2026-11-30T10:00:05.1Z"), ["c"]);
        assert_eq!(tasks("2026-11-30T10:00:04Z"), ["a", "b", "c"]);
        assert!(tasks("2026-11-30T10:00:06Z").is_empty());
        assert_eq!(store.cost_rows(Some("plan.yaml"), None).unwrap().len(), 3);
    }
}

/// An agent under a usage limit, as the run history knows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentLimit {
    /// Its name in baton.toml.
    pub agent: String,
    /// When it resets (RFC 3339, UTC).
    pub until: String,
    /// What the CLI said.
    pub message: Option<String>,
}

/// A wait of a run going on (`Store::open_waits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenWait {
    /// `retry`, `usage_limit`, `throttling`, `breaker`.
    pub kind: String,
    pub task: Option<String>,
    pub message: Option<String>,
    /// When it ends (RFC 3339, UTC).
    pub until: String,
    pub agent: Option<String>,
}

impl AgentLimit {
    /// The reset as an instant.
    pub fn until(&self) -> Option<jiff::Timestamp> {
        self.until.parse().ok()
    }
}
