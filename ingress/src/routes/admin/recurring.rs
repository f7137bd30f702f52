//! Recurring schedules (API.md, Round 2, "Theater staff"): `POST
//! /v1/admin/shows/recurring` puts a show at each of `times` on the theater's clock,
//! on every day from `from` to `to` (optionally only some weekdays), all or none. An
//! overlap, with a live show of the screen or between two of the new ones (the
//! cleaning buffer included), refuses the whole request with a 409 that names every
//! one, so the admin can fix the times at once rather than one retry per clash.

use super::shows::{ShowTimes, check_prices, event_of, insert_show, overlapping, schedule};
use super::*;
use crate::problem::Overlap;
use time::{Date, Time, Weekday};

/// Most shows one request creates (a quarter of four shows a day).
const MAX_SHOWS: usize = 400;
/// Most start times per day.
const MAX_TIMES: usize = 12;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_id": "0193a000-0000-7000-8000-000000000010", "screen_id": "0193a000-0000-7000-8000-000000000011", "times": ["13:00", "18:30"], "from": "2026-12-10", "to": "2026-12-16", "weekdays": ["fri", "sat", "sun"], "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct RecurringInput {
    #[serde(default)]
    pub movie_id: Option<Uuid>,
    /// The event (of any kind); give it or `movie_id`.
    #[serde(default)]
    pub event_id: Option<Uuid>,
    pub screen_id: Uuid,
    /// Start times on the theater's clock, `HH:MM` (1 to 12).
    pub times: Vec<String>,
    /// The first day, `YYYY-MM-DD` on the theater's calendar.
    pub from: String,
    /// The last day (included).
    pub to: String,
    /// Only these days of the week (`mon` ... `sun`); every day when absent.
    #[serde(default)]
    pub weekdays: Option<Vec<String>>,
    /// One price per seat type of the screen's layout, all in one currency.
    pub prices: Vec<Price>,
}

/// One show created.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scheduled {
    pub id: Uuid,
    pub starts_at: String,
    pub starts_at_local: String,
    pub ends_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecurringCreated {
    pub created: usize,
    /// By start.
    pub items: Vec<Scheduled>,
}

fn day(field: &str, raw: &str) -> Result<Date, ApiError> {
    Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| ApiError::Validation(format!("{field} must be a day, YYYY-MM-DD")))
}

fn clock(raw: &str) -> Result<Time, ApiError> {
    Time::parse(
        raw.trim(),
        time::macros::format_description!("[hour]:[minute]"),
    )
    .map_err(|_| {
        ApiError::Validation(format!(
            "times must be HH:MM on the theater's clock, not {raw:?}"
        ))
    })
}

fn weekday(raw: &str) -> Result<Weekday, ApiError> {
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => {
            return Err(ApiError::Validation(format!(
                "weekdays are mon, tue, wed, thu, fri, sat, sun; not {raw:?}"
            )));
        }
    })
}

/// Every start the request names, as instants, by start; a 422 for what cannot be.
fn starts(body: &RecurringInput, zone: &str) -> Result<Vec<OffsetDateTime>, ApiError> {
    let (from, to) = (day("from", &body.from)?, day("to", &body.to)?);
    if to < from {
        return Err(ApiError::Validation("to is before from".into()));
    }
    if body.times.is_empty() || body.times.len() > MAX_TIMES {
        return Err(ApiError::Validation(format!(
            "times holds 1 to {MAX_TIMES} start times"
        )));
    }
    let times = body
        .times
        .iter()
        .map(|t| clock(t))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let days: Option<Vec<Weekday>> = body
        .weekdays
        .as_ref()
        .map(|w| w.iter().map(|d| weekday(d)).collect::<Result<_, _>>())
        .transpose()?;
    let now = OffsetDateTime::now_utc();
    let mut out = vec![];
    let mut d = from;
    loop {
        if days.as_ref().is_none_or(|w| w.contains(&d.weekday())) {
            for t in &times {
                let at = platform::localtime::instant_at(d, *t, zone).ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("theater zone {zone} unknown"))
                })?;
                if at <= now || at > now + time::Duration::days(MAX_DAYS_AHEAD) {
                    return Err(ApiError::Validation(format!(
                        "every show must be in the future and at most {MAX_DAYS_AHEAD} days ahead ({d} {t} is not)"
                    )));
                }
                out.push(at);
                if out.len() > MAX_SHOWS {
                    return Err(ApiError::Validation(format!(
                        "at most {MAX_SHOWS} shows per request"
                    )));
                }
            }
        }
        match d.next_day() {
            Some(next) if next <= to => d = next,
            _ => break,
        }
    }
    if out.is_empty() {
        return Err(ApiError::Validation(
            "no day between from and to is one of weekdays".into(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Schedules a show at each of `times` on each day from `from` to `to`, all or none.
#[utoipa::path(post, path = "/v1/admin/shows/recurring", tag = "admin", security(("bearer" = [])),
    request_body = RecurringInput,
    responses(
        (status = 201, description = "Every show, created", body = RecurringCreated),
        (status = 404, description = "No such event or screen (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Overlaps, each named in `overlaps`; nothing was created (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A day, time, weekday or price that cannot be (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_recurring(
    State(app): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<RecurringInput>,
) -> Result<Response, ApiError> {
    let event = event_of(body.movie_id, body.event_id)?
        .ok_or_else(|| ApiError::Validation("event_id (or movie_id) is required".into()))?;
    let movie = app.catalog.movie_of_any_kind(event).await?;
    let screen = super::screens::screen(&app, body.screen_id).await?;
    access.theater(screen.theater_id)?;
    check_prices(&body.prices, &screen.layout)?;
    let zone: String = sqlx::query_scalar("select time_zone from theaters where id = $1")
        .bind(screen.theater_id)
        .fetch_one(&app.db)
        .await?;
    let local = |t: OffsetDateTime| platform::localtime::local_rfc3339(t, &zone);
    let plan: Vec<ShowTimes> = starts(&body, &zone)?
        .into_iter()
        .map(|start| {
            let (ends, busy) = schedule(&app, start, movie.duration_min);
            ShowTimes { start, ends, busy }
        })
        .collect();
    // Overlaps among the new shows (sorted by start: only neighbours can meet).
    let mut overlaps: Vec<Overlap> = plan
        .windows(2)
        .filter(|w| w[1].start < w[0].busy)
        .map(|w| Overlap {
            starts_at_local: local(w[1].start),
            other_show_id: None,
            other_starts_at_local: local(w[0].start),
        })
        .collect();
    let mut tx = app.db.begin().await?;
    // The screen's shows are locked against a concurrent schedule of the same
    // screen until this one commits (the exclusion constraint would refuse it
    // anyway; the lock turns that into this 409 rather than a constraint error).
    sqlx::query("select id from screens where id = $1 for update")
        .bind(screen.id)
        .execute(&mut *tx)
        .await?;
    for t in &plan {
        if let Some((other, at)) =
            overlapping(&mut tx, screen.id, t.start, t.busy, Uuid::nil()).await?
        {
            overlaps.push(Overlap {
                starts_at_local: local(t.start),
                other_show_id: Some(other),
                other_starts_at_local: local(at),
            });
        }
    }
    if !overlaps.is_empty() {
        overlaps.sort_by(|a, b| a.starts_at_local.cmp(&b.starts_at_local));
        return Err(ApiError::ScheduleOverlaps(overlaps));
    }
    let mut items = Vec::with_capacity(plan.len());
    for t in plan {
        let id = Uuid::now_v7();
        insert_show(&mut tx, id, movie.id, screen.id, t, &body.prices, None).await?;
        items.push(Scheduled {
            id,
            starts_at: rfc3339(t.start),
            starts_at_local: local(t.start),
            ends_at: rfc3339(t.ends),
        });
    }
    tx.commit().await?;
    let created = RecurringCreated {
        created: items.len(),
        items,
    };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}
