//! The audit trail's hash chain. Rows are written unsealed in the transaction of their change
//! (so audited writes of one tenant never queue on a shared row); the sealing task then gives
//! each tenant's new rows, in insertion order, the next sequence number, the previous row's hash
//! and their own: a keyed digest (the instance digest key) over the tenant, the sequence, the
//! previous hash and every column. On SQLite the group-commit writer seals its chains' rows as
//! it writes them, and on PostgreSQL the lone rows (`store::chain_heads`), so chain order may
//! differ from insertion order.
//! Altering, inserting or removing a sealed row breaks the chain.

use std::fmt;

use serde_json::json;

use crate::{
    crypto::{SecretDigester, SecretKind},
    store::{
        self, Store, StoreResult,
        audit::{self, Content, StoredAudit},
        chain_heads::Link,
    },
};

/// The previous hash of a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per page when verifying.
const BATCH: i64 = 500;
/// Rows sealed per transaction: small, so sealing never holds SQLite's one writer for long
/// while requests wait behind it, and a power of two, so a full batch is one statement
/// (`store::audit::seal_rows`).
const SEAL_BATCH: i64 = 128;

/// The hash of `row` at `seq` after `prev`, as lowercase hex.
pub fn link_hash(
    digester: &SecretDigester,
    tenant: &str,
    seq: i64,
    prev: &str,
    row: Content<'_>,
) -> String {
    // A JSON array keeps field boundaries unambiguous.
    let content = json!([
        tenant,
        seq,
        prev,
        row.occurred_at_ms,
        row.event,
        row.client_id,
        row.user_id,
        row.ip,
        row.user_agent,
        row.request_id,
        row.details,
    ])
    .to_string();
    crate::crypto::hex(&digester.digest(SecretKind::AuditChain, &content))
}

/// The link of the row that follows `head` (its sequence and hash), which then moves to it.
pub fn next_link(
    digester: &SecretDigester,
    tenant: &str,
    head: &mut (i64, String),
    row: Content<'_>,
) -> Link {
    let (seq, prev) = head;
    *seq += 1;
    let hash = link_hash(digester, tenant, *seq, prev, row);
    Link {
        seq: *seq,
        prev: std::mem::replace(prev, hash.clone()),
        hash,
    }
}

/// Seals the tenant's pending rows; returns how many.
pub async fn seal(store: &Store, digester: &SecretDigester, tenant: &str) -> StoreResult<u64> {
    seal_at_most(store, digester, tenant, u64::MAX).await
}

/// Seals the tenant's oldest pending rows, about `limit` of them at most (whole batches), so a
/// request that seals first stays short however large a backlog is; returns how many. It stops
/// after the first batch that is not full: rows written meanwhile wait for the next call, so
/// under steady load the sealer runs whole batches and then rests, instead of chasing each
/// request's row with a transaction (and a durable commit) of its own.
pub async fn seal_at_most(
    store: &Store,
    digester: &SecretDigester,
    tenant: &str,
    limit: u64,
) -> StoreResult<u64> {
    let mut sealed = 0;
    // On PostgreSQL, the last row sealed: each batch searches on from there rather than from
    // the kept start, which would pass again over every row sealed before it (a backlog of n
    // rows would cost about n²/2 divided by the batch size row reads, not n). A row skipped so
    // (an older transaction that ended after the batch before read) is found by the next
    // pass: the kept start never passes a transaction open when a pass began.
    let mut last_sealed: Option<audit::After> = None;
    while sealed < limit {
        let mut tx = store.begin().await?;
        audit::plan_for_current_sizes(&mut tx).await?;
        audit::ensure_chain(&mut *tx, tenant, GENESIS).await?;
        let head = audit::lock_chain(&mut *tx, tenant).await?;
        let after = match last_sealed {
            Some(last) => Some(last),
            None => store
                .audit_search_start(&mut *tx)
                .await?
                .map(audit::After::start_of),
        };
        let rows = audit::unsealed(&mut *tx, tenant, after, SEAL_BATCH).await?;
        let Some(last) = rows.last() else {
            store::commit(tx).await?;
            return Ok(sealed);
        };
        last_sealed = last.after();
        let mut head = (head.head_seq, head.head_hash);
        let seals: Vec<audit::Seal> = rows
            .iter()
            .map(|unsealed| audit::Seal {
                id: unsealed.row.id,
                link: next_link(digester, tenant, &mut head, unsealed.row.content()),
            })
            .collect();
        audit::seal_rows(&mut tx, tenant, &seals).await?;
        audit::set_head(&mut *tx, tenant, head.0, &head.1).await?;
        // The writer, which seals rows as it writes them, reads the head again after this. On
        // SQLite it cannot run a batch while this transaction holds the one writer; on
        // PostgreSQL a batch that read the head before this commits waits for the lock, finds
        // the head moved and leaves its rows unsealed.
        store.forget_chain_head(tenant);
        store::commit(tx).await?;
        sealed += rows.len() as u64;
        if (rows.len() as i64) < SEAL_BATCH {
            return Ok(sealed);
        }
    }
    Ok(sealed)
}

/// Seals every tenant's pending rows; returns how many.
pub async fn seal_all(store: &Store, digester: &SecretDigester) -> StoreResult<u64> {
    // On PostgreSQL: every transaction below `ended` has ended before the search, so once this
    // pass has sealed all it finds, every row they wrote is sealed and later passes start there.
    let sealed_below = store.audit_sealed_below();
    let ended = match sealed_below {
        Some(_) => Some(audit::ended_below(store.reader()).await?),
        None => None,
    };
    let since = store.audit_search_start(store.reader()).await?;
    let mut sealed = 0;
    for tenant in audit::unsealed_tenants(store.reader(), since).await? {
        sealed += seal(store, digester, &tenant).await?;
    }
    if let (Some(sealed_below), Some(ended)) = (sealed_below, ended) {
        sealed_below.advance_to(store.writer(), ended).await?;
    }
    Ok(sealed)
}

/// Where a chain breaks.
#[derive(Debug, PartialEq, Eq)]
pub enum Break {
    /// The row's content or place does not match its hash: altered.
    Altered { seq: i64 },
    /// The row does not follow the one before it: a row between was inserted or replaced.
    Unlinked { seq: i64 },
    /// Rows are missing before this one (in the database, where the chain must be whole).
    Missing { after: i64, found: i64 },
    /// Rows are out of chain order.
    Order { seq: i64 },
    /// A row carries no seal.
    Unsealed { id: i64 },
    /// The chain ends before its recorded head: rows were removed from its end.
    Truncated { last: i64, head: i64 },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Altered { seq } => write!(f, "row {seq} was altered (its hash does not match)"),
            Self::Unlinked { seq } => write!(f, "row {seq} does not follow the row before it"),
            Self::Missing { after, found } => {
                write!(f, "rows after {after} are missing (next is {found})")
            }
            Self::Order { seq } => write!(f, "row {seq} is out of order"),
            Self::Unsealed { id } => write!(f, "row id {id} carries no seal"),
            Self::Truncated { last, head } => {
                write!(f, "the chain ends at {last} but its head is {head}")
            }
        }
    }
}

/// What a verification covered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Places where the input skips rows (an export filtered by event, user or client).
    pub gaps: u64,
}

/// Checks rows in chain order, one at a time, in constant memory.
#[derive(Debug)]
pub struct Verifier<'a> {
    digester: &'a SecretDigester,
    tenant: &'a str,
    /// The last row seen (or the anchor): its sequence and hash.
    last: Option<(i64, String)>,
    /// Whether the rows must be the whole chain from the anchor (the database) rather than a
    /// possibly filtered selection of it (a file).
    whole: bool,
    verified: Verified,
}

impl<'a> Verifier<'a> {
    /// For the whole chain, starting after `anchor`.
    pub fn whole(digester: &'a SecretDigester, tenant: &'a str, anchor: (i64, String)) -> Self {
        Self {
            digester,
            tenant,
            last: Some(anchor),
            whole: true,
            verified: Verified::default(),
        }
    }

    /// For a selection of the chain, such as an export.
    pub fn selection(digester: &'a SecretDigester, tenant: &'a str) -> Self {
        Self {
            digester,
            tenant,
            last: None,
            whole: false,
            verified: Verified::default(),
        }
    }

    pub fn push(&mut self, row: &StoredAudit) -> Result<(), Break> {
        let (Some(seq), Some(prev), Some(hash)) = (row.chain_seq, &row.chain_prev, &row.chain_hash)
        else {
            return Err(Break::Unsealed { id: row.id });
        };
        if !crate::crypto::ct_eq(
            link_hash(self.digester, self.tenant, seq, prev, row.content()).as_bytes(),
            hash.as_bytes(),
        ) {
            return Err(Break::Altered { seq });
        }
        match &self.last {
            Some((last, _)) if seq <= *last => return Err(Break::Order { seq }),
            Some((last, last_hash)) if seq == last + 1 && prev != last_hash => {
                return Err(Break::Unlinked { seq });
            }
            Some((last, _)) if seq == last + 1 => {}
            Some((last, _)) if self.whole => {
                return Err(Break::Missing {
                    after: *last,
                    found: seq,
                });
            }
            Some(_) => self.verified.gaps += 1,
            None => {}
        }
        self.last = Some((seq, hash.clone()));
        self.verified.rows += 1;
        self.verified.first_seq.get_or_insert(seq);
        self.verified.last_seq = Some(seq);
        Ok(())
    }

    pub fn finish(self) -> Verified {
        self.verified
    }
}

/// Verifies a tenant's stored chain from its anchor to its head. Rows not sealed yet are not
/// part of it; the caller may report them.
pub async fn verify_stored(
    store: &Store,
    digester: &SecretDigester,
    tenant: &str,
) -> StoreResult<Result<Verified, Break>> {
    let Some(head) = audit::chain(store.reader(), tenant).await? else {
        return Ok(Ok(Verified::default()));
    };
    let mut verifier = Verifier::whole(digester, tenant, (head.anchor_seq, head.anchor_hash));
    let mut after = head.anchor_seq;
    loop {
        let rows = audit::sealed_after(store.reader(), tenant, after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.chain_seq.unwrap_or(after);
        for row in &rows {
            if let Err(broken) = verifier.push(row) {
                return Ok(Err(broken));
            }
        }
    }
    let verified = verifier.finish();
    let last = verified.last_seq.unwrap_or(head.anchor_seq);
    if last != head.head_seq {
        return Ok(Err(Break::Truncated {
            last,
            head: head.head_seq,
        }));
    }
    Ok(Ok(verified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, event: &str) -> StoredAudit {
        StoredAudit {
            id,
            occurred_at_ms: 1_700_000_000_000 + id,
            event: event.to_owned(),
            client_id: Some("c1".to_owned()),
            user_id: None,
            ip: Some("127.0.0.1".to_owned()),
            user_agent: None,
            request_id: None,
            details: "{}".to_owned(),
            chain_seq: None,
            chain_prev: None,
            chain_hash: None,
        }
    }

    /// Seals rows as the task does, in memory.
    fn sealed(d: &SecretDigester, events: &[&str]) -> Vec<StoredAudit> {
        let mut prev = GENESIS.to_owned();
        events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let seq = i as i64 + 1;
                let mut r = row(seq, event);
                let hash = link_hash(d, "t1", seq, &prev, r.content());
                (r.chain_seq, r.chain_prev, r.chain_hash) =
                    (Some(seq), Some(prev.clone()), Some(hash.clone()));
                prev = hash;
                r
            })
            .collect()
    }

    fn check(d: &SecretDigester, rows: &[StoredAudit], whole: bool) -> Result<Verified, Break> {
        let mut v = if whole {
            Verifier::whole(d, "t1", (0, GENESIS.to_owned()))
        } else {
            Verifier::selection(d, "t1")
        };
        for r in rows {
            v.push(r)?;
        }
        Ok(v.finish())
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_shows() {
        let d = SecretDigester::new([7; 32]);
        let rows = sealed(&d, &["a", "b", "c", "d"]);
        let ok = check(&d, &rows, true).unwrap();
        assert_eq!((ok.rows, ok.first_seq, ok.last_seq), (4, Some(1), Some(4)));

        let mut altered = rows.clone();
        altered[2].details = r#"{"x":1}"#.to_owned();
        assert_eq!(check(&d, &altered, true), Err(Break::Altered { seq: 3 }));

        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(
            check(&d, &removed, true),
            Err(Break::Missing { after: 1, found: 3 })
        );
        // A filtered export may skip rows; each remaining row still proves itself.
        assert_eq!(check(&d, &removed, false).unwrap().gaps, 1);

        // A row re-hashed by someone without the key does not match.
        let mut forged = rows.clone();
        forged[1].event = "z".to_owned();
        let other = SecretDigester::new([8; 32]);
        forged[1].chain_hash = Some(link_hash(&other, "t1", 2, GENESIS, forged[1].content()));
        assert_eq!(check(&d, &forged, true), Err(Break::Altered { seq: 2 }));

        // Another tenant's chain does not verify as this one.
        let mut v = Verifier::selection(&d, "t2");
        assert_eq!(v.push(&rows[0]), Err(Break::Altered { seq: 1 }));

        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        assert!(check(&d, &reordered, false).is_err());
        assert_eq!(
            check(&d, &[row(9, "a")], false),
            Err(Break::Unsealed { id: 9 })
        );
    }
}
