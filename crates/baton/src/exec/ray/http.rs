//! Plain HTTP/1.1 to the Ray dashboard (the Jobs REST API and the log stream), on hyper's
//! client connection over tokio: a request is one connection, and a stream is dropped — its
//! connection closed — the moment the follower has what it needs (Ray's log stream never ends
//! on its own).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Connecting must not take longer than this.
const CONNECT: Duration = Duration::from_secs(10);
/// A whole request and its answer (not a stream).
const CALL: Duration = Duration::from_secs(30);
/// The most of an answer that is read (a job's whole log, at its end).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The dashboard's address: `http://host:port[/prefix]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`, for the connection and the `Host` header.
    authority: String,
    /// A path prefix (a proxy's), without the trailing slash.
    prefix: String,
    /// The cluster's token, for a cluster with token authentication (`RAY_AUTH_MODE=token`),
    /// sent as `Authorization: Bearer`; never printed.
    token: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("authority", &self.authority).field("prefix", &self.prefix).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

/// The token Ray's own clients use: `RAY_AUTH_TOKEN`, else the file `RAY_AUTH_TOKEN_PATH`
/// names, else `~/.ray/auth_token` (where `ray start` saves one it made).
pub fn ray_token() -> Option<String> {
    let clean = |t: String| Some(t.trim().to_string()).filter(|t| !t.is_empty());
    if let Some(t) = std::env::var("RAY_AUTH_TOKEN").ok().and_then(clean) {
        return Some(t);
    }
    let path = match std::env::var_os("RAY_AUTH_TOKEN_PATH").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(&std::env::var_os("HOME")?).join(".ray/auth_token"),
    };
    crate::fsx::read_regular_text(&path, 64 * 1024).ok().and_then(clean)
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing answers at the address (refused, unknown host, timed out connecting).
    #[error("cannot connect to {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The connection broke, or the answer was cut short or too slow.
    #[error("{0}")]
    Broken(String),
}

impl Endpoint {
    /// Reads `http://host:port[/prefix]`; the reason when it is not one.
    pub fn parse(address: &str) -> Result<Endpoint, String> {
        let rest = address.trim().strip_prefix("http://").ok_or_else(|| {
            if address.trim().starts_with("https://") {
                "https is not supported; reach the dashboard over http (a port-forward, a private network or a local proxy)".to_string()
            } else {
                "it must start with http://".to_string()
            }
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
            return Err("it must name a host, e.g. http://127.0.0.1:8265".into());
        }
        let authority = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => authority.to_string(),
            Some(_) => return Err("its port is not a number from 1 to 65535".into()),
            None => format!("{authority}:80"),
        };
        Ok(Endpoint { authority, prefix: prefix.to_string(), token: None })
    }

    /// The same address, sending `token` with every request.
    pub fn with_token(self, token: Option<String>) -> Endpoint {
        Endpoint { token, ..self }
    }

    pub fn address(&self) -> String {
        format!("http://{}{}", self.authority, self.prefix)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<hyper::Response<Incoming>, HttpError> {
        let unreachable = |reason: String| HttpError::Unreachable { address: self.address(), reason };
        let host = self.authority.clone();
        let stream = match tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(&self.authority)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {} s", CONNECT.as_secs()))),
        };
        let _ = stream.set_nodelay(true);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| HttpError::Broken(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.prefix)).header(hyper::header::HOST, host);
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| HttpError::Broken(e.to_string()))?;
        send.send_request(req).await.map_err(|e| HttpError::Broken(e.to_string()))
    }

    /// One request, its status and its whole answer.
    pub async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(StatusCode, Vec<u8>), HttpError> {
        let work = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let limited = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER);
            let bytes = limited.collect().await.map_err(|e| HttpError::Broken(format!("the answer broke off: {e}")))?.to_bytes();
            Ok((status, bytes.to_vec()))
        };
        match tokio::time::timeout(CALL, work).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Broken(format!("no complete answer within {} s", CALL.as_secs()))),
        }
    }

    /// A GET whose answer is read as it comes: the status, and the body to read from.
    pub async fn stream(&self, path: &str) -> Result<(StatusCode, Incoming), HttpError> {
        match tokio::time::timeout(CALL, self.send(Method::GET, path, None)).await {
            Ok(r) => r.map(|resp| (resp.status(), resp.into_body())),
            Err(_) => Err(HttpError::Broken(format!("no answer within {} s", CALL.as_secs()))),
        }
    }
}

/// The next piece of a streamed answer: `None` at its end (or when it broke).
pub async fn next_chunk(body: &mut Incoming) -> Option<Bytes> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) if !data.is_empty() => return Some(data),
                _ => continue,
            },
            Err(_) => return None,
        }
    }
}

/// The last line of an error answer (Ray's are Python tracebacks as text), cut for a message.
pub fn last_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    crate::report::safe::cut(line, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_or_refused_with_a_reason() {
        let e = Endpoint::parse("http://127.0.0.1:8265").unwrap();
        assert_eq!(e.address(), "http://127.0.0.1:8265");
        assert_eq!(Endpoint::parse("http://ray-head:8265/").unwrap().address(), "http://ray-head:8265");
        assert_eq!(Endpoint::parse("http://proxy/ray/").unwrap().address(), "http://proxy:80/ray");
        assert!(Endpoint::parse("https://x:1").unwrap_err().contains("https"));
        assert!(Endpoint::parse("127.0.0.1:8265").unwrap_err().contains("http://"));
        assert!(Endpoint::parse("http://").is_err());
        assert!(Endpoint::parse("http://host:port").is_err());
    }

    #[test]
    fn an_error_answer_is_told_by_its_last_line() {
        let tb = b"Traceback (most recent call last):\n  File \"x\"\nValueError: Job with submission_id t1 already exists.\n\n";
        assert_eq!(last_line(tb), "ValueError: Job with submission_id t1 already exists.");
    }
}
