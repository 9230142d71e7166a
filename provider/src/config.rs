//! Every environment variable the provider reads (SPEC "Process and configuration"), parsed in
//! one place. Each variable goes through a helper that names it in its error, so bad
//! configuration stops start-up with one line saying which variable is wrong.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use url::Url;

/// A configuration problem, always tied to the variable that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// A value that must never be printed; `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `DATABASE_URL`, with its password kept out of `Debug`.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
}

impl DatabaseUrl {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "DATABASE_URL";
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(bad(VAR, "must start with sqlite: or postgres://"));
        };
        if backend == Backend::Postgres {
            let url = Url::parse(raw).map_err(|e| bad(VAR, format!("not a valid URL ({e})")))?;
            if url.host_str().is_none_or(str::is_empty) && !raw.contains("host=") {
                return Err(bad(VAR, "a postgres URL needs a host"));
            }
        } else if Self::sqlite_path_of(raw).is_none() {
            return Err(bad(
                VAR,
                "an sqlite URL needs a file path (in-memory databases lose data)",
            ));
        }
        Ok(Self {
            url: raw.to_owned(),
            backend,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file of an `sqlite:` URL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        Self::sqlite_path_of(&self.url)
    }

    fn sqlite_path_of(raw: &str) -> Option<PathBuf> {
        let rest = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                write!(f, "{url}")
            }
            _ => f.write_str(&self.url),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    pub from: String,
    pub tls: SmtpTls,
}

#[derive(Clone, Debug)]
pub struct SentryConfig {
    pub dsn: Secret<String>,
    pub environment: Option<String>,
    pub traces_sample_rate: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The whole configuration of one provider process.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    /// External base URL without a trailing slash.
    pub public_url: String,
    pub database_url: DatabaseUrl,
    pub redis_url: Option<Secret<String>>,
    pub admin_secret: Option<Secret<String>>,
    pub key_encryption_key: Option<Secret<[u8; 32]>>,
    /// The key being rotated out: values it sealed still open until `provider keys rewrap`.
    pub key_encryption_key_previous: Option<Secret<[u8; 32]>>,
    pub smtp: Option<SmtpConfig>,
    pub sentry: Option<SentryConfig>,
    pub log_format: LogFormat,
    /// Rate-limit ceilings and overrides (`RL_*`, `RL_OVERRIDES_JSON`).
    pub rate_limits: crate::limits::Policies,
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`: addresses or CIDR ranges).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Test-only: hosts whose client metadata documents may be fetched from private addresses
    /// and over plain http (`CLIENT_METADATA_ALLOW_HOSTS`).
    pub client_metadata_allow_hosts: Vec<String>,
    /// A PEM file of certificate authorities trusted for outbound https fetches beside the
    /// built-in web roots (`FETCH_CA_FILE`): a corporate CA, or a test's own.
    pub fetch_ca_file: Option<PathBuf>,
    /// Dev mode (`serve --dev`): seeds the demo tenant and keeps mail in an outbox folder.
    pub dev: bool,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/provider.db?mode=rwc";
/// Shortest `ADMIN_SECRET` accepted: a guessable root secret opens every tenant.
const MIN_ADMIN_SECRET_LEN: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env(dev: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(dev, |name| std::env::var(name).ok())
    }

    /// Reads from a map; what tests use to configure a real server.
    pub fn from_map(dev: bool, vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(dev, |name| vars.get(name).cloned())
    }

    fn from_lookup(
        dev: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // An empty variable counts as unset, as `VAR= provider` would mean.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind = match get("BIND") {
            Some(raw) => raw
                .parse::<SocketAddr>()
                .map_err(|_| bad("BIND", "must be an address like 127.0.0.1:8080"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let public_url = match get("PUBLIC_URL") {
            Some(raw) => parse_public_url(&raw)?,
            None => format!("http://{bind}"),
        };
        let database_url = DatabaseUrl::parse(
            &get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
        )?;
        let redis_url = get("REDIS_URL")
            .map(|raw| {
                redis::Client::open(raw.as_str())
                    .map(|_| Secret::new(raw))
                    .map_err(|e| bad("REDIS_URL", format!("not a valid Redis URL ({e})")))
            })
            .transpose()?;
        let admin_secret = get("ADMIN_SECRET")
            .map(|raw| {
                if raw.len() < MIN_ADMIN_SECRET_LEN {
                    Err(bad(
                        "ADMIN_SECRET",
                        format!("must be at least {MIN_ADMIN_SECRET_LEN} characters"),
                    ))
                } else {
                    Ok(Secret::new(raw))
                }
            })
            .transpose()?;
        let key_encryption_key = get("KEY_ENCRYPTION_KEY")
            .map(|raw| parse_key_encryption_key("KEY_ENCRYPTION_KEY", &raw))
            .transpose()?;
        let key_encryption_key_previous = get("KEY_ENCRYPTION_KEY_PREVIOUS")
            .map(|raw| parse_key_encryption_key("KEY_ENCRYPTION_KEY_PREVIOUS", &raw))
            .transpose()?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(_) => return Err(bad("LOG_FORMAT", "must be json or pretty")),
        };
        let rate_limits = crate::limits::Policies::from_lookup(get)
            .map_err(|(var, message)| bad(var, message))?;
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|raw| parse_trusted_proxies(&raw))
            .transpose()?
            .unwrap_or_default();
        let client_metadata_allow_hosts = get("CLIENT_METADATA_ALLOW_HOSTS")
            .map(|raw| {
                raw.split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let fetch_ca_file = get("FETCH_CA_FILE").map(PathBuf::from);
        Ok(Self {
            bind,
            public_url,
            database_url,
            redis_url,
            admin_secret,
            key_encryption_key,
            key_encryption_key_previous,
            smtp: parse_smtp(&get)?,
            sentry: parse_sentry(&get)?,
            log_format,
            rate_limits,
            trusted_proxies,
            client_metadata_allow_hosts,
            fetch_ca_file,
            dev,
        })
    }

    /// Where dev mode keeps its files: beside the SQLite database, or `./data`.
    pub fn data_dir(&self) -> PathBuf {
        self.database_url
            .sqlite_path()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("./data"))
    }
}

fn parse_public_url(raw: &str) -> Result<String, ConfigError> {
    let url = Url::parse(raw).map_err(|e| bad("PUBLIC_URL", format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "PUBLIC_URL",
            "must be an http or https URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("PUBLIC_URL", "must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_key_encryption_key(
    variable: &'static str,
    raw: &str,
) -> Result<Secret<[u8; 32]>, ConfigError> {
    let bytes = STANDARD
        .decode(raw.trim())
        .map_err(|_| bad(variable, "must be base64 (standard alphabet)"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad(variable, "must decode to exactly 32 bytes"))?;
    Ok(Secret::new(key))
}

fn parse_smtp(get: &impl Fn(&str) -> Option<String>) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = get("SMTP_HOST") else {
        for name in [
            "SMTP_PORT",
            "SMTP_USERNAME",
            "SMTP_PASSWORD",
            "SMTP_FROM",
            "SMTP_TLS",
        ] {
            if get(name).is_some() {
                return Err(ConfigError {
                    variable: "SMTP_HOST",
                    problem: format!("must be set when {name} is"),
                });
            }
        }
        return Ok(None);
    };
    let tls = match get("SMTP_TLS").as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(_) => return Err(bad("SMTP_TLS", "must be none, starttls or tls")),
    };
    let port = match get("SMTP_PORT") {
        Some(raw) => raw
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("SMTP_PORT", "must be a port number"))?,
        None => match tls {
            SmtpTls::Tls => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        },
    };
    let from = get("SMTP_FROM").ok_or_else(|| bad("SMTP_FROM", "must be set when SMTP_HOST is"))?;
    if !from.contains('@') {
        return Err(bad("SMTP_FROM", "must be an email address"));
    }
    let username = get("SMTP_USERNAME");
    let password = get("SMTP_PASSWORD").map(Secret::new);
    if username.is_some() != password.is_some() {
        return Err(bad(
            "SMTP_PASSWORD",
            "SMTP_USERNAME and SMTP_PASSWORD go together",
        ));
    }
    Ok(Some(SmtpConfig {
        host,
        port,
        username,
        password,
        from,
        tls,
    }))
}

/// `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges.
fn parse_trusted_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    bad(
                        "TRUSTED_PROXIES",
                        format!("{part}: not an address or CIDR range (e.g. 10.0.0.0/8)"),
                    )
                })
        })
        .collect()
}

fn parse_sentry(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SentryConfig>, ConfigError> {
    let Some(dsn) = get("SENTRY_DSN") else {
        return Ok(None);
    };
    let url = Url::parse(&dsn).map_err(|_| bad("SENTRY_DSN", "not a valid DSN URL"))?;
    if url.username().is_empty() {
        return Err(bad(
            "SENTRY_DSN",
            "a DSN carries its public key as the user name",
        ));
    }
    let traces_sample_rate = match get("SENTRY_TRACES_SAMPLE_RATE") {
        Some(raw) => raw
            .parse::<f32>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| bad("SENTRY_TRACES_SAMPLE_RATE", "must be a number from 0 to 1"))?,
        None => 0.0,
    };
    Ok(Some(SentryConfig {
        dsn: Secret::new(dsn),
        environment: get("SENTRY_ENVIRONMENT"),
        traces_sample_rate,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_map(false, &vars)
    }

    fn error_variable(pairs: &[(&str, &str)]) -> &'static str {
        config(pairs).unwrap_err().variable
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.database_url.backend(), Backend::Sqlite);
        assert_eq!(c.data_dir(), PathBuf::from("./data"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.smtp.is_none() && c.sentry.is_none() && c.redis_url.is_none());
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let c = config(&[("PUBLIC_URL", "https://id.example.com/")]).unwrap();
        assert_eq!(c.public_url, "https://id.example.com");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        assert_eq!(error_variable(&[("BIND", "nope")]), "BIND");
        assert_eq!(error_variable(&[("PUBLIC_URL", "ftp://x")]), "PUBLIC_URL");
        assert_eq!(
            error_variable(&[("DATABASE_URL", "mysql://x")]),
            "DATABASE_URL"
        );
        assert_eq!(
            error_variable(&[("DATABASE_URL", "sqlite::memory:")]),
            "DATABASE_URL"
        );
        assert_eq!(error_variable(&[("REDIS_URL", "http://x")]), "REDIS_URL");
        assert_eq!(error_variable(&[("ADMIN_SECRET", "short")]), "ADMIN_SECRET");
        assert_eq!(
            error_variable(&[("KEY_ENCRYPTION_KEY", "abc")]),
            "KEY_ENCRYPTION_KEY"
        );
        assert_eq!(error_variable(&[("LOG_FORMAT", "xml")]), "LOG_FORMAT");
        assert_eq!(error_variable(&[("SMTP_PORT", "25")]), "SMTP_HOST");
        assert_eq!(error_variable(&[("SMTP_HOST", "mail")]), "SMTP_FROM");
        let smtp = [("SMTP_HOST", "mail"), ("SMTP_FROM", "id@example.com")];
        assert_eq!(
            error_variable(&[smtp[0], smtp[1], ("SMTP_TLS", "ssl")]),
            "SMTP_TLS"
        );
        assert_eq!(
            error_variable(&[smtp[0], smtp[1], ("SMTP_PORT", "0")]),
            "SMTP_PORT"
        );
        assert_eq!(error_variable(&[("SENTRY_DSN", "nope")]), "SENTRY_DSN");
        let dsn = ("SENTRY_DSN", "https://key@o1.ingest.example/1");
        assert_eq!(
            error_variable(&[dsn, ("SENTRY_TRACES_SAMPLE_RATE", "2")]),
            "SENTRY_TRACES_SAMPLE_RATE"
        );
    }

    #[test]
    fn key_encryption_key_is_32_bytes_of_base64() {
        let key = STANDARD.encode([7u8; 32]);
        let c = config(&[("KEY_ENCRYPTION_KEY", &key)]).unwrap();
        assert_eq!(c.key_encryption_key.unwrap().expose(), &[7u8; 32]);
        let short = STANDARD.encode([7u8; 16]);
        assert_eq!(
            error_variable(&[("KEY_ENCRYPTION_KEY", &short)]),
            "KEY_ENCRYPTION_KEY"
        );
    }

    #[test]
    fn smtp_defaults_to_starttls_on_587() {
        let c = config(&[("SMTP_HOST", "mail"), ("SMTP_FROM", "id@example.com")]).unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!((smtp.tls, smtp.port), (SmtpTls::StartTls, 587));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = config(&[
            ("DATABASE_URL", "postgres://app:hunter2hunter2@db/provider"),
            ("ADMIN_SECRET", "root-secret-root-secret-root-secret"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("root-secret"), "{printed}");
    }
}
