//! `helpline`: parses the command line, sets up logging, loads the configuration and runs the
//! command. Every failure is one line on stderr and a non-zero exit, never a panic.

#![allow(clippy::print_stderr)] // Errors for the operator go to stderr.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use helpline_gateway::commands::{self, CliError};
use helpline_router::accounts::NewAccount;
use helpline_router::Role;

/// mimalloc instead of glibc malloc: a relayed message allocates and frees many small buffers
/// (frames, JSON, Redis replies), which glibc served slowly (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "helpline",
    version,
    about = "Anonymous web chat, Telegram and SMS gateway for a Child Help Line"
)]
struct Cli {
    /// The configuration file (else HELPLINE_CONFIG, else defaults); HELPLINE_… variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway until SIGTERM/SIGINT.
    Serve,
    /// A single-machine demo with demo accounts (starts a private redis-server if none answers).
    Demo,
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Master key versions: rotate, status.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The audit log: export.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Exit 0 when the gateway on this machine answers /healthz (for container health checks).
    Health,
    /// What the helpline holds: the disclosure drill.
    #[command(subcommand)]
    Privacy(PrivacyCmd),
}

#[derive(Subcommand)]
enum PrivacyCmd {
    /// Print what the helpline holds now, by category, with the oldest item of each; exit 1 when
    /// anything is older than its retention period. Read-only.
    Report {
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create an account; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = commands::parse_role)]
        role: Role,
        /// Languages and topics, comma separated (e.g. ro,ru,online-safety).
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
        #[arg(long)]
        capacity: Option<u32>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account (its sessions end at their next request).
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Enrol (or replace) an account's one-time-code secret (TOTP) and print it once.
    Totp {
        #[arg(long)]
        username: String,
    },
    /// Unlock an account locked after too many failed logins.
    Unlock {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Write the audit log as JSON lines, oldest first (itself recorded as `audit.export`).
    Export {
        /// The first moment to include: RFC 3339 / ISO 8601 (2026-01-31T00:00:00Z) or ms since
        /// the epoch.
        #[arg(long)]
        since: Option<String>,
        /// The last moment to include, in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// Write to this file (created mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Add the next master key version to security.master_keys_dir, make it active and re-wrap
    /// every conversation data key under it (messages are not re-encrypted).
    Rotate {
        /// Conversations read from Redis at a time.
        #[arg(long, default_value_t = helpline_router::rotation::DEFAULT_BATCH)]
        batch: usize,
        /// Write no new version: re-wrap under the highest version already in the directory
        /// (after an interrupted rotation, or a key file distributed to every node beforehand).
        #[arg(long)]
        rewrap_only: bool,
    },
    /// Show the active master key version and how many data keys each version wraps.
    Status {
        /// Conversations read from Redis at a time.
        #[arg(long, default_value_t = helpline_router::rotation::DEFAULT_BATCH)]
        batch: usize,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration and print it with secrets redacted (exit 2 on any error).
    Check,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return;
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("helpline: {first} (see `helpline --help`)");
            std::process::exit(2);
        }
    };
    init_tracing();
    if let Err(e) = run(cli) {
        eprintln!("helpline: {e}");
        std::process::exit(e.exit_code());
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HELPLINE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("HELPLINE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The node's runtime: `threads` workers (`server.threads`), or one per core for 0.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let path = cli.config.as_deref();
    if let Cmd::Config(ConfigCmd::Check) = cli.command {
        return commands::config_check(path);
    }
    let config = commands::load_config(path)?;
    if let Cmd::Health = cli.command {
        return commands::health(&config);
    }
    let runtime = runtime(config.server.threads)?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Serve => commands::serve(config).await,
            Cmd::Demo => commands::demo(config).await,
            Cmd::User(UserCmd::Add {
                username,
                role,
                skills,
                capacity,
                display_name,
                ..
            }) => {
                let skills = skills.into_iter().filter(|s| !s.is_empty()).collect();
                let new = NewAccount {
                    username,
                    role,
                    skills,
                    capacity,
                    display_name,
                };
                commands::user_add(&config, new).await
            }
            Cmd::User(UserCmd::List) => commands::user_list(&config).await,
            Cmd::User(UserCmd::Disable { username }) => {
                commands::user_disable(&config, &username).await
            }
            Cmd::User(UserCmd::Totp { username }) => commands::user_totp(&config, &username).await,
            Cmd::User(UserCmd::Unlock { username }) => {
                commands::user_unlock(&config, &username).await
            }
            Cmd::Audit(AuditCmd::Export { since, until, out }) => {
                commands::audit_export(&config, since.as_deref(), until.as_deref(), out).await
            }
            Cmd::Keys(KeysCmd::Rotate { batch, rewrap_only }) => {
                commands::keys_rotate(&config, batch, rewrap_only).await
            }
            Cmd::Keys(KeysCmd::Status { batch }) => commands::keys_status(&config, batch).await,
            Cmd::Config(ConfigCmd::Check) => commands::config_check(path),
            Cmd::Health => commands::health(&config),
            Cmd::Privacy(PrivacyCmd::Report { json }) => {
                commands::privacy_report(&config, json).await
            }
        }
    })
}
