#!/usr/bin/env bash
# N runs (default 500) of issue 10's lost-edit case: two parallel tasks make same-size edits to
# different lines of one file within the same second (git's racy-clean case). Prints every run
# that lost an edit or failed, then the totals. Build first: cargo build --workspace.
# Run it beside a CPU load (e.g. `yes >/dev/null & yes >/dev/null &`) to make it mean something.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
B=${BATON:-$here/target/debug/baton}
F=${BATON_FAKE_CLAUDE:-$here/target/debug/fake-claude}
N=${1:-500}
work=$(mktemp -d)
lost=0; bad=0
for i in $(seq 1 "$N"); do
  d=$work/run-$i; mkdir -p "$d" && cd "$d" || exit 2
  git init -q; git config user.email t@t; git config user.name t
  printf 'line 1\nline 2\nline 3\nline 4\nline 5\n' > shared.txt
  printf "meta:\n  name: Two\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: G\n  tasks:\n  - id: '1'\n    name: top\n    status: pending\n    parallel_group: g\n  - id: '2'\n    name: bottom\n    status: pending\n    parallel_group: g\n" > plan.yaml
  git add -A; git commit -qm init
  cat > "$work/scenario-$i.json" <<'S'
{"tasks": {"1": [{"events": 1, "interval_ms": 10, "write": {"shared.txt": "LINE 1\nline 2\nline 3\nline 4\nline 5\n"}}],
           "2": [{"events": 3, "interval_ms": 10, "write": {"shared.txt": "line 1\nline 2\nline 3\nline 4\nLINE 5\n"}}]}}
S
  BATON_CLAUDE_BIN=$F BATON_FAKE_SCENARIO=$work/scenario-$i.json BATON_FAKE_STATE=$work/state-$i IS_SANDBOX=1 NO_COLOR=1 \
    timeout 120 "$B" run plan.yaml --parallel > "$work/out-$i.log" 2>&1 < /dev/null
  rc=$?
  if [ "$(cat shared.txt)" != "$(printf 'LINE 1\nline 2\nline 3\nline 4\nLINE 5')" ]; then
    lost=$((lost + 1)); echo "run $i: an edit was lost (exit $rc; kept in $d)"
  elif [ $rc -ne 0 ]; then
    bad=$((bad + 1)); echo "run $i: exit $rc (kept in $d)"
  else
    cd "$work" && rm -rf "$d" "$work/state-$i" "$work/scenario-$i.json" "$work/out-$i.log"
  fi
done
echo "runs=$N lost=$lost other_failures=$bad"
[ $lost -eq 0 ] && [ $bad -eq 0 ]
