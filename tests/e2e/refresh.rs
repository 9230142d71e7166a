//! Refresh tokens: rotation, reuse detection revoking the family and its access tokens, the
//! grace window, concurrent use, lifetimes, scope narrowing and client binding.

use e2e::{Backend, both_backends, json, reqwest::StatusCode};

use crate::sign_in::{REDIRECT, World, browser, pkce, world};

/// A world whose client is public and may refresh.
async fn refreshing_world(backend: Backend) -> World {
    let mut w = world(backend).await;
    let (client_id, _) =
        w.s.create_client(
            &w.tenant,
            json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": "openid email profile offline_access",
            }),
        )
        .await;
    w.client_id = client_id;
    w
}

/// A world whose client may refresh, signed in once: the world, the first token response and
/// the token endpoint.
pub(crate) async fn signed_in(backend: Backend) -> (World, serde_json::Value, String) {
    let w = refreshing_world(backend).await;
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let first = w.redeem(&code, &verifier).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let endpoint = format!("{}/token", w.issuer);
    (w, first.json, endpoint)
}

pub(crate) async fn refresh(
    w: &World,
    endpoint: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> e2e::Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", w.client_id.as_str()),
    ];
    form.extend_from_slice(extra);
    w.s.form(endpoint, None, &form).await
}

async fn userinfo_status(w: &World, access: &str) -> StatusCode {
    w.s.http
        .get(format!("{}/userinfo", w.issuer))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

fn field(reply: &serde_json::Value, name: &str) -> String {
    reply[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .to_owned()
}

async fn tokens_rotate_and_reuse_revokes_the_family(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    assert_eq!(r0.len(), 43, "256 random bits");
    let second = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.header("cache-control"), Some("no-store"));
    let r1 = field(&second.json, "refresh_token");
    assert_ne!(r0, r1, "rotated");
    let a1 = field(&second.json, "access_token");
    assert_eq!(userinfo_status(&w, &a1).await, StatusCode::OK);

    // Inside the grace window the immediate predecessor gets the same answer, minting nothing.
    let retry = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(
        retry.json, second.json,
        "the same successor and access token"
    );
    // After it, presenting r0 again is reuse: the family and its access tokens die.
    w.s.advance(5);
    let reused = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(
        (reused.status, reused.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo_status(&w, &a1).await,
        StatusCode::UNAUTHORIZED,
        "access tokens of the family are revoked"
    );
    assert_eq!(
        userinfo_status(&w, &field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let r1_after = refresh(&w, &endpoint, &r1, &[]).await;
    assert_eq!(
        r1_after.json["error"], "invalid_grant",
        "the live successor died with its family"
    );
    let detected = w.s.audit_events(&w.tenant.id, "token.reuse_detected").await;
    assert_eq!(detected.len(), 1);
    assert_eq!(
        (
            detected[0]["client_id"].as_str(),
            detected[0]["user_id"].as_str()
        ),
        (Some(w.client_id.as_str()), Some(w.user_id.as_str()))
    );
    assert!(detected[0]["ip"].is_string());
}

/// Each family records the browser session its grant was signed in with.
async fn families_record_the_browser_session_of_their_grant(backend: Backend) {
    let (w, _, _) = signed_in(backend).await;
    let linked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_families f JOIN browser_sessions s \
         ON s.tenant_id = f.tenant_id AND s.sid_digest = f.session_digest WHERE f.tenant_id = $1",
    )
    .bind(&w.tenant.id)
    .fetch_one(w.s.state.store.reader())
    .await
    .unwrap();
    assert_eq!(linked, 1);
}

async fn an_older_generation_is_reuse_even_inside_the_grace_window(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let r1 = field(
        &refresh(&w, &endpoint, &r0, &[]).await.json,
        "refresh_token",
    );
    let r2 = field(
        &refresh(&w, &endpoint, &r1, &[]).await.json,
        "refresh_token",
    );
    let old = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(old.json["error"], "invalid_grant");
    assert_eq!(
        refresh(&w, &endpoint, &r2, &[]).await.json["error"],
        "invalid_grant",
        "family revoked"
    );
}

async fn fifty_concurrent_refreshes_leave_one_live_successor(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let http = w.s.http.clone();
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", r0.clone()),
            ("client_id", w.client_id.clone()),
        ];
        let url = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let reply = http.post(url).form(&form).send().await.unwrap();
            let status = reply.status();
            (status, reply.json::<serde_json::Value>().await.unwrap())
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "every retry inside the window is answered: {body}"
        );
        successors.insert(field(&body, "refresh_token"));
    }
    assert_eq!(successors.len(), 1, "one successor for all");
    // The uses that lost the race wrote nothing: one rotation, one successor, one access token.
    let refreshed = w.s.audit_events(&w.tenant.id, "token.refreshed").await;
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    let family = refreshed[0]["details"]["family"].as_str().unwrap();
    for table in ["refresh_tokens", "family_access_tokens"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND family_id = $2");
        let rows: i64 = sqlx::query_scalar(&sql)
            .bind(&w.tenant.id)
            .bind(family)
            .fetch_one(w.s.state.store.reader())
            .await
            .unwrap();
        assert_eq!(rows, 2, "{table}: the first grant's and the rotation's");
    }
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(
        refresh(&w, &endpoint, &successor, &[]).await.status,
        StatusCode::OK
    );
}

async fn lifetimes_scope_narrowing_and_client_binding(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let wider = refresh(&w, &endpoint, &r0, &[("scope", "openid admin")]).await;
    assert_eq!(wider.json["error"], "invalid_scope");
    let narrow = refresh(&w, &endpoint, &r0, &[("scope", "openid")]).await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.text);
    assert_eq!(narrow.json["scope"], "openid");
    let r1 = field(&narrow.json, "refresh_token");
    let target = refresh(
        &w,
        &endpoint,
        &r1,
        &[("resource", "https://elsewhere.example/")],
    )
    .await;
    assert_eq!(target.json["error"], "invalid_target");

    // Another client cannot use the token.
    let (other, _) = w
        .s
        .create_client(&w.tenant, json!({ "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none" }))
        .await;
    let stolen =
        w.s.form(
            &endpoint,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("client_id", &other),
            ],
        )
        .await;
    assert_eq!(stolen.json["error"], "invalid_grant");

    // Unused for 30 days, a refresh token expires.
    w.s.advance(30 * 24 * 3600);
    let idle = refresh(&w, &endpoint, &r1, &[]).await;
    assert_eq!(idle.json["error"], "invalid_grant");
}

async fn clients_without_the_refresh_grant_get_no_refresh_token(backend: Backend) {
    let w = world(backend).await;
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let reply = w.redeem(&code, &verifier).await;
    assert!(reply.json.get("refresh_token").is_none(), "{}", reply.text);
}

/// A confidential client, as a resource server would be, for introspection.
async fn resource_server(w: &World) -> (String, String) {
    let (id, secret) =
        w.s.create_client(&w.tenant, json!({ "grant_types": ["client_credentials"] }))
            .await;
    (id, secret.unwrap())
}

async fn revocation_and_introspection_know_refresh_tokens(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let (rs, rs_secret) = resource_server(&w).await;
    let introspect = |token: String| {
        let (w, rs, rs_secret) = (&w, rs.clone(), rs_secret.clone());
        async move {
            w.s.form(
                &format!("{}/introspect", w.issuer),
                Some((&rs, &rs_secret)),
                &[("token", &token)],
            )
            .await
            .json
        }
    };
    let live = introspect(r0.clone()).await;
    assert_eq!(
        (live["active"].as_bool(), live["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    assert_eq!(live["sub"], w.user_id.as_str());

    // Another client cannot revoke it; its own client revokes the whole family.
    w.s.form(
        &format!("{}/revoke", w.issuer),
        Some((&rs, &rs_secret)),
        &[("token", &r0)],
    )
    .await;
    assert_eq!(introspect(r0.clone()).await["active"], true);
    let revoked =
        w.s.form(
            &format!("{}/revoke", w.issuer),
            None,
            &[("token", &r0), ("client_id", &w.client_id)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(introspect(r0.clone()).await, json!({ "active": false }));
    assert_eq!(
        userinfo_status(&w, &field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&w, &endpoint, &r0, &[]).await.json["error"],
        "invalid_grant"
    );
}

async fn a_disabled_users_refresh_tokens_stop_working_until_enabled(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let (rs, rs_secret) = resource_server(&w).await;
    let introspect = format!("{}/introspect", w.issuer);
    let form = [("token", r0.as_str())];
    let introspected = || w.s.form(&introspect, Some((&rs, &rs_secret)), &form);
    assert_eq!(introspected().await.json["active"], true);

    w.update_user(json!({ "status": "disabled" })).await;
    assert_eq!(introspected().await.json, json!({ "active": false }));
    let refused = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json["error"], "invalid_grant");
    assert_eq!(
        refused.json["error_description"],
        "the user can no longer sign in"
    );

    // Refused, not spent: once the user is enabled again the same token rotates.
    w.update_user(json!({ "status": "active" })).await;
    assert_eq!(introspected().await.json["active"], true);
    let rotated = refresh(&w, &endpoint, &r0, &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_ne!(field(&rotated.json, "refresh_token"), r0);
}

async fn administrators_revoke_one_users_sessions_or_the_whole_tenants(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let r0 = field(&first, "refresh_token");
    let path = format!("/a/{}/admin/revoke/sessions", w.tenant.id);
    let unknown =
        w.s.post(
            &path,
            Some(&w.tenant.admin_secret),
            json!({ "user_id": "nobody" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let one =
        w.s.post(
            &path,
            Some(&w.tenant.admin_secret),
            json!({ "user_id": w.user_id }),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(
        one.json,
        json!({ "refresh_families_revoked": 1, "browser_sessions_ended": 1 })
    );
    assert_eq!(
        refresh(&w, &endpoint, &r0, &[]).await.json["error"],
        "invalid_grant"
    );
    assert_eq!(
        userinfo_status(&w, &field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let events = w.s.audit_events(&w.tenant.id, "session.revoked").await;
    assert_eq!(
        (events.len(), events[0]["user_id"].as_str()),
        (1, Some(w.user_id.as_str()))
    );

    // A fresh sign-in, then the whole tenant, with no body at all.
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let again = w.redeem(&code, &verifier).await;
    let all =
        w.s.send(
            reqwest::Method::POST,
            &path,
            Some(&w.tenant.admin_secret),
            None,
        )
        .await;
    assert_eq!(
        all.json,
        json!({ "refresh_families_revoked": 1, "browser_sessions_ended": 1 })
    );
    assert_eq!(
        refresh(&w, &endpoint, &field(&again.json, "refresh_token"), &[])
            .await
            .json["error"],
        "invalid_grant"
    );
    let nothing_left =
        w.s.send(
            reqwest::Method::POST,
            &path,
            Some(&w.tenant.admin_secret),
            None,
        )
        .await;
    assert_eq!(
        nothing_left.json,
        json!({ "refresh_families_revoked": 0, "browser_sessions_ended": 0 })
    );
}

async fn a_tenant_may_require_offline_access_for_refresh_tokens(backend: Backend) {
    let (w, first, _) = signed_in(backend).await;
    assert!(
        first.get("refresh_token").is_some(),
        "by default the refresh grant suffices"
    );
    let path = format!("/admin/tenants/{}", w.tenant.id);
    let set =
        w.s.send(
            reqwest::Method::PATCH,
            &path,
            Some(&w.s.root_secret),
            Some(json!({ "require_offline_access": true, "refresh_grace_secs": 0 })),
        )
        .await;
    assert_eq!(
        (
            set.json["require_offline_access"].as_bool(),
            set.json["refresh_grace_secs"].as_i64()
        ),
        (Some(true), Some(0)),
        "{}",
        set.text
    );
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let without = w.redeem(&code, &verifier).await;
    assert!(
        without.json.get("refresh_token").is_none(),
        "the request did not ask for offline_access"
    );
    for bad in [
        json!({ "refresh_grace_secs": 61 }),
        json!({ "refresh_idle_secs": 10 }),
        json!({ "refresh_idle_secs": 7200, "refresh_absolute_secs": 3600 }),
    ] {
        let reply =
            w.s.send(
                reqwest::Method::PATCH,
                &path,
                Some(&w.s.root_secret),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn a_family_ends_at_its_absolute_lifetime_however_used(backend: Backend) {
    let (w, _, endpoint) = signed_in(backend).await;
    let path = format!("/admin/tenants/{}", w.tenant.id);
    let set =
        w.s.send(
            reqwest::Method::PATCH,
            &path,
            Some(&w.s.root_secret),
            Some(json!({ "refresh_idle_secs": 3600, "refresh_absolute_secs": 7200 })),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    // The family was created under the old settings; a new one takes the new ones.
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let fresh = w.redeem(&code, &verifier).await;
    let mut token = field(&fresh.json, "refresh_token");
    for _ in 0..2 {
        w.s.advance(3000);
        let next = refresh(&w, &endpoint, &token, &[]).await;
        assert_eq!(
            next.status,
            StatusCode::OK,
            "used within the idle window: {}",
            next.text
        );
        token = field(&next.json, "refresh_token");
    }
    w.s.advance(1300);
    let ended = refresh(&w, &endpoint, &token, &[]).await;
    assert_eq!(
        ended.json["error"], "invalid_grant",
        "7300 s after the grant, though used 1300 s ago"
    );
}

both_backends!(
    a_family_ends_at_its_absolute_lifetime_however_used,
    families_record_the_browser_session_of_their_grant,
    a_tenant_may_require_offline_access_for_refresh_tokens,
    revocation_and_introspection_know_refresh_tokens,
    a_disabled_users_refresh_tokens_stop_working_until_enabled,
    administrators_revoke_one_users_sessions_or_the_whole_tenants,
    tokens_rotate_and_reuse_revokes_the_family,
    an_older_generation_is_reuse_even_inside_the_grace_window,
    fifty_concurrent_refreshes_leave_one_live_successor,
    lifetimes_scope_narrowing_and_client_binding,
    clients_without_the_refresh_grant_get_no_refresh_token,
);

/// RFC 8707 at every step: the resource granted at authorization is the audience; the token
/// request may narrow to it (a pathless resource matches with or without its trailing slash),
/// never widen; refresh the same.
async fn resources_are_checked_at_every_step(backend: Backend) {
    let w = refreshing_world(backend).await;
    let (verifier, challenge) = pkce();
    let resource = "https://mcp.example.com";
    let extra = format!(
        "&resource={}",
        url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
    );
    let code = w.sign_in_with(&browser(), &challenge, &extra).await;
    let endpoint = format!("{}/token", w.issuer);
    let exchange = |resource: &'static str| {
        let (w, code, verifier, endpoint) = (&w, code.clone(), verifier.clone(), endpoint.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
                ("client_id", w.client_id.as_str()),
            ];
            if !resource.is_empty() {
                form.push(("resource", resource));
            }
            w.s.form(&endpoint, None, &form).await
        }
    };
    // Outside the grant: invalid_target, and the code is not spent.
    let outside = exchange("https://other.example.com/").await;
    assert_eq!(outside.json["error"], "invalid_target", "{}", outside.text);
    let tokens = exchange("https://mcp.example.com/").await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let (_, claims) = e2e::jwt::parts(tokens.json["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://mcp.example.com/");
    let refresh_token = field(&tokens.json, "refresh_token");
    let wider = refresh(
        &w,
        &endpoint,
        &refresh_token,
        &[("resource", "https://other.example.com")],
    )
    .await;
    assert_eq!(wider.json["error"], "invalid_target");
    let same = refresh(
        &w,
        &endpoint,
        &refresh_token,
        &[("resource", "https://mcp.example.com")],
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    let (_, claims) = e2e::jwt::parts(same.json["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://mcp.example.com");
}

mod resources {
    e2e::both_backends!(resources_are_checked_at_every_step);
    use super::resources_are_checked_at_every_step;
}
