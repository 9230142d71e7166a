//! The example relying party: a web app that signs people in against the provider with the
//! `openidconnect` crate (`web`, `oidc`), and an API it protects with the provider's access
//! tokens (`resource`). `app` puts them on one router.

pub mod config;
pub mod oidc;
pub mod resource;
pub mod web;

use std::sync::Arc;

use axum::Router;

/// The whole relying party: the web app and its protected API.
pub fn app(settings: config::Settings) -> Router {
    let settings = Arc::new(settings);
    let api = resource::Settings {
        resource: settings.resource(),
        issuer: settings.issuer.clone(),
        jwks_uri: format!("{}/jwks.json", settings.issuer),
    };
    web::router(settings)
        .merge(resource::router(api))
        .layer(sentry::integrations::tower::NewSentryLayer::new_from_top())
        .layer(sentry::integrations::tower::SentryHttpLayer::new())
}
