//! Time as a parameter: business code asks the clock in `AppState`, so expiry and grace windows
//! are tested by moving a clock instead of sleeping.

use std::{
    fmt,
    sync::atomic::{AtomicI64, Ordering},
};

use time::OffsetDateTime;

pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> OffsetDateTime;

    /// Seconds since the Unix epoch, the unit stored in the database.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Milliseconds since the Unix epoch, for audit rows.
    fn unix_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told; for tests of expiry and windows.
#[derive(Debug)]
pub struct ManualClock {
    unix_ms: AtomicI64,
}

impl ManualClock {
    pub fn at(time: OffsetDateTime) -> Self {
        Self {
            unix_ms: AtomicI64::new((time.unix_timestamp_nanos() / 1_000_000) as i64),
        }
    }

    pub fn advance(&self, by: time::Duration) {
        self.unix_ms
            .fetch_add(by.whole_milliseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let ms = self.unix_ms.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// RFC 3339 text for a stored Unix time, as the admin API shows it.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(clock.unix(), 1_767_225_600);
        clock.advance(time::Duration::seconds(90));
        assert_eq!(clock.unix(), 1_767_225_690);
        assert_eq!(clock.unix_ms(), 1_767_225_690_000);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
    }
}
