//! The frame every page shares: the head, the top bar, and the live badge; and the small pieces
//! pages are made of (a status badge, a progress bar, a time, money).

use std::fmt::Write;

use crate::report::status::Counts;
use crate::serve::html::escape;

/// The stylesheet and the script, in the binary.
pub const APP_CSS: &str = include_str!("../assets/app.css");
pub const APP_JS: &str = include_str!("../assets/app.js");

/// `/assets/app.css`: the frame's styles and those of the graph, the transcripts and the charts.
pub fn stylesheet() -> &'static str {
    static ALL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ALL.get_or_init(|| [APP_CSS, super::graph::CSS, super::transcript::CSS, super::charts::CSS].join("\n"))
}

/// Which entry of the top bar a page is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Plans,
    History,
}

/// What a page says about itself.
pub struct Frame<'a> {
    pub title: &'a str,
    pub nav: Nav,
    /// The plan path whose changes make the page ask again; `"all"` for every change.
    pub live: &'a str,
}

/// The whole document around a page's `<main>`.
pub fn document(frame: &Frame<'_>, main: &str, extra_css: &str) -> String {
    let here = |n: Nav| if frame.nav == n { " class=\"here\"" } else { "" };
    let mut out = String::with_capacity(main.len() + APP_CSS.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · baton</title><link rel=\"stylesheet\" href=\"/assets/app.css\">{style}</head>\
<body data-live=\"{live}\"><header class=\"top\"><a class=\"brand\" href=\"/\">baton</a><nav><a href=\"/\"{p}>Plans</a><a href=\"/history\"{h}>History &amp; cost</a></nav>\
<span id=\"live\">connecting…</span></header><main data-v=\"{v}\">{main}</main><script src=\"/assets/app.js\" defer></script></body></html>",
        title = escape(frame.title),
        style = if extra_css.is_empty() { String::new() } else { format!("<style>{extra_css}</style>") },
        live = escape(frame.live),
        v = version(main),
        p = here(Nav::Plans),
        h = here(Nav::History),
    );
    out
}

/// `<span class="badge st-failed">failed</span>`.
pub fn status_badge(status: &str) -> String {
    let word = status.replace('_', " ");
    format!("<span class=\"badge st-{}\" data-status=\"{}\">{}</span>", escape(status), escape(status), escape(&word))
}

/// A bar of the plan's progress: done, running, failed, skipped, out of all.
pub fn progress_bar(c: &Counts) -> String {
    if c.total == 0 {
        return String::new();
    }
    let pct = |n: usize| n as f64 * 100.0 / c.total as f64;
    let mut out = String::from("<div class=\"bar\" role=\"img\" aria-label=\"progress\">");
    for (n, class) in [(c.completed + c.verified, "ok"), (c.in_progress, "run"), (c.failed + c.validation_exhausted, "fail"), (c.skipped + c.suspended, "skip")] {
        if n > 0 {
            let _ = write!(out, "<span class=\"{class}\" style=\"width:{:.2}%\"></span>", pct(n));
        }
    }
    out.push_str("</div>");
    out
}

/// A short fingerprint of a page's `<main>` (FNV-1a, 64 bits): the script swaps in a fresh
/// `<main>` only when it differs, so a page where nothing changed is left alone (a selection, a
/// click in progress).
pub fn version(main: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in main.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `$0.0123` (4 decimals below a dollar, 2 above), `~` when estimated.
pub fn money(usd: f64, estimated: bool) -> String {
    let tilde = if estimated { "~" } else { "" };
    if usd.abs() < 1.0 {
        format!("{tilde}${usd:.4}")
    } else {
        format!("{tilde}${usd:.2}")
    }
}

/// A moment: `shown` written, and `data-<kind>` for the script to keep it current (`since`:
/// elapsed, `until`: time left, `at`: time ago; it fills an empty one at once). What is written
/// must not depend on the time the page is made: a page that did not change is then the same
/// text, and the script leaves it in place (see [`version`]).
pub fn moment(at: &str, kind: &str, shown: &str) -> String {
    format!("<time datetime=\"{a}\" data-{kind}=\"{a}\" title=\"{a}\">{}</time>", escape(shown), a = escape(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_escapes_what_it_is_given_and_loads_its_assets() {
        let doc = document(&Frame { title: "<x>", nav: Nav::Plans, live: "a\"b" }, "<p>hi</p>", "");
        assert!(doc.contains("<title>&lt;x&gt; · baton</title>"));
        assert!(doc.contains("data-live=\"a&quot;b\""));
        assert!(doc.contains(&format!("<main data-v=\"{}\"><p>hi</p></main>", version("<p>hi</p>"))));
        assert_ne!(version("<p>hi</p>"), version("<p>ho</p>"));
        assert!(doc.contains("/assets/app.js") && doc.contains("/assets/app.css"));
        assert_eq!(money(0.01234, false), "$0.0123");
        assert_eq!(money(12.5, true), "~$12.50");
        assert!(status_badge("in_progress").contains("st-in_progress") && status_badge("in_progress").contains(">in progress<"));
    }
}
