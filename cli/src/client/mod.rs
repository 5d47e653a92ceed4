//! `pj` as the client of any deployment: the users' HTTP API ([docs/http-api.md]) on the command
//! line. Human output on a terminal, the API's JSON under `--json`, and exit statuses a script
//! can trust (docs/programs.md): 0 done, 1 the task ended otherwise, 2 usage, 3 the API refused
//! or could not be reached.
//!
//! [docs/http-api.md]: ../../../docs/http-api.md

mod api;
mod artifacts;
mod follow;
mod output;
mod sse;

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::{Args, Subcommand};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use api::{Api, ApiError};
use follow::print_json_line;
use output::{Ui, str_of};

const GLOBAL: &str = "Client options";

/// Where `pj serve` listens by default, and so where the client looks first.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Options of every client command.
#[derive(Args, Debug)]
pub struct Global {
    /// Print the API's JSON as it is (under --follow: one JSON object per line).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// The deployment's API.
    #[arg(
        long,
        global = true,
        env = "PJ_URL",
        help_heading = GLOBAL,
        default_value = DEFAULT_URL
    )]
    pub url: String,
    /// Where `GET /tasks/{id}/logs/stream` is served, when not at --url (AWS: LogStreamUrl).
    #[arg(long, global = true, env = "PJ_STREAM_URL", help_heading = GLOBAL)]
    pub stream_url: Option<String>,
    /// Bearer token [default: the dev token of ./.pj/dev-token when present]. Prefer PJ_TOKEN:
    /// a flag is visible to other users of this machine.
    #[arg(
        long,
        global = true,
        env = "PJ_TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
}

/// The client's subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a task: a code change (--repo and PROMPT) or a built-in kind (--kind, --config).
    Create(CreateArgs),
    /// List your tasks, newest first.
    List {
        /// Only tasks with this status (queued, running, completed, failed, ...).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The next page: the cursor a previous list printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one task: status, PR link, error, result, usage.
    Show { id: String },
    /// Print a task's log; --follow streams it until the task ends.
    Logs {
        id: String,
        /// Stream the log with a live status line until the task ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Dispatch a task created with "execute": false.
    Execute { id: String },
    /// Approve a task that waits for review (pending_review).
    Approve { id: String },
    /// Cancel a task that has not ended.
    Cancel { id: String },
    /// Start the next attempt of a failed, needs_review or cancelled task.
    Retry { id: String },
    /// List a task's artifacts, or download them all with --out.
    Artifacts {
        id: String,
        /// Download every artifact into this directory (created when missing).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List your outbound messages (emails, webhooks, SMS), newest first.
    Messages {
        /// Only the messages of this task.
        #[arg(long)]
        task: Option<String>,
        /// Only messages with this status (pending, sent, failed).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The repository (an https:// git URL; for pj serve also a file:// URL or a local path,
    /// sent as an absolute path).
    #[arg(long)]
    repo: Option<String>,
    /// The branch to start from [server default: main].
    #[arg(long)]
    base: Option<String>,
    /// A built-in kind: api_call, ghl_action, notification, reminder, report,
    /// browser_automation, data_extraction [server default: code_change].
    #[arg(long)]
    kind: Option<String>,
    /// The kind's config: JSON, @FILE to read it from a file, or - for standard input.
    #[arg(long, value_name = "JSON|@FILE|-")]
    config: Option<String>,
    /// The title [server default: the prompt's first line].
    #[arg(long)]
    title: Option<String>,
    /// Wait for an approval (`pj approve`) before running.
    #[arg(long)]
    review: bool,
    /// Run at this time: RFC 3339 (2026-12-02T06:00:00Z) or +DURATION from now (+90s, +10m,
    /// +2h, +1d).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Stream the log with a live status line until the task ends; exit 0 only if it completed.
    #[arg(long, short)]
    follow: bool,
    /// What to change, in plain words; - reads it from standard input.
    prompt: Option<String>,
}

/// How a command ended, for its exit status.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done (under --follow: the task completed).
    Done,
    /// 1: the followed task ended otherwise (failed, needs_review, cancelled).
    TaskEndedOtherwise,
}

/// Why a command failed, for its exit status and message.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// 2: the command line cannot be carried out as given.
    #[error("{0}")]
    Usage(String),
    /// 3: the API refused, could not be reached, or answered something unusable.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// 3: some artifacts were not written (the rest were).
    #[error("{0}")]
    Artifacts(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Api(_) | Failure::Artifacts(_) => 3,
        }
    }

    /// A line that may follow the message: what to do about it.
    pub fn hint(&self, global: &Global) -> Option<String> {
        match self {
            Failure::Api(ApiError::Refused { status: 401, .. })
                if global.token.is_none() && dev_token_path().is_none() =>
            {
                Some(
                    "no token: set PJ_TOKEN (pj serve keeps its dev token in ./.pj/dev-token)"
                        .to_owned(),
                )
            }
            _ => None,
        }
    }
}

/// `./.pj/dev-token`, where `pj serve` keeps its development token, when it is there.
fn dev_token_path() -> Option<PathBuf> {
    let path = Path::new(".pj").join("dev-token");
    path.is_file().then_some(path)
}

/// The token: `--token` / `PJ_TOKEN`, else the dev token of `./.pj/` when present.
fn token(global: &Global) -> Result<Option<SecretString>, Failure> {
    if let Some(token) = &global.token {
        return Ok(Some(SecretString::from(token.trim().to_owned())));
    }
    let Some(path) = dev_token_path() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some(SecretString::from(text.trim().to_owned())))
}

/// A task id as given on the command line: the API's ids are letters, digits, `_` and `-`.
fn task_id(id: &str) -> Result<&str, Failure> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        Ok(id)
    } else {
        Err(Failure::Usage(format!("{id:?} is not a task id")))
    }
}

/// Runs one client command.
pub async fn run(global: &Global, command: Command) -> Result<Outcome, Failure> {
    let ui = Ui::detect();
    let api = Api::new(&global.url, global.stream_url.as_deref(), token(global)?)
        .map_err(Failure::Usage)?;
    let json = global.json;
    let now = Utc::now();
    match command {
        Command::Create(args) => create(&api, ui, json, args).await,
        Command::List {
            status,
            limit,
            cursor,
        } => {
            let page = api
                .get(
                    &["tasks"],
                    &[
                        ("status", status),
                        ("limit", Some(limit.to_string())),
                        ("cursor", cursor),
                    ],
                )
                .await?;
            if json {
                println!("{page:#}");
                return Ok(Outcome::Done);
            }
            let tasks = page["tasks"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = tasks
                .iter()
                .map(|t| {
                    vec![
                        str_of(&t["id"]).to_owned(),
                        str_of(&t["status"]).to_owned(),
                        str_of(&t["kind"]).to_owned(),
                        output::age(&t["created_at"], now),
                        output::cut(str_of(&t["title"]), 60),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no tasks");
            } else {
                print!(
                    "{}",
                    ui.table(&["ID", "STATUS", "KIND", "AGE", "TITLE"], &rows, |i, c| {
                        if i == 1 { ui.status(c) } else { c.to_owned() }
                    })
                );
            }
            if let Some(next) = page["next_cursor"].as_str() {
                eprintln!("{}", ui.dim(&format!("more: pj list --cursor {next}")));
            }
            Ok(Outcome::Done)
        }
        Command::Show { id } => {
            let task = api.get(&["tasks", task_id(&id)?], &[]).await?;
            if json {
                println!("{task:#}");
            } else {
                print!("{}", output::task(&ui, &task, now));
            }
            Ok(Outcome::Done)
        }
        Command::Logs { id, follow } => {
            let id = task_id(&id)?;
            if follow {
                let task = follow::follow(&api, id, ui, json).await?;
                return Ok(ended(&task));
            }
            logs(&api, ui, json, id).await
        }
        Command::Execute { id } => act(&api, ui, json, &id, "execute").await,
        Command::Approve { id } => act(&api, ui, json, &id, "approve").await,
        Command::Cancel { id } => act(&api, ui, json, &id, "cancel").await,
        Command::Retry { id } => act(&api, ui, json, &id, "retry").await,
        Command::Artifacts { id, out } => artifacts(&api, ui, json, task_id(&id)?, out).await,
        Command::Messages {
            task,
            status,
            limit,
        } => {
            let page = api
                .get(
                    &["messages"],
                    &[
                        ("task_id", task),
                        ("status", status),
                        ("limit", Some(limit.to_string())),
                    ],
                )
                .await?;
            if json {
                println!("{page:#}");
                return Ok(Outcome::Done);
            }
            let rows: Vec<Vec<String>> = page["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    vec![
                        str_of(&m["id"]).to_owned(),
                        str_of(&m["task_id"]).to_owned(),
                        str_of(&m["channel"]).to_owned(),
                        str_of(&m["status"]).to_owned(),
                        m["attempts"].as_u64().unwrap_or(0).to_string(),
                        output::age(&m["created_at"], now),
                        output::cut(str_of(&m["to"]), 60),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no messages");
            } else {
                let header = ["ID", "TASK", "CHANNEL", "STATUS", "TRIES", "AGE", "TO"];
                print!("{}", ui.table(&header, &rows, |_, c| c.to_owned()));
            }
            Ok(Outcome::Done)
        }
    }
}

/// The exit of a followed task: 0 only when it completed.
fn ended(task: &Value) -> Outcome {
    if task["status"] == "completed" {
        Outcome::Done
    } else {
        Outcome::TaskEndedOtherwise
    }
}

async fn create(api: &Api, ui: Ui, json: bool, args: CreateArgs) -> Result<Outcome, Failure> {
    let body = create_body(args.read_body_args()?)?;
    let task = api.post(&["tasks"], Some(&body)).await?;
    let id = str_of(&task["id"]).to_owned();
    if json {
        if args.follow {
            print_json_line(&task);
        } else {
            println!("{task:#}");
        }
    } else {
        println!("{id} {}", ui.status(str_of(&task["status"])));
    }
    if !args.follow {
        return Ok(Outcome::Done);
    }
    let task = follow::follow(api, &id, ui, json).await?;
    Ok(ended(&task))
}

impl CreateArgs {
    /// The fields of the body, read: `--config` and a `-` prompt resolved.
    fn read_body_args(&self) -> Result<BodyArgs, Failure> {
        if self.config.as_deref() == Some("-") && self.prompt.as_deref() == Some("-") {
            return Err(Failure::Usage(
                "--config - and a prompt of - cannot both read standard input".to_owned(),
            ));
        }
        let config = match self.config.as_deref() {
            None => None,
            Some(text) => Some(read_config(text)?),
        };
        let prompt = match self.prompt.as_deref() {
            Some("-") => Some(read_stdin("the prompt")?),
            other => other.map(str::to_owned),
        };
        Ok(BodyArgs {
            repo: self.repo.clone(),
            base: self.base.clone(),
            kind: self.kind.clone(),
            config,
            title: self.title.clone(),
            review: self.review,
            at: self.at.clone(),
            prompt,
        })
    }
}

/// What `pj create` sends, once read.
struct BodyArgs {
    repo: Option<String>,
    base: Option<String>,
    kind: Option<String>,
    config: Option<Value>,
    title: Option<String>,
    review: bool,
    at: Option<String>,
    prompt: Option<String>,
}

/// The body of `POST /tasks` (docs/http-api.md, "POST /tasks"); the API checks every field.
fn create_body(args: BodyArgs) -> Result<Value, Failure> {
    let mut body = Map::new();
    if let Some(repo) = args.repo {
        body.insert("repo_url".into(), json!(local_repo(&repo)));
    }
    let fields = [
        ("base_branch", args.base.map(Value::from)),
        ("prompt", args.prompt.map(Value::from)),
        ("kind", args.kind.map(Value::from)),
        ("config", args.config),
        ("title", args.title.map(Value::from)),
        ("requires_review", args.review.then_some(Value::Bool(true))),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if let Some(at) = args.at {
        body.insert("scheduled_for".into(), json!(schedule(&at, Utc::now())?));
    }
    Ok(Value::Object(body))
}

/// A `--repo` that names a directory here is sent as its absolute path: `pj serve` may have been
/// started elsewhere. Anything else (a URL) is sent as given.
fn local_repo(repo: &str) -> String {
    if repo.contains("://") {
        return repo.to_owned();
    }
    match std::fs::canonicalize(repo) {
        Ok(path) if path.is_dir() => path.display().to_string(),
        _ => repo.to_owned(),
    }
}

/// `--at`: an RFC 3339 time as given (the API checks it), or `+DURATION` from `now`.
fn schedule(at: &str, now: chrono::DateTime<Utc>) -> Result<String, Failure> {
    let Some(duration) = at.strip_prefix('+') else {
        return Ok(at.to_owned());
    };
    let bad = || {
        Failure::Usage(format!(
            "--at {at:?}: a +DURATION is a number and s, m, h or d (+90s, +10m, +2h, +1d)"
        ))
    };
    let split = duration.len().saturating_sub(1);
    let (number, unit) = duration.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    let when = chrono::TimeDelta::try_seconds(seconds)
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(bad)?;
    Ok(pj_core::time::rfc3339(when))
}

/// `--config`: JSON, `@FILE`, or `-` for standard input; it must parse as JSON.
fn read_config(text: &str) -> Result<Value, Failure> {
    let (source, json) = if text == "-" {
        ("standard input".to_owned(), read_stdin("--config")?)
    } else if let Some(file) = text.strip_prefix('@') {
        let json = std::fs::read_to_string(file)
            .map_err(|e| Failure::Usage(format!("--config: cannot read {file}: {e}")))?;
        (file.to_owned(), json)
    } else {
        ("the argument".to_owned(), text.to_owned())
    };
    serde_json::from_str(&json)
        .map_err(|e| Failure::Usage(format!("--config: {source} is not JSON: {e}")))
}

fn read_stdin(what: &str) -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("{what}: cannot read standard input: {e}")))?;
    Ok(text)
}

/// The stored log, every page (one JSON document of every line under `--json`).
async fn logs(api: &Api, ui: Ui, json: bool, id: &str) -> Result<Outcome, Failure> {
    const PAGE: usize = 1000;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = api
            .get(
                &["tasks", id, "logs"],
                &[
                    ("limit", Some(PAGE.to_string())),
                    ("cursor", cursor.clone()),
                ],
            )
            .await?;
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        let count = lines.len();
        if !json {
            for line in &lines {
                println!("{}", ui.log_line(line));
            }
        }
        all.extend(lines);
        let next = page["next_cursor"].as_str().map(str::to_owned);
        // A task that has not ended always gives a cursor: a short page is the end for now.
        if next.is_none() || count < PAGE {
            if json {
                println!("{:#}", json!({"lines": all, "next_cursor": next}));
            }
            return Ok(Outcome::Done);
        }
        cursor = next;
    }
}

/// `execute`, `approve`, `cancel`, `retry`: the task as the API answers.
async fn act(api: &Api, ui: Ui, json: bool, id: &str, action: &str) -> Result<Outcome, Failure> {
    let task = api.post(&["tasks", task_id(id)?, action], None).await?;
    if json {
        println!("{task:#}");
    } else {
        let status = str_of(&task["status"]);
        let mut line = format!("{} {}", str_of(&task["id"]), ui.status(status));
        if action == "retry" {
            line.push_str(&format!(" (attempt {})", task["attempt"]));
        }
        println!("{line}");
    }
    Ok(Outcome::Done)
}

async fn artifacts(
    api: &Api,
    ui: Ui,
    json: bool,
    id: &str,
    out: Option<PathBuf>,
) -> Result<Outcome, Failure> {
    let listing = api.get(&["tasks", id, "artifacts"], &[]).await?;
    let list = listing["artifacts"].as_array().cloned().unwrap_or_default();
    let Some(dir) = out else {
        if json {
            println!("{listing:#}");
        } else if list.is_empty() {
            eprintln!("no artifacts");
        } else {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|a| {
                    vec![
                        str_of(&a["name"]).to_owned(),
                        a["attempt"].to_string(),
                        a["size"].to_string(),
                        str_of(&a["content_type"]).to_owned(),
                    ]
                })
                .collect();
            print!(
                "{}",
                ui.table(&["NAME", "ATTEMPT", "BYTES", "TYPE"], &rows, |_, c| c
                    .to_owned())
            );
        }
        return Ok(Outcome::Done);
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Usage(format!("--out {}: {e}", dir.display())))?;
    let mut refused = 0;
    for artifact in &list {
        let name = str_of(&artifact["name"]);
        match artifacts::save(api, id, name, &dir).await {
            Ok(path) => {
                if !json {
                    println!("{}", path.display());
                }
            }
            Err(artifacts::SaveError::Api(e)) => return Err(e.into()),
            Err(e) => {
                eprintln!("pj: {e}");
                refused += 1;
            }
        }
    }
    if json {
        println!("{listing:#}");
    }
    if refused > 0 {
        return Err(Failure::Artifacts(format!(
            "{refused} of {} artifact(s) not written",
            list.len()
        )));
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BodyArgs {
        BodyArgs {
            repo: None,
            base: None,
            kind: None,
            config: None,
            title: None,
            review: false,
            at: None,
            prompt: None,
        }
    }

    #[test]
    fn flags_map_to_the_api_fields() {
        let body = create_body(BodyArgs {
            repo: Some("https://github.com/acme/widgets".into()),
            base: Some("dev".into()),
            kind: Some("api_call".into()),
            config: Some(json!({"url": "https://example.com"})),
            title: Some("t".into()),
            review: true,
            at: Some("2030-01-01T00:00:00Z".into()),
            prompt: Some("p".into()),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"repo_url": "https://github.com/acme/widgets", "base_branch": "dev",
                   "kind": "api_call", "config": {"url": "https://example.com"}, "title": "t",
                   "requires_review": true, "scheduled_for": "2030-01-01T00:00:00Z", "prompt": "p"})
        );
        assert_eq!(create_body(args()).unwrap(), json!({}));
    }

    #[test]
    fn a_relative_time_is_sent_as_rfc_3339() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T05:40:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(schedule("+10m", now).unwrap(), "2026-12-02T05:50:00.000Z");
        assert_eq!(schedule("+1d", now).unwrap(), "2026-12-03T05:40:00.000Z");
        assert_eq!(schedule("tomorrow", now).unwrap(), "tomorrow");
        for bad in ["+", "+10", "+10w", "+-x", "+99999999999999999d"] {
            assert!(
                matches!(schedule(bad, now), Err(Failure::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_local_directory_is_sent_as_an_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            local_repo(dir.path().to_str().unwrap()),
            canonical.display().to_string()
        );
        assert_eq!(
            local_repo("https://github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(local_repo("/no/such/dir"), "/no/such/dir");
    }

    #[test]
    fn config_is_json_or_a_file_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"url": "https://example.com"}"#).unwrap();
        assert_eq!(
            read_config(&format!("@{}", file.display())).unwrap(),
            json!({"url": "https://example.com"})
        );
        assert_eq!(read_config(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        assert!(matches!(read_config("{nope"), Err(Failure::Usage(_))));
        assert!(matches!(
            read_config("@/no/such/file"),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn a_task_id_is_one_plain_segment() {
        assert!(task_id("tsk_01kbx3abc").is_ok());
        for bad in ["", "..", "a/b", "a?b", "tsk 1"] {
            assert!(task_id(bad).is_err(), "{bad}");
        }
    }
}
