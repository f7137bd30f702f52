//! Offline scanners: the manifest a scanner downloads before the doors open, and the
//! batch of scans it uploads when it is back online.
//!
//! # What a scanner gets
//!
//! Tickets are signed with Ed25519 (crate `tickets`), so the manifest carries only
//! the public keys: a scanner can verify every ticket and can forge none. With the
//! list of bookings that admit (confirmed) and those that no longer do (cancelled,
//! refunded), it decides at the gate with no network.
//!
//! # First scan wins, by `scanned_at`
//!
//! As in pretix, the check-in of a booking is its EARLIEST scan by the time the
//! scanner says it scanned (`scanned_at`; an online scan's time is the server's
//! clock when it arrived), whatever the order of uploads: a batch uploaded late with
//! an earlier scan moves the check-in back to that scan, and every other scan of
//! the booking is a `duplicate` of it. Each result names the winning scan
//! (`first_scan`). Two scans with the same instant keep the one recorded first.
//!
//! A scan is identified by (booking, `scanned_at`, gate): uploading a batch again
//! answers the same results (the scan that won is `accepted` again, the others
//! `duplicate`) and changes nothing. A `scanned_at` more than
//! `door.scan_clock_skew_max_secs` ahead of the server's clock is `invalid`
//! (`scanned_in_future`): trusting it could not move a check-in, but a later upload
//! could never beat it. A ticket whose booking is no longer confirmed when the
//! batch arrives is `invalid` with the booking's status as reason, and is not
//! recorded: the scanner had an older manifest, staff read the reason.

use super::{admit, gate, micros, signature_reason};
use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::scope::Access;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use contracts::{BookingId, ShowId};
use serde::{Deserialize, Serialize};
use tickets::PublicKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestBooking {
    pub booking_id: BookingId,
    pub seats: Vec<String>,
    /// The check-in so far (null: not yet), so a scanner warns on a second entry.
    pub checked_in_at: Option<String>,
    pub gate: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Manifest {
    pub show_id: ShowId,
    /// When this list was read: check-ins and cancellations after it are unknown
    /// to the scanner until its next download.
    pub generated_at: String,
    /// The Ed25519 public keys that sign tickets (`{kid, alg, public_key}`); no
    /// secret: a scanner verifies tickets and cannot make one.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<PublicKey>,
    pub token_format: &'static str,
    /// Bookings that admit (confirmed).
    pub bookings: Vec<ManifestBooking>,
    /// Bookings of the show that no longer admit (cancelled, refunded): a signed
    /// ticket of one of these is refused.
    pub revoked: Vec<BookingId>,
}

/// booking, status, seats, checked_in_at, gate.
type ManifestRow = (
    Uuid,
    String,
    Vec<String>,
    Option<OffsetDateTime>,
    Option<String>,
);

/// What an offline scanner needs to check this show's tickets with no network.
#[utoipa::path(get, path = "/v1/scanner/shows/{show_id}/manifest", tag = "door", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "Keys and bookings of the show", body = Manifest)))]
pub async fn manifest(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Manifest>, ApiError> {
    access.show(&app.db, id).await?;
    let keys = app.ticket_keys()?;
    let generated_at = OffsetDateTime::now_utc();
    let rows: Vec<ManifestRow> = sqlx::query_as(
        "select b.id, b.status, b.seats, c.checked_in_at, c.gate
               from bookings b left join checkins c on c.booking_id = b.id
              where b.show_id = $1 and b.status in ('confirmed', 'cancelled', 'refunded')
              order by b.id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?;
    let mut bookings = Vec::new();
    let mut revoked = Vec::new();
    for (b, status, seats, at, gate) in rows {
        if status.parse() == Ok(contracts::BookingStatus::Confirmed) {
            bookings.push(ManifestBooking {
                booking_id: BookingId(b),
                seats,
                checked_in_at: at.map(rfc3339),
                gate,
            });
        } else {
            revoked.push(BookingId(b));
        }
    }
    Ok(axum::Json(Manifest {
        show_id: ShowId(id),
        generated_at: rfc3339(generated_at),
        keys: keys.public_keys(),
        token_format: "base64url(json payload {kid,bid,sid,seats,iat}) '.' base64url(ed25519 signature of the first segment's ASCII bytes); no padding",
        bookings,
        revoked,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub token: String,
    #[serde(default)]
    pub gate: Option<String>,
    /// When the scanner scanned it (RFC 3339, the scanner's clock).
    pub scanned_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"checkins": [{"token": "eyJraWQiOiJrMSJ9.c2ln", "gate": "North 2", "scanned_at": "2026-12-07T18:31:05Z"}]}))]
pub struct BatchInput {
    pub checkins: Vec<Scan>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FirstScan {
    pub scanned_at: String,
    pub gate: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanResult {
    /// Null when the token does not name a booking (malformed, forged).
    pub booking_id: Option<BookingId>,
    /// `accepted` (this scan is the booking's check-in), `duplicate` (another scan
    /// is: `first_scan`) or `invalid` (`reason`).
    pub status: &'static str,
    /// The booking's winning scan (null when invalid).
    pub first_scan: Option<FirstScan>,
    /// Why invalid: as `422 ticket_not_valid` answers (`bad_signature`,
    /// `booking_cancelled`, ...), or `scanned_in_future`, `bad_scanned_at`,
    /// `bad_gate`, `other_theater`.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    /// One per scan, in the order sent.
    pub results: Vec<ScanResult>,
}

fn invalid(booking: Option<BookingId>, reason: impl Into<String>) -> ScanResult {
    ScanResult {
        booking_id: booking,
        status: "invalid",
        first_scan: None,
        reason: Some(reason.into()),
    }
}

/// A scan checked and recorded, whose status is known once the whole batch is in.
struct Recorded {
    booking: BookingId,
    at: OffsetDateTime,
    gate: Option<String>,
}

/// Uploads an offline scanner's scans. First scan wins by `scanned_at` (see the
/// module documentation); uploading the same batch again answers the same and
/// changes nothing.
#[utoipa::path(post, path = "/v1/checkins/batch", tag = "door", security(("bearer" = [])),
    request_body = BatchInput,
    responses((status = 200, description = "One result per scan, in order", body = BatchResults)))]
#[tracing::instrument(skip_all, fields(scans = body.checkins.len()))]
pub async fn batch(
    State(app): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<BatchInput>,
) -> Result<axum::Json<BatchResults>, ApiError> {
    let max = app.settings.door.batch_items_max;
    if body.checkins.len() > max {
        return Err(ApiError::Validation(format!(
            "a batch holds at most {max} check-ins; upload the rest in another"
        )));
    }
    let keys = app.ticket_keys()?;
    let skew = time::Duration::seconds(
        i64::try_from(app.settings.door.scan_clock_skew_max_secs).unwrap_or(i64::MAX),
    );
    let mut checked: Vec<Result<Recorded, ScanResult>> = Vec::with_capacity(body.checkins.len());
    for scan in &body.checkins {
        let claims = match keys.verify(scan.token.trim()) {
            Ok(c) => c,
            Err(e) => {
                checked.push(Err(invalid(None, signature_reason(&e))));
                continue;
            }
        };
        let bid = Some(claims.bid);
        let Ok(at) = OffsetDateTime::parse(scan.scanned_at.trim(), &Rfc3339) else {
            checked.push(Err(invalid(bid, "bad_scanned_at")));
            continue;
        };
        let at = micros(at);
        if at > OffsetDateTime::now_utc() + skew {
            checked.push(Err(invalid(bid, "scanned_in_future")));
            continue;
        }
        let Ok(gate) = gate(scan.gate.as_deref()) else {
            checked.push(Err(invalid(bid, "bad_gate")));
            continue;
        };
        checked.push(
            match record(&app, &access, &claims, at, gate.clone()).await? {
                Ok(()) => Ok(Recorded {
                    booking: claims.bid,
                    at,
                    gate,
                }),
                Err(reason) => Err(invalid(bid, reason)),
            },
        );
    }
    // Every scan is in: each one is judged against its booking's winning scan now,
    // so a later scan earlier in the batch than a duplicate of it reads the same as
    // the other way round.
    let ids: Vec<Uuid> = checked
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|r| r.booking.0))
        .collect();
    let firsts: std::collections::HashMap<Uuid, (OffsetDateTime, Option<String>)> =
        sqlx::query_as::<_, (Uuid, OffsetDateTime, Option<String>)>(
            "select booking_id, checked_in_at, gate from checkins where booking_id = any($1)",
        )
        .bind(&ids)
        .fetch_all(&app.db)
        .await?
        .into_iter()
        .map(|(b, at, g)| (b, (at, g)))
        .collect();
    let results = checked
        .into_iter()
        .map(|r| match r {
            Err(invalid) => invalid,
            Ok(rec) => {
                let first = firsts.get(&rec.booking.0);
                let won = first.is_some_and(|(at, g)| *at == rec.at && *g == rec.gate);
                ScanResult {
                    booking_id: Some(rec.booking),
                    status: if won { "accepted" } else { "duplicate" },
                    first_scan: first.map(|(at, g)| FirstScan {
                        scanned_at: rfc3339(*at),
                        gate: g.clone(),
                    }),
                    reason: None,
                }
            }
        })
        .collect();
    Ok(axum::Json(BatchResults { results }))
}

/// Records one offline scan: inserts the check-in, or moves it back to this scan
/// when this one is earlier. `Err(reason)` when the ticket does not admit.
async fn record(
    app: &AppState,
    access: &Access,
    claims: &tickets::TicketClaims,
    at: OffsetDateTime,
    gate: Option<String>,
) -> Result<Result<(), String>, ApiError> {
    let mut tx = app.db.begin().await?;
    let admitted = match admit(&mut tx, access, claims).await {
        Ok(a) => a,
        Err(ApiError::TicketNotValid { reason }) => return Ok(Err(reason)),
        Err(ApiError::Forbidden) => return Ok(Err("other_theater".into())),
        Err(e) => return Err(e),
    };
    // The row lock of the upsert orders concurrent uploads of one booking; the
    // `where` keeps the earliest scan (an equal instant keeps the one recorded).
    sqlx::query(
        "insert into checkins (booking_id, show_id, seats, checked_in_at, gate, source, scanned_by)
         values ($1, $2, $3, $4, $5, 'offline', $6)
         on conflict (booking_id) do update
            set checked_in_at = excluded.checked_in_at, gate = excluded.gate,
                source = excluded.source, scanned_by = excluded.scanned_by, recorded_at = now()
          where checkins.checked_in_at > excluded.checked_in_at",
    )
    .bind(claims.bid.0)
    .bind(admitted.show)
    .bind(&admitted.seats)
    .bind(at)
    .bind(&gate)
    .bind(access.caller.user_id.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
