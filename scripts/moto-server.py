"""moto's server, with each DynamoDB request applied whole before the next one starts.

moto handles requests on threads, and applies a TransactWriteItems item by item, rolling a failed
one back by restoring a copy of the tables taken before it: a transaction running beside another
can show its half-done items, and its rollback erases what the other committed meanwhile.
DynamoDB applies every request atomically; so does this server, by running moto's DynamoDB
requests one at a time (other services, such as SQS long polls, stay concurrent).

    python scripts/moto-server.py -H 127.0.0.1 -p PORT    # the arguments of moto_server
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.RLock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self):
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time

if __name__ == "__main__":
    sys.exit(main())
