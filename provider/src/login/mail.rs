//! Mail: messages are sealed into the outbox in the transaction that decides to send them; a
//! background sender delivers them over SMTP (lettre; STARTTLS, TLS or plain), or in dev mode
//! writes them to the outbox folder. Retries back off; after `MAX_ATTEMPTS` a message is given up.

use std::{path::PathBuf, sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::MultiPart,
    transport::smtp::authentication::Credentials,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::{
    clock::Clock,
    config::{Config, SmtpTls},
    crypto::Keyring,
    store::{Store, StoreResult, Tx, outbox},
};

const AAD: &[u8] = b"mail-outbox";
const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed message is left to its sender before another may try.
const LEASE_SECS: i64 = 60;
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// The sender looks for due mail at least this often, and at once when mail is queued.
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Dev mode: each message becomes an `.eml` file in this folder.
    Folder(PathBuf),
}

/// Queues and sends mail. Absent (`None` in `AppState`) when neither SMTP nor dev mode is set.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: String,
    keyring: Keyring,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// SMTP when `SMTP_HOST` is set, the dev outbox folder in dev mode, otherwise none.
    pub fn from_config(config: &Config, keyring: Keyring) -> anyhow::Result<Option<Self>> {
        let wake = Arc::new(Notify::new());
        if let Some(smtp) = &config.smtp {
            let builder = match smtp.tls {
                SmtpTls::None => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                }
                SmtpTls::StartTls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                        .map_err(|e| anyhow::anyhow!("SMTP_HOST: {e}"))?
                }
                SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                    .map_err(|e| anyhow::anyhow!("SMTP_HOST: {e}"))?,
            };
            let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
            if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                builder =
                    builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
            }
            return Ok(Some(Self {
                transport: Transport::Smtp(builder.build()),
                from: smtp.from.clone(),
                keyring,
                wake,
            }));
        }
        if config.dev {
            let folder = config.data_dir().join("outbox");
            std::fs::create_dir_all(&folder)?;
            let from = "sign-in@localhost.localdomain".to_owned();
            return Ok(Some(Self {
                transport: Transport::Folder(folder),
                from,
                keyring,
                wake,
            }));
        }
        Ok(None)
    }

    /// Queues `mail` to `recipient` inside `tx`; it leaves once the transaction commits.
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        tenant_id: &str,
        recipient: &str,
        mail: &Mail,
        now: i64,
    ) -> StoreResult<()> {
        let json = serde_json::to_vec(mail).unwrap_or_default();
        let sealed = self.keyring.seal(&json, AAD);
        outbox::enqueue(&mut **tx, tenant_id, recipient, &sealed, now).await
    }

    /// Wakes the sender; call after committing queued mail.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn deliver(&self, recipient: &str, mail: &Mail, id: i64) -> Result<(), String> {
        let message = Message::builder()
            .from(self.from.parse().map_err(|e| format!("SMTP_FROM: {e}"))?)
            .to(recipient.parse().map_err(|e| format!("recipient: {e}"))?)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Transport::Folder(folder) => {
                let path = folder.join(format!("{id:08}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// One pass over due mail; returns how many were sent.
    pub async fn send_due(&self, store: &Store, clock: &dyn Clock) -> StoreResult<usize> {
        let now = clock.unix();
        let mut sent = 0;
        for queued in outbox::due(store.reader(), now, 20).await? {
            if !outbox::claim(store.writer(), queued.id, now, now + LEASE_SECS).await? {
                continue;
            }
            let outcome = match self.keyring.open(&queued.sealed, AAD) {
                Ok(json) => match serde_json::from_slice::<Mail>(&json) {
                    Ok(mail) => self.deliver(&queued.recipient, &mail, queued.id).await,
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    outbox::sent(store.writer(), queued.id, clock.unix()).await?;
                    sent += 1;
                }
                Err(error) => {
                    tracing::warn!(id = queued.id, tenant = %queued.tenant_id, error, "mail not sent");
                    let attempts = queued.attempts + 1;
                    let retry_at =
                        (attempts < MAX_ATTEMPTS).then(|| clock.unix() + 30 * attempts * attempts);
                    outbox::failed(store.writer(), queued.id, &error, retry_at, clock.unix())
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// Sends due mail until the process stops: at once when woken, else every `POLL`.
    pub fn spawn_sender(self, store: Store, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(err) = self.send_due(&store, clock.as_ref()).await {
                    tracing::warn!(error = %err, "mail outbox unavailable");
                }
                let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
            }
        })
    }
}
