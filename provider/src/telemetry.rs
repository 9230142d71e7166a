//! Logs: JSON (or pretty) lines through `tracing`, with every email address redacted on its way
//! out, whatever field or message it hides in.

use std::io::{self, Write};

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{LevelFilter, Targets},
    fmt::{self, MakeWriter},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// Installs logging; with `sentry`, also the layers that feed Sentry (see `reporting`).
pub fn init(format: LogFormat, sentry: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(RedactingStdout)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_writer(RedactingStdout).boxed(),
    };
    let errors = sentry.then(|| ErrorLayer::new().with_filter(LevelFilter::ERROR));
    // sqlx logs each statement's SQL (never its parameters) at debug under `sqlx::query`.
    let breadcrumbs = sentry.then(|| {
        BreadcrumbLayer::new().with_filter(
            Targets::new()
                .with_default(Level::INFO)
                .with_target("sqlx::query", Level::DEBUG),
        )
    });
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(errors)
        .with(breadcrumbs)
        .try_init();
}

/// Standard output, with each formatted event passed through `email::redact`.
#[derive(Clone, Copy, Debug)]
struct RedactingStdout;

impl<'a> MakeWriter<'a> for RedactingStdout {
    type Writer = RedactingWriter<io::Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(io::stdout())
    }
}

/// The formatter hands over one whole event per `write`, so redaction sees complete addresses.
#[derive(Debug)]
struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::email::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_redacts_addresses() {
        let mut writer = RedactingWriter(Vec::new());
        writer
            .write_all(b"{\"email\":\"ada@example.com\"}\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(writer.0).unwrap(),
            "{\"email\":\"***@example.com\"}\n"
        );
    }
}
