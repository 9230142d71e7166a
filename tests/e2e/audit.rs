//! The audit trail end to end: every kind of event of a full flow landing in its own tenant's
//! export only, both export formats, the export's refusals, the hash chain verified by the
//! `provider audit verify` command (database and file) and broken by tampering, and retention.

use base64::{Engine, engine::general_purpose::STANDARD};
use e2e::{Backend, TestServer, binary, both_backends, json, reqwest::StatusCode};
use serde_json::Value;

use crate::refresh::{refresh, signed_in};
use crate::sign_in::World;

const FROM: &str = "2000-01-01T00:00:00Z";
const TO: &str = "2100-01-01T00:00:00Z";

/// Fetches an export; returns status, content type and body.
async fn export(
    s: &TestServer,
    tenant: &str,
    secret: &str,
    query: &str,
) -> (StatusCode, String, String) {
    let response = s
        .http
        .get(s.url(&format!("/a/{tenant}/admin/audit/export?{query}")))
        .header("x-admin-secret", secret)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `provider audit verify` against the server's database; returns exit code and output.
async fn verify(s: &TestServer, tenant: &str, file: Option<&std::path::Path>) -> (i32, String) {
    let key = STANDARD.encode(s.key_encryption_key());
    let url = s.database_url.clone();
    let mut args = vec![
        "audit".to_owned(),
        "verify".to_owned(),
        "--tenant".to_owned(),
        tenant.to_owned(),
    ];
    if let Some(file) = file {
        args.extend(["--file".to_owned(), file.display().to_string()]);
    }
    let output = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env = [
            ("DATABASE_URL", url.as_str()),
            ("KEY_ENCRYPTION_KEY", key.as_str()),
        ];
        binary::run(&args, &env, dir.path(), std::time::Duration::from_secs(60))
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// A second tenant on the same server with some activity of its own.
async fn other_tenant(w: &World) -> (e2e::TestTenant, String) {
    let other = w.s.create_tenant().await;
    let (client_id, secret) =
        w.s.create_client(
            &other,
            json!({ "grant_types": ["client_credentials"], "scope": "read" }),
        )
        .await;
    let issued =
        w.s.form(
            &format!("{}/a/{}/token", w.s.base_url, other.id),
            Some((&client_id, secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    (other, client_id)
}

async fn a_full_flow_lands_in_its_own_tenants_export_only(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let tenant = w.tenant.id.clone();
    // Refresh, then present the rotated token again after the grace window: reuse.
    let old = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&w, &endpoint, old, &[]).await.status,
        StatusCode::OK
    );
    w.s.advance(60);
    assert_eq!(
        refresh(&w, &endpoint, old, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    // Key transitions, session revocation and a failed admin login.
    let keys = format!("/a/{tenant}/admin/keys");
    let staged =
        w.s.post(&keys, Some(&w.tenant.admin_secret), json!({}))
            .await;
    assert_eq!(staged.status, StatusCode::CREATED, "{}", staged.text);
    let revoked =
        w.s.post(
            &format!("/a/{tenant}/admin/revoke/sessions"),
            Some(&w.tenant.admin_secret),
            json!({ "user_id": w.user_id }),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let denied =
        w.s.get(&keys, Some("wrong-secret-wrong-secret-wrong-secret"))
            .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let (other, other_client) = other_tenant(&w).await;

    let (status, content_type, body) = export(
        &w.s,
        &tenant,
        &w.tenant.admin_secret,
        &format!("from={FROM}&to={TO}&format=ndjson"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type, "application/x-ndjson");
    let rows = ndjson(&body);
    let events: Vec<&str> = rows.iter().map(|r| r["event"].as_str().unwrap()).collect();
    for expected in [
        "tenant.created",
        "key.staged",
        "key.activated",
        "client.created",
        "user.created",
        "login.magic_link_sent",
        "login.succeeded",
        "token.issued",
        "token.refreshed",
        "token.reuse_detected",
        "session.revoked",
        "admin.auth_failed",
        "audit.exported",
    ] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
    assert!(
        !body.contains(&other.id) && !body.contains(&other_client),
        "nothing of the other tenant"
    );
    // Rows carry the chain and the request's context, never a secret or a token.
    let reuse = rows
        .iter()
        .find(|r| r["event"] == "token.reuse_detected")
        .unwrap();
    assert_eq!(reuse["client_id"], w.client_id.as_str());
    assert_eq!(reuse["user_id"], w.user_id.as_str());
    assert_eq!(reuse["ip"], "127.0.0.1");
    let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>());
    for r in &rows {
        assert_eq!(r["hash"].as_str().unwrap().len(), 64);
    }
    for secret in [
        old,
        first["access_token"].as_str().unwrap(),
        w.tenant.admin_secret.as_str(),
    ] {
        assert!(!body.contains(secret));
    }
    let email_rows: Vec<&str> = rows
        .iter()
        .filter(|r| r.to_string().contains("ada@example.com"))
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert!(
        email_rows
            .iter()
            .all(|e| ["login.magic_link_sent", "user.created"].contains(e)),
        "emails only in events about that address: {email_rows:?}"
    );

    // The other tenant's export holds its own events and none of this tenant's.
    let (_, _, theirs) = export(
        &w.s,
        &other.id,
        &other.admin_secret,
        &format!("from={FROM}&to={TO}&format=ndjson"),
    )
    .await;
    assert!(theirs.contains("token.issued") && theirs.contains(&other_client));
    assert!(!theirs.contains(&tenant) && !theirs.contains(&w.client_id));

    // Filters, and CSV with its documented columns.
    let (_, _, only) = export(
        &w.s,
        &tenant,
        &w.tenant.admin_secret,
        &format!(
            "from={FROM}&to={TO}&format=ndjson&event=token.issued&client_id={}",
            w.client_id
        ),
    )
    .await;
    let only = ndjson(&only);
    assert!(!only.is_empty());
    assert!(
        only.iter()
            .all(|r| r["event"] == "token.issued" && r["client_id"] == w.client_id.as_str())
    );
    let (status, content_type, csv) = export(
        &w.s,
        &tenant,
        &w.tenant.admin_secret,
        &format!("from={FROM}&to={TO}"),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    assert!(csv.starts_with(
        "seq,time,event,client_id,user_id,ip,user_agent,request_id,details,prev_hash,hash\r\n"
    ));
    assert!(
        csv.lines().count() > rows.len(),
        "one line per row after the header"
    );
    // A window in the past holds nothing.
    let (_, _, empty) = export(
        &w.s,
        &tenant,
        &w.tenant.admin_secret,
        "from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z&format=ndjson",
    )
    .await;
    assert_eq!(empty, "");
}

async fn exports_refuse_bad_bounds_formats_and_other_tenants(s: TestServer) {
    let tenant = s.create_tenant().await;
    let other = s.create_tenant().await;
    for (query, needle) in [
        (
            format!("from=yesterday&to={TO}"),
            "from must be an RFC 3339 time",
        ),
        (
            format!("from=2026-11-01&to={TO}"),
            "from must be an RFC 3339 time",
        ),
        (
            format!("from={FROM}&to=1700000000"),
            "to must be an RFC 3339 time",
        ),
        (format!("from={TO}&to={FROM}"), "from must be before to"),
        (
            format!("from={FROM}&to={TO}&format=xlsx"),
            "format must be csv or ndjson",
        ),
        (format!("to={TO}"), "from"),
        (format!("from={FROM}&to={TO}&colour=blue"), "colour"),
    ] {
        let (status, content_type, body) =
            export(&s, &tenant.id, &tenant.admin_secret, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(content_type.starts_with("application/json"), "{query}");
        assert!(body.contains(needle), "{query}: {body}");
    }
    let (status, _, _) = export(
        &s,
        &tenant.id,
        &other.admin_secret,
        &format!("from={FROM}&to={TO}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = export(&s, &tenant.id, "", &format!("from={FROM}&to={TO}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn the_chain_verifies_and_tampering_shows(backend: Backend) {
    let (w, _, _) = signed_in(backend).await;
    let tenant = w.tenant.id.clone();
    let (code, out) = verify(&w.s, &tenant, None).await;
    // Rows written since the last seal are reported, not verified.
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");

    // An export verifies offline, in either format.
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "ndjson"] {
        let (_, _, body) = export(
            &w.s,
            &tenant,
            &w.tenant.admin_secret,
            &format!("from={FROM}&to={TO}&format={format}"),
        )
        .await;
        let path = dir.path().join(format!("audit.{format}"));
        std::fs::write(&path, &body).unwrap();
        let (code, out) = verify(&w.s, &tenant, Some(&path)).await;
        assert_eq!(code, 0, "{format}: {out}");
        // One changed character in a row's details breaks it.
        let tampered = body.replacen("magic_link", "magic_lunk", 1);
        assert_ne!(tampered, body);
        std::fs::write(&path, tampered).unwrap();
        let (code, out) = verify(&w.s, &tenant, Some(&path)).await;
        assert_eq!(code, 1, "{format}: {out}");
        assert!(out.contains("was altered"), "{out}");
        // Another tenant's name does not verify the file either.
        std::fs::write(&path, &body).unwrap();
        let (code, _) = verify(&w.s, "t-someone-else", Some(&path)).await;
        assert_eq!(code, 1);
    }

    // The database: the sealed chain is whole now; alter one row, then remove one.
    let (code, out) = verify(&w.s, &tenant, None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 not sealed yet"), "{out}");
    let db = w.s.state.store.writer();
    if backend == Backend::Postgres {
        // There a seal is a row of its own: altering it breaks the chain as well.
        let seal = "SELECT hash FROM audit_seals WHERE tenant_id = $1 AND seq = 4";
        let hash: String = sqlx::query_scalar(seal)
            .bind(&tenant)
            .fetch_one(db)
            .await
            .unwrap();
        let set = "UPDATE audit_seals SET hash = $2 WHERE tenant_id = $1 AND seq = 4";
        let forged = "0".repeat(64);
        for (hash, broken) in [(&forged, true), (&hash, false)] {
            let query = sqlx::query(set).bind(&tenant).bind(hash);
            query.execute(db).await.unwrap();
            let (code, out) = verify(&w.s, &tenant, None).await;
            assert_eq!(code, i32::from(broken), "{out}");
            assert_eq!(out.contains("row 4 was altered"), broken, "{out}");
        }
    }
    sqlx::query(
        "UPDATE audit_events SET ip = '203.0.113.9' \
         WHERE id = (SELECT id FROM audit_rows WHERE tenant_id = $1 AND chain_seq = 3)",
    )
    .bind(&tenant)
    .execute(db)
    .await
    .unwrap();
    let (code, out) = verify(&w.s, &tenant, None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("row 3 was altered"), "{out}");
    let remove = "DELETE FROM audit_events \
                  WHERE id = (SELECT id FROM audit_rows WHERE tenant_id = $1 AND chain_seq = 3)";
    sqlx::query(remove).bind(&tenant).execute(db).await.unwrap();
    let (code, out) = verify(&w.s, &tenant, None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rows after 2 are missing"), "{out}");
}

async fn retention_purges_old_rows_and_the_chain_still_verifies(backend: Backend) {
    let (w, _, _) = signed_in(backend).await;
    let tenant = w.tenant.id.clone();
    let path = format!("/admin/tenants/{tenant}");
    let bad =
        w.s.send(
            e2e::reqwest::Method::PATCH,
            &path,
            Some(&w.s.root_secret),
            Some(json!({ "audit_retention_days": -1 })),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let set =
        w.s.send(
            e2e::reqwest::Method::PATCH,
            &path,
            Some(&w.s.root_secret),
            Some(json!({ "audit_retention_days": 30 })),
        )
        .await;
    assert_eq!(set.json["audit_retention_days"], 30, "{}", set.text);
    provider::audit::chain::seal_all(&w.s.state.store, &w.s.state.digester)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_one(w.s.state.store.reader())
        .await
        .unwrap();
    // Nothing is old enough yet.
    let purged = provider::maintenance::purge_once(&w.s.state).await.unwrap();
    assert!(purged.audit_rows.iter().all(|(t, _)| *t != tenant));

    // Thirty-one days on, every row so far goes, and one row says so.
    w.s.advance(31 * 86_400);
    let purged = provider::maintenance::purge_once(&w.s.state).await.unwrap();
    let rows = purged
        .audit_rows
        .iter()
        .find(|(t, _)| *t == tenant)
        .map(|(_, n)| *n);
    assert_eq!(rows, Some(before as u64));
    let events = w.s.audit_events(&tenant, "audit.purged").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["rows"], before);
    // The kept chain starts at the anchor and still verifies.
    let (code, out) = verify(&w.s, &tenant, None).await;
    assert_eq!(code, 0, "{out}");
    // Expired replay-cache and sign-in rows went too.
    assert!(
        purged
            .expired_rows
            .iter()
            .any(|(table, _)| *table == "login_links"),
        "{:?}",
        purged.expired_rows
    );
}

both_backends!(
    a_full_flow_lands_in_its_own_tenants_export_only,
    the_chain_verifies_and_tampering_shows,
    retention_purges_old_rows_and_the_chain_still_verifies,
);

mod refusals {
    e2e::both_databases!(exports_refuse_bad_bounds_formats_and_other_tenants);
    use super::exports_refuse_bad_bounds_formats_and_other_tenants;
}
