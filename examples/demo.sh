#!/usr/bin/env bash
# Runs baton's main job on the bundled example plan, in a throw-away git repository.
#
# With the Claude Code CLI installed and credentials present, the real agent does the work.
# Without them, baton's built-in SIMULATED agent (`baton run PLAN --agent simulated`) stands
# in: it follows the same protocol through the same supervisor, but calls no model — it writes
# a note per task saying so, and every line of its output is labelled `simulated`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

cargo build -q --locked -p baton --bin baton
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

agent=()
if [ -n "$claude" ] && [ -n "$has_credentials" ]; then
  echo "== agent: Claude Code at $claude (real model calls; this costs money)"
  export BATON_CLAUDE_BIN="$claude"
  if [ "$(id -u)" = 0 ]; then export IS_SANDBOX=1; fi
else
  echo "=================================================================="
  echo "  SIMULATED AGENT: no Claude Code CLI with credentials was found,"
  echo "  so baton runs its built-in simulated agent (--agent simulated)."
  echo "  It follows baton's protocol (writes a file per task, commits,"
  echo "  reports a status) but no model is called: the tasks themselves"
  echo "  are not done."
  echo "=================================================================="
  agent=(--agent simulated)
fi

cd "$work"
echo "== baton run examples/hello.yaml ${agent[*]}   (in $work)"
status=0
"$baton" run examples/hello.yaml "${agent[@]}" || status=$?
echo
echo "== baton status examples/hello.yaml"
"$baton" status examples/hello.yaml
echo
echo "== git log"
git log --oneline
exit "$status"
