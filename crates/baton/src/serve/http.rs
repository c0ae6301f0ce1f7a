//! The routes, and who may ask: a `Host` this server answers to (against DNS rebinding), and the
//! token when there is one (a header, a cookie, or `?token=` once). The token is never written
//! anywhere: not in a response, not on the terminal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::api::{self, Answer, Refused};
use super::live::Hub;
use super::pages;
use super::{ServeOptions, Site};

/// The cookie that keeps the token after `?token=`.
const COOKIE: &str = "baton_token";

/// Who may ask: the `Host`s accepted (`None`: any) and the token.
struct Gate {
    hosts: Option<Vec<String>>,
    token: Option<String>,
    /// `baton_token_<port>`: two servers on one host keep their cookies apart (a cookie is the
    /// host's, whatever the port).
    cookie: String,
}

/// Serves until Ctrl+C or SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, site: Site, opts: &ServeOptions) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let gate = Arc::new(Gate { hosts: hosts(local), token: opts.token.clone(), cookie: format!("{COOKIE}_{}", local.port()) });
    let site = Arc::new(site);
    let (end_tx, end_rx) = tokio::sync::watch::channel(false);
    let hub = Hub::start(site.clone(), end_rx);
    let app = Router::new()
        .route("/", get(overview_page))
        .route("/plans/{plan}", get(plan_page))
        .route("/plans/{plan}/tasks/{task}", get(task_page))
        .route("/plans/{plan}/tasks/{task}/attempts/{session}/transcript", get(transcript_page))
        .route("/history", get(history_page))
        .route("/assets/app.css", get(|| async { asset("text/css; charset=utf-8", pages::layout::stylesheet()) }))
        .route("/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", pages::layout::APP_JS) }))
        .route("/events", get(move || async move { hub.events() }))
        .route("/api/plans", get(plans))
        .route("/api/plans/{plan}", get(plan))
        .route("/api/plans/{plan}/stop", post(stop))
        .route("/api/plans/{plan}/tasks/{task}", get(task))
        .route("/api/plans/{plan}/tasks/{task}/attempts/{session}/transcript", get(transcript))
        .route("/api/history", get(history))
        .route("/api/cost", get(cost))
        .fallback(|| async { Refused::not_found("no such page: the pages are /, /plans/…, /history; the API is under /api/ (plans, history, cost)").into_response() })
        .with_state(site)
        .layer(axum::middleware::from_fn_with_state(gate, admit))
        .layer(axum::middleware::from_fn(shape_errors));
    accept(listener, app, end_tx).await
}

/// At most this many connections at once (each open page holds one for its event stream); more
/// wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// A client has this long to send a request's headers (a connection that never does is closed,
/// token or not).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// After Ctrl+C or SIGTERM, connections have this long to end before the server exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Accepts connections until Ctrl+C or SIGTERM, each served by hyper with a deadline for its
/// headers; then ends the event streams (`end`), asks every connection to close, and gives
/// them [`SHUTDOWN_GRACE`].
async fn accept(listener: tokio::net::TcpListener, app: Router, end: tokio::sync::watch::Sender<bool>) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    let signal = stopped();
    tokio::pin!(signal);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut signal => break,
        };
        let stream = tokio::select! {
            got = listener.accept() => match got {
                Ok((stream, _)) => stream,
                // Out of descriptors, a connection reset before it was taken: look again soon.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut ending = end.subscribe();
        conns.spawn(async move {
            let _slot = permit;
            let conn = hyper::server::conn::http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = ending.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = end.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
    Ok(())
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Ctrl+C or SIGTERM.
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => drop(t.recv().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The `Host` values a browser sends for this server: for a loopback or a named address, that
/// address (and `localhost`) with the port; `None` (any) when it listens on every address,
/// where a token is required anyway.
fn hosts(local: SocketAddr) -> Option<Vec<String>> {
    let ip = local.ip();
    if ip.is_unspecified() {
        return None;
    }
    let port = local.port();
    let mut names = vec![match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }];
    if ip.is_loopback() {
        names.extend(["localhost".to_string(), "127.0.0.1".to_string(), "[::1]".to_string()]);
    }
    let mut seen = Vec::new();
    names.retain(|n| if seen.contains(n) { false } else { seen.push(n.clone()); true });
    let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
    if port == 80 {
        hosts.extend(names);
    }
    Some(hosts)
}

/// Lets a request through when its `Host` is this server's and it carries the token.
async fn admit(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if let Some(allowed) = &gate.hosts {
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
        if !host.as_deref().is_some_and(|h| allowed.iter().any(|a| a == h)) {
            return Refused { status: StatusCode::MISDIRECTED_REQUEST, message: format!("this server answers to {} only (the Host header names another)", allowed.join(", ")) }.into_response();
        }
    }
    let Some(token) = &gate.token else {
        return next.run(req).await;
    };
    // A token the request carries (header or cookie) lets it in, whatever its address says.
    if carried(req.headers(), &gate.cookie).iter().any(|t| same(t.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    let in_address = query_token(req.uri());
    if in_address.as_deref().is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        // Once: the cookie keeps it, and the address bar and history lose it.
        let cookie = format!("{}={token}; HttpOnly; SameSite=Strict; Path=/", gate.cookie);
        let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, without_token(req.uri()))]).into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    let message = if in_address.is_some() {
        "the token in the address is not this server's (was it started again with another?): open the page once with `?token=<the token baton serve was given>`"
    } else {
        "this server needs its token: open the page once with `?token=<token>` (a cookie keeps it), or send `Authorization: Bearer <token>`"
    };
    let mut res = Refused { status: StatusCode::UNAUTHORIZED, message: message.into() }.into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// Every refusal in one shape: `{"error": …}` under `/api/` (axum's own refusals of a query or
/// a path that cannot be read, and 405, included), a page saying it elsewhere (a person's
/// browser asked).
async fn shape_errors(req: Request, next: Next) -> Response {
    let mut res = refusal_shaped(req, next).await;
    // No other site may frame these pages (a Stop clicked through a transparent frame), run a
    // script in them, or sniff an answer's type.
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

async fn refusal_shaped(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let page = !(path.starts_with("/api/") || path == "/events" || path.starts_with("/assets/"));
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let kind = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if kind.starts_with("application/json") && !page {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let message = if kind.starts_with("application/json") {
        serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["error"].as_str().map(str::to_string)).unwrap_or(text)
    } else if text.trim().is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => "this address does not take that method (GET pages and /api/; POST only …/stop)".to_string(),
            s => s.canonical_reason().unwrap_or("refused").to_string(),
        }
    } else {
        text
    };
    let mut out = if page { Answer::Html(pages::error_page(status, &message)).into_response() } else { Refused { status, message }.into_response() };
    *out.status_mut() = status;
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n == header::WWW_AUTHENTICATE || *n == header::ALLOW) {
        out.headers_mut().insert(name.clone(), value.clone());
    }
    out
}

/// The tokens a request carries: `Authorization: Bearer` (the scheme in any case) and every
/// cookie named `cookie`.
fn carried(headers: &HeaderMap, cookie: &str) -> Vec<String> {
    let mut found: Vec<String> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|h| h.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim().to_string()))
        .collect();
    found.extend(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().strip_prefix(cookie).and_then(|r| r.strip_prefix('=')).map(str::to_string)),
    );
    found
}

/// `?token=` of the address, decoded.
fn query_token(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("token=")).map(api::percent_decode)
}

/// The address without its `token` parameter: where `?token=` sends the browser on.
fn without_token(uri: &Uri) -> String {
    let rest: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("token=")).collect();
    // One leading slash: `//host/` in a Location is another site.
    let path = format!("/{}", uri.path().trim_start_matches('/'));
    if rest.is_empty() {
        path
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An answer computed on a blocking thread (the store and the files are read synchronously).
async fn answer(site: Arc<Site>, f: impl FnOnce(&Site) -> Answer + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(move || f(&site)).await {
        Ok(a) => a.into_response(),
        Err(e) => Refused { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("the answer failed: {e}") }.into_response(),
    }
}

/// `?part=main`: only the page's `<main>` (the script's refresh).
#[derive(Deserialize)]
struct Part {
    part: Option<String>,
}

impl Part {
    fn main(&self) -> bool {
        self.part.as_deref() == Some("main")
    }
}

async fn overview_page(State(site): State<Arc<Site>>, Query(p): Query<Part>) -> Response {
    answer(site, move |s| pages::overview(s, p.main())).await
}

async fn plan_page(State(site): State<Arc<Site>>, Path(plan): Path<String>, Query(p): Query<Part>) -> Response {
    answer(site, move |s| pages::plan(s, &plan, p.main())).await
}

async fn task_page(State(site): State<Arc<Site>>, Path((plan, task)): Path<(String, String)>, Query(p): Query<Part>) -> Response {
    answer(site, move |s| pages::task(s, &plan, &task, p.main())).await
}

async fn transcript_page(State(site): State<Arc<Site>>, Path((plan, task, session)): Path<(String, String, u32)>) -> Response {
    answer(site, move |s| pages::transcript(s, &plan, &task, session)).await
}

#[derive(Deserialize)]
struct HistoryPage {
    plan: Option<String>,
    part: Option<String>,
}

async fn history_page(State(site): State<Arc<Site>>, Query(q): Query<HistoryPage>) -> Response {
    answer(site, move |s| pages::history(s, q.plan.as_deref(), q.part.as_deref() == Some("main"))).await
}

/// A state-changing request must come from this server's own pages: a page of another site
/// can send neither this header (a cross-origin request with it needs a preflight this server
/// never grants) nor an `Origin` of this server.
fn same_site(headers: &HeaderMap) -> Result<(), Refused> {
    if headers.get("x-baton-csrf").is_none() {
        return Err(Refused { status: StatusCode::FORBIDDEN, message: "a stop must come from baton's own page (the X-Baton-CSRF header is missing); from a script, send `X-Baton-CSRF: stop`".into() });
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let bare = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
        if bare.is_empty() || !bare.eq_ignore_ascii_case(host) {
            return Err(Refused { status: StatusCode::FORBIDDEN, message: "a stop must come from baton's own page (the Origin is another site)".into() });
        }
    }
    Ok(())
}

async fn stop(State(site): State<Arc<Site>>, Path(plan): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = same_site(&headers) {
        return r.into_response();
    }
    answer(site, move |s| api::stop(s, &plan)).await
}

async fn plans(State(site): State<Arc<Site>>) -> Response {
    answer(site, api::plans).await
}

async fn plan(State(site): State<Arc<Site>>, Path(plan): Path<String>) -> Response {
    answer(site, move |s| api::plan(s, &plan)).await
}

async fn task(State(site): State<Arc<Site>>, Path((plan, task)): Path<(String, String)>) -> Response {
    answer(site, move |s| api::task(s, &plan, &task)).await
}

async fn transcript(State(site): State<Arc<Site>>, Path((plan, task, session)): Path<(String, String, u32)>) -> Response {
    answer(site, move |s| api::transcript(s, &plan, &task, session)).await
}

#[derive(Deserialize)]
struct HistoryQuery {
    plan: Option<String>,
    limit: Option<usize>,
}

async fn history(State(site): State<Arc<Site>>, Query(q): Query<HistoryQuery>) -> Response {
    answer(site, move |s| api::history(s, q.plan.as_deref(), q.limit)).await
}

#[derive(Deserialize)]
struct CostQuery {
    plan: Option<String>,
    by: Option<crate::report::history::CostBy>,
    since: Option<String>,
}

async fn cost(State(site): State<Arc<Site>>, Query(q): Query<CostQuery>) -> Response {
    answer(site, move |s| api::cost(s, q.plan.as_deref(), q.by, q.since.as_deref())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_server_answers_to_its_own_names_only() {
        let named = hosts("127.0.0.1:8421".parse().unwrap()).unwrap();
        assert!(named.contains(&"127.0.0.1:8421".to_string()));
        assert!(named.contains(&"localhost:8421".to_string()));
        assert!(!named.iter().any(|h| h.contains("evil")));
        assert!(!named.contains(&"localhost:80".to_string()));
        assert_eq!(hosts("192.168.1.5:80".parse().unwrap()).unwrap(), vec!["192.168.1.5:80".to_string(), "192.168.1.5".to_string()]);
        assert_eq!(hosts(("0.0.0.0:8421").parse().unwrap()), None);
    }

    #[test]
    fn the_token_is_read_from_the_header_or_the_cookie_and_left_out_of_the_address() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; baton_token_8421=bad; baton_token_8421=s3cret; baton_token_9=other; c=d"));
        assert_eq!(carried(&h, "baton_token_8421"), vec!["bad".to_string(), "s3cret".to_string()]);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer t0k"));
        assert_eq!(carried(&h, "baton_token_8421")[0], "t0k");
        assert_eq!(without_token(&"//evil.example/?token=z".parse().unwrap()), "/evil.example/");
        let uri: Uri = "/api/plans?x=1&token=a%2Db&y=2".parse().unwrap();
        assert_eq!(query_token(&uri).as_deref(), Some("a-b"));
        assert_eq!(without_token(&uri), "/api/plans?x=1&y=2");
        assert_eq!(without_token(&"/?token=z".parse().unwrap()), "/");
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
