//! Staff's booking lookup: by booking id, email or phone, only within the caller's
//! theaters.

use crate::extract::ApiQuery;
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::scope::Access;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use contracts::{BookingId, ShowId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest query (an email address at most).
const Q_CHARS_MAX: usize = 254;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// A booking id, an email address (any case) or a phone number (spaces,
    /// dashes and brackets ignored).
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingHit {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub starts_at: String,
    pub movie: String,
    pub theater_id: Uuid,
    pub theater: String,
    pub status: String,
    pub seats: Vec<String>,
    pub amount: i64,
    pub currency: Option<String>,
    pub created_at: String,
    pub customer: Customer,
    /// When the booking was checked in (null: not yet).
    pub checked_in_at: Option<String>,
}

/// What `q` names.
#[derive(Debug, PartialEq, Eq)]
enum Needle {
    Booking(Uuid),
    Email(String),
    Phone(String),
}

fn needle(raw: Option<&str>) -> Result<Needle, ApiError> {
    let q = raw.map(str::trim).unwrap_or_default();
    if q.is_empty() || q.chars().count() > Q_CHARS_MAX || q.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "q is a booking id, an email or a phone number (1 to {Q_CHARS_MAX} characters)"
        )));
    }
    if let Ok(id) = q.parse::<Uuid>() {
        return Ok(Needle::Booking(id));
    }
    if q.contains('@') {
        return Ok(Needle::Email(q.to_lowercase()));
    }
    let phone = phone_digits(q);
    if phone.trim_start_matches('+').len() < 4
        || q.chars()
            .any(|c| !(c.is_ascii_digit() || " +-().".contains(c)))
    {
        return Err(ApiError::Validation(
            "q is a booking id, an email or a phone number (at least 4 digits)".into(),
        ));
    }
    Ok(Needle::Phone(phone))
}

/// A phone number's digits and a leading `+`: how `users_phone_digits` indexes it.
fn phone_digits(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct RecentCursor(i64, Uuid);

type HitRow = (
    Uuid,
    Uuid,
    OffsetDateTime,
    String,
    Uuid,
    String,
    String,
    Vec<String>,
    i64,
    Option<String>,
    OffsetDateTime,
    String,
    String,
    Option<String>,
    Option<OffsetDateTime>,
);

/// Finds bookings by booking id, email or phone, newest first, only at the
/// caller's theaters (a scoped account never sees another theater's booking, not
/// even that it exists).
#[utoipa::path(get, path = "/v1/admin/bookings", tag = "door", security(("bearer" = [])),
    params(LookupQuery, PageParams),
    responses((status = 200, description = "A page of matching bookings", body = Page<BookingHit>)))]
pub async fn lookup(
    State(app): State<AppState>,
    access: Access,
    ApiQuery(q): ApiQuery<LookupQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<Page<BookingHit>>, ApiError> {
    let needle = needle(q.q.as_deref())?;
    let limit = page.limit()?;
    let after = page
        .cursor::<RecentCursor>()?
        .map(|RecentCursor(us, id)| crate::pagination::from_unix_micros(us).map(|t| (t, id)))
        .transpose()?;
    let (by_id, email, phone) = match needle {
        Needle::Booking(id) => (Some(id), None, None),
        Needle::Email(e) => (None, Some(e), None),
        Needle::Phone(p) => (None, None, Some(p)),
    };
    // Each branch uses an index: the primary key, users' email, users_phone_digits
    // (then bookings_user_recent).
    let rows: Vec<HitRow> = sqlx::query_as(
        "select b.id, b.show_id, s.starts_at, m.title, t.id, t.name, b.status, b.seats, b.amount,
                b.currency, b.created_at, u.email, u.name, u.phone, c.checked_in_at
           from bookings b
           join users u on u.id = b.user_id
           join shows s on s.id = b.show_id
           join movies m on m.id = s.movie_id
           join screens sc on sc.id = s.screen_id
           join theaters t on t.id = sc.theater_id
           left join checkins c on c.booking_id = b.id
          where ($1::uuid is null or b.id = $1)
            and ($2::text is null or u.email = $2)
            and ($3::text is null or regexp_replace(coalesce(u.phone, ''), '[^0-9+]', '', 'g') = $3)
            and ($4::uuid[] is null or t.id = any($4))
            and ($5::timestamptz is null or (b.created_at, b.id) < ($5, $6))
          order by b.created_at desc, b.id desc
          limit $7",
    )
    .bind(by_id)
    .bind(email)
    .bind(phone)
    .bind(access.scope.theaters())
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| {
        RecentCursor(crate::pagination::unix_micros(r.10), r.0)
    });
    Ok(axum::Json(page.map(|r| BookingHit {
        booking_id: BookingId(r.0),
        show_id: ShowId(r.1),
        starts_at: rfc3339(r.2),
        movie: r.3,
        theater_id: r.4,
        theater: r.5,
        status: r.6,
        seats: r.7,
        amount: r.8,
        currency: r.9,
        created_at: rfc3339(r.10),
        customer: Customer {
            email: r.11,
            name: r.12,
            phone: r.13,
        },
        checked_in_at: r.14.map(rfc3339),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_a_booking_id_an_email_or_a_phone() {
        let id = Uuid::now_v7();
        assert_eq!(needle(Some(&id.to_string())).unwrap(), Needle::Booking(id));
        assert_eq!(
            needle(Some(" Asha@Example.COM ")).unwrap(),
            Needle::Email("asha@example.com".into())
        );
        assert_eq!(
            needle(Some("+91 (98) 765-43210")).unwrap(),
            Needle::Phone("+919876543210".into())
        );
        for bad in [
            None,
            Some(""),
            Some("12"),
            Some("drop table"),
            Some("a\u{0}b"),
        ] {
            assert!(needle(bad).is_err(), "{bad:?}");
        }
    }
}
