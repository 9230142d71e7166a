//! Discovery at the four SPEC paths, the 404 at the origin root, and CORS where SPEC wants it.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};

async fn metadata_is_served_at_all_four_paths(s: TestServer) {
    let t = s.create_tenant().await;
    let issuer = format!("{}/a/{}", s.base_url, t.id);
    let paths = [
        format!("/a/{}/.well-known/openid-configuration", t.id),
        format!("/a/{}/.well-known/oauth-authorization-server", t.id),
        format!("/.well-known/oauth-authorization-server/a/{}", t.id),
        format!("/.well-known/openid-configuration/a/{}", t.id),
    ];
    let mut documents = Vec::new();
    for path in &paths {
        let reply = s.get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json["issuer"], issuer, "{path}");
        documents.push(reply.json);
    }
    assert!(
        documents.windows(2).all(|w| w[0] == w[1]),
        "one document everywhere"
    );
    let doc = &documents[0];
    for field in [
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    ] {
        let url = doc[field].as_str().unwrap();
        assert!(url.starts_with(&issuer), "{field} under the issuer: {url}");
    }
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(!doc.to_string().contains("null"));
}

async fn advertised_endpoints_exist(s: TestServer) {
    let t = s.create_tenant().await;
    let doc = s.discover(&t.id).await;
    let jwks = s
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    for field in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let reply = s.form(doc[field].as_str().unwrap(), None, &[]).await;
        assert!(
            reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::UNAUTHORIZED,
            "{field}: {}",
            reply.status
        );
        assert!(
            reply.json["error"].is_string(),
            "{field} answers RFC 6749 JSON"
        );
    }
    let userinfo = s
        .http
        .get(doc["userinfo_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
}

async fn unknown_tenants_and_the_origin_root_have_no_metadata(s: TestServer) {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/a/nobody-here",
        "/a/nobody-here/.well-known/openid-configuration",
        "/a/Bad_Id/jwks.json",
    ] {
        assert_eq!(
            s.get(path, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

async fn metadata_and_token_endpoints_answer_cors_but_admin_does_not(s: TestServer) {
    let t = s.create_tenant().await;
    let doc = s.discover(&t.id).await;
    let origin = "https://connector.example";
    let get = s
        .http
        .get(s.url(&format!(
            "/.well-known/oauth-authorization-server/a/{}",
            t.id
        )))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()["access-control-allow-origin"], "*");
    assert!(
        get.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    for field in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        let preflight = s
            .http
            .request(reqwest::Method::OPTIONS, doc[field].as_str().unwrap())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, dpop, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{field}: {}",
            preflight.status()
        );
        assert_eq!(
            preflight.headers()["access-control-allow-origin"],
            "*",
            "{field}"
        );
        let allowed = preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        for header in [
            "authorization",
            "content-type",
            "dpop",
            "mcp-protocol-version",
        ] {
            assert!(
                allowed.contains(header),
                "{field} allows {header}: {allowed}"
            );
        }
    }

    let admin = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            s.url(&format!("/a/{}/admin/clients", t.id)),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(admin.headers().get("access-control-allow-origin").is_none());
    let admin_get = s
        .http
        .get(s.url(&format!("/a/{}/admin/clients", t.id)))
        .header("origin", origin)
        .header("x-admin-secret", &t.admin_secret)
        .send()
        .await
        .unwrap();
    assert!(
        admin_get
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

both_databases!(
    metadata_is_served_at_all_four_paths,
    advertised_endpoints_exist,
    unknown_tenants_and_the_origin_root_have_no_metadata,
    metadata_and_token_endpoints_answer_cors_but_admin_does_not,
);
