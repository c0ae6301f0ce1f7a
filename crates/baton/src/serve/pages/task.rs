//! `/plans/{plan}/tasks/{task}`: one task — what the plan says of it, and every attempt with
//! its outcome, model, cost, tokens, checks and review, and its transcript (loaded when opened;
//! the latest attempt's is open).

use std::fmt::Write;

use super::layout::{money, moment, status_badge};
use crate::report::render::human_secs;
use crate::plan::Task;
use crate::run::record::AttemptRecord;
use crate::serve::html::{escape, path_segment};
use crate::store::query::AttemptRow;

/// What the task page shows.
pub struct TaskView<'a> {
    pub plan_id: &'a str,
    pub plan_name: &'a str,
    pub task_id: &'a str,
    /// The task as the plan says now (`None`: only the history knows it).
    pub task: Option<&'a Task>,
    /// Its attempts from the run history, oldest first.
    pub attempts: &'a [AttemptRow],
    /// Its attempt records (the review's findings are there).
    pub records: &'a [AttemptRecord],
}

/// The task page's `<main>`.
pub fn main(v: &TaskView<'_>) -> String {
    let plan_href = format!("/plans/{}", path_segment(v.plan_id));
    let mut out = String::with_capacity(16 * 1024);
    let name = v.task.map(|t| t.name.as_str()).unwrap_or("");
    let _ = write!(
        out,
        "<div class=\"crumbs\"><a href=\"/\">Plans</a> / <a href=\"{plan_href}\">{}</a> / {}</div><h1 id=\"task-title\" data-task=\"{id}\">{id} {}",
        escape(v.plan_name),
        escape(v.task_id),
        escape(name),
        id = escape(v.task_id),
    );
    if let Some(t) = v.task {
        let _ = write!(out, " {}", status_badge(t.status.as_str()));
    }
    out.push_str("</h1>");
    match v.task {
        Some(t) => facts(&mut out, t, &plan_href),
        None => out.push_str("<p class=\"notice\">The plan no longer has this task; its attempts are in the run history.</p>"),
    }
    let _ = write!(out, "<h2>Attempts <span class=\"muted small\">({})</span></h2>", v.attempts.len());
    if v.attempts.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-attempts\">No attempt yet.</p>");
    }
    let last = v.attempts.iter().rposition(|a| a.kind == "task");
    for (i, a) in v.attempts.iter().enumerate().rev() {
        attempt(&mut out, v, a, Some(i) == last);
    }
    out
}

fn facts(out: &mut String, t: &Task, plan_href: &str) {
    out.push_str("<dl class=\"kv panel\" id=\"task-facts\">");
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row("attempts", t.attempts.to_string());
    if !t.depends_on.is_empty() {
        let deps: Vec<String> = t.depends_on.iter().map(|d| format!("<a href=\"{plan_href}/tasks/{}\">{}</a>", path_segment(d.as_str()), escape(d.as_str()))).collect();
        row("depends on", deps.join(", "));
    }
    if let Some(a) = &t.agent {
        row("agent", escape(a));
    }
    if let Some(m) = t.model_used.as_deref().or(t.model.as_deref()) {
        row("model", escape(m));
    }
    if let Some(g) = &t.parallel_group {
        row("group", escape(g));
    }
    if !t.files.is_empty() {
        row("files", escape(&t.files.join(", ")));
    }
    if !t.verify.is_empty() {
        row("checks", t.verify.iter().map(|c| format!("<code>{}</code>", escape(c))).collect::<Vec<_>>().join("<br>"));
    }
    if let Some(at) = &t.completed_at {
        row("completed", moment(at, "at", at));
    }
    if let Some(m) = &t.result_message {
        row("result", format!("<pre>{}</pre>", escape(m)));
    }
    if let Some(e) = &t.last_error {
        row("last error", format!("<pre class=\"last-error\">{}</pre>", escape(e)));
    }
    if let Some(d) = &t.description {
        row("description", format!("<details data-key=\"desc\"><summary>show</summary><pre>{}</pre></details>", escape(d)));
    }
    out.push_str("</dl>");
}

fn attempt(out: &mut String, v: &TaskView<'_>, a: &AttemptRow, latest: bool) {
    let kind = if a.kind == "task" { String::new() } else { format!(" ({})", escape(&a.kind)) };
    // A session that did not count as an attempt (a usage limit, a stop) has only its number.
    let number = match a.attempt {
        Some(n) => format!("<b>attempt {n}</b>{kind} <span class=\"muted small\">session {}</span>", a.session),
        None => format!("<b>session {}</b>{kind} <span class=\"muted small\">not counted as an attempt</span>", a.session),
    };
    let _ = write!(
        out,
        "<section class=\"panel attempt\" data-session=\"{s}\" data-outcome=\"{o}\"><div>{number} <span class=\"badge outcome-{o}\">{ow}</span></div>",
        s = a.session,
        o = escape(&a.outcome),
        ow = escape(&a.outcome.replace('_', " ")),
    );
    let mut facts = vec![format!("started {}", moment(&a.started_at, "at", &a.started_at))];
    match (a.duration_secs, a.outcome.as_str()) {
        (_, "running") => facts.push(format!("running for {}", moment(&a.started_at, "since", ""))),
        (Some(d), _) => facts.push(format!("took {}", human_secs(d))),
        _ => {}
    }
    let agent = a.named_agent.as_deref().filter(|n| *n != a.agent).map_or_else(|| a.agent.clone(), |n| format!("{n} ({})", a.agent));
    facts.push(format!("agent {}", escape(&agent)));
    if let Some(m) = &a.model {
        facts.push(format!("model {}", escape(m)));
    }
    match a.cost_usd {
        Some(c) => facts.push(format!("cost {}", money(c, a.cost_estimated))),
        None if a.outcome != "running" => facts.push("cost unknown (the agent said none)".to_string()),
        None => {}
    }
    if let Some(c) = a.review_cost_usd {
        facts.push(format!("review {}", money(c, false)));
    }
    let tokens: Vec<String> = [(a.input_tokens, "in"), (a.output_tokens, "out"), (a.cache_read_tokens, "cache read"), (a.cache_creation_tokens, "cache write")]
        .iter()
        .filter_map(|(n, w)| n.map(|n| format!("{n} {w}")))
        .collect();
    if !tokens.is_empty() {
        facts.push(format!("tokens {}", tokens.join(" / ")));
    }
    if let Some(t) = a.turns {
        facts.push(format!("{t} turns"));
    }
    if let Some(w) = a.waited_secs.filter(|w| *w > 0.0 && a.outcome != "running") {
        facts.push(format!("waited {}", human_secs(w)));
    }
    let _ = write!(out, "<div class=\"muted small\">{}</div>", facts.join(" · "));
    if let Some(m) = a.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(out, "<pre class=\"message\">{}</pre>", escape(m));
    }
    if !a.checks.is_empty() {
        out.push_str("<div class=\"checks\"><b class=\"small\">checks</b><ul class=\"small\">");
        for c in &a.checks {
            let result = if c.timed_out {
                "timed out".to_string()
            } else if c.passed {
                "passed".to_string()
            } else {
                format!("failed (exit {})", c.exit_code.map_or("?".to_string(), |e| e.to_string()))
            };
            let _ = write!(out, "<li class=\"check {}\"><code>{}</code> — {result} in {} <span class=\"muted\">({})</span></li>", if c.passed { "passed" } else { "failed" }, escape(&c.command), human_secs(c.duration_secs), escape(&c.source));
        }
        out.push_str("</ul></div>");
    }
    let review = v.records.iter().find(|r| i64::from(r.session) == a.session).and_then(|r| r.review.as_ref());
    if a.verdict.is_some() || review.is_some() {
        let verdict = a.verdict.as_deref().or(review.and_then(|r| r.verdict.as_deref())).unwrap_or("none");
        let _ = write!(out, "<div class=\"review\"><b class=\"small\">review</b> <span class=\"badge verdict-{v}\">{v}</span>", v = escape(verdict));
        if let Some(r) = review {
            if let Some(p) = &r.problem {
                let _ = write!(out, " <span class=\"small\">{}</span>", escape(p));
            }
            if !r.findings.is_empty() {
                out.push_str("<ul class=\"small findings\">");
                for f in &r.findings {
                    let _ = write!(out, "<li>{}</li>", escape(f));
                }
                out.push_str("</ul>");
            }
        }
        out.push_str("</div>");
    }
    if a.transcript.is_some() {
        let src = format!("/plans/{}/tasks/{}/attempts/{}/transcript", path_segment(v.plan_id), path_segment(v.task_id), a.session);
        let _ = write!(
            out,
            "<details class=\"transcript\" data-key=\"tx-{s}\" data-src=\"{src}\"{open}><summary>transcript</summary><div class=\"lazy\"><p class=\"muted small\">loading…</p></div><a class=\"small\" href=\"/api{api}\">raw</a></details>",
            s = a.session,
            open = if latest { " open" } else { "" },
            api = &src[..],
        );
    }
    out.push_str("</section>");
}
