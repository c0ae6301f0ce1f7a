//! `/plans/{plan}`: one plan — its state and the Stop button, the agents' usage limits, the
//! running tasks (elapsed, attempt, model, latest tool call), the failed ones with their error,
//! the blocked ones with why, the dependency graph, and every task in a table.

use std::fmt::Write;

use super::layout::{money, moment, progress_bar, status_badge};
use crate::plan::{Plan, Status};
use crate::report::status::{Counts, Gathered};
use crate::report::watch::RunView;
use crate::serve::html::{escape, path_segment};

/// What the plan page shows, read once.
pub struct PlanView<'a> {
    /// Its id in URLs.
    pub id: &'a str,
    /// The path from the repository root.
    pub path: &'a str,
    pub plan: &'a Plan,
    pub gathered: &'a Gathered,
    pub run: Option<&'a RunView>,
    /// A stop was asked of the run (its stop file is there).
    pub stopping: bool,
    /// The waits of the run going on (a retry's back-off, throttling, a limit).
    pub waits: &'a [crate::store::query::OpenWait],
    /// `[run] max_attempts`: a task's most attempts when neither it nor the plan says.
    pub max_attempts: u32,
    /// Now, for the limits' "in 4h 59m".
    pub now: jiff::Timestamp,
}

/// The longest part of an error shown in the failed list before "more".
const ERROR_SHOWN: usize = 600;

/// The plan page's `<main>`; `graph` is the dependency graph's fragment.
pub fn main(v: &PlanView<'_>, graph: &str) -> String {
    let plan = v.plan;
    let counts = Counts::of(plan);
    let state = crate::serve::api::plan_state(Some(&counts), v.run.is_some(), v.stopping, false);
    let base = format!("/plans/{}", path_segment(v.id));
    let mut out = String::with_capacity(64 * 1024);
    let title = plan.meta.name.as_deref().unwrap_or(v.id);
    let _ = write!(
        out,
        "<div class=\"crumbs\"><a href=\"/\">Plans</a> / {id}</div><h1 id=\"plan-title\" data-plan=\"{id}\">{title} <span class=\"badge state-{state}\" id=\"plan-state\">{state}</span></h1>",
        id = escape(v.id),
        title = escape(title),
    );
    let _ = write!(out, "<div class=\"muted small\">{} · <span id=\"counts\">{}</span>", escape(v.path), escape(&counts.sentence()));
    if let Some(s) = &v.gathered.spending {
        let _ = write!(out, " · <span id=\"spending\">{}</span>", escape(&s.sentence()));
    }
    out.push_str("</div>");
    out.push_str(&progress_bar(&counts));
    if let Some(run) = v.run {
        if v.stopping {
            let _ = write!(out, "<p class=\"notice\" id=\"stopping\">Stop asked: the run (pid {}) starts no new task, lets the running ones finish, saves and exits.</p>", run.pid);
        } else {
            let _ = write!(
                out,
                "<p><button class=\"stop\" id=\"stop\" data-stop=\"/api/plans/{}/stop\">Stop the run</button> <span class=\"muted small\">pid {} · the same as <code>baton stop</code>: running tasks finish and are saved</span> <span id=\"stop-said\" class=\"small\"></span></p>",
                path_segment(v.id),
                run.pid
            );
        }
    }
    if let Some(w) = &v.gathered.warning {
        let _ = write!(out, "<p class=\"notice\">The run history cannot be read ({}); times and costs come from the attempt records.</p>", escape(&w.to_string()));
    }
    // A limit matters to a plan with work left; a finished one need not hear of it.
    let work_left = v.run.is_some() || counts.pending + counts.in_progress > 0;
    if let Some(s) = v.gathered.spending.as_ref().filter(|_| work_left) {
        for l in &s.agent_limits {
            let Some(until) = l.until() else { continue };
            if until <= v.now {
                continue;
            }
            let _ = write!(
                out,
                "<p class=\"notice limit\" data-agent=\"{a}\"><b>{a}</b>: usage limit until {at} ({left}){msg}</p>",
                a = escape(&l.agent),
                at = escape(&crate::report::status::local_time(until, v.now)),
                left = moment(&l.until, "until", ""),
                msg = l.message.as_deref().map(|m| format!(" — {}", escape(m))).unwrap_or_default(),
            );
        }
    }
    running(&mut out, v, &base);
    failed(&mut out, plan, &base);
    blocked(&mut out, plan, &base);
    if !graph.is_empty() {
        let _ = write!(
            out,
            "<h2>Graph</h2>{graph}<p class=\"muted small legend\">Left to right in the order tasks can run; a band per section. Colours: the task's status. Thick outline: the critical path, the longest chain of unfinished tasks. Dashed frame: a parallel group. Dashed line: a dependency on another section.</p>"
        );
    }
    table(&mut out, v, &base);
    out
}

fn task_link(base: &str, id: &str) -> String {
    format!("<a href=\"{base}/tasks/{}\">{}</a>", path_segment(id), escape(id))
}

fn running(out: &mut String, v: &PlanView<'_>, base: &str) {
    let Some(run) = v.run else { return };
    let _ = write!(out, "<h2>Running <span class=\"muted small\">({})</span></h2><div class=\"running\" id=\"running\">", run.running.len());
    if run.running.is_empty() && v.waits.is_empty() {
        out.push_str("<p class=\"muted\">No task is running right now (the run is between tasks, or landing).</p>");
    }
    for w in v.waits.iter().filter(|w| w.kind != "usage_limit") {
        let Ok(until) = w.until.parse::<jiff::Timestamp>() else { continue };
        let what = match (w.kind.as_str(), &w.task) {
            ("retry", Some(t)) => format!("{} will be tried again", task_link(base, t)),
            ("throttling", _) => "the agent's service asked to slow down".to_string(),
            ("breaker", _) => "too many failures in a row: the run pauses".to_string(),
            (k, _) => escape(k),
        };
        let message = w.message.as_deref().map(|m| format!(" ({})", escape(m))).unwrap_or_default();
        let _ = write!(
            out,
            "<div class=\"task wait\" data-wait=\"{kind}\">{what}{message} — waiting until {at} ({left})</div>",
            kind = escape(&w.kind),
            at = escape(&crate::report::status::local_time(until, v.now)),
            left = moment(&w.until, "until", ""),
        );
    }
    for t in &run.running {
        let model = v.plan.task(&t.id).and_then(|task| task.model_used.as_deref().or(task.model.as_deref()));
        let _ = write!(out, "<div class=\"task\" data-task=\"{}\"><div>{} {} ", escape(&t.id), task_link(base, &t.id), escape(&t.name));
        let mut facts = vec![format!("attempt {}/{}", t.tries.0, t.tries.1)];
        if let Some(m) = model {
            facts.push(format!("model {}", escape(m)));
        }
        if let Some(s) = t.started {
            facts.push(format!("running for {}", moment(&s.to_string(), "since", "")));
        }
        let _ = write!(out, "<span class=\"muted small\">{}</span></div>", facts.join(" · "));
        match &t.activity {
            Some(a) => {
                let _ = write!(out, "<div class=\"activity\" title=\"the latest tool call\">{}</div>", escape(a));
            }
            None => out.push_str("<div class=\"activity muted\">starting…</div>"),
        }
        if let Some(n) = &t.note {
            let _ = write!(out, "<div class=\"small muted\">note: {}</div>", escape(n));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
}

fn failed(out: &mut String, plan: &Plan, base: &str) {
    let failed: Vec<_> = plan.tasks().filter(|t| t.status.is_failure()).collect();
    if failed.is_empty() {
        return;
    }
    let _ = write!(out, "<h2>Failed <span class=\"muted small\">({})</span></h2><div class=\"failed\" id=\"failed\">", failed.len());
    for t in failed {
        let _ = write!(out, "<div class=\"task\" data-task=\"{}\"><div>{} {} {} <span class=\"muted small\">after {} attempt{}</span></div>", escape(t.id.as_str()), task_link(base, t.id.as_str()), escape(&t.name), status_badge(t.status.as_str()), t.attempts, if t.attempts == 1 { "" } else { "s" });
        if let Some(e) = &t.last_error {
            if e.chars().count() > ERROR_SHOWN {
                let head: String = e.chars().take(ERROR_SHOWN).collect();
                let _ = write!(out, "<details data-key=\"err-{}\"><summary><pre class=\"last-error\">{}…</pre></summary><pre>{}</pre></details>", escape(t.id.as_str()), escape(&head), escape(e));
            } else {
                let _ = write!(out, "<pre class=\"last-error\">{}</pre>", escape(e));
            }
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
}

fn blocked(out: &mut String, plan: &Plan, base: &str) {
    let blocked = crate::plan::graph::blocked(plan);
    if blocked.is_empty() {
        return;
    }
    let _ = write!(out, "<h2>Blocked <span class=\"muted small\">({})</span></h2><div class=\"blocked\" id=\"blocked\">", blocked.len());
    for (id, why) in blocked {
        let name = plan.task(id.as_str()).map(|t| t.name.as_str()).unwrap_or("");
        let _ = write!(out, "<div class=\"task\" data-task=\"{}\">{} {} <span class=\"muted small why\">— {}</span></div>", escape(id.as_str()), task_link(base, id.as_str()), escape(name), escape(&why.to_string()));
    }
    out.push_str("</div>");
}

fn table(out: &mut String, v: &PlanView<'_>, base: &str) {
    out.push_str("<h2>Tasks</h2><div class=\"table-wrap\"><table id=\"tasks\"><thead><tr><th>id</th><th>task</th><th>status</th><th class=\"num\">attempts</th><th class=\"num hide-narrow\">agent time</th><th class=\"num\">cost</th><th class=\"hide-narrow\">model</th><th class=\"hide-narrow\">last error</th></tr></thead><tbody>");
    for s in &v.plan.sections {
        let name = s.name.as_deref().map(|n| format!(" — {}", escape(n))).unwrap_or_default();
        let _ = write!(out, "<tr class=\"section\"><td colspan=\"8\">{}{name}</td></tr>", escape(&s.id));
        for t in &s.tasks {
            let usage = v.gathered.totals.get(t.id.as_str());
            let (time, cost) = usage.map_or((String::new(), String::new()), |u| (if u.sessions > 0 { crate::report::render::human_secs(u.seconds) } else { String::new() }, if u.cost_usd > 0.0 { money(u.cost_usd, false) } else { String::new() }));
            let err = t.last_error.as_deref().filter(|_| t.status != Status::Completed && t.status != Status::Verified).map(|e| e.lines().next().unwrap_or("")).unwrap_or("");
            let err: String = err.chars().take(160).collect();
            let _ = write!(
                out,
                "<tr data-task=\"{id}\" data-status=\"{st}\"><td>{link}</td><td>{name}</td><td>{badge}</td><td class=\"num\">{a}/{m}</td><td class=\"num hide-narrow\">{time}</td><td class=\"num\">{cost}</td><td class=\"hide-narrow\">{model}</td><td class=\"err hide-narrow\">{err}</td></tr>",
                id = escape(t.id.as_str()),
                st = t.status.as_str(),
                link = task_link(base, t.id.as_str()),
                name = escape(&t.name),
                badge = status_badge(t.status.as_str()),
                a = t.attempts,
                m = v.plan.max_attempts(t, v.max_attempts),
                model = escape(t.model_used.as_deref().or(t.model.as_deref()).unwrap_or("")),
                err = escape(&err),
            );
        }
    }
    out.push_str("</tbody></table></div>");
}
