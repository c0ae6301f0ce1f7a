//! The Ray executor: each attempt is a job of a Ray cluster, submitted through its Jobs REST
//! API (`[executor] address`), whose entrypoint is `baton remote-attempt` on a worker. The
//! task's working copy travels through git (`data`); the job's log is followed as the agent's
//! stdout (`job`); a job the cluster loses is [`crate::exec::Event::Lost`]. Facts about Ray's
//! API are in docs/research/ray.md; how to run it, in docs/scale-out.md.
//!
//! Every job is recorded before it is submitted (`<logs>/jobs/<submission id>.json`) and the
//! record removed once the job is collected and deleted and its refs are gone: a baton killed
//! in between finds the record at its next start and stops the job ([`Ray::recover`]).

pub mod data;
pub mod http;
mod job;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

pub use job::Job;

use super::frame::{self, Spec};
use super::{AttemptPlace, Resources};
use crate::config::ExecutorConfig;
use crate::report::event::{Note, Reporter};
use crate::supervise::{CommandSpec, Input, Policy, SpawnError};

/// What a job gets, beyond the agent's grace, to commit and push what a stopped agent left.
const PUSH_GRACE: Duration = Duration::from_secs(20);

/// A Ray cluster that runs this run's attempts.
pub struct Ray {
    endpoint: http::Endpoint,
    /// The git remote the workers fetch from and push to, as they reach it (a URL or a path).
    remote: String,
    /// The baton program on the workers.
    baton: String,
    /// `[executor] runtime_env`, as JSON.
    runtime_env: serde_json::Map<String, serde_json::Value>,
    resources: Resources,
    /// The main checkout: pushes and fetches run here.
    root: PathBuf,
    /// The plan's name, in refs and job ids.
    plan: String,
    /// This run's id, in each job's metadata.
    run_id: String,
    /// Where the records of submitted jobs are kept.
    jobs_dir: PathBuf,
    reporter: Reporter,
    /// Environment variables already told to stay off the workers.
    withheld_told: Mutex<HashSet<String>>,
    /// The cluster adds nodes for waiting jobs: a job no node can run now is submitted anyway.
    wait_for_resources: bool,
    /// Every job this run submitted, for the last look at the end of the run.
    submitted: Mutex<Vec<String>>,
    /// The followers of this run's jobs: the run ends once each has cleaned up after its job.
    followers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A submitted job, as recorded before it was submitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobRecord {
    submission_id: String,
    task: String,
    session: u32,
    address: String,
    remote: String,
    input_ref: String,
    result_ref: String,
}

/// What the Jobs API says of a job.
#[derive(Debug, Clone, Default, Deserialize)]
struct JobInfo {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    driver_exit_code: Option<i64>,
    #[serde(default)]
    driver_node_id: Option<String>,
}

impl JobInfo {
    fn terminal(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED" | "STOPPED")
    }
}

impl Ray {
    /// The executor `[executor]` describes for the plan `plan` of the checkout `root`: the
    /// address read, the remote found. The error is a message with its fix.
    pub fn new(config: &ExecutorConfig, root: &Path, plan: &str, logs: &Path, reporter: Reporter) -> Result<Ray, String> {
        let address = config.address.as_deref().unwrap_or(crate::config::DEFAULT_RAY_ADDRESS);
        let endpoint = http::Endpoint::parse(address).map_err(|e| format!("[executor] address = \"{address}\": {e}"))?.with_token(http::ray_token());
        let remote = resolve_remote(root, config.remote.as_deref().unwrap_or("origin"))?;
        let runtime_env = match &config.runtime_env {
            None => serde_json::Map::new(),
            Some(t) => match serde_json::to_value(t) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => return Err("[executor] runtime_env must be a table".into()),
            },
        };
        let baton = config.baton.clone().unwrap_or_else(|| "baton".into());
        if baton.contains('/') && !baton.starts_with('/') {
            return Err(format!("[executor] baton = \"{baton}\" is a relative path, which a job resolves in the working directory of `ray start`: give an absolute path on the workers, or a program name on their PATH"));
        }
        if let Some(vars) = runtime_env.get("env_vars").and_then(|v| v.as_object()) {
            for (k, v) in vars {
                if looks_secret(k) || v.as_str().is_some_and(holds_secret) {
                    reporter.warn(format!(
                        "[executor] runtime_env sets {k}, which looks like a credential: Ray shows a job's runtime_env to whoever reaches its dashboard (GET /api/jobs/); set it in the workers' environment instead"
                    ));
                }
            }
        }
        Ok(Ray {
            endpoint,
            remote,
            baton,
            runtime_env,
            resources: config.resources.clone(),
            root: root.to_path_buf(),
            plan: plan.to_string(),
            run_id: format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_millisecond()),
            jobs_dir: logs.join("jobs"),
            reporter,
            withheld_told: Mutex::new(HashSet::new()),
            wait_for_resources: config.wait_for_resources,
            submitted: Mutex::new(Vec::new()),
            followers: Mutex::new(Vec::new()),
        })
    }

    pub fn address(&self) -> String {
        self.endpoint.address()
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Before the run: the cluster answers and the remote can be reached. The error says which
    /// does not, and how to fix it.
    pub async fn probe(&self) -> Result<(), String> {
        match self.endpoint.call(Method::GET, "/api/version", None).await {
            Ok((s, body)) if s.is_success() => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if v.get("ray_version").is_none() {
                    return Err(format!("{} answers, but not as Ray's dashboard does (GET /api/version)\n  help: set [executor] address to the Ray dashboard's address", self.address()));
                }
            }
            Ok((s, _)) if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => {
                return Err(format!(
                    "the Ray cluster at {} refused baton ({s}): it has token authentication on\n  help: give baton its token in RAY_AUTH_TOKEN (or the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token), as Ray's own clients take it",
                    self.address()
                ))
            }
            Ok((s, body)) => return Err(format!("the Ray dashboard at {} answered {s}: {}\n  help: see the head's logs (`ray status`, its dashboard)", self.address(), http::last_line(&body))),
            Err(e) => {
                return Err(format!(
                    "the Ray cluster at {} cannot be reached: {e}\n  help: start the cluster (`ray start --head`, docs/scale-out.md) or fix [executor] address: it is the dashboard's address (port 8265 unless `--dashboard-port`), which `ray start` prints as \"View the Ray dashboard at …\", not the GCS address given to `ray start --address`",
                    self.address()
                ))
            }
        }
        let root = self.root.clone();
        let remote = self.remote.clone();
        let listed = tokio::task::spawn_blocking(move || crate::git::git(&root, &["ls-remote", "--heads", &remote])).await;
        match listed {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "the git remote {} cannot be reached: {}\n  help: fix [executor] remote (default: the repository's `origin`): this machine and every worker fetch from it and push to it",
                self.remote,
                crate::exit::render_chain(&e)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends one attempt: its working copy and spec pushed, the job recorded, then submitted
    /// and followed by a task of its own.
    pub async fn start(self: &Arc<Self>, cmd: &CommandSpec, policy: &Policy, prompt: &str, place: &AttemptPlace) -> Result<Job, SpawnError> {
        let spec = self.spec(cmd, policy, place);
        let (submission_id, nonce) = submission_id(&self.plan, place.task.as_str(), place.session);
        let refs = data::Refs::new(&self.plan, place.task.as_str(), place.session, &nonce);
        let record = JobRecord {
            submission_id: submission_id.clone(),
            task: place.task.to_string(),
            session: place.session,
            address: self.address(),
            remote: self.remote.clone(),
            input_ref: refs.input.clone(),
            result_ref: refs.result.clone(),
        };
        if let Some(why) = self.infeasible(&self.resources.overridden_by(place.resources.as_ref())).await {
            return Err(SpawnError::Remote {
                message: format!("{}: no node of the Ray cluster at {} can run it: {why}", place.task, self.address()),
                help: "give a node what the task asks for (`ray start --resources …`), or change the task's `resources:` / [executor.resources]; a cluster that adds nodes for waiting jobs (an autoscaler) wants `[executor] wait_for_resources = true`".into(),
            });
        }
        self.write_record(&record).map_err(|e| SpawnError::Remote {
            message: format!("cannot record the job in {}: {e}", self.jobs_dir.display()),
            help: "check that baton's logs folder can be written".into(),
        })?;
        let (root, cwd, remote, r, s, p) = (self.root.clone(), cmd.cwd.clone(), self.remote.clone(), refs.clone(), spec.clone(), prompt.to_string());
        let pushed = tokio::task::spawn_blocking(move || data::push_input(&root, &cwd, &remote, &r, &s, &p)).await.unwrap_or_else(|e| Err(e.to_string()));
        let snapshot = match pushed {
            Ok(s) => s,
            Err(e) => {
                self.remove_record(&submission_id);
                return Err(SpawnError::Remote {
                    message: format!("cannot send {} to the workers: {e}", place.task),
                    help: format!("baton pushes each attempt to `{}` ([executor] remote): this machine must be able to push refs/baton/* there", self.remote),
                });
            }
        };
        let resources = self.resources.overridden_by(place.resources.as_ref());
        let body = self.submission(&submission_id, &refs, &resources, place, spec.grace_secs);
        if let Ok(mut s) = self.submitted.lock() {
            s.push(submission_id.clone());
        }
        Ok(Job::follow(job::Follow {
            ray: Arc::clone(self),
            submission_id,
            refs,
            snapshot,
            body,
            cwd: cmd.cwd.clone(),
            status_file: place.status_file.clone(),
            total: policy.total.unwrap_or(Duration::from_secs(u64::from(u32::MAX))),
            idle: policy.idle.unwrap_or(Duration::from_secs(u64::from(u32::MAX))),
            max_line: policy.max_line,
            task: place.task.clone(),
            asks: asks(&resources),
        }))
    }

    /// The worker's half of the attempt: the agent's command as baton would run it here.
    fn spec(&self, cmd: &CommandSpec, policy: &Policy, place: &AttemptPlace) -> Spec {
        let program = cmd.program.to_string_lossy().into_owned();
        let own = policy.guard.as_ref().is_some_and(|g| *g == cmd.program);
        let mut env = Vec::new();
        for (k, v) in &cmd.env {
            let key = k.to_string_lossy().into_owned();
            if looks_secret(&key) || holds_secret(&v.to_string_lossy()) {
                if self.withheld_told.lock().map(|mut t| t.insert(key.clone())).unwrap_or(false) {
                    self.reporter.warn(format!(
                        "{key} is not sent to the Ray workers (it looks like a credential, and a job's input is readable by whoever reads the git remote); set it in the workers' environment (see docs/scale-out.md)"
                    ));
                }
                continue;
            }
            env.push((key, v.to_string_lossy().into_owned()));
        }
        Spec {
            version: frame::VERSION,
            plan: self.plan.clone(),
            task: place.task.to_string(),
            session: place.session,
            program_name: cmd.program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| program.clone()),
            program,
            own_program: own,
            args: cmd.args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
            env,
            stdin_prompt: matches!(cmd.stdin, Input::File(_)),
            status_file: place.status_file.to_string_lossy().into_owned(),
            total_timeout_secs: policy.total.map_or(0.0, |t| t.as_secs_f64()),
            grace_secs: policy.grace.as_secs_f64(),
        }
    }

    /// The body of `POST /api/jobs/`.
    fn submission(&self, id: &str, refs: &data::Refs, r: &Resources, place: &AttemptPlace, grace: f64) -> serde_json::Value {
        use crate::report::safe::shell_quote;
        let entrypoint = format!(
            "exec {} remote-attempt --remote {} --input {} --result {}",
            shell_quote(&self.baton),
            shell_quote(&self.remote),
            shell_quote(&refs.input),
            shell_quote(&refs.result)
        );
        let mut runtime_env = self.runtime_env.clone();
        let env_vars = runtime_env.entry("env_vars").or_insert_with(|| serde_json::json!({}));
        if let Some(vars) = env_vars.as_object_mut() {
            // Time for the worker to end its agent and push what it left, when the job is stopped.
            let wait = (grace + PUSH_GRACE.as_secs_f64()).ceil();
            vars.insert("RAY_JOB_STOP_WAIT_TIME_S".into(), serde_json::Value::String(format!("{wait}")));
        }
        let mut body = serde_json::json!({
            "entrypoint": entrypoint,
            "submission_id": id,
            "runtime_env": runtime_env,
            "metadata": {
                "baton_run": self.run_id,
                "baton_plan": self.plan,
                "baton_task": place.task.to_string(),
                "baton_session": place.session.to_string(),
            },
        });
        let o = body.as_object_mut().expect("an object");
        if let Some(c) = r.num_cpus {
            o.insert("entrypoint_num_cpus".into(), c.into());
        }
        if let Some(g) = r.num_gpus {
            o.insert("entrypoint_num_gpus".into(), g.into());
        }
        if let Some(m) = r.memory.as_ref().and_then(super::Memory::bytes) {
            o.insert("entrypoint_memory".into(), m.into());
        }
        if !r.custom.is_empty() {
            o.insert("entrypoint_resources".into(), serde_json::to_value(&r.custom).unwrap_or_default());
        }
        body
    }

    /// Why no live node of the cluster could ever run a job asking for `r` (its totals fall
    /// short), or `None` when one could, when that cannot be told, or when the cluster may add
    /// nodes (`wait_for_resources`). A job Ray cannot place waits 15 minutes and then fails.
    async fn infeasible(&self, r: &Resources) -> Option<String> {
        if self.wait_for_resources {
            return None;
        }
        // The state API names resources as they were given (the dashboard's node summary
        // camel-cases them: `account_a` there is `accountA`).
        let (s, body) = self.endpoint.call(Method::GET, "/api/v0/nodes", None).await.ok()?;
        if !s.is_success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let nodes = v.pointer("/data/result/result")?.as_array()?;
        let totals: Vec<&serde_json::Map<String, serde_json::Value>> = nodes
            .iter()
            .filter(|n| n.get("state").and_then(|s| s.as_str()) == Some("ALIVE"))
            .filter_map(|n| n.get("resources_total")?.as_object())
            .collect();
        if totals.is_empty() {
            return None;
        }
        let mut asks: Vec<(String, f64)> = r.custom.iter().map(|(k, v)| (k.clone(), *v)).collect();
        asks.extend(r.num_cpus.map(|c| ("CPU".to_string(), c)));
        asks.extend(r.num_gpus.map(|g| ("GPU".to_string(), g)));
        asks.extend(r.memory.as_ref().and_then(super::Memory::bytes).map(|m| ("memory".to_string(), m as f64)));
        let fits = |t: &serde_json::Map<String, serde_json::Value>| asks.iter().filter(|(_, a)| *a > 0.0).all(|(k, a)| t.get(k).and_then(|v| v.as_f64()).is_some_and(|have| have + 1e-9 >= *a));
        if totals.iter().any(|t| fits(t)) {
            return None;
        }
        let most = |k: &str| totals.iter().filter_map(|t| t.get(k).and_then(|v| v.as_f64())).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let short: Vec<String> = asks
            .iter()
            .filter(|(_, a)| *a > 0.0)
            .map(|(k, a)| match most(k) {
                Some(have) if have + 1e-9 >= *a => format!("{k} {a} (a node has {have}, but not with the rest)"),
                Some(have) => format!("{k} {a} (the most a node has is {have})"),
                None => format!("{k} {a} (no node has any)"),
            })
            .collect();
        Some(format!("it asks for {}", short.join(", ")))
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.jobs_dir.join(format!("{id}.json"))
    }

    fn write_record(&self, r: &JobRecord) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.jobs_dir)?;
        let text = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
        crate::plan::write_atomic(&self.record_path(&r.submission_id), &text)
    }

    fn remove_record(&self, id: &str) {
        let _ = std::fs::remove_file(self.record_path(id));
    }

    /// What the Jobs API says of a job: `None` when it does not know it.
    async fn info(&self, id: &str) -> Result<Option<JobInfo>, http::HttpError> {
        let (status, body) = self.endpoint.call(Method::GET, &format!("/api/jobs/{id}"), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(http::HttpError::Broken(format!("GET /api/jobs/{id}: {status}: {}", http::last_line(&body))));
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| http::HttpError::Broken(format!("GET /api/jobs/{id}: {e}")))
    }

    async fn ask_stop(&self, id: &str) {
        let _ = self.endpoint.call(Method::POST, &format!("/api/jobs/{id}/stop"), None).await;
    }

    /// Deletes a finished job; again if Ray wrote it once more (see [`Ray::finish`]): it is gone
    /// once two looks a second apart do not find it.
    async fn delete_job(&self, id: &str) {
        let mut absent = 0;
        for _ in 0..8 {
            if absent == 0 {
                let _ = self.endpoint.call(Method::DELETE, &format!("/api/jobs/{id}"), None).await;
            }
            tokio::time::sleep(Duration::from_millis(if absent == 0 { 500 } else { 1000 })).await;
            match self.info(id).await {
                Ok(None) => {
                    absent += 1;
                    if absent == 2 {
                        return;
                    }
                }
                Ok(Some(_)) => absent = 0,
                Err(_) => return,
            }
        }
    }

    fn following(&self, handle: tokio::task::JoinHandle<()>) {
        if let Ok(mut f) = self.followers.lock() {
            f.retain(|h| !h.is_finished());
            f.push(handle);
        }
    }

    /// The run is over: every job it submitted is gone from the cluster, and its refs from the
    /// remote. (Ray can write a deleted job's status again as its supervisor exits: such a
    /// record is deleted again.)
    pub async fn finish(&self) {
        let followers = self.followers.lock().map(|mut f| std::mem::take(&mut *f)).unwrap_or_default();
        for f in followers {
            if tokio::time::timeout(Duration::from_secs(60), f).await.is_err() {
                self.reporter.warn("a Ray job was still being cleaned up after 60 s; the next run finishes with it".to_string());
            }
        }
        let ids = self.submitted.lock().map(|s| s.clone()).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        // Each job is looked at until it has been absent twice, a second apart.
        let mut left: Vec<(String, u32)> = ids.into_iter().map(|id| (id, 0)).collect();
        while !left.is_empty() && tokio::time::Instant::now() < deadline {
            let mut still = Vec::new();
            for (id, absent) in left {
                match self.info(&id).await {
                    Ok(Some(info)) if info.terminal() => {
                        let _ = self.endpoint.call(Method::DELETE, &format!("/api/jobs/{id}"), None).await;
                        still.push((id, 0));
                    }
                    Ok(None) if absent == 0 => still.push((id, 1)),
                    // Gone twice; running or waiting (its record stays for the next start); or
                    // no answer.
                    _ => {}
                }
            }
            left = still;
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        }
    }

    /// Jobs a killed baton left (their records): each is stopped, what it pushed is kept on a
    /// branch, its refs and the job are deleted. Before the first task starts.
    pub async fn recover(&self) {
        let Ok(dir) = std::fs::read_dir(&self.jobs_dir) else { return };
        let records: Vec<JobRecord> = dir
            .flatten()
            .filter_map(|e| crate::fsx::read_regular(&e.path(), 64 * 1024).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        for r in records {
            let (mut stopped, mut waiting, mut gone) = (false, false, false);
            if r.address != self.address() {
                self.reporter.warn(format!(
                    "the Ray job {} an interrupted run left was sent to {}, not to this run's cluster; its refs are deleted, the job is left to that cluster (`ray job stop {}` there)",
                    r.submission_id, r.address, r.submission_id
                ));
                gone = true;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if gone {
                    break;
                }
                match self.info(&r.submission_id).await {
                    // Still waiting for resources: a stop is deferred by Ray, and waiting for it
                    // could take 15 minutes. Its input goes (below): once started, it runs nothing.
                    Ok(Some(info)) if info.status == "PENDING" => {
                        self.ask_stop(&r.submission_id).await;
                        waiting = true;
                        break;
                    }
                    Ok(None) => {
                        gone = true;
                        break;
                    }
                    Ok(Some(info)) if !info.terminal() => {
                        if !stopped {
                            self.ask_stop(&r.submission_id).await;
                            stopped = true;
                        }
                        if tokio::time::Instant::now() > deadline {
                            self.reporter.warn(format!("the Ray job {} that an earlier run left did not stop within 60 s; stop it with `ray job stop {}`", r.submission_id, r.submission_id));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    _ => break,
                }
            }
            if stopped {
                // See `finish`: a job deleted the moment it ended can come back.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            self.delete_job(&r.submission_id).await;
            if let Ok(mut s) = self.submitted.lock() {
                s.push(r.submission_id.clone());
            }
            let (root, remote) = (self.root.clone(), r.remote.clone());
            let refs = data::Refs { input: r.input_ref.clone(), result: r.result_ref.clone() };
            let branch = format!("parallel-rescued/{}-{}-ray-{}", crate::git::worktree::ref_component(&self.plan), crate::git::worktree::ref_component(&r.task), r.session);
            let kept = tokio::task::spawn_blocking(move || {
                let kept = match data::remote_has(&root, &remote, &refs.result) {
                    // Killed after it landed the work: nothing to keep.
                    Ok(Some(_)) if data::landed_already(&root, &remote, &refs) => Ok(None),
                    Ok(Some(_)) => data::rescue(&root, &remote, &refs.result, &branch).map(|()| Some(branch)),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                let deleted = data::delete_remote(&root, &remote, &refs);
                (kept, deleted)
            })
            .await;
            let branch = match kept {
                Ok((Ok(branch), Ok(()))) => branch,
                Ok((kept, deleted)) => {
                    for e in [kept.err(), deleted.err()].into_iter().flatten() {
                        self.reporter.warn(format!("the Ray job {} an interrupted run left: {e}", r.submission_id));
                    }
                    continue;
                }
                Err(e) => {
                    self.reporter.warn(e.to_string());
                    continue;
                }
            };
            let how = if waiting {
                crate::report::event::JobEnd::Waiting
            } else if gone {
                crate::report::event::JobEnd::Gone
            } else {
                crate::report::event::JobEnd::Stopped
            };
            self.reporter.note(Note::JobRecovered { task: r.task.as_str().into(), job: r.submission_id.clone(), branch, how });
            // A job still waiting cannot be deleted yet: its record stays until a later start
            // finds it ended (it then runs nothing: its input is gone).
            if !waiting {
                self.remove_record(&r.submission_id);
            }
        }
    }
}

/// What a job asks of the cluster, for a message: `num_cpus=1, custom acct=1`.
fn asks(r: &Resources) -> String {
    let mut parts = Vec::new();
    if let Some(c) = r.num_cpus {
        parts.push(format!("num_cpus={c}"));
    }
    if let Some(g) = r.num_gpus {
        parts.push(format!("num_gpus={g}"));
    }
    if let Some(m) = &r.memory {
        parts.push(format!("memory={}", match m { super::Memory::Bytes(b) => b.to_string(), super::Memory::Size(s) => s.clone() }));
    }
    parts.extend(r.custom.iter().map(|(k, v)| format!("{k}={v}")));
    if parts.is_empty() { "nothing in particular: the cluster may be full".into() } else { parts.join(", ") }
}

/// A job's submission id: unique per attempt and run, and a safe file name (Ray names the
/// job's log file after it).
/// Its nonce (unique per job, also in its refs) comes with it.
fn submission_id(plan: &str, task: &str, session: u32) -> (String, String) {
    let clean = |s: &str| -> String { s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(40).collect() };
    let mut seed = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed)).is_ok();
    let clock = jiff::Timestamp::now().as_nanosecond() as u64 ^ u64::from(std::process::id()).rotate_left(40);
    let nonce = format!("{:012x}", if random { u64::from_le_bytes(seed) } else { clock } & 0xffff_ffff_ffff);
    (format!("baton-{}-{}-{session}-{nonce}", clean(plan), clean(task)), nonce)
}

/// An environment variable that probably holds a credential, which never goes into a job.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
        ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "PWD", "CREDENTIAL", "CREDENTIALS", "AUTH", "OAUTH", "BEARER", "JWT", "PAT", "COOKIE", "SESSION", "DSN", "WEBHOOK"]
            .contains(&w)
            || ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE"].iter().any(|end| w.ends_with(end))
    })
}

/// A value that carries a credential whatever its name: a URL with a user or password in it.
fn holds_secret(value: &str) -> bool {
    let userinfo = value.split("://").skip(1).any(|rest| rest.split(['/', '?', '#']).next().is_some_and(|authority| authority.contains('@')));
    // Query parameters that carry one, and the prefixes of well-known tokens.
    let lower = value.to_ascii_lowercase();
    let query = ["token=", "key=", "secret=", "password=", "sig="].iter().any(|p| lower.contains(&format!("?{p}")) || lower.contains(&format!("&{p}")));
    let prefixed = ["ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "sk-", "xoxb-", "xoxp-", "AKIA"].iter().any(|p| value.split(|c: char| c.is_whitespace() || c == '=' || c == ':').any(|w| w.starts_with(p)));
    userinfo || query || prefixed
}

/// The remote the workers use: a remote's name becomes its URL; a local path becomes absolute
/// (the workers' working directory is not this one). A URL that carries a password or token
/// is refused: the entrypoint, which names it, is shown in the job's log.
fn resolve_remote(root: &Path, remote: &str) -> Result<String, String> {
    let named = crate::git::git(root, &["remote", "get-url", "--", remote]).map(|s| s.trim().to_string());
    let url = match named {
        Ok(url) if !url.is_empty() => url,
        _ if remote == "origin" => {
            return Err("the repository has no remote `origin` for the Ray workers to fetch from and push to\n  help: set [executor] remote to a git URL every worker can reach (or a path on a shared file system)".into())
        }
        _ if !remote.contains(['/', ':', '.']) => {
            return Err(format!("[executor] remote = \"{remote}\": the repository has no remote of that name (`git remote -v` lists them)\n  help: name a remote of the repository, or give a git URL or path every worker can reach"))
        }
        _ => remote.to_string(),
    };
    if let Some((scheme, rest)) = url.split_once("://") {
        if rest.split('/').next().is_some_and(|host| host.contains('@') && host.split('@').next().is_some_and(|u| u.contains(':'))) {
            return Err(format!("the git remote for the Ray workers ({scheme}://…) carries a password or token in its URL, which would be shown in every job's log\n  help: give the workers a credential helper or an SSH key instead, and a URL without the secret"));
        }
        return Ok(url);
    }
    if url.contains(':') && !url.starts_with('/') && !url.starts_with('.') {
        // scp-like `host:path`.
        return Ok(url);
    }
    let path = if Path::new(&url).is_absolute() { PathBuf::from(&url) } else { root.join(&url) };
    Ok(std::fs::canonicalize(&path).unwrap_or(path).to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_ids_are_safe_names() {
        let (id, nonce) = submission_id("my plan/../x", "1.2 ä", 3);
        assert!(id.starts_with("baton-my_plan____x-1_2__-3-") && id.ends_with(&nonce), "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(submission_id("p", "t", 1).0, submission_id("p", "t", 1).0, "unique per job");
    }

    #[test]
    fn credentials_stay_off_the_workers() {
        for k in ["ANTHROPIC_API_KEY", "GH_TOKEN", "my_secret", "OPENAI_AUTH", "APIKEY", "GITHUB_PAT", "CLAUDE_CODE_OAUTH_TOKEN"] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["BATON_MODEL", "GEMINI_CLI_TRUST_WORKSPACE", "PATH", "GIT_AUTHOR_NAME", "MONKEYS"] {
            assert!(!looks_secret(k), "{k}");
        }
        for k in ["GH_PAT", "DB_PASS", "SENTRY_DSN", "SSH_PASSPHRASE", "JWT", "SLACK_WEBHOOK"] {
            assert!(looks_secret(k), "{k}");
        }
        assert!(holds_secret("postgres://u:PW@db/x") && holds_secret("https://TOKEN@proxy/v1"));
        assert!(holds_secret("https://h/x?token=abc") && holds_secret("ghp_abc123") && holds_secret("Bearer sk-ant-x"));
        assert!(!holds_secret("https://proxy.example/v1?a=b@c") && !holds_secret("claude-opus-5") && !holds_secret("task-1"));
    }

    #[test]
    fn a_remote_with_a_password_in_its_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_remote(dir.path(), "https://x-access-token:ghp_abc@github.com/o/r.git").unwrap_err();
        assert!(e.contains("password or token") && !e.contains("ghp_abc"), "{e}");
        assert_eq!(resolve_remote(dir.path(), "https://github.com/o/r.git").unwrap(), "https://github.com/o/r.git");
        assert_eq!(resolve_remote(dir.path(), "git@github.com:o/r.git").unwrap(), "git@github.com:o/r.git");
        assert!(resolve_remote(dir.path(), "origin").unwrap_err().contains("no remote `origin`"));
    }
}
