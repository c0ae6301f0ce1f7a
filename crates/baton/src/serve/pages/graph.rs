//! The plan page's dependency graph, drawn by the server as one inline SVG.
//!
//! Layout: each section is a horizontal band, the bands stacked top to bottom in plan order.
//! Inside a band tasks stand in columns by their longest-path layer (a task sits right of
//! everything it depends on), the layers a band does not use squeezed out, nodes ordered
//! within a column by a few barycenter sweeps so that edges cross less. A column taller than
//! [`MAX_ROWS`] wraps into more columns, a band wider than [`MAX_COLS`] wraps into more rows,
//! so neither 500 independent tasks nor a chain of 500 becomes one line thousands of nodes
//! long. The SVG keeps its natural size inside a scrolling box (scaled down it is unreadable).
//!
//! Everything here is a pure function of the [`Plan`]: O(tasks + dependencies) but for the
//! sorts within columns. A plan that does not validate (a cycle, a dependency on a task that is
//! not there) is drawn as far as it makes sense; nothing here panics or loops on one.

use std::collections::HashMap;
use std::fmt::Write;

use crate::plan::{Plan, Status, Task, TaskId};
use crate::report::safe::cut;
use crate::serve::html::escape;

/// Nodes in one column before it wraps into the next.
pub const MAX_ROWS: usize = 16;
/// Columns in one row of a band before it wraps into the next row.
pub const MAX_COLS: usize = 8;

const NODE_W: usize = 150;
const NODE_H: usize = 36;
const COL_W: usize = NODE_W + 44;
const ROW_H: usize = NODE_H + 12;
const PAD: usize = 12;
const LABEL_H: usize = 26;
const WRAP_GAP: usize = 18;
const BAND_GAP: usize = 14;
const ID_CHARS: usize = 17;
const TITLE_CHARS: usize = 22;

/// What the graph needs from the page's stylesheet; the colours are the layout's variables.
pub const CSS: &str = "\
.graph{overflow:auto;max-width:100%;max-height:80vh;border:1px solid var(--border);background:var(--bg);-webkit-overflow-scrolling:touch}
.graph svg{display:block;max-width:none;font:12px system-ui,sans-serif}
.graph .band{fill:var(--panel);stroke:var(--border)}
.graph .band-label{fill:var(--muted);font-weight:600}
.graph .group{fill:none;stroke:var(--muted);stroke-dasharray:4 3}
.graph .edge{fill:none;stroke:var(--muted);stroke-width:1.2;opacity:.7}
.graph .edge.x{stroke-dasharray:5 4;opacity:.45}
.graph .edge.crit{stroke:var(--accent);stroke-width:2.5;opacity:1}
.graph .node rect{fill:var(--bg);stroke:var(--wait);stroke-width:1.5}
.graph .node text{fill:var(--fg)}
.graph .node .id{font-weight:700}
.graph .node .title{fill:var(--muted);font-size:11px}
.graph .node:hover rect,.graph .node:focus rect{fill:var(--panel)}
.graph .node.crit rect{stroke-width:3.5}
.graph .st-pending rect{stroke:var(--wait)}
.graph .st-in_progress rect{stroke:var(--run)}
.graph .st-completed rect,.graph .st-verified rect{stroke:var(--ok)}
.graph .st-failed rect,.graph .st-validation_exhausted rect{stroke:var(--fail)}
.graph .st-skipped rect,.graph .st-suspended rect{stroke:var(--skip)}
.graph .st-skipped text{text-decoration:line-through}
.graph .missing-dep rect{stroke-dasharray:3 2}
.graph .arrow{fill:var(--muted)}
.graph .arrow.crit{fill:var(--accent)}
.graph-empty{color:var(--muted)}
";

/// The dependency structure of a plan by task index (plan order): each task's dependencies
/// that exist (the first task of a duplicated id stands for it), a topological order, and each
/// task's longest-path layer.
struct Deps<'a> {
    tasks: Vec<&'a Task>,
    /// Per task, the indexes of its existing dependencies (not itself, each once).
    deps: Vec<Vec<usize>>,
    /// Per task, the indexes of the tasks that depend on it.
    dependents: Vec<Vec<usize>>,
    /// Every task once: dependencies first. Tasks on a cycle (or behind one) come last, in
    /// plan order.
    order: Vec<usize>,
    /// Per task, its place in `order`.
    pos: Vec<usize>,
    /// Task id → index of the first task with it.
    index: HashMap<&'a str, usize>,
}

impl<'a> Deps<'a> {
    fn new(plan: &'a Plan) -> Self {
        let tasks: Vec<&Task> = plan.tasks().collect();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            index.entry(t.id.as_str()).or_insert(i);
        }
        let mut deps = vec![Vec::new(); tasks.len()];
        let mut dependents = vec![Vec::new(); tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            for d in &t.depends_on {
                if let Some(&j) = index.get(d.as_str()) {
                    if j != i && !deps[i].contains(&j) {
                        deps[i].push(j);
                        dependents[j].push(i);
                    }
                }
            }
        }
        // Kahn's algorithm; ready tasks are taken in plan order of becoming ready.
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let i = order[head];
            head += 1;
            for &k in &dependents[i] {
                waiting[k] -= 1;
                if waiting[k] == 0 {
                    order.push(k);
                }
            }
        }
        let mut pos = vec![usize::MAX; tasks.len()];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }
        // What a cycle kept from being ordered, in plan order.
        for (i, p) in pos.iter_mut().enumerate() {
            if *p == usize::MAX {
                *p = order.len();
                order.push(i);
            }
        }
        Deps { tasks, deps, dependents, order, pos, index }
    }

    /// A dependency that comes before its dependent in `order`: every one, but those that
    /// close a cycle.
    fn before(&self, dep: usize, task: usize) -> bool {
        self.pos[dep] < self.pos[task]
    }

    /// Each task's longest-path layer: 0 for a task with no dependencies, else one more than
    /// its deepest dependency.
    fn layers(&self) -> Vec<usize> {
        let mut layer = vec![0usize; self.tasks.len()];
        for &i in &self.order {
            layer[i] = self.deps[i]
                .iter()
                .filter(|&&d| self.before(d, i))
                .map(|&d| layer[d] + 1)
                .max()
                .unwrap_or(0);
        }
        layer
    }

    /// The critical path as task indexes, first to run first.
    fn critical(&self) -> Vec<usize> {
        let open = |i: usize| !matches!(self.tasks[i].status, Status::Completed | Status::Verified | Status::Skipped);
        // Per task: the length of the longest open chain ending at it, and where it came from.
        let mut len = vec![0usize; self.tasks.len()];
        let mut prev = vec![usize::MAX; self.tasks.len()];
        let mut best: Option<usize> = None;
        for &i in &self.order {
            if !open(i) {
                continue;
            }
            let mut from = usize::MAX;
            for &d in &self.deps[i] {
                if open(d) && self.before(d, i) && (from == usize::MAX || len[d] > len[from]) {
                    from = d;
                }
            }
            len[i] = 1 + if from == usize::MAX { 0 } else { len[from] };
            prev[i] = from;
            if best.is_none_or(|b| len[i] > len[b]) {
                best = Some(i);
            }
        }
        let mut path = Vec::new();
        let mut at = best.unwrap_or(usize::MAX);
        while at != usize::MAX {
            path.push(at);
            at = prev[at];
        }
        path.reverse();
        path
    }
}

/// The longest chain of tasks not yet done (neither completed, verified nor skipped) through
/// their dependencies, each task counting 1: what stands between the plan and its end. First
/// to run first; empty when nothing is left. Of chains equally long, the one ending first in
/// dependency order.
pub fn critical_path(plan: &Plan) -> Vec<TaskId> {
    let deps = Deps::new(plan);
    deps.critical().into_iter().map(|i| deps.tasks[i].id.clone()).collect()
}

/// Where a node is drawn: its top-left corner.
#[derive(Clone, Copy, Default)]
struct At {
    x: usize,
    y: usize,
    band: usize,
    /// The row of its band (a band wider than `MAX_COLS` columns wraps into rows).
    row: usize,
}

/// The plan's dependency graph as an HTML fragment: a `<div class="graph">` scroll box holding
/// one `<svg>`. `link(task_id)` is the href of a task's page. Style it with [`CSS`].
pub fn plan_graph(plan: &Plan, link: &dyn Fn(&str) -> String) -> String {
    let deps = Deps::new(plan);
    let n = deps.tasks.len();
    if n == 0 {
        return "<div class=\"graph graph-empty\"><p>This plan has no tasks.</p></div>".to_string();
    }
    let layer = deps.layers();
    let crit = deps.critical();
    let mut on_crit = vec![false; n];
    for &i in &crit {
        on_crit[i] = true;
    }
    // The task after each on the critical path.
    let mut crit_next = vec![usize::MAX; n];
    for w in crit.windows(2) {
        crit_next[w[0]] = w[1];
    }
    // Which band (section) each task is in: tasks are numbered in plan order, section by section.
    let mut band_of = vec![0usize; n];
    let mut bands: Vec<std::ops::Range<usize>> = Vec::with_capacity(plan.sections.len());
    let mut start = 0;
    for (b, s) in plan.sections.iter().enumerate() {
        bands.push(start..start + s.tasks.len());
        band_of[start..start + s.tasks.len()].fill(b);
        start += s.tasks.len();
    }

    // Columns per band: its tasks grouped by layer, the layers it does not use left out.
    let mut columns: Vec<Vec<Vec<usize>>> = Vec::with_capacity(bands.len());
    let mut col_of = vec![0usize; n];
    for range in &bands {
        let mut used: Vec<usize> = layer[range.clone()].to_vec();
        used.sort_unstable();
        used.dedup();
        let mut cols = vec![Vec::new(); used.len()];
        for i in range.clone() {
            let c = used.binary_search(&layer[i]).unwrap_or(0);
            col_of[i] = c;
            cols[c].push(i);
        }
        columns.push(cols);
    }
    order_columns(&deps, &band_of, &col_of, &mut columns);

    // Positions: columns wrap at MAX_ROWS nodes, then a band's columns wrap at MAX_COLS.
    let mut at = vec![At::default(); n];
    let mut band_boxes: Vec<(usize, usize)> = Vec::with_capacity(bands.len()); // (y, height)
    let mut width = 0;
    let mut y = PAD;
    let mut groups: Vec<(usize, usize, usize, &str)> = Vec::new(); // (x, y top, y bottom, name)
    for (b, cols) in columns.iter().enumerate() {
        let top = y;
        let mut sub: Vec<&[usize]> = Vec::new();
        for col in cols {
            sub.extend(col.chunks(MAX_ROWS));
        }
        let mut row_y = top + LABEL_H;
        for (row, chunk) in sub.chunks(MAX_COLS).enumerate() {
            let tallest = chunk.iter().map(|c| c.len()).max().unwrap_or(0);
            for (c, col) in chunk.iter().enumerate() {
                let x = PAD * 2 + c * COL_W;
                for (r, &i) in col.iter().enumerate() {
                    at[i] = At { x, y: row_y + r * ROW_H, band: b, row };
                }
                // Runs of one parallel group in a column get a frame.
                let mut r = 0;
                while r < col.len() {
                    let g = deps.tasks[col[r]].parallel_group.as_deref();
                    let mut end = r + 1;
                    while end < col.len() && g.is_some() && deps.tasks[col[end]].parallel_group.as_deref() == g {
                        end += 1;
                    }
                    if let Some(g) = g {
                        groups.push((x, row_y + r * ROW_H, row_y + (end - 1) * ROW_H + NODE_H, g));
                    }
                    r = end;
                }
            }
            width = width.max(PAD * 3 + chunk.len() * COL_W);
            row_y += tallest * ROW_H + WRAP_GAP;
        }
        let height = (row_y - WRAP_GAP).max(top + LABEL_H) + PAD - top;
        band_boxes.push((top, height));
        y = top + height + BAND_GAP;
    }
    let height = y - BAND_GAP + PAD;
    let width = width.max(PAD * 3 + COL_W);

    let mut out = String::with_capacity(600 * n + 200 * deps.deps.iter().map(Vec::len).sum::<usize>() + 1024);
    let _ = write!(
        out,
        "<div class=\"graph\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"dependency graph of {n} tasks\">\
         <defs><marker id=\"baton-arrow\" class=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L8,4L0,8z\"/></marker>\
         <marker id=\"baton-arrow-crit\" class=\"arrow crit\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L8,4L0,8z\"/></marker></defs>"
    );
    for (b, s) in plan.sections.iter().enumerate() {
        let (top, h) = band_boxes[b];
        let label = match &s.name {
            Some(name) if !name.trim().is_empty() => format!("{} — {}", s.id, one_line(name)),
            _ => s.id.clone(),
        };
        let _ = write!(
            out,
            "<g class=\"section\" data-section=\"{}\"><rect class=\"band\" x=\"{PAD}\" y=\"{top}\" width=\"{}\" height=\"{h}\" rx=\"6\"/><text class=\"band-label\" x=\"{}\" y=\"{}\">{}</text></g>",
            escape(&s.id),
            width - 2 * PAD,
            PAD * 2,
            top + 15,
            escape(&cut(&label, 80)),
        );
    }
    for (x, y0, y1, g) in &groups {
        let _ = write!(
            out,
            "<rect class=\"group\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\"><title>parallel group {}</title></rect>",
            x - 5,
            y0 - 4,
            NODE_W + 10,
            y1 - y0 + 8,
            escape(g),
        );
    }
    // Edges under the nodes; those on the critical path last, so they are drawn on top.
    let mut crit_edges = String::new();
    for i in 0..n {
        for &d in &deps.deps[i] {
            let is_crit = crit_next[d] == i;
            let (a, t) = (at[d], at[i]);
            let across = a.band != t.band || a.row != t.row || t.x <= a.x;
            let class = match (is_crit, across) {
                (true, _) => "edge crit",
                (false, true) => "edge x",
                (false, false) => "edge",
            };
            let marker = if is_crit { "baton-arrow-crit" } else { "baton-arrow" };
            let target = if is_crit { &mut crit_edges } else { &mut out };
            let _ = write!(
                target,
                "<path class=\"{class}\" data-from=\"{}\" data-to=\"{}\" d=\"{}\" marker-end=\"url(#{marker})\"/>",
                escape(deps.tasks[d].id.as_str()),
                escape(deps.tasks[i].id.as_str()),
                edge_path(a, t),
            );
        }
    }
    out.push_str(&crit_edges);
    for (i, t) in deps.tasks.iter().enumerate() {
        let p = at[i];
        let id = t.id.as_str();
        let missing: Vec<&str> = t
            .depends_on
            .iter()
            .map(TaskId::as_str)
            .filter(|d| !deps.index.contains_key(d))
            .collect();
        let mut class = format!("node st-{}", t.status.as_str());
        if on_crit[i] {
            class.push_str(" crit");
        }
        if !missing.is_empty() {
            class.push_str(" missing-dep");
        }
        let mut tip = format!("{id} — {} ({})", t.name, t.status.as_str());
        if let Some(g) = &t.parallel_group {
            let _ = write!(tip, "\nparallel group: {g}");
        }
        if !t.depends_on.is_empty() {
            let all: Vec<&str> = t.depends_on.iter().map(TaskId::as_str).collect();
            let _ = write!(tip, "\ndepends on: {}", all.join(", "));
        }
        if !missing.is_empty() {
            let _ = write!(tip, "\nnot in the plan: {}", missing.join(", "));
        }
        if on_crit[i] {
            tip.push_str("\non the critical path");
        }
        let _ = write!(
            out,
            "<a class=\"{class}\" href=\"{}\" data-task=\"{}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"5\"/><text class=\"id\" x=\"{}\" y=\"{}\">{}</text><text class=\"title\" x=\"{}\" y=\"{}\">{}</text></a>",
            escape(&link(id)),
            escape(id),
            escape(&tip),
            p.x,
            p.y,
            p.x + 7,
            p.y + 14,
            escape(&cut(id, ID_CHARS)),
            p.x + 7,
            p.y + 29,
            escape(&cut(&one_line(&t.name), TITLE_CHARS)),
        );
    }
    out.push_str("</svg></div>");
    out
}

/// The `d` of an edge from the right side of `from` to the left side of `to`: a curve when `to`
/// stands to the right; else (a band that wrapped, a section depending on a later one) a line
/// around the nodes: out into the gap between columns, along the gap between rows above `to`,
/// and in from its left.
fn edge_path(from: At, to: At) -> String {
    let (x1, y1) = (from.x + NODE_W, from.y + NODE_H / 2);
    let (x2, y2) = (to.x, to.y + NODE_H / 2);
    let gap = (COL_W - NODE_W) / 3;
    if x2 >= x1 + gap {
        let bend = (x2 - x1) / 2;
        format!("M{x1},{y1}C{},{y1} {},{y2} {x2},{y2}", x1 + bend, x2 - bend)
    } else {
        let above = to.y - (ROW_H - NODE_H) / 2;
        format!("M{x1},{y1}H{}V{above}H{}V{y2}H{x2}", x1 + gap, x2 - gap)
    }
}

/// Orders each band's columns to reduce crossings: sweeps right then left then right, each
/// node placed at the mean relative height of its neighbours in the band's previous (or next)
/// column it touches; then the members of a parallel group in a column are brought together.
/// Edges between bands do not pull: bands are laid out apart.
fn order_columns(deps: &Deps, band_of: &[usize], col_of: &[usize], columns: &mut [Vec<Vec<usize>>]) {
    let mut place = vec![0.0f64; band_of.len()];
    for col in columns.iter().flatten() {
        set_places(col, &mut place);
    }
    for pass in 0..3 {
        let downward = pass % 2 == 0;
        for cols in columns.iter_mut() {
            let count = cols.len();
            for step in 1..count {
                let c = if downward { step } else { count - 1 - step };
                let mut keyed: Vec<(f64, usize)> = cols[c]
                    .iter()
                    .map(|&i| {
                        let near = if downward { &deps.deps[i] } else { &deps.dependents[i] };
                        let (mut sum, mut k) = (0.0, 0usize);
                        for &j in near {
                            if band_of[j] == band_of[i] && col_of[j] != col_of[i] {
                                sum += place[j];
                                k += 1;
                            }
                        }
                        (if k == 0 { place[i] } else { sum / k as f64 }, i)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                cols[c] = keyed.into_iter().map(|(_, i)| i).collect();
                set_places(&cols[c], &mut place);
            }
        }
    }
    for cols in columns.iter_mut() {
        for col in cols.iter_mut() {
            let mut first: HashMap<&str, usize> = HashMap::new();
            let mut keyed: Vec<(usize, usize, usize)> = col
                .iter()
                .enumerate()
                .map(|(r, &i)| {
                    let g = deps.tasks[i].parallel_group.as_deref().map_or(r, |g| *first.entry(g).or_insert(r));
                    (g, r, i)
                })
                .collect();
            keyed.sort_unstable();
            *col = keyed.into_iter().map(|(_, _, i)| i).collect();
        }
    }
}

/// Each node's place in its column, as a fraction of the column's height (columns differ in
/// height, so raw indexes would not compare).
fn set_places(col: &[usize], place: &mut [f64]) {
    let len = col.len() as f64;
    for (r, &i) in col.iter().enumerate() {
        place[i] = (r as f64 + 0.5) / len;
    }
}

/// A title on one line: runs of whitespace (newlines of a `|` block among them) as one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_plan;

    fn plan(src: &str) -> Plan {
        parse_plan(src).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn link(id: &str) -> String {
        format!("/plans/p/tasks/{}", crate::serve::html::path_segment(id))
    }

    fn ids(path: &[TaskId]) -> Vec<&str> {
        path.iter().map(TaskId::as_str).collect()
    }

    /// The `<a …>` element of one node, up to its end.
    fn node<'a>(svg: &'a str, id: &str) -> &'a str {
        let key = format!("data-task=\"{id}\"");
        let at = svg.find(&key).unwrap_or_else(|| panic!("no node {id} in {svg}"));
        let start = svg[..at].rfind("<a ").unwrap();
        let end = at + svg[at..].find("</a>").unwrap();
        &svg[start..end]
    }

    const SMALL: &str = "sections:
- id: s1
  name: Setup & <build>
  tasks:
  - {id: '1.1', name: scaffold, status: completed}
  - {id: '1.2', name: '<script>alert(1)</script>', status: in_progress, depends_on: ['1.1']}
  - {id: '1.3', name: docs, status: failed, parallel_group: g}
- id: s2
  tasks:
  - {id: '2.1', name: wire, status: pending, depends_on: ['1.2', '1.3'], parallel_group: g}
  - {id: '2.2', name: check, status: skipped, depends_on: ['2.1']}
  - {id: '2.3', name: ship, status: validation_exhausted, depends_on: ['2.1']}
";

    #[test]
    fn every_task_is_a_linked_node_with_its_status() {
        let p = plan(SMALL);
        let html = plan_graph(&p, &link);
        assert!(html.starts_with("<div class=\"graph\"><svg ") && html.ends_with("</svg></div>"), "{html}");
        assert_eq!(html.matches("<svg").count(), 1);
        for t in p.tasks() {
            let a = node(&html, t.id.as_str());
            assert!(a.contains(&format!("st-{}", t.status.as_str())), "{a}");
            assert!(a.contains(&format!("href=\"/plans/p/tasks/{}\"", t.id)), "{a}");
            assert!(a.contains(&format!("<title>{} — ", t.id)), "{a}");
        }
        assert!(node(&html, "1.2").contains("st-in_progress"));
        assert!(node(&html, "2.3").contains("st-validation_exhausted"));
        // Both sections are labelled bands; both group members are framed.
        assert!(html.contains("data-section=\"s1\"") && html.contains("Setup &amp; &lt;build&gt;"), "{html}");
        assert!(html.contains("data-section=\"s2\""));
        assert_eq!(html.matches("<title>parallel group g</title>").count(), 2);
        // Five edges, each once.
        assert_eq!(html.matches("<path class=\"edge").count(), 5);
        assert!(html.contains("data-from=\"2.1\" data-to=\"2.3\""));
    }

    #[test]
    fn markup_in_a_title_is_text() {
        let html = plan_graph(&plan(SMALL), &link);
        assert!(!html.contains("<script>"), "{html}");
        assert!(node(&html, "1.2").contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_long_title_is_cut_and_whole_in_the_tooltip() {
        let long = "a very long title that goes on and on past the width of any node";
        let html = plan_graph(&plan(&format!("sections:\n- id: s\n  tasks:\n  - {{id: a, name: '{long}'}}\n")), &link);
        let a = node(&html, "a");
        assert!(a.contains(&format!("<title>a — {long} (pending)")), "{a}");
        assert!(a.contains(&format!(">{}</text>", cut(long, TITLE_CHARS))), "{a}");
        assert!(cut(long, TITLE_CHARS).ends_with('…'));
    }

    #[test]
    fn critical_path_of_a_chain_skips_what_is_done() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: a, status: completed}\n  - {id: b, name: b, depends_on: [a]}\n  - {id: c, name: c, depends_on: [b]}\n  - {id: d, name: d, status: failed, depends_on: [c]}\n");
        assert_eq!(ids(&critical_path(&p)), ["b", "c", "d"]);
    }

    #[test]
    fn critical_path_of_a_diamond_takes_the_longer_side() {
        // a → {b, c → c2} → d: the side through c and c2 is longer.
        let src = "sections:\n- id: s\n  tasks:\n  - {id: a, name: a}\n  - {id: b, name: b, depends_on: [a]}\n  - {id: c, name: c, depends_on: [a]}\n  - {id: c2, name: c2, depends_on: [c]}\n  - {id: d, name: d, depends_on: [b, c2]}\n";
        let p = plan(src);
        assert_eq!(ids(&critical_path(&p)), ["a", "c", "c2", "d"]);
        // Once c2 is done, the chain breaks there: a → b → d and a → c are what is left.
        let p = plan(&src.replace("{id: c2, name: c2,", "{id: c2, name: c2, status: verified,"));
        assert_eq!(ids(&critical_path(&p)), ["a", "b", "d"]);
        let html = plan_graph(&p, &link);
        for id in ["a", "b", "d"] {
            assert!(node(&html, id).contains(" crit"), "{id}");
        }
        for id in ["c", "c2"] {
            assert!(!node(&html, id).contains(" crit"), "{id}");
        }
        assert!(html.contains("class=\"edge crit\" data-from=\"a\" data-to=\"b\""), "{html}");
        assert!(html.contains("class=\"edge crit\" data-from=\"b\" data-to=\"d\""));
        assert!(!html.contains("class=\"edge crit\" data-from=\"a\" data-to=\"c\""));
    }

    #[test]
    fn critical_path_is_empty_when_all_is_done() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: a, status: completed}\n  - {id: b, name: b, status: skipped, depends_on: [a]}\n");
        assert!(critical_path(&p).is_empty());
        let html = plan_graph(&p, &link);
        assert!(!html.contains("edge crit"));
        assert!(!node(&html, "a").contains("crit") && !node(&html, "b").contains("crit"));
    }

    #[test]
    fn a_missing_dependency_or_a_cycle_is_drawn_without_panic() {
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: a}\n  - {id: b, name: b, depends_on: [a]}\n  - {id: c, name: c, depends_on: [b]}\n");
        p.sections[0].tasks[1].depends_on.push(TaskId::from("nope"));
        let html = plan_graph(&p, &link);
        assert!(node(&html, "b").contains("missing-dep") && node(&html, "b").contains("not in the plan: nope"));
        assert_eq!(ids(&critical_path(&p)), ["a", "b", "c"]);
        // a ↔ c: a cycle, and a task depending on itself.
        p.sections[0].tasks[0].depends_on.push(TaskId::from("c"));
        p.sections[0].tasks[2].depends_on.push(TaskId::from("c"));
        let html = plan_graph(&p, &link);
        assert_eq!(html.matches("<a class=\"node").count(), 3);
        assert!(critical_path(&p).len() <= 3);
    }

    #[test]
    fn an_empty_plan_says_so() {
        let p = Plan::default();
        assert!(plan_graph(&p, &link).contains("no tasks"));
        assert!(critical_path(&p).is_empty());
    }

    /// Top-left corners of every node, by id.
    fn corners(svg: &str) -> HashMap<String, (usize, usize)> {
        let mut out = HashMap::new();
        for part in svg.split("<a class=\"node").skip(1) {
            let field = |key: &str| {
                let s = &part[part.find(key).unwrap() + key.len()..];
                s[..s.find('"').unwrap()].to_string()
            };
            out.insert(field("data-task=\""), (field("<rect x=\"").parse().unwrap(), field("\" y=\"").parse().unwrap()));
        }
        out
    }

    #[test]
    fn five_hundred_tasks_render_and_wrap() {
        // 20 sections of 25 tasks: each section a chain with side branches, depending on the
        // previous section's last task.
        let mut src = String::from("sections:\n");
        for s in 0..20 {
            let _ = write!(src, "- id: s{s}\n  name: section {s}\n  tasks:\n");
            for t in 0..25 {
                let status = ["completed", "in_progress", "pending", "failed"][(s * 25 + t) % 4];
                let dep = match (s, t) {
                    (0, 0) => String::new(),
                    (_, 0) => format!(", depends_on: ['{}.24']", s - 1),
                    (_, t) if t % 3 == 0 => format!(", depends_on: ['{s}.{}', '{s}.{}']", t - 1, t / 2),
                    (_, t) => format!(", depends_on: ['{s}.{}']", t - 1),
                };
                let _ = writeln!(src, "  - {{id: '{s}.{t}', name: 'task {t} of section {s}', status: {status}{dep}}}");
            }
        }
        let p = plan(&src);
        let started = std::time::Instant::now();
        let html = plan_graph(&p, &link);
        let took = started.elapsed();
        eprintln!("500 tasks in 20 chained sections: {took:?}, {} bytes", html.len());
        assert_eq!(html.matches("<a class=\"node").count(), 500);
        let edges: usize = p.tasks().map(|t| t.depends_on.len()).sum();
        assert_eq!(html.matches("<path class=\"edge").count(), edges);
        // A chain of 25 wraps at MAX_COLS columns: no band is wider.
        let max_x = corners(&html).values().map(|c| c.0).max().unwrap();
        assert!(max_x < PAD * 2 + MAX_COLS * COL_W, "{max_x}");

        // 500 independent tasks in one section: columns of MAX_ROWS, rows of MAX_COLS columns.
        let mut flat = String::from("sections:\n- id: s\n  tasks:\n");
        for t in 0..500 {
            let _ = writeln!(flat, "  - {{id: 't{t}', name: 'task {t}'}}");
        }
        let p = plan(&flat);
        let started = std::time::Instant::now();
        let html = plan_graph(&p, &link);
        eprintln!("500 independent tasks: {:?}, {} bytes", started.elapsed(), html.len());
        let at = corners(&html);
        assert_eq!(at.len(), 500);
        let xs: std::collections::HashSet<usize> = at.values().map(|c| c.0).collect();
        let ys: std::collections::HashSet<usize> = at.values().map(|c| c.1).collect();
        assert_eq!(xs.len(), MAX_COLS);
        assert_eq!(ys.len(), 500usize.div_ceil(MAX_ROWS * MAX_COLS) * MAX_ROWS);
        // The critical path of independent tasks is one task.
        assert_eq!(critical_path(&p).len(), 1);
    }

    #[test]
    fn a_dependent_stands_right_of_its_dependency_in_a_band() {
        let html = plan_graph(&plan(SMALL), &link);
        let at = corners(&html);
        assert!(at["1.2"].0 > at["1.1"].0);
        assert!(at["2.2"].0 > at["2.1"].0 && at["2.3"].0 == at["2.2"].0);
        // Section 2 is below section 1.
        assert!(at["2.1"].1 > at["1.3"].1.max(at["1.2"].1));
    }
}
