//! The audit export's file formats, written by the export route and read back by
//! `provider audit verify --file`. CSV cells that a spreadsheet would run as a formula are
//! defused with a leading `'` (and a value that starts with `'` gets one more, so reading back
//! is exact); NDJSON carries `details` as the JSON it was stored as.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::store::audit::StoredAudit;

/// The export's columns, in order (documented in the README).
pub const COLUMNS: [&str; 11] = [
    "seq",
    "time",
    "event",
    "client_id",
    "user_id",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
    "hash",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(Self::Csv),
            "ndjson" => Some(Self::Ndjson),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-23T16:44:13.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (date, clock) = (time.date(), time.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.millisecond()
    )
}

/// An RFC 3339 time as milliseconds since the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A cell a spreadsheet will show as text, never run.
fn defuse(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn restore(cell: &str) -> String {
    cell.strip_prefix('\'').unwrap_or(cell).to_owned()
}

/// The CSV header line.
pub fn csv_header() -> Vec<u8> {
    let mut out = COLUMNS.join(",").into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    seq: i64,
    time: String,
    event: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    request_id: Option<String>,
    #[serde(borrow)]
    details: &'a RawValue,
    prev_hash: String,
    hash: String,
}

/// Appends `rows` (sealed) to `out` in `format`.
pub fn encode(format: Format, rows: &[StoredAudit], out: &mut Vec<u8>) {
    for row in rows {
        let seq = row.chain_seq.unwrap_or_default();
        let time = rfc3339_ms(row.occurred_at_ms);
        match format {
            Format::Csv => {
                let cells = [
                    Some(seq.to_string()),
                    Some(time),
                    Some(row.event.clone()),
                    row.client_id.clone(),
                    row.user_id.clone(),
                    row.ip.clone(),
                    row.user_agent.clone(),
                    row.request_id.clone(),
                    Some(row.details.clone()),
                    row.chain_prev.clone(),
                    row.chain_hash.clone(),
                ];
                let mut writer = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(Vec::new());
                let cells = cells.map(|c| defuse(c.as_deref().unwrap_or_default()));
                if writer.write_record(&cells).is_ok()
                    && let Ok(bytes) = writer.into_inner()
                {
                    out.extend_from_slice(&bytes);
                }
            }
            Format::Ndjson => {
                let fallback = RawValue::NULL;
                let details = serde_json::from_str::<&RawValue>(&row.details).unwrap_or(fallback);
                let line = Line {
                    seq,
                    time,
                    event: row.event.clone(),
                    client_id: row.client_id.clone(),
                    user_id: row.user_id.clone(),
                    ip: row.ip.clone(),
                    user_agent: row.user_agent.clone(),
                    request_id: row.request_id.clone(),
                    details,
                    prev_hash: row.chain_prev.clone().unwrap_or_default(),
                    hash: row.chain_hash.clone().unwrap_or_default(),
                };
                if serde_json::to_writer(&mut *out, &line).is_ok() {
                    out.push(b'\n');
                }
            }
        }
    }
}

/// Reads an exported file back, row by row; the format is told by its first byte.
pub fn read(
    mut input: impl BufRead + 'static,
) -> std::io::Result<Box<dyn Iterator<Item = Result<StoredAudit, String>>>> {
    let first = input.fill_buf()?.first().copied();
    if first == Some(b'{') {
        return Ok(Box::new(input.lines().enumerate().filter_map(
            |(n, line)| {
                let line = match line {
                    Ok(line) if line.trim().is_empty() => return None,
                    Ok(line) => line,
                    Err(err) => return Some(Err(err.to_string())),
                };
                Some(from_line(&line).map_err(|err| format!("line {}: {err}", n + 1)))
            },
        )));
    }
    let reader = csv::ReaderBuilder::new().from_reader(input);
    Ok(Box::new(reader.into_records().enumerate().map(
        |(n, record)| {
            let record = record.map_err(|err| err.to_string())?;
            from_record(&record).map_err(|err| format!("row {}: {err}", n + 1))
        },
    )))
}

fn from_line(line: &str) -> Result<StoredAudit, String> {
    let line: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(StoredAudit {
        id: line.seq,
        occurred_at_ms: parse_rfc3339_ms(&line.time).ok_or("bad time")?,
        event: line.event,
        client_id: line.client_id,
        user_id: line.user_id,
        ip: line.ip,
        user_agent: line.user_agent,
        request_id: line.request_id,
        details: line.details.get().to_owned(),
        chain_seq: Some(line.seq),
        chain_prev: Some(line.prev_hash),
        chain_hash: Some(line.hash),
    })
}

fn from_record(record: &csv::StringRecord) -> Result<StoredAudit, String> {
    if record.len() != COLUMNS.len() {
        return Err(format!("{} cells, not {}", record.len(), COLUMNS.len()));
    }
    let cell = |i: usize| restore(record.get(i).unwrap_or_default());
    let optional = |i: usize| Some(cell(i)).filter(|c| !c.is_empty());
    let seq: i64 = cell(0).parse().map_err(|_| "bad seq")?;
    Ok(StoredAudit {
        id: seq,
        occurred_at_ms: parse_rfc3339_ms(&cell(1)).ok_or("bad time")?,
        event: cell(2),
        client_id: optional(3),
        user_id: optional(4),
        ip: optional(5),
        user_agent: optional(6),
        request_id: optional(7),
        details: cell(8),
        chain_seq: Some(seq),
        chain_prev: Some(cell(9)),
        chain_hash: Some(cell(10)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> StoredAudit {
        StoredAudit {
            id: 7,
            occurred_at_ms: 1_795_000_000_123,
            event: "login.succeeded".to_owned(),
            client_id: Some("=HYPERLINK(\"http://evil.example\")".to_owned()),
            user_id: Some("'quoted".to_owned()),
            ip: Some("127.0.0.1".to_owned()),
            user_agent: Some("-cmd|' /C calc'!A0".to_owned()),
            request_id: None,
            details: r#"{"method":"magic_link","n":1.5}"#.to_owned(),
            chain_seq: Some(3),
            chain_prev: Some("ab".repeat(32)),
            chain_hash: Some("cd".repeat(32)),
        }
    }

    fn round_trip(format: Format) -> (String, StoredAudit) {
        let mut out = if format == Format::Csv {
            csv_header()
        } else {
            Vec::new()
        };
        encode(format, &[row()], &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        let mut rows = read(std::io::Cursor::new(out)).unwrap();
        let back = rows.next().unwrap().unwrap();
        assert!(rows.next().is_none());
        (text, back)
    }

    #[test]
    fn exports_read_back_exactly_in_both_formats() {
        for format in [Format::Csv, Format::Ndjson] {
            let (_, back) = round_trip(format);
            let original = row();
            assert_eq!(back.occurred_at_ms, original.occurred_at_ms);
            assert_eq!(
                (
                    &back.event,
                    &back.client_id,
                    &back.user_id,
                    &back.user_agent
                ),
                (
                    &original.event,
                    &original.client_id,
                    &original.user_id,
                    &original.user_agent
                )
            );
            assert_eq!(back.request_id, None);
            assert_eq!(back.details, original.details, "{format:?}");
            assert_eq!(
                (back.chain_seq, back.chain_prev, back.chain_hash),
                (original.chain_seq, original.chain_prev, original.chain_hash)
            );
        }
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let (text, _) = round_trip(Format::Csv);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.contains(r#""'=HYPERLINK(""http://evil.example"")""#),
            "{line}"
        );
        assert!(line.contains("'-cmd|"), "{line}");
        assert!(line.contains("''quoted"), "{line}");
        assert!(text.starts_with("seq,time,event,client_id,"));
    }

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(
            parse_rfc3339_ms("2026-11-18T11:06:40.123Z"),
            Some(1_795_000_000_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-18T12:06:40.123+01:00"),
            Some(1_795_000_000_123)
        );
        assert_eq!(parse_rfc3339_ms("2026-11-18"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
