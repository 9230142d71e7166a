//! `provider keys rewrap`: seals every secret at rest again with the current
//! `KEY_ENCRYPTION_KEY`, opening each with it or with `KEY_ENCRYPTION_KEY_PREVIOUS`. Runs in one
//! transaction and is idempotent, so it is safe to repeat while replicas keep serving.

use anyhow::{Context, anyhow};
use shared::TenantId;

use crate::{
    crypto::Keyring,
    keys::private_key_aad,
    startup::DIGEST_KEY_AAD,
    store::{self, Store, instance, keys},
};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewrapped {
    pub instance_secrets: usize,
    pub signing_keys: usize,
    pub already_current: usize,
}

pub async fn rewrap(store: &Store, keyring: &Keyring) -> anyhow::Result<Rewrapped> {
    let mut report = Rewrapped::default();
    let mut tx = store.begin().await?;
    if let Some(sealed) = instance::get(&mut *tx, instance::DIGEST_KEY).await? {
        match keyring.rewrap(&sealed, DIGEST_KEY_AAD) {
            Ok(Some(value)) => {
                instance::set(&mut *tx, instance::DIGEST_KEY, &value).await?;
                report.instance_secrets += 1;
            }
            Ok(None) => report.already_current += 1,
            Err(_) => {
                return Err(anyhow!(
                    "KEY_ENCRYPTION_KEY_PREVIOUS: neither key opens the instance secrets"
                ));
            }
        }
    }
    for (tenant, kid, sealed) in keys::all_sealed(&mut *tx).await? {
        let tenant = TenantId::parse(&tenant).context("stored tenant id")?;
        let aad = private_key_aad(&tenant, &kid);
        match keyring.rewrap(&sealed, &aad) {
            Ok(Some(value)) => {
                keys::set_sealed(&mut *tx, &tenant, &kid, &value).await?;
                report.signing_keys += 1;
            }
            Ok(None) => report.already_current += 1,
            Err(_) => {
                return Err(anyhow!(
                    "KEY_ENCRYPTION_KEY_PREVIOUS: neither key opens signing key {kid} of {tenant}"
                ));
            }
        }
    }
    store::commit(tx).await?;
    Ok(report)
}
