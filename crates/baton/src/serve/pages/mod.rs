//! The dashboard's pages: server-rendered HTML (a little JavaScript in `assets/app.js` keeps
//! them live). Each page is a pure function of what the store, the plan file and the logs say;
//! `?part=main` answers only the page's `<main>`, which the script swaps in when the page's
//! plan changes.

pub mod charts;
pub mod graph;
pub mod layout;
pub mod overview;
pub mod plan;
pub mod task;
pub mod transcript;

use layout::{document, Frame, Nav};

use super::api::{self, Answer, Refused};
use super::Site;

/// The whole page, or only its `<main>` when the script asks.
fn answer(frame: &Frame<'_>, main: String, part: bool, css: &str) -> Answer {
    if part {
        Answer::Part { version: layout::version(&main), html: main }
    } else {
        Answer::Html(document(frame, &main, css))
    }
}

/// A refusal as a page: what went wrong and the way back.
pub fn error_page(status: axum::http::StatusCode, message: &str) -> String {
    let main = format!(
        "<h1>{} {}</h1><p class=\"error\" id=\"refusal\">{}</p><p><a href=\"/\">All plans</a> · <a href=\"/history\">History &amp; cost</a></p>",
        status.as_u16(),
        super::html::escape(status.canonical_reason().unwrap_or("")),
        super::html::escape(message)
    );
    // No live feed: a page that was refused has nothing to follow.
    document(&Frame { title: status.canonical_reason().unwrap_or("refused"), nav: Nav::Plans, live: "" }, &main, "")
}

/// `/`.
pub fn overview(site: &Site, part: bool) -> Answer {
    let lines = match api::plan_lines(site) {
        Ok(l) => l,
        Err(r) => return r.into(),
    };
    let queue = overview::backlog(site);
    answer(&Frame { title: "Plans", nav: Nav::Plans, live: "all" }, overview::main(&lines, &queue), part, "")
}

/// `/plans/{plan}`.
pub fn plan(site: &Site, name: &str, part: bool) -> Answer {
    let k = match api::find(site, name) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    let path = k.file_path(&site.root);
    if !k.file {
        let main = format!(
            "<div class=\"crumbs\"><a href=\"/\">Plans</a> / {id}</div><h1>{id}</h1><p class=\"notice\">The plan file {p} is gone; its runs are in the <a href=\"/history?plan={q}\">history</a>.</p>",
            id = super::html::escape(&k.id),
            p = super::html::escape(&k.path),
            q = super::html::path_segment(&k.id),
        );
        return answer(&Frame { title: &k.id, nav: Nav::Plans, live: &k.path }, main, part, "");
    }
    let file = match api::load_plan(&path) {
        Ok(f) => f,
        Err(e) => {
            let main = format!(
                "<div class=\"crumbs\"><a href=\"/\">Plans</a> / {id}</div><h1>{id}</h1><p class=\"error\">The plan file cannot be read as a plan; <code>baton check {p}</code> says the same:</p><pre>{e}</pre>",
                id = super::html::escape(&k.id),
                p = super::html::escape(&k.path),
                e = super::html::escape(&e),
            );
            return answer(&Frame { title: &k.id, nav: Nav::Plans, live: &k.path }, main, part, "");
        }
    };
    let place = crate::report::watch::Place { root: &site.root, plan: &path, config: &site.config };
    let records = crate::run::record::Records::new(&site.logs_dir, &path);
    let gathered = crate::report::status::gather(&place, file.plan(), &records);
    let run = crate::report::watch::run_view(&place, file.plan());
    let now = jiff::Timestamp::now();
    let waits = if run.is_some() { crate::store::Store::open_existing(&site.root).ok().flatten().and_then(|s| s.open_waits(&k.path, now).ok()).unwrap_or_default() } else { Vec::new() };
    let view = plan::PlanView {
        id: &k.id,
        path: &k.path,
        plan: file.plan(),
        gathered: &gathered,
        run: run.as_ref(),
        stopping: run.is_some() && api::stop_asked(site),
        waits: &waits,
        max_attempts: site.config.run.max_attempts,
        now,
    };
    let title = file.plan().meta.name.clone().unwrap_or_else(|| k.id.clone());
    let base = format!("/plans/{}/tasks/", super::html::path_segment(&k.id));
    let graph = graph::plan_graph(file.plan(), &|id| format!("{base}{}", super::html::path_segment(id)));
    answer(&Frame { title: &title, nav: Nav::Plans, live: &k.path }, plan::main(&view, &graph), part, "")
}

/// `/plans/{plan}/tasks/{task}`.
pub fn task(site: &Site, name: &str, id: &str, part: bool) -> Answer {
    let k = match api::find_task(site, name, id) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    let path = k.file_path(&site.root);
    let loaded = if k.file { api::load_plan(&path).ok() } else { None };
    let plan = loaded.as_ref().map(|f| f.plan());
    let pl = crate::report::history::Place { root: &site.root, plan: Some(&path), logs_dir: &site.logs_dir };
    let store = match crate::store::Store::open_existing(&site.root) {
        Ok(s) => s,
        Err(e) => return Refused { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: format!("{e} ({})", e.help()) }.into(),
    };
    let attempts = match crate::report::history::task_attempts(&pl, store.as_ref(), &k.path, id) {
        Ok(a) => a,
        Err(e) => return Refused { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: format!("{e} ({})", e.help()) }.into(),
    };
    let records = crate::run::record::Records::new(&site.logs_dir, &path).all(id);
    let plan_name = plan.and_then(|p| p.meta.name.clone()).unwrap_or_else(|| k.id.clone());
    let view = task::TaskView { plan_id: &k.id, plan_name: &plan_name, task_id: id, task: plan.and_then(|p| p.task(id)), attempts: &attempts, records: &records };
    let title = format!("{id} · {plan_name}");
    answer(&Frame { title: &title, nav: Nav::Plans, live: &k.path }, task::main(&view), part, "")
}

/// `/plans/{plan}/tasks/{task}/attempts/{session}/transcript`: the session's transcript as HTML
/// (a fragment the task page puts in place), with what the agent wrote on stderr.
pub fn transcript(site: &Site, name: &str, task: &str, session: u32) -> Answer {
    let (bytes, path, agent) = match api::transcript_bytes(site, name, task, session) {
        Ok(t) => t,
        Err(r) => return r.into(),
    };
    let kind = crate::config::AgentKind::named(&agent).unwrap_or(site.config.agent.kind);
    let dialect = crate::agent::dialect_of_transcript(&path).unwrap_or_else(|| crate::agent::dialect_for(kind));
    // Beside the transcript, read as a status file is (a regular file, capped).
    let stderr = crate::run::verdict::read_status_file(&path.with_extension("stderr")).ok().flatten();
    Answer::Html(transcript::with_stderr(&bytes, stderr.as_deref(), dialect))
}

/// `/history?plan=`: runs over time and cost by day, model and plan (or task, for one plan).
pub fn history(site: &Site, plan: Option<&str>, part: bool) -> Answer {
    let known = match super::plans::known(site) {
        Ok(k) => k,
        Err(e) => return Refused { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: format!("{e} ({})", e.help()) }.into(),
    };
    let one = match plan {
        Some(name) => match api::find(site, name) {
            Ok(k) => Some(k),
            Err(r) => return r.into(),
        },
        None => None,
    };
    let link = |path: &str| match known.iter().find(|k| k.path == path) {
        Some(k) => format!("/plans/{}", super::html::path_segment(&k.id)),
        None => "/".to_string(),
    };
    let (title, crumbs) = match &one {
        Some(k) => (format!("History of {}", k.id), format!("<div class=\"crumbs\"><a href=\"/history\">History</a> / <a href=\"/plans/{}\">{}</a></div>", super::html::path_segment(&k.id), super::html::escape(&k.id))),
        None => ("History and cost".to_string(), String::new()),
    };
    match charts::history_page(site, one.as_ref().map(|k| k.path.as_str()), &link) {
        Ok(body) => {
            let main = format!("{crumbs}<h1>{}</h1>{body}", super::html::escape(&title));
            let live = one.as_ref().map_or("all", |k| k.path.as_str());
            answer(&Frame { title: &title, nav: Nav::History, live }, main, part, "")
        }
        Err(e) => Refused { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: e }.into(),
    }
}
