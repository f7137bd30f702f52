//! Sales reports over a period, grouped by day, show, event (movie) or theater, as
//! JSON or CSV; within the caller's theater scope.
//!
//! A report covers the shows that START in `[from, to)` (UTC; `from`/`to` as
//! RFC 3339 times or `YYYY-MM-DD` days, `to` inclusive as a day), so a show's
//! tickets, money and occupancy land in one row whatever day they were sold on:
//! - `tickets`: seats and general-admission places of confirmed bookings;
//! - `revenue`: money kept: confirmed bookings' amounts plus the fees kept;
//! - `fees_kept`: what cancelled bookings paid and were not refunded (the
//!   cancellation fee);
//! - `refunds`: refunds that succeeded;
//! - `occupancy`: tickets over the capacity of the group's shows, seats and zone
//!   places (0 to 1).
//!
//! Amounts are minor units of the shows' currency (one currency per platform today).
//!
//! Cost: a report reads `show_sales` alone, one row per show of the period holding
//! its figures and what it is grouped by, kept by triggers on `bookings` and
//! `payments` in the transactions that change them and on `shows` and `screens`
//! (migration `20261211100000_show_sales.sql`): whatever the number of bookings, the
//! cost is that of the period's shows. Over a year of the large seed (47,516 shows,
//! 1.1 million bookings; `SCENARIOS=reports scripts/bench.sh`, `BENCHMARKS.md`) on
//! the shared 2-core machine, p99: 43 ms platform-wide by day, 45-47 ms by event or
//! theater, 112 ms by show (47,516 rows, 6 MB of JSON), 3-6 ms one theater's.
//! Computed from the bookings and payments, as before the rollup, the same figures
//! took 5-12 s.

use super::*;
use crate::extract::ApiQuery as Query;
use axum::http::{HeaderMap, HeaderValue, header};
use time::macros::format_description;

/// The longest period of one report.
const PERIOD_DAYS_MAX: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Start of the period: an RFC 3339 time or a day `YYYY-MM-DD` (UTC).
    pub from: Option<String>,
    /// End of the period: an RFC 3339 time (exclusive) or a day (inclusive).
    pub to: Option<String>,
    /// `day` (the show's start, UTC), `show`, `event` (the movie) or `theater`.
    pub group_by: Option<String>,
    /// Only this theater.
    pub theater_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRow {
    /// The group: a day `YYYY-MM-DD`, or a show, event or theater id.
    pub key: String,
    pub tickets: i64,
    pub revenue: i64,
    pub fees_kept: i64,
    pub refunds: i64,
    pub occupancy: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SalesReport {
    pub from: String,
    pub to: String,
    pub group_by: String,
    pub items: Vec<ReportRow>,
}

#[derive(Debug, Clone, Copy)]
enum GroupBy {
    Day,
    Show,
    Event,
    Theater,
}

impl GroupBy {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.map(str::trim).unwrap_or("day") {
            "day" => Ok(Self::Day),
            "show" => Ok(Self::Show),
            "event" => Ok(Self::Event),
            "theater" => Ok(Self::Theater),
            _ => Err(ApiError::Validation(
                "group_by is day, show, event or theater".into(),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Show => "show",
            Self::Event => "event",
            Self::Theater => "theater",
        }
    }

    /// The group key over the `ss` (`show_sales`) rows, in its own type so that
    /// grouping hashes it, and as text over the grouped `r.key` (fixed text, never
    /// input). `None`: one row per show, nothing to group.
    fn key_sql(self) -> Option<(&'static str, &'static str)> {
        match self {
            // `show_sales_start_day` (statistics) tells the planner how few days
            // there are.
            Self::Day => Some((
                "(ss.starts_at at time zone 'UTC')::date",
                "to_char(r.key, 'YYYY-MM-DD')",
            )),
            Self::Show => None,
            Self::Event => Some(("ss.movie_id", "r.key::text")),
            Self::Theater => Some(("ss.theater_id", "r.key::text")),
        }
    }
}

/// Each show's figures, over the period's shows (`show_sales_starts_at`): one
/// `show_sales` row per show; `{theaters}` narrows it to some theaters
/// (`show_sales_theater`).
const PER_SHOW: &str = "ss.tickets, (ss.sold + ss.fees)::int8 as revenue, ss.fees, ss.refunds,
        ss.capacity::int8 as capacity
   from show_sales ss
  where ss.starts_at >= $1 and ss.starts_at < $2 {theaters}";

/// A time, or a day's start (`end`: the next day's start, so the day is included).
fn bound(field: &str, raw: Option<&str>, end: bool) -> Result<OffsetDateTime, ApiError> {
    let raw = raw
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::Validation(format!("{field} is required (RFC 3339 or YYYY-MM-DD)"))
        })?;
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(t);
    }
    let day =
        time::Date::parse(raw, format_description!("[year]-[month]-[day]")).map_err(|_| {
            ApiError::Validation(format!(
                "{field} must be an RFC 3339 time or a day YYYY-MM-DD"
            ))
        })?;
    let day = if end {
        day.next_day().unwrap_or(day)
    } else {
        day
    };
    Ok(day.midnight().assume_utc())
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/csv")))
}

type Row = (String, i64, i64, i64, i64, i64);

/// Tickets, revenue, fees kept, refunds and occupancy of the shows of a period,
/// grouped; `Accept: text/csv` for a CSV file.
#[utoipa::path(get, path = "/v1/admin/reports/sales", tag = "admin", security(("bearer" = [])),
    params(ReportQuery),
    responses((status = 200, description = "The report", content(
        (SalesReport = "application/json"),
        (String = "text/csv"),
    ))))]
pub async fn sales_report(
    State(app): State<AppState>,
    access: Access,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let from = bound("from", q.from.as_deref(), false)?;
    let to = bound("to", q.to.as_deref(), true)?;
    if to <= from || to - from > time::Duration::days(PERIOD_DAYS_MAX) {
        return Err(ApiError::Validation(format!(
            "to must be after from, at most {PERIOD_DAYS_MAX} days later"
        )));
    }
    let group = GroupBy::parse(q.group_by.as_deref())?;
    if let Some(t) = q.theater_id {
        access.theater(t)?;
    }
    // Only these theaters: the one asked for (in scope, checked above), else the
    // caller's; every theater for a platform admin. (A filter only when there is
    // one, so that the planner can use the theater's index.)
    let theaters = q
        .theater_id
        .map(|t| vec![t])
        .or_else(|| access.scope.theaters());
    let per_show = PER_SHOW.replace(
        "{theaters}",
        if theaters.is_some() {
            "and ss.theater_id = any($3)"
        } else {
            ""
        },
    );
    // One row per show of the period: its `show_sales` rollup (kept by triggers on
    // shows, screens, bookings and payments; migration
    // `20261211100000_show_sales.sql`), summed per group by a hash; sorted here (by
    // the key's text, which is also the order of the days and of the ids) rather
    // than by the database, whose sort of tens of thousands of rows spills to disk.
    let sql = match group.key_sql() {
        None => format!("select ss.show_id::text as key, {per_show}"),
        Some((key, text)) => format!(
            "select {text}, sum(r.tickets)::int8, sum(r.revenue)::int8, sum(r.fees)::int8,
                    sum(r.refunds)::int8, sum(r.capacity)::int8
               from (select {key} as key, {per_show}) r
              group by r.key"
        ),
    };
    // Safe: the only text spliced in is PER_SHOW, its filter and GroupBy::key_sql's
    // constants.
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(theaters) = theaters {
        query = query.bind(theaters);
    }
    let mut rows: Vec<Row> = query.fetch_all(&app.db).await?;
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<ReportRow> = rows
        .into_iter()
        .map(
            |(key, tickets, revenue, fees_kept, refunds, capacity)| ReportRow {
                key,
                tickets,
                revenue,
                fees_kept,
                refunds,
                occupancy: if capacity > 0 {
                    (tickets as f64 / capacity as f64 * 10_000.0).round() / 10_000.0
                } else {
                    0.0
                },
            },
        )
        .collect();
    if wants_csv(&headers) {
        let mut csv = String::from("key,tickets,revenue,fees_kept,refunds,occupancy\n");
        for r in &items {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                r.key, r.tickets, r.revenue, r.fees_kept, r.refunds, r.occupancy
            ));
        }
        let mut res = csv.into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(res);
    }
    Ok(axum::Json(SalesReport {
        from: rfc3339(from),
        to: rfc3339(to),
        group_by: group.name().to_owned(),
        items,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_bound_covers_the_whole_day_and_times_pass_through() {
        let from = bound("from", Some("2026-12-01"), false).unwrap();
        let to = bound("to", Some("2026-12-01"), true).unwrap();
        assert_eq!(to - from, time::Duration::days(1));
        let t = bound("to", Some("2026-12-01T10:00:00Z"), true).unwrap();
        assert_eq!(t.hour(), 10);
        assert!(bound("from", None, false).is_err());
        assert!(bound("from", Some("yesterday"), false).is_err());
        assert!(GroupBy::parse(Some("movie")).is_err());
    }
}
