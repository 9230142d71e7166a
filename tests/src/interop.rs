//! The stage the interop suites play on, and the driver for client programs written with
//! libraries nobody here wrote (under `interop/` at the top of the repository).
//!
//! A stage is a provider with a tenant, one person (`ada@example.com`) and mail going to the
//! SMTP sink, plus the relying party's protected API on its own port. A client program gets
//! the API's URL in `API_URL` and talks over its standard streams, one line at a time:
//! - it prints `authorize <url>` when its library wants the browser sent somewhere; the
//!   driver signs the person in at that URL (`agent::sign_in`) and answers with the URL the
//!   provider sends the browser back to;
//! - it prints `later <seconds>` to let time pass on the provider's clock (past the refresh
//!   grace window, say); the driver answers `ok`;
//! - it prints `result <json>` with what it saw, and exits 0 when every check of its own held.
//!
//! Anything else it prints is kept for the failure message.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use relying_party::resource::{self, Settings};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

use crate::{Backend, TestServer, TestTenant, agent, json, smtp::SmtpSink, tls::HttpsServer};

/// The person who signs in.
pub const EMAIL: &str = "ada@example.com";

/// How long a client program may run in all.
const LIMIT: Duration = Duration::from_secs(120);

pub struct Stage {
    pub s: TestServer,
    pub mail: SmtpSink,
    pub tenant: TestTenant,
    pub issuer: String,
    /// The protected API a client calls: `{rp}/api/notes`.
    pub api: String,
    /// The API's resource identifier, which its tokens name in `aud`: `{rp}/api`.
    pub resource: String,
    pub user_id: String,
}

impl Stage {
    /// A provider on SQLite with `env`, a tenant open to dynamic registration, its person, and
    /// the protected API.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let (s, mail) = TestServer::start_with_mail_and(Backend::Sqlite, env).await;
        let tenant = s.create_tenant().await;
        let user = s
            .post(
                &format!("/a/{}/admin/users", tenant.id),
                Some(&tenant.admin_secret),
                json!({ "email": EMAIL, "name": "Ada" }),
            )
            .await;
        assert!(user.status.is_success(), "{}", user.text);
        let issuer = format!("{}/a/{}", s.base_url, tenant.id);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rp = format!("http://{}", listener.local_addr().unwrap());
        let settings = Settings {
            resource: format!("{rp}/api"),
            issuer: issuer.clone(),
            jwks_uri: format!("{issuer}/jwks.json"),
        };
        let discovered = s.discover(&tenant.id).await;
        assert_eq!(discovered["jwks_uri"], settings.jwks_uri.as_str());
        let app = resource::router(settings);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Stage {
            user_id: user.json["user_id"].as_str().unwrap().to_owned(),
            s,
            mail,
            tenant,
            issuer,
            api: format!("{rp}/api/notes"),
            resource: format!("{rp}/api"),
        }
    }

    /// Runs `program args` in `interop/{dir}` with `API_URL` and `env`, signing the person in
    /// whenever it asks; returns its `result` once it has exited 0.
    pub async fn run(
        &self,
        dir: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Value {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(interop_dir().join(dir))
            .env("API_URL", &self.api)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!("{program} could not start ({e}); ./scripts/test installs it")
        });
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            stderr.read_to_string(&mut text).await.ok();
            text
        });
        let conversation = async {
            let mut result = None;
            let mut said = Vec::new();
            while let Some(line) = stdout.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("authorize ") {
                    let back = agent::sign_in(url, EMAIL, &self.mail).await;
                    stdin
                        .write_all(format!("{back}\n").as_bytes())
                        .await
                        .unwrap();
                    stdin.flush().await.unwrap();
                } else if let Some(seconds) = line.strip_prefix("later ") {
                    self.s.advance(seconds.parse().unwrap());
                    stdin.write_all(b"ok\n").await.unwrap();
                    stdin.flush().await.unwrap();
                } else if let Some(json) = line.strip_prefix("result ") {
                    result = Some(serde_json::from_str::<Value>(json).unwrap());
                } else {
                    said.push(line);
                }
            }
            (result, said, child.wait().await.unwrap())
        };
        let (result, said, status) = tokio::time::timeout(LIMIT, conversation)
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} still running after {LIMIT:?}"));
        let errors = errors.await.unwrap();
        assert!(
            status.success(),
            "{program} {args:?} failed ({status}):\n{}\n{errors}",
            said.join("\n")
        );
        result.unwrap_or_else(|| panic!("{program} {args:?} reported no result:\n{errors}"))
    }
}

/// What every suite's result must show: the person, signed in through `client_id`, which is
/// `document` when the client named its metadata document or else a client the provider
/// registered, and the replay that revoked the family.
pub async fn check_outcome(stage: &Stage, result: &Value, document: Option<&str>) {
    assert_eq!(result["subject"], stage.user_id.as_str(), "{result}");
    let client_id = result["client_id"].as_str().unwrap();
    let registered = stage
        .s
        .audit_events(&stage.tenant.id, "client.created")
        .await;
    match document {
        Some(url) => {
            assert_eq!(client_id, url);
            assert!(registered.is_empty(), "nothing registered: {registered:?}");
        }
        None => assert!(
            registered.iter().any(|e| e.to_string().contains(client_id)),
            "{client_id} registered itself: {registered:?}"
        ),
    }
    let reuse = stage
        .s
        .audit_events(&stage.tenant.id, "token.reuse_detected")
        .await;
    assert_eq!(reuse.len(), 1, "one replay detected: {reuse:?}");
    assert!(reuse[0].to_string().contains(client_id), "{reuse:?}");
}

/// A stage whose provider trusts an https server on loopback that serves a connector's
/// client ID metadata document; returns the stage, the document's URL and the server.
pub async fn with_metadata_document() -> (Stage, String, HttpsServer) {
    let path = "/oauth/connector.json";
    let document = Arc::new(Mutex::new(Value::Null));
    let served = document.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::get(move || {
            let body = served.lock().unwrap().clone();
            async move { axum::Json(body) }
        }),
    );
    let server = HttpsServer::start(app).await;
    let url = format!("{}{path}", server.base_url);
    *document.lock().unwrap() = json!({
        "client_id": url,
        "client_name": "MCP connector with a metadata document",
        "redirect_uris": ["http://127.0.0.1:9/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "notes:read offline_access",
    });
    let ca_file = server.ca_file.to_str().unwrap().to_owned();
    let env = [
        ("FETCH_CA_FILE", ca_file.as_str()),
        ("CLIENT_METADATA_ALLOW_HOSTS", "localhost"),
    ];
    (Stage::start(&env).await, url, server)
}

/// `interop/` at the top of the repository.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop")
}
