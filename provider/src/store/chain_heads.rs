//! Sealing audit rows as they are written. The sealing task (`audit::chain`) gives rows their
//! place in their tenant's hash chain after the fact: each row written twice, once by its
//! request and once by a sealing transaction with a durable commit of its own (on SQLite, both
//! on its one writer). A batch of the group-commit writer seals its audit rows as it writes them
//! instead (on SQLite those of its chains and the lone ones; on PostgreSQL, where each change
//! commits on its own, the lone ones), against the heads it keeps here. The heads are only the
//! writer's belief: each sealed insert takes its seal only if the chain's head in the database
//! is exactly the one it was reckoned from (`audit::sealed_insert_sql`,
//! `audit::insert_many_sealed`), and is written unsealed, for the sealing task, otherwise. A
//! head the writer got wrong costs a batch of unsealed rows, never a broken chain.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use sqlx::AnyConnection;

use super::{
    StoreError, StoreResult,
    audit::{self, AuditRow},
};
use crate::{audit::chain, crypto::SecretDigester};

/// A row's place in its tenant's chain: its sequence, the previous row's hash and its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub prev: String,
    pub hash: String,
}

/// Past this many tenants' heads the writer starts over rather than keep one for every tenant
/// that ever wrote (deleted ones too): a head it drops is read again when next needed.
const MOST_HEADS: usize = 100_000;

/// The chain heads as the writer last left them, and the key that seals (none: rows are left
/// to the sealing task).
#[derive(Debug, Default)]
pub struct ChainHeads {
    digester: OnceLock<Arc<SecretDigester>>,
    heads: Mutex<HashMap<String, (i64, String)>>,
}

impl ChainHeads {
    /// Seals from now on with `digester` (the instance digest key, known once the store is open).
    pub fn seal_with(&self, digester: Arc<SecretDigester>) {
        let _ = self.digester.set(digester);
    }

    /// Drops the tenant's head, for whoever moves it other than the writer: the next batch
    /// reads it again.
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    /// The links of `rows`, in the order they will be written, or none when sealing is off or
    /// a head could not be read. Heads not known yet are read on `conn`, the writer's
    /// connection, before the batch begins (a chain is created for a tenant that has none).
    pub(super) async fn plan(
        &self,
        conn: &mut AnyConnection,
        rows: &[&AuditRow],
    ) -> Option<Vec<Link>> {
        let digester = self.digester.get()?;
        let mut heads: HashMap<&str, (i64, String)> = HashMap::new();
        for row in rows {
            let tenant = row.tenant_id.as_str();
            if heads.contains_key(tenant) {
                continue;
            }
            let known = self.lock().get(tenant).cloned();
            let head = match known {
                Some(head) => head,
                None => match read_head(conn, tenant).await {
                    Ok(head) => head,
                    Err(err) => {
                        tracing::debug!(error = %err, "a chain head could not be read");
                        return None;
                    }
                },
            };
            heads.insert(tenant, head);
        }
        rows.iter()
            .map(|row| {
                let head = heads.get_mut(row.tenant_id.as_str())?;
                Some(chain::next_link(
                    digester,
                    &row.tenant_id,
                    head,
                    row.content(),
                ))
            })
            .collect()
    }

    /// Keeps, once a batch has committed, each tenant's last seal its rows took, in the order
    /// they were written; a tenant none of whose rows took theirs had a head other than the one
    /// believed, and is read again next time.
    pub(super) fn record<'a>(&self, written: impl Iterator<Item = (&'a str, Option<&'a Link>)>) {
        let mut last: HashMap<&str, Option<&Link>> = HashMap::new();
        for (tenant, taken) in written {
            let entry = last.entry(tenant).or_default();
            if taken.is_some() {
                *entry = taken;
            }
        }
        let mut heads = self.lock();
        if heads.len() + last.len() > MOST_HEADS {
            heads.clear();
        }
        for (tenant, taken) in last {
            match taken {
                Some(seal) => heads.insert(tenant.to_owned(), (seal.seq, seal.hash.clone())),
                None => heads.remove(tenant),
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, String)>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.heads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The tenant's head as the database has it, its chain created first if it has none.
async fn read_head(conn: &mut AnyConnection, tenant: &str) -> StoreResult<(i64, String)> {
    if let Some(head) = audit::chain(&mut *conn, tenant).await? {
        return Ok((head.head_seq, head.head_hash));
    }
    audit::ensure_chain(&mut *conn, tenant, chain::GENESIS).await?;
    let head = audit::chain(&mut *conn, tenant)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a chain just created is missing".into()))?;
    Ok((head.head_seq, head.head_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(seq: i64) -> Link {
        Link {
            seq,
            prev: format!("prev-{seq}"),
            hash: format!("hash-{seq}"),
        }
    }

    #[test]
    fn a_commit_keeps_each_tenants_last_link_taken_and_drops_a_tenant_whose_rows_took_none() {
        let heads = ChainHeads::default();
        heads
            .lock()
            .insert("b".to_owned(), (7, "hash-7".to_owned()));
        let (one, two, eight) = (link(1), link(2), link(8));
        heads.record(
            [
                ("a", Some(&one)),
                ("b", None),
                ("a", Some(&two)),
                ("a", None),
            ]
            .into_iter(),
        );
        let kept = heads.lock().clone();
        assert_eq!(kept.get("a"), Some(&(2, "hash-2".to_owned())));
        assert!(!kept.contains_key("b"), "b's head moved elsewhere");
        heads.record([("b", Some(&eight))].into_iter());
        heads.forget("a");
        let kept = heads.lock().clone();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept.get("b"), Some(&(8, "hash-8".to_owned())));
    }

    #[test]
    fn past_the_most_heads_the_writer_starts_over() {
        let heads = ChainHeads::default();
        let one = link(1);
        let tenants: Vec<String> = (0..MOST_HEADS).map(|n| format!("t{n}")).collect();
        heads.record(tenants.iter().map(|t| (t.as_str(), Some(&one))));
        assert_eq!(heads.lock().len(), MOST_HEADS);
        heads.record([("new", Some(&one))].into_iter());
        let kept = heads.lock().clone();
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("new"));
    }
}
