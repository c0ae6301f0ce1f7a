//! End to end: the testkit's [`Browser`] drives a real headless Chromium against a tiny page
//! served here (a button that POSTs, an EventSource that pushes the server's change). Proves
//! the CDP client works with the installed Chromium, so the dashboard's browser tests can
//! trust it. Skips, loudly, when no Chromium is installed; fails when `CI` is set and none is.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use baton_testkit::{find_chromium, process_alive, wait_until, Browser};
use serde_json::json;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>testkit browser</title>
<style>body { font-family: sans-serif; margin: 1em } button { width: 12em; height: 3em }
#hidden { display: none } #cover { position: fixed; left: 0; top: 0; width: 100%; height: 100%; display: none }</style>
</head><body>
<h1 id="title">Browser kit</h1>
<p id="status">idle</p>
<p id="live">connecting</p>
<button id="go">Go</button>
<button id="hidden">Hidden</button>
<div id="cover"></div>
<script>
const events = new EventSource('/events');
events.onmessage = (e) => { document.getElementById('live').textContent = e.data; };
document.getElementById('go').addEventListener('click', async (e) => {
  document.getElementById('status').textContent = 'clicked trusted=' + e.isTrusted;
  const reply = await fetch('/click', {method: 'POST'});
  document.getElementById('status').textContent = 'posted ' + reply.status + ' trusted=' + e.isTrusted;
});
</script>
</body></html>"#;

/// The server's state: how many clicks it has seen. SSE clients wait on the condvar.
type Clicks = Arc<(Mutex<u32>, Condvar)>;

/// Serves [`PAGE`] at `/`, counts `POST /click`, and pushes `clicks: N` to `/events` clients
/// whenever the count changes. Runs until the test process ends.
fn serve() -> (String, Clicks) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let clicks: Clicks = Arc::new((Mutex::new(0), Condvar::new()));
    let state = Arc::clone(&clicks);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let _ = handle(stream, &state);
            });
        }
    });
    (url, clicks)
}

fn handle(stream: TcpStream, clicks: &Clicks) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut parts = request_line.split_whitespace();
        match (parts.next().unwrap_or(""), parts.next().unwrap_or("")) {
            ("GET", "/") => reply(&mut stream, "200 OK", "text/html; charset=utf-8", PAGE)?,
            ("POST", "/click") => {
                let (count, changed) = &**clicks;
                *count.lock().expect("clicks lock") += 1;
                changed.notify_all();
                reply(&mut stream, "200 OK", "text/plain", "ok")?;
            }
            ("GET", "/events") => return stream_events(stream, clicks),
            _ => reply(&mut stream, "404 Not Found", "text/plain", "not found")?,
        }
    }
}

fn reply(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
}

/// An SSE stream: the current count at once, then each change, until the client goes away.
fn stream_events(mut stream: TcpStream, clicks: &Clicks) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\r\n",
    )?;
    let (count, changed) = &**clicks;
    let mut sent = None;
    loop {
        let mut now = count.lock().expect("clicks lock");
        while sent == Some(*now) {
            // Wakes up now and then to notice a closed connection through a failed write.
            now = changed
                .wait_timeout(now, Duration::from_secs(1))
                .expect("clicks lock")
                .0;
            if sent == Some(*now) {
                drop(now);
                stream.write_all(b": keep-alive\n\n")?;
                now = count.lock().expect("clicks lock");
            }
        }
        let value = *now;
        drop(now);
        write!(stream, "data: clicks: {value}\n\n")?;
        stream.flush()?;
        sent = Some(value);
    }
}

/// The browser, or `None` (a loud skip) when no Chromium is installed; under `CI` a missing
/// Chromium fails the test (`.ci/run` installs Debian's `chromium`).
fn browser() -> Option<Browser> {
    if browser_missing() {
        return None;
    }
    Browser::start()
}

/// Whether to skip: no Chromium installed (a loud skip; under `CI`, a failure).
fn browser_missing() -> bool {
    if find_chromium().is_some() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but no Chromium is installed (apt-get install -y chromium)"
    );
    eprintln!("skipped: no Chromium installed (apt-get install -y chromium)");
    true
}

/// Whether any live process is in process group `pgid` (Chromium's helpers included).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the ")" ending the command name: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && process_alive(pid)
        })
}

#[test]
fn drives_a_page_load_click_live_update_screenshot_and_phone_viewport() {
    let test_started = Instant::now();
    let Some(browser) = browser() else { return };
    let pid = browser.pid();
    eprintln!(
        "{} started in {:?} (pid {pid})",
        browser.version(),
        browser.started_in()
    );
    assert!(
        browser.version().starts_with("Chrome/") || browser.version().contains("Chromium"),
        "{browser:?}"
    );
    assert!(group_alive(pid));

    let (url, clicks) = serve();
    {
        let page = browser.new_page().expect("open a tab");
        let loading = Instant::now();
        page.goto(&format!("{url}/")).expect("load the page");
        eprintln!("page loaded in {:?}", loading.elapsed());
        assert_eq!(page.text("#title").unwrap(), "Browser kit");
        assert_eq!(
            page.eval("document.title").unwrap(),
            json!("testkit browser")
        );
        assert_eq!(page.eval("Promise.resolve(6 * 7)").unwrap(), json!(42));
        assert_eq!(page.eval("undefined").unwrap(), json!(null));

        // The SSE stream's first message shows the server's state before any click.
        page.wait_for(
            "document.getElementById('live').textContent === 'clicks: 0'",
            Duration::from_secs(5),
        )
        .expect("the event stream connects");
        assert_eq!(page.text("#status").unwrap(), "idle");

        // A real click: trusted by the page, its fetch reaches the server, and the server's
        // change comes back over SSE without a reload.
        page.eval("window.__marker = 'kept'").unwrap();
        page.click("#go").expect("click the button");
        let took = page
            .wait_for(
                "document.getElementById('live').textContent === 'clicks: 1'",
                Duration::from_secs(5),
            )
            .expect("the server's change arrives over SSE");
        eprintln!("click → SSE change seen in the page after {took:?}");
        page.wait_for(
            "document.getElementById('status').textContent.startsWith('posted')",
            Duration::from_secs(5),
        )
        .expect("the fetch completes");
        assert_eq!(page.text("#status").unwrap(), "posted 200 trusted=true");
        assert_eq!(
            *clicks.0.lock().unwrap(),
            1,
            "the server saw exactly one POST"
        );
        assert_eq!(
            page.eval("window.__marker").unwrap(),
            json!("kept"),
            "the page was not reloaded"
        );

        // Screenshot: a PNG of the 1280×800 window.
        let dir = tempfile::tempdir().unwrap();
        let shot = dir.path().join("page.png");
        page.screenshot(&shot).expect("take a screenshot");
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "not a PNG: {:?}",
            &png[..png.len().min(8)]
        );
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            1280,
            "PNG width"
        );
        if let Some(keep) = std::env::var_os("BATON_KEEP_SCREENSHOT") {
            std::fs::copy(&shot, keep).unwrap();
        }

        // A phone: the layout viewport follows, and nothing scrolls sideways.
        page.set_viewport(390, 844, true).expect("emulate a phone");
        assert_eq!(
            page.eval("[window.innerWidth, window.devicePixelRatio]")
                .unwrap(),
            json!([390, 3])
        );
        assert_eq!(
            page.eval("document.documentElement.scrollWidth <= window.innerWidth")
                .unwrap(),
            json!(true)
        );
        page.screenshot(&shot).expect("take a phone screenshot");
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            390 * 3,
            "phone PNG width"
        );

        // Errors are clear and quick, never hangs.
        let missing = page.text("#nope").unwrap_err().to_string();
        assert!(
            missing.contains("no element matches \"#nope\""),
            "{missing}"
        );
        let hidden = page.click("#hidden").unwrap_err().to_string();
        assert!(hidden.contains("no size"), "{hidden}");
        page.eval("document.getElementById('cover').style.display = 'block'")
            .unwrap();
        let covered = page.click("#go").unwrap_err().to_string();
        assert!(
            covered.contains("covered by <div id=\"cover\""),
            "{covered}"
        );
        let thrown = page.eval("null.x").unwrap_err().to_string();
        assert!(thrown.contains("TypeError"), "{thrown}");
        let never = page
            .wait_for(
                "document.body.dataset.never === 'yes'",
                Duration::from_millis(200),
            )
            .unwrap_err();
        assert!(never.to_string().contains("never held"), "{never}");
        let unknown = page
            .call("Nope.nothing", json!({}))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("Nope.nothing failed"), "{unknown}");
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // now free
        let refused = page
            .goto(&format!("http://{closed}/"))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("ERR_CONNECTION_REFUSED"), "{refused}");

        // Dialogs: answered at once when asked to, so the click that opens one returns.
        page.goto(&format!("{url}/")).expect("reload the page");
        page.answer_dialogs(Some(true));
        page.eval("document.getElementById('go').onclick = () => { document.body.dataset.ok = confirm('Stop?') }").unwrap();
        page.click("#go").expect("click through a confirm dialog");
        page.wait_for(
            "document.body.dataset.ok === 'true'",
            Duration::from_secs(5),
        )
        .expect("the dialog was accepted");
        let dialogs = page.events("Page.javascriptDialogOpening");
        assert_eq!(dialogs.len(), 1, "{dialogs:?}");
        assert_eq!(dialogs[0]["message"], "Stop?");
    }

    drop(browser);
    assert!(
        wait_until(Duration::from_secs(10), || !group_alive(pid)),
        "Chromium's process group {pid} outlived the Browser"
    );
    eprintln!("test took {:?} in all", test_started.elapsed());
}

#[test]
fn pages_of_the_shared_browser_keep_apart_when_driven_at_once() {
    if browser_missing() {
        return;
    }
    let browser = Browser::shared().expect("Chromium was found above");
    eprintln!(
        "shared {} started in {:?} (pid {})",
        browser.version(),
        browser.started_in(),
        browser.pid()
    );
    let html = |name: &str| format!("data:text/html,<title>{name}</title><p id=name>{name}</p>");
    thread::scope(|s| {
        for name in ["left", "right"] {
            let url = html(name);
            s.spawn(move || {
                let page = browser.new_page().expect("open a tab");
                page.goto(&url).expect("load a data URL");
                page.eval(&format!("window.__name = '{name}'")).unwrap();
                for _ in 0..20 {
                    assert_eq!(page.text("#name").unwrap(), name);
                    assert_eq!(page.eval("window.__name").unwrap(), json!(name));
                }
            });
        }
    });
    assert!(
        std::ptr::eq(browser, Browser::shared().unwrap()),
        "one browser per binary"
    );
}
