//! The Ray executor (`[executor] kind = "ray"`) against a real local Ray head node (the test
//! kit's, shared by these tests), with the scripted fake agent run by `baton remote-attempt` in
//! Ray jobs: work lands through git, the stream is live, a killed job is not an attempt, stops
//! and a killed baton leave no job and no ref behind.
//!
//! Ray comes from `ray[default]` on PyPI (`.ci/run` installs it in `target/ray-venv`); without
//! it these tests say they are skipped, and under `CI` they fail.

use std::path::PathBuf;

use baton_testkit::RayHead;
use serde_json::Value;

use crate::support::*;

/// A project whose attempts run on the shared head, with a bare repository as its `origin`;
/// `None` (skipped, said) without Ray.
struct RayProject {
    p: Project,
    head: &'static RayHead,
    remote: PathBuf,
    _remote_dir: tempfile::TempDir,
}

fn ray_project(plan: &str, extra: &str) -> Option<RayProject> {
    let head = RayHead::shared()?;
    let p = project(plan);
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("remote.git");
    git(&p, &["init", "--quiet", "--bare", remote.to_str().unwrap()]);
    git(&p, &["remote", "add", "origin", remote.to_str().unwrap()]);
    let toml = format!(
        "{FAST_CONFIG}\n[executor]\nkind = \"ray\"\naddress = \"{}\"\nbaton = \"{BATON}\"\n{extra}\n[executor.runtime_env.env_vars]\nBATON_FAKE_SCENARIO = \"{}\"\nBATON_FAKE_STATE = \"{}\"\nBATON_FAKE_MAX_HANG_SECS = \"120\"\nIS_SANDBOX = \"1\"\n",
        head.address,
        p.state_path("scenario.json").display(),
        p.state_path("").display().to_string().trim_end_matches('/'),
    );
    p.write("baton.toml", &toml);
    p.repo.commit_all("run on ray");
    git(&p, &["push", "--quiet", "origin", "HEAD"]);
    Some(RayProject { p, head, remote, _remote_dir: remote_dir })
}

fn git(p: &Project, args: &[&str]) -> String {
    let out = std::process::Command::new("git").args(args).current_dir(p.path()).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RayProject {
    /// The refs under refs/baton/ on the remote and in the checkout.
    fn baton_refs(&self) -> String {
        let remote = git(&self.p, &["ls-remote", self.remote.to_str().unwrap(), "refs/baton/*"]);
        let local = git(&self.p, &["for-each-ref", "refs/baton/"]);
        format!("{remote}{local}")
    }

    /// The jobs of `ids` the head still has.
    fn jobs_left(&self, ids: &[String]) -> Vec<Value> {
        self.head.jobs().into_iter().filter(|j| ids.iter().any(|id| j["submission_id"] == id.as_str())).collect()
    }
}

/// `wait_for` with the longer deadline of a loaded machine's Ray jobs (see `exit_of`).
fn wait_long(what: &str, cond: impl FnMut() -> bool) {
    assert!(baton_testkit::wait_until(std::time::Duration::from_secs(180), cond), "timed out waiting for {what}");
}

/// The exit code of a baton run on the cluster: jobs start slower than local agents on a loaded
/// machine (each one starts a Python supervisor), so the deadline is longer than `wait_exit`'s.
fn exit_of(child: &mut std::process::Child) -> Option<i32> {
    let mut status = None;
    let ended = baton_testkit::wait_until(std::time::Duration::from_secs(300), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    assert!(ended, "baton did not end within 300 s");
    status.and_then(|s| s.code())
}

/// The JSON event lines of a run's stdout.
fn events(stdout: &str) -> Vec<Value> {
    stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The Ray jobs the run's events name, by task.
fn job_ids(ev: &[Value]) -> Vec<(String, String)> {
    ev.iter()
        .filter(|e| e["type"] == "note" && e["note"] == "agent_started")
        .filter_map(|e| Some((e["task"].as_str()?.to_string(), e["job"].as_str()?.to_string())))
        .collect()
}

fn group_plan(n: usize) -> String {
    let tasks: String = (1..=n).map(|i| format!("  - id: t{i}\n    name: Task {i}\n    status: pending\n    parallel_group: g\n")).collect();
    format!("meta:\n  name: On Ray\n  max_attempts_default: 2\nsections:\n- id: s\n  tasks:\n{tasks}")
}

#[test]
fn a_parallel_plan_of_twelve_tasks_lands_every_tasks_work_and_streams_tool_calls_live() {
    let Some(rp) = ray_project(&group_plan(12), "") else { return };
    let p = &rp.p;
    let go = p.state_path("go");
    let started = p.state_path("t1-wrote");
    // Every task makes two tool calls and writes its file; t1 waits before writing until the
    // test has seen its tool calls live.
    let mut tasks = serde_json::Map::new();
    for i in 1..=12 {
        let mut step = serde_json::json!({"write": {format!("out/t{i}.txt"): format!("work of t{i}\n")}, "events": 2});
        if i == 1 {
            step["mark"] = serde_json::json!([started.to_str().unwrap()]);
            step["await_file"] = serde_json::json!("go");
        }
        tasks.insert(format!("t{i}"), serde_json::json!([step]));
    }
    p.scenario(&serde_json::json!({"tasks": tasks}).to_string());
    let mut child = p.spawn(&["run", "plan.yaml", "--parallel", "--jobs", "4", "--message-format", "json", "-v"]);
    // t1's tool calls show while its agent still runs on the cluster.
    wait_long("t1's tool calls in the live stream while its agent waits", || {
        events(&p.log()).iter().filter(|e| e["type"] == "agent" && e["task"] == "t1" && e["event"] == "tool_use").count() >= 1
    });
    assert!(!p.path().join("out/t1.txt").exists() && p.plan().task("t1").unwrap().status == baton::plan::Status::InProgress, "t1's agent is still at work");
    assert!(started.exists(), "the agent on the worker is running");
    std::fs::write(&go, "").unwrap();
    let code = exit_of(&mut child);
    let log = p.log();
    assert_eq!(code, Some(0), "{log}");
    for i in 1..=12 {
        assert_eq!(p.read(&format!("out/t{i}.txt")), format!("work of t{i}\n"), "t{i}'s work is in the main checkout");
    }
    assert!(git(p, &["status", "--porcelain", "--", "out"]).is_empty(), "and committed");
    let plan = p.plan();
    assert!(plan.tasks().all(|t| t.status == baton::plan::Status::Completed && t.attempts == 1));
    let ev = events(&log);
    let jobs = job_ids(&ev);
    assert_eq!(jobs.len(), 12, "each task ran as one Ray job: {jobs:?}");
    // Each transcript holds the agent's stream, as a local one does.
    let transcript = std::fs::read_to_string(p.path().join(".baton/logs/plan/t5/attempt-1.jsonl")).unwrap();
    assert!(transcript.contains("\"tool_use\"") && transcript.contains("out/t5.txt"), "{transcript}");
    assert!(!transcript.contains("baton_remote") && !transcript.contains("Running entrypoint"), "only the agent's lines: {transcript}");
    assert_eq!(rp.baton_refs(), "", "no refs/baton/* left");
    let ids: Vec<String> = jobs.into_iter().map(|(_, id)| id).collect();
    assert_eq!(rp.jobs_left(&ids), Vec::<Value>::new(), "no job of the run left on the cluster");
    assert!(!p.path().join(".baton/logs/plan/jobs").read_dir().is_ok_and(|mut d| d.next().is_some()), "no job records left");
}

#[test]
fn a_job_killed_mid_attempt_runs_again_without_spending_an_attempt() {
    let Some(rp) = ray_project(&group_plan(1), "") else { return };
    let p = &rp.p;
    let started = p.state_path("t1-started");
    p.scenario(&serde_json::json!({"tasks": {"t1": [
        {"mark": [started.to_str().unwrap()], "await_file": "never"},
        {"write": {"done.txt": "second time\n"}}
    ]}}).to_string());
    let mut child = p.spawn(&["run", "plan.yaml", "--message-format", "json", "-v"]);
    wait_long("the first attempt's agent to start on the worker", || started.exists());
    let jobs = job_ids(&events(&p.log()));
    let (_, first) = jobs.first().expect("a job was named").clone();
    assert!(rp.head.kill_job_driver(&first), "the job's driver was found and killed");
    let code = exit_of(&mut child);
    let log = p.log();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(p.read("done.txt"), "second time\n");
    let t = p.plan().tasks().next().unwrap().clone();
    assert_eq!((t.status, t.attempts), (baton::plan::Status::Completed, 1), "only the attempt its agent ended counts");
    let ev = events(&log);
    let lost: Vec<&Value> = ev.iter().filter(|e| e["type"] == "attempt_ended" && e["outcome"]["kind"] == "lost").collect();
    assert_eq!(lost.len(), 1, "the killed job is a lost attempt: {log}");
    let ids: Vec<String> = job_ids(&ev).into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(rp.baton_refs(), "");
    assert_eq!(rp.jobs_left(&ids), Vec::<Value>::new());
    // The history says so too.
    let h = p.baton(&["history", "plan.yaml", "--task", "t1", "--json"]);
    assert!(h.stdout().contains("\"lost\""), "{}", h.stdout());
}

#[test]
fn an_immediate_stop_ends_the_jobs_brings_back_what_the_agents_left_and_leaves_nothing_on_the_cluster() {
    let Some(rp) = ray_project(&group_plan(2), "") else { return };
    let p = &rp.p;
    let (a, b) = (p.state_path("a"), p.state_path("b"));
    // t1's agent, like the real CLI, finishes its step when SIGTERM reaches it; t2's hangs.
    p.scenario(&serde_json::json!({"tasks": {
        "t1": [{"mark": [a.to_str().unwrap()], "finish_on_sigterm": true, "write": {"t1.txt": "finished while stopped\n"}}],
        "t2": [{"mark": [b.to_str().unwrap()], "await_file": "never"}]
    }}).to_string());
    let mut child = p.spawn(&["run", "plan.yaml", "--parallel", "--jobs", "2", "--message-format", "json", "-v"]);
    wait_long("both agents to run on the workers", || a.exists() && b.exists());
    signal(&child, libc::SIGTERM);
    let code = exit_of(&mut child);
    let log = p.log();
    assert_eq!(code, Some(4), "stopped: {log}");
    let tasks: Vec<_> = p.plan().tasks().map(|t| (t.id.to_string(), t.status, t.attempts)).collect();
    use baton::plan::Status::*;
    assert_eq!(tasks, [("t1".to_string(), Completed, 1), ("t2".to_string(), Pending, 0)], "{log}");
    assert_eq!(p.read("t1.txt"), "finished while stopped\n", "what the stopped worker sent back landed");
    let ids: Vec<String> = job_ids(&events(&log)).into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(rp.baton_refs(), "");
    assert_eq!(rp.jobs_left(&ids), Vec::<Value>::new());
}

#[test]
fn jobs_a_killed_baton_left_are_stopped_at_the_next_start_and_their_work_kept_on_a_branch() {
    let Some(rp) = ray_project(&group_plan(1), "") else { return };
    let p = &rp.p;
    let started = p.state_path("started");
    p.scenario(&serde_json::json!({"tasks": {"t1": [
        // Ended by the next start's stop, it finishes its step (as the real CLI can) and the
        // worker sends that back.
        {"mark": [started.to_str().unwrap()], "finish_on_sigterm": true, "write": {"before-kill.txt": "kept\n"}},
        {"write": {"done.txt": "done\n"}}
    ]}}).to_string());
    let mut child = p.spawn(&["run", "plan.yaml", "--message-format", "json", "-v"]);
    wait_long("the agent to run on the worker", || started.exists());
    let (_, job) = job_ids(&events(&p.log())).first().cloned().expect("a job");
    signal(&child, libc::SIGKILL);
    let _ = exit_of(&mut child);
    assert!(rp.head.job(&job).is_some_and(|j| j["status"] == "RUNNING"), "the job outlives a baton killed with -9");

    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.all().contains(&format!("stopped the Ray job {job}")), "{}", r.all());
    assert_eq!(p.read("done.txt"), "done\n");
    let branches = git(p, &["branch", "--list", "parallel-rescued/*"]);
    let branch = branches.lines().map(|l| l.trim_start_matches(['*', ' '])).find(|b| b.contains("ray")).unwrap_or_else(|| panic!("a rescue branch: {branches}\n{}", r.all())).to_string();
    assert_eq!(git(p, &["show", &format!("{branch}:before-kill.txt")]), "kept\n", "what the stopped job sent back is on {branch}");
    assert_eq!(rp.baton_refs(), "");
    assert_eq!(rp.jobs_left(&[job]), Vec::<Value>::new());
}

#[test]
fn a_cluster_that_cannot_be_reached_stops_the_run_before_anything_starts() {
    // No Ray needed: nothing answers at this address.
    let p = project(&group_plan(1));
    let remote = tempfile::tempdir().unwrap();
    git(&p, &["init", "--quiet", "--bare", remote.path().join("r.git").to_str().unwrap()]);
    git(&p, &["remote", "add", "origin", remote.path().join("r.git").to_str().unwrap()]);
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[executor]\nkind = \"ray\"\naddress = \"http://127.0.0.1:1\"\n"));
    p.repo.commit_all("ray");
    let before = p.read("plan.yaml");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("the Ray cluster at http://127.0.0.1:1 cannot be reached"), "{}", r.stderr());
    assert!(r.stderr().contains("help: start the cluster") && r.stderr().contains("nothing was run or changed"), "{}", r.stderr());
    assert_eq!(p.read("plan.yaml"), before, "nothing was changed");
    assert!(p.invocations().is_empty());

    // Without a remote for the workers, and with a bad address, it says what to set.
    git(&p, &["remote", "remove", "origin"]);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("no remote `origin`") && r.stderr().contains("[executor] remote"), "{}", r.stderr());
    p.write("baton.toml", "[executor]\nkind = \"ray\"\naddress = \"127.0.0.1:8265\"\n[executor.resources]\nmemory = \"lots\"\n");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("baton.toml:3:") && r.stderr().contains("http://"), "{}", r.stderr());
    assert!(r.stderr().contains("memory"), "{}", r.stderr());
    assert_eq!(p.read("plan.yaml"), before);
}

#[test]
fn a_tasks_resources_are_checked_with_the_plan() {
    let p = project("meta:\n  name: R\nsections:\n- id: s\n  tasks:\n  - id: '1'\n    name: One\n    resources: {num_cpus: two, custom: {acct: 1}, colour: red}\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.all().contains("plan.yaml:8:") && r.all().contains("num_cpus"), "{}", r.all());
    assert!(r.all().contains("colour"), "{}", r.all());
    let p = project("meta:\n  name: R\nsections:\n- id: s\n  tasks:\n  - id: '1'\n    name: One\n    resources: {num_cpus: 2, memory: 8GiB, custom: {acct: 1}}\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn a_task_no_node_can_run_stops_the_run_at_once_and_a_job_waiting_for_a_busy_resource_is_given_up_on_stop() {
    let plan = "meta:\n  name: Waits\nsections:\n- id: s\n  tasks:\n  - id: t1\n    name: Task 1\n    status: pending\n    resources: {custom: {no_such_account: 1}}\n";
    let Some(rp) = ray_project(plan, "") else { return };
    let p = &rp.p;
    // No node has the resource: Ray would keep the job waiting 15 minutes, then fail it.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.all().contains("no node of the Ray cluster") && r.all().contains("no_such_account 1 (no node has any)"), "{}", r.all());
    assert!(p.invocations().is_empty() && rp.baton_refs().is_empty(), "nothing was sent");
    let t = p.plan().tasks().next().unwrap().clone();
    assert_eq!((t.status, t.attempts), (baton::plan::Status::Pending, 0));

    // A resource the cluster has, all of it taken by another job: the attempt's job waits.
    let blocker = rp.head.submit_job(&serde_json::json!({
        "entrypoint": "sleep 300",
        "submission_id": format!("blocker-{}", std::process::id()),
        "entrypoint_resources": {"account_a": baton_testkit::SHARED_ACCOUNT_A},
    }));
    wait_long("the blocker to hold the resource", || rp.head.job(&blocker).is_some_and(|j| j["status"] == "RUNNING"));
    p.write("plan.yaml", &plan.replace("no_such_account", "account_a"));
    p.repo.commit_all("a busy resource");
    let mut child = p.spawn(&["run", "plan.yaml", "--message-format", "json", "-v"]);
    let mut job = String::new();
    let waiting = baton_testkit::wait_until(std::time::Duration::from_secs(180), || {
        if let Some((_, id)) = job_ids(&events(&p.log())).first() {
            job = id.clone();
        }
        !job.is_empty() && rp.head.job(&job).is_some_and(|j| j["status"] == "PENDING")
    });
    assert!(waiting, "the job should wait for the busy resource: {:?}\n{}", rp.head.job(&job), p.log());
    signal(&child, libc::SIGTERM);
    let code = exit_of(&mut child);
    let log = p.log();
    assert_eq!(code, Some(4), "the stop is not held up by a job Ray cannot cancel: {log}");
    assert!(log.contains("still waiting for resources when it was stopped"), "{log}");
    assert_eq!(rp.baton_refs(), "", "its input is gone: once Ray starts it, it runs nothing");
    assert!(p.invocations().is_empty(), "no agent ran");

    // The next start deals with the job it left, and the task runs once the resource is free.
    assert!(rp.head.stop_job(&blocker));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.all().contains(&job), "{}", r.all());
    assert_eq!(rp.baton_refs(), "");
    // Once it has ended (it ran nothing), the next start deletes it and forgets it.
    wait_long("the left job to end", || rp.head.job(&job).is_none_or(|j| ["STOPPED", "FAILED", "SUCCEEDED"].contains(&j["status"].as_str().unwrap_or(""))));
    p.repo.commit_all("next");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!p.path().join(".baton/logs/plan/jobs").read_dir().is_ok_and(|mut d| d.next().is_some()), "no job records left: {}", r.all());
    assert!(rp.jobs_left(&[job]).is_empty(), "the left job is deleted");
}

#[test]
fn workers_that_cannot_run_baton_stop_the_run_with_that_said() {
    let Some(rp) = ray_project(&group_plan(1), "") else { return };
    let p = &rp.p;
    let toml = p.read("baton.toml").replace(&format!("baton = \"{BATON}\""), "baton = \"/nonexistent/baton\"");
    p.write("baton.toml", &toml);
    p.repo.commit_all("a baton the workers do not have");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("the Ray workers cannot run baton as `/nonexistent/baton`") && r.stderr().contains("not found"), "{}", r.stderr());
    assert!(r.stderr().contains("help: set [executor] baton"), "{}", r.stderr());
    assert!(!r.all().contains("lost"), "not taken for a lost job: {}", r.all());
    let t = p.plan().tasks().next().unwrap().clone();
    assert_eq!((t.status, t.attempts), (baton::plan::Status::Pending, 0));
    assert_eq!(rp.baton_refs(), "");
}
