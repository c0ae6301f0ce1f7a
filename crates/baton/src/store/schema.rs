//! The store's schema, as the migrations that make it: the n-th entry takes a database at
//! `PRAGMA user_version = n` to `n + 1`. Only add entries; never edit one that shipped.
//!
//! Times are RFC 3339 text in UTC (they sort as text); money is US dollars (REAL); a plan is
//! its path relative to the repository root.

pub const MIGRATIONS: &[&str] = &[
    // 1: runs, their attempts, the waits, checks and reviews, the pipeline's items, imports.
    r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    plan        TEXT NOT NULL,
    plan_name   TEXT,
    -- run: `baton run`; pipeline: the backlog daemon's planning sessions;
    -- imported: attempt records that predate the store
    kind        TEXT NOT NULL,
    command     TEXT NOT NULL,
    pid         INTEGER,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    exit_code   INTEGER,
    -- finished, finished_with_failures, blocked, stopped, budget_exhausted, error, single_task,
    -- killed (closed by the next start); NULL while it runs
    ending      TEXT,
    -- what stopped it: stop file, signal, budget
    stopped_by  TEXT,
    cost_usd    REAL NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_plan ON runs (plan, started_at);

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    plan          TEXT NOT NULL,
    task          TEXT NOT NULL,
    -- task: an attempt at a plan's task; planning: the pipeline's session writing a plan
    kind          TEXT NOT NULL DEFAULT 'task',
    session       INTEGER NOT NULL,
    -- the plan's attempt number it counted as; NULL when it did not count (a limit, a stop)
    attempt       INTEGER,
    agent         TEXT NOT NULL,
    named_agent   TEXT,
    model         TEXT,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    duration_secs REAL,
    -- running, then: completed, verified, skipped, failed, limited, throttled, systemic,
    -- interrupted (a stop, or closed by the next start after baton was killed), planned
    outcome       TEXT NOT NULL,
    -- the reviewer's PASS, WARN or FAIL
    verdict       TEXT,
    message       TEXT,
    cost_usd      REAL,
    review_cost_usd REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_creation_tokens INTEGER,
    turns         INTEGER,
    waited_secs   REAL,
    transcript    TEXT,
    UNIQUE (run_id, task, session)
);
CREATE INDEX attempts_by_plan ON attempts (plan, task, started_at);
CREATE INDEX attempts_by_time ON attempts (started_at);

CREATE TABLE waits (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    task        TEXT,
    -- usage_limit, throttling, breaker, retry, planning
    kind        TEXT NOT NULL,
    message     TEXT,
    started_at  TEXT NOT NULL,
    until       TEXT NOT NULL
);
CREATE INDEX waits_by_run ON waits (run_id);

CREATE TABLE checks (
    id            INTEGER PRIMARY KEY,
    attempt_id    INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    command       TEXT NOT NULL,
    source        TEXT NOT NULL,
    exit_code     INTEGER,
    signal        INTEGER,
    timed_out     INTEGER NOT NULL,
    passed        INTEGER NOT NULL,
    duration_secs REAL NOT NULL
);
CREATE INDEX checks_by_attempt ON checks (attempt_id);

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    verdict     TEXT,
    -- a JSON array of strings
    findings    TEXT NOT NULL,
    problem     TEXT,
    sessions    INTEGER NOT NULL,
    model       TEXT,
    cost_usd    REAL
);
CREATE INDEX reviews_by_attempt ON reviews (attempt_id);

CREATE TABLE pipeline_items (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    item        TEXT NOT NULL,
    plan        TEXT,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    -- running, archived, failed, stopped, interrupted
    outcome     TEXT NOT NULL,
    message     TEXT
);

-- The plans whose attempt records on disk were imported (once).
CREATE TABLE imported (
    plan        TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    attempts    INTEGER NOT NULL
);
"#,
    // 2: why a run ended so, in words (the budget's figures, the error that ended it); an
    // attempt's spending cap, and what the budget was charged for a session whose cost the
    // agent never said (it was ended first): the plan's median attempt cost; the agent's pid
    // once its process started (a session baton never started costs nothing).
    r#"
ALTER TABLE runs ADD COLUMN message TEXT;
ALTER TABLE attempts ADD COLUMN cap_usd REAL;
ALTER TABLE attempts ADD COLUMN estimated_usd REAL;
ALTER TABLE attempts ADD COLUMN agent_pid INTEGER;
"#,
    // 3: whose usage limit a wait is (the agent's name in baton.toml: `status` shows each
    // agent's limit until its reset, and a run starting inside it goes to a fallback at once);
    // an attempt's cost worked out by baton from its tokens and `[prices]` rather than said by
    // the agent.
    r#"
ALTER TABLE waits ADD COLUMN agent TEXT;
ALTER TABLE attempts ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0;
CREATE INDEX waits_by_agent ON waits (agent, until);
"#,
];
