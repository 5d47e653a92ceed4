"""A webhook receiver for the end-to-end tests of `pj serve` (cli/tests/serve/kinds.rs, which starts it).

Verifies every delivery with the official Standard Webhooks library
(`standardwebhooks.Webhook(secret).verify`), answers 500 to the first --fail-first deliveries
and 200 after, and appends one JSON line per delivery to --record: the webhook-id, whether the
signature held, the parsed body, the status answered and the time it arrived (Unix seconds).

Listens on 127.0.0.1, on a free port; prints `listening on PORT` once it is ready.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True, help="the whsec_ secret deliveries are signed with")
    parser.add_argument("--record", required=True, help="the file each delivery is appended to")
    parser.add_argument("--fail-first", type=int, default=0, help="deliveries answered 500 first")
    args = parser.parse_args()

    webhook = Webhook(args.secret)
    lock = threading.Lock()
    seen = {"count": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            record = {"webhook_id": headers.get("webhook-id"), "path": self.path, "arrived": arrived}
            try:
                record["body"] = webhook.verify(body, headers)
                record["verified"] = True
            except WebhookVerificationError as e:
                record["verified"] = False
                record["error"] = str(e)
            with lock:
                seen["count"] += 1
                if not record["verified"]:
                    status = 401
                elif seen["count"] <= args.fail_first:
                    status = 500
                else:
                    status = 200
                record["status"] = status
                with open(args.record, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if status == 200 else b'{"ok": false}')

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    # Stops when the test closes our standard input (or kills us).
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
