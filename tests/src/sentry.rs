//! A Sentry ingestion endpoint on loopback: it accepts envelopes at `/api/{project}/envelope/`
//! as a Sentry server would and keeps each one's text, so tests can read what a process sent.

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, routing::post};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Default)]
pub struct SentrySink {
    port: u16,
    envelopes: Arc<Mutex<Vec<String>>>,
}

impl SentrySink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            port: listener.local_addr().unwrap().port(),
            envelopes: Arc::default(),
        };
        let app = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .with_state(sink.envelopes.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sink
    }

    /// The DSN that sends here.
    pub fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/1", self.port)
    }

    pub fn envelopes(&self) -> Vec<String> {
        self.envelopes.lock().unwrap().clone()
    }

    /// Waits until an envelope contains `needle`, or fails the test after ten seconds.
    pub async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(found) = self.envelopes().into_iter().find(|e| e.contains(needle)) {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "no envelope with {needle:?} within 10 s: {:?}",
            self.envelopes()
        );
    }
}

async fn receive(State(envelopes): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> &'static str {
    envelopes
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    "{}"
}
