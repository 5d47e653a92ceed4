#!/usr/bin/env python3
"""Pre-signs runner callbacks for the load test of scripts/bench-serve.

Reads the server's webhook master secret, derives each attempt's key exactly as the server does
(HMAC-SHA256 of "pithy-jaunt/callback/v1/{task}/{attempt}" under the master key), and writes one
request per line, "path<TAB>webhook-id<TAB>timestamp<TAB>signature<TAB>body", split across one
file per load-generator thread. Standard library only.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def master_key(raw: str) -> bytes:
    raw = raw.strip()
    if raw.startswith("whsec_"):
        try:
            return base64.b64decode(raw[len("whsec_"):], validate=True)
        except ValueError:
            pass
    return raw.encode()


def main() -> None:
    secret_file, tasks_file, kind, count, threads, out = sys.argv[1:7]
    count, threads = int(count), int(threads)
    master = master_key(open(secret_file).read())
    tasks = [t.strip() for t in open(tasks_file) if t.strip()]
    keys = {
        t: hmac.new(master, f"pithy-jaunt/callback/v1/{t}/1".encode(), hashlib.sha256).digest()
        for t in tasks
    }
    ts = str(int(time.time()))
    files = [open(f"{out}.{i}", "w") for i in range(threads)]
    seq = {t: 0 for t in tasks}
    for n in range(count):
        task = tasks[n % len(tasks)]
        if kind == "events":
            path = "/webhooks/runner"
            event = "task.started" if n < len(tasks) else "task.progress"
            body = {"type": event, "task_id": task, "attempt": 1, "message": f"step {n}"}
        else:
            path = "/webhooks/runner/logs"
            line = {"seq": seq[task], "ts": "2026-01-01T00:00:00Z", "stream": "stdout",
                    "text": f"compiling module {n} of the bench"}
            seq[task] += 1
            body = {"task_id": task, "attempt": 1, "lines": [line]}
        raw = json.dumps(body, separators=(",", ":"))
        wid = f"msg_bench_{kind}_{out.rsplit('/', 1)[-1]}_{n}"
        mac = hmac.new(keys[task], f"{wid}.{ts}.{raw}".encode(), hashlib.sha256).digest()
        sig = "v1," + base64.b64encode(mac).decode()
        files[n % threads].write(f"{path}\t{wid}\t{ts}\t{sig}\t{raw}\n")
    for f in files:
        f.close()


if __name__ == "__main__":
    main()
