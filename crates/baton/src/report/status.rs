//! `baton status`: the plan's sections and tasks as a calm table, or as JSON.
//!
//! Reads a [`Plan`]; writes nothing. The JSON keeps task ids as strings, exactly as written.

use std::collections::HashMap;

use serde::Serialize;

use crate::report::safe::{one_line, terminal_line, terminal_text};
use crate::run::record::{AttemptRecord, CheckRecord, ReviewRecord, TaskUsage};

use crate::plan::{Plan, Status, Task};

/// How many tasks are in each state.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub pending: usize,
    pub in_progress: usize,
    pub completed: usize,
    pub verified: usize,
    pub failed: usize,
    pub skipped: usize,
    pub suspended: usize,
    pub validation_exhausted: usize,
}

impl Counts {
    pub fn of(plan: &Plan) -> Counts {
        let mut c = Counts::default();
        for t in plan.tasks() {
            c.total += 1;
            match t.status {
                Status::Pending => c.pending += 1,
                Status::InProgress => c.in_progress += 1,
                Status::Completed => c.completed += 1,
                Status::Failed => c.failed += 1,
                Status::Skipped => c.skipped += 1,
                Status::Verified => c.verified += 1,
                Status::Suspended => c.suspended += 1,
                Status::ValidationExhausted => c.validation_exhausted += 1,
            }
        }
        c
    }

    /// "3 of 5 completed · 1 failed · 1 pending": only the parts that are not zero. Verified
    /// tasks are completed too: "3 of 5 completed (2 verified)".
    pub fn sentence(&self) -> String {
        let head = if self.verified == 0 {
            format!("{} of {} completed", self.completed, self.total)
        } else {
            format!("{} of {} completed ({} verified)", self.completed + self.verified, self.total, self.verified)
        };
        let mut parts = vec![head];
        for (n, word) in [
            (self.in_progress, "in progress"),
            (self.failed, "failed"),
            (self.validation_exhausted, "validation exhausted"),
            (self.suspended, "suspended"),
            (self.skipped, "skipped"),
            (self.pending, "pending"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        parts.join(" · ")
    }
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    plan: JsonPlan<'a>,
    /// What the plan cost over all its runs, and its budget (`null` without a run history).
    spending: Option<&'a Spending>,
    /// The agents under a usage limit now, each with its reset (`[]` without a run history).
    agent_limits: &'a [crate::store::query::AgentLimit],
    counts: Counts,
    sections: Vec<JsonSection<'a>>,
    /// The run holding the plan (`report::watch::run_json`), `null` when none does.
    run: serde_json::Value,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    name: Option<&'a str>,
    path: &'a str,
}

#[derive(Serialize)]
struct JsonSection<'a> {
    id: &'a str,
    name: Option<&'a str>,
    status: Option<Status>,
    tasks: Vec<JsonTask<'a>>,
}

#[derive(Serialize)]
struct JsonTask<'a> {
    id: &'a str,
    name: &'a str,
    status: Status,
    attempts: u32,
    max_attempts: u32,
    depends_on: Vec<&'a str>,
    last_error: Option<&'a str>,
    completed_at: Option<&'a str>,
    /// From the attempt records: agent time, cost, waiting on limits, the last outcome.
    usage: Option<&'a TaskUsage>,
    /// The model baton last ran the task with, as the plan says (`model_used`).
    model_used: Option<&'a str>,
    /// Every recorded agent session of the task, in order: its model, checks and review.
    sessions: Vec<JsonSession<'a>>,
}

#[derive(Serialize)]
struct JsonSession<'a> {
    session: u32,
    attempt: Option<u32>,
    started_at: &'a str,
    duration_seconds: f64,
    outcome: &'a str,
    message: &'a str,
    /// The agent it ran on, by its name in baton.toml.
    agent: Option<&'a str>,
    model: Option<&'a str>,
    cost_usd: Option<f64>,
    changed: Option<bool>,
    checks: Vec<JsonCheck<'a>>,
    review: Option<JsonReview<'a>>,
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    command: &'a str,
    from: &'a str,
    passed: bool,
    exit: Option<i32>,
    timed_out: bool,
    duration_seconds: f64,
    /// The file with the command's whole output.
    output: &'a str,
}

#[derive(Serialize)]
struct JsonReview<'a> {
    verdict: Option<&'a str>,
    findings: &'a [String],
    problem: Option<&'a str>,
    model: Option<&'a str>,
    cost_usd: Option<f64>,
}

impl<'a> JsonSession<'a> {
    fn of(r: &'a AttemptRecord) -> JsonSession<'a> {
        JsonSession {
            session: r.session,
            attempt: r.attempt,
            started_at: &r.started_at,
            duration_seconds: r.duration_seconds,
            outcome: &r.outcome,
            message: &r.message,
            agent: r.agent.as_deref(),
            model: r.model.as_deref(),
            cost_usd: r.cost_usd,
            changed: r.changed,
            checks: r.checks.iter().map(JsonCheck::of).collect(),
            review: r.review.as_ref().map(JsonReview::of),
        }
    }
}

impl<'a> JsonCheck<'a> {
    fn of(c: &'a CheckRecord) -> JsonCheck<'a> {
        JsonCheck {
            command: &c.command,
            from: &c.from,
            passed: c.passed,
            exit: c.exit,
            timed_out: c.timed_out,
            duration_seconds: c.duration_seconds,
            output: &c.output,
        }
    }
}

impl<'a> JsonReview<'a> {
    fn of(r: &'a ReviewRecord) -> JsonReview<'a> {
        JsonReview {
            verdict: r.verdict.as_deref(),
            findings: &r.findings,
            problem: r.problem.as_deref(),
            model: r.model.as_deref(),
            cost_usd: r.cost_usd,
        }
    }
}

/// What the attempt records say, per task id.
pub type Totals = HashMap<String, TaskUsage>;

/// The plan's tasks' time and cost and its spending, from the run history (the plan's attempt
/// records imported the first time; a store is made for them when there is none yet). `None`
/// when there is no history and no record to import.
pub fn from_history(root: &std::path::Path, plan: &std::path::Path, records: &crate::run::record::Records, budget: Option<f64>) -> Result<Option<(Totals, Spending)>, crate::store::StoreError> {
    use crate::store::Store;
    let key = crate::store::plan_key(root, plan);
    let store = match Store::open_existing(root)? {
        Some(s) => Some(s),
        None if records.dir().is_dir() => Some(Store::open(root)?),
        None => None,
    };
    let Some(mut store) = store else {
        return Ok(budget.map(|b| (Totals::new(), Spending { spent_usd: 0.0, budget_usd: Some(b), agent_limits: Vec::new() })));
    };
    store.import_records(&key, records, root)?;
    let spending = Spending { spent_usd: store.plan_spent(&key)?, budget_usd: budget, agent_limits: store.agent_limits(jiff::Timestamp::now())? };
    Ok(Some((store.task_usage(&key)?, spending)))
}

/// What `baton status` shows of a plan besides the plan itself: the tasks' time and cost, the
/// plan's spending, and what went wrong reading the run history (the attempt records on disk
/// were read instead).
pub struct Gathered {
    pub totals: Totals,
    pub spending: Option<Spending>,
    pub warning: Option<crate::store::StoreError>,
}

/// The plan's tasks' time and cost and its spending: from the run history, else from the attempt
/// records on disk. `baton status` and `baton serve` both read a plan this way.
pub fn gather(place: &crate::report::watch::Place<'_>, plan: &Plan, records: &crate::run::record::Records) -> Gathered {
    let budget = place.config.budget.for_plan(plan).map(|(b, _)| b);
    match from_history(place.root, place.plan, records, budget) {
        Ok(Some((totals, spending))) => Gathered { totals, spending: Some(spending.of_agents(&place.config.agent_names())), warning: None },
        found => Gathered { totals: records.usage(plan.tasks().map(|t| t.id.to_string())), spending: None, warning: found.err() },
    }
}

/// `baton status --json` of a plan: the plan as loaded, with its history and the run holding it
/// now (`path` as the user named it).
pub fn json_of(place: &crate::report::watch::Place<'_>, plan: &Plan, path: &str) -> (String, Option<crate::store::StoreError>) {
    let records = crate::run::record::Records::new(&place.root.join(&place.config.paths.logs_dir), place.plan);
    let got = gather(place, plan, &records);
    let run = crate::report::watch::run_json(crate::report::watch::run_view(place, plan).as_ref());
    let sessions = plan.tasks().map(|t| (t.id.to_string(), records.all(t.id.as_str()))).collect();
    (json(plan, path, place.config.run.max_attempts, &got.totals, &sessions, run, got.spending.as_ref()), got.warning)
}

/// Every attempt record, per task id, in session order (`Records::all`).
pub type Sessions = HashMap<String, Vec<AttemptRecord>>;

/// What the plan has cost over all its runs (from the run history), and its budget; and the
/// agents under a usage limit now (the history knows them too).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spending {
    pub spent_usd: f64,
    /// `meta.budget_usd` (or `[budget] plan_usd`), when set.
    pub budget_usd: Option<f64>,
    /// In the JSON beside `spending`, as `agent_limits`.
    #[serde(skip)]
    pub agent_limits: Vec<crate::store::query::AgentLimit>,
}

impl Spending {
    /// Only the limits of the agents baton.toml defines now (`names`).
    pub fn of_agents(mut self, names: &[String]) -> Spending {
        self.agent_limits.retain(|l| names.contains(&l.agent));
        self
    }

    /// `spent $0.0246 of the $0.0300 budget ($0.0054 left)`.
    pub fn sentence(&self) -> String {
        match self.budget_usd {
            Some(b) => {
                let left = (b - self.spent_usd).max(0.0);
                format!("spent ${:.4} of the ${b:.4} budget (${left:.4} left)", self.spent_usd)
            }
            None => format!("spent ${:.4} over all runs", self.spent_usd),
        }
    }
}

/// An instant in the local time zone: `17:00 UTC` today, else `2026-12-02 17:00 UTC`.
pub fn local_time(at: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let zone = jiff::tz::TimeZone::system();
    let local = at.to_zoned_datetime(zone.clone());
    if local.date() == now.to_zoned_datetime(zone).date() {
        local.strftime("%H:%M %Z").to_string()
    } else {
        local.strftime("%Y-%m-%d %H:%M %Z").to_string()
    }
}

/// `claude: usage limit until 17:00 UTC (in 4h 59m) — You've hit your limit`.
pub fn limit_line(l: &crate::store::query::AgentLimit, now: jiff::Timestamp) -> String {
    let Some(until) = l.until() else { return format!("{}: usage limit", terminal_line(&l.agent)) };
    let day = local_time(until, now);
    let left = std::time::Duration::try_from(until.duration_since(now)).unwrap_or_default();
    let said = l.message.as_deref().filter(|m| !m.trim().is_empty()).map(|m| format!(" — {}", cut(&terminal_line(m), 80))).unwrap_or_default();
    format!("{}: usage limit until {day} (in {}){said}", terminal_line(&l.agent), super::render::human(left))
}

/// The status as pretty JSON; `run` is what is known of the run holding the plan.
pub fn json(plan: &Plan, path: &str, default_max_attempts: u32, totals: &Totals, sessions: &Sessions, run: serde_json::Value, spending: Option<&Spending>) -> String {
    let doc = JsonStatus {
        plan: JsonPlan {
            name: plan.meta.name.as_deref(),
            path,
        },
        spending,
        agent_limits: spending.map_or(&[], |s| s.agent_limits.as_slice()),
        counts: Counts::of(plan),
        sections: plan
            .sections
            .iter()
            .map(|s| JsonSection {
                id: &s.id,
                name: s.name.as_deref(),
                status: crate::plan::derived_section_status(&s.tasks).or(s.status),
                tasks: s
                    .tasks
                    .iter()
                    .map(|t| JsonTask {
                        id: t.id.as_str(),
                        name: &t.name,
                        status: t.status,
                        attempts: t.attempts,
                        max_attempts: plan.max_attempts(t, default_max_attempts),
                        depends_on: t.depends_on.iter().map(|d| d.as_str()).collect(),
                        last_error: t.last_error.as_deref(),
                        completed_at: t.completed_at.as_deref(),
                        usage: totals.get(t.id.as_str()),
                        model_used: t.model_used.as_deref(),
                        sessions: sessions.get(t.id.as_str()).into_iter().flatten().map(JsonSession::of).collect(),
                    })
                    .collect(),
            })
            .collect(),
        run,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The status as a table for a terminal `width` columns wide.
pub fn table(plan: &Plan, path: &str, default_max_attempts: u32, width: usize, totals: &Totals, spending: Option<&Spending>) -> String {
    let mut out = String::new();
    let title = plan.meta.name.as_deref().unwrap_or("(unnamed plan)");
    out.push_str(&format!("{} — {path}\n", terminal_line(title)));
    out.push_str(&Counts::of(plan).sentence());
    if let Some(s) = spending.filter(|s| s.spent_usd > 0.0 || s.budget_usd.is_some()) {
        out.push_str(" · ");
        out.push_str(&s.sentence());
    }
    out.push('\n');
    for l in spending.map_or(&[][..], |s| s.agent_limits.as_slice()) {
        out.push_str(&limit_line(l, jiff::Timestamp::now()));
        out.push('\n');
    }

    let id_w = plan.tasks().map(|t| t.id.as_str().chars().count()).max().unwrap_or(2).max(2);
    let name_w = plan
        .tasks()
        .map(|t| terminal_line(&t.name).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    // A MODEL column only when some task has one to show.
    let model_w = plan.tasks().filter_map(|t| model_of(t, totals)).map(|m| terminal_line(m).chars().count()).max().map(|w| w.clamp(5, MODEL_CHARS));
    out.push('\n');
    if plan.tasks().next().is_some() {
        out.push_str(&header(plan, id_w, name_w, !totals.is_empty(), model_w));
        out.push('\n');
    }
    for (n, s) in plan.sections.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let status = crate::plan::derived_section_status(&s.tasks).or(s.status);
        let label = match &s.name {
            Some(n) => format!("{}  {}", terminal_line(&s.id), terminal_line(n)),
            None => terminal_line(&s.id),
        };
        match status {
            Some(st) => out.push_str(&format!("{label}  ({st})\n")),
            None => out.push_str(&format!("{label}\n")),
        }
        if s.tasks.is_empty() {
            out.push_str("  (no tasks)\n");
        }
        for t in &s.tasks {
            let total = (!totals.is_empty()).then(|| totals.get(t.id.as_str()));
            let columns = Columns { id_w, name_w, model_w };
            out.push_str(&task_row(plan, t, &columns, default_max_attempts, width, total, model_of(t, totals)));
            out.push('\n');
        }
    }
    // Anything else from the plan (ids, errors the agents wrote) is made safe here too.
    terminal_text(&out)
}

/// The widest model name the MODEL column shows; a longer one is cut.
const MODEL_CHARS: usize = 24;

/// The model a task last ran with: its last recorded session's, else the plan's `model_used`.
fn model_of<'a>(t: &'a Task, totals: &'a Totals) -> Option<&'a str> {
    totals.get(t.id.as_str()).and_then(|u| u.last_model.as_deref()).or(t.model_used.as_deref()).filter(|m| !m.trim().is_empty())
}

/// The widths of the table's variable columns; `model_w` is `None` when there is no MODEL column.
#[derive(Clone, Copy)]
struct Columns {
    id_w: usize,
    name_w: usize,
    model_w: Option<usize>,
}

/// The column names above the rows, in the rows' widths (see [`task_row`]).
fn header(plan: &Plan, id_w: usize, name_w: usize, usage: bool, model_w: Option<usize>) -> String {
    let mut row = format!("  {}  {}  {}  {:>5}", pad("ID", id_w), pad("TASK", name_w), pad("STATUS", status_width(plan)), "TRIES");
    if usage {
        row.push_str(&format!("  {:>7}  {:>8}", "TIME", "COST"));
    }
    if let Some(w) = model_w {
        row.push_str(&format!("  {}", pad("MODEL", w)));
    }
    if plan.tasks().any(|t| t.last_error.is_some() && !t.status.is_done()) {
        row.push_str("  LAST ERROR");
    }
    row
}

fn task_row(
    plan: &Plan,
    t: &Task,
    columns: &Columns,
    default_max: u32,
    width: usize,
    // None: no usage column at all; Some(None): this task has no recorded attempt.
    total: Option<Option<&TaskUsage>>,
    model: Option<&str>,
) -> String {
    let Columns { id_w, name_w, model_w } = *columns;
    // `baton retry` may give a task one attempt beyond its maximum: its last is `4/4`, as the
    // run says it, never `4/3`.
    let attempts = format!("{}/{}", t.attempts, plan.max_attempts(t, default_max).max(t.attempts));
    let mut row = format!(
        "  {}  {}  {}  {:>5}",
        pad(t.id.as_str(), id_w),
        pad(&cut(&terminal_line(&t.name), name_w), name_w),
        pad(t.status.as_str(), status_width(plan)),
        attempts,
    );
    if let Some(total) = total {
        let (time, cost) = match total {
            Some(u) => (
                crate::report::event::human_secs(u.seconds),
                if u.cost_usd > 0.0 { format!("${:.4}", u.cost_usd) } else { String::new() },
            ),
            None => (String::new(), String::new()),
        };
        row.push_str(&format!("  {time:>7}  {cost:>8}"));
    }
    if let Some(w) = model_w {
        row.push_str(&format!("  {}", pad(&cut(&terminal_line(model.unwrap_or("")), w), w)));
    }
    if let Some(total) = total {
        // A task waiting out a limit says so: it is not failing.
        if let Some(u) = total.filter(|u| t.status == Status::Pending && u.waited_seconds > 0.0) {
            if let Some(kind) = u.last_outcome.as_deref().filter(|o| *o == "limited" || *o == "throttled") {
                let what = if kind == "limited" { "usage limit" } else { "throttled" };
                row.push_str(&format!(
                    "  ({what}; waited {})",
                    crate::report::event::human_secs(u.waited_seconds)
                ));
            }
        }
    }
    if let Some(err) = t.last_error.as_deref().filter(|_| !t.status.is_done()) {
        let room = width.saturating_sub(row.chars().count() + 2).max(20);
        row.push_str("  ");
        row.push_str(&cut(&one_line(err), room));
    }
    row.trim_end().to_string()
}

/// The status column: as wide as `in_progress`, or the longest status in the plan.
fn status_width(plan: &Plan) -> usize {
    plan.tasks().map(|t| t.status.as_str().len()).max().unwrap_or(0).max(Status::InProgress.as_str().len())
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// At most `max` characters in all, with `…` when cut: for columns of a fixed width.
pub fn cut(s: &str, max: usize) -> String {
    match s.chars().count() <= max {
        true => s.to_string(),
        false => crate::report::safe::cut(s, max.saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::{AttemptRecord, CheckRecord, Records, ReviewRecord};
    use std::path::Path;

    const PLAN: &str = "meta:\n  name: P\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: '1.1'\n    name: Checked\n    status: verified\n    attempts: 2\n    model_used: opus\n  - id: '1.2'\n    name: Plain\n    status: completed\n    attempts: 1\n  - id: '1.3'\n    name: Waiting\n    status: pending\n";

    fn record(task: &str, session: u32, model: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            task: task.into(),
            session,
            attempt: Some(session),
            started_at: format!("2026-01-01T00:00:0{session}Z"),
            duration_seconds: 1.5,
            outcome: "completed".into(),
            message: "done".into(),
            cost_usd: Some(0.5),
            model: model.map(str::to_string),
            changed: Some(true),
            ..Default::default()
        }
    }

    /// Task 1.1: a first session whose check failed and a second the reviewer passed.
    fn records(dir: &Path) -> Records {
        let r = Records::new(dir, Path::new("plan.yaml"));
        let mut first = record("1.1", 1, Some("sonnet"));
        first.outcome = "failed".into();
        first.changed = Some(false);
        first.checks = vec![CheckRecord {
            command: "test -f out.txt".into(),
            from: "task".into(),
            exit: Some(1),
            timed_out: false,
            signal: None,
            passed: false,
            duration_seconds: 0.25,
            output: "/logs/check-1.out".into(),
            tail: "no out.txt\n".into(),
        }];
        let mut second = record("1.1", 2, Some("opus"));
        second.review = Some(ReviewRecord {
            verdict: Some("PASS".into()),
            findings: vec!["looks right".into()],
            problem: None,
            limit_resets_at: None,
            sessions: 1,
            model: Some("haiku".into()),
            cost_usd: Some(0.1),
            transcripts: vec!["/logs/review-2-1.jsonl".into()],
        });
        for rec in [first, second, record("1.2", 1, None)] {
            std::fs::create_dir_all(r.task_dir(&rec.task)).unwrap();
            std::fs::write(r.transcript(&rec.task, rec.session), "").unwrap();
            r.write(&rec).unwrap();
        }
        r
    }

    fn inputs(plan: &Plan, r: &Records) -> (Totals, Sessions) {
        let totals = r.usage(plan.tasks().map(|t| t.id.to_string()));
        let sessions = plan.tasks().map(|t| (t.id.to_string(), r.all(t.id.as_str()))).collect();
        (totals, sessions)
    }

    #[test]
    fn json_carries_every_session_with_its_checks_and_review() {
        let plan = crate::plan::parse_plan(PLAN).unwrap();
        let d = tempfile::tempdir().unwrap();
        let (totals, sessions) = inputs(&plan, &records(d.path()));
        let v: serde_json::Value = serde_json::from_str(&json(&plan, "plan.yaml", 3, &totals, &sessions, serde_json::Value::Null, None)).unwrap();
        let t = &v["sections"][0]["tasks"][0];
        assert_eq!(t["model_used"], "opus");
        assert_eq!(t["usage"]["sessions"], 2);
        assert!(t["usage"].get("last_model").is_none(), "usage keeps its keys: {}", t["usage"]);
        let s = t["sessions"].as_array().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((&s[0]["session"], &s[0]["model"], &s[0]["outcome"], &s[0]["changed"]), (&1.into(), &"sonnet".into(), &"failed".into(), &false.into()));
        let check = &s[0]["checks"][0];
        assert_eq!(
            (&check["command"], &check["from"], &check["passed"], &check["exit"], &check["timed_out"], &check["output"]),
            (&"test -f out.txt".into(), &"task".into(), &false.into(), &1.into(), &false.into(), &"/logs/check-1.out".into())
        );
        assert!(s[0]["review"].is_null());
        assert_eq!(s[1]["review"]["verdict"], "PASS");
        assert_eq!(s[1]["review"]["findings"], serde_json::json!(["looks right"]));
        assert!(s[1]["review"]["problem"].is_null());
        // A task without records has an empty list and no model.
        let waiting = &v["sections"][0]["tasks"][2];
        assert_eq!((&waiting["sessions"], &waiting["model_used"]), (&serde_json::json!([]), &serde_json::Value::Null));
        // The new keys come after the ones that were there.
        let text = json(&plan, "plan.yaml", 3, &totals, &sessions, serde_json::Value::Null, None);
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        assert!(at("completed_at") < at("usage") && at("usage") < at("model_used") && at("model_used") < text.find("\"sessions\": [").unwrap(), "{text}");
    }

    #[test]
    fn the_table_shows_the_model_column_only_when_a_task_has_a_model() {
        let plan = crate::plan::parse_plan(PLAN).unwrap();
        let d = tempfile::tempdir().unwrap();
        let (totals, _) = inputs(&plan, &records(d.path()));
        let text = table(&plan, "plan.yaml", 3, 100, &totals, None);
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().find(|l| l.trim_start().starts_with("ID")).unwrap();
        let row = lines.iter().find(|l| l.contains("Checked")).unwrap();
        assert_eq!(header.find("MODEL"), row.find("opus"), "MODEL over the last session's model:\n{text}");
        assert!(row.contains("verified") && lines.iter().any(|l| l.contains("Plain") && l.contains("completed")), "{text}");
        assert!(!lines.iter().find(|l| l.contains("Plain")).unwrap().contains("opus"), "{text}");

        // Without records, the plan's model_used is shown.
        let text = table(&plan, "plan.yaml", 3, 100, &Totals::new(), None);
        assert!(text.contains("MODEL") && text.lines().any(|l| l.contains("Checked") && l.trim_end().ends_with("opus")), "{text}");

        // No model anywhere: no column.
        let bare = crate::plan::parse_plan(&PLAN.replace("    model_used: opus\n", "")).unwrap();
        assert!(!table(&bare, "plan.yaml", 3, 100, &Totals::new(), None).contains("MODEL"));
    }

    #[test]
    fn a_long_model_name_is_cut_to_its_column() {
        let plan = crate::plan::parse_plan(&PLAN.replace("model_used: opus", "model_used: claude-opus-4-1-20250805-with-a-very-long-suffix")).unwrap();
        let text = table(&plan, "plan.yaml", 3, 80, &Totals::new(), None);
        let row = text.lines().find(|l| l.contains("Checked")).unwrap();
        assert!(row.ends_with('…') && !row.contains("suffix"), "{text}");
    }
}
