//! The CLI's commands (CONTRACT.md section 1). Each returns a [`CliError`] whose one line is what
//! an operator reads; `main` prints it and exits non-zero.

#![allow(clippy::print_stdout)] // A command's output is its purpose.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use helpline_config::{Config, ConfigError, ProcessEnv, Secret};
use helpline_router::accounts::NewAccount;
use helpline_router::audit::CLI_ACTOR;
use helpline_router::vault::Vault;
use helpline_router::{totp, Accounts, AuditAction, AuditFilter, AuditLog, Role, RouterError};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::server::ServeError;

/// A command's failure, as one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Serve(#[from] ServeError),
    #[error("{0}")]
    Router(#[from] RouterError),
    #[error("{0}")]
    Store(#[from] helpline_router::StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("unhealthy: {0}")]
    Unhealthy(String),
    #[error("{0}")]
    Overdue(String),
}

impl CliError {
    /// 2 for configuration and usage errors (as `config check` promises), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Loads and validates the configuration from `path` (or `HELPLINE_CONFIG`) and the environment.
pub fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    Ok(helpline_config::load(path, &ProcessEnv)?)
}

/// `helpline serve`: runs until SIGTERM/SIGINT.
pub async fn serve(config: Config) -> Result<(), CliError> {
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::shutdown_signal(shutdown.clone()));
    crate::run(config, shutdown).await?;
    Ok(())
}

/// `helpline health`: exit 0 when the gateway on this machine answers `/healthz` (container
/// health checks; the runtime image has no curl).
pub fn health(config: &Config) -> Result<(), CliError> {
    crate::health::check(&config.server.listen).map_err(CliError::Unhealthy)
}

/// `helpline config check`: prints the effective configuration with secrets redacted.
pub fn config_check(path: Option<&Path>) -> Result<(), CliError> {
    let config = load_config(path)?;
    println!("# configuration is valid; effective values (secrets redacted):");
    print!("{}", config.redacted_toml());
    Ok(())
}

async fn accounts(config: &Config) -> Result<Accounts, CliError> {
    let store = helpline_router::connect_store(config).await?;
    Ok(Accounts::new(store, config))
}

/// `helpline user add`: the password comes on standard input (one line).
pub async fn user_add(config: &Config, new: NewAccount) -> Result<(), CliError> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| {
            CliError::Usage(format!("cannot read the password from standard input: {e}"))
        })?;
    let password = password.trim_end_matches(['\r', '\n']);
    let account = accounts(config).await?.add(new, password).await?;
    println!("created {} ({})", account.username, account.role.as_str());
    Ok(())
}

/// `helpline user list`.
pub async fn user_list(config: &Config) -> Result<(), CliError> {
    for (a, disabled) in accounts(config).await?.list().await? {
        let state = if disabled { "disabled" } else { "active" };
        println!(
            "{}\t{}\t{}\tskills={}\tcapacity={}\t{}",
            a.username,
            a.role.as_str(),
            state,
            a.skills.join(","),
            a.capacity,
            a.display_name
        );
    }
    Ok(())
}

/// `helpline user disable`.
pub async fn user_disable(config: &Config, username: &str) -> Result<(), CliError> {
    accounts(config).await?.disable(username, CLI_ACTOR).await?;
    println!("disabled {username}");
    Ok(())
}

/// `helpline user unlock`.
pub async fn user_unlock(config: &Config, username: &str) -> Result<(), CliError> {
    accounts(config).await?.unlock(username, CLI_ACTOR).await?;
    println!("unlocked {username}");
    Ok(())
}

/// `helpline user totp`: enrols a new TOTP secret and prints it, the only time it is shown.
pub async fn user_totp(config: &Config, username: &str) -> Result<(), CliError> {
    let secret = enrol_totp(config, username).await?;
    println!(
        "one-time codes enrolled for {username}; add this to their authenticator app now (it is \
         not shown again; run this command again to replace it):"
    );
    println!("  {}", totp::otpauth_uri(username, &secret));
    println!("  secret (base32): {}", totp::base32(&secret));
    Ok(())
}

/// Enrols a TOTP secret for `username` (audited as the command line's).
async fn enrol_totp(config: &Config, username: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let vault = Vault::new(helpline_router::rotation::load_master_keys(config)?);
    let accounts = accounts(config).await?.with_vault(vault);
    Ok(accounts.enrol_totp(username, CLI_ACTOR).await?)
}

/// A moment given as RFC 3339 (an ISO 8601 profile: `2026-01-31T00:00:00Z`) or ms since the epoch.
fn parse_moment(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            CliError::Usage(format!(
                "--{flag} {text:?} is not a time: give RFC 3339 such as 2026-01-31T00:00:00Z, or \
                 ms since the epoch"
            ))
        })
}

/// Entries read from Redis per page of the export.
const EXPORT_PAGE: usize = 1000;

/// `helpline audit export`: JSON lines, oldest first, paging through the stream; recorded as
/// `audit.export` before the first line is written, so even an interrupted export is on record.
pub async fn audit_export(
    config: &Config,
    since: Option<&str>,
    until: Option<&str>,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    use std::io::Write;
    let filter = AuditFilter {
        since_ms: since.map(|s| parse_moment("since", s)).transpose()?,
        until_ms: until.map(|s| parse_moment("until", s)).transpose()?,
        ..AuditFilter::default()
    };
    let log = AuditLog::new(helpline_router::connect_store(config).await?);
    let why = format!(
        "export since {} until {}",
        since.unwrap_or("the start"),
        until.unwrap_or("now")
    );
    log.record(CLI_ACTOR, AuditAction::AuditExport, "", &why)
        .await?;
    let write_err = |e: std::io::Error| CliError::Usage(format!("cannot write the export: {e}"));
    let mut writer: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(open_private(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut cursor: Option<String> = None;
    let mut count = 0u64;
    loop {
        let (entries, next) = log
            .page_after(&filter, cursor.as_deref(), EXPORT_PAGE)
            .await?;
        for e in &entries {
            writeln!(writer, "{}", crate::api::audit_json(e)).map_err(write_err)?;
            count += 1;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.flush().map_err(write_err)?;
    drop(writer);
    if let Some(path) = out {
        println!("exported {count} audit entries to {}", path.display());
    }
    Ok(())
}

/// Parses a role name for the CLI.
pub fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "role must be counsellor, supervisor, admin or auditor".into())
}

/// `helpline demo`: the configured Redis, or a private `redis-server` under `./data/`; a master key
/// under `./data/`; demo accounts; then the gateway until Ctrl-C.
pub async fn demo(mut config: Config) -> Result<(), CliError> {
    let data = PathBuf::from("data");
    std::fs::create_dir_all(&data)
        .map_err(|e| CliError::Usage(format!("cannot create ./data: {e}")))?;
    let mut redis_child = None;
    if helpline_router::connect_store(&config).await.is_err() {
        let (child, url) = start_private_redis(&data)?;
        println!("started a private redis-server (AOF on, data in ./data/redis) at {url}");
        config.redis.url = Secret::new(url);
        redis_child = Some(ChildGuard(child));
    }
    if config.security.master_key.is_none()
        && config.security.master_key_file.is_none()
        && config.security.master_keys_dir.is_none()
    {
        let file = data.join("master.key");
        if !file.exists() {
            write_private(&file, &random_key_b64())?;
        }
        config.security.master_key_file = Some(file.display().to_string());
    }
    let passwords = demo_accounts(&config, &data).await?;
    let base = config.server.public_url.trim_end_matches('/').to_owned();
    println!("\nhelpline demo\n  contact chat:   {base}/\n  counsellor:     {base}/console\n  supervisor:     {base}/supervisor\n  metrics:        {base}/metrics\n");
    println!("demo accounts (also in ./data/demo-accounts.txt):\n{passwords}");
    println!("press Ctrl-C to stop");
    let result = serve(config).await;
    drop(redis_child);
    result
}

/// Kills the private Redis when the demo ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_private_redis(data: &Path) -> Result<(Child, String), CliError> {
    let dir = data.join("redis");
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Usage(format!("no free port for redis-server: {e}")))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", ""])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|_| {
            CliError::Usage(
                "no Redis answers and redis-server is not installed: run `sudo apt-get install redis-server` (or set HELPLINE_REDIS__URL)".into(),
            )
        })?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return Err(CliError::Usage(format!(
                "redis-server did not start on port {port}; see {}",
                dir.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok((child, format!("redis://127.0.0.1:{port}")))
}

fn random_key_b64() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Creates (or truncates) a file only its owner may read (mode 0600).
fn open_private(path: &Path) -> Result<std::fs::File, CliError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

fn write_private(path: &Path, content: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut f = open_private(path)?;
    f.write_all(content.as_bytes())
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

/// Creates the demo accounts once; their passwords live in `./data/demo-accounts.txt`.
async fn demo_accounts(config: &Config, data: &Path) -> Result<String, CliError> {
    let file = data.join("demo-accounts.txt");
    let accounts = accounts(config).await?;
    if file.exists() && !accounts.list().await?.is_empty() {
        return std::fs::read_to_string(&file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())));
    }
    let people = [
        ("ana", Role::Counsellor, "ro,ru", "Ana"),
        ("ion", Role::Counsellor, "ro,en", "Ion"),
        ("olena", Role::Counsellor, "uk,ru,en", "Olena"),
        (
            "maria",
            Role::Supervisor,
            "ro,ru,uk,en",
            "Maria (supervisor)",
        ),
        ("audit", Role::Auditor, "", "Auditor"),
    ];
    let mut lines = String::new();
    for (name, role, skills, display) in people {
        let password = random_key_b64()[..16].to_owned();
        let new = NewAccount {
            username: name.into(),
            role,
            skills: skills
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            capacity: None,
            display_name: Some(display.into()),
        };
        match accounts.add(new, &password).await {
            Ok(_) => {
                lines.push_str(&format!(
                    "  {name:<6} {:<11} password {password}\n",
                    role.as_str()
                ));
                // Roles in security.totp_roles need a code: enrol one and show it like the password.
                if accounts.totp_required(role) {
                    let secret = enrol_totp(config, name).await?;
                    lines.push_str(&format!(
                        "         one-time codes (add to an authenticator app): {}\n",
                        totp::otpauth_uri(name, &secret)
                    ));
                }
            }
            Err(RouterError::Refused("exists", _)) => {
                lines.push_str(&format!("  {name:<6} exists (password unchanged)\n"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if config.security.totp_roles.is_empty() {
        lines.push_str("  one-time codes (TOTP) are off: security.totp_roles is empty\n");
    }
    write_private(&file, &lines)?;
    Ok(lines)
}

/// How long a rotation waits after announcing the new version, so running nodes (which check
/// every second) wrap new data keys under it before the re-wrap passes begin.
const ROTATION_SETTLE: std::time::Duration = std::time::Duration::from_millis(2500);

/// `helpline keys rotate`: adds the next master key version to `security.master_keys_dir` (unless
/// `rewrap_only`: then the highest version already there is the new one), makes it active and
/// re-wraps every data key under it, printing progress after every batch.
pub async fn keys_rotate(config: &Config, batch: usize, rewrap_only: bool) -> Result<(), CliError> {
    use helpline_router::rotation::{load_master_keys, Rotation};
    use helpline_router::vault::Vault;

    let Some(dir) = config.security.master_keys_dir.as_deref() else {
        return Err(CliError::Usage(
            "keys rotate needs versioned master keys: move the current master key into a \
             directory as v1.key (mode 0600) and set security.master_keys_dir \
             (HELPLINE_SECURITY__MASTER_KEYS_DIR) to it instead of master_key/master_key_file"
                .into(),
        ));
    };
    let current = Vault::new(load_master_keys(config)?);
    let store = helpline_router::connect_store(config).await?;
    let version = if rewrap_only {
        current.active_version()
    } else {
        let version = current.active_version().saturating_add(1);
        let key = current.random_master_key().map_err(RouterError::from)?;
        let path = helpline_config::write_master_key(Path::new(dir), version, &key)?;
        println!(
            "wrote master key version {version} to {} (back it up with the others; every node \
             must see it)",
            path.display()
        );
        version
    };
    let vault = Vault::new(load_master_keys(config)?);
    if vault.active_version() != version {
        return Err(CliError::Usage(format!(
            "master key version {version} was written but version {} is the highest in {dir}; \
             remove the stray higher version file and run `helpline keys rotate --rewrap-only`",
            vault.active_version()
        )));
    }
    let rotation = Rotation::new(store, vault);
    println!(
        "version {version} is active; waiting {} ms for running nodes to switch",
        ROTATION_SETTLE.as_millis()
    );
    let done = rotation
        .rewrap_all(batch.max(1), ROTATION_SETTLE, |p| {
            println!(
                "pass {}: {} conversations scanned, {} data keys re-wrapped, {} already on version \
                 {version}, {} erased meanwhile",
                p.pass, p.scanned, p.rewrapped, p.current, p.gone
            );
        })
        .await?;
    let counts = rotation.counts(batch.max(1)).await?;
    let old: u64 = counts
        .per_version
        .iter()
        .filter(|(v, _)| **v != version)
        .map(|(_, n)| n)
        .sum();
    if old > 0 {
        return Err(CliError::Usage(format!(
            "{old} data keys are still wrapped under older versions after {} passes; a node \
             probably lacks v{version}.key: copy it to every node and run `helpline keys rotate \
             --rewrap-only`",
            done.pass
        )));
    }
    println!(
        "done: every data key is wrapped under master key version {version}; an older key \
         file may be deleted once `helpline keys status` shows 0 data keys for it"
    );
    Ok(())
}

/// `helpline keys status`: the active master key version and how many data keys each version
/// wraps.
pub async fn keys_status(config: &Config, batch: usize) -> Result<(), CliError> {
    use helpline_router::rotation::{load_master_keys, Rotation};
    use helpline_router::vault::Vault;

    let vault = Vault::new(load_master_keys(config)?);
    let store = helpline_router::connect_store(config).await?;
    let rotation = Rotation::new(store, vault);
    let counts = rotation.counts(batch.max(1)).await?;
    let loaded = rotation.vault().loaded_versions();
    let list = |v: &[u32]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("active version: {}", rotation.vault().active_version());
    println!("loaded versions: {}", list(&loaded));
    let mut versions: Vec<u32> = loaded.clone();
    versions.extend(counts.per_version.keys());
    versions.sort_unstable();
    versions.dedup();
    for v in versions {
        let n = counts.per_version.get(&v).copied().unwrap_or(0);
        let note = if loaded.contains(&v) {
            ""
        } else {
            " (not loaded: these conversations cannot be read here)"
        };
        println!("version {v}: {n} data keys{note}");
    }
    if counts.unreadable > 0 {
        println!("not a wrapped data key: {}", counts.unreadable);
    }
    Ok(())
}

/// `helpline privacy report [--json]`: what the helpline holds now, by category (counts and the
/// oldest item, never a value), data keys by master key version, and every retention period
/// overrun; exit 1 with one line when anything is held past its period.
pub async fn privacy_report(config: &Config, json: bool) -> Result<(), CliError> {
    let store = helpline_router::connect_store(config).await?;
    let now = helpline_router::conversation::now_ms();
    let report = helpline_router::privacy::report(&store, config, now).await?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Usage(format!("cannot write the report as JSON: {e}")))?;
        println!("{text}");
    } else {
        println!("privacy report at {}", report.at);
        for c in &report.categories {
            match &c.oldest {
                Some(oldest) => println!("{}: {} (oldest {oldest})", c.name, c.count),
                None => println!("{}: {}", c.name, c.count),
            }
        }
        for (version, n) in &report.data_keys {
            println!("data_keys.{version}: {n}");
        }
        for line in &report.overdue {
            println!("OVERDUE: {line}");
        }
        if report.compliant() {
            println!("nothing is held past its retention period");
        }
    }
    if report.compliant() {
        Ok(())
    } else {
        Err(CliError::Overdue(format!(
            "{} retention periods overrun; is every node's retention sweep running?",
            report.overdue.len()
        )))
    }
}
