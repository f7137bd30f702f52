//! The catalog's filters, parsed and bounded at the edge.

use crate::problem::ApiError;
use contracts::EventKind;
use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use utoipa::IntoParams;

/// Longest search text, city and genre accepted (characters).
const MAX_Q_CHARS: usize = 100;
const MAX_CITY_CHARS: usize = 100;
const MAX_GENRE_CHARS: usize = 40;

/// How far from UTC a theater's clock can be: today's zones span UTC-12 to UTC+14;
/// the margin covers them all (see [`ShowFilter::push_conditions`]).
const MAX_ZONE_OFFSET: time::Duration = time::Duration::hours(15);

/// `?city=&location=&date=&genre=&q=` of `GET /v1/movies` and `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// The same as `city` (an alias); naming both with different cities is a 422.
    pub location: Option<String>,
    /// A calendar day `YYYY-MM-DD` on which a show starts, on the theater's clock
    /// (its local day, in its time zone).
    pub date: Option<String>,
    /// One of the genres, case-insensitive (at most 40 characters).
    pub genre: Option<String>,
    /// Text search over title and cast (or performers), typo-tolerant (at most 100
    /// characters).
    pub q: Option<String>,
}

/// `?kind=` of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KindQuery {
    /// Only events of this kind; all kinds when absent.
    #[param(value_type = Option<EventKind>)]
    pub kind: Option<String>,
}

/// `?city=&location=&date=` of a movie's or an event's shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// The same as `city` (an alias); naming both with different cities is a 422.
    pub location: Option<String>,
    /// A calendar day `YYYY-MM-DD` on which the show starts, on the theater's clock.
    pub date: Option<String>,
}

/// Which shows count: upcoming, on sale, in the city, starting on the local day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShowFilter {
    city: Option<String>,
    /// The day on the theaters' clocks.
    day: Option<Date>,
}

/// What `GET /v1/movies` and `GET /v1/events` filter by, parsed and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieFilter {
    pub(super) shows: ShowFilter,
    pub(super) kind: Option<EventKind>,
    pub(super) genre: Option<String>,
    pub(super) q: Option<String>,
}

impl MovieFilter {
    /// The filter of `GET /v1/movies`: movies only.
    pub fn parse(query: &MovieQuery) -> Result<Self, ApiError> {
        Self::parse_events(query, Some(EventKind::Movie))
    }

    /// The filter of `GET /v1/events`: `kind` when given, else every kind.
    pub fn parse_events(query: &MovieQuery, kind: Option<EventKind>) -> Result<Self, ApiError> {
        Ok(Self {
            shows: ShowFilter::parse(
                query.city.as_deref(),
                query.location.as_deref(),
                query.date.as_deref(),
            )?,
            kind,
            genre: text_param("genre", query.genre.as_deref(), MAX_GENRE_CHARS)?,
            q: text_param("q", query.q.as_deref(), MAX_Q_CHARS)?,
        })
    }
}

impl KindQuery {
    /// The kind, or a 422 naming the kinds there are.
    pub fn parse(&self) -> Result<Option<EventKind>, ApiError> {
        match self
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            None => Ok(None),
            Some(k) => k
                .to_lowercase()
                .parse()
                .map(Some)
                .map_err(ApiError::Validation),
        }
    }
}

/// A bounded text parameter: absent or empty is `None`; too long or containing
/// control characters (PostgreSQL text cannot hold NUL) is a 422.
fn text_param(
    name: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max_chars || v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{name} must be at most {max_chars} characters, without control characters"
        )));
    }
    Ok(Some(v.to_owned()))
}

/// `city` or its alias `location`; both naming different cities is a 422.
fn city_param(city: Option<&str>, location: Option<&str>) -> Result<Option<String>, ApiError> {
    let city = text_param("city", city, MAX_CITY_CHARS)?;
    let location = text_param("location", location, MAX_CITY_CHARS)?;
    match (city, location) {
        (Some(c), Some(l)) if c.to_lowercase() != l.to_lowercase() => Err(ApiError::Validation(
            "location is an alias of city: give one of them (or the same city twice)".to_owned(),
        )),
        (c, l) => Ok(c.or(l)),
    }
}

/// `YYYY-MM-DD` as a calendar day.
fn day_param(value: Option<&str>) -> Result<Option<Date>, ApiError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::Validation(
            "date must be a calendar day YYYY-MM-DD (the theater's day)".to_owned(),
        )
    };
    if v.len() != 10 {
        return Err(bad());
    }
    let date = Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad())?;
    // The days around it must exist too (the ends of the day's widest window).
    date.next_day().and_then(Date::next_day).ok_or_else(bad)?;
    date.previous_day().ok_or_else(bad)?;
    Ok(Some(date))
}

/// The instants that every zone's `day` lies within: from its midnight at the
/// easternmost offset to the next midnight at the westernmost.
fn widest_window(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    let start = day.midnight().assume_utc() - MAX_ZONE_OFFSET;
    let end = day.midnight().assume_utc() + time::Duration::days(1) + MAX_ZONE_OFFSET;
    (start, end)
}

impl ShowFilter {
    pub fn parse(
        city: Option<&str>,
        location: Option<&str>,
        date: Option<&str>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            city: city_param(city, location)?,
            day: day_param(date)?,
        })
    }

    /// The filter of a show list (`?city=&location=&date=`).
    pub fn from_query(q: &ShowQuery) -> Result<Self, ApiError> {
        Self::parse(q.city.as_deref(), q.location.as_deref(), q.date.as_deref())
    }

    /// Appends the conditions on `s` (shows), `t` (theaters) of this filter.
    ///
    /// The day is the theater's: a show at 00:30 in Kolkata on the 3rd (19:00 UTC
    /// on the 2nd) is a show of the 3rd. Two conditions say it, both on the bare
    /// `starts_at` so that its indexes serve them:
    /// - the widest window (every zone's day lies in it, 54 hours), constants
    ///   that a plan starting from shows (`shows_starts_at`,
    ///   `shows_on_sale_movie_time`) scans as an index range;
    /// - the exact bounds of the day in the theater's zone (its midnights, computed
    ///   by PostgreSQL's time zone database per theater), which decide, and which a
    ///   plan starting from the city's theaters uses as the range of its index scan
    ///   of each screen's shows (`shows_on_sale_screen_movie`).
    ///
    /// A stored local date per show would have to follow every change of a show's
    /// time or a theater's zone; computing the bounds needs nothing stored.
    pub(super) fn push_conditions(&self, b: &mut QueryBuilder<Postgres>) {
        b.push(" s.status = 'on_sale' and s.starts_at > now()");
        if let Some(city) = &self.city {
            b.push(" and lower(t.city) = lower(")
                .push_bind(city.clone())
                .push(")");
        }
        if let Some(day) = self.day {
            let (start, end) = widest_window(day);
            b.push(" and s.starts_at >= ")
                .push_bind(start)
                .push(" and s.starts_at < ")
                .push_bind(end)
                .push(" and s.starts_at >= (")
                .push_bind(day)
                .push("::date::timestamp at time zone t.time_zone) and s.starts_at < ((")
                .push_bind(day)
                .push("::date + 1)::timestamp at time zone t.time_zone)");
        }
    }

    /// The joins that [`ShowFilter::push_conditions`] needs, after `shows s`.
    pub(super) fn push_joins(&self, b: &mut QueryBuilder<Postgres>) {
        if self.city.is_some() || self.day.is_some() {
            b.push(
                " join screens sc on sc.id = s.screen_id join theaters t on t.id = sc.theater_id",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::rfc3339;

    #[test]
    fn text_parameters_are_bounded_and_free_of_control_characters() {
        assert_eq!(text_param("q", Some("  "), 5).unwrap(), None);
        assert_eq!(text_param("q", Some(" ab "), 5).unwrap(), Some("ab".into()));
        assert!(text_param("q", Some("abcdef"), 5).is_err());
        assert!(text_param("q", Some("a\0b"), 5).is_err());
    }

    #[test]
    fn location_is_an_alias_of_city_and_two_different_cities_are_a_422() {
        assert_eq!(city_param(None, Some("Pune")).unwrap(), Some("Pune".into()));
        assert_eq!(city_param(Some("Pune"), None).unwrap(), Some("Pune".into()));
        assert_eq!(
            city_param(Some("pune"), Some("PUNE")).unwrap(),
            Some("pune".into())
        );
        assert!(city_param(Some("Pune"), Some("Delhi")).is_err());
    }

    #[test]
    fn a_date_is_a_calendar_day_whose_window_covers_every_zone() {
        let day = day_param(Some("2026-12-03")).unwrap().unwrap();
        let (start, end) = widest_window(day);
        // Kiritimati (UTC+14) starts the day first, Baker Island (UTC-12) ends it last.
        assert!(
            start <= time::macros::datetime!(2026-12-02 10:00 UTC),
            "{}",
            rfc3339(start)
        );
        assert!(
            end >= time::macros::datetime!(2026-12-04 12:00 UTC),
            "{}",
            rfc3339(end)
        );
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "24-11-2026",
            "2026-11-24T00:00",
            "9999-12-31x",
        ] {
            assert!(day_param(Some(bad)).is_err(), "{bad}");
        }
        assert!(day_param(Some("9999-12-31")).is_err());
    }

    #[test]
    fn an_unknown_kind_is_a_422_and_kinds_ignore_case() {
        let k = |s: &str| {
            KindQuery {
                kind: Some(s.into()),
            }
            .parse()
        };
        assert_eq!(k("Concert").unwrap(), Some(EventKind::Concert));
        assert_eq!(k("").unwrap(), None);
        assert!(k("opera").is_err());
    }
}
