//! The reviewer session (`baton::run::review::review`) against the fake agent, with the real
//! baton binary as the guard, before the engine calls it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::agent::claude::ClaudeCode;
use baton::agent::{Agent, Resolved};
use baton::report::event::{EventKind, Reporter, RunEvent, Sink};
use baton::run::record::ReviewRecord;
use baton::run::review::{self, ReviewJob};
use baton::run::stop::Stop;

use crate::support::Project;

struct Collect(Arc<Mutex<Vec<EventKind>>>);

impl Sink for Collect {
    fn event(&mut self, ev: &RunEvent) {
        self.0.lock().unwrap().push(ev.kind.clone());
    }
}

/// Runs a review of task `1.2` in `p` with the fake agent; returns the record and the events.
fn run_review(p: &Project, model: Option<&str>, named_agent: Option<&str>) -> (ReviewRecord, Vec<EventKind>) {
    run_review_stopped_at(p, model, named_agent, None)
}

/// [`run_review`]; with `stop_at`, a stop (`Stop::Now`) comes once that file exists.
fn run_review_stopped_at(p: &Project, model: Option<&str>, named_agent: Option<&str>, stop_at: Option<PathBuf>) -> (ReviewRecord, Vec<EventKind>) {
    let agent: Arc<dyn Agent> = Arc::new(ClaudeCode {
        binary: Resolved::plain(baton_testkit::fake_claude_bin(), "fake".into()),
        extra_args: Vec::new(),
        env: Vec::new(),
    });
    let env: Vec<(OsString, OsString)> = [
        ("BATON_FAKE_SCENARIO", p.state_path("scenario.json")),
        ("BATON_FAKE_STATE", p.state_path("")),
        ("BATON_FAKE_MAX_HANG_SECS", PathBuf::from("120")),
        ("IS_SANDBOX", PathBuf::from("1")),
    ]
    .into_iter()
    .map(|(k, v)| (OsString::from(k), v.into_os_string()))
    .collect();
    let status_rel = ".claude/plans/task-status.json";
    let job = ReviewJob {
        task: "1.2".into(),
        cwd: p.path().to_path_buf(),
        env,
        guard_exe: PathBuf::from(env!("CARGO_BIN_EXE_baton")),
        prompt: format!("Review it.\nTask ID: 1.2\nStatus file: {status_rel}\n"),
        model: model.map(Into::into),
        named_agent: named_agent.map(Into::into),
        transcript_prefix: p.path().join(".baton/logs/plan/1.2/review-1"),
        status_file: p.path().join(status_rel),
        total_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(120),
        max_budget_usd: None,
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let reporter = Reporter::new(vec![Box::new(Collect(events.clone()))]);
    let (stopper, stop) = tokio::sync::watch::channel(Stop::Running);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut stopper = Some(stopper);
    let rec = rt.block_on(async {
        // The sender stays alive without a stop: a closed channel is a stop too.
        if let Some(mark) = stop_at {
            let stopper = stopper.take().expect("one stopper");
            tokio::spawn(async move {
                // Waits on the condition (the fake agent's mark), with a deadline: a mark that
                // never comes fails the test below instead of hanging it.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                while !mark.exists() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                assert!(mark.exists(), "the reviewer session never reached its mark");
                let _ = stopper.send(Stop::Now);
            });
        }
        review::review(&job, agent, &reporter, stop).await
    });
    drop(stopper);
    assert!(!job.status_file.exists(), "the reviewer's status file is removed after reading");
    let events = events.lock().unwrap().clone();
    (rec, events)
}

#[test]
fn garbage_then_a_verdict_is_the_verdict_of_the_second_session() {
    let p = Project::new();
    p.scenario(
        r#"{"tasks": {"1.2": [
            {"status_json": "{this is not json", "cost": 0.5},
            {"status_json": {"task_id": "1.2", "verdict": "fail", "findings": ["no tests", "x is wrong"]}, "cost": 0.25}
        ]}}"#,
    );
    let (rec, events) = run_review(&p, Some("opus"), Some("judge"));
    assert_eq!(rec.verdict.as_deref(), Some("FAIL"), "{rec:?}");
    assert_eq!(rec.findings, ["no tests", "x is wrong"]);
    assert_eq!((rec.sessions, rec.problem.as_deref()), (2, None));
    assert_eq!(rec.cost_usd, Some(0.75));
    assert_eq!(rec.transcripts.len(), 2);
    for (k, t) in rec.transcripts.iter().enumerate() {
        assert!(t.ends_with(&format!("review-1-{}.jsonl", k + 1)) && std::path::Path::new(t).exists(), "{t}");
    }
    let calls = p.invocations();
    assert_eq!(calls.len(), 2);
    let argv = calls[1]["argv"].to_string();
    assert!(argv.contains("\"--model\",\"opus\"") && argv.contains("\"--agent\",\"judge\""), "{argv}");
    assert!(matches!(events.first(), Some(EventKind::ReviewStarted { model: Some(m), .. }) if m == "opus"), "{events:?}");
    assert!(
        matches!(events.last(), Some(EventKind::ReviewEnded { verdict: Some(v), findings, problem: None, .. }) if v == "FAIL" && findings.len() == 2),
        "{events:?}"
    );
}

#[test]
fn a_verdict_in_the_final_answer_counts() {
    let p = Project::new();
    p.scenario(r#"{"tasks": {"1.2": {"status_json": {"task_id": "1.2", "verdict": "PASS", "findings": []}, "status_in_result": true}}}"#);
    let (rec, _) = run_review(&p, None, None);
    assert_eq!((rec.verdict.as_deref(), rec.sessions), (Some("PASS"), 1), "{rec:?}");
    let argv = p.invocations()[0]["argv"].to_string();
    assert!(!argv.contains("--model") && !argv.contains("--agent"), "{argv}");
}

#[test]
fn a_reviewer_that_crashes_twice_gives_no_verdict_and_says_why() {
    let p = Project::new();
    p.scenario(r#"{"tasks": {"1.2": [{"crash": true}, {"status_json": {"task_id": "9", "verdict": "PASS"}}]}}"#);
    let (rec, events) = run_review(&p, None, None);
    assert_eq!((rec.verdict.as_deref(), rec.sessions), (None, 2), "{rec:?}");
    let problem = rec.problem.as_deref().unwrap();
    assert!(problem.starts_with("no valid verdict from 2 reviewer sessions"), "{problem}");
    assert!(problem.contains("session 1") && problem.contains("ended with"), "{problem}");
    assert!(problem.contains("session 2") && problem.contains("judges task '9'"), "{problem}");
    assert!(!review::stopped(&rec) && !review::limited(&rec));
    assert!(matches!(events.last(), Some(EventKind::ReviewEnded { verdict: None, problem: Some(_), .. })), "{events:?}");
}

#[test]
fn a_stop_during_the_review_ends_it_without_a_second_session() {
    let p = Project::new();
    let mark = p.state_path("reviewer-started");
    p.scenario(&format!(r#"{{"tasks": {{"1.2": {{"mark": [{:?}], "hang": true}}}}}}"#, mark.display().to_string()));
    let (rec, _) = run_review_stopped_at(&p, None, None, Some(mark));
    assert_eq!((rec.verdict.as_deref(), rec.sessions), (None, 1), "{rec:?}");
    assert!(review::stopped(&rec), "{rec:?}");
    assert_eq!(p.invocations().len(), 1);
}
