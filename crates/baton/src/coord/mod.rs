//! Coordination between parallel agents (PRODUCT.md §7): the shared claims file, per-agent
//! heartbeats, finding the main checkout from a worktree, and the protocol text for the prompt.
//!
//! Owns everything under `.claude/agent-claims.json`, `.claude/agent-claims.json.lock` and
//! `.claude/subagent-status/` in the main checkout. Must not spawn or end agents, touch the plan,
//! or decide what to do with a silent agent: it reports state, the engine decides.

mod checkout;
pub mod claims;
mod error;
pub(crate) mod fsio;
pub mod heartbeat;
mod protocol;

pub use checkout::{
    identity_from_env, main_checkout, repo_path, worktree_root, ENV_AGENT_ID, ENV_MAIN_ROOT, ENV_TASK_ID,
};
pub use claims::{Claim, ClaimOutcome, Claimant};
pub use error::CoordError;
pub use heartbeat::{AgentState, AgentStatus};
pub use protocol::protocol_text;
