//! Client libraries nobody here wrote, against the provider and the relying party's protected
//! API: each discovers everything from the API's `resource_metadata` challenge, registers
//! itself, signs the person in by magic link (the test plays the browser, reading the real
//! SMTP sink), exchanges the code, calls the API, refreshes with rotation and sees a replayed
//! refresh token refused. The programs live under `interop/`; `scripts/test` installs their
//! pinned dependencies.

use e2e::interop::{Stage, check_outcome, with_metadata_document};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_typescript_sdk_v1() {
    let stage = Stage::start(&[]).await;
    let result = stage.run("node", "node", &["mcp-sdk-v1.mjs"], &[]).await;
    assert_eq!(result["issuer"], stage.issuer.as_str());
    assert_eq!(result["resource"], stage.resource.as_str());
    check_outcome(&stage, &result, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_typescript_sdk_v2() {
    let stage = Stage::start(&[]).await;
    let result = stage.run("node", "node", &["mcp-client-v2.mjs"], &[]).await;
    assert_eq!(result["issuer"], stage.issuer.as_str());
    assert_eq!(result["resource"], stage.resource.as_str());
    assert!(
        result["scope"].as_str().unwrap().contains("offline_access"),
        "{result}"
    );
    check_outcome(&stage, &result, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panva_oauth4webapi() {
    let stage = Stage::start(&[]).await;
    let result = stage.run("node", "node", &["oauth4webapi.mjs"], &[]).await;
    assert_eq!(result["issuer"], stage.issuer.as_str());
    assert_eq!(result["email"], e2e::interop::EMAIL);
    check_outcome(&stage, &result, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panva_openid_client() {
    let stage = Stage::start(&[]).await;
    let result = stage.run("node", "node", &["openid-client.mjs"], &[]).await;
    assert_eq!(result["issuer"], stage.issuer.as_str());
    assert_eq!(result["email"], e2e::interop::EMAIL);
    check_outcome(&stage, &result, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk() {
    let stage = Stage::start(&[]).await;
    let python = e2e::interop::interop_dir().join("python/.venv/bin/python");
    let python = python.to_str().unwrap();
    let result = stage.run("python", python, &["mcp_client.py"], &[]).await;
    assert_eq!(result["issuer"], stage.issuer.as_str());
    assert_eq!(result["resource"], stage.resource.as_str());
    check_outcome(&stage, &result, None).await;
    // The stale connector signed the person in again: two codes, two families.
    let signed_in = stage
        .s
        .audit_events(&stage.tenant.id, "login.succeeded")
        .await;
    assert_eq!(signed_in.len(), 2, "{signed_in:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_typescript_sdk_v2_with_a_metadata_document() {
    let (stage, document, _server) = with_metadata_document().await;
    let env = [("CLIENT_METADATA_URL", document.as_str())];
    let result = stage
        .run("node", "node", &["mcp-client-v2.mjs"], &env)
        .await;
    check_outcome(&stage, &result, Some(&document)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_typescript_sdk_v1_with_a_metadata_document() {
    let (stage, document, _server) = with_metadata_document().await;
    let env = [("CLIENT_METADATA_URL", document.as_str())];
    let result = stage.run("node", "node", &["mcp-sdk-v1.mjs"], &env).await;
    check_outcome(&stage, &result, Some(&document)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_with_a_metadata_document() {
    let (stage, document, _server) = with_metadata_document().await;
    let python = e2e::interop::interop_dir().join("python/.venv/bin/python");
    let env = [("CLIENT_METADATA_URL", document.as_str())];
    let result = stage
        .run("python", python.to_str().unwrap(), &["mcp_client.py"], &env)
        .await;
    check_outcome(&stage, &result, Some(&document)).await;
}
