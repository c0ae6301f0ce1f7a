//! The run history: one SQLite database per repository (`.baton/baton.db`, WAL), written as
//! things happen by a sink of the run's event stream ([`sink::StoreSink`]), read by `baton
//! history`, `baton cost`, `baton status` and the budget.
//!
//! The schema is versioned (`PRAGMA user_version`, [`schema::MIGRATIONS`]); attempt records
//! that predate the store are imported once per plan ([`Store::import_records`]). A baton that
//! was killed leaves rows open (`outcome = 'running'`, a run without `ending`): the next start
//! on that plan closes them as interrupted ([`Store::close_interrupted`]).
//!
//! Writes are single statements or short `IMMEDIATE` transactions with a busy timeout, so that
//! several batons of one repository (two plans, the pipeline, `status`) share the file. With
//! `synchronous = NORMAL` in WAL mode a commit is in the operating system's hands at once: a
//! `kill -9` of baton loses nothing committed (a power cut may lose the last commits).

pub mod query;
pub mod schema;
pub mod sink;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::run::record::{AttemptRecord, Records};

/// The database's file name, in the repository's `.baton/`.
pub const FILE: &str = "baton.db";

/// How long opening the store (its schema, closing a killed run, the import) waits for another
/// process's write to end before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a repository's store is: in the main checkout's `.baton/`, also for a plan in a
/// linked worktree (`git worktree add`), so that every checkout of a repository shares one
/// history and one plan's budget.
pub fn path(root: &Path) -> PathBuf {
    home(root).join(".baton").join(FILE)
}

/// The main checkout of the repository whose checkout is `root` (read from the files git
/// keeps, without running git); `root` itself when it is the main checkout or no repository.
pub fn home(root: &Path) -> PathBuf {
    let dot_git = root.join(".git");
    if dot_git.is_dir() {
        return root.to_path_buf();
    }
    // A linked worktree's `.git` is a file: `gitdir: <main>/.git/worktrees/<name>`, whose
    // `commondir` names the main `.git`.
    let linked = || -> Option<PathBuf> {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let gitdir = root.join(text.lines().next()?.strip_prefix("gitdir:")?.trim());
        let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
        let common = std::fs::canonicalize(gitdir.join(common.trim())).ok()?;
        (common.file_name()? == ".git").then(|| common.parent().map(Path::to_path_buf)).flatten()
    };
    linked().unwrap_or_else(|| root.to_path_buf())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run history {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the run history {} is {what}; baton keeps its history in a regular file", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("the run history {} was written by a newer baton (schema version {found}; this baton knows up to {known})", path.display())]
    Newer { path: PathBuf, found: i64, known: i64 },
    #[error("the run history {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Whether the error is another process's lock on the database (it passes; nothing is wrong).
pub fn busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

impl StoreError {
    /// What to do about it.
    pub fn help(&self) -> String {
        let path = match self {
            StoreError::Open { path, .. } | StoreError::Newer { path, .. } | StoreError::Sql { path, .. } | StoreError::NotAFile { path, .. } => path,
        };
        match self {
            StoreError::Newer { .. } => "run the newer baton, or move the file aside to start a new history".into(),
            StoreError::Open { source, .. } | StoreError::Sql { source, .. } if busy(source) => {
                format!("another process holds the history's write lock (`fuser {}` names it); the file is not damaged", path.display())
            }
            _ => format!("if the file is damaged, move it aside (`mv {0} {0}.broken`): baton starts a new one and imports the attempt records it finds", path.display()),
        }
    }
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// An amount of money as it is told: to a billionth of a dollar, without the dust of adding
/// floats (`0.15000000000000002`).
pub fn usd(x: f64) -> f64 {
    // `+ 0.0` turns the -0.0 of an empty sum into 0.
    (x * 1e9).round() / 1e9 + 0.0
}

/// The current time as the store writes it.
pub fn now_text() -> String {
    stamp(jiff::Timestamp::now())
}

/// A time as the store writes it: RFC 3339 in UTC with nine fractional digits, so that times
/// sort as text (`…:51.7Z` would sort after `…:51.729Z`).
pub fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// A time read elsewhere (an attempt record) in the store's form; kept as it is when it is not
/// a time.
pub fn stamp_text(s: &str) -> String {
    s.parse::<jiff::Timestamp>().map(stamp).unwrap_or_else(|_| s.to_string())
}

impl Store {
    /// Opens the repository's store, making it (and `.baton/`, kept out of git) when it is not
    /// there, and bringing its schema up to date.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        crate::run::record::ignore_logs_root(&home(root).join(".baton"));
        Store::open_at(&path(root))
    }

    /// Opens the store when the repository has one; `None` when it has none yet.
    pub fn open_existing(root: &Path) -> Result<Option<Store>, StoreError> {
        let p = path(root);
        // A dangling symlink is there too (and refused by `open_at`).
        if std::fs::symlink_metadata(&p).is_err() {
            return Ok(None);
        }
        Store::open_at(&p).map(Some)
    }

    pub fn open_at(path: &Path) -> Result<Store, StoreError> {
        // A symlink could put the history (and its -wal) anywhere, outside the repository too.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StoreError::NotAFile { path: path.to_path_buf(), what: "a symbolic link" });
        }
        let open = |source| StoreError::Open { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(open)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
        // WAL: readers never wait for a writer; NORMAL: a commit does not wait for the disk.
        // Switching to it takes the file for itself, and SQLite does not wait for that: while
        // another baton is making the file, it is asked again.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let mode = conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0));
            let set = match mode {
                Ok(m) if m.eq_ignore_ascii_case("wal") => Ok(()),
                Ok(_) => conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)).map(drop),
                Err(e) => Err(e),
            };
            match set {
                Ok(()) => break,
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(open(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
        // The WAL is truncated back to this after a checkpoint instead of keeping its peak size.
        conn.pragma_update(None, "journal_size_limit", 1_048_576).map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open)?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql { path: self.path.clone(), source }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = schema::MIGRATIONS.len() as i64;
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| self.sql(e))?;
        if version > known {
            return Err(StoreError::Newer { path: self.path.clone(), found: version, known });
        }
        if version == known {
            return Ok(());
        }
        let path = self.path.clone();
        let sql = |source| StoreError::Sql { path: path.clone(), source };
        // Another baton may be migrating the same file: the version is read again under the
        // write lock.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
        for (n, step) in schema::MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(step).map_err(sql)?;
            tx.pragma_update(None, "user_version", n as i64 + 1).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The schema version of the file.
    pub fn version(&self) -> Result<i64, StoreError> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Closes what a killed baton left open on `plan`: the runs without an ending whose baton
    /// is gone become `killed`, their attempts still `running` `interrupted` — each charged the
    /// plan's median attempt cost (at most its cap) when the agent never said its cost. A run
    /// whose baton still runs (the same plan in another checkout) is left alone. Called by the
    /// holder of the plan's lock before it opens a run of its own.
    pub fn close_interrupted(&self, plan: &str) -> Result<usize, StoreError> {
        let open: Vec<(i64, Option<i64>)> = {
            let mut st = self.conn.prepare("SELECT id, pid FROM runs WHERE plan = ?1 AND ending IS NULL AND kind = 'run'").map_err(|e| self.sql(e))?;
            let rows = st.query_map(params![plan], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.sql(e))?;
            rows.collect::<rusqlite::Result<_>>().map_err(|e| self.sql(e))?
        };
        let median = query::median(&self.attempt_costs(plan)?);
        let mut closed = 0;
        for (run, _) in open.into_iter().filter(|(_, pid)| !pid.is_some_and(baton_alive)) {
            closed += self
                .conn
                .execute(
                    "UPDATE attempts SET outcome = 'interrupted',
                        message = COALESCE(NULLIF(message, ''), 'baton was killed while it ran; closed by the next start'),
                        estimated_usd = CASE WHEN cost_usd IS NULL AND agent_pid IS NOT NULL THEN MIN(COALESCE(cap_usd, ?2), ?2) END
                     WHERE run_id = ?1 AND outcome = 'running'",
                    params![run, median],
                )
                .map_err(|e| self.sql(e))?;
            self.conn
                .execute(
                    "UPDATE runs SET ending = 'killed',
                        ended_at = (SELECT MAX(COALESCE(a.ended_at, a.started_at)) FROM attempts a WHERE a.run_id = runs.id),
                        cost_usd = (SELECT COALESCE(SUM(COALESCE(a.cost_usd, a.estimated_usd, 0) + COALESCE(a.review_cost_usd, 0)), 0) FROM attempts a WHERE a.run_id = runs.id)
                     WHERE id = ?1",
                    params![run],
                )
                .map_err(|e| self.sql(e))?;
        }
        // Sessions killed before any cost was known are charged once one is.
        if median.is_some() {
            self.conn
                .execute(
                    "UPDATE attempts SET estimated_usd = MIN(COALESCE(cap_usd, ?2), ?2)
                     WHERE plan = ?1 AND outcome = 'interrupted' AND cost_usd IS NULL AND estimated_usd IS NULL AND agent_pid IS NOT NULL",
                    params![plan, median],
                )
                .map_err(|e| self.sql(e))?;
        }
        Ok(closed)
    }

    /// Closes what a killed pipeline left open: its runs, its items still `running` and its
    /// planning sessions. Only for the holder of the pipeline's lock.
    pub fn close_interrupted_pipeline(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "UPDATE attempts SET outcome = 'interrupted', message = 'baton was killed while it ran; closed by the next start'
                   WHERE outcome = 'running' AND run_id IN (SELECT id FROM runs WHERE kind = 'pipeline' AND ending IS NULL);
                 UPDATE pipeline_items SET outcome = 'interrupted'
                   WHERE outcome = 'running' AND run_id IN (SELECT id FROM runs WHERE kind = 'pipeline' AND ending IS NULL);
                 UPDATE runs SET ending = 'killed' WHERE kind = 'pipeline' AND ending IS NULL;",
            )
            .map_err(|e| self.sql(e))
    }

    /// Imports the attempt records on disk of `plan` (`records`), once: the first time the
    /// store meets the plan. They go under one run of kind `imported`. Returns how many.
    pub fn import_records(&mut self, plan: &str, records: &Records, root: &Path) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql { path: path.clone(), source };
        let done = |conn: &Connection| conn.query_row("SELECT 1 FROM imported WHERE plan = ?1", params![plan], |_| Ok(())).optional();
        if done(&self.conn).map_err(sql)?.is_some() {
            return Ok(0);
        }
        // Two plans of one name in different folders share a records folder: what the store
        // has already (another plan's runs) is not imported again as this plan's.
        let known = |rec: &AttemptRecord| -> bool {
            let transcript = relative(&home(root), &records.transcript(&rec.task, rec.session));
            self.conn.query_row("SELECT 1 FROM attempts WHERE transcript = ?1 LIMIT 1", params![transcript], |_| Ok(())).optional().ok().flatten().is_some()
        };
        let found: Vec<AttemptRecord> = read_records(records).into_iter().filter(|r| !known(r)).collect();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        // Another baton may have imported it meanwhile.
        if done(&tx).map_err(sql)?.is_some() {
            return Ok(0);
        }
        if !found.is_empty() {
            let first = found.iter().map(|r| stamp_text(&r.started_at)).filter(|s| !s.is_empty()).min().unwrap_or_default();
            let last = found.iter().map(|r| stamp_text(&r.ended_at)).max().unwrap_or_default();
            let cost: f64 = found.iter().map(total_cost).sum();
            tx.execute(
                "INSERT INTO runs (plan, kind, command, started_at, ended_at, ending, cost_usd)
                 VALUES (?1, 'imported', 'attempt records from before the run history', ?2, ?3, 'imported', ?4)",
                params![plan, if first.is_empty() { now_text() } else { first }, last, cost],
            )
            .map_err(sql)?;
            let run = tx.last_insert_rowid();
            for rec in &found {
                let transcript = relative(&home(root), &records.transcript(&rec.task, rec.session));
                let started = stamp_text(if rec.started_at.is_empty() { &rec.ended_at } else { &rec.started_at });
                tx.execute(
                    "INSERT OR IGNORE INTO attempts (run_id, plan, task, session, agent, started_at, outcome, transcript) VALUES (?1, ?2, ?3, ?4, '', ?5, 'running', ?6)",
                    params![run, plan, rec.task, rec.session, started, transcript],
                )
                .map_err(sql)?;
                let id = tx.last_insert_rowid();
                write_record(&tx, id, rec).map_err(sql)?;
            }
        }
        tx.execute("INSERT INTO imported (plan, at, attempts) VALUES (?1, ?2, ?3)", params![plan, now_text(), found.len() as i64]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(found.len())
    }
}

/// Whether `pid` is a baton that still runs (a pid reused by another program is not).
fn baton_alive(pid: i64) -> bool {
    let Ok(pid) = u32::try_from(pid) else { return false };
    if pid == std::process::id() {
        return true;
    }
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let exe = c.split(|b| *b == 0).next().unwrap_or_default();
        Path::new(std::ffi::OsStr::from_bytes(exe)).file_name().is_some_and(|n| n.to_string_lossy().starts_with("baton"))
    })
}

/// What an attempt and its reviewer cost.
pub fn total_cost(r: &AttemptRecord) -> f64 {
    r.cost_usd.unwrap_or(0.0) + r.review.as_ref().and_then(|v| v.cost_usd).unwrap_or(0.0)
}

/// Every attempt record under a plan's records folder, in task and session order.
fn read_records(records: &Records) -> Vec<AttemptRecord> {
    let mut tasks: Vec<String> = std::fs::read_dir(records.dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tasks.sort();
    let mut out = Vec::new();
    for dir in tasks {
        for session in records.sessions(&dir) {
            // The record names the task as the plan does; its folder is a file-safe form.
            if let Some(rec) = records.read(&dir, session) {
                out.push(rec);
            }
        }
    }
    out
}

/// A path as the store keeps it: relative to the repository root when it is under it.
pub fn relative(root: &Path, p: &Path) -> String {
    if p.is_relative() {
        return p.to_string_lossy().replace('\\', "/");
    }
    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs.strip_prefix(&abs_root).unwrap_or(&abs).to_string_lossy().replace('\\', "/")
}

/// The command line of this process, as a person would type it.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().map(|a| crate::report::safe::shell_quote(&a)).collect();
    let mut args = args.into_iter();
    let exe = args.next().map(|a| Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(a)).unwrap_or_else(|| "baton".into());
    std::iter::once(exe).chain(args).collect::<Vec<_>>().join(" ")
}

/// The key of a plan in the store: its path relative to the repository root.
/// The same plan named another way (`./p.yaml`, `../plans/p.yaml`, a symlink to it) has the same
/// key: its real path, relative to the real path of its checkout.
pub fn plan_key(root: &Path, plan: &Path) -> String {
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    if let (Some(root), Some(plan)) = (real(root), real(plan)) {
        if let Ok(rel) = plan.strip_prefix(&root) {
            return rel.to_string_lossy().replace('\\', "/");
        }
    }
    relative(root, &std::path::absolute(plan).unwrap_or_else(|_| plan.to_path_buf()))
}

/// Writes what an attempt record says into the attempt row `id`, its checks and its review.
pub(crate) fn write_record(conn: &Connection, id: i64, r: &AttemptRecord) -> rusqlite::Result<()> {
    let review = r.review.as_ref();
    conn.prepare_cached(
        "UPDATE attempts SET attempt = ?2, named_agent = ?3, model = COALESCE(?4, model), started_at = COALESCE(NULLIF(?5, ''), started_at),
            ended_at = NULLIF(?6, ''), duration_secs = ?7, outcome = ?8, verdict = ?9, message = ?10, cost_usd = ?11,
            review_cost_usd = ?12, input_tokens = ?13, output_tokens = ?14, cache_read_tokens = ?15, cache_creation_tokens = ?16,
            turns = ?17, waited_secs = ?18, estimated_usd = ?19, cost_estimated = ?20
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        r.attempt,
        r.named_agent,
        r.model,
        stamp_text(&r.started_at),
        stamp_text(&r.ended_at),
        r.duration_seconds,
        if r.outcome.is_empty() { "interrupted" } else { r.outcome.as_str() },
        review.and_then(|v| v.verdict.clone()),
        r.message,
        r.cost_usd,
        review.and_then(|v| v.cost_usd),
        r.input_tokens.map(|n| n as i64),
        r.output_tokens.map(|n| n as i64),
        r.cache_read_tokens.map(|n| n as i64),
        r.cache_creation_tokens.map(|n| n as i64),
        r.turns,
        r.waited_seconds,
        r.estimated_cost_usd,
        r.cost_from_prices,
    ])?;
    conn.prepare_cached("DELETE FROM checks WHERE attempt_id = ?1")?.execute(params![id])?;
    conn.prepare_cached("DELETE FROM reviews WHERE attempt_id = ?1")?.execute(params![id])?;
    for (i, c) in r.checks.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO checks (attempt_id, position, command, source, exit_code, signal, timed_out, passed, duration_secs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![id, i as i64 + 1, c.command, c.from, c.exit, c.signal, c.timed_out, c.passed, c.duration_seconds])?;
    }
    if let Some(v) = review {
        conn.prepare_cached("INSERT INTO reviews (attempt_id, verdict, findings, problem, sessions, model, cost_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![id, v.verdict, serde_json::to_string(&v.findings).unwrap_or_else(|_| "[]".into()), v.problem, v.sessions, v.model, v.cost_usd])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
