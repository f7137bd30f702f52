//! Sales reports over a period, grouped by day, show, event (movie) or theater, as
//! JSON or CSV; within the caller's theater scope.
//!
//! A report covers the shows that START in `[from, to)` (UTC; `from`/`to` as
//! RFC 3339 times or `YYYY-MM-DD` days, `to` inclusive as a day), so a show's
//! tickets, money and occupancy land in one row whatever day they were sold on:
//! - `tickets`: seats of confirmed bookings;
//! - `revenue`: money kept: confirmed bookings' amounts plus the fees kept;
//! - `fees_kept`: what cancelled bookings paid and were not refunded (the
//!   cancellation fee);
//! - `refunds`: refunds that succeeded;
//! - `occupancy`: tickets over the capacity of the group's shows (0 to 1).
//!
//! Amounts are minor units of the shows' currency (one currency per platform today).
//!
//! Cost: one pass over the period's shows (`shows_starts_at_all`), their bookings
//! (`bookings_show`) and payments. Measured on the large seed with 1.1 million
//! bookings on a loaded 2-core machine: a theater's report over the whole seed
//! ~50 ms, the platform-wide one (47,000 shows) ~12 s. Platform-wide reports over a
//! year need a daily rollup maintained beside the bookings; not built yet.

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

    /// The SQL of the group key over the `s` rows (fixed text, never input).
    fn key_sql(self) -> &'static str {
        match self {
            Self::Day => "to_char(s.starts_at at time zone 'UTC', 'YYYY-MM-DD')",
            Self::Show => "s.id::text",
            Self::Event => "s.movie_id::text",
            Self::Theater => "s.theater_id::text",
        }
    }
}

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
    let sql = format!(
        "with s as (
            select s.id, s.movie_id, sc.theater_id, s.starts_at, sc.seat_count
              from shows s join screens sc on sc.id = s.screen_id
             where s.starts_at >= $1 and s.starts_at < $2
               and ($3::uuid[] is null or sc.theater_id = any($3))
               and ($4::uuid is null or sc.theater_id = $4)
         ), per_show as (
            select s.id, s.movie_id, s.theater_id, s.starts_at, s.seat_count,
                   coalesce(sum(cardinality(b.seats)) filter (where b.status = 'confirmed'), 0) as tickets,
                   coalesce(sum(b.amount) filter (where b.status = 'confirmed'), 0) as sold,
                   coalesce(sum(p.kept) filter (where b.status in ('cancelled', 'refunded')), 0) as fees,
                   coalesce(sum(p.refunded), 0) as refunds
              from s left join bookings b on b.show_id = s.id
                     -- A booking may have several payment attempts: one row per booking
                     -- here, so its tickets and amount count once.
                     left join lateral (
                        select sum(p.amount - coalesce(p.refund_amount, 0))
                                   filter (where p.status = 'succeeded') as kept,
                               sum(p.refund_amount) filter (where p.refund_status = 'succeeded') as refunded
                          from payments p where p.booking_id = b.id
                     ) p on true
             group by s.id, s.movie_id, s.theater_id, s.starts_at, s.seat_count
         )
         select {key} as key, sum(s.tickets)::bigint, (sum(s.sold) + sum(s.fees))::bigint,
                sum(s.fees)::bigint, sum(s.refunds)::bigint, sum(s.seat_count)::bigint
           from per_show s
          group by 1 order by 1",
        key = group.key_sql()
    );
    // Safe: the only text spliced in is one of GroupBy::key_sql's constants.
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(access.scope.theaters())
        .bind(q.theater_id)
        .fetch_all(&app.db)
        .await?;
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
