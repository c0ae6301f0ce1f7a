//! The core the three fake API servers share: a scripted HTTP/1.1 server on std threads.
//!
//! [`ScriptedServer`] binds `127.0.0.1:<random port>`, accepts on one thread and serves each
//! connection (`Connection: close`) on a thread of its own, and stops on drop, or by itself
//! after a deadline (a watchdog thread). It holds the script (a queue of turns of the API's
//! own type `T`) and every request received. What a request gets back is the API's business:
//! an [`Answer`] function, given the request already read and parsed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

use crate::RecordedRequest;

/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests larger than this are refused (the CLI's requests are a few hundred KB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Answers one request (body parsed as JSON, `Value::Null` if not JSON) on `out`. It records
/// the request itself ([`Shared::record`] or [`Shared::next_turn`]), so that it decides which
/// requests take a turn.
pub(crate) type Answer<T> = fn(out: &mut TcpStream, shared: &Shared<T>, request: RecordedRequest) -> std::io::Result<()>;

/// A scripted server of turns `T`; stops on drop.
pub(crate) struct ScriptedServer<T> {
    addr: SocketAddr,
    shared: Arc<Shared<T>>,
    threads: Vec<JoinHandle<()>>,
}

/// What the server's threads share.
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when the server stops (wakes stalled streams and the deadline watchdog).
    stopped_cv: Condvar,
    addr: SocketAddr,
    next_id: AtomicU64,
}

struct State<T> {
    script: VecDeque<T>,
    requests: Vec<RecordedRequest>,
    stopped: bool,
}

impl<T: Send + 'static> ScriptedServer<T> {
    /// Starts serving `script` with `answer`; `name` (`fake codex server`) names the server in
    /// panics. The server stops by itself after `deadline`.
    pub(crate) fn start(name: &str, script: impl IntoIterator<Item = T>, deadline: Duration, answer: Answer<T>) -> ScriptedServer<T> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| panic!("bind the {name}: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local address of the {name}: {e}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State { script: script.into_iter().collect(), requests: Vec::new(), stopped: false }),
            stopped_cv: Condvar::new(),
            addr,
            next_id: AtomicU64::new(1),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.is_stopped() {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    // A broken connection is the client's business; the recorded requests tell the test.
                    thread::spawn(move || drop(serve(stream, &shared, answer)));
                }
            })
        };
        let watchdog = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let state = shared.lock();
                let (state, _) = shared.stopped_cv.wait_timeout_while(state, deadline, |s| !s.stopped).unwrap_or_else(|p| p.into_inner());
                drop(state);
                shared.stop();
            })
        };
        ScriptedServer { addr, shared, threads: vec![accept, watchdog] }
    }
}

impl<T> ScriptedServer<T> {
    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends turns to the script.
    pub(crate) fn push(&self, turns: impl IntoIterator<Item = T>) {
        self.shared.lock().script.extend(turns);
    }

    /// Turns not yet served.
    pub(crate) fn turns_left(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Every request received so far, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }
}

impl<T> Drop for ScriptedServer<T> {
    fn drop(&mut self) {
        self.shared.stop();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking connection thread must not take the whole test down with a poison error.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    fn stop(&self) {
        let mut state = self.lock();
        if state.stopped {
            return;
        }
        state.stopped = true;
        drop(state);
        self.stopped_cv.notify_all();
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }

    /// Records a request that takes no turn.
    pub(crate) fn record(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
    }

    /// Records `request` and takes the next turn (`None` when the script is exhausted), at once.
    pub(crate) fn next_turn(&self, request: &RecordedRequest) -> Option<T> {
        let mut state = self.lock();
        state.requests.push(request.clone());
        state.script.pop_front()
    }

    /// Records `request` and takes the turn at the place `choose` picks in the script (`None`:
    /// none for it), at once.
    pub(crate) fn take_turn(&self, request: &RecordedRequest, choose: impl FnOnce(&VecDeque<T>) -> Option<usize>) -> Option<T> {
        let mut state = self.lock();
        state.requests.push(request.clone());
        let at = choose(&state.script)?;
        state.script.remove(at)
    }

    /// 1, 2, 3, … over the server's life, for ids in answers.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Blocks until the server stops: the end of a stalled stream.
    pub(crate) fn wait_until_stopped(&self) {
        let state = self.lock();
        let _unused = self.stopped_cv.wait_while(state, |s| !s.stopped).unwrap_or_else(|p| p.into_inner());
    }
}

fn serve<T>(stream: TcpStream, shared: &Shared<T>, answer: Answer<T>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    if shared.is_stopped() {
        return Ok(());
    }
    let recorded = RecordedRequest {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
    };
    answer(&mut out, shared, recorded)
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request; `None` if the client closed the connection before sending one.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("connection closed inside the headers"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let length: usize = match header("content-length") {
            Some(v) => v.parse().map_err(|_| invalid("bad content-length"))?,
            None => 0,
        };
        if length > MAX_BODY {
            return Err(invalid("request body too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// `/turn` takes a turn and answers it; any other path is only recorded.
    fn answer(out: &mut TcpStream, shared: &Shared<&'static str>, request: RecordedRequest) -> std::io::Result<()> {
        let text = if request.path == "/turn" { shared.next_turn(&request).unwrap_or("exhausted") } else { "side" };
        if request.path != "/turn" {
            shared.record(request);
        }
        write!(out, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}", text.len())
    }

    fn send(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    #[test]
    fn turns_go_to_the_requests_that_take_them_and_every_request_is_recorded() {
        let server = ScriptedServer::start("test server", ["one"], Duration::from_secs(60), answer);
        server.push(["two"]);
        let chunked = "POST /turn HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n";
        assert_eq!(send(server.addr(), chunked), "one");
        assert_eq!(send(server.addr(), "GET /other HTTP/1.1\r\n\r\n"), "side");
        assert_eq!(server.turns_left(), 1);
        assert_eq!(send(server.addr(), "POST /turn HTTP/1.1\r\ncontent-length: 0\r\n\r\n"), "two");
        assert_eq!(send(server.addr(), "POST /turn HTTP/1.1\r\n\r\n"), "exhausted");
        let requests = server.requests();
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/turn", "/other", "/turn", "/turn"]);
        assert_eq!(requests[0].body["a"], 1);
        assert_eq!(requests[1].body, Value::Null);
    }

    #[test]
    fn the_server_stops_by_itself_at_its_deadline() {
        let server = ScriptedServer::start("test server", Vec::<&'static str>::new(), Duration::ZERO, answer);
        let addr = server.addr();
        assert!(crate::wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_err()), "still accepting on {addr}");
    }
}
