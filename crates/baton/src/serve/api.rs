//! The answers of `/api/`: the same documents `baton status --json`, `baton history --json` and
//! `baton cost --json` print, made by the same functions; and the one minimal page.
//!
//! A plan is found in the list of known plans, a task in its plan or its history, a transcript
//! from the run history and only under the logs folder: nothing a URL says becomes a path.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::plans::{self, Known};
use super::Site;
use crate::report::history::{self, CostBy};
use crate::report::status::Counts;

/// The most of a transcript one answer carries: its last bytes beyond this are cut.
pub const TRANSCRIPT_CAP: u64 = 8 * 1024 * 1024;

/// A request refused: its status and a message for the person or tool that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    pub fn not_found(message: impl Into<String>) -> Refused {
        Refused { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    fn bad(message: impl Into<String>) -> Refused {
        Refused { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    fn failed(message: impl std::fmt::Display) -> Refused {
        Refused { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.to_string() }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (self.status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
    }
}

/// What a handler answers.
pub enum Answer {
    Json(String),
    Html(String),
    /// A page's `<main>` for the script's refresh, with its fingerprint (`X-Baton-Version`).
    Part { html: String, version: String },
    /// A transcript's JSON lines.
    Lines(Vec<u8>),
    Refused(Refused),
}

impl From<Refused> for Answer {
    fn from(r: Refused) -> Answer {
        Answer::Refused(r)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let no_store = (header::CACHE_CONTROL, "no-store");
        match self {
            Answer::Json(t) => ([(header::CONTENT_TYPE, "application/json"), no_store], t).into_response(),
            Answer::Html(t) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), no_store], t).into_response(),
            Answer::Part { html, version } => ([(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()), (header::CACHE_CONTROL, "no-store".to_string()), (header::HeaderName::from_static("x-baton-version"), version)], html).into_response(),
            Answer::Lines(b) => ([(header::CONTENT_TYPE, "application/x-ndjson"), no_store], b).into_response(),
            Answer::Refused(r) => r.into_response(),
        }
    }
}

fn known(site: &Site) -> Result<Vec<Known>, Refused> {
    plans::known(site).map_err(|e| Refused::failed(format!("{e} ({})", e.help())))
}

/// The known plan `name`, or a 404 that lists the ids there are.
pub fn find(site: &Site, name: &str) -> Result<Known, Refused> {
    let known = known(site)?;
    plans::find(&known, name).cloned().ok_or_else(|| {
        let same: Vec<&str> = known.iter().filter(|k| plans::stem(&k.path) == name).map(|k| k.path.as_str()).collect();
        if same.len() > 1 {
            return Refused::not_found(format!("more than one plan is named `{}`: name it by its path, one of {}", crate::report::safe::one_line(name), same.join(", ")));
        }
        let ids: Vec<&str> = known.iter().map(|k| k.id.as_str()).collect();
        Refused::not_found(format!("no plan `{}` here; the plans: {} (GET /api/plans)", crate::report::safe::one_line(name), if ids.is_empty() { "none".to_string() } else { ids.join(", ") }))
    })
}

/// A task id as a URL may name one: what a plan's ids are made of, no path.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.contains("..") && !id.starts_with('.') && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// One plan in `GET /api/plans`.
#[derive(Serialize)]
pub struct PlanLine {
    #[serde(flatten)]
    pub known: Known,
    /// `meta.name`.
    pub name: Option<String>,
    pub counts: Option<Counts>,
    /// Why the plan file cannot be read as a plan.
    pub error: Option<String>,
    /// The `baton run` holding it now.
    pub running_pid: Option<u32>,
    /// What it has cost over all its runs.
    pub spent_usd: Option<f64>,
    /// `running`, `stopping` (a stop was asked), `done`, `failed` (a task failed), `blocked`
    /// (a task is suspended), `stopped` (begun, not running, not done), `new`, `unreadable`,
    /// `gone` (only the history knows it).
    pub state: &'static str,
    /// When the plan file last changed (RFC 3339): a run saves it at every step.
    pub last_activity: Option<String>,
}

/// What state a plan is in, from its counts and whether a run holds it.
pub fn plan_state(counts: Option<&Counts>, running: bool, stopping: bool, unreadable: bool) -> &'static str {
    if running {
        return if stopping { "stopping" } else { "running" };
    }
    let Some(c) = counts else { return if unreadable { "unreadable" } else { "gone" } };
    if c.total > 0 && c.completed + c.verified + c.skipped == c.total {
        "done"
    } else if c.failed + c.validation_exhausted > 0 {
        "failed"
    } else if c.suspended > 0 {
        "blocked"
    } else if c.completed + c.verified + c.in_progress + c.skipped > 0 {
        "stopped"
    } else {
        "new"
    }
}

/// The largest plan file the server reads (a plan of thousands of tasks is a few MiB).
pub const PLAN_MAX_BYTES: u64 = 32 << 20;

/// A plan file as the server reads it: only a regular file, and not a huge one (each page reads
/// it again), else the reason as `baton check` would give one.
pub fn load_plan(path: &Path) -> Result<crate::plan::PlanFile, String> {
    // A plan may be a link to one (as for `baton run`); what it leads to must be a file.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(format!("{}: not a regular file", path.display())),
        Ok(m) if m.len() > PLAN_MAX_BYTES => return Err(format!("{}: the plan file is {} MiB; the dashboard reads plans of at most {} MiB", path.display(), m.len() >> 20, PLAN_MAX_BYTES >> 20)),
        Ok(_) => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    crate::plan::PlanFile::load(path).map_err(|e| e.render_in_run())
}

/// Whether a stop was asked of the checkout's run (its stop file is there).
pub fn stop_asked(site: &Site) -> bool {
    site.root.join(&site.config.paths.stop_file).exists()
}

/// A file's modification time, RFC 3339.
pub fn modified_at(path: &Path) -> Option<String> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    jiff::Timestamp::try_from(t).ok().map(|t| t.to_string())
}

/// Every known plan with its state, progress, cost and last activity.
pub fn plan_lines(site: &Site) -> Result<Vec<PlanLine>, Refused> {
    let known = known(site)?;
    let store = crate::store::Store::open_existing(&site.root).ok().flatten();
    let stopping = stop_asked(site);
    Ok(known
        .into_iter()
        .map(|k| {
            let file = k.file_path(&site.root);
            let (name, counts, error) = if k.file {
                match load_plan(&file) {
                    Ok(f) => (f.plan().meta.name.clone(), Some(Counts::of(f.plan())), None),
                    Err(e) => (None, None, Some(e)),
                }
            } else {
                (None, None, None)
            };
            let running_pid = crate::run::lock::plan_holder(&site.logs_dir.join("locks"), &file);
            let spent_usd = store.as_ref().and_then(|s| s.plan_spent(&k.path).ok());
            let state = plan_state(counts.as_ref(), running_pid.is_some(), stopping, error.is_some());
            let last_activity = if k.file { modified_at(&file) } else { None };
            PlanLine { known: k, name, counts, error, running_pid, spent_usd, state, last_activity }
        })
        .collect())
}

/// `GET /api/plans`: `{"plans": [{id, path, file, recorded, name, counts, error, running_pid,
/// spent_usd, state, last_activity}], "backlog": [{kind, path, slug}]}`.
pub fn plans(site: &Site) -> Answer {
    match plan_lines(site) {
        Ok(lines) => Answer::Json(serde_json::to_string_pretty(&serde_json::json!({ "plans": lines, "backlog": super::pages::overview::backlog(site) })).unwrap_or_default()),
        Err(r) => r.into(),
    }
}

/// `GET /api/plans/{plan}`: `baton status --json` of the plan.
pub fn plan(site: &Site, name: &str) -> Answer {
    let k = match find(site, name) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    if !k.file {
        return Refused::not_found(format!("the plan file {} is gone; its runs: GET /api/history?plan={}", k.path, k.id)).into();
    }
    let path = k.file_path(&site.root);
    let file = match load_plan(&path) {
        Ok(f) => f,
        Err(e) => return Refused { status: StatusCode::UNPROCESSABLE_ENTITY, message: e }.into(),
    };
    let place = crate::report::watch::Place { root: &site.root, plan: &path, config: &site.config };
    // A history that cannot be read is said in the document by its absence (`spending: null`).
    let (text, _warning) = crate::report::status::json_of(&place, file.plan(), &k.path);
    Answer::Json(text)
}

/// `POST /api/plans/{plan}/stop`: asks the run holding the plan to stop gracefully, as
/// `baton stop` does. `{"said": "..."}`; 409 when no run holds the plan.
pub fn stop(site: &Site, name: &str) -> Answer {
    let k = match find(site, name) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    if crate::run::lock::plan_holder(&site.logs_dir.join("locks"), &k.file_path(&site.root)).is_none() {
        return Refused { status: StatusCode::CONFLICT, message: format!("no baton run holds the plan {}: nothing to stop", k.id) }.into();
    }
    match crate::control::ask_stop(&site.root, &site.config) {
        Ok(crate::control::StopAsked::Asked { pid, .. }) => Answer::Json(
            serde_json::json!({ "said": format!("stop asked: the run (pid {pid}) starts no new task, lets the running ones finish, saves and exits") }).to_string(),
        ),
        Ok(crate::control::StopAsked::NoRun { .. }) => Refused { status: StatusCode::CONFLICT, message: format!("the run of {} has just ended: nothing to stop", k.id) }.into(),
        Err(e) => Refused::failed(crate::error::render(&e)).into(),
    }
}

/// The plan `name` and its task `task`: known to the plan file or to the history.
pub fn find_task(site: &Site, name: &str, task: &str) -> Result<Known, Refused> {
    if !valid_task_id(task) {
        return Err(Refused::bad(format!("`{}` is not a task id (letters, digits, `.`, `_`, `-`; no `..`)", crate::report::safe::one_line(task))));
    }
    let k = find(site, name)?;
    let in_plan = k.file && load_plan(&k.file_path(&site.root)).is_ok_and(|f| f.plan().tasks().any(|t| t.id.as_str() == task));
    let in_history = || crate::store::Store::open_existing(&site.root).ok().flatten().and_then(|s| s.task_ids(&k.path).ok()).is_some_and(|ids| ids.iter().any(|i| i == task));
    if !in_plan && !in_history() {
        return Err(Refused::not_found(format!("plan {} has no task `{task}`, and no attempts of one are recorded", k.id)));
    }
    Ok(k)
}

fn place<'a>(site: &'a Site, plan: Option<&'a Path>) -> history::Place<'a> {
    history::Place { root: &site.root, plan, logs_dir: &site.logs_dir }
}

/// `GET /api/plans/{plan}/tasks/{task}`: `baton history PLAN --task ID --json`.
pub fn task(site: &Site, name: &str, task: &str) -> Answer {
    let k = match find_task(site, name, task) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    let file = k.file_path(&site.root);
    match history::task_history_json(&place(site, Some(&file)), task) {
        Ok(t) => Answer::Json(t),
        Err(e) => Refused::failed(format!("{e} ({})", e.help())).into(),
    }
}

/// `GET /api/plans/{plan}/tasks/{task}/attempts/{session}/transcript`: the session's transcript
/// as the agent wrote it (its last [`TRANSCRIPT_CAP`] bytes, from a line start).
pub fn transcript(site: &Site, name: &str, task: &str, session: u32) -> Answer {
    match transcript_bytes(site, name, task, session) {
        Ok((bytes, _, _)) => Answer::Lines(bytes),
        Err(r) => r.into(),
    }
}

/// A session's transcript (its last [`TRANSCRIPT_CAP`] bytes) and the kind of agent that ran
/// it, as the run history records them; the file only when it is under the logs folder.
pub fn transcript_bytes(site: &Site, name: &str, task: &str, session: u32) -> Result<(Vec<u8>, PathBuf, String), Refused> {
    let k = find_task(site, name, task)?;
    let file = k.file_path(&site.root);
    let pl = place(site, Some(&file));
    let store = crate::store::Store::open_existing(&site.root).map_err(|e| Refused::failed(format!("{e} ({})", e.help())))?;
    let attempts = history::task_attempts(&pl, store.as_ref(), &k.path, task).map_err(|e| Refused::failed(format!("{e} ({})", e.help())))?;
    let Some((recorded, agent)) = attempts.iter().rev().find(|a| a.kind == "task" && a.session == i64::from(session)).and_then(|a| Some((a.transcript.clone()?, a.agent.clone()))) else {
        return Err(Refused::not_found(format!("no transcript recorded for session {session} of task {task} in plan {}", k.id)));
    };
    let path = under_logs(site, &recorded)?;
    match tail(&path, TRANSCRIPT_CAP) {
        Ok(bytes) => Ok((bytes, path, agent)),
        Err(e) => Err(Refused::not_found(format!("the transcript {recorded} cannot be read: {e}"))),
    }
}

/// A transcript path the history names (relative to the main checkout) as a file under the
/// logs folder; anything else — absolute, `..`, a link out — refused.
pub fn under_logs(site: &Site, recorded: &str) -> Result<PathBuf, Refused> {
    let rel = Path::new(recorded);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(Refused { status: StatusCode::FORBIDDEN, message: format!("the transcript path {recorded} is not under the logs folder") });
    }
    let home = crate::store::home(&site.root);
    let real = std::fs::canonicalize(home.join(rel)).map_err(|e| Refused::not_found(format!("the transcript {recorded} is gone: {e}")))?;
    let logs = std::fs::canonicalize(home.join(&site.config.paths.logs_dir)).map_err(|e| Refused::not_found(format!("no logs folder: {e}")))?;
    if !real.starts_with(&logs) || !real.is_file() {
        return Err(Refused { status: StatusCode::FORBIDDEN, message: format!("the transcript path {recorded} is not a file under the logs folder") });
    }
    Ok(real)
}

/// The file, or its last `cap` bytes from the first line start among them.
fn tail(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut f = crate::fsx::open_regular(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(cap);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - from).unwrap_or(0));
    f.take(cap).read_to_end(&mut bytes)?;
    if from > 0 {
        let start = bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
        bytes.drain(..start);
    }
    Ok(bytes)
}

/// The plan a `?plan=` names, as a path for `history::Place`.
fn plan_param(site: &Site, name: Option<&str>) -> Result<Option<PathBuf>, Refused> {
    name.map(|n| find(site, n).map(|k| k.file_path(&site.root))).transpose()
}

/// `GET /api/history?plan=&limit=`: `baton history [PLAN] --json --limit N` (20 by default).
pub fn history(site: &Site, plan: Option<&str>, limit: Option<usize>) -> Answer {
    let file = match plan_param(site, plan) {
        Ok(f) => f,
        Err(r) => return r.into(),
    };
    if limit == Some(0) {
        return Refused::bad("limit: at least 1 (as `baton history --limit N`)").into();
    }
    let limit = limit.unwrap_or(20).min(1000);
    match history::history_json(&place(site, file.as_deref()), limit) {
        Ok(t) => Answer::Json(t),
        Err(e) => Refused::failed(format!("{e} ({})", e.help())).into(),
    }
}

/// `GET /api/cost?plan=&by=&since=`: `baton cost [PLAN] --json [--by GROUP] [--since WHEN]`.
pub fn cost(site: &Site, plan: Option<&str>, by: Option<CostBy>, since: Option<&str>) -> Answer {
    let file = match plan_param(site, plan) {
        Ok(f) => f,
        Err(r) => return r.into(),
    };
    let since = match since.map(|s| history::parse_since(s, &jiff::ZonedDateTime::now())).transpose() {
        Ok(s) => s,
        Err(e) => return Refused::bad(format!("since: {e}")).into(),
    };
    match history::cost_json_of(&place(site, file.as_deref()), by, since) {
        Ok(t) => Answer::Json(t),
        Err(e) => Refused::failed(format!("{e} ({})", e.help())).into(),
    }
}

/// `%XX` and `+` decoded (a query's value); bytes that are not UTF-8 replaced.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_id_in_a_url_is_no_path() {
        for ok in ["1.1", "2.10", "build-docs", "a_b"] {
            assert!(valid_task_id(ok), "{ok}");
        }
        for bad in ["", "..", "../x", "1/2", "/etc/passwd", ".hidden", "a..b", "a b", "%2e"] {
            assert!(!valid_task_id(bad), "{bad}");
        }
    }

    #[test]
    fn query_values_and_segments_round_trip() {
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_transcript_is_read_from_its_last_line_start_when_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(tail(&p, 1000).unwrap(), b"first line\nsecond\nthird\n");
        assert_eq!(tail(&p, 10).unwrap(), b"third\n");
    }
}
