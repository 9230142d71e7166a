//! The end-to-end harness every feature's tests use: a `TestServer` runs the real router on
//! `127.0.0.1:0` against a fresh SQLite file or a fresh PostgreSQL database, with helpers for the
//! admin API. `both_databases!` runs each test against both backends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations
)]

pub mod agent;
pub mod binary;
pub mod browser;
pub mod interop;
pub mod jwt;
pub mod pg;
pub mod redis;
pub mod sentry;
pub mod smtp;
pub mod tls;

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use provider::{AppState, clock::ManualClock, config::Config, startup};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use reqwest;
pub use serde_json::json;

/// Runs `$name(server)` once on SQLite and once on PostgreSQL, as `sqlite::$name` and
/// `postgres::$name`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestServer::start($crate::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestServer::start($crate::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

/// Runs `$name(backend)` once with `Backend::Sqlite` and once with `Backend::Postgres`, for
/// tests that start their servers themselves.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test server keeps its data; held only so that dropping the server removes it.
#[allow(dead_code)]
enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(pg::FreshDatabase),
    External,
}

/// A real provider router serving on loopback, with its own database.
pub struct TestServer {
    pub base_url: String,
    pub http: reqwest::Client,
    pub root_secret: String,
    pub backend: Backend,
    pub state: AppState,
    /// The server's clock: it starts at the real time and moves only when a test moves it.
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    key_encryption_key: String,
    extra_env: Vec<(String, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _database: Database,
}

/// A tenant made for one test, with its admin secret.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: String,
    pub admin_secret: String,
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The admin error code, asserting the admin error shape.
    pub fn admin_error(&self) -> &str {
        assert!(
            self.json["message"].is_string(),
            "not an admin error: {}",
            self.text
        );
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", self.text))
    }
}

pub fn random_key_b64() -> String {
    STANDARD.encode(rand::random::<[u8; 32]>())
}

/// A short random suffix for names that must be unique across parallel tests.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts a server with extra environment variables.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Self {
        let (database, url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/provider.db?mode=rwc", dir.path().display());
                (Database::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let db = pg::FreshDatabase::create().await;
                let url = db.url.clone();
                (Database::Postgres(db), url)
            }
        };
        Self::launch(backend, database, url, env).await
    }

    /// Starts a server that sends its mail to a fresh SMTP server on loopback.
    pub async fn start_with_mail(backend: Backend) -> (Self, smtp::SmtpSink) {
        Self::start_with_mail_and(backend, &[]).await
    }

    /// Like `start_with_mail`, with extra environment variables.
    pub async fn start_with_mail_and(
        backend: Backend,
        extra: &[(&str, &str)],
    ) -> (Self, smtp::SmtpSink) {
        let sink = smtp::SmtpSink::start().await;
        let env = sink.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        (Self::start_with(backend, &env).await, sink)
    }

    /// Starts a server on a PostgreSQL database the test manages itself.
    pub async fn start_on(database_url: &str, env: &[(&str, &str)]) -> Self {
        let url = database_url.to_owned();
        Self::launch(Backend::Postgres, Database::External, url, env).await
    }

    /// A second server on this one's database and key encryption key, with a clock of its own:
    /// another replica behind the same load balancer.
    pub async fn replica(&self) -> Self {
        self.replica_with(&[]).await
    }

    /// A replica with some environment variables changed.
    pub async fn replica_with(&self, changed: &[(&str, &str)]) -> Self {
        let mut env: Vec<(&str, &str)> = self
            .extra_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !changed.iter().any(|(c, _)| c == k))
            .collect();
        env.extend_from_slice(changed);
        env.push(("KEY_ENCRYPTION_KEY", self.key_encryption_key.as_str()));
        let url = self.database_url.clone();
        Self::launch(self.backend, Database::External, url, &env).await
    }

    #[allow(clippy::disallowed_methods)] // the manual clock starts at the real time
    async fn launch(
        backend: Backend,
        database: Database,
        url: String,
        env: &[(&str, &str)],
    ) -> Self {
        let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let root_secret = provider::crypto::random_secret();
        let key_encryption_key = env
            .iter()
            .find(|(k, _)| *k == "KEY_ENCRYPTION_KEY")
            .map_or_else(random_key_b64, |(_, v)| (*v).to_owned());
        let mut vars: HashMap<String, String> = [
            ("BIND", listener.local_addr().unwrap().to_string()),
            ("PUBLIC_URL", base_url.clone()),
            ("DATABASE_URL", url.clone()),
            ("ADMIN_SECRET", root_secret.clone()),
            ("KEY_ENCRYPTION_KEY", key_encryption_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = Config::from_map(false, &vars).expect("test configuration");
        let state = startup::build_state(config, clock.clone())
            .await
            .expect("server state");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            startup::serve(listener, serve_state, stopped)
                .await
                .unwrap();
        });
        Self {
            base_url,
            http: reqwest::Client::builder().build().unwrap(),
            root_secret,
            backend,
            state,
            clock,
            database_url: url,
            key_encryption_key,
            extra_env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            shutdown: Some(shutdown),
            task: Some(task),
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional admin secret and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(secret) = secret {
            request = request.header("x-admin-secret", secret);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, secret: Option<&str>) -> Reply {
        self.send(Method::GET, path, secret, None).await
    }

    pub async fn post(&self, path: &str, secret: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, secret, Some(body)).await
    }

    /// A new tenant with a unique id, created with the root secret.
    pub async fn create_tenant(&self) -> TestTenant {
        let id = unique("t");
        let reply = self
            .post(
                "/admin/tenants",
                Some(&self.root_secret),
                json!({ "id": id }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        TestTenant {
            id,
            admin_secret: reply.json["admin_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// The server's `KEY_ENCRYPTION_KEY`, decoded.
    pub fn key_encryption_key(&self) -> [u8; 32] {
        STANDARD
            .decode(&self.key_encryption_key)
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }

    /// The tenant's discovery document, from the RFC 8414 path-insertion URL.
    pub async fn discover(&self, tenant: &str) -> Value {
        let reply = self
            .get(
                &format!("/.well-known/oauth-authorization-server/a/{tenant}"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    /// Registers a client through the admin API; returns its id and secret (if any).
    pub async fn create_client(
        &self,
        tenant: &TestTenant,
        metadata: Value,
    ) -> (String, Option<String>) {
        let path = format!("/a/{}/admin/clients", tenant.id);
        let reply = self.post(&path, Some(&tenant.admin_secret), metadata).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let secret = reply.json["client_secret"].as_str().map(str::to_owned);
        (reply.json["client_id"].as_str().unwrap().to_owned(), secret)
    }

    /// POSTs a form to an absolute URL, with HTTP Basic client credentials when given.
    pub async fn form(
        &self,
        url: &str,
        basic: Option<(&str, &str)>,
        params: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.post(url).form(params);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        read(request.send().await.unwrap()).await
    }

    /// The tenant's audit rows of one event, oldest first.
    pub async fn audit_events(&self, tenant: &str, event: &str) -> Vec<Value> {
        let path = format!("/a/{tenant}/admin/audit?event={event}&limit=1000");
        let reply = self.get(&path, Some(&self.root_secret)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["items"].as_array().unwrap().clone()
    }

    /// Stops serving and waits for the server task to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.state.store.close().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}
