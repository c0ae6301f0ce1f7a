//! `baton serve`: the live dashboard — the repository's plans, their tasks and transcripts, the
//! run history and its costs, as pages for a browser and JSON for other tools, from a process
//! of its own beside any `baton run`.
//!
//! `http` owns the listening, the routes and who may ask (the `Host` a request names, the
//! token, the Stop's header and origin); `api` answers JSON, by the same functions `baton
//! status --json`, `baton history --json` and `baton cost --json` print with; `pages` renders
//! the HTML; `live` tells open pages what changed; `plans` finds the plans the repository
//! knows. It never writes a plan: Stop writes the stop file as `baton stop` does, and the run
//! history may import a plan's old attempt records, as `baton status` does.

pub mod api;
pub mod html;
mod http;
pub mod live;
pub mod pages;
pub mod plans;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::config::Config;
use crate::exit::Exit;

/// The port `baton serve` listens on unless told.
pub const DEFAULT_PORT: u16 = 8421;

/// What `baton serve` is asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: IpAddr,
    /// 0: a free port the system picks (said on stdout).
    pub port: u16,
    /// Every request must carry it; required for an address other than loopback.
    pub token: Option<String>,
    /// The repository whose plans are served.
    pub root: PathBuf,
    /// Open the dashboard in the default browser once it listens.
    pub open: bool,
}

/// What the handlers share: where the repository is and its settings, read once at the start.
pub struct Site {
    pub root: PathBuf,
    pub config: Config,
    /// `[paths] logs_dir` under the root.
    pub logs_dir: PathBuf,
}

/// Why `baton serve` refuses to start with these options: the message and its help.
pub fn refusal(opts: &ServeOptions) -> Option<(String, String)> {
    match &opts.token {
        Some(t) if t.trim().is_empty() => Some(("--token is empty".into(), "give a long random token, e.g. `--token \"$(openssl rand -hex 16)\"`".into())),
        Some(t) if t.chars().any(|c| !c.is_ascii_graphic() || c == ';' || c == ',' || c == '"' || c == '\\') => {
            Some(("the token has spaces, control characters, characters outside ASCII, or one of `;` `,` `\"` `\\`".into(), "it travels in a header and a cookie: use letters, digits and `-_.~`, e.g. `--token \"$(openssl rand -hex 16)\"`".into()))
        }
        None if !opts.bind.is_loopback() => Some((
            format!("--bind {} is reachable from other machines, and no --token was given", opts.bind),
            format!(
                "anyone who can reach {} could read the plans and transcripts: set a token, `BATON_SERVE_TOKEN=\"$(openssl rand -hex 16)\"` in the environment (or `--token`, which `ps` shows), then open the page once with `?token=<it>` or send `Authorization: Bearer <it>`; or keep the default `--bind 127.0.0.1`",
                opts.bind
            ),
        )),
        _ => None,
    }
}

/// Opens `url` in the default browser (`xdg-open`, `open` on macOS). With a token, the browser
/// is given a file only this user can read that sends it on to `?token=` (the page swaps it
/// for a cookie at once): a token on the opener's command line would show in `ps`. A browser
/// that cannot be opened is only a warning: the address is on the terminal.
fn open_browser(url: &str, token: Option<&str>) {
    // A browser on this machine reaches a server bound to every address through loopback.
    let url = url.replace("http://0.0.0.0:", "http://127.0.0.1:").replace("http://[::]:", "http://[::1]:");
    let mut handoff = None;
    let target = match token {
        Some(t) => {
            let file = std::env::temp_dir().join(format!("baton-serve-{}.html", std::process::id()));
            let page = format!("<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={}\"><title>baton</title>", html::escape(&format!("{url}?token={}", html::path_segment(t))));
            if let Err(e) = write_private(&file, &page) {
                crate::errln!("warning: cannot open a browser: cannot write {}: {e}; open the address above yourself", file.display());
                return;
            }
            handoff = Some(file.clone());
            file.display().to_string()
        }
        None => url,
    };
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = std::process::Command::new(opener)
        .arg(&target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Waited for on a thread of its own: a browser the opener starts may take its time.
        Ok(mut child) => drop(std::thread::Builder::new().name("baton-open".into()).spawn(move || {
            match child.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => crate::errln!("warning: {opener} could not open a browser ({s}); open the address above yourself"),
                Err(e) => crate::errln!("warning: {opener}: {e}; open the address above yourself"),
            }
            if let Some(f) = handoff {
                // Long enough for a browser to have read it.
                std::thread::sleep(std::time::Duration::from_secs(30));
                let _ = std::fs::remove_file(f);
            }
        })),
        Err(e) => {
            crate::errln!("warning: cannot open a browser ({opener}: {e}); open the address above yourself");
            if let Some(f) = handoff {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// This machine's name, as other machines may know it.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')).then_some(name)
}

/// Writes `text` to a new file only this user can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    f.write_all(text.as_bytes())
}

/// `baton serve`: listens until Ctrl+C or SIGTERM (exit 0); exit 2 when it cannot start.
pub fn serve(opts: &ServeOptions) -> Exit {
    if let Some((what, help)) = refusal(opts) {
        crate::errln!("error: {what}\n  help: {help}");
        return Exit::InvalidInput;
    }
    let config = match Config::load(&opts.root) {
        Ok(c) => c,
        Err(e) => {
            crate::errln!("error: {e}");
            return Exit::InvalidInput;
        }
    };
    let logs_dir = opts.root.join(&config.paths.logs_dir);
    let site = Site { root: opts.root.clone(), config, logs_dir };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot start the server's runtime: {e}");
            return Exit::InvalidInput;
        }
    };
    let exit = runtime.block_on(async {
        let addr = SocketAddr::new(opts.bind, opts.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                let help = if e.kind() == std::io::ErrorKind::AddrInUse { format!("another program listens on port {}: pick another with `--port N` (0: any free port)", opts.port) } else { "check --bind (an address of this machine) and --port".to_string() };
                crate::errln!("error: cannot listen on {addr}: {e}\n  help: {help}");
                return Exit::InvalidInput;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        let shown = match local.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}/", local.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}/", local.port()),
        };
        crate::outln!("baton serve: {shown} (plans of {}; Ctrl+C stops)", crate::report::safe::terminal_line(&site.root.display().to_string()));
        let reach = if local.ip().is_unspecified() {
            let name = host_name().unwrap_or_else(|| "<this machine>".into());
            let url = format!("http://{name}:{}/", local.port());
            crate::outln!("from other machines: {url} (or this machine's address)");
            url
        } else {
            shown.clone()
        };
        if opts.token.is_some() {
            crate::outln!("every request needs the token: `Authorization: Bearer <token>`, or open {reach}?token=<token> once (a cookie keeps it)");
        }
        if opts.open {
            open_browser(&shown, opts.token.as_deref());
        }
        match http::serve(listener, site, opts).await {
            Ok(()) => Exit::Completed,
            Err(e) => {
                crate::errln!("error: the server stopped: {e}");
                Exit::InvalidInput
            }
        }
    });
    // An answer still reading a file (a slow disk) does not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    exit
}
