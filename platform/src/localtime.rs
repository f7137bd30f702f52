//! Local time: theaters keep an IANA time zone (`theaters.time_zone`), and every
//! show time a person reads (the API's `starts_at_local`, emails, the web app) is
//! that zone's wall clock with its offset.
//!
//! The zone database is jiff's: it reads the system's copy (`/usr/share/zoneinfo`,
//! the tzdata package, which Debian's PostgreSQL also uses, so the SQL day filters
//! and these strings agree) and falls back to a copy bundled in the binary where
//! the system has none (a slim container image). Times stay `time::OffsetDateTime`
//! everywhere else; they cross into jiff only here, as a Unix instant.

use time::OffsetDateTime;

/// The zone of the seeded Indian theaters, and of any theater created without one.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Kolkata";

/// Longest IANA zone name accepted (the longest real ones are about 30 characters).
const MAX_ZONE_CHARS: usize = 64;

/// A name the time zone database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "time_zone must be an IANA time zone name such as Asia/Kolkata or Europe/London, not {0:?}"
)]
pub struct UnknownTimeZone(pub String);

/// The zone's canonical spelling (the lookup ignores case: `asia/kolkata` is
/// `Asia/Kolkata`), or [`UnknownTimeZone`]. Only names of the database: fixed
/// offsets and POSIX TZ strings are refused, so the name is one PostgreSQL's
/// `at time zone` reads the same way.
pub fn canonical_zone(name: &str) -> Result<String, UnknownTimeZone> {
    let unknown = || UnknownTimeZone(name.chars().take(MAX_ZONE_CHARS).collect());
    let plausible = !name.is_empty()
        && name.len() <= MAX_ZONE_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !plausible {
        return Err(unknown());
    }
    let tz = jiff::tz::db().get(name).map_err(|_| unknown())?;
    Ok(tz.iana_name().unwrap_or(name).to_owned())
}

/// `t` on the wall clock of `zone`; UTC if the zone is unknown (a stored zone was
/// validated when it was written, so that only happens if the database lost it).
fn zoned(t: OffsetDateTime, zone: &str) -> jiff::ZonedDateTime {
    let tz = jiff::tz::db().get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let nanos = t.unix_timestamp_nanos();
    let ts = i128_to_timestamp(nanos);
    ts.to_zoned_datetime(tz)
}

fn i128_to_timestamp(nanos: i128) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(nanos).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// RFC 3339 with the zone's offset at that instant: `2026-12-03T00:30:00+05:30`.
pub fn local_rfc3339(t: OffsetDateTime, zone: &str) -> String {
    let z = zoned(t, zone);
    if z.subsec_nanosecond() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string()
    }
}

/// The instant at which the wall clock of `zone` shows `date` `time`, for
/// schedules typed on the theater's clock. A wall time that happens twice (the
/// hour the clocks go back) is its first occurrence; one that never happens (the
/// hour they skip) is read with the offset before the gap, i.e. it lands after it,
/// as most calendars do (jiff's "compatible" choice). `None` for an unknown zone.
pub fn instant_at(date: time::Date, at: time::Time, zone: &str) -> Option<OffsetDateTime> {
    let tz = jiff::tz::db().get(zone).ok()?;
    let civil = jiff::civil::DateTime::new(
        i16::try_from(date.year()).ok()?,
        i8::try_from(u8::from(date.month())).ok()?,
        i8::try_from(date.day()).ok()?,
        i8::try_from(at.hour()).ok()?,
        i8::try_from(at.minute()).ok()?,
        i8::try_from(at.second()).ok()?,
        0,
    )
    .ok()?;
    let nanos = civil
        .to_zoned_datetime(tz)
        .ok()?
        .timestamp()
        .as_nanosecond();
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// For people: `Thu 3 Dec 2026, 00:30 IST (Asia/Kolkata)`: the wall clock, the
/// zone's abbreviation at that instant and its IANA name.
pub fn local_human(t: OffsetDateTime, zone: &str) -> String {
    let z = zoned(t, zone);
    format!("{} ({})", z.strftime("%a %-d %b %Y, %H:%M %Z"), zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_wall_time_is_the_instant_of_the_zones_clock_across_daylight_saving() {
        use time::macros::{date, time};
        let at = |d, t, z| instant_at(d, t, z).unwrap();
        assert_eq!(
            at(date!(2026 - 12 - 10), time!(18:30), "Asia/Kolkata"),
            datetime!(2026-12-10 13:00 UTC)
        );
        // New York: EST in winter, EDT in summer.
        assert_eq!(
            at(date!(2026 - 01 - 15), time!(20:00), "America/New_York"),
            datetime!(2026-01-16 01:00 UTC)
        );
        assert_eq!(
            at(date!(2026 - 07 - 15), time!(20:00), "America/New_York"),
            datetime!(2026-07-16 00:00 UTC)
        );
        // 02:30 is skipped on 8 March 2026: read before the gap, it lands at 03:30 EDT.
        assert_eq!(
            at(date!(2026 - 03 - 08), time!(02:30), "America/New_York"),
            datetime!(2026-03-08 07:30 UTC)
        );
        // 01:30 happens twice on 1 November 2026: the first (EDT).
        assert_eq!(
            at(date!(2026 - 11 - 01), time!(01:30), "America/New_York"),
            datetime!(2026-11-01 05:30 UTC)
        );
        assert_eq!(
            instant_at(date!(2026 - 12 - 10), time!(18:30), "Mars/Olympus"),
            None
        );
    }

    #[test]
    fn known_zones_are_canonical_and_anything_else_is_refused() {
        assert_eq!(canonical_zone("Asia/Kolkata").unwrap(), "Asia/Kolkata");
        assert_eq!(canonical_zone("europe/london").unwrap(), "Europe/London");
        for bad in [
            "Mars/Olympus",
            "",
            "+05:30",
            "IST-5:30",
            "Asia/Kolkata\0",
            "../../etc/passwd",
        ] {
            assert!(canonical_zone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn half_past_midnight_in_india_is_the_previous_evening_in_utc() {
        let t = datetime!(2026-12-02 19:00 UTC);
        assert_eq!(
            local_rfc3339(t, "Asia/Kolkata"),
            "2026-12-03T00:30:00+05:30"
        );
        assert_eq!(
            local_human(t, "Asia/Kolkata"),
            "Thu 3 Dec 2026, 00:30 IST (Asia/Kolkata)"
        );
        assert_eq!(local_rfc3339(t, "UTC"), "2026-12-02T19:00:00+00:00");
    }

    #[test]
    fn the_offset_follows_daylight_saving_time() {
        let winter = datetime!(2026-01-15 12:00 UTC);
        let summer = datetime!(2026-07-15 12:00 UTC);
        assert_eq!(
            local_rfc3339(winter, "Europe/London"),
            "2026-01-15T12:00:00+00:00"
        );
        assert_eq!(
            local_rfc3339(summer, "Europe/London"),
            "2026-07-15T13:00:00+01:00"
        );
        assert!(local_human(summer, "Europe/London").contains("13:00 BST"));
    }
}
