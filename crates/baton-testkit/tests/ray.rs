//! End to end: the testkit's shared [`RayHead`] runs jobs submitted over its REST API, and
//! [`RayHead::kill_job_driver`] kills a running job's driver the way a lost machine would.
//! Proves the head the Ray executor's tests share works with the installed Ray. Skips, loudly,
//! when Ray is not installed; fails when `CI` is set and it is not.

use std::time::Duration;

use baton_testkit::{process_alive, wait_until, RayHead};
use serde_json::json;

/// Generous: a job's supervisor actor takes seconds to start on a loaded 2-core machine.
const JOB_DEADLINE: Duration = Duration::from_secs(60);

/// Live (not zombie) processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the parenthesised name: state, ppid, pgrp, …
                let rest = stat.rfind(')').map_or("", |end| &stat[end + 1..]);
                let fields: Vec<&str> = rest.split_whitespace().collect();
                fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
            })
        })
        .collect()
}

/// A submission id no other test process (each has its own head anyway) or test uses.
fn id(name: &str) -> String {
    format!("testkit-{name}-{}", std::process::id())
}

#[test]
fn a_job_runs_and_its_output_is_in_its_logs() {
    let Some(head) = RayHead::shared() else {
        return;
    };
    assert!(
        head.address.starts_with("http://127.0.0.1:"),
        "{}",
        head.address
    );
    assert!(head.temp_dir().join("session_latest").exists());
    // The readiness probe was deleted: the head starts with no job of ours.
    assert!(head.job("baton-testkit-ready").is_none());

    let sid = head.submit_job(&json!({
        "entrypoint": "echo hello-from-ray \"$MARK\"",
        "submission_id": id("echo"),
        "runtime_env": {"env_vars": {"MARK": "marked"}},
        "entrypoint_resources": {"account_a": 1},
    }));
    assert_eq!(sid, id("echo"));
    let job = head.wait_for_job(&sid, JOB_DEADLINE);
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["driver_exit_code"], 0, "{job}");
    let logs = head.job_logs(&sid);
    assert!(
        logs.lines().any(|l| l == "hello-from-ray marked"),
        "logs: {logs:?}"
    );
    assert!(head
        .jobs()
        .iter()
        .any(|j| j["submission_id"] == sid.as_str()));
    assert!(head.delete_job(&sid));
    assert!(head.job(&sid).is_none());
}

#[test]
fn killing_a_driver_fails_its_job_with_a_signal() {
    let Some(head) = RayHead::shared() else {
        return;
    };
    let sid = id("sleep");
    // `echo $$` names the driver (`sh -c`) so the test can see its whole group go.
    head.submit_job(&json!({"entrypoint": "echo driver=$$; sleep 60", "submission_id": sid}));
    let mut driver = None;
    assert!(
        wait_until(JOB_DEADLINE, || {
            driver = head
                .job_logs(&sid)
                .lines()
                .find_map(|l| l.strip_prefix("driver=")?.trim().parse::<u32>().ok());
            driver.is_some()
        }),
        "job {sid} never printed its driver's pid: {:?}",
        head.job(&sid)
    );
    let driver = driver.expect("checked above");
    assert!(process_alive(driver));
    assert!(!head.kill_job_driver("testkit-no-such-job"));
    assert!(
        head.kill_job_driver(&sid),
        "no driver found for {sid}: {:?}",
        head.job(&sid)
    );

    let job = head.wait_for_job(&sid, JOB_DEADLINE);
    assert_eq!(job["status"], "FAILED", "{job}");
    let code = job["driver_exit_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no exit code: {job}"));
    assert!(
        code < 0,
        "killed by a signal must read as a negative exit code: {job}"
    );
    // The whole group went, the `sleep 60` under the shell included.
    assert!(
        wait_until(JOB_DEADLINE, || group_members(driver).is_empty()),
        "left in the driver's group: {:?}",
        group_members(driver)
    );
    assert!(
        !head.kill_job_driver(&sid),
        "the driver is gone: nothing left to kill"
    );
    assert!(head.delete_job(&sid));
}
