-- wrk script: sustained task creation (execute: false, so only the API and the store are measured).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PJ_BENCH_TOKEN")
wrk.body = '{"repo_url": "https://github.com/example/repo", "prompt": "Rename the config loader and update its callers", "execute": false}'
