#!/usr/bin/env bash
# Runs baton's main job on the bundled example plan, in a throw-away git repository.
#
# With the Claude Code CLI installed and credentials present, the real agent does the work.
# Without credentials, a clearly labelled SIMULATED agent (the scripted fake agent from
# crates/baton-testkit) stands in: it follows the same protocol but calls no model.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

cargo build -q -p baton -p baton-testkit --bin baton --bin fake-claude
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
baton="$target/debug/baton"

work="$(mktemp -d "${TMPDIR:-/tmp}/baton-demo.XXXXXX")"
mkdir -p "$work/examples"
cp examples/hello.yaml examples/hello-design.md "$work/examples/"
git -C "$work" init -q -b main
git -C "$work" config user.name "baton demo"
git -C "$work" config user.email "demo@baton.invalid"
git -C "$work" add -A
git -C "$work" commit -q -m "the example plan"

claude=""
if [ -x "$here/node_modules/.bin/claude" ]; then claude="$here/node_modules/.bin/claude"; fi
if [ -z "$claude" ] && command -v claude >/dev/null 2>&1; then claude="$(command -v claude)"; fi
has_credentials=""
if [ -n "${ANTHROPIC_API_KEY:-}" ] || [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ] || [ -f "$HOME/.claude/.credentials.json" ]; then
  has_credentials=yes
fi

if [ -n "$claude" ] && [ -n "$has_credentials" ]; then
  echo "== agent: Claude Code at $claude (real model calls; this costs money)"
  export BATON_CLAUDE_BIN="$claude"
  if [ "$(id -u)" = 0 ]; then export IS_SANDBOX=1; fi
else
  echo "=================================================================="
  echo "  SIMULATED AGENT: no Claude Code credentials found, so baton runs"
  echo "  its scripted fake agent. It follows baton's protocol (writes the"
  echo "  files, commits, reports a status) but no model is called."
  echo "=================================================================="
  cat > "$work/.simulated-agent.json" <<'JSON'
{"tasks": {
  "1.1": [{"write": {"hello.txt": "Hello from baton\n"}, "commit": "1.1: write the greeting", "message": "hello.txt written"}],
  "1.2": [{"write": {"greet.sh": "#!/bin/sh\ncat \"$(dirname \"$0\")/hello.txt\"\n"}, "commit": "1.2: greeting script", "message": "greet.sh prints hello.txt"}],
  "2.1": [{"write": {"GREETING.md": "# Greeting\n\nRun `sh greet.sh`.\n"}, "commit": "2.1: document the script", "message": "GREETING.md written"}]
}}
JSON
  echo ".simulated-agent*" >> "$work/.git/info/exclude"
  export BATON_CLAUDE_BIN="$target/debug/fake-claude"
  export BATON_FAKE_SCENARIO="$work/.simulated-agent.json"
  export BATON_FAKE_STATE="$work/.simulated-agent-state"
  export IS_SANDBOX=1
fi

cd "$work"
echo "== baton run examples/hello.yaml   (in $work)"
status=0
"$baton" run examples/hello.yaml || status=$?
echo
echo "== baton status examples/hello.yaml"
"$baton" status examples/hello.yaml
echo
echo "== git log"
git log --oneline
exit "$status"
