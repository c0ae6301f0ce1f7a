//! A headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's browser
//! tests.
//!
//! The transport is `--remote-debugging-pipe`: Chromium reads CDP messages on fd 3 and writes
//! them on fd 4, each a JSON object ended by a NUL byte. No port, no WebSocket, and when the
//! test process dies the pipe closes and Chromium exits by itself. One reader thread splits the
//! replies (matched by `id`) from the events (kept in order); every call waits for its reply
//! with a deadline and fails with an error that names the method, never hangs.
//!
//! Chromium costs ~200 ms to start and ~380 MB: share one [`Browser`] per test binary and open a
//! [`Page`] per test. See `docs/research/dashboard.md` for the flags and what was measured.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::claude_cli::is_executable;
use crate::process::kill_process_group;

/// How long one protocol call may take before it fails. Generous: the machine is shared.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Chromium may take to start and answer `Browser.getVersion`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a page may take to fire its load event after `Page.navigate`.
const LOAD_TIMEOUT: Duration = Duration::from_secs(15);

/// Where Debian's `chromium` package puts the real binary (`/usr/bin/chromium` is a shell
/// wrapper that adds flags and noise).
const DEBIAN_CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// Tried on `PATH` when [`DEBIAN_CHROMIUM`] is absent.
const PATH_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Flags for a quiet, self-contained headless browser (see the research notes, §1).
const FLAGS: [&str; 15] = [
    "--headless",
    "--no-sandbox", // required as root
    "--disable-gpu",
    "--disable-dev-shm-usage", // a small /dev/shm in containers crashes renderers
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--mute-audio",
    "--window-size=1280,800",
    "--remote-debugging-pipe",
    "about:blank",
];

/// What went wrong talking to the browser. The message says which call and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserError(String);

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrowserError {}

fn err(message: impl Into<String>) -> BrowserError {
    BrowserError(message.into())
}

/// The Chromium binary to drive: Debian's real binary, else the first of `chromium`,
/// `chromium-browser`, `google-chrome` on `PATH`. `None` means browser tests should skip
/// (or fail under `CI`).
pub fn find_chromium() -> Option<PathBuf> {
    let debian = Path::new(DEBIAN_CHROMIUM);
    if is_executable(debian) {
        return Some(debian.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| PATH_NAMES.map(|name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
}

/// What the reader thread has seen.
#[derive(Default)]
struct Inbox {
    replies: HashMap<u64, Value>,
    /// Every event, in arrival order (tests are short; nothing is dropped).
    events: Vec<Value>,
    /// Why the pipe from the browser ended, once it has.
    closed: Option<String>,
}

/// The connection, shared by the [`Browser`], its pages and the reader thread.
struct Conn {
    writer: Mutex<File>,
    inbox: Mutex<Inbox>,
    arrived: Condvar,
    next_id: AtomicU64,
    /// sessionId → accept (true) or dismiss (false) JavaScript dialogs automatically.
    dialogs: Mutex<HashMap<String, bool>>,
    stderr_path: PathBuf,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not turn every later call into a poison panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Conn {
    fn send(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<u64, BrowserError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        lock(&self.writer).write_all(&bytes).map_err(|e| {
            err(format!(
                "{method}: cannot write to the browser's pipe: {e}{}",
                self.stderr_tail()
            ))
        })?;
        Ok(id)
    }

    /// Sends `method` and waits up to `timeout` for its reply's `result`.
    fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BrowserError> {
        let id = self.send(session, method, params)?;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock(&self.inbox);
        loop {
            if let Some(reply) = inbox.replies.remove(&id) {
                if let Some(error) = reply.get("error") {
                    return Err(err(format!("{method} failed: {error}")));
                }
                return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
            }
            if let Some(why) = &inbox.closed {
                return Err(err(format!(
                    "{method}: the browser went away ({why}){}",
                    self.stderr_tail()
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(err(format!(
                    "{method}: no reply within {timeout:?} (a JavaScript dialog left open blocks the page: see Page::answer_dialogs)"
                )));
            }
            inbox = self
                .arrived
                .wait_timeout(inbox, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits for an event named `method` for `session`, among those that arrived at index
    /// `from` or later.
    fn wait_event(
        &self,
        session: &str,
        method: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + timeout;
        let mut inbox = lock(&self.inbox);
        loop {
            let found = inbox
                .events
                .iter()
                .skip(from)
                .find(|e| e["method"] == method && e["sessionId"] == session);
            if let Some(event) = found {
                return Ok(event.clone());
            }
            if let Some(why) = &inbox.closed {
                return Err(err(format!(
                    "waiting for {method}: the browser went away ({why}){}",
                    self.stderr_tail()
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(err(format!("no {method} event within {timeout:?}")));
            }
            inbox = self
                .arrived
                .wait_timeout(inbox, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn event_count(&self) -> usize {
        lock(&self.inbox).events.len()
    }

    /// The end of Chromium's stderr, for errors about a browser that died.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!(
                "\nchromium stderr ({}):\n{tail}",
                self.stderr_path.display()
            )
        }
    }
}

/// Splits the browser's output on NUL bytes until the pipe ends.
fn read_loop(conn: &Conn, mut from_browser: File) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let why = loop {
        match from_browser.read(&mut chunk) {
            Ok(0) => break "its pipe closed".to_string(),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break format!("reading its pipe failed: {e}"),
        }
        while let Some(end) = pending.iter().position(|&b| b == 0) {
            let message: Vec<u8> = pending.drain(..=end).collect();
            let Ok(value) = serde_json::from_slice::<Value>(&message[..end]) else {
                continue; // not JSON: nothing a test could use
            };
            if value["method"] == "Page.javascriptDialogOpening" {
                answer_dialog(conn, &value);
            }
            let mut inbox = lock(&conn.inbox);
            match value.get("id").and_then(Value::as_u64) {
                Some(id) => {
                    inbox.replies.insert(id, value);
                }
                None => inbox.events.push(value),
            }
            drop(inbox);
            conn.arrived.notify_all();
        }
    };
    lock(&conn.inbox).closed = Some(why);
    conn.arrived.notify_all();
}

/// Answers a dialog right away when its page asked for it: the call that opened the dialog
/// (a click, an evaluate) gets no reply until the dialog is closed.
fn answer_dialog(conn: &Conn, event: &Value) {
    let Some(session) = event["sessionId"].as_str() else {
        return;
    };
    let Some(accept) = lock(&conn.dialogs).get(session).copied() else {
        return;
    };
    // Not waiting for the reply: this is the reader thread.
    let _ = conn.send(
        Some(session),
        "Page.handleJavaScriptDialog",
        json!({"accept": accept}),
    );
}

/// A headless Chromium in a process group of its own, with a fresh profile. Dropping it kills
/// the group.
pub struct Browser {
    conn: Arc<Conn>,
    child: Mutex<Child>,
    pid: u32,
    version: String,
    started_in: Duration,
    /// Holds the profile (`profile/`) and Chromium's stderr (`stderr.log`).
    _dir: tempfile::TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.pid)
            .field("version", &self.version)
            .finish()
    }
}

/// Creates a pipe whose two ends are close-on-exec and numbered 10 or above, so that `dup2` onto
/// fds 3 and 4 in the child never meets one of them (and always clears close-on-exec).
fn high_pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY (all three blocks): fds holds two open descriptors that this function owns.
    let high = fds.map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) });
    let error = std::io::Error::last_os_error();
    for fd in fds {
        unsafe { libc::close(fd) };
    }
    if high.iter().any(|&fd| fd < 0) {
        for fd in high.into_iter().filter(|&fd| fd >= 0) {
            unsafe { libc::close(fd) };
        }
        return Err(error);
    }
    Ok((high[0], high[1]))
}

impl Browser {
    /// Starts Chromium ([`find_chromium`]) and waits until it answers. `None` when no Chromium
    /// is installed; panics (with Chromium's stderr) when one is installed but will not start.
    pub fn start() -> Option<Browser> {
        let binary = find_chromium()?;
        Some(
            Browser::start_binary(&binary)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display())),
        )
    }

    /// One browser for the whole test binary, started on first use (~0.3 s, ~380 MB), for
    /// tests that each open their own [`Page`]. `None` when no Chromium is installed. Never
    /// dropped: when the test binary exits, the pipe closes and Chromium exits by itself.
    pub fn shared() -> Option<&'static Browser> {
        static SHARED: OnceLock<Option<Browser>> = OnceLock::new();
        SHARED.get_or_init(Browser::start).as_ref()
    }

    /// Starts the Chromium at `binary`.
    pub fn start_binary(binary: &Path) -> Result<Browser, BrowserError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("baton-chromium-")
            .tempdir()
            .map_err(|e| err(format!("cannot create a temporary profile folder: {e}")))?;
        let profile = dir.path().join("profile");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path)
            .map_err(|e| err(format!("cannot create {}: {e}", stderr_path.display())))?;

        // to_browser: we write, the child reads it as fd 3; from_browser: the child writes fd 4.
        let pipe_error =
            |e: std::io::Error| err(format!("cannot create a pipe for the browser: {e}"));
        let (child_in, to_browser) = high_pipe().map_err(pipe_error)?;
        // SAFETY (both): the descriptors were just created by high_pipe and are owned here; the
        // File closes them on drop (on every error path too).
        let (child_in, to_browser) =
            unsafe { (File::from_raw_fd(child_in), File::from_raw_fd(to_browser)) };
        let (from_browser, child_out) = high_pipe().map_err(pipe_error)?;
        let (from_browser, child_out) = unsafe {
            (
                File::from_raw_fd(from_browser),
                File::from_raw_fd(child_out),
            )
        };

        let mut cmd = Command::new(binary);
        cmd.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let (in_fd, out_fd) = (
            std::os::fd::AsRawFd::as_raw_fd(&child_in),
            std::os::fd::AsRawFd::as_raw_fd(&child_out),
        );
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(in_fd, 3) < 0 || libc::dup2(out_fd, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot run {}: {e}", binary.display())))?;
        // The child has its copies; ours must close, or EOF would never reach the reader.
        drop(child_in);
        drop(child_out);
        let pid = child.id();

        let conn = Arc::new(Conn {
            writer: Mutex::new(to_browser),
            inbox: Mutex::new(Inbox::default()),
            arrived: Condvar::new(),
            next_id: AtomicU64::new(1),
            dialogs: Mutex::new(HashMap::new()),
            stderr_path,
        });
        let reader_conn = Arc::clone(&conn);
        thread::Builder::new()
            .name("chromium-cdp".into())
            .spawn(move || read_loop(&reader_conn, from_browser))
            .map_err(|e| err(format!("cannot start the CDP reader thread: {e}")))?;

        let mut browser = Browser {
            conn,
            child: Mutex::new(child),
            pid,
            version: String::new(),
            started_in: Duration::ZERO,
            _dir: dir,
        };
        let version = browser
            .conn
            .call(None, "Browser.getVersion", json!({}), START_TIMEOUT)?;
        browser.version = version["product"].as_str().unwrap_or("unknown").to_string();
        browser.started_in = started.elapsed();
        Ok(browser)
    }

    /// Chromium's main process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What `Browser.getVersion` said, e.g. `Chrome/156.0.8078.114`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// From spawning Chromium to its first reply.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Opens a new tab on `about:blank`.
    pub fn new_page(&self) -> Result<Page<'_>, BrowserError> {
        let target = self.conn.call(
            None,
            "Target.createTarget",
            json!({"url": "about:blank"}),
            CALL_TIMEOUT,
        )?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| err(format!("Target.createTarget: no targetId in {target}")))?;
        let attached = self.conn.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
            CALL_TIMEOUT,
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| err(format!("Target.attachToTarget: no sessionId in {attached}")))?;
        let page = Page {
            browser: self,
            target_id: target_id.to_string(),
            session: session.to_string(),
        };
        page.call("Page.enable", json!({}))?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_process_group(self.pid, libc::SIGKILL);
        let _ = lock(&self.child).wait();
        // The reader thread ends on its own at EOF; it is not joined, so that a stray process
        // holding the pipe cannot hang the test.
    }
}

/// One tab, attached with its own CDP session. Closed on drop.
pub struct Page<'b> {
    browser: &'b Browser,
    target_id: String,
    session: String,
}

impl fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("target_id", &self.target_id)
            .finish()
    }
}

impl Page<'_> {
    /// Any CDP method of this page's session, e.g. `("DOM.getDocument", json!({}))`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.browser
            .conn
            .call(Some(&self.session), method, params, CALL_TIMEOUT)
    }

    /// Loads `url` and waits for its load event.
    pub fn goto(&self, url: &str) -> Result<(), BrowserError> {
        let from = self.browser.conn.event_count();
        let navigated = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            return Err(err(format!("cannot load {url}: {error}")));
        }
        self.browser
            .conn
            .wait_event(&self.session, "Page.loadEventFired", from, LOAD_TIMEOUT)
            .map(drop)
            .map_err(|e| err(format!("loading {url}: {e}")))
    }

    /// Evaluates `js` in the page (awaiting it when it is a promise) and returns its value as
    /// JSON (`null` for `undefined`). A thrown exception is an error with its message.
    pub fn eval(&self, js: &str) -> Result<Value, BrowserError> {
        let reply = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
        )?;
        if let Some(details) = reply.get("exceptionDetails") {
            let message = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("?");
            return Err(err(format!(
                "JavaScript threw: {message}\n  evaluating: {js}"
            )));
        }
        Ok(reply["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// The text a person sees in the first element matching the CSS `selector` (`innerText`).
    pub fn text(&self, selector: &str) -> Result<String, BrowserError> {
        let sel = json!(selector);
        let value = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); return e && e.innerText; }})()"
        ))?;
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| err(format!("no element matches {selector:?}")))
    }

    /// Clicks the centre of the first element matching `selector` with real mouse events
    /// (`isTrusted` in the page), after scrolling it into view. Fails when the element is
    /// missing, has no size, or is covered by another element at that point.
    pub fn click(&self, selector: &str) -> Result<(), BrowserError> {
        let sel = json!(selector);
        let js = format!(
            "(() => {{
                const e = document.querySelector({sel});
                if (!e) return {{error: 'no element matches'}};
                e.scrollIntoView({{block: 'center', inline: 'center'}});
                const r = e.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return {{error: 'the element has no size (hidden?)'}};
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                if (!hit || !(e === hit || e.contains(hit)))
                    return {{error: 'the element is covered by ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing (off screen?)')}};
                return {{x, y}};
            }})()"
        );
        let at = self.eval(&js)?;
        if let Some(error) = at["error"].as_str() {
            return Err(err(format!("cannot click {selector:?}: {error}")));
        }
        let (x, y) = (at["x"].clone(), at["y"].clone());
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        // `buttons`: the buttons held after the event (pressed: the left one; released: none).
        for (kind, buttons) in [("mousePressed", 1), ("mouseReleased", 0)] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// Waits until the JavaScript expression `condition` is truthy in the page, for at most
    /// `timeout`. The wait runs in the page (re-checked on every DOM change and every 20 ms),
    /// so the returned time is what the page took, free of driver latency. An exception in
    /// `condition` counts as "not yet"; the last one is in the timeout error.
    pub fn wait_for(&self, condition: &str, timeout: Duration) -> Result<Duration, BrowserError> {
        // The script for `ms` milliseconds more.
        let script = |ms: u128| format!(
            "new Promise((resolve) => {{
                const t0 = performance.now();
                let last = null, timer = null, poll = null, observer = null;
                const check = () => {{
                    try {{ if ({condition}) return true; }} catch (e) {{ last = String(e); }}
                    return false;
                }};
                const finish = (value) => {{
                    if (observer) observer.disconnect();
                    clearTimeout(timer); clearInterval(poll);
                    resolve(value);
                }};
                if (check()) return resolve({{ms: 0}});
                const tick = () => {{ if (check()) finish({{ms: performance.now() - t0}}); }};
                observer = new MutationObserver(tick);
                observer.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
                poll = setInterval(tick, 20);
                timer = setTimeout(() => finish({{timeout: true, last}}), {ms});
            }})"
        );
        // The page resolves at `timeout`; the driver gives it a margin beyond that. A document
        // that navigates away meanwhile (a clicked link) ends the evaluation: the wait goes on
        // in the next document, within the same deadline.
        let deadline = std::time::Instant::now() + timeout;
        let reply = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.browser.conn.call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({"expression": script(left.as_millis()), "returnByValue": true, "awaitPromise": true}),
                left + CALL_TIMEOUT,
            ) {
                Err(e) if (e.0.contains("navigated or closed") || e.0.contains("context")) && !left.is_zero() => {
                    // The next document needs a moment to exist; the deadline bounds the tries.
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(err(format!(
                "wait_for({condition}): the condition does not compile: {details}"
            )));
        }
        let value = &reply["result"]["value"];
        if let Some(ms) = value["ms"].as_f64() {
            return Ok(Duration::from_secs_f64(ms / 1000.0));
        }
        let last = value["last"]
            .as_str()
            .map(|e| format!(" (last exception: {e})"))
            .unwrap_or_default();
        Err(err(format!(
            "waited {timeout:?} for {condition}, but it never held{last}"
        )))
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| err("Page.captureScreenshot returned no data"))?;
        let png = decode_base64(data)
            .ok_or_else(|| err("Page.captureScreenshot returned invalid base64"))?;
        std::fs::write(path, png).map_err(|e| err(format!("cannot write {}: {e}", path.display())))
    }

    /// Emulates a screen of `width` × `height` CSS pixels; `mobile` also sets a phone's device
    /// scale factor (3) and mobile layout rules (the meta viewport tag is honoured).
    pub fn set_viewport(&self, width: u32, height: u32, mobile: bool) -> Result<(), BrowserError> {
        let scale = if mobile { 3 } else { 1 };
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}),
        )
        .map(drop)
    }

    /// From now on, answer every `alert`/`confirm`/`prompt` of this page at once: accept
    /// (`Some(true)`), dismiss (`Some(false)`), or leave it open (`None`, the default, which
    /// blocks the page until the call that opened it times out). The dialogs seen are in
    /// [`Page::events`]`("Page.javascriptDialogOpening")`.
    pub fn answer_dialogs(&self, accept: Option<bool>) {
        let mut dialogs = lock(&self.browser.conn.dialogs);
        match accept {
            Some(accept) => dialogs.insert(self.session.clone(), accept),
            None => dialogs.remove(&self.session),
        };
    }

    /// Every event named `method` this page has received so far (`params` of each).
    pub fn events(&self, method: &str) -> Vec<Value> {
        lock(&self.browser.conn.inbox)
            .events
            .iter()
            .filter(|e| e["method"] == method && e["sessionId"] == self.session.as_str())
            .map(|e| e["params"].clone())
            .collect()
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        lock(&self.browser.conn.dialogs).remove(&self.session);
        let _ = self.browser.conn.call(
            None,
            "Target.closeTarget",
            json!({"targetId": self.target_id}),
            CALL_TIMEOUT,
        );
    }
}

/// Standard base64 (with or without padding); `None` on a character outside the alphabet.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_padded_and_unpadded_text() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_base64(""), Some(vec![]));
        assert_eq!(decode_base64("a*b"), None);
    }

    #[test]
    fn a_browser_can_be_shared_by_the_tests_of_a_binary() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Browser>(); // e.g. in a `static OnceLock<Option<Browser>>`
    }

    #[test]
    fn pipe_ends_are_numbered_above_the_child_fds() {
        let (read, write) = high_pipe().unwrap();
        assert!(read >= 10 && write >= 10);
        // SAFETY: both were just opened by high_pipe and are owned here.
        unsafe { drop((File::from_raw_fd(read), File::from_raw_fd(write))) };
    }
}
