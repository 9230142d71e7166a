//! `GET /metrics` (SPEC "Service endpoints"): the recorder's counters and histograms, then
//! gauges read from this server's database and pools at scrape time. Not for the public
//! internet: keep it to the scraper's network (README "Metrics").

use std::fmt::Write;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{monitoring, state::AppState, store::keys};

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = match monitoring::handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    if let Err(err) = scrape_gauges(&state, &mut text).await {
        tracing::warn!(error = %err, "metrics gauges could not be read");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn scrape_gauges(state: &AppState, out: &mut String) -> crate::store::StoreResult<()> {
    let counts = keys::count_by_state(state.store.reader()).await?;
    gauge_header(out, "signing_keys", "Signing keys per tenant and state.");
    let mut tenants: Vec<&str> = counts.iter().map(|(t, _, _)| t.as_str()).collect();
    tenants.dedup();
    for tenant in tenants {
        for key_state in ["staged", "active", "retired", "revoked"] {
            let n = counts
                .iter()
                .find(|(t, s, _)| t == tenant && s == key_state)
                .map_or(0, |(_, _, n)| *n);
            let _ = writeln!(
                out,
                "signing_keys{{tenant=\"{tenant}\",state=\"{key_state}\"}} {n}"
            );
        }
    }
    let pending = crate::store::outbox::pending_count(state.store.reader()).await?;
    gauge_header(
        out,
        "mail_outbox_pending",
        "Sign-in mails waiting to be sent.",
    );
    let _ = writeln!(out, "mail_outbox_pending {pending}");
    gauge_header(
        out,
        "db_pool_connections",
        "Database connections by pool and use.",
    );
    // Connections kept warm between reads are idle too, though sqlx counts them as taken.
    let warm = state.store.reader().warm();
    // SQLite reads have their own pool; PostgreSQL has one pool for both.
    let pools = if state.store.backend() == crate::config::Backend::Sqlite {
        vec![
            ("writer", state.store.writer(), 0),
            ("reader", state.store.reader().pool(), warm),
        ]
    } else {
        vec![("writer", state.store.writer(), warm)]
    };
    for (name, pool, warm) in pools {
        let idle = pool.num_idle() + warm;
        let busy = (pool.size() as usize).saturating_sub(idle);
        let _ = writeln!(
            out,
            "db_pool_connections{{pool=\"{name}\",state=\"idle\"}} {idle}"
        );
        let _ = writeln!(
            out,
            "db_pool_connections{{pool=\"{name}\",state=\"busy\"}} {busy}"
        );
    }
    Ok(())
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}
