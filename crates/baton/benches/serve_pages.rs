//! Benchmark (not a test) of the dashboard's pages: a 500-task plan (10 sections, chains of
//! dependencies, every status) served by the real `baton serve`, and headless Chromium.
//!
//! Prints: the server's time to render the plan page (and its size), the browser's time from
//! navigation to the page loaded, at desktop and phone width, the graph's nodes; and how long a
//! change of a task's state in the plan file takes to show in the open page (the file written,
//! the page's DOM polled until the row says so), over 10 changes.
//!
//! `cargo bench -p baton --bench serve_pages` (the release binary: the figure that matters).
//! Without Chromium only the server's figures are printed.
//!
//! With `BATON_SCREENSHOT=FILE.png` it also takes the README's picture: the plan page of a
//! 12-task plan while the test kit's fake agent works on one task (and one failed before).

#[path = "support/serve.rs"]
mod serve;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve::get;

const SECTIONS: usize = 10;
const PER_SECTION: usize = 50;
const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// The plan, with task `changed` (if any) completed.
fn plan(changed: usize) -> String {
    let statuses = ["completed", "completed", "failed", "in_progress", "pending", "pending", "skipped", "verified"];
    let mut y = String::from("meta:\n  name: Five hundred\nsections:\n");
    let mut n = 0;
    for s in 0..SECTIONS {
        y.push_str(&format!("- id: s{s}\n  name: Section {s}\n  tasks:\n"));
        for t in 0..PER_SECTION {
            n += 1;
            let status = if n <= changed { "completed" } else if n < 20 { "pending" } else { statuses[n % statuses.len()] };
            y.push_str(&format!("  - id: '{s}.{t}'\n    name: Task {t} of section {s}, with a longer title to wrap\n    status: {status}\n"));
            if status == "failed" {
                y.push_str("    attempts: 2\n    last_error: 'tests fail: expected 3, got 4'\n");
            }
            if t > 0 {
                y.push_str(&format!("    depends_on: ['{s}.{}']\n", t - 1));
            } else if s > 0 {
                y.push_str(&format!("    depends_on: ['{}.{}']\n", s - 1, PER_SECTION - 1));
            }
        }
    }
    y
}

fn main() {
    let repo = baton_testkit::TempRepo::new();
    repo.write("baton.toml", baton_testkit::FAST_CONFIG);
    repo.write(".claude/plans/big.yaml", &plan(0));
    repo.commit_all("plan");
    let mut cmd = Command::new(BATON);
    cmd.current_dir(repo.path()).env("NO_COLOR", "1");
    let (server, port) = serve::start(cmd);
    let pid = server.pid();
    println!("baton serve, a plan of {} tasks ({})", SECTIONS * PER_SECTION, if cfg!(debug_assertions) { "debug build" } else { "release build" });

    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let t = Instant::now();
        size = get(port, "/plans/big");
        times.push(t.elapsed());
    }
    times.sort();
    println!("  server: the plan page in {:.1} ms (median of 20; fastest {:.1} ms), {:.0} KB", ms(times[10]), ms(times[0]), size as f64 / 1024.0);

    match baton_testkit::Browser::start() {
        None => println!("  (no Chromium: the browser's figures are left out)"),
        Some(browser) => {
            let page = browser.new_page().expect("a page");
            for (label, w, h, mobile) in [("desktop 1280 px", 1280, 900, false), ("phone 390 px", 390, 844, true)] {
                page.set_viewport(w, h, mobile).expect("viewport");
                let mut loads = Vec::new();
                for _ in 0..5 {
                    page.goto(&format!("http://127.0.0.1:{port}/plans/big")).expect("load");
                    page.wait_for("document.readyState === 'complete'", Duration::from_secs(30)).expect("loaded");
                    let v = page.eval("(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()").unwrap();
                    loads.push(v.as_f64().unwrap_or(f64::NAN));
                }
                loads.sort_by(f64::total_cmp);
                let rows = page.eval("document.querySelectorAll('#tasks tr[data-task]').length").unwrap();
                let nodes = page.eval("document.querySelectorAll('.graph [data-task]').length").unwrap();
                let wide = page.eval("document.documentElement.scrollWidth").unwrap();
                println!("  browser, {label}: loaded in {:.0} ms (median of 5), {rows} table rows, {nodes} graph nodes, page {wide} px wide", loads[2]);
            }
            page.set_viewport(1280, 900, false).expect("viewport");
            page.goto(&format!("http://127.0.0.1:{port}/plans/big")).expect("load");
            page.wait_for("document.getElementById('live').className === 'on'", Duration::from_secs(30)).expect("live");
            let mut lags = Vec::new();
            for changed in 1..=10 {
                let id = format!("0.{}", changed - 1);
                repo.write(".claude/plans/big.yaml", &plan(changed));
                let waited = page.wait_for(&format!("document.querySelector('#tasks tr[data-task=\"{id}\"]').dataset.status === 'completed'"), Duration::from_secs(30)).expect("the change shows");
                lags.push(waited);
            }
            lags.sort();
            println!("  a task's change of state shows in the open page after {:.0} ms (median of 10; slowest {:.0} ms)", ms(lags[5]), ms(lags[9]));
        }
    }
    if let Some(shot) = std::env::var_os("BATON_SCREENSHOT") {
        screenshot(std::path::Path::new(&shot));
    }
    println!("  server memory: {}", serve::memory(pid));
    serve::stop(server);
}

const DEMO: &str = "meta:
  name: Billing service
  max_attempts_default: 2
sections:
- id: api
  name: API
  tasks:
  - id: '1.1'
    name: Invoice model and migration
    status: completed
  - id: '1.2'
    name: Invoice endpoints
    depends_on: ['1.1']
    status: completed
  - id: '1.3'
    name: Pagination for invoice lists
    depends_on: ['1.2']
  - id: '1.4'
    name: Webhook signature check
    depends_on: ['1.1']
- id: tax
  name: Tax rules
  tasks:
  - id: '2.1'
    name: VAT rates per country
    status: completed
  - id: '2.2'
    name: Reverse charge for EU businesses
    depends_on: ['2.1']
  - id: '2.3'
    name: Rounding per line item
    depends_on: ['2.1']
  - id: '2.4'
    name: Tax report export
    depends_on: ['2.2', '2.3', '1.3']
- id: ui
  name: Web UI
  tasks:
  - id: '3.1'
    name: Invoice list page
    depends_on: ['1.3']
  - id: '3.2'
    name: Invoice detail page
    depends_on: ['1.2']
  - id: '3.3'
    name: PDF download
    depends_on: ['3.2']
  - id: '3.4'
    name: Settings for tax IDs
    depends_on: ['2.2']
";

/// The README's picture: a run of the fake agent on [`DEMO`] (2.2 fails, 2.3 works for a while),
/// its plan page taken while 2.3 runs.
fn screenshot(to: &std::path::Path) {
    let Some(browser) = baton_testkit::Browser::start() else {
        println!("  (no Chromium: no screenshot)");
        return;
    };
    let repo = baton_testkit::TempRepo::new();
    let state = tempfile::tempdir().expect("a state folder");
    repo.write("baton.toml", baton_testkit::FAST_CONFIG);
    repo.write(".claude/plans/billing.yaml", DEMO);
    repo.commit_all("plan");
    let running = state.path().join("2.3.running");
    std::fs::write(
        state.path().join("scenario.json"),
        serde_json::json!({"tasks": {
            "1.3": {"cost": 0.21},
            "1.4": {"cost": 0.12},
            "2.3": [{"mark": [running], "events": 400, "interval_ms": 150, "cost": 0.3}],
            "2.2": [{"status": "failed", "message": "tests fail: reverse charge applied to a consumer in DE (expected VAT 19%)", "cost": 0.18}, {"status": "failed", "message": "tests fail: reverse charge applied to a consumer in DE (expected VAT 19%)", "cost": 0.2}],
        }})
        .to_string(),
    )
    .unwrap();
    let fake = |c: &mut Command| {
        c.current_dir(repo.path())
            .env("NO_COLOR", "1")
            .env("BATON_CLAUDE_BIN", baton_testkit::fake_claude_bin())
            .env("BATON_FAKE_SCENARIO", state.path().join("scenario.json"))
            .env("BATON_FAKE_STATE", state.path())
            .env("BATON_FAKE_MAX_HANG_SECS", "120")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut run = Command::new(BATON);
    fake(run.args(["run", ".claude/plans/billing.yaml"]));
    let run = serve::Guard(run.spawn().expect("baton run"));
    let mut cmd = Command::new(BATON);
    fake(&mut cmd);
    let (server, port) = serve::start(cmd);
    let page = browser.new_page().expect("a page");
    page.set_viewport(1280, 1500, false).expect("viewport");
    page.goto(&format!("http://127.0.0.1:{port}/plans/billing")).expect("load");
    page.wait_for("!!document.querySelector('#running [data-task=\"2.3\"] .activity:not(.muted)') && !document.querySelector('#running [data-task=\"2.3\"] .activity').textContent.startsWith('starting') && !!document.querySelector('#failed [data-task=\"2.2\"]')", Duration::from_secs(60)).expect("2.3 at work, 2.2 failed");
    page.wait_for("document.getElementById('live').className === 'on'", Duration::from_secs(10)).expect("live");
    page.screenshot(to).expect("the screenshot");
    println!("  screenshot of a run in progress: {}", to.display());
    drop(run);
    serve::stop(server);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
