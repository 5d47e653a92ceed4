"""A local AWS Lambda Runtime API, to time a function's `bootstrap` outside Lambda.

scripts/bench-lambda runs it; by hand:

    python scripts/lambda-runtime-harness.py --bootstrap target/release/api --env-file ENV \
        --event events/api-healthz.json --invokes 20

It serves the Runtime API endpoints a runtime calls (`/2018-06-01/runtime/invocation/next`,
`/invocation/{id}/response` (buffered or streamed), `/invocation/{id}/error`, `/init/error`)
on a free loopback port, starts the bootstrap with `AWS_LAMBDA_RUNTIME_API` pointing at it and
the function's environment, and measures:

- init: from just before the process is started to its first `next` call (the runtime's own
  initialisation: configuration, clients, keys fetched at cold start), the median of
  --cold-starts starts;
- warm invoke: from handing an event to a runtime waiting in `next` to having received its whole
  response, the median (and p90) of N invocations after a first, untimed one.

With --issuer it also serves an OpenID discovery document and a JWKS under /issuer, for a
function that fetches its JWT keys at cold start (PJ_JWT_ISSUER=http://127.0.0.1:PORT/issuer).
With --sign CMD, each event is passed through `CMD FILE` (which prints the event to send) right
before it is handed over, outside the timing (a signed callback must carry a fresh signature).
Prints one JSON object with the figures.
"""

import argparse
import http.server
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"


class State:
    def __init__(self):
        self.events = queue.Queue()
        self.first_next = None
        self.waiting = threading.Event()
        self.results = {}
        self.done = {}
        self.init_error = None
        self.jwks = None
        self.port = None
        self.generation = 0


STATE = State()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body until the peer's delayed ACK (40 ms), which would be timed as the function's.
    disable_nagle_algorithm = True

    def _quickack(self):
        # The same on the receiving side of a streamed response: acknowledge every chunk now.
        if hasattr(socket, "TCP_QUICKACK"):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                self._quickack()
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, if any, end with an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        if self.path == PREFIX + "/invocation/next":
            now = time.perf_counter()
            if STATE.first_next is None:
                STATE.first_next = now
            generation = STATE.generation
            STATE.waiting.set()
            while True:
                try:
                    item = STATE.events.get(timeout=0.05)
                except queue.Empty:
                    item = None
                if generation != STATE.generation:
                    # Asked by a process stopped since: leave the event to the current one.
                    if item is not None:
                        STATE.events.put(item)
                    self.close_connection = True
                    return
                if item is not None:
                    break
            request_id, payload, deadline_ms = item
            STATE.waiting.clear()
            STATE.results[request_id] = {"handed": time.perf_counter()}
            self._answer(
                200,
                payload,
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-6921a9e0-3f2c7d1b5e8a4c6f9b0d2e47;Parent=1;Sampled=0",
                },
            )
        elif self.path == "/issuer/.well-known/openid-configuration":
            base = f"http://127.0.0.1:{STATE.port}/issuer"
            doc = {"issuer": base, "jwks_uri": base + "/jwks"}
            self._answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        elif self.path == "/issuer/jwks" and STATE.jwks:
            self._answer(200, STATE.jwks, {"Content-Type": "application/json"})
        else:
            self._answer(404)

    def do_POST(self):
        body = self._body()
        now = time.perf_counter()
        if self.path == PREFIX + "/init/error":
            STATE.init_error = body.decode(errors="replace")
            self._answer(202, b"{}")
            return
        parts = self.path[len(PREFIX) + 1 :].split("/")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            result = STATE.results.setdefault(parts[1], {})
            result["finished"] = now
            result["kind"] = parts[2]
            result["body"] = body
            self._answer(202, b"{}")
            STATE.done[parts[1]].set()
        else:
            self._answer(404)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--env-file", required=True)
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE, after the file")
    p.add_argument("--event", required=True)
    p.add_argument("--setup-event", action="append", default=[], help="sent first, not timed")
    p.add_argument("--invokes", type=int, default=20)
    p.add_argument("--cold-starts", type=int, default=10, help="starts timed for the init median")
    p.add_argument("--timeout", type=float, default=30.0, help="the invocation's deadline, s")
    p.add_argument("--sign", help="command that prints a freshly signed copy of an event file")
    p.add_argument("--issuer-jwks", help="serve this JWKS file under /issuer")
    p.add_argument("--log", default=os.devnull, help="where the function's output goes")
    args = p.parse_args()

    if args.issuer_jwks:
        with open(args.issuer_jwks, "rb") as f:
            STATE.jwks = f.read()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    STATE.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA_")}
    with open(args.env_file) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v.replace("{port}", str(STATE.port))
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{STATE.port}",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        }
    )

    def payload(path):
        if args.sign:
            return subprocess.run([*args.sign.split(), path], check=True, capture_output=True).stdout
        with open(path, "rb") as f:
            return f.read()

    log = open(args.log, "ab")

    def start():
        """Starts the bootstrap; returns it and its init time once it waits in `next`."""
        STATE.generation += 1
        STATE.first_next = None
        STATE.waiting.clear()
        started = time.perf_counter()
        proc = subprocess.Popen([args.bootstrap], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not STATE.waiting.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(
                    f"{args.bootstrap} never asked for an event (exit {proc.poll()}, "
                    f"init error {STATE.init_error!r}; its output is in {args.log})"
                )
        return proc, (STATE.first_next - started) * 1000

    def stop(proc):
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    inits = []
    for _ in range(max(args.cold_starts - 1, 0)):
        proc, init_ms = start()
        inits.append(init_ms)
        # The runtime waits in `next` on a connection of its own: drop that request unanswered.
        stop(proc)
    proc, init_ms = start()
    inits.append(init_ms)
    inits.sort()
    out = {"bootstrap": args.bootstrap, "init_ms": statistics.median(inits), "init_max_ms": inits[-1], "cold_starts": len(inits)}
    try:

        def invoke(path):
            request_id = str(uuid.uuid4())
            data = payload(path)
            STATE.done[request_id] = threading.Event()
            # Hand the event only to a runtime already waiting in `next`.
            if not STATE.waiting.wait(30):
                raise SystemExit("the runtime did not come back for the next event")
            deadline_ms = int((time.time() + args.timeout) * 1000)
            STATE.events.put((request_id, data, deadline_ms))
            if not STATE.done[request_id].wait(args.timeout + 5):
                raise SystemExit(f"no response to {path}")
            r = STATE.results[request_id]
            return r

        for path in args.setup_event:
            r = invoke(path)
            if r["kind"] != "response":
                raise SystemExit(f"setup event {path} failed: {r['body'][:500]!r}")
        first = invoke(args.event)
        out["first_invoke_ms"] = (first["finished"] - first["handed"]) * 1000
        out["first_response"] = first["body"][:300].decode(errors="replace")
        times = []
        for _ in range(args.invokes):
            r = invoke(args.event)
            if r["kind"] != "response":
                raise SystemExit(f"{args.event} failed: {r['body'][:500]!r}")
            times.append((r["finished"] - r["handed"]) * 1000)
        times.sort()
        out["invokes"] = len(times)
        if times:
            out["warm_median_ms"] = statistics.median(times)
            out["warm_p90_ms"] = times[min(len(times) - 1, int(len(times) * 0.9))]
            out["last_response"] = r["body"][:300].decode(errors="replace")
    finally:
        stop(proc)
        server.shutdown()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
