"""A real SMTP server (aiosmtpd) for the end-to-end tests of `pj serve`
(cli/tests/serve/kinds.rs).

Accepts every message and appends one JSON line per message to --record: the envelope's
sender and recipients and the message as received. Listens on 127.0.0.1, on a free port;
prints `listening on PORT` once it is ready.
"""

import argparse
import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, path: str) -> None:
        self.path = path

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        record = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "data": content}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


async def serve(record: str) -> None:
    loop = asyncio.get_running_loop()
    handler = Recorder(record)
    server = await loop.create_server(lambda: SMTP(handler, hostname="fake-smtp.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    # Stops when the test closes our standard input (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", required=True, help="the file each message is appended to")
    asyncio.run(serve(parser.parse_args().record))


if __name__ == "__main__":
    main()
