//! The dashboard's History and cost page: the runs over time and the recent runs, and what the
//! agents cost by day, by model and by plan (by task, for one plan), with charts the server
//! draws as inline SVG: no script, no chart library.
//!
//! The figures are those `baton history` and `baton cost` print, from the same functions
//! ([`history::shown_runs`], [`history::sums`]). The charts are pure functions of plain data
//! ([`bar_chart`], [`bars_chart`], [`day_chart`]); every label goes through [`escape`].

use std::collections::BTreeSet;
use std::fmt::Write;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::report::history::{self, CostBy, Group, RunState, ShownRun, Sum};
use crate::report::render::{human_secs, local_time};
use crate::serve::html::escape;
use crate::serve::Site;

/// The newest runs the table lists.
pub const TABLE_RUNS: usize = 30;
/// The newest runs the runs-over-time chart counts.
pub const CHART_RUNS: usize = 1000;
/// The days a chart over time shows: the most recent ones.
pub const DAYS: usize = 30;
/// The bars a chart by model, plan or task shows; the others are added up in one more bar.
pub const TOP: usize = 12;

/// What a chart's figures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// US dollars.
    Usd,
    /// A number of things (runs).
    Count,
}

impl Unit {
    /// The exact figure, for a bar's `<title>`: `$0.4210`, `3`.
    pub fn exact(self, v: f64) -> String {
        let v = finite(v);
        match self {
            Unit::Usd => format!("${v:.4}"),
            Unit::Count if v.fract() == 0.0 => format!("{v:.0}"),
            Unit::Count => format!("{v:.2}"),
        }
    }

    /// Short, for an axis or a bar's end: `$0.42`, `$12.50`, `$340`, `$1.2k`, `3`.
    pub fn short(self, v: f64) -> String {
        let v = finite(v);
        match self {
            Unit::Usd if v == 0.0 => "$0".into(),
            Unit::Usd if v < 0.005 => "<$0.01".into(),
            Unit::Usd if v < 100.0 => format!("${v:.2}"),
            Unit::Usd if v < 1000.0 => format!("${v:.0}"),
            Unit::Usd => format!("${:.1}k", v / 1000.0),
            Unit::Count => self.exact(v),
        }
    }
}

/// One bar of a chart by name: its label, its figure, whether the figure is estimated in part
/// (`~`), and the sessions whose cost is unknown (not in the figure).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub approx: bool,
    pub unknown: usize,
}

impl Bar {
    pub fn new(label: impl Into<String>, value: f64) -> Bar {
        Bar { label: label.into(), value, approx: false, unknown: 0 }
    }

    fn of(label: impl Into<String>, sum: &Sum) -> Bar {
        Bar { label: label.into(), value: sum.cost_usd, approx: sum.estimated_cost_sessions > 0, unknown: sum.unknown_cost_sessions }
    }
}

/// One column of a chart over time: its day (`2026-11-30`), a figure per series (stacked in
/// their order), and as [`Bar`] whether it is estimated in part and its sessions of unknown cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub label: String,
    pub values: Vec<f64>,
    pub approx: bool,
    pub unknown: usize,
}

/// A series of a chart over time: its name in the legend and its colour, one of `ok`, `fail`,
/// `run`, `wait`, `skip`, `accent` (the stylesheet's `--ok`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
}

/// The width of every chart's viewBox; it is drawn at the width of its box (100%, at most
/// 32rem), so its text is about 0.9 of its size here on a phone (390 px), 1.3 on a desktop.
const W: f64 = 400.0;

/// `x` written for the SVG: a finite number, one decimal.
fn n(x: f64) -> String {
    format!("{:.1}", finite(x))
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// At most `max` characters, cut with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// `~$1.23`, `$0 + 2 unknown`, `unknown (2 sessions)`.
fn figure(value: f64, approx: bool, unknown: usize, unit: Unit, exact: bool) -> String {
    let shown = if exact { unit.exact(value) } else { unit.short(value) };
    let tilde = if approx { "~" } else { "" };
    match unknown {
        0 => format!("{tilde}{shown}"),
        u if finite(value) <= 0.0 && !approx => format!("unknown ({u} session{})", if u == 1 { "" } else { "s" }),
        u if exact => format!("{tilde}{shown} + {u} session{} of unknown cost", if u == 1 { "" } else { "s" }),
        u => format!("{tilde}{shown} + {u} unknown"),
    }
}

/// The figure with nothing to chart.
fn nothing(title: &str) -> String {
    format!("<figure class=\"chart\"><figcaption>{}</figcaption><p class=\"chart-none\">nothing to show</p></figure>\n", escape(title))
}

/// A chart by name, a horizontal bar each (long names fit a phone so): the name, the bar, its
/// figure; the exact figure in the bar's `<title>`.
pub fn bar_chart(title: &str, bars: &[(String, f64)], unit: Unit) -> String {
    let bars: Vec<Bar> = bars.iter().map(|(l, v)| Bar::new(l.clone(), *v)).collect();
    bars_chart(title, &bars, unit)
}

/// [`bar_chart`] of bars that may be estimated or have sessions of unknown cost.
pub fn bars_chart(title: &str, bars: &[Bar], unit: Unit) -> String {
    if bars.is_empty() {
        return nothing(title);
    }
    const ROW: f64 = 24.0;
    const TOP: f64 = 4.0;
    let height = TOP * 2.0 + ROW * bars.len() as f64;
    let max = bars.iter().map(|b| finite(b.value).max(0.0)).fold(0.0, f64::max);
    // Names at the left (13px text: about 7.2 a character), cut to 20 characters; room at the
    // right for the longest figure (12px: about 6.8).
    let labels: Vec<String> = bars.iter().map(|b| cut(&b.label, 20)).collect();
    let label_w = (labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * 7.2 + 10.0).clamp(40.0, 150.0);
    let values: Vec<String> = bars.iter().map(|b| figure(b.value, b.approx, b.unknown, unit, false)).collect();
    let room = values.iter().map(|v| v.chars().count() as f64 * 6.8 + 8.0).fold(40.0, f64::max).min(W - label_w - 60.0);
    let span = W - label_w - room;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{t}</figcaption><svg class=\"chart-svg\" viewBox=\"0 0 {W} {h}\" width=\"100%\" role=\"img\" aria-label=\"{t}\" preserveAspectRatio=\"xMinYMin meet\">\n",
        t = escape(title),
        h = n(height)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let v = finite(b.value).max(0.0);
        let w = if max > 0.0 { v / max * span } else { 0.0 };
        let exact = figure(b.value, b.approx, b.unknown, unit, true);
        let _ = writeln!(
            svg,
            "<g class=\"bar\"><title>{label}: {exact}</title><text class=\"label\" x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{short}</text><rect class=\"s-accent\" x=\"{bx}\" y=\"{ry}\" width=\"{w}\" height=\"16\"/><text class=\"value\" x=\"{vx}\" y=\"{ty}\">{value}</text></g>",
            label = escape(&b.label),
            exact = escape(&exact),
            lx = n(label_w - 6.0),
            bx = n(label_w),
            ty = n(y + 16.0),
            short = escape(&labels[i]),
            ry = n(y + 4.0),
            w = n(w),
            vx = n(label_w + w + 4.0),
            value = escape(&values[i]),
        );
    }
    let _ = writeln!(svg, "<line class=\"axis\" x1=\"{x}\" y1=\"{TOP}\" x2=\"{x}\" y2=\"{}\"/>\n</svg></figure>", n(height - TOP), x = n(label_w));
    svg
}

/// The smallest 1, 2 or 5 times a power of ten at or above `max` (1 for nothing): the top of
/// an axis.
fn nice_top(max: f64) -> f64 {
    let max = finite(max);
    if max <= 0.0 {
        return 1.0;
    }
    let mut step = 10f64.powf(max.log10().floor());
    loop {
        for m in [1.0, 2.0, 5.0, 10.0] {
            if step * m >= max * (1.0 - 1e-9) {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

/// A chart over time: a column a day, oldest on the left, its figures stacked by series; the
/// day and each series' exact figure in the column's `<title>`, a legend under it when there
/// are several series.
pub fn day_chart(title: &str, columns: &[Column], series: &[Series<'_>], unit: Unit) -> String {
    if columns.is_empty() {
        return nothing(title);
    }
    const H: f64 = 200.0;
    const L: f64 = 48.0;
    // Room for the newest date, centred under its column.
    const R: f64 = 20.0;
    const T: f64 = 14.0;
    const B: f64 = 28.0;
    let (plot_w, plot_h) = (W - L - R, H - T - B);
    let count = columns.len() as f64;
    let slot = plot_w / count;
    let bar_w = (slot * 0.72).max(1.0);
    let sum = |c: &Column| c.values.iter().map(|v| finite(*v).max(0.0)).sum::<f64>();
    let top = nice_top(columns.iter().map(sum).fold(0.0, f64::max));
    let y_of = |v: f64| T + plot_h - v / top * plot_h;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{t}</figcaption><svg class=\"chart-svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"{t}\" preserveAspectRatio=\"xMinYMin meet\">\n",
        t = escape(title)
    );
    for tick in [0.0, top / 2.0, top] {
        if unit == Unit::Count && tick.fract() != 0.0 {
            continue;
        }
        let y = n(y_of(tick));
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{L}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/><text class=\"tick\" x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>",
            x2 = n(W - R),
            tx = n(L - 4.0),
            ty = n(y_of(tick) + 4.0),
            label = escape(&unit.short(tick)),
        );
    }
    // About seven dates under the axis, the newest always.
    let every = columns.len().div_ceil(7).max(1);
    for (i, c) in columns.iter().enumerate() {
        let x = L + slot * i as f64 + (slot - bar_w) / 2.0;
        let total = sum(c);
        let mut what = format!("{}: {}", c.label, figure(total, c.approx, c.unknown, unit, true));
        if series.len() > 1 {
            let parts: Vec<String> = series.iter().zip(&c.values).filter(|(_, v)| **v > 0.0).map(|(s, v)| format!("{} {}", s.name, unit.exact(*v))).collect();
            if !parts.is_empty() {
                what.push_str(&format!(" ({})", parts.join(", ")));
            }
        }
        let _ = write!(svg, "<g class=\"col\"><title>{}</title>", escape(&what));
        // The whole column answers the pointer, an empty day too.
        let _ = write!(svg, "<rect class=\"hit\" x=\"{}\" y=\"{T}\" width=\"{}\" height=\"{}\"/>", n(L + slot * i as f64), n(slot), n(plot_h));
        let mut acc = 0.0;
        for (s, v) in series.iter().zip(&c.values) {
            let v = finite(*v).max(0.0);
            if v <= 0.0 {
                continue;
            }
            let _ = write!(
                svg,
                "<rect class=\"s-{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                escape(s.colour),
                n(x),
                n(y_of(acc + v)),
                n(bar_w),
                n(v / top * plot_h)
            );
            acc += v;
        }
        // A figure over its column when there is room for it.
        if (total > 0.0 || c.unknown > 0) && slot >= 34.0 {
            let _ = write!(
                svg,
                "<text class=\"value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                n(x + bar_w / 2.0),
                n(y_of(total) - 3.0),
                escape(&figure(total, c.approx, c.unknown, unit, false).replace(" unknown", "?"))
            );
        }
        if (columns.len() - 1 - i) % every == 0 {
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                n(x + bar_w / 2.0),
                n(H - B + 16.0),
                escape(&day_label(&c.label))
            );
        }
        svg.push_str("</g>\n");
    }
    let _ = writeln!(svg, "<line class=\"axis\" x1=\"{L}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/>\n</svg>", y = n(T + plot_h), x2 = n(W - R));
    if series.len() > 1 {
        svg.push_str("<ul class=\"chart-legend\">");
        for s in series {
            let _ = write!(svg, "<li><span class=\"swatch s-{}\"></span>{}</li>", escape(s.colour), escape(s.name));
        }
        svg.push_str("</ul>\n");
    }
    svg.push_str("</figure>\n");
    svg
}

/// `11-30` for `2026-11-30`; another label as it is, cut.
fn day_label(label: &str) -> String {
    match label.parse::<Date>() {
        Ok(d) => format!("{:02}-{:02}", d.month(), d.day()),
        Err(_) => cut(label, 8),
    }
}

/// How a run ended, as a colour: `ok`, `fail`, `skip` (stopped, out of budget, killed,
/// interrupted) or `run`.
pub fn ending_colour(run: &ShownRun) -> &'static str {
    match run.state {
        RunState::Running => "run",
        RunState::Interrupted => "skip",
        RunState::Ended => match run.run.ending.as_deref().unwrap_or_default() {
            "finished" | "single_task" => "ok",
            "finished_with_failures" | "error" | "blocked" => "fail",
            _ => "skip",
        },
    }
}

/// The runs-over-time chart's series, in the order they stack.
pub const RUN_SERIES: [Series<'static>; 4] = [
    Series { name: "finished", colour: "ok" },
    Series { name: "with failures, blocked or error", colour: "fail" },
    Series { name: "stopped, out of budget or killed", colour: "skip" },
    Series { name: "running", colour: "run" },
];

/// The `DAYS` days ending at `last`.
fn window(last: Date) -> Vec<Date> {
    let mut days: Vec<Date> = (0..DAYS as i64).filter_map(|k| last.checked_sub(jiff::Span::new().days(k)).ok()).collect();
    days.reverse();
    days
}

/// The day of a time in `tz`.
fn day_of(t: &str, tz: &TimeZone) -> Option<Date> {
    t.parse::<Timestamp>().ok().map(|t| t.to_zoned_datetime(tz.clone()).date())
}

/// The runs a day of `days` started, by how they ended ([`RUN_SERIES`]).
pub fn runs_by_day(runs: &[ShownRun], days: &[Date], tz: &TimeZone) -> Vec<Column> {
    let mut columns: Vec<Column> = days.iter().map(|d| Column { label: d.to_string(), values: vec![0.0; RUN_SERIES.len()], approx: false, unknown: 0 }).collect();
    for r in runs {
        let Some(at) = day_of(&r.run.started_at, tz).and_then(|d| days.iter().position(|x| *x == d)) else { continue };
        let colour = ending_colour(r);
        if let Some(s) = RUN_SERIES.iter().position(|s| s.colour == colour) {
            columns[at].values[s] += 1.0;
        }
    }
    columns
}

/// What the days of `days` cost, from `baton cost --by day`'s groups.
pub fn cost_by_day(groups: &[Group], days: &[Date]) -> Vec<Column> {
    days.iter()
        .map(|d| {
            let label = d.to_string();
            let sum = groups.iter().find(|g| g.key.first().and_then(|k| k.as_deref()) == Some(label.as_str())).map(|g| g.sum.clone()).unwrap_or_default();
            Column { label, values: vec![sum.cost_usd], approx: sum.estimated_cost_sessions > 0, unknown: sum.unknown_cost_sessions }
        })
        .collect()
}

/// The [`TOP`] costliest groups (they come costliest first), and the others added up in one
/// more bar.
pub fn top_bars(groups: &[Group], label: impl Fn(&Group) -> String) -> Vec<Bar> {
    let mut bars: Vec<Bar> = groups.iter().take(TOP).map(|g| Bar::of(label(g), &g.sum)).collect();
    let rest = &groups[groups.len().min(TOP)..];
    if !rest.is_empty() {
        let mut other = Bar::new(format!("{} other{}", rest.len(), if rest.len() == 1 { "" } else { "s" }), 0.0);
        for g in rest {
            other.value = crate::store::usd(other.value + g.sum.cost_usd);
            other.approx |= g.sum.estimated_cost_sessions > 0;
            other.unknown += g.sum.unknown_cost_sessions;
        }
        bars.push(other);
    }
    bars
}

/// The tasks of a run that ended done (completed or verified), and the tasks it tried.
fn tasks_done(run: &ShownRun) -> (usize, usize) {
    let tasks = |done: bool| -> usize {
        run.run.attempts.iter().filter(|a| a.kind == "task" && (!done || matches!(a.outcome.as_str(), "completed" | "verified"))).map(|a| a.task.as_str()).collect::<BTreeSet<_>>().len()
    };
    (tasks(true), tasks(false))
}

/// A run's cost as the table shows it: `~` when an attempt's is estimated (from the tokens, or
/// the cap of a session killed before it said), and its sessions of unknown cost said.
fn run_cost(run: &ShownRun) -> String {
    let said: f64 = run.run.attempts.iter().map(|a| a.total_cost()).sum();
    // The run's figure holds the caps of sessions killed before their agent said a cost.
    let approx = run.run.attempts.iter().any(|a| a.cost_estimated) || run.run.cost_usd > said + 5e-5;
    let unknown = run
        .run
        .attempts
        .iter()
        .filter(|a| a.cost_usd.is_none() && a.review_cost_usd.is_none() && !matches!(a.outcome.as_str(), "running" | "interrupted" | "skipped"))
        .count();
    figure(run.run.cost_usd, approx, unknown, Unit::Usd, true)
}

/// One row of the recent runs.
fn run_row(out: &mut String, r: &ShownRun, link: &dyn Fn(&str) -> String, now: Timestamp) {
    let run = &r.run;
    let plan = match (run.kind.as_str(), run.plan.as_str()) {
        ("pipeline", _) => "pipeline (planning)".to_string(),
        (_, "") => "—".to_string(),
        (_, p) => format!("<a href=\"{}\">{}</a>", escape(&link(p)), escape(run.plan_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(p))),
    };
    let started: Option<Timestamp> = run.started_at.parse().ok();
    let ended = match r.state {
        RunState::Running => Some(now),
        _ => run.ended_at.as_deref().and_then(|t| t.parse().ok()),
    };
    let time = match (started, ended, run.kind == "imported") {
        (Some(a), Some(b), false) => human_secs(b.duration_since(a).as_secs_f64().max(0.0)),
        _ => String::new(),
    };
    let (done, tried) = tasks_done(r);
    let _ = writeln!(
        out,
        "<tr><td>{plan}</td><td class=\"when\">{}</td><td class=\"num\">{}</td><td><span class=\"dot s-{}\"></span>{}</td><td class=\"num\">{done} / {tried}</td><td class=\"num\">{}</td></tr>",
        escape(&started.map(local_time).unwrap_or_else(|| run.started_at.clone())),
        escape(&time),
        ending_colour(r),
        escape(&history::ending_text(r)),
        escape(&run_cost(r)),
    );
}

/// The History and cost page's body (an HTML fragment) for one plan (its path from the
/// repository root, its key in the history) or every plan. `link` makes a plan's page's URL
/// from its path.
pub fn history_page(site: &Site, plan: Option<&str>, link: &dyn Fn(&str) -> String) -> Result<String, String> {
    let file = plan.map(|p| site.root.join(p));
    let place = history::Place { root: &site.root, plan: file.as_deref(), logs_dir: &site.logs_dir };
    let failed = |e: crate::store::StoreError| format!("{e}\n  help: {}", e.help());
    let store = history::open(&place).map_err(failed)?;
    let (runs, more) = history::shown_runs(&place, store.as_ref(), CHART_RUNS).map_err(failed)?;
    let (days, total) = history::sums(store.as_ref(), plan, CostBy::Day, None).map_err(failed)?;
    let mut out = String::from("<div class=\"hist\">\n");
    if runs.is_empty() && total.sessions == 0 {
        let whose = plan.map(|p| format!(" for {}", escape(p))).unwrap_or_default();
        let _ = writeln!(out, "<p class=\"hist-empty\">no runs recorded yet{whose} — <code>baton run</code> records them in .baton/baton.db</p>\n</div>");
        return Ok(out);
    }
    let (models, _) = history::sums(store.as_ref(), plan, CostBy::Model, None).map_err(failed)?;
    let by = if plan.is_some() { CostBy::Task } else { CostBy::Plan };
    let (parts, _) = history::sums(store.as_ref(), plan, by, None).map_err(failed)?;
    let tz = TimeZone::system();
    let now = Timestamp::now();

    // The total, and what it leaves out.
    let _ = write!(
        out,
        "<p class=\"hist-total\">Total: <strong>{}</strong> over {} session{}, {} of agent time.",
        escape(&figure(total.cost_usd, total.estimated_cost_sessions > 0, 0, Unit::Usd, true)),
        total.sessions,
        if total.sessions == 1 { "" } else { "s" },
        escape(&human_secs(total.seconds))
    );
    if total.estimated_cost_sessions > 0 {
        let k = total.estimated_cost_sessions;
        let _ = write!(out, " <span class=\"muted\">~: estimated from the tokens and [prices] for {k} session{}.</span>", if k == 1 { "" } else { "s" });
    }
    out.push_str("</p>\n");
    if total.unknown_cost_sessions > 0 {
        let k = total.unknown_cost_sessions;
        let _ = writeln!(
            out,
            "<p class=\"hist-unknown\">{k} session{} of unknown cost {} not in these figures (not counted as $0): their agent says no cost; set <code>[prices]</code> in baton.toml.</p>",
            if k == 1 { "" } else { "s" },
            if k == 1 { "is" } else { "are" }
        );
    }

    // The runs over time, and the newest runs.
    let last_run = runs.iter().filter_map(|r| day_of(&r.run.started_at, &tz)).max();
    let last_cost = days.last().and_then(|g| g.key.first().cloned().flatten()).and_then(|d| d.parse::<Date>().ok());
    let window = last_run.max(last_cost).map(window).unwrap_or_default();
    out.push_str("<section class=\"hist-runs\">\n<h2>Runs</h2>\n");
    out.push_str(&day_chart(&format!("Runs a day, the {DAYS} days to {}", window.last().map(Date::to_string).unwrap_or_default()), &runs_by_day(&runs, &window, &tz), &RUN_SERIES, Unit::Count));
    if more {
        let _ = writeln!(out, "<p class=\"muted\">The chart counts the {CHART_RUNS} newest runs.</p>");
    }
    if runs.is_empty() {
        out.push_str("<p class=\"muted\">no runs recorded (the costs below are of attempt records from before the history)</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<div class=\"hist-scroll\"><table class=\"hist-table\">\n<caption>{}{}</caption>\n<thead><tr><th>Plan</th><th>Started</th><th>Time</th><th>Ending</th><th title=\"the tasks this run completed, of those it ran\">Tasks done / run</th><th>Cost</th></tr></thead>\n<tbody>",
            match runs.len().min(TABLE_RUNS) {
                1 => "The newest run".to_string(),
                n => format!("The {n} newest runs"),
            },
            if runs.len() > TABLE_RUNS { " (<code>baton history --limit N</code> lists more)" } else { "" }
        );
        for r in runs.iter().take(TABLE_RUNS) {
            run_row(&mut out, r, link, now);
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");

    // The costs.
    out.push_str("<section class=\"hist-cost\">\n<h2>Cost</h2>\n");
    out.push_str(&day_chart(&format!("Cost a day (local time), the {DAYS} days to {}", window.last().map(Date::to_string).unwrap_or_default()), &cost_by_day(&days, &window), &[Series { name: "cost", colour: "accent" }], Unit::Usd));
    out.push_str(&bars_chart("Cost by model", &top_bars(&models, |g| g.key[0].clone().unwrap_or_else(|| "(unknown model)".into())), Unit::Usd));
    // A plan by its name in URLs (its file name), as the plan pages call it.
    let parts = top_bars(&parts, |g| {
        let key = g.key.last().cloned().flatten().unwrap_or_default();
        if plan.is_some() { key } else { crate::serve::plans::stem(&key) }
    });
    out.push_str(&bars_chart(if plan.is_some() { "Cost by task" } else { "Cost by plan" }, &parts, Unit::Usd));
    out.push_str("</section>\n</div>\n");
    Ok(out)
}

/// The page's styles; the colours are the dashboard's (`--ok`, `--fail`, …).
pub const CSS: &str = r#"
.hist { display: flex; flex-direction: column; gap: 1rem; }
.hist > p { margin: 0; }
.hist-empty { color: var(--muted); }
.hist-unknown { color: var(--wait); }
.hist .muted { color: var(--muted); }
.hist h2 { font-size: 1.1rem; margin: 0.5rem 0; }
.chart { margin: 0 0 1rem 0; padding: 0.5rem; background: var(--panel); border: 1px solid var(--border); border-radius: 6px; max-width: 32rem; }
.chart figcaption { font-size: 0.9rem; color: var(--muted); margin-bottom: 0.25rem; }
.chart-svg { display: block; width: 100%; height: auto; }
.chart-svg text { fill: var(--fg); font-size: 13px; font-family: inherit; }
.chart-svg text.tick { fill: var(--muted); font-size: 12px; }
.chart-svg text.value { font-size: 12px; }
.chart-svg .grid { stroke: var(--border); stroke-width: 1; }
.chart-svg .axis { stroke: var(--muted); stroke-width: 1; }
.chart-svg .hit { fill: transparent; }
.chart-svg g:hover .hit { fill: var(--border); opacity: 0.35; }
.chart-none { color: var(--muted); margin: 0.25rem 0; }
.chart-legend { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin: 0.25rem 0 0 0; padding: 0; font-size: 0.85rem; color: var(--muted); }
.chart-legend .swatch { display: inline-block; width: 0.75rem; height: 0.75rem; margin-right: 0.3rem; border-radius: 2px; vertical-align: -0.1rem; }
.hist .s-ok { fill: var(--ok); background: var(--ok); }
.hist .s-fail { fill: var(--fail); background: var(--fail); }
.hist .s-run { fill: var(--run); background: var(--run); }
.hist .s-wait { fill: var(--wait); background: var(--wait); }
.hist .s-skip { fill: var(--skip); background: var(--skip); }
.hist .s-accent { fill: var(--accent); background: var(--accent); }
.hist-scroll { overflow-x: auto; max-width: 100%; }
.hist-table { border-collapse: collapse; font-size: 0.9rem; white-space: nowrap; }
.hist-table caption { text-align: left; color: var(--muted); padding-bottom: 0.25rem; }
.hist-table th, .hist-table td { text-align: left; padding: 0.25rem 0.6rem; border-bottom: 1px solid var(--border); }
.hist-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hist-table .dot { display: inline-block; width: 0.6rem; height: 0.6rem; border-radius: 50%; margin-right: 0.4rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number the SVG holds is finite: no `NaN`, no `inf`.
    fn finite_svg(svg: &str) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn a_bar_chart_of_no_bar_says_so() {
        let svg = bar_chart("Cost by <model>", &[], Unit::Usd);
        finite_svg(&svg);
        assert!(svg.contains("nothing to show") && svg.contains("Cost by &lt;model&gt;") && !svg.contains("<model>"), "{svg}");
    }

    #[test]
    fn a_bar_chart_of_one_zero_bar_has_no_nan() {
        let svg = bar_chart("t", &[("opus".into(), 0.0)], Unit::Usd);
        finite_svg(&svg);
        assert!(svg.contains("width=\"0.0\"") && svg.contains("<title>opus: $0.0000</title>"), "{svg}");
        let one = bar_chart("t", &[("opus".into(), 2.5)], Unit::Usd);
        finite_svg(&one);
        // The one bar spans the room there is.
        assert!(one.contains("width=\"318.0\"") && one.contains(">$2.50<"), "{one}");
        let odd = bar_chart("t", &[("a".into(), f64::NAN), ("b".into(), f64::INFINITY), ("c".into(), -1.0)], Unit::Count);
        finite_svg(&odd);
    }

    #[test]
    fn a_bar_chart_of_many_bars_scales_them_escapes_labels_and_titles_exact_figures() {
        let bars: Vec<(String, f64)> = vec![("<script>alert(1)</script>".into(), 0.123456), ("a & b".into(), 1.0), ("c\"d".into(), 0.5), ("x".repeat(40), 0.25)];
        let svg = bar_chart("by plan", &bars, Unit::Usd);
        finite_svg(&svg);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;: $0.1235</title>"), "{svg}");
        assert!(svg.contains("<title>a &amp; b: $1.0000</title>") && svg.contains("<title>c&quot;d: $0.5000</title>"), "{svg}");
        // The longest bar is the costliest; a long name is cut on the chart, whole in its title.
        assert!(svg.contains("y=\"32.0\" width=\"208.0\"") && svg.contains("y=\"56.0\" width=\"104.0\""), "{svg}");
        assert!(svg.contains(&format!("{}…</text>", "x".repeat(19))) && svg.contains(&format!("{}: $0.2500</title>", "x".repeat(40))), "{svg}");
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(svg.contains("viewBox=\"0 0 400 104.0\"") && svg.contains("width=\"100%\""), "{svg}");
    }

    #[test]
    fn estimated_and_unknown_costs_are_said_so() {
        let bars = [Bar { label: "opus".into(), value: 1.5, approx: true, unknown: 0 }, Bar { label: "gemini".into(), value: 0.0, approx: false, unknown: 2 }, Bar { label: "mix".into(), value: 0.5, approx: false, unknown: 1 }];
        let svg = bars_chart("t", &bars, Unit::Usd);
        assert!(svg.contains("<title>opus: ~$1.5000</title>") && svg.contains(">~$1.50<"), "{svg}");
        assert!(svg.contains("<title>gemini: unknown (2 sessions)</title>") && svg.contains(">unknown (2 sessions)<"), "{svg}");
        assert!(svg.contains("<title>mix: $0.5000 + 1 session of unknown cost</title>"), "{svg}");
        // The bars leave room for the longest figure (20 characters) inside the viewBox.
        assert!(svg.contains("width=\"202.8\"") && svg.contains("<text class=\"value\" x=\"260.0\""), "{svg}");
    }

    #[test]
    fn a_day_chart_stacks_series_and_survives_nothing_and_one_day() {
        let col = |label: &str, values: Vec<f64>| Column { label: label.into(), values, approx: false, unknown: 0 };
        let empty = day_chart("runs", &[], &RUN_SERIES, Unit::Count);
        assert!(empty.contains("nothing to show"));
        let zero = day_chart("runs", &[col("2026-11-30", vec![0.0; 4])], &RUN_SERIES, Unit::Count);
        finite_svg(&zero);
        assert!(zero.contains("<title>2026-11-30: 0</title>") && zero.contains(">11-30<"), "{zero}");
        let days: Vec<Column> = (1..=30).map(|d| col(&format!("2026-11-{d:02}"), vec![f64::from(d % 3), 1.0, 0.0, 0.0])).collect();
        let svg = day_chart("runs <a>", &days, &RUN_SERIES, Unit::Count);
        finite_svg(&svg);
        assert!(svg.contains("<title>2026-11-29: 3 (finished 2, with failures, blocked or error 1)</title>"), "{svg}");
        assert!(svg.contains("runs &lt;a&gt;") && svg.contains("swatch s-fail"), "{svg}");
        // The newest day is named under the axis; the top of the axis is 5 (3 runs at most).
        assert!(svg.contains(">11-30<") && svg.contains(">5<") && !svg.contains(">2.5<"), "{svg}");
        let cost = day_chart("cost", &[Column { label: "2026-11-30".into(), values: vec![0.1234], approx: true, unknown: 0 }], &[Series { name: "cost", colour: "accent" }], Unit::Usd);
        assert!(cost.contains("<title>2026-11-30: ~$0.1234</title>") && cost.contains(">~$0.12<") && !cost.contains("chart-legend"), "{cost}");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(f64::NAN), 1.0);
        assert_eq!(nice_top(3.0), 5.0);
        assert_eq!(nice_top(5.0), 5.0);
        assert!((nice_top(0.013) - 0.02).abs() < 1e-12, "{}", nice_top(0.013));
        assert_eq!(nice_top(7.2), 10.0);
        assert_eq!(nice_top(120.0), 200.0);
    }

    fn site(root: &std::path::Path) -> Site {
        let config = crate::config::Config::default();
        let logs_dir = root.join(&config.paths.logs_dir);
        Site { root: root.to_path_buf(), config, logs_dir }
    }

    fn link(plan: &str) -> String {
        format!("/plans/{}", crate::serve::html::path_segment(plan))
    }

    #[test]
    fn an_empty_history_says_so_plainly() {
        let d = tempfile::tempdir().unwrap();
        let page = history_page(&site(d.path()), None, &link).unwrap();
        assert!(page.contains("no runs recorded yet — <code>baton run</code> records them in .baton/baton.db"), "{page}");
        assert!(!page.contains("<svg"), "{page}");
        // A store with nothing in it is empty too, and a plan's page says whose.
        crate::store::Store::open(d.path()).unwrap();
        let page = history_page(&site(d.path()), Some("plans/<a>.yaml"), &link).unwrap();
        assert!(page.contains("no runs recorded yet for plans/&lt;a&gt;.yaml"), "{page}");
    }

    /// A store with two runs of two plans: a finished one with an estimated cost, one with
    /// failures and a session whose cost is unknown.
    fn store_with_runs(root: &std::path::Path) {
        let store = crate::store::Store::open(root).unwrap();
        let c = store.conn();
        c.execute_batch(
            "INSERT INTO runs (id, plan, kind, command, pid, started_at, ended_at, exit_code, ending, cost_usd) VALUES
               (1, 'plans/a.yaml', 'run', 'baton run', 1, '2026-11-29T10:00:00.000000000Z', '2026-11-29T10:03:20.000000000Z', 0, 'finished', 1.5),
               (2, 'plans/<b>.yaml', 'run', 'baton run', 2, '2026-11-30T10:00:00.000000000Z', '2026-11-30T10:01:00.000000000Z', 1, 'finished_with_failures', 0.25);
             INSERT INTO attempts (run_id, plan, task, session, attempt, agent, model, started_at, duration_secs, outcome, cost_usd, cost_estimated, agent_pid) VALUES
               (1, 'plans/a.yaml', '1.1', 1, 1, 'claude', 'opus', '2026-11-29T10:00:01.000000000Z', 60, 'completed', 1.0, 0, 10),
               (1, 'plans/a.yaml', '1.2', 2, 1, 'codex', 'gpt-5', '2026-11-29T10:01:01.000000000Z', 60, 'verified', 0.5, 1, 11),
               (2, 'plans/<b>.yaml', '1.1', 1, 1, 'claude', 'opus', '2026-11-30T10:00:01.000000000Z', 30, 'failed', 0.25, 0, 12),
               (2, 'plans/<b>.yaml', '1.2', 2, 1, 'gemini', NULL, '2026-11-30T10:00:31.000000000Z', 20, 'completed', NULL, 0, 13);",
        )
        .unwrap();
    }

    #[test]
    fn the_page_charts_the_runs_and_their_costs() {
        let d = tempfile::tempdir().unwrap();
        store_with_runs(d.path());
        let page = history_page(&site(d.path()), None, &link).unwrap();
        finite_svg(&page);
        // The total: the estimated session marks it; the unknown one is said, not counted.
        assert!(page.contains("Total: <strong>~$1.7500</strong> over 4 sessions"), "{page}");
        assert!(page.contains("1 session of unknown cost is not in these figures (not counted as $0)"), "{page}");
        // The newest run first, its plan linked and escaped, its tasks and its cost.
        let b = page.find("<a href=\"/plans/plans%2F%3Cb%3E.yaml\">plans/&lt;b&gt;.yaml</a>").expect(&page);
        let a = page.find("<a href=\"/plans/plans%2Fa.yaml\">plans/a.yaml</a>").expect(&page);
        assert!(b < a && !page.contains("<b>"), "{page}");
        assert!(page.contains("finished with failures, exit 1") && page.contains("1 / 2") && page.contains("2 / 2"), "{page}");
        assert!(page.contains("$0.2500 + 1 session of unknown cost") && page.contains("~$1.5000"), "{page}");
        assert!(page.contains("3m 20s"), "{page}");
        // The charts: runs a day, cost a day, by model (unknown said), by plan.
        assert_eq!(page.matches("<svg").count(), 4, "{page}");
        assert!(page.contains("<title>opus: $1.2500</title>") && page.contains("<title>gpt-5: ~$0.5000</title>"), "{page}");
        assert!(page.contains("<title>(unknown model): unknown (1 session)</title>"), "{page}");
        assert!(page.contains("<title>a: ~$1.5000</title>") && page.contains("<title>&lt;b&gt;: $0.2500 + 1 session of unknown cost</title>"), "{page}");
        assert!(page.contains("Cost by plan") && page.contains("Runs a day, the 30 days to "), "{page}");

        // One plan: its runs, its costs by task.
        let one = history_page(&site(d.path()), Some("plans/a.yaml"), &link).unwrap();
        assert!(one.contains("Cost by task") && one.contains("<title>1.2: ~$0.5000</title>") && !one.contains("&lt;b&gt;"), "{one}");
        assert!(one.contains("Total: <strong>~$1.5000</strong> over 2 sessions"), "{one}");
    }

    #[test]
    fn many_models_are_capped_with_the_others_added_up() {
        let groups: Vec<Group> = (0..15).map(|i| Group { key: vec![Some(format!("m{i}"))], sum: Sum { sessions: 1, cost_usd: f64::from(15 - i), ..Sum::default() } }).collect();
        let bars = top_bars(&groups, |g| g.key[0].clone().unwrap_or_default());
        assert_eq!(bars.len(), TOP + 1);
        assert_eq!((bars[TOP].label.as_str(), bars[TOP].value), ("3 others", 6.0));
    }
}
