//! Cursor pagination (API.md, "Conventions"): `?limit=` (default 20, at most 100) and
//! `?cursor=`; answers are `{items, next_cursor}`.
//!
//! A cursor is the sort key of the last item of a page, serialised as JSON and
//! base64url-encoded: opaque to clients, and stable while rows are added (keyset
//! pagination, never OFFSET). A cursor that does not decode is a 400.

use crate::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// Longest cursor accepted (a cursor is a small sort key).
const MAX_CURSOR_LEN: usize = 512;

/// `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size, or a 422 when out of range.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::Validation(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// The decoded cursor, `None` on the first page, a 400 when it is not one of ours.
    pub fn cursor<C: DeserializeOwned>(&self) -> Result<Option<C>, ApiError> {
        let Some(raw) = self.cursor.as_deref() else {
            return Ok(None);
        };
        let bad = || ApiError::BadRequest("cursor is not a next_cursor of this list".to_owned());
        if raw.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` fetched rows: the extra row only says there is a
    /// next page, whose cursor is the sort key of the last item kept.
    pub fn from_rows<C: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// A time as microseconds since the epoch: PostgreSQL's precision, so a cursor
/// holding it compares exactly with the column it came from.
pub fn unix_micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The time of a cursor's [`unix_micros`]; a 400 when out of range.
pub fn from_unix_micros(us: i64) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|_| ApiError::BadRequest("cursor is not a next_cursor of this list".to_owned()))
}

/// Encodes a sort key as a cursor.
pub fn encode_cursor<C: Serialize>(key: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_a_400() {
        let c = encode_cursor(&("2026-11-24T10:00:00Z", 7));
        let p = PageParams {
            limit: None,
            cursor: Some(c),
        };
        assert_eq!(
            p.cursor::<(String, i32)>().unwrap(),
            Some(("2026-11-24T10:00:00Z".to_owned(), 7))
        );
        for bad in ["%%%", "bm90IGpzb24", &"A".repeat(600)] {
            let p = PageParams {
                limit: None,
                cursor: Some(bad.to_owned()),
            };
            assert!(matches!(
                p.cursor::<(String, i32)>(),
                Err(ApiError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        let p = |limit| PageParams {
            limit,
            cursor: None,
        };
        assert_eq!(p(None).limit().unwrap(), 20);
        assert_eq!(p(Some(100)).limit().unwrap(), 100);
        assert!(p(Some(0)).limit().is_err());
        assert!(p(Some(101)).limit().is_err());
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_past_the_last() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        let next = PageParams {
            limit: None,
            cursor: page.next_cursor,
        };
        assert_eq!(next.cursor::<i32>().unwrap(), Some(2));
        assert!(Page::from_rows(vec![1, 2], 2, |n| *n).next_cursor.is_none());
    }
}
