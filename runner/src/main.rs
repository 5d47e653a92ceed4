//! `pj-runner`: the Pithy Jaunt runner binary.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pj_runner::patch::{self, ApplyOptions, DEFAULT_MAX_FILE_BYTES, Outcome, Report};

#[derive(Debug, Parser)]
#[command(name = "pj-runner", version, about = "The Pithy Jaunt runner")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one attempt of a task from the contract's runner environment: clone, edit with the
    /// model, push, open the pull request, and report back with signed callbacks and logs.
    Run,
    /// Apply an LLM-produced edit (unified diff, git diff or search/replace blocks) to a
    /// working tree, all or nothing. Prints one JSON report. Exit 0: applied (with --check:
    /// would apply); 1: rejected, tree unchanged; 2: usage or I/O error.
    ApplyPatch(ApplyPatchArgs),
}

#[derive(Debug, Args)]
struct ApplyPatchArgs {
    /// The working tree to change.
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The model's reply holding the edit; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    patch: PathBuf,
    /// Only report whether the edit applies; write nothing.
    #[arg(long)]
    check: bool,
    /// Allow changes under .github/workflows/.
    #[arg(long)]
    allow_workflows: bool,
    /// Refuse files larger than this many bytes, before or after the edit.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli.command {
        Command::Run => pj_runner::agent::main(),
        Command::ApplyPatch(args) => apply_patch(&args),
    }
}

/// Clap's own message on stderr and its exit code; for `apply-patch`, the JSON report too, since
/// callers read stdout.
fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        // --help and --version: not an error.
        e.exit();
    }
    let _ = e.print();
    if std::env::args().nth(1).as_deref() == Some("apply-patch") {
        // The message without the usage lines that follow it, on one line.
        let text = e.render().to_string();
        let message: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let message = message.join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        println!("{}", Report::failure(Outcome::Error, message).to_json());
    }
    ExitCode::from(2)
}

fn apply_patch(args: &ApplyPatchArgs) -> ExitCode {
    let report = match read_reply(&args.patch) {
        Ok(reply) => {
            let options = ApplyOptions {
                check: args.check,
                allow_workflows: args.allow_workflows,
                max_file_bytes: args.max_file_bytes,
            };
            patch::apply_reply(&args.repo, &reply, &options)
        }
        Err(error) => Report::failure(Outcome::Error, error),
    };
    println!("{}", report.to_json());
    if report.outcome != Outcome::Applied {
        // For a person at a terminal; programs read the JSON.
        eprint!("{}", report.feedback());
    }
    ExitCode::from(u8::try_from(report.exit_code()).unwrap_or(2))
}

fn read_reply(path: &PathBuf) -> Result<String, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read the patch from standard input: {e}"))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read the patch {}: {e}", path.display()))?
    };
    String::from_utf8(bytes).map_err(|_| "the patch is not valid UTF-8".to_string())
}
