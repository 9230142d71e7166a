//! Bench-only: mints authorization codes and refresh tokens for one client and user of one
//! tenant, writing them straight into the database the provider under test uses (the same
//! rows the authorize and token endpoints write), and prints them one per line, so the code
//! exchange and refresh benchmarks have a fresh token for every request. Never a route.
//!
//! `bench-seed codes|refresh TENANT CLIENT USER COUNT`, with the provider's `DATABASE_URL` and
//! `KEY_ENCRYPTION_KEY` in the environment. Codes carry the PKCE challenge of the verifier
//! `VERIFIER` below and the redirect URI `REDIRECT`.

use std::{io::Write, sync::Arc};

use anyhow::{Context, bail};
use provider::{
    clock::{Clock, SystemClock},
    config::Config,
    crypto::{SecretKind, random_b64, random_secret},
    startup,
    store::{self, refresh, sign_in},
};
use shared::TenantId;

/// The PKCE verifier every seeded code was issued for (43 characters, RFC 7636).
pub const VERIFIER: &str = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
/// The redirect URI every seeded code was issued for.
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// BASE64URL(SHA256(VERIFIER)).
const CHALLENGE: &str = "2jWB5HORkKgqnTwY916xUGwDhNNXcfic4GfY6Udgc-4";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, tenant, client, user, count] = args.as_slice() else {
        bail!("usage: bench-seed codes|refresh TENANT CLIENT USER COUNT");
    };
    let count: usize = count.parse().context("COUNT")?;
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("TENANT: {e}"))?;
    let config = Config::from_env(false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = startup::build_state(config, clock.clone()).await?;
    let now = clock.unix();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Batches of 1,000 per transaction: fast to write, and durable like the server's own.
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut tx = state.store.begin().await?;
        for _ in chunk {
            let secret = random_secret();
            match kind.as_str() {
                "codes" => {
                    let code = sign_in::Code {
                        client_id: client.clone(),
                        user_id: user.clone(),
                        redirect_uri: REDIRECT.into(),
                        scope: "openid offline_access api:read".into(),
                        resources: r#"["https://api.example"]"#.into(),
                        nonce: None,
                        code_challenge: Some(CHALLENGE.into()),
                        auth_time: now,
                        // Long enough for a whole bench run.
                        expires_at: now + 3600,
                        redeemed_at: None,
                        access_token_jti: None,
                        access_token_exp: None,
                        session_digest: None,
                    };
                    let digest = state
                        .digester
                        .digest(SecretKind::AuthorizationCode, &secret);
                    sign_in::insert_code(&mut *tx, &tenant, &digest, &code, now).await?;
                }
                "refresh" => {
                    let family = refresh::Family {
                        id: random_b64(16),
                        client_id: client.clone(),
                        user_id: user.clone(),
                        scope: "openid offline_access api:read".into(),
                        resources: r#"["https://api.example"]"#.into(),
                        auth_time: now,
                        expires_at: now + 86_400,
                        revoked_at: None,
                        session_digest: None,
                        dpop_jkt: None,
                    };
                    refresh::insert_family(&mut *tx, &tenant, &family, now).await?;
                    let digest = state.digester.digest(SecretKind::RefreshToken, &secret);
                    let token = refresh::NewToken {
                        digest: &digest,
                        family_id: &family.id,
                        generation: 0,
                        created_at: now,
                        expires_at: now + 86_400,
                        issued_response: None,
                    };
                    refresh::insert_token(&mut *tx, &tenant, &token).await?;
                }
                other => bail!("unknown kind {other}: codes or refresh"),
            }
            writeln!(out, "{secret}")?;
        }
        store::commit(tx).await?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_challenge_is_the_verifiers() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        use sha2::Digest;
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(super::VERIFIER.as_bytes()));
        assert_eq!(challenge, super::CHALLENGE);
    }
}
