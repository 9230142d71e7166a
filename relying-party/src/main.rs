//! The example relying party's binary: `cargo run -p relying-party`. Configured by the
//! environment (see `config.rs` and the README); with none, it works against the provider's
//! dev mode on this machine.

use relying_party::config::Settings;
use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

fn main() -> std::process::ExitCode {
    let settings =
        match Settings::from_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty())) {
            Ok(settings) => settings,
            Err(err) => {
                eprintln!("relying-party: {err}");
                return std::process::ExitCode::from(2);
            }
        };
    // Sentry starts before the runtime so that it sees everything; errors logged through
    // tracing become events, the rest breadcrumbs.
    let _sentry = settings.sentry_dsn.as_deref().map(|dsn| {
        let mut options = sentry::ClientOptions::new().send_default_pii(false);
        options.dsn = dsn.parse().ok();
        options.release = sentry::release_name!();
        sentry::init(options)
    });
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer())
        .with(ErrorLayer::new().with_filter(LevelFilter::ERROR))
        .with(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("relying-party: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> std::process::ExitCode {
    let listener = match tokio::net::TcpListener::bind(&settings.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "relying-party: RP_BIND: cannot listen on {}: {err}",
                settings.bind
            );
            return std::process::ExitCode::from(2);
        }
    };
    eprintln!(
        "relying-party: {} signs in with {} as client {}",
        settings.public_url, settings.issuer, settings.client_id
    );
    // Ctrl-C in a terminal, SIGTERM from a container runtime: finish what is in flight.
    let shutdown = async {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match axum::serve(listener, relying_party::app(settings))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("relying-party: {err}");
            std::process::ExitCode::from(1)
        }
    }
}
