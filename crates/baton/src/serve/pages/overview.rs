//! `/`: every plan of the repository at a glance — its state, progress, cost and last
//! activity — and the pipeline's backlog queue when there is one.

use std::fmt::Write;

use serde::Serialize;

use super::layout::{money, moment, progress_bar};
use crate::serve::api::PlanLine;
use crate::serve::html::{escape, path_segment};
use crate::serve::Site;

/// A backlog item waiting for the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    /// `defect` or `feature`.
    pub kind: &'static str,
    /// From the repository root.
    pub path: String,
    /// The name its plan gets.
    pub slug: String,
}

/// The backlog items the pipeline would take, in its order (empty without backlog folders).
pub fn backlog(site: &Site) -> Vec<Queued> {
    let (items, _) = crate::pipeline::waiting(&site.root, &site.config);
    items.into_iter().map(|i| Queued { kind: i.kind.as_str(), path: i.path.display().to_string(), slug: i.slug }).collect()
}

/// The overview's `<main>`.
pub fn main(lines: &[PlanLine], queue: &[Queued]) -> String {
    let mut out = String::from("<h1>Plans</h1>");
    if lines.is_empty() {
        out.push_str("<p class=\"panel\">No plans yet. Plans under <code>.claude/plans/</code> and at the repository's root (<code>baton init</code> writes <code>plan.yaml</code>) show here, and so do those the run history knows; <code>baton pipeline</code> makes plans from a backlog folder.</p>");
    }
    let running = lines.iter().filter(|l| l.running_pid.is_some()).count();
    if !lines.is_empty() {
        let spent: f64 = lines.iter().filter_map(|l| l.spent_usd).sum();
        let plans = if lines.len() == 1 { "1 plan".to_string() } else { format!("{} plans", lines.len()) };
        let _ = write!(out, "<p class=\"muted\" id=\"summary\">{plans} · {running} running · {} spent over all runs</p>", money(spent, false));
    }
    out.push_str("<div class=\"cards\" id=\"plans\">");
    // Running plans first, then the rest as listed (by path).
    let mut order: Vec<&PlanLine> = lines.iter().collect();
    order.sort_by_key(|l| (l.running_pid.is_none(), l.state == "gone"));
    for l in order {
        card(&mut out, l);
    }
    out.push_str("</div>");
    if !queue.is_empty() {
        let _ = write!(out, "<h2>Backlog queue <span class=\"muted small\">({} waiting for <code>baton pipeline</code>)</span></h2><div class=\"table-wrap\"><table id=\"backlog\"><tr><th>#</th><th>kind</th><th>item</th><th class=\"hide-narrow\">plan name</th></tr>", queue.len());
        for (n, q) in queue.iter().enumerate() {
            let _ = write!(out, "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"hide-narrow\">{}</td></tr>", n + 1, escape(q.kind), escape(&q.path), escape(&q.slug));
        }
        out.push_str("</table></div>");
    }
    out
}

fn card(out: &mut String, l: &PlanLine) {
    let href = format!("/plans/{}", path_segment(&l.known.id));
    let title = l.name.as_deref().unwrap_or(&l.known.id);
    let _ = write!(
        out,
        "<section class=\"card plan\" data-plan=\"{id}\" data-state=\"{state}\"><h3><a href=\"{href}\">{title}</a></h3><div class=\"muted small\">{path}</div>\
<div><span class=\"badge state-{state}\">{state}</span>",
        id = escape(&l.known.id),
        state = l.state,
        title = escape(title),
        path = escape(&l.known.path),
    );
    if let Some(pid) = l.running_pid {
        let _ = write!(out, " <span class=\"muted small\">pid {pid}</span>");
    }
    out.push_str("</div>");
    if let Some(c) = &l.counts {
        out.push_str(&progress_bar(c));
        let _ = write!(out, "<div class=\"small progress\">{}</div>", escape(&c.sentence()));
    }
    if let Some(e) = &l.error {
        let first = e.lines().next().unwrap_or("");
        let _ = write!(out, "<div class=\"error small\">cannot be read: {}</div>", escape(first));
    }
    let mut facts = Vec::new();
    if let Some(s) = l.spent_usd {
        facts.push(format!("spent {}", money(s, false)));
    }
    if let Some(at) = &l.last_activity {
        facts.push(format!("last activity {}", moment(at, "at", at)));
    }
    if !l.known.file {
        facts.push("plan file gone; its runs are in the history".to_string());
    }
    if !facts.is_empty() {
        let _ = write!(out, "<div class=\"muted small\">{}</div>", facts.join(" · "));
    }
    out.push_str("</section>");
}
