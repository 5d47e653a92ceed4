//! `pj`: the command line of Pithy Jaunt.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod client;
mod config;
mod serve;

#[derive(Parser)]
#[command(
    name = "pj",
    version,
    about = "Pithy Jaunt: plain-words change requests to pull requests"
)]
struct Cli {
    #[command(flatten)]
    global: client::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole backend in one process on the embedded store.
    Serve {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Where the database, secrets, runner workspaces and email outbox live.
        #[arg(long, default_value = "./.pj")]
        data_dir: PathBuf,
    },
    #[command(flatten)]
    Client(client::Command),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let mut spec = std::env::var("PJ_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    // chromiumoxide warns of every DevTools event its protocol version does not know, on every
    // page of every browser task; its errors still show, and a directive of the operator's for
    // it is kept.
    if !spec.contains("chromiumoxide") {
        spec.push_str(",chromiumoxide=error");
    }
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PJ_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Makes this process non-dumpable: another process of the same user (a runner's child, say)
/// can then neither read its `/proc/<pid>/environ` or memory nor attach to it. The server holds
/// the master secret and every credential of the deployment.
fn forbid_inspection() {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not make the server non-dumpable"
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (global, command) = match cli.command {
        Command::Serve { listen, data_dir } => return serve_main(&listen, &data_dir),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pj", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Client(command) => (cli.global, command),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pj: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(client::run(&global, command)) {
        Ok(client::Outcome::Done) => ExitCode::SUCCESS,
        Ok(client::Outcome::TaskEndedOtherwise) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("pj: {failure}");
            if let Some(hint) = failure.hint(&global) {
                eprintln!("pj: {hint}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

fn serve_main(listen: &str, data_dir: &std::path::Path) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pj: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        forbid_inspection();
        let data_dir = serve::absolute(data_dir)?;
        serve::serve(listen, &data_dir).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pj: {e:#}");
            ExitCode::from(1)
        }
    }
}
