//! End to end: the real Claude Code CLI (pinned in package.json; `npm ci`) against
//! [`FakeModelServer`]. Proves that the fake server speaks the CLI's language, so that baton's
//! own end-to-end tests can trust it. Skips, loudly, when the CLI is not installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use baton_testkit::{
    claude_env, find_real_claude, run_with_deadline, workspace_root, FakeModelServer, RunOutput,
    TempRepo, Turn,
};
use serde_json::Value;

/// Generous: the CLI takes a few seconds to start on a 2-core machine.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn real_claude() -> Option<PathBuf> {
    let found = find_real_claude(&workspace_root());
    if found.is_none() {
        // CI installs it (`.ci/run`): there, a missing CLI is a broken set-up, not a skip.
        assert!(std::env::var_os("CI").is_none(), "CI is set but the real Claude Code CLI is not installed (run npm ci)");
        eprintln!("skipped: real Claude Code CLI not installed (run npm ci)");
    }
    found
}

/// Runs `claude -p PROMPT --output-format stream-json --verbose --dangerously-skip-permissions`
/// in `repo` with a fresh HOME and nothing else from the caller's environment but `PATH`.
fn run_claude(
    claude: &PathBuf,
    repo: &TempRepo,
    server: &FakeModelServer,
    subscriber: bool,
    extra_env: &[(&str, &str)],
) -> RunOutput {
    let home = tempfile::tempdir().expect("temporary HOME");
    let mut cmd = Command::new(claude);
    cmd.args(["-p", "Create hello.txt and commit it."])
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ])
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TZ", "UTC")
        .envs(claude_env(home.path(), &server.base_url(), subscriber))
        .envs(extra_env.iter().copied());
    let out = run_with_deadline(&mut cmd, RUN_DEADLINE).expect("run the real claude CLI");
    assert!(
        !out.timed_out,
        "claude did not finish in {RUN_DEADLINE:?}\n{}",
        describe(&out, server)
    );
    out
}

fn describe(out: &RunOutput, server: &FakeModelServer) -> String {
    let requests: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    format!(
        "status: {:?}\nrequests: {requests:?}\nstdout:\n{}\nstderr:\n{}",
        out.status, out.stdout, out.stderr
    )
}

fn result_of(out: &RunOutput, server: &FakeModelServer) -> Value {
    out.result_event()
        .unwrap_or_else(|| panic!("no result event\n{}", describe(out, server)))
}

#[test]
fn real_cli_writes_and_commits_through_the_fake_server() {
    let Some(claude) = real_claude() else { return };
    let repo = TempRepo::new();
    let server = FakeModelServer::start([
        Turn::write("{cwd}/hello.txt", "hello from fake model\n"),
        Turn::bash("git add -A && git commit -qm hello"),
        Turn::text("done"),
    ]);
    let out = run_claude(&claude, &repo, &server, false, &[]);
    let result = result_of(&out, &server);
    let context = describe(&out, &server);
    assert_eq!(result["is_error"], false, "{context}");
    assert_eq!(result["result"], "done", "{context}");
    assert!(
        result["total_cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{context}"
    );
    assert!(out.status.success(), "{context}");
    assert_eq!(repo.read("hello.txt"), "hello from fake model\n");
    assert_eq!(
        repo.log_subjects().first().map(String::as_str),
        Some("hello"),
        "{context}"
    );
    assert_eq!(server.turns_left(), 0, "{context}");
    let calls = server.messages_calls();
    assert_eq!(calls.len(), 3, "{context}");
    assert_eq!(calls[0].body["stream"], true);
    assert!(calls[0]
        .user_text()
        .contains("Create hello.txt and commit it."));
    let events = out.events();
    assert_eq!(events[0]["type"], "system");
    assert_eq!(events[0]["subtype"], "init");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "assistant" && e["message"]["content"][0]["name"] == "Write"),
        "{context}"
    );
}

#[test]
fn real_cli_reports_a_server_error() {
    let Some(claude) = real_claude() else { return };
    let repo = TempRepo::new();
    let server = FakeModelServer::start([Turn::server_error()]);
    let out = run_claude(
        &claude,
        &repo,
        &server,
        false,
        &[("CLAUDE_CODE_MAX_RETRIES", "0")],
    );
    let result = result_of(&out, &server);
    let context = describe(&out, &server);
    assert_eq!(result["is_error"], true, "{context}");
    assert_eq!(result["api_error_status"], 500, "{context}");
    assert_eq!(out.status.code(), Some(1), "{context}");
}

#[test]
fn real_cli_turns_unified_ratelimit_headers_into_a_limit_message() {
    let Some(claude) = real_claude() else { return };
    let repo = TempRepo::new();
    // An hour from now, so "resets" names a time in the future.
    let resets_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + 3600;
    let server = FakeModelServer::start([Turn::usage_limit(resets_at)]);
    // No CLAUDE_CODE_MAX_RETRIES: the CLI does not retry a usage limit.
    let out = run_claude(&claude, &repo, &server, true, &[]);
    let result = result_of(&out, &server);
    let context = describe(&out, &server);
    let text = result["result"].as_str().unwrap_or_default();
    assert!(
        text.contains("hit your") && text.contains("resets"),
        "{context}"
    );
    assert!(text.ends_with("(UTC)"), "{context}");
    assert_eq!(server.messages_calls().len(), 1, "{context}");
    assert_eq!(result["is_error"], true, "{context}");
    assert_eq!(result["api_error_status"], 429, "{context}");
    let limit_event = out
        .events()
        .into_iter()
        .find(|e| e["type"] == "rate_limit_event")
        .unwrap_or_else(|| panic!("no rate_limit_event\n{context}"));
    assert_eq!(
        limit_event["rate_limit_info"]["status"], "rejected",
        "{context}"
    );
    assert_eq!(
        limit_event["rate_limit_info"]["resetsAt"], resets_at,
        "{context}"
    );
}

#[test]
fn real_cli_reports_a_plain_429_as_server_side_throttling() {
    let Some(claude) = real_claude() else { return };
    let repo = TempRepo::new();
    let server = FakeModelServer::start([Turn::throttled("Rate limited")]);
    let out = run_claude(
        &claude,
        &repo,
        &server,
        true,
        &[("CLAUDE_CODE_MAX_RETRIES", "0")],
    );
    let result = result_of(&out, &server);
    let context = describe(&out, &server);
    assert_eq!(
        result["result"],
        "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
        "{context}"
    );
    assert_eq!(result["is_error"], true, "{context}");
    assert_eq!(result["api_error_status"], 429, "{context}");
}
