//! `baton serve`: the real server on a free port, over a repository with real runs of the fake
//! agent; asked over plain HTTP (a raw client: the paths are sent exactly as written, never
//! normalised).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::support::{project, signal, wait_exit, wait_for, Project};

const PLAN: &str = "meta:
  name: Served
sections:
- id: s
  tasks:
  - id: '1.1'
    name: One
  - id: '1.2'
    name: Two
  - id: '2.1'
    name: Three
";

/// Task 1.1 fails once, then every task completes.
const SCENARIO: &str = r#"{"tasks": {
  "1.1": [{"status": "failed", "message": "tests fail", "cost": 0.02}, {"cost": 0.03}],
  "1.2": {"cost": 0.05},
  "2.1": {"cost": 0.07}
}}"#;

const OTHER: &str = "meta:
  name: Other
sections:
- id: s
  tasks:
  - id: a
    name: Not run yet
";

/// A project whose plan ran (with history), and another plan in `.claude/plans/` not run yet.
fn ran() -> Project {
    let p = project(PLAN);
    p.write(".claude/plans/other.yaml", OTHER);
    p.repo.commit_all("another plan");
    p.scenario(SCENARIO);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    p
}

/// A running `baton serve`, ended by SIGTERM when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(p: &Project, args: &[&str]) -> Server {
        let mut all = vec!["serve", "--port", "0"];
        all.extend_from_slice(args);
        let child = p.spawn_named("serve", &all);
        let mut port = None;
        wait_for("baton serve to say where it listens", || {
            port = p.log_of("serve").lines().find_map(|l| l.strip_prefix("baton serve: http://")).and_then(|rest| rest.split('/').next()).and_then(|a| a.rsplit(':').next()).and_then(|n| n.parse().ok());
            port.is_some()
        });
        Server { child, port: port.unwrap() }
    }

    fn get(&self, path: &str) -> Reply {
        self.ask(path, &[])
    }

    /// GET `path` exactly as written, with `Host: 127.0.0.1:PORT` unless `headers` name one.
    fn ask(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers)
    }

    /// `method` `path` (no body) exactly as written, with `Host: 127.0.0.1:PORT` unless
    /// `headers` name one.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to baton serve");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
        if !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        for (h, v) in headers {
            req.push_str(&format!("{h}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read the answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        // Chunked bodies: the test bodies are read whole, so undo the chunking.
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.to_string() };
        Reply { status, head: head.to_string(), body }
    }

    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}\n{}", r.head, r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", r.body))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        signal(&self.child, libc::SIGTERM);
        let _ = wait_exit(&mut self.child);
    }
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| l.split_once(':').filter(|(h, _)| h.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
    }
}

fn command_json(p: &Project, args: &[&str]) -> Value {
    let r = p.baton(args);
    assert_eq!(r.code(), 0, "baton {args:?}: {}", r.all());
    serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("baton {args:?}: {e}:\n{}", r.stdout()))
}

#[test]
fn the_api_answers_what_status_history_and_cost_print() {
    let p = ran();
    let server = Server::start(&p, &[]);

    let plans = server.json("/api/plans");
    let list = plans["plans"].as_array().expect("a list of plans");
    let by_id = |id: &str| list.iter().find(|l| l["id"] == id).unwrap_or_else(|| panic!("plan {id} in {plans:#}"));
    assert_eq!(by_id("plan")["path"], "plan.yaml");
    assert_eq!(by_id("plan")["recorded"], true, "{plans:#}");
    assert_eq!(by_id("plan")["counts"]["completed"], 3, "{plans:#}");
    assert_eq!(by_id("plan")["spent_usd"], 0.17, "{plans:#}");
    assert_eq!(by_id("other")["path"], ".claude/plans/other.yaml");
    assert_eq!(by_id("other")["recorded"], false);
    assert_eq!(by_id("other")["name"], "Other");

    assert_eq!(server.json("/api/plans/plan"), command_json(&p, &["status", "plan.yaml", "--json"]));
    assert_eq!(server.json("/api/plans/plan.yaml"), server.json("/api/plans/plan"), "a plan is named by its id or its path");
    let task = server.json("/api/plans/plan/tasks/1.1");
    assert_eq!(task, command_json(&p, &["history", "plan.yaml", "--task", "1.1", "--json"]));
    assert_eq!(task["attempts"].as_array().map(Vec::len), Some(2), "{task:#}");
    assert_eq!(server.json("/api/history"), command_json(&p, &["history", "--json"]));
    assert_eq!(server.json("/api/history?plan=plan&limit=1"), command_json(&p, &["history", "plan.yaml", "--json", "--limit", "1"]));
    assert_eq!(server.json("/api/cost"), command_json(&p, &["cost", "--json"]));
    assert_eq!(server.json("/api/cost?plan=plan&by=model"), command_json(&p, &["cost", "plan.yaml", "--json", "--by", "model"]));

    // The second attempt's transcript: the agent's JSON lines.
    let t = server.get("/api/plans/plan/tasks/1.1/attempts/2/transcript");
    assert_eq!(t.status, 200, "{}\n{}", t.head, t.body);
    assert!(!t.body.trim().is_empty() && t.body.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{}", t.body);

    for (path, status) in [("/api/plans/nope", 404), ("/api/plans/other/tasks/zz", 404), ("/api/plans/plan/tasks/1.1/attempts/9/transcript", 404), ("/api/cost?since=yesterdayish", 400)] {
        let r = server.get(path);
        assert_eq!(r.status, status, "GET {path}: {}\n{}", r.head, r.body);
        let err: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body));
        assert!(err["error"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    }

    // The minimal page lists both plans.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-plan=\"plan\"") && page.body.contains("data-plan=\"other\""), "{}", page.body);
}

#[test]
fn paths_out_of_the_logs_are_refused() {
    let p = ran();
    // A history that names transcripts outside the logs (a damaged or hostile store).
    let db = rusqlite::Connection::open(p.path().join(".baton/baton.db")).unwrap();
    db.execute("UPDATE attempts SET transcript = '../../../../../../etc/passwd' WHERE task = '1.2'", []).unwrap();
    db.execute("UPDATE attempts SET transcript = '/etc/passwd' WHERE task = '2.1'", []).unwrap();
    db.execute("UPDATE attempts SET transcript = 'baton.toml' WHERE task = '1.1' AND session = 1", []).unwrap();
    drop(db);
    let server = Server::start(&p, &[]);
    for path in [
        "/api/plans/..%2F..%2Fetc%2Fpasswd",
        "/api/plans/%2Fetc%2Fpasswd",
        "/api/plans/../../etc/passwd",
        "/api/plans/plan/tasks/..%2F..%2Fbaton.toml",
        "/api/plans/plan/tasks/%2e%2e",
        "/api/plans/plan/tasks/..",
        "/api/plans/plan/tasks/%2Fetc%2Fpasswd/attempts/1/transcript",
        "/api/plans/plan/tasks/1.1/attempts/..%2F1/transcript",
        "/api/plans/plan/tasks/1.1/attempts/-1/transcript",
        "/api/history?plan=..%2F..%2Fetc%2Fpasswd",
        "/api/cost?plan=%2Fetc%2Fpasswd",
    ] {
        let r = server.get(path);
        assert!((400..=404).contains(&r.status), "GET {path} answered {}:\n{}", r.status, r.body);
        assert!(!r.body.contains("root:"), "GET {path}: {}", r.body);
    }
    for path in ["/api/plans/plan/tasks/1.2/attempts/1/transcript", "/api/plans/plan/tasks/2.1/attempts/1/transcript", "/api/plans/plan/tasks/1.1/attempts/1/transcript"] {
        let r = server.get(path);
        assert_eq!(r.status, 403, "GET {path}: {}", r.body);
        assert!(!r.body.contains("root:") && !r.body.contains("[run]"), "GET {path}: {}", r.body);
    }
    // The untouched transcript still answers.
    assert_eq!(server.get("/api/plans/plan/tasks/1.1/attempts/2/transcript").status, 200);
}

#[test]
fn a_bind_reachable_from_other_machines_needs_a_token() {
    let p = project(PLAN);
    let r = p.baton(&["serve", "--bind", "0.0.0.0", "--port", "0"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("error: --bind 0.0.0.0 is reachable from other machines, and no --token was given"), "{}", r.stderr());
    assert!(r.stderr().contains("help:") && r.stderr().contains("--token"), "{}", r.stderr());
    for bad in [" ", "tökén", "a;b"] {
        let r = p.baton(&["serve", "--token", bad, "--port", "0"]);
        assert_eq!(r.code(), 2, "--token {bad:?}: {}", r.all());
    }
}

#[test]
fn with_a_token_every_request_needs_it_and_it_is_never_printed() {
    const TOKEN: &str = "s3cret-Tok3n";
    let p = ran();
    let server = Server::start(&p, &["--bind", "0.0.0.0", "--token", TOKEN]);
    let none = server.get("/api/plans");
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Bearer"));
    assert_eq!(server.ask("/api/plans", &[("Authorization", "Bearer wrong-token!")]).status, 401);
    assert_eq!(server.ask("/api/plans", &[("Cookie", "baton_token=s3cret-Tok3")]).status, 401);
    let right = server.ask("/api/plans", &[("Authorization", &format!("Bearer {TOKEN}"))]);
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(server.ask("/", &[("Authorization", &format!("Bearer {TOKEN}"))]).status, 200);

    // Once in the address: a cookie, and the browser sent on without it.
    let once = server.get(&format!("/api/plans?x=1&token={TOKEN}"));
    assert_eq!(once.status, 303, "{}", once.head);
    assert_eq!(once.header("location").as_deref(), Some("/api/plans?x=1"));
    let cookie = once.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(server.ask("/api/plans/plan", &[("Cookie", &format!("theme=dark; {pair}"))]).status, 200);
    assert_eq!(server.get("/api/plans?token=nope").status, 401);

    drop(server);
    assert!(!p.log_of("serve").contains(TOKEN), "the token was printed:\n{}", p.log_of("serve"));
    assert!(p.log_of("serve").contains("every request needs the token"), "{}", p.log_of("serve"));
}

#[test]
fn a_loopback_server_refuses_other_host_names_and_stops_on_sigterm() {
    let p = ran();
    let mut server = Server::start(&p, &[]);
    let port = server.port.to_string();
    for host in [format!("evil.example:{port}"), "127.0.0.1:1".to_string(), format!("127.0.0.1.evil.example:{port}")] {
        let r = server.ask("/api/plans", &[("Host", &host)]);
        assert_eq!(r.status, 421, "Host {host:?}: {}", r.body);
    }
    assert_eq!(server.ask("/api/plans", &[("Host", &format!("localhost:{port}"))]).status, 200);
    signal(&server.child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut server.child), Some(0), "{}", p.log_of("serve"));
}

/// The browser, or `None` (a loud skip) when no Chromium is installed; under `CI` a missing
/// Chromium fails the test (`.ci/run` installs Debian's `chromium`).
fn browser() -> Option<&'static baton_testkit::Browser> {
    if baton_testkit::find_chromium().is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but no Chromium is installed (apt-get install -y chromium)");
        eprintln!("skipped: no Chromium installed (apt-get install -y chromium)");
        return None;
    }
    baton_testkit::Browser::shared()
}

#[test]
fn a_browser_opens_the_page_with_the_token_once_and_sees_every_plan() {
    const TOKEN: &str = "browser-tok3n";
    let Some(browser) = browser() else { return };
    let p = ran();
    let server = Server::start(&p, &["--token", TOKEN]);
    let page = browser.new_page().expect("a page");
    page.goto(&format!("http://127.0.0.1:{}/?token={TOKEN}", server.port)).expect("load the page");
    page.wait_for("document.querySelectorAll('.card.plan').length === 2", Duration::from_secs(30)).expect("both plans listed");
    // Sent on without the token in the address; the cookie carries it from now on.
    assert_eq!(page.eval("location.pathname + location.search").unwrap(), "/");
    assert_eq!(page.text(".card.plan[data-plan='plan'] .progress").unwrap(), "3 of 3 completed");
    assert_eq!(page.text(".card.plan[data-plan='plan'] .badge").unwrap(), "done");
    assert_eq!(page.text(".card.plan[data-plan='other'] h3 a").unwrap(), "Other");
    assert_eq!(page.text(".card.plan[data-plan='other'] .badge").unwrap(), "new");
    // A link followed in the page: the next page answers with the cookie alone.
    page.click(".card.plan[data-plan='plan'] h3 a").expect("click the plan");
    let deadline = Duration::from_secs(30);
    if let Err(e) = page.wait_for("location.pathname === '/plans/plan' && !!document.querySelector('#tasks tr[data-task=\"2.1\"]')", deadline) {
        panic!("the plan's page: {e:?}; the page is at {:?}: {:?}", page.eval("location.href"), page.eval("document.body.innerText.slice(0, 300)"));
    }
    assert_eq!(page.text("#plan-title").unwrap(), "Served done");
    assert_eq!(page.eval("fetch('/api/plans/plan').then(r => r.status)").unwrap(), 200);
}

/// A plan whose first task holds (the fake agent waits for `go`) while a run goes on.
const HELD: &str = "meta:
  name: Held
sections:
- id: s
  name: Work
  tasks:
  - id: '1.1'
    name: Held <b>task</b>
  - id: '1.2'
    name: After it
    depends_on: ['1.1']
";

/// A run of [`HELD`] in the background with 1.1 running until `go` exists; waits until it runs.
fn held_run(p: &Project) -> (std::process::Child, std::path::PathBuf) {
    let running = p.state_path("1.1.running");
    let go = p.state_path("go");
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"mark": [{}], "wait_for": [{}], "events": 2, "interval_ms": 50}}]}}}}"#,
        serde_json::json!(running),
        serde_json::json!(go)
    ));
    let run = p.spawn(&["run", "plan.yaml"]);
    wait_for("task 1.1 to start", || running.exists());
    (run, go)
}

#[test]
fn pages_show_every_plan_its_tasks_and_an_attempt_escaping_what_agents_wrote() {
    let p = ran();
    p.write(".claude/plans/evil.yaml", "meta:\n  name: <script>alert(1)</script>\nsections:\n- id: s\n  tasks:\n  - id: x\n    name: <img src=x onerror=alert(2)>\n");
    let server = Server::start(&p, &[]);
    let home = server.get("/");
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let home = home.body.clone();
    assert!(home.contains("data-plan=\"plan\"") && home.contains("data-plan=\"other\"") && home.contains("data-plan=\"evil\""), "{home}");
    assert!(!home.contains("<script>alert") && home.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{home}");
    let plan = server.get("/plans/plan").body;
    for id in ["1.1", "1.2", "2.1"] {
        assert!(plan.contains(&format!("<tr data-task=\"{id}\" data-status=\"completed\">")), "{id}: {plan}");
    }
    assert!(plan.contains("spent $0.1700 over all runs"), "{plan}");
    let evil = server.get("/plans/evil").body;
    assert!(!evil.contains("<img src=x") && evil.contains("&lt;img src=x onerror=alert(2)&gt;"), "{evil}");
    // Only the <main>, for the page's own refresh.
    let part = server.get("/plans/plan?part=main").body;
    assert!(part.starts_with("<div class=\"crumbs\">") && !part.contains("<html"), "{part}");
    let task = server.get("/plans/plan/tasks/1.1").body;
    assert!(task.contains("data-session=\"1\" data-outcome=\"failed\"") && task.contains("data-session=\"2\" data-outcome=\"completed\""), "{task}");
    assert!(task.contains("tests fail"), "{task}");
    assert!(task.contains("data-src=\"/plans/plan/tasks/1.1/attempts/2/transcript\" open"), "{task}");
    let history = server.get("/history").body;
    assert!(history.contains("<svg") && history.contains("href=\"/plans/plan\"") && history.contains("$0.17"), "{history}");
    let one = server.get("/history?plan=plan").body;
    assert!(one.contains("History of plan") && one.contains("<svg"), "{one}");
    assert_eq!(server.get("/history?plan=..%2F..%2Fetc%2Fpasswd").status, 404);
    for (path, status) in [("/plans/nope", 404), ("/plans/plan/tasks/9.9", 404), ("/plans/plan/tasks/..%2F..%2Fetc", 400), ("/assets/app.js", 200), ("/assets/app.css", 200), ("/nothing", 404)] {
        assert_eq!(server.get(path).status, status, "GET {path}");
    }
}

#[test]
fn the_change_feed_names_the_plan_that_changed() {
    let p = ran();
    let server = Server::start(&p, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n", server.port).unwrap();
    let mut seen = String::new();
    read_events_until(&mut s, &mut seen, "event: hello");
    p.write(".claude/plans/other.yaml", &OTHER.replace("Not run yet", "Renamed"));
    read_events_until(&mut s, &mut seen, "event: change\ndata: {\"plans\":[\".claude/plans/other.yaml\"]}");
}

#[test]
fn stop_needs_the_pages_own_header_and_stops_the_run_gracefully() {
    let p = project(HELD);
    let server = Server::start(&p, &[]);
    let post = |headers: &[(&str, &str)]| server.send("POST", "/api/plans/plan/stop", headers);
    let (mut run, go) = held_run(&p);
    let stop_file = p.path().join(".claude/plans/.stop");
    // What a page of another site could send: refused, and nothing written.
    assert_eq!(post(&[]).status, 403);
    assert_eq!(post(&[("X-Baton-CSRF", "stop"), ("Origin", "http://evil.example")]).status, 403);
    assert_eq!(post(&[("X-Baton-CSRF", "stop"), ("Origin", &format!("http://127.0.0.1:{}.evil.example", server.port))]).status, 403);
    assert_eq!(server.get("/api/plans/plan/stop").status, 405);
    assert!(!stop_file.exists());
    let r = post(&[("X-Baton-CSRF", "stop"), ("Origin", &format!("http://127.0.0.1:{}", server.port))]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("stop asked"), "{}", r.body);
    assert!(stop_file.exists());
    let page = server.get("/plans/plan").body;
    assert!(page.contains("id=\"stopping\"") && page.contains("state-stopping"), "{page}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut run), Some(4), "{}\n{}", p.log(), p.read("plan.yaml"));
    let plan = p.read("plan.yaml");
    assert_eq!(plan.matches("    status: completed").count(), 1, "the running task finished, the next one never started:\n{plan}");
    // No run now: nothing to stop, and no stop file left for the next run.
    assert_eq!(post(&[("X-Baton-CSRF", "stop")]).status, 409);
    assert!(!stop_file.exists());
}

#[test]
fn a_browser_sees_a_task_change_state_live_and_stops_the_run_with_the_button() {
    let Some(browser) = browser() else { return };
    let p = project(HELD);
    let (mut run, go) = held_run(&p);
    let server = Server::start(&p, &[]);
    let page = browser.new_page().expect("a page");
    page.answer_dialogs(Some(true));
    page.goto(&format!("http://127.0.0.1:{}/plans/plan", server.port)).expect("load the plan page");
    let deadline = Duration::from_secs(20);
    page.wait_for("document.querySelector('#running [data-task=\"1.1\"]') !== null", deadline).expect("1.1 shown running");
    assert_eq!(page.text("#tasks tr[data-task='1.1'] td:nth-child(2)").unwrap(), "Held <b>task</b>");
    assert_eq!(page.text("#tasks tr[data-task='1.2'] .badge").unwrap(), "pending");
    page.wait_for("document.getElementById('live').className === 'on'", deadline).expect("the live feed connected");
    // A mark on this document: a reload would lose it.
    page.eval("window.__same_page = true").unwrap();
    page.click("#stop").expect("click Stop");
    page.wait_for("document.getElementById('stopping') !== null && document.querySelector('#plan-state').textContent === 'stopping'", deadline).expect("the page says the stop was asked");
    assert!(p.path().join(".claude/plans/.stop").exists());
    std::fs::write(&go, "").unwrap();
    page.wait_for("document.querySelector('#tasks tr[data-task=\"1.1\"]').dataset.status === 'completed' && document.querySelector('#plan-state').textContent === 'stopped'", deadline).expect("1.1 completed and the run stopped, live");
    assert_eq!(page.eval("window.__same_page === true").unwrap(), true, "the page was reloaded");
    assert_eq!(wait_exit(&mut run), Some(4), "{}", p.log());
    assert_eq!(page.text("#tasks tr[data-task='1.2'] .badge").unwrap(), "pending");
}

#[test]
fn on_a_phone_the_pages_fit_the_screen_and_wide_parts_scroll_in_their_own_box() {
    let Some(browser) = browser() else { return };
    let p = ran();
    let server = Server::start(&p, &[]);
    let page = browser.new_page().expect("a page");
    page.set_viewport(390, 844, true).expect("a phone's screen");
    for path in ["/", "/plans/plan", "/plans/plan/tasks/1.1", "/history"] {
        page.goto(&format!("http://127.0.0.1:{}{path}", server.port)).expect("load");
        page.wait_for("document.readyState === 'complete' && document.querySelector('main').children.length > 0", Duration::from_secs(20)).expect("the page");
        let wide = page.eval("document.documentElement.scrollWidth").unwrap();
        assert!(wide.as_u64().is_some_and(|w| w <= 390), "{path} is {wide} px wide on a 390 px screen");
    }
}

#[test]
fn a_browser_reads_an_attempts_transcript_on_the_task_page() {
    let Some(browser) = browser() else { return };
    let p = ran();
    let server = Server::start(&p, &[]);
    let page = browser.new_page().expect("a page");
    page.goto(&format!("http://127.0.0.1:{}/plans/plan/tasks/1.1", server.port)).expect("load the task page");
    let deadline = Duration::from_secs(20);
    // The latest attempt's transcript is open and read; the tool calls in it are collapsed.
    page.wait_for("document.querySelector('section[data-session=\"2\"] details.transcript[data-loaded]') !== null", deadline).expect("the latest transcript loaded");
    let latest = page.text("section[data-session='2'] details.transcript .tx").unwrap();
    assert!(latest.contains("did it"), "{latest}");
    assert_eq!(page.eval("[...document.querySelectorAll('section[data-session=\"2\"] details.tx-tool')].every(d => !d.open)").unwrap(), true);
    // The first attempt's is closed until asked for.
    assert_eq!(page.eval("document.querySelector('section[data-session=\"1\"] details.transcript').open").unwrap(), false);
    page.click("section[data-session='1'] details.transcript > summary").expect("open the first transcript");
    page.wait_for("document.querySelector('section[data-session=\"1\"] details.transcript[data-loaded]') !== null", deadline).expect("the first transcript loaded");
    let first = page.text("section[data-session='1'] details.transcript .tx").unwrap();
    assert!(first.contains("tests fail"), "{first}");
    assert!(page.text("section[data-session='1']").unwrap().contains("failed"));
}

#[test]
fn a_usage_limit_wait_shows_live_with_its_reset() {
    let Some(browser) = browser() else { return };
    let p = project(HELD);
    let running = p.state_path("1.1.running");
    let go = p.state_path("go");
    let reset = jiff::Timestamp::now().as_second() + 3 * 3600;
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"mark": [{}], "wait_for": [{}], "limit": "You've hit your limit · resets 6pm (America/Toronto)", "limit_resets_at": {reset}}}]}}}}"#,
        serde_json::json!(running),
        serde_json::json!(go)
    ));
    let mut run = p.spawn(&["run", "plan.yaml"]);
    wait_for("task 1.1 to start", || running.exists());
    let server = Server::start(&p, &[]);
    let page = browser.new_page().expect("a page");
    page.goto(&format!("http://127.0.0.1:{}/plans/plan", server.port)).expect("load the plan page");
    let deadline = Duration::from_secs(20);
    page.wait_for("document.getElementById('live').className === 'on' && document.querySelector('#running [data-task=\"1.1\"]') !== null", deadline).expect("1.1 running, live");
    assert_eq!(page.eval("document.querySelector('.limit') === null").unwrap(), true);
    std::fs::write(&go, "").unwrap();
    page.wait_for("document.querySelector('.limit[data-agent=\"claude\"]') !== null", deadline).expect("the limit shown without a reload");
    let said = page.text(".limit").unwrap();
    let until = jiff::Timestamp::from_second(reset).unwrap().strftime("%H:%M").to_string();
    assert!(said.starts_with("claude: usage limit until ") && said.contains(&until) && (said.contains("(in 2h 59m") || said.contains("(in 3h 00m")), "{said}");
    assert_eq!(post_stop(&server).status, 200);
    assert_eq!(wait_exit(&mut run), Some(4), "{}", p.log());
}

fn post_stop(server: &Server) -> Reply {
    server.send("POST", "/api/plans/plan/stop", &[("X-Baton-CSRF", "stop")])
}

/// Reads the change feed until `what` shows (or the stream ends: a failure).
fn read_events_until(s: &mut TcpStream, seen: &mut String, what: &str) {
    let mut buf = [0u8; 4096];
    while !seen.contains(what) {
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "the stream ended before {what:?}:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[test]
fn a_plan_at_the_root_is_listed_and_its_first_run_shows_live() {
    let p = project(PLAN);
    p.scenario(SCENARIO);
    let server = Server::start(&p, &["--bind", "localhost"]);
    let plans = server.json("/api/plans");
    assert_eq!(plans["plans"][0]["id"], "plan", "{plans}");
    assert_eq!(plans["plans"][0]["state"], "new", "{plans}");
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1, "baton.toml is no plan: {plans}");
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", server.port).unwrap();
    let mut seen = String::new();
    read_events_until(&mut s, &mut seen, "event: hello");
    // The repository's first run: no history yet when the server started.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    read_events_until(&mut s, &mut seen, "event: change");
    wait_for("the plan done", || server.json("/api/plans")["plans"][0]["state"] == "done");
    assert!(server.get("/plans/plan").body.contains("<span class=\"badge state-done\" id=\"plan-state\">done</span>"));
}

#[test]
fn refusals_are_pages_for_people_and_json_for_the_api() {
    let p = ran();
    let server = Server::start(&p, &[]);
    let page = server.get("/plans/nope");
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{}", page.head);
    assert!(page.body.contains("id=\"refusal\"") && page.body.contains("no plan `nope` here") && page.body.contains("href=\"/\""), "{}", page.body);
    for (path, status) in [("/api/cost?by=foo", 400), ("/api/history?limit=abc", 400), ("/api/history?limit=0", 400), ("/api/plans/plan/tasks/1.1/attempts/x/transcript", 400), ("/api/plans/plan/stop", 405), ("/api/nope", 404)] {
        let r = server.get(path);
        assert_eq!(r.status, status, "GET {path}: {}", r.body);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "GET {path}: {}", r.head);
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body));
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "GET {path}: {v}");
    }
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[test]
fn pipes_links_and_odd_rows_in_the_logs_and_the_history_neither_hang_nor_leak() {
    let p = ran();
    let logs = p.path().join(".baton/logs/plan/1.1");
    // An attempt record that is a pipe, one that is /dev/zero, a lock file that is a pipe.
    mkfifo(&logs.join("attempt-7.json"));
    std::fs::copy(logs.join("attempt-1.jsonl"), logs.join("attempt-7.jsonl")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", logs.join("attempt-8.json")).unwrap();
    std::fs::copy(logs.join("attempt-1.jsonl"), logs.join("attempt-8.jsonl")).unwrap();
    let locks = p.path().join(".baton/logs/locks");
    std::fs::create_dir_all(&locks).unwrap();
    for entry in std::fs::read_dir(&locks).unwrap().flatten() {
        std::fs::remove_file(entry.path()).unwrap();
        mkfifo(&entry.path());
    }
    // The pipeline's list of failed items a pipe; a transcript a pipe.
    std::fs::create_dir_all(p.path().join(".baton/logs/pipeline")).unwrap();
    mkfifo(&p.path().join(".baton/logs/pipeline/failed.jsonl"));
    mkfifo(&logs.join("attempt-9.jsonl"));
    // The history names plans outside the repository.
    let db = rusqlite::Connection::open(p.path().join(".baton/baton.db")).unwrap();
    db.execute("INSERT INTO runs (plan, kind, command, started_at) VALUES ('/etc/passwd', 'run', 'x', '2026-12-01T10:00:00Z'), ('../outside.yaml', 'run', 'x', '2026-12-01T10:00:00Z')", []).unwrap();
    drop(db);
    std::fs::write(p.path().parent().unwrap().join("outside.yaml"), PLAN).ok();
    let server = Server::start(&p, &[]);
    for path in ["/", "/api/plans", "/plans/plan", "/api/plans/plan", "/plans/plan/tasks/1.1", "/api/plans/plan/tasks/1.1"] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert!(!r.body.contains("passwd") && !r.body.contains("outside"), "GET {path}: {}", r.body);
    }
    assert_eq!(server.get("/api/plans/passwd").status, 404);
    // `baton status` and `baton logs` read the same files.
    let r = p.baton(&["status", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = p.baton(&["logs", "plan.yaml", "1.1", "--attempt", "9"]);
    assert!(r.all().contains("not a regular file"), "{}", r.all());
}

#[test]
fn a_client_that_never_sends_its_headers_is_let_go_and_does_not_hold_the_exit() {
    let p = ran();
    let mut server = Server::start(&p, &[]);
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
    // The server closes it (the headers' deadline); meanwhile it answers others.
    assert_eq!(server.get("/api/plans").status, 200);
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Another one half-sent while the server is asked to stop: it exits all the same.
    let mut other = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    other.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    signal(&server.child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut server.child), Some(0), "{}", p.log_of("serve"));
}

#[test]
fn stop_never_writes_through_a_link_and_pages_refuse_to_be_framed() {
    let p = project(HELD);
    let (mut run, go) = held_run(&p);
    let server = Server::start(&p, &[]);
    let victim = p.state_path("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, p.path().join(".claude/plans/.stop")).unwrap();
    let r = post_stop(&server);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("symbolic link"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    std::fs::remove_file(p.path().join(".claude/plans/.stop")).unwrap();
    let page = server.get("/plans/plan");
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'") && c.contains("script-src 'self'")), "{}", page.head);
    assert_eq!(post_stop(&server).status, 200);
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut run), Some(4), "{}", p.log());
}
