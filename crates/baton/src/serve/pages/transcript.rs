//! An attempt's transcript as an HTML fragment, for the dashboard's task page: the agent's text,
//! each tool call (its name and main argument; the full input and the result folded away),
//! thinking folded away, the CLI's notices and errors marked, and the session's result (cost,
//! tokens, duration, when the stream has them).
//!
//! The transcript is read by the dialect of the agent that wrote it
//! ([`Dialect::parse_line`]): nothing here knows a CLI's format. What the parser cannot read
//! (a line that is not JSON, a kind baton does not know) is shown raw, folded away. A plain
//! program's output (a command agent: a dialect without result events) is shown as it is. The
//! agent's stderr, given apart ([`with_stderr`]), is shown after it as such.
//!
//! Every string from the transcript goes through [`escape`]. Each part has a `class` (`tx-…`)
//! and a `data-kind`, for the stylesheet ([`CSS`]) and for tests.

use std::fmt::Write;

use serde_json::Value;

use crate::agent::Dialect;
use crate::agent::event::{RateLimitStatus, ResultEvent, StreamEvent};
use crate::report::agent_line::verbose_line;
use crate::report::render::human_secs;
use crate::serve::html::{escape, push_escaped};

/// The most of one block (a tool's result or input, a text, raw lines) that is shown, in bytes
/// of the transcript; the rest is counted ("… 1234 bytes more").
pub const BLOCK_BYTES: usize = 20 * 1024;

/// The most of the agent's text in one block: it is what a reader came for.
const TEXT_BYTES: usize = 64 * 1024;

/// Once the fragment is this long, only the session's results are still shown (the rest of the
/// lines are counted): the input is capped (8 MiB) by the caller, this caps the page.
const PAGE_BYTES: usize = 16 * 1024 * 1024;

/// The stylesheet of the fragment (uses the layout's colour variables).
pub const CSS: &str = r#"
.tx { display: flex; flex-direction: column; gap: .4rem; font-size: .9rem; min-width: 0; }
.tx pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.tx details > summary { cursor: pointer; overflow-wrap: anywhere; }
.tx details > pre, .tx details > dl { margin-top: .3rem; max-height: 32rem; overflow: auto; padding: .4rem; background: var(--bg); border: 1px solid var(--border); border-radius: 4px; }
.tx-init { color: var(--muted); font-size: .8rem; overflow-wrap: anywhere; }
.tx-text { padding: .4rem .6rem; background: var(--panel); border-left: 3px solid var(--accent); border-radius: 4px; }
.tx-text pre { font-family: inherit; font-size: .9rem; }
.tx-thinking { color: var(--muted); padding: 0 .6rem; }
.tx-tool { padding: .3rem .6rem; border: 1px solid var(--border); border-radius: 4px; background: var(--panel); }
.tx-tool-name { font-weight: 600; color: var(--accent); }
.tx-tool-arg { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.tx-tool dt { color: var(--muted); font-size: .8rem; }
.tx-tool dd { margin: 0 0 .4rem 0; }
.tx-result { margin-left: 1rem; padding: 0 .6rem; color: var(--muted); }
.tx-notice { padding: .3rem .6rem; border-left: 3px solid var(--wait); color: var(--fg); overflow-wrap: anywhere; }
.tx-error { border-left: 3px solid var(--fail); color: var(--fail); }
.tx-result.tx-error { color: var(--fail); }
.tx-raw { color: var(--muted); padding: 0 .6rem; }
.tx-final { padding: .4rem .6rem; border: 1px solid var(--ok); border-radius: 4px; }
.tx-final.tx-error { border-color: var(--fail); }
.tx-final-line { font-weight: 600; overflow-wrap: anywhere; }
.tx-stderr { padding: .4rem .6rem; border-left: 3px solid var(--fail); background: var(--panel); }
.tx-cut { color: var(--muted); font-style: italic; }
.tx-plain { padding: .4rem .6rem; background: var(--panel); border-radius: 4px; }
"#;

/// The transcript `bytes` (the agent's saved stdout) as an HTML fragment, read in `dialect`.
pub fn transcript_html(bytes: &[u8], dialect: &dyn Dialect) -> String {
    with_stderr(bytes, None, dialect)
}

/// [`transcript_html`], with what the agent wrote on stderr after it (passed apart: nothing the
/// agent prints on stdout can pass for it).
pub fn with_stderr(bytes: &[u8], stderr: Option<&str>, dialect: &dyn Dialect) -> String {
    let text = String::from_utf8_lossy(bytes);
    let stream: &str = &text;
    let mut page = Page::default();
    page.out.push_str("<div class=\"tx\" data-kind=\"transcript\">\n");
    if dialect.has_result_event() {
        for line in stream.lines() {
            page.line(line, dialect);
        }
        page.flush();
    } else if !stream.trim().is_empty() {
        // A plain program's output: its lines as they are (blank ones too). Its end (its
        // answer, its status) matters most: a long one keeps its beginning and its end.
        page.plain(stream);
    }
    if page.skipped_lines > 0 {
        let _ = writeln!(page.out, "<p class=\"tx-cut\" data-kind=\"cut\">… {} more lines not shown (the page is long enough)</p>", page.skipped_lines);
    }
    if let Some(stderr) = stderr.filter(|s| !s.trim().is_empty()) {
        page.out.push_str("<div class=\"tx-stderr\" data-kind=\"stderr\"><div>stderr</div>");
        page.pre(stderr, BLOCK_BYTES);
        page.out.push_str("</div>\n");
    }
    if stream.trim().is_empty() && stderr.is_none_or(|s| s.trim().is_empty()) {
        page.out.push_str("<p class=\"tx-init\" data-kind=\"empty\">The transcript is empty.</p>\n");
    }
    page.out.push_str("</div>\n");
    page.out
}

/// What runs of lines are being gathered into one block.
#[derive(Default, PartialEq)]
enum Run {
    #[default]
    None,
    /// The agent's text: consecutive chunks are one text (as [`crate::agent::StreamSummary`]
    /// joins them: a CLI that streams its answer in pieces sends them back to back).
    Text,
    /// Lines the parser could not read, or of kinds baton does not know.
    Raw,
}

#[derive(Default)]
struct Page {
    out: String,
    run: Run,
    /// The gathered text or raw lines.
    buf: String,
    /// The kinds of the gathered raw lines, in order, each once.
    raw_kinds: Vec<String>,
    raw_lines: usize,
    /// Bytes of the run past what is shown: counted, not kept.
    dropped: usize,
    skipped_lines: usize,
}

impl Page {
    fn line(&mut self, line: &str, dialect: &dyn Dialect) {
        let events = dialect.parse_line(line);
        if self.out.len() + self.buf.len() > PAGE_BYTES {
            // Past the page's size, only the session's end is worth the room.
            self.flush();
            let mut shown = false;
            for ev in &events {
                if let StreamEvent::Result(r) = ev {
                    self.result(r);
                    shown = true;
                }
            }
            if !shown && !events.is_empty() {
                self.skipped_lines += 1;
            }
            return;
        }
        for ev in events {
            self.event(ev, line);
        }
    }

    fn event(&mut self, ev: StreamEvent, line: &str) {
        match ev {
            StreamEvent::AssistantText { text, synthetic: false } => {
                self.start(Run::Text);
                self.gather(&text, TEXT_BYTES);
            }
            StreamEvent::NotJson { .. } => self.raw(line, "not JSON"),
            StreamEvent::Other { kind } => self.raw(line, &kind),
            ev => {
                self.flush();
                self.single(ev);
            }
        }
    }

    /// One event that stands alone.
    fn single(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Init { session_id, model, cwd, version } => {
                let parts: Vec<String> = [("model", model), ("session", session_id), ("in", cwd), ("version", version)]
                    .into_iter()
                    .filter_map(|(label, value)| value.map(|v| format!("{label} {}", escape(&v))))
                    .collect();
                let _ = writeln!(self.out, "<div class=\"tx-init\" data-kind=\"init\">session started{}{}</div>", if parts.is_empty() { "" } else { " · " }, parts.join(" · "));
            }
            StreamEvent::AssistantText { text, .. } => {
                // The CLI's own words (a limit, an API error, a notice), not the model's.
                self.pre_block("tx-notice", "notice", &text, BLOCK_BYTES);
            }
            StreamEvent::Thinking { text } => match text {
                Some(text) => {
                    self.out.push_str("<details class=\"tx-thinking\" data-kind=\"thinking\"><summary>thinking</summary>");
                    self.pre(&text, BLOCK_BYTES);
                    self.out.push_str("</details>\n");
                }
                None => self.out.push_str("<div class=\"tx-thinking\" data-kind=\"thinking\">thinking…</div>\n"),
            },
            StreamEvent::ToolUse { name, summary, input } => self.tool(&name, summary.as_deref(), &input),
            StreamEvent::ToolResult { is_error, output } => {
                let class = if is_error { "tx-result tx-error" } else { "tx-result" };
                let what = if is_error { "error" } else { "result" };
                match output.filter(|o| !o.trim().is_empty()) {
                    Some(output) => {
                        let lines = output.lines().count();
                        let _ = write!(
                            self.out,
                            "<details class=\"{class}\" data-kind=\"result\"><summary>{what} · {lines} line{} · {} bytes</summary>",
                            if lines == 1 { "" } else { "s" },
                            output.len()
                        );
                        self.pre(&output, BLOCK_BYTES);
                        self.out.push_str("</details>\n");
                    }
                    None => {
                        let _ = writeln!(self.out, "<div class=\"{class}\" data-kind=\"result\">{what} · no output shown</div>");
                    }
                }
            }
            // Worded as the verbose view words them.
            StreamEvent::PermissionDenied(_) => self.notice(&ev, "tx-notice tx-error", "denied"),
            StreamEvent::ApiRetry(_) => self.notice(&ev, "tx-notice", "retry"),
            // "allowed" is the all-clear the CLI sends with ordinary turns.
            StreamEvent::RateLimit(ref limit) if limit.status == RateLimitStatus::Allowed => {}
            StreamEvent::RateLimit(ref limit) => {
                let class = if limit.status == RateLimitStatus::Rejected { "tx-notice tx-error" } else { "tx-notice" };
                self.notice(&ev, class, "rate_limit");
            }
            StreamEvent::Result(r) => self.result(&r),
            // Gathered into runs by `event`.
            StreamEvent::NotJson { .. } | StreamEvent::Other { .. } => {}
        }
    }

    fn notice(&mut self, ev: &StreamEvent, class: &str, kind: &str) {
        if let Some(line) = verbose_line(ev) {
            let _ = writeln!(self.out, "<div class=\"{class}\" data-kind=\"{kind}\">{}</div>", escape(&line));
        }
    }

    fn tool(&mut self, name: &str, summary: Option<&str>, input: &Value) {
        let _ = write!(self.out, "<details class=\"tx-tool\" data-kind=\"tool\" data-tool=\"{}\"><summary><span class=\"tx-tool-name\">{}</span>", escape(name), escape(name));
        if let Some(summary) = summary {
            let _ = write!(self.out, " <span class=\"tx-tool-arg\">{}</span>", escape(summary));
        }
        self.out.push_str("</summary>");
        match input {
            Value::Object(fields) if !fields.is_empty() => {
                self.out.push_str("<dl>");
                let mut room = BLOCK_BYTES;
                for (key, value) in fields {
                    let _ = write!(self.out, "<dt>{}</dt><dd>", escape(key));
                    let shown = match value {
                        Value::String(s) => s.clone(),
                        other => serde_json::to_string_pretty(other).unwrap_or_default(),
                    };
                    self.pre(&shown, room);
                    room = room.saturating_sub(shown.len()).max(1024);
                    self.out.push_str("</dd>");
                }
                self.out.push_str("</dl>");
            }
            Value::Null | Value::Object(_) => {}
            other => self.pre(&serde_json::to_string_pretty(other).unwrap_or_default(), BLOCK_BYTES),
        }
        self.out.push_str("</details>\n");
    }

    fn result(&mut self, r: &ResultEvent) {
        let failed = r.is_failure();
        let mut parts = vec![if failed {
            format!("failed: {}", r.terminal_reason.as_deref().filter(|t| *t != "completed").unwrap_or(r.subtype.as_str()))
        } else {
            "done".to_owned()
        }];
        if let Some(status) = r.api_error_status {
            parts.push(format!("API {status}"));
        }
        if r.num_turns > 0 {
            parts.push(format!("{} turn{}", r.num_turns, if r.num_turns == 1 { "" } else { "s" }));
        }
        if let Some(cost) = r.total_cost_usd.filter(|c| *c > 0.0) {
            parts.push(format!("${cost:.4}"));
        }
        let u = &r.usage;
        if u.input_tokens + u.output_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens > 0 {
            let mut tokens = format!("{} in, {} out", u.input_tokens, u.output_tokens);
            if u.cache_read_input_tokens > 0 {
                let _ = write!(tokens, ", {} cache read", u.cache_read_input_tokens);
            }
            if u.cache_creation_input_tokens > 0 {
                let _ = write!(tokens, ", {} cache written", u.cache_creation_input_tokens);
            }
            parts.push(format!("tokens {tokens}"));
        }
        if let Some(ms) = r.duration_ms {
            parts.push(human_secs(ms as f64 / 1000.0));
        }
        let class = if failed { "tx-final tx-error" } else { "tx-final" };
        let _ = write!(self.out, "<div class=\"{class}\" data-kind=\"final\"><div class=\"tx-final-line\">{}</div>", escape(&parts.join(" · ")));
        for e in &r.errors {
            self.out.push_str("<div class=\"tx-error\">");
            self.pre(e, BLOCK_BYTES);
            self.out.push_str("</div>");
        }
        for d in &r.permission_denials {
            let _ = write!(self.out, "<div class=\"tx-error\">denied: {}</div>", escape(&d.tool_name));
        }
        if let Some(text) = r.result.as_deref().filter(|t| !t.trim().is_empty() && !r.errors.iter().any(|e| e == t)) {
            self.pre(text, TEXT_BYTES);
        }
        self.out.push_str("</div>\n");
    }

    /// Starts gathering a run of `run`, ending any other.
    fn start(&mut self, run: Run) {
        if self.run != run {
            self.flush();
            self.run = run;
        }
    }

    /// Adds a line that the parser could not read, or of a kind baton does not know, to the
    /// raw run.
    fn raw(&mut self, line: &str, kind: &str) {
        self.start(Run::Raw);
        self.raw_lines += 1;
        if !self.raw_kinds.iter().any(|k| k == kind) && self.raw_kinds.len() < 8 {
            self.raw_kinds.push(kind.to_owned());
        }
        self.gather(line, BLOCK_BYTES);
        self.gather("\n", BLOCK_BYTES);
    }

    /// Adds `s` to the run, or past the `max` bytes that will be shown, only counts it.
    fn gather(&mut self, s: &str, max: usize) {
        if self.buf.len() < max {
            self.buf.push_str(s);
        } else {
            self.dropped += s.len();
        }
    }

    /// Writes the gathered run.
    fn flush(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let dropped = std::mem::take(&mut self.dropped);
        match std::mem::take(&mut self.run) {
            Run::None => {}
            Run::Text => {
                if !buf.trim().is_empty() {
                    let _ = write!(self.out, "<div class=\"tx-text\" data-kind=\"text\">");
                    self.pre_counted(&buf, TEXT_BYTES, dropped);
                    self.out.push_str("</div>\n");
                }
            }
            Run::Raw => {
                let kinds = std::mem::take(&mut self.raw_kinds).join(", ");
                let n = std::mem::take(&mut self.raw_lines);
                let _ = write!(
                    self.out,
                    "<details class=\"tx-raw\" data-kind=\"raw\"><summary>{n} line{} not shown as events ({})</summary>",
                    if n == 1 { "" } else { "s" },
                    escape(&kinds)
                );
                self.pre_counted(&buf, BLOCK_BYTES, dropped);
                self.out.push_str("</details>\n");
            }
        }
    }

    /// A plain program's output: the first [`BLOCK_BYTES`] and the last [`TEXT_BYTES`].
    fn plain(&mut self, text: &str) {
        self.out.push_str("<div class=\"tx-plain\" data-kind=\"plain\">");
        if text.len() <= BLOCK_BYTES + TEXT_BYTES {
            self.pre(text, text.len());
        } else {
            let head = floor(text, BLOCK_BYTES);
            let mut tail = text.len() - TEXT_BYTES;
            while !text.is_char_boundary(tail) {
                tail += 1;
            }
            self.pre(&text[..head], head);
            let _ = write!(self.out, "<div class=\"tx-cut\" data-kind=\"cut\">… {} bytes not shown …</div>", tail - head);
            self.pre(&text[tail..], TEXT_BYTES);
        }
        self.out.push_str("</div>\n");
    }

    /// `<div class="CLASS" data-kind="KIND"><pre>TEXT</pre></div>`.
    fn pre_block(&mut self, class: &str, kind: &str, text: &str, max: usize) {
        let _ = write!(self.out, "<div class=\"{class}\" data-kind=\"{kind}\">");
        self.pre(text, max);
        self.out.push_str("</div>\n");
    }

    /// `text` escaped in a `<pre>`, cut after `max` bytes with a count of the rest.
    fn pre(&mut self, text: &str, max: usize) {
        self.pre_counted(text, max, 0);
    }

    /// The same, when `dropped` bytes more were not even kept.
    fn pre_counted(&mut self, text: &str, max: usize, dropped: usize) {
        let end = floor(text, max);
        self.out.push_str("<pre>");
        push_escaped(&mut self.out, &text[..end]);
        self.out.push_str("</pre>");
        let more = text.len() - end + dropped;
        if more > 0 {
            let _ = write!(self.out, "<div class=\"tx-cut\" data-kind=\"cut\">… {more} bytes more</div>");
        }
    }
}

/// The largest char boundary of `s` at or below `max`.
fn floor(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::claude::Claude;
    use crate::agent::codex::Codex;
    use crate::agent::command::Command;
    use crate::agent::gemini::Gemini;
    use serde_json::json;

    const CLAUDE_HAPPY: &str = include_str!("../../../tests/fixtures/agent-transcripts/claude-happy.stream.jsonl");
    const CLAUDE_DENIAL: &str = include_str!("../../../tests/fixtures/agent-transcripts/claude-root-acceptEdits-permission-denial.stream.jsonl");
    const CODEX_HAPPY: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-happy.jsonl");
    const GEMINI_TOOL_ERROR: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-stdin-prompt-tool-error.stream.jsonl");

    /// The parts of `html` with this `data-kind`, each from its opening tag to the next part's
    /// (or the end), trimmed.
    fn parts<'a>(html: &'a str, kind: &str) -> Vec<&'a str> {
        let marker = format!("data-kind=\"{kind}\"");
        // Without the wrapper's end.
        let html = html.strip_suffix("</div>\n").unwrap_or(html);
        html.match_indices(&marker)
            .map(|(at, _)| {
                let start = html[..at].rfind('<').unwrap();
                let after = at + marker.len();
                let end = html[after..].find("data-kind=").map_or(html.len(), |e| html[..after + e].rfind('<').unwrap());
                html[start..end].trim_end()
            })
            .collect()
    }

    fn assistant(content: Value) -> String {
        json!({"type": "assistant", "message": {"model": "claude-x", "content": content}}).to_string()
    }

    #[test]
    fn a_claude_session_shows_its_text_its_tool_calls_folded_and_its_result() {
        let html = transcript_html(CLAUDE_HAPPY.as_bytes(), &Claude);
        let texts = parts(&html, "text");
        assert_eq!(texts.len(), 2, "{html}");
        assert!(texts[0].contains("<pre>I&#39;ll create the file.</pre>"), "{}", texts[0]);
        assert!(texts[1].contains("All done."), "{}", texts[1]);
        let tools = parts(&html, "tool");
        assert_eq!(tools.len(), 2, "{html}");
        assert!(tools[0].starts_with("<details class=\"tx-tool\""), "collapsed: {}", tools[0]);
        assert!(tools[0].contains("<span class=\"tx-tool-name\">Write</span> <span class=\"tx-tool-arg\">/home/dev/project/hello.txt</span></summary>"), "{}", tools[0]);
        assert!(tools[0].contains("<dt>content</dt><dd><pre>hello from fake model\n</pre>"), "the full input: {}", tools[0]);
        assert!(tools[1].contains("data-tool=\"Bash\""), "{}", tools[1]);
        assert!(tools[1].contains("<span class=\"tx-tool-arg\">mkdir -p .claude/plans &amp;&amp; printf"), "the command: {}", tools[1]);
        let results = parts(&html, "result");
        assert_eq!(results.len(), 2, "{html}");
        assert!(results[1].starts_with("<details class=\"tx-result\""), "{}", results[1]);
        assert!(results[1].contains("<summary>result · 1 line · 24 bytes</summary><pre>4547b22 x: add hello.txt</pre>"), "{}", results[1]);
        assert!(!html.contains(" open"), "nothing is unfolded: {html}");
        let final_ = parts(&html, "final");
        assert_eq!(final_.len(), 1, "{html}");
        assert!(final_[0].starts_with("<div class=\"tx-final\""), "{}", final_[0]);
        assert!(final_[0].contains("done · 3 turns · $0.0024 · tokens 300 in, 60 out"), "{}", final_[0]);
        assert!(parts(&html, "init")[0].contains("model claude-opus-5-5"), "{html}");
        // In order: text, tool, result, tool, result, text, final.
        let order: Vec<usize> = ["I&#39;ll create", "tx-tool-name\">Write", "File created", "tx-tool-name\">Bash", "4547b22", "All done.", "tx-final"]
            .iter()
            .map(|s| html.find(s).unwrap_or_else(|| panic!("{s} missing: {html}")))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn markup_from_the_transcript_is_shown_not_run() {
        let transcript = [
            assistant(json!([{"type": "text", "text": "<script>alert('x')</script>"}])),
            assistant(json!([{"type": "tool_use", "id": "t", "name": "<img src=x onerror=y>", "input": {"command\"><b>": "<script>"}}])),
            json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": "</pre><script>"}]}}).to_string(),
            "<script>raw</script>".to_owned(),
            json!({"type": "<script>"}).to_string(),
        ]
        .join("\n");
        let html = transcript_html(transcript.as_bytes(), &Claude);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "{html}");
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;"), "{html}");
        assert_eq!(html.matches("<pre>").count(), html.matches("</pre>").count(), "{html}");
    }

    #[test]
    fn a_line_the_parser_cannot_read_is_shown_raw_and_folded() {
        let mut transcript = b"{\"type\":\"assistant\",\"message\":{\"content\":[\nnot json at all\n".to_vec();
        transcript.extend_from_slice(b"\xff\xfe bytes that are not UTF-8\n");
        transcript.extend_from_slice(assistant(json!([{"type": "text", "text": "after"}])).as_bytes());
        transcript.extend_from_slice(b"\n{\"type\":\"turn.started\"}\n");
        let html = transcript_html(&transcript, &Claude);
        let raw = parts(&html, "raw");
        assert_eq!(raw.len(), 2, "{html}");
        assert!(raw[0].starts_with("<details class=\"tx-raw\""), "{}", raw[0]);
        assert!(raw[0].contains("3 lines not shown as events (not JSON)"), "{}", raw[0]);
        assert!(raw[0].contains("not json at all\n�� bytes that are not UTF-8"), "{}", raw[0]);
        assert!(raw[1].contains("(turn.started)") && raw[1].contains("{&quot;type&quot;:&quot;turn.started&quot;}"), "{}", raw[1]);
        assert!(parts(&html, "text")[0].contains("after"), "{html}");
        // Whatever the bytes, no panic.
        for bytes in [&b""[..], b"\n\n", b"{", b"[]", b"\"x\"", b"{\"type\":\"result\",\"usage\":7}", b"\xe2\x82"] {
            for dialect in [&Claude as &dyn Dialect, &Codex, &Gemini, &Command] {
                let _ = transcript_html(bytes, dialect);
            }
        }
        assert!(transcript_html(b"", &Claude).contains("The transcript is empty."));
    }

    #[test]
    fn a_codex_session_renders() {
        let html = transcript_html(CODEX_HAPPY.as_bytes(), &Codex);
        assert!(parts(&html, "notice")[0].contains("Model metadata for `fake-model` not found"), "the CLI's notice: {html}");
        let tools = parts(&html, "tool");
        assert_eq!(tools.len(), 1, "{html}");
        assert!(tools[0].contains("tx-tool-name\">Bash</span> <span class=\"tx-tool-arg\">printf &#39;hello from fake model\\n&#39; &gt; hello.txt"), "without the shell wrapper: {}", tools[0]);
        assert!(parts(&html, "result")[0].contains("<pre>9480273 x: add hello.txt\n</pre>"), "{html}");
        assert!(parts(&html, "text")[0].contains("<pre>All done.</pre>"), "{html}");
        assert!(parts(&html, "final")[0].contains("done · tokens 200 in, 40 out"), "{html}");

        let mcp = [
            r#"{"type":"item.started","item":{"id":"i","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":"<x>"},"status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"i","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":"<x>"},"result":{"content":[{"type":"text","text":"found"}]},"error":null,"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"r","type":"reasoning","text":"**Planning** the search"}}"#,
        ]
        .join("\n");
        let html = transcript_html(mcp.as_bytes(), &Codex);
        assert!(parts(&html, "tool")[0].contains("data-tool=\"mcp__docs__search\"") && html.contains("<dt>q</dt><dd><pre>&lt;x&gt;</pre>"), "{html}");
        assert!(parts(&html, "result")[0].contains("found"), "{html}");
        assert!(parts(&html, "thinking")[0].contains("<pre>**Planning** the search</pre>"), "{html}");
    }

    #[test]
    fn a_gemini_session_renders_its_streamed_answer_as_one_text() {
        let html = transcript_html(GEMINI_TOOL_ERROR.as_bytes(), &Gemini);
        let errors: Vec<&str> = parts(&html, "result").into_iter().filter(|r| r.contains("tx-error")).collect();
        assert_eq!(errors.len(), 1, "{html}");
        assert!(errors[0].contains("Path not in workspace"), "{}", errors[0]);
        assert!(parts(&html, "tool").iter().any(|t| t.contains("data-tool=\"Write\"")), "{html}");

        let deltas = [
            r#"{"type":"message","role":"assistant","content":"All ","delta":true}"#,
            r#"{"type":"message","role":"assistant","content":"done.","delta":true}"#,
            r#"{"type":"result","status":"success","stats":{"total_tokens":240,"input_tokens":200,"output_tokens":40,"duration_ms":1500,"tool_calls":0}}"#,
        ]
        .join("\n");
        let html = transcript_html(deltas.as_bytes(), &Gemini);
        assert_eq!(parts(&html, "text"), ["<div class=\"tx-text\" data-kind=\"text\"><pre>All done.</pre></div>"], "{html}");
        assert!(parts(&html, "final")[0].contains("done · 1 turn · tokens 200 in, 40 out · 1.5s"), "{html}");
    }

    #[test]
    fn a_command_agents_output_is_shown_as_it_is() {
        let html = transcript_html(b"step 1\n\n  <b>indented</b>\n", &Command);
        let plain = parts(&html, "plain");
        assert_eq!(plain.len(), 1, "{html}");
        assert!(plain[0].starts_with("<div class=\"tx-plain\" data-kind=\"plain\"><pre>step 1\n\n  &lt;b&gt;indented&lt;/b&gt;\n</pre></div>"), "one block, blank lines kept: {html}");
        assert!(parts(&html, "text").is_empty() && parts(&html, "raw").is_empty(), "{html}");
        // A long one keeps its beginning and its end.
        let long = format!("first line\n{}last line\n", "x".repeat(200 * 1024));
        let html = transcript_html(long.as_bytes(), &Command);
        assert!(html.contains("first line") && html.contains("last line") && html.contains(" bytes not shown …"), "{}", html.len());
        assert!(html.len() < 100 * 1024, "{}", html.len());
    }

    #[test]
    fn a_result_in_blocks_shows_their_text() {
        let result = json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "is_error": true, "content": [
            {"type": "text", "text": "line one"}, {"type": "image", "source": {}}, {"type": "text", "text": "line <two>"}
        ]}]}});
        let html = transcript_html(result.to_string().as_bytes(), &Claude);
        let r = parts(&html, "result");
        assert!(r[0].starts_with("<details class=\"tx-result tx-error\"") && r[0].contains("<summary>error · 3 lines"), "{html}");
        assert!(r[0].contains("<pre>line one\n[image]\nline &lt;two&gt;</pre>"), "{html}");
        let empty = json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}]}});
        let html = transcript_html(empty.to_string().as_bytes(), &Claude);
        assert_eq!(parts(&html, "result"), ["<div class=\"tx-result\" data-kind=\"result\">result · no output shown</div>"], "{html}");
    }

    #[test]
    fn thinking_denials_errors_and_stderr_are_told_apart() {
        let thinking = assistant(json!([{"type": "thinking", "thinking": "Maybe <x>.", "signature": "s"}, {"type": "redacted_thinking", "data": "z"}]));
        let html = transcript_html(thinking.as_bytes(), &Claude);
        let t = parts(&html, "thinking");
        assert!(t[0].starts_with("<details class=\"tx-thinking\"") && t[0].contains("<pre>Maybe &lt;x&gt;.</pre>"), "{html}");
        assert_eq!(t.len(), 2, "{html}");

        let html = transcript_html(CLAUDE_DENIAL.as_bytes(), &Claude);
        assert!(parts(&html, "denied")[0].contains("tx-error"), "{html}");
        assert!(parts(&html, "result").iter().any(|r| r.contains("tx-error")), "{html}");
        assert!(parts(&html, "final")[0].contains("denied: "), "{html}");

        let failed = r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"terminal_reason":"api_error","api_error_status":429,"result":"You've hit your limit","total_cost_usd":0}"#;
        let html = with_stderr(format!("{failed}\n").as_bytes(), Some("warning: <disk> full\n"), &Claude);
        let final_ = parts(&html, "final");
        assert!(final_[0].starts_with("<div class=\"tx-final tx-error\"") && final_[0].contains("failed: api_error · API 429"), "{html}");
        assert!(html.contains("You&#39;ve hit your limit"), "{html}");
        assert!(parts(&html, "stderr")[0].contains("<pre>warning: &lt;disk&gt; full\n</pre>"), "{html}");
        assert!(parts(&html, "raw").is_empty(), "{html}");
        // A line of stdout that looks like a separator is the agent's, not a stderr.
        let html = transcript_html(format!("{failed}\n--- stderr ---\nnot stderr\n").as_bytes(), &Claude);
        assert!(parts(&html, "stderr").is_empty(), "{html}");
    }

    #[test]
    fn long_output_is_cut_and_the_page_stays_proportional() {
        let big = "y".repeat(300 * 1024);
        let result = json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": big}]}}).to_string();
        let html = transcript_html(result.as_bytes(), &Claude);
        assert!(html.contains(&format!("… {} bytes more", big.len() - BLOCK_BYTES)), "{html}");
        assert!(html.len() < BLOCK_BYTES + 1024, "{}", html.len());

        // 8 MiB of tool results, of garbage, of text: the page is bounded by the input.
        let tool = assistant(json!([{"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "\"".repeat(1000)}}]));
        for line in [result.as_str(), tool.as_str(), "\"<>&'\"<>&'\"<>&'", r#"{"type":"stream_event"}"#] {
            let input = format!("{line}\n").repeat(8 * 1024 * 1024 / (line.len() + 1));
            let html = transcript_html(input.as_bytes(), &Claude);
            assert!(html.len() <= PAGE_BYTES + 256 * 1024, "{} bytes of page for {} of input", html.len(), input.len());
        }
        let text = assistant(json!([{"type": "text", "text": "<".repeat(100_000)}]));
        let html = transcript_html(format!("{text}\n").repeat(80).as_bytes(), &Claude);
        assert!(html.len() < 6 * TEXT_BYTES + 1024, "one text block, cut: {}", html.len());
        assert!(html.contains(&format!("… {} bytes more", 8_000_000 - TEXT_BYTES)), "{}", &html[html.len() - 300..]);
    }
}
