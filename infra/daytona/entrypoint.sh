#!/bin/sh
# Entry command of the pithy-jaunt-dev Daytona sandbox.
#
# With the runner environment set at sandbox creation (TASK_ID and the rest), it runs the task
# and exits with pj-runner's status, which ends the sandbox. Without it the sandbox idles, so
# the server can start `pj-runner run` through Daytona's process API instead. KEEP_ALIVE=true
# keeps the sandbox (and, through pj-runner, its working tree) after the run for a person to
# look at.
set -u

if [ -z "${TASK_ID:-}" ]; then
    exec sleep infinity
fi

status=0
pj-runner run || status=$?

case "${KEEP_ALIVE:-}" in
    1 | true | TRUE | True | yes)
        echo "pj-runner exited with status $status; KEEP_ALIVE is set, the sandbox stays up"
        exec sleep infinity
        ;;
esac
exit "$status"
