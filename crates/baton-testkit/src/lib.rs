//! Test-only helpers for baton.
//!
//! - [`TempRepo`]: a throw-away git repository with a local identity and one commit.
//! - `fake-claude` (a binary of this crate, found with [`fake_claude_bin`]): a scripted stand-in
//!   for the Claude Code CLI that speaks the real stream-json dialect.
//! - [`FakeModelServer`]: a scripted Anthropic Messages API server, to drive the *real* Claude
//!   Code CLI end to end ([`claude_env`], [`find_real_claude`]).
//! - [`FakeCodexServer`]: a scripted OpenAI Responses API server, to drive the *real* Codex CLI
//!   end to end ([`codex_env`], [`find_real_codex`]).
//! - [`FakeGeminiServer`]: a scripted Gemini API server, to drive the *real* Gemini CLI end
//!   to end ([`gemini_env`], [`find_real_gemini`]).
//! - [`Browser`]: a headless Chromium driven over CDP ([`Page`]: load, read, click, wait,
//!   screenshot, phone viewport), for the dashboard's browser tests.
//! - [`RayHead`]: a local Ray head node shared by the tests of one process ([`RayHead::shared`]),
//!   ended with it even by `kill -9`; Jobs REST API helpers and [`RayHead::kill_job_driver`]
//!   ([`find_ray`]).
//! - [`wait_until`], [`process_alive`], [`run_with_deadline`]: waiting on conditions and
//!   processes with a deadline, never with a fixed sleep.
//!
//! Nothing here is used by baton itself; panics are acceptable because every caller is a test.

mod browser;
mod claude_cli;
mod codex_server;
mod gemini_server;
mod model_server;
mod process;
mod ray;
mod repo;
mod scripted;

pub use browser::{find_chromium, Browser, BrowserError, Page};
pub use codex_server::{codex_env, find_real_codex, CodexTurn, FakeCodexServer, CODEX_INPUT_TOKENS, CODEX_OUTPUT_TOKENS};
pub use claude_cli::{claude_env, fake_claude_bin, find_real_claude, workspace_root};
pub use gemini_server::{find_real_gemini, gemini_env, gemini_user_text, FakeGeminiServer, GeminiTurn};
pub use model_server::{Block, FakeModelServer, RecordedRequest, Turn};
pub use process::{kill_process_group, process_alive, run_with_deadline, wait_until, RunOutput};
pub use ray::{find_ray, RayHead, SHARED_ACCOUNT_A, SHARED_NUM_CPUS, SHARED_RESOURCES};
pub use repo::TempRepo;

/// `baton.toml` with fast policies, so that scenario tests, benchmarks and soaks never wait for
/// real back-offs, cool-downs or limit margins.
pub const FAST_CONFIG: &str = "[run]
backoff_initial_seconds = 0.05
backoff_max_seconds = 0.2
breaker_cooldown_seconds = 0.3
limit_margin_seconds = 0.1
throttle_initial_seconds = 0.05
throttle_max_seconds = 0.2
";
