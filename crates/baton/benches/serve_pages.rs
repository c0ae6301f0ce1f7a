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

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let mut server = Command::new(BATON).args(["serve", "--port", "0"]).current_dir(repo.path()).env("NO_COLOR", "1").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start baton serve");
    let pid = server.id();
    let mut first = [0u8; 200];
    let n = server.stdout.as_mut().unwrap().read(&mut first).expect("its first line");
    let line = String::from_utf8_lossy(&first[..n]).into_owned();
    let port: u16 = line.split("http://127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"));
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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default();
    println!("  server memory: RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"));
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let _ = server.wait();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// GETs `path`; the length of the answer. Panics unless it is a 200.
fn get(port: u16, path: &str) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let head = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {}", String::from_utf8_lossy(&raw[..raw.len().min(2000)]));
    raw.len()
}
