//! The catalog's filters, parsed and bounded at the edge.

use crate::problem::ApiError;
use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use utoipa::IntoParams;

/// Longest search text, city and genre accepted (characters).
const MAX_Q_CHARS: usize = 100;
const MAX_CITY_CHARS: usize = 100;
const MAX_GENRE_CHARS: usize = 40;

/// `?city=&date=&genre=&q=` of `GET /v1/movies`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// A calendar day `YYYY-MM-DD`, in UTC, on which a show starts.
    pub date: Option<String>,
    /// One of the movie's genres, exactly (at most 40 characters).
    pub genre: Option<String>,
    /// Text search over title and cast, typo-tolerant (at most 100 characters).
    pub q: Option<String>,
}

/// `?city=&date=` of `GET /v1/movies/{movie_id}/shows`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// City of the theater, case-insensitive (at most 100 characters).
    pub city: Option<String>,
    /// A calendar day `YYYY-MM-DD`, in UTC, on which the show starts.
    pub date: Option<String>,
}

/// Which shows count: upcoming, on sale, in the city, starting on the day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShowFilter {
    city: Option<String>,
    /// `[start, end)` of the UTC day.
    day: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// What `GET /v1/movies` filters by, parsed and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieFilter {
    pub(super) shows: ShowFilter,
    pub(super) genre: Option<String>,
    pub(super) q: Option<String>,
}

impl MovieFilter {
    pub fn parse(query: &MovieQuery) -> Result<Self, ApiError> {
        Ok(Self {
            shows: ShowFilter::parse(query.city.as_deref(), query.date.as_deref())?,
            genre: text_param("genre", query.genre.as_deref(), MAX_GENRE_CHARS)?,
            q: text_param("q", query.q.as_deref(), MAX_Q_CHARS)?,
        })
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

/// `YYYY-MM-DD` as the UTC day `[start, end)`.
fn day_param(value: Option<&str>) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, ApiError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::Validation("date must be a calendar day YYYY-MM-DD (UTC)".to_owned());
    if v.len() != 10 {
        return Err(bad());
    }
    let date = Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad())?;
    let next = date.next_day().ok_or_else(bad)?;
    Ok(Some((
        date.midnight().assume_utc(),
        next.midnight().assume_utc(),
    )))
}

impl ShowFilter {
    pub fn parse(city: Option<&str>, date: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            city: text_param("city", city, MAX_CITY_CHARS)?,
            day: day_param(date)?,
        })
    }

    /// Appends the conditions on `s` (shows), `t` (theaters) of this filter.
    pub(super) fn push_conditions(&self, b: &mut QueryBuilder<Postgres>) {
        b.push(" s.status = 'on_sale' and s.starts_at > now()");
        if let Some(city) = &self.city {
            b.push(" and lower(t.city) = lower(")
                .push_bind(city.clone())
                .push(")");
        }
        if let Some((start, end)) = self.day {
            b.push(" and s.starts_at >= ")
                .push_bind(start)
                .push(" and s.starts_at < ")
                .push_bind(end);
        }
    }

    /// The joins that [`ShowFilter::push_conditions`] needs, after `shows s`.
    pub(super) fn push_joins(&self, b: &mut QueryBuilder<Postgres>) {
        if self.city.is_some() {
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
    fn a_date_is_one_utc_day_and_anything_else_is_a_422() {
        let (start, end) = day_param(Some("2026-11-24")).unwrap().unwrap();
        assert_eq!(rfc3339(start), "2026-11-24T00:00:00Z");
        assert_eq!(rfc3339(end), "2026-11-25T00:00:00Z");
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
}
