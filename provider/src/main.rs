//! The `provider` binary: `serve` (the default, `--dev` for the newcomer's mode), `migrate`,
//! `keys rewrap`, `backup` and `audit verify`.
//! Bad configuration stops it with one line naming the variable.

use std::{process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use provider::{
    clock::{Clock, SystemClock},
    config::Config,
    dev, startup, telemetry,
};

/// jemalloc: glibc's allocator cost more per request and kept more resident under load, and
/// mimalloc kept more resident at rest (`bench/RESULTS.md`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "provider",
    version,
    about = "Multi-tenant OpenID Connect / OAuth 2 provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Seed the demo tenant and the relying party's client; keep mail in the data folder.
        #[arg(long)]
        dev: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Signing-key maintenance.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a consistent copy of the SQLite database to a new file while the server runs
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// Where the copy goes; it must not exist yet.
        path: std::path::PathBuf,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check a tenant's hash chain, in the database or in an exported file (CSV or NDJSON);
    /// exits 1 when it is broken.
    Verify {
        /// The tenant (`_system` for failures against unknown tenants).
        #[arg(long)]
        tenant: String,
        /// An export of that tenant's trail, instead of the database.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Seal every stored secret again with KEY_ENCRYPTION_KEY, opening each with it or with
    /// KEY_ENCRYPTION_KEY_PREVIOUS.
    Rewrap,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve { dev: false });
    let dev = matches!(command, Command::Serve { dev: true });
    let config = match Config::from_env(dev) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    // Sentry first, so the logging layers that feed it find its client.
    let _sentry = provider::reporting::init(&config);
    telemetry::init(config.log_format, config.sentry.is_some());
    let result = match command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Keys {
            command: KeysCommand::Rewrap,
        } => rewrap(&config).await,
        Command::Backup { path } => backup(&config, &path).await,
        Command::Audit {
            command: AuditCommand::Verify { tenant, file },
        } => match verify_audit(&config, &tenant, file.as_deref()).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&format!("{err:#}")),
    }
}

/// One line on standard error, whatever the error's own text holds.
fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    let line = err.to_string().replace(['\n', '\r'], " ");
    eprintln!("provider: {line}");
    ExitCode::from(2)
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    store.close().await;
    println!("migrations applied");
    Ok(())
}

async fn rewrap(config: &Config) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    let keyring = startup::keyring(config)?;
    let report = provider::rewrap::rewrap(&store, &keyring).await?;
    store.close().await;
    println!(
        "rewrapped {} instance secret(s) and {} signing key(s) under key {}; {} already current",
        report.instance_secrets,
        report.signing_keys,
        keyring.current_key_id(),
        report.already_current
    );
    Ok(())
}

async fn backup(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    if config.database_url.backend() != provider::config::Backend::Sqlite {
        anyhow::bail!(
            "DATABASE_URL: backups of PostgreSQL are taken with pg_dump (see docs/RUNBOOK.md)"
        );
    }
    if path.exists() {
        anyhow::bail!("{}: already exists", path.display());
    }
    let target = path
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", path.display()))?;
    let store = startup::open_store(config).await?;
    store.backup_to(target).await?;
    store.close().await;
    println!("backup written to {}", path.display());
    Ok(())
}

/// Prints what the chain covers; false when it is broken.
async fn verify_audit(
    config: &Config,
    tenant: &str,
    file: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    use provider::audit::{chain, file as export};
    let store = startup::open_store(config).await?;
    let digester = startup::digester(config, &store, SystemClock.unix()).await?;
    let (result, unsealed) = match file {
        None => {
            let result = chain::verify_stored(&store, &digester, tenant).await?;
            let unsealed = provider::store::audit::unsealed_count(store.reader(), tenant).await?;
            (result, unsealed)
        }
        Some(path) => {
            let input = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut verifier = chain::Verifier::selection(&digester, tenant);
            let mut broken = None;
            for row in export::read(std::io::BufReader::new(input))? {
                let row = row.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                if let Err(err) = verifier.push(&row) {
                    broken = Some(err);
                    break;
                }
            }
            (broken.map_or_else(|| Ok(verifier.finish()), Err), 0)
        }
    };
    store.close().await;
    match result {
        Ok(verified) => {
            let range = match (verified.first_seq, verified.last_seq) {
                (Some(first), Some(last)) => format!(" (seq {first} to {last})"),
                _ => String::new(),
            };
            println!(
                "audit chain of {tenant} intact: {} rows{range}, {} gaps, {unsealed} not sealed yet",
                verified.rows, verified.gaps
            );
            Ok(true)
        }
        Err(broken) => {
            eprintln!("provider: audit chain of {tenant} broken: {broken}");
            Ok(false)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = startup::build_state(config, Arc::new(SystemClock)).await?;
    if state.config.dev {
        dev::seed(&state).await?;
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("BIND: cannot listen on {bind}: {e}"))?;
    tracing::info!(%bind, public_url = %state.config.public_url, "listening");
    let store = state.store.clone();
    let rotation = provider::keys::rotation::spawn(state.clone());
    let maintenance = provider::maintenance::spawn(state.clone());
    startup::serve(listener, state, startup::shutdown_signal()).await?;
    rotation.abort();
    maintenance.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
