//! What the `serve_*` benchmarks share: a `baton serve` on a free port, and plain GETs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process ended with SIGTERM when dropped: a benchmark that panics leaves none behind.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill(2) on the child we started and have not reaped.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

/// `baton serve --port 0` started by `cmd` (its folder and environment set); the child and the
/// port it said on its first line.
pub fn start(mut cmd: Command) -> (Guard, u16) {
    let mut server = cmd.args(["serve", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start baton serve");
    let mut first = [0u8; 200];
    let n = server.stdout.as_mut().unwrap().read(&mut first).expect("its first line");
    let line = String::from_utf8_lossy(&first[..n]).into_owned();
    let server = Guard(server);
    let port = line.split("http://127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"));
    (server, port)
}

/// GETs `path`; the length of the answer. Panics unless it is a 200.
pub fn get(port: u16, path: &str) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let head = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {}", String::from_utf8_lossy(&raw[..raw.len().min(2000)]));
    raw.len()
}

/// `VmRSS` and `VmHWM` of the process.
pub fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_else(|| "?".into());
    format!("RSS {:>10}   peak {:>10}", field("VmRSS:"), field("VmHWM:"))
}

/// Ends the server with SIGTERM; panics unless it exits 0.
pub fn stop(mut server: Guard) {
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGTERM) };
    let status = server.0.wait().expect("baton serve ends");
    assert!(status.success(), "baton serve ended with {status}");
}
