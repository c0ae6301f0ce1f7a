#!/usr/bin/env python3
"""Scripted fake of the Gemini API (streamGenerateContent?alt=sse) for driving `gemini -p`.

usage: server.py PORT SCENARIO LOGDIR
  SCENARIO: happy | quota429 | e500 | stall
Every request -> LOGDIR/requests.jsonl; every answer -> LOGDIR/sse.txt.
"""
import http.server, json, os, sys, threading, time

PORT, SCENARIO, LOGDIR = int(sys.argv[1]), sys.argv[2], sys.argv[3]
os.makedirs(LOGDIR, exist_ok=True)
lock = threading.Lock()
state = {"n": 0}
STATUS_JSON = '{"task_id":"1","status":"completed","message":"ok"}'
HAPPY = [
    ("call", "run_shell_command", {"command": "printf 'hello from fake model\\n' > hello.txt", "description": "write hello.txt"}),
    ("call", "run_shell_command", {"command": "git add hello.txt && git commit -q -m 'x: add hello.txt' && git log --oneline -1", "description": "commit"}),
    ("call", "write_file", {"file_path": "{cwd}/.claude/plans/task-status.json", "content": STATUS_JSON + "\n"}),
    ("text", "All done."),
]
USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120}
if os.environ.get("CACHED"):
    USAGE.update(cachedContentTokenCount=int(os.environ["CACHED"]), thoughtsTokenCount=int(os.environ.get("THOUGHTS", 0)), totalTokenCount=120 + int(os.environ.get("THOUGHTS", 0)))


def chunk(obj):
    return ("data: " + json.dumps(obj) + ("\n\n" if os.environ.get("LF") else "\r\n\r\n")).encode()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _rec(self, kind, text):
        with lock, open(os.path.join(LOGDIR, "sse.txt"), "a") as f:
            f.write("### %s %s\n%s\n\n" % (self.path, kind, text))

    def _json(self, status, obj):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(b)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b)
        self._rec("HTTP %d" % status, b.decode())

    def do_GET(self):
        self._log(None)
        self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

    def _log(self, body):
        with lock, open(os.path.join(LOGDIR, "requests.jsonl"), "a") as f:
            f.write(json.dumps({"t": time.time(), "method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except Exception:
            body = raw.decode("utf-8", "replace")
        self._log(body)
        path = self.path.split("?")[0]
        if path.endswith(":countTokens"):
            return self._json(200, {"totalTokens": 100})
        if not (path.endswith(":streamGenerateContent") or path.endswith(":generateContent")):
            return self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
        if SCENARIO == "quota429":
            return self._json(429, {"error": {"code": 429, "message": os.environ.get("MSG", "Resource has been exhausted (e.g. check quota)."),
                                              "status": "RESOURCE_EXHAUSTED", **({"details": json.loads(os.environ["DETAILS"])} if os.environ.get("DETAILS") else {})}})
        if SCENARIO == "e500":
            return self._json(500, {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}})
        if path.endswith(":generateContent"):
            # side calls (not part of the script): answer with a plain text candidate
            return self._json(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": "{}"}]}, "finishReason": "STOP", "index": 0}],
                                    "usageMetadata": USAGE})
        with lock:
            state["n"] += 1
            k = state["n"]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        if SCENARIO == "stall":
            self.wfile.write(chunk({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0}]}))
            self.wfile.flush()
            time.sleep(3600)
            return
        cwd = os.environ.get("CWD", "") if not os.environ.get("REL") else "."
        script = HAPPY if SCENARIO not in ("sleep", "fail") else ([("call", "run_shell_command", {"command": "sleep 30 && echo slept > slept.txt"}), ("text", "slept")] if SCENARIO == "sleep" else [("call", "run_shell_command", {"command": "echo oops >&2; exit 3"}), ("text", "failed")])
        step = script[min(k, len(script)) - 1]
        if step[0] == "call":
            args = {a: (v.replace("{cwd}", cwd) if isinstance(v, str) else v) for a, v in step[2].items()}
            parts = [{"functionCall": {"name": step[1], "args": args}}]
            chunks = [{"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": USAGE, "modelVersion": "fake", "responseId": "r%d" % k}]
        else:
            chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": step[1]}]}, "index": 0}],
                       "usageMetadata": {"promptTokenCount": 100, "totalTokenCount": 100}, "modelVersion": "fake", "responseId": "r%d" % k},
                      {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": USAGE, "modelVersion": "fake", "responseId": "r%d" % k}]
        out = b"".join(chunk(c) for c in chunks)
        self._rec("request %d -> 200 text/event-stream" % k, out.decode())
        self.wfile.write(out)
        self.wfile.flush()
        self.close_connection = True


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
