#!/bin/sh
# Entry command of the pithy-jaunt-dev Daytona sandbox: it keeps the sandbox up.
#
# The server (pj-remote's Daytona runner) creates the sandbox with the runner environment
# (TASK_ID and the rest), then starts `pj-runner run` in it through Daytona's process API, so
# the agent runs exactly once per attempt, and deletes the sandbox when the attempt ends (with
# KEEP_ALIVE it stops it instead, for a person to look at). The sandbox's auto-stop, set past
# the attempt's deadline, ends it if that never comes.
exec sleep infinity
