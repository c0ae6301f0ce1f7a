//! After the plan: smoke tests, notifications and the hooks around a run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{signal, wait_exit, wait_for, Project, FAST_CONFIG};

const ONE: &str = "meta:\n  name: After\n  notification_email: ops@example.org\nsections:\n- id: s\n  tasks:\n  - id: '1'\n    name: Only\n    status: pending\n";

fn project(config_extra: &str) -> Project {
    let p = Project::new();
    p.write("plan.yaml", ONE);
    p.write("baton.toml", &format!("{FAST_CONFIG}{config_extra}"));
    p.repo.commit_all("plan");
    p
}

/// A one-shot HTTP server on 127.0.0.1 that hands over the body of the first POST.
fn webhook_server() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T000/SECRET-TOKEN", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        if let Ok(v) = serde_json::from_slice(&body) {
            let _ = tx.send(v);
        }
    });
    (url, rx)
}

#[test]
fn the_webhook_gets_one_slack_compatible_notice_with_the_fields() {
    let (url, rx) = webhook_server();
    let p = project(&format!("\n[smoke]\ncommand = \"true\"\n\n[notify]\nwebhook = \"{url}\"\n"));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let v = rx.recv_timeout(Duration::from_secs(30)).expect("no webhook call");
    assert_eq!(v["event"], "plan_completed");
    assert_eq!(v["plan_name"], "After");
    assert_eq!(v["counts"]["completed"], 1);
    assert_eq!(v["counts"]["total"], 1);
    assert!(v["text"].as_str().unwrap().contains("After"), "{v}");
    assert!(v["smoke"].as_str().unwrap().contains("passed"), "{v}");
    assert!(v["duration_seconds"].as_f64().is_some() && v["cost_usd"].as_f64().is_some());
    assert!(r.stdout().contains("ops@example.org"), "the legacy notification_email is not shown:\n{}", r.stdout());
    assert!(!r.all().contains("SECRET-TOKEN"), "the webhook secret was printed:\n{}", r.all());
}

#[test]
fn a_failing_smoke_command_exits_5_and_says_so() {
    let p = project("\n[notify]\ncommand = \"cat > notice.json\"\n");
    p.write("plan.yaml", &ONE.replace("  notification_email: ops@example.org\n", "  smoke_command: echo smoke-output; exit 3\n"));
    p.repo.commit_all("plan with smoke");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.stdout().contains("smoke-output"), "smoke output is not shown:\n{}", r.stdout());
    let v: serde_json::Value = serde_json::from_str(&p.read("notice.json")).unwrap();
    assert_eq!(v["event"], "smoke_failed");
    let log = p.read(".baton/logs/plan/smoke.log");
    assert!(log.contains("smoke-output"), "{log}");
}

#[test]
fn skip_smoke_does_not_run_it() {
    let p = project("\n[smoke]\ncommand = \"touch smoke-ran; exit 1\"\n");
    let r = p.baton(&["run", "plan.yaml", "--skip-smoke"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!p.path().join("smoke-ran").exists());
}

#[test]
fn a_dead_webhook_does_not_change_the_exit_code() {
    // Bind and drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = project(&format!("\n[notify]\nwebhook = \"http://127.0.0.1:{port}/hook?token=SECRET\"\n"));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("notification not delivered"), "{}", r.stderr());
    assert_eq!(r.stderr().matches("notification not delivered").count(), 1, "{}", r.stderr());
    assert!(!r.all().contains("SECRET"), "{}", r.all());
}

#[test]
fn the_playwright_default_is_skipped_with_its_reason() {
    let p = project("");
    p.write("tests/SMOKE01-critical-paths.spec.ts", "// spec\n");
    p.repo.commit_all("spec");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("smoke tests skipped"), "{}", r.stdout());
    assert!(r.stdout().contains("3000"), "the reason does not name the ports:\n{}", r.stdout());
}

#[test]
fn every_ending_sends_exactly_one_notice_with_the_right_event() {
    let cases = [
        (r#"{"default": [{}]}"#, 0, "plan_completed"),
        (r#"{"default": [{"status": "failed"}]}"#, 1, "tasks_failed"),
    ];
    for (scenario, code, event) in cases {
        let p = project("\n[notify]\ncommand = \"cat >> notices.jsonl; echo >> notices.jsonl\"\n");
        p.write("plan.yaml", &ONE.replace("    status: pending\n", "    status: pending\n    max_attempts: 1\n"));
        p.scenario(scenario);
        let r = p.baton(&["run", "plan.yaml"]);
        assert_eq!(r.code(), code, "{}", r.all());
        let lines: Vec<serde_json::Value> =
            p.read("notices.jsonl").lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["event"], event);
    }
    // Blocked: a failed dependency.
    let p = project("\n[notify]\ncommand = \"cat > notice.json\"\n");
    p.write("plan.yaml", &format!("{ONE}  - id: '2'\n    name: After it\n    depends_on: ['1']\n").replace("    status: pending\n", "    status: pending\n    max_attempts: 1\n"));
    p.scenario(r#"{"tasks": {"1": [{"status": "failed"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&p.read("notice.json")).unwrap();
    assert_eq!(v["event"], "blocked");
    assert_eq!(v["blocked_tasks"], serde_json::json!(["2"]));
}

#[test]
fn hooks_run_around_the_plan_and_after_runs_on_ctrl_c() {
    let p = project("before_command = \"echo before > hook-before\"\nafter_command = \"echo after > hook-after\"\n");
    // The hooks belong to [run]: FAST_CONFIG ends inside [run].
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("hook-before"), "before\n");
    assert_eq!(p.read("hook-after"), "after\n");

    let p = project("after_command = \"echo after > hook-after\"\n\n[notify]\ncommand = \"cat > notice.json\"\n");
    p.scenario(r#"{"default": [{"hang": true}]}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to hang", || p.pid_file("1-1.agent.pid").is_some());
    signal(&child, libc::SIGINT);
    // Two signals sent at once can merge into one; the second must follow the first's effect.
    wait_for("the graceful-stop notice", || p.log().contains("stopping gracefully"));
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    assert_eq!(p.read("hook-after"), "after\n", "after_command did not run on Ctrl+C");
    let v: serde_json::Value = serde_json::from_str(&p.read("notice.json")).unwrap();
    assert_eq!(v["event"], "stopped");
}

#[test]
fn a_failing_before_command_starts_nothing() {
    let p = project("before_command = \"exit 7\"\n");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("before_command failed"), "{}", r.stderr());
    assert!(p.invocations().is_empty());
}

#[test]
fn smoke_commands_leave_nothing_running() {
    let p = project("\n[smoke]\ncommand = \"sleep 300 >/dev/null 2>&1 & echo $! > smoke.pid; echo started\"\n");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let pid: u32 = p.read("smoke.pid").trim().parse().unwrap();
    wait_for("the smoke command's background process to be gone", || !baton_testkit::process_alive(pid));
}
