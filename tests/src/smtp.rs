//! A real SMTP server on loopback for the tests: it speaks enough of RFC 5321 (no TLS) for the
//! provider's mail client to deliver to it, and keeps every message it receives.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The message with quoted-printable soft breaks and escapes undone.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let mut out = String::with_capacity(joined.len());
        let mut chars = joined.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '=' {
                let hex: String = chars.clone().take(2).collect();
                if let Ok(byte) = u8::from_str_radix(&hex, 16) {
                    out.push(byte as char);
                    chars.next();
                    chars.next();
                    continue;
                }
            }
            out.push(c);
        }
        out
    }

    /// The first URL in the message that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let text = self.decoded();
        let start = text.find(prefix)?;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts on a given port (0 for any), e.g. one a provider was already told to use.
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Self {
            port,
            messages: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.session(stream).await;
                });
            }
        });
        sink
    }

    /// The environment that points the provider at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMTP_HOST", "127.0.0.1".to_owned()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_TLS", "none".to_owned()),
            ("SMTP_FROM", "sign-in@id.example".to_owned()),
        ]
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut to = Vec::new();
        while let Some(line) = lines.next_line().await? {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                "HELO" | "MAIL" | "RSET" | "NOOP" => b"250 OK\r\n",
                "RCPT" => {
                    let address = line
                        .split(['<', '>'])
                        .nth(1)
                        .unwrap_or_default()
                        .to_lowercase();
                    to.push(address);
                    b"250 OK\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut data = String::new();
                    while let Some(line) = lines.next_line().await? {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push_str("\r\n");
                    }
                    self.messages.lock().unwrap().push(Received {
                        to: std::mem::take(&mut to),
                        data,
                    });
                    self.arrived.notify_waiters();
                    b"250 queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }

    /// Messages received so far for `address`.
    pub fn messages_to(&self, address: &str) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .cloned()
            .collect()
    }

    /// Waits (at most 10 s) for the `n`th message to `address`.
    pub async fn wait_for(&self, address: &str, n: usize) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            let messages = self.messages_to(address);
            if messages.len() >= n {
                return messages[n - 1].clone();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no message {n} to {address} within 10 s");
            }
        }
    }
}
