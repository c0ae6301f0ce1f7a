#!/usr/bin/env python3
"""Scripted fake of the OpenAI Responses API (POST /v1/responses, SSE) for driving `codex exec`.

usage: server.py PORT SCENARIO LOGDIR
  SCENARIO: happy | usage_limit | usage_limit_noreset | plain429 | e500 | stall
Every request is appended to LOGDIR/requests.jsonl; every SSE body sent to LOGDIR/sse.txt.
"""
import http.server, json, os, sys, threading, time, re

PORT, SCENARIO, LOGDIR = int(sys.argv[1]), sys.argv[2], sys.argv[3]
os.makedirs(LOGDIR, exist_ok=True)
lock = threading.Lock()
state = {"n": 0}

STATUS_JSON = '{"task_id":"1","status":"completed","message":"ok"}'
# One shell command per turn (the CLI's own tool: exec_command {cmd}).
HAPPY = [
    ("call", "printf 'hello from fake model\\n' > hello.txt"),
    ("call", "git add hello.txt && git commit -q -m 'x: add hello.txt' && git log --oneline -1"),
    ("call", "mkdir -p .claude/plans && printf '%s\\n' '" + STATUS_JSON + "' > .claude/plans/task-status.json"),
    ("text", "All done."),
]
USAGE = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": int(os.environ.get("CACHED", 0))},
         "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": int(os.environ.get("REASONING", 0))}, "total_tokens": 120}


def sse(ev):
    return ("event: %s\ndata: %s\n\n" % (ev["type"], json.dumps(ev))).encode()


def turn_events(n, step):
    rid = "resp_%d" % n
    evs = [{"type": "response.created", "response": {"id": rid, "object": "response", "status": "in_progress"}}]
    kind, arg = step
    if kind == "call":
        item = {"type": "function_call", "id": "fc_%d" % n, "call_id": "call_%d" % n,
                "name": "exec_command", "arguments": json.dumps({"cmd": arg})}
        evs += [
            {"type": "response.output_item.added", "output_index": 0, "item": dict(item, arguments="", status="in_progress")},
            {"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": 0, "delta": item["arguments"]},
            {"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": 0, "arguments": item["arguments"]},
            {"type": "response.output_item.done", "output_index": 0, "item": dict(item, status="completed")},
        ]
    else:
        mid = "msg_%d" % n
        evs += [
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", "item_id": mid, "output_index": 0, "content_index": 0,
             "part": {"type": "output_text", "text": "", "annotations": []}},
            {"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0, "delta": arg},
            {"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0, "text": arg},
            {"type": "response.content_part.done", "item_id": mid, "output_index": 0, "content_index": 0,
             "part": {"type": "output_text", "text": arg, "annotations": []}},
            {"type": "response.output_item.done", "output_index": 0,
             "item": {"type": "message", "id": mid, "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": arg, "annotations": []}]}},
        ]
    evs.append({"type": "response.completed", "response": {"id": rid, "object": "response", "status": "completed", "usage": USAGE}})
    return evs


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _log(self, body):
        with lock:
            with open(os.path.join(LOGDIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps({"t": time.time(), "method": self.command, "path": self.path,
                                    "headers": dict(self.headers), "body": body}) + "\n")

    def _json(self, status, obj, headers=()):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(b)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b)
        with lock, open(os.path.join(LOGDIR, "sse.txt"), "a") as f:
            f.write("### HTTP %d %s\n%s\n\n" % (status, dict(headers), b.decode()))

    def do_GET(self):
        self._log(None)
        self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except Exception:
            body = raw.decode("utf-8", "replace")
        self._log(body)
        if not self.path.startswith("/v1/responses"):
            return self._json(404, {"error": {"message": "not found"}})
        with lock:
            state["n"] += 1
            k = state["n"]
        if SCENARIO == "usage_limit":
            return self._json(429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                              "plan_type": os.environ.get("PLAN", "plus"),
                                              "resets_at": int(os.environ.get("RESETS_AT", int(time.time()) + 3600)),
                                              "resets_in_seconds": 3600}})
        if SCENARIO == "usage_limit_noreset":
            return self._json(429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached"}})
        if SCENARIO == "plain429":
            return self._json(429, {"error": {"type": "rate_limit_exceeded", "message": "Rate limit reached"}},
                              headers=[("retry-after", "1")])
        if SCENARIO == "e500":
            return self._json(500, {"error": {"type": "server_error", "message": "Internal server error"}})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        if SCENARIO == "stall":
            self.wfile.write(sse({"type": "response.created", "response": {"id": "resp_stall"}}))
            self.wfile.flush()
            time.sleep(3600)
            return
        script = HAPPY if SCENARIO not in ("sleep", "fail") else ([("call", "sleep 30 && echo slept > slept.txt"), ("text", "slept")] if SCENARIO == "sleep" else [("call", "echo oops >&2; exit 3"), ("text", "failed")])
        step = script[min(k, len(script)) - 1]
        evs = turn_events(k, step)
        if os.environ.get("MINIMAL") == "1":  # only created, output_item.done, completed
            evs = [e for e in evs if e["type"] in ("response.created", "response.output_item.done", "response.completed")]
        elif os.environ.get("MINIMAL") == "2":  # only output_item.done, completed
            evs = [e for e in evs if e["type"] in ("response.output_item.done", "response.completed")]
        elif os.environ.get("MINIMAL") == "nocompleted":
            evs = [e for e in evs if e["type"] != "response.completed"]
        out = b"".join(sse(e) for e in evs)
        with lock, open(os.path.join(LOGDIR, "sse.txt"), "a") as f:
            f.write("### request %d -> 200 text/event-stream\n%s\n" % (k, out.decode()))
        self.wfile.write(out)
        self.wfile.flush()
        self.close_connection = True


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
