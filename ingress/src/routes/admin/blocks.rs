//! Blocking broken seats of a screen from a time on (issue 15): every show of the
//! screen starting at or after `from` stops selling them; earlier shows are never
//! touched. The block is stored first (a sequencer that loads a show later finds
//! it), then a `BlockSeats` command goes through each affected show's partition,
//! ordered with its bookings: a hold decided before it is answered here (for staff
//! to move), a hold after it is refused. The answer waits, for a bounded time,
//! until every affected show's sequencer has applied the block (`settled`).

use super::*;
use contracts::{Command, CommandEnvelope, MessageId, SeatId, ShowId};
use std::time::Duration;

/// Most seats one block names.
const MAX_BLOCKED_SEATS: usize = 100;
/// How long the answer waits for the sequencers to apply a block.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
const SETTLE_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"seat_ids": ["B1", "B2"], "from": "2026-12-20T00:00:00Z"}))]
pub struct BlockInput {
    /// Seats of the screen's layout (1 to 100).
    pub seat_ids: Vec<String>,
    /// RFC 3339: every show of the screen starting at or after it is affected.
    pub from: String,
}

/// A booking already on blocked seats of an affected show.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingBooking {
    pub booking_id: Uuid,
    pub show_id: Uuid,
    /// `held`, `payment_pending` or `confirmed`.
    pub status: String,
    /// The blocked seats it holds.
    pub seats: Vec<String>,
}

/// A seat block of a screen.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatBlock {
    pub id: Uuid,
    pub screen_id: Uuid,
    pub seat_ids: Vec<String>,
    pub from: String,
    pub created_at: String,
}

/// What a new block did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockCreated {
    pub block: SeatBlock,
    /// The shows of the screen starting at or after `from` (not cancelled).
    pub shows: Vec<Uuid>,
    /// Bookings (held, being paid or confirmed) already on the blocked seats in
    /// those shows, for staff to move.
    pub bookings: Vec<HoldingBooking>,
    /// Every affected show's sequencer has applied the block: `bookings` is final
    /// (any later hold of these seats is refused). False when one has not yet
    /// within a few seconds; it will, in order.
    pub settled: bool,
}

type BlockRow = (Uuid, Uuid, Vec<String>, OffsetDateTime, OffsetDateTime);

fn block_of((id, screen_id, seat_ids, from, created): BlockRow) -> SeatBlock {
    SeatBlock {
        id,
        screen_id,
        seat_ids,
        from: rfc3339(from),
        created_at: rfc3339(created),
    }
}

/// Blocks seats of a screen for every show starting at or after `from`.
#[utoipa::path(post, path = "/v1/admin/screens/{screen_id}/blocks", tag = "admin", security(("bearer" = [])),
    params(("screen_id" = Uuid, Path, description = "The screen id")),
    request_body = BlockInput,
    responses(
        (status = 201, description = "The block, the shows it applies to and the bookings already on its seats", body = BlockCreated),
        (status = 404, description = "No such screen (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_block(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<BlockInput>,
) -> Result<Response, ApiError> {
    access.screen(&app.db, id).await?;
    let screen = super::screens::screen(&app, id).await?;
    if body.seat_ids.is_empty() || body.seat_ids.len() > MAX_BLOCKED_SEATS {
        return Err(ApiError::Validation(format!(
            "seat_ids names 1 to {MAX_BLOCKED_SEATS} seats"
        )));
    }
    let from = OffsetDateTime::parse(&body.from, &Rfc3339).map_err(|_| {
        ApiError::Validation("from must be an RFC 3339 time, e.g. 2026-12-20T00:00:00Z".into())
    })?;
    let known: BTreeSet<String> = screen
        .layout
        .seats()
        .map(|(seat, _)| seat.to_string())
        .collect();
    let mut seats = BTreeSet::new();
    for s in &body.seat_ids {
        if !known.contains(s) {
            return Err(ApiError::Validation(format!(
                "seat {s:?} is not in the screen's layout"
            )));
        }
        seats.insert(s.clone());
    }
    let seats: Vec<String> = seats.into_iter().collect();
    let seat_ids: Vec<SeatId> = seats
        .iter()
        .map(|s| SeatId::try_from(s.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Validation(format!("seat_ids: {e}")))?;

    let block_id = Uuid::now_v7();
    let mut tx = app.db.begin().await?;
    let row: BlockRow = sqlx::query_as(
        "insert into seat_blocks (id, screen_id, seat_ids, from_at) values ($1, $2, $3, $4)
         returning id, screen_id, seat_ids, from_at, created_at",
    )
    .bind(block_id)
    .bind(id)
    .bind(&seats)
    .bind(from)
    .fetch_one(&mut *tx)
    .await?;
    let shows: Vec<Uuid> = sqlx::query_scalar(
        "select id from shows where screen_id = $1 and starts_at >= $2 and status <> 'cancelled'
          order by starts_at, id",
    )
    .bind(id)
    .bind(from)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    // Through each show's partition, ordered with its bookings. A retry after a
    // failed publish adds another (identical) block, which is harmless.
    let mut messages = Vec::with_capacity(shows.len());
    for show in &shows {
        let show = ShowId(*show);
        let message_id = MessageId::for_show(show, &format!("block-seats-{block_id}"));
        let env = CommandEnvelope::new(
            message_id,
            show,
            platform::now_millis(),
            Command::BlockSeats {
                seats: seat_ids.clone(),
            },
        )
        .with_trace(platform::trace::current());
        app.commands
            .send(&env)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        messages.push(message_id.0);
    }
    let settled = settle(&app, &messages).await?;
    let bookings: Vec<(Uuid, Uuid, String, Vec<String>)> = sqlx::query_as(
        "select b.id, b.show_id, b.status,
                array(select s from unnest(b.seats) s where s = any($2) order by s)
           from bookings b
          where b.show_id = any($1) and b.status in ('held', 'payment_pending', 'confirmed')
            and b.seats && $2
          order by b.show_id, b.id",
    )
    .bind(&shows)
    .bind(&seats)
    .fetch_all(&app.db)
    .await?;
    tracing::warn!(screen_id = %id, seats = ?seats, from = %body.from, shows = shows.len(),
        holding = bookings.len(), "seats blocked by an admin");
    let answer = BlockCreated {
        block: block_of(row),
        shows,
        bookings: bookings
            .into_iter()
            .map(|(booking_id, show_id, status, seats)| HoldingBooking {
                booking_id,
                show_id,
                status,
                seats,
            })
            .collect(),
        settled,
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// Waits (at most [`SETTLE_WAIT`]) until the sequencers have applied every one of
/// `messages`; whether they have.
async fn settle(app: &AppState, messages: &[Uuid]) -> Result<bool, ApiError> {
    let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
    loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from processed_messages where message_id = any($1)",
        )
        .bind(messages)
        .fetch_one(&app.db)
        .await?;
        if done == messages.len() as i64 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// A screen's seat blocks, by `from`.
#[utoipa::path(get, path = "/v1/admin/screens/{screen_id}/blocks", tag = "admin", security(("bearer" = [])),
    params(("screen_id" = Uuid, Path, description = "The screen id")),
    responses((status = 200, description = "The screen's seat blocks", body = Vec<SeatBlock>)))]
pub async fn list_blocks(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Vec<SeatBlock>>, ApiError> {
    access.screen(&app.db, id).await?;
    let rows: Vec<BlockRow> = sqlx::query_as(
        "select id, screen_id, seat_ids, from_at, created_at from seat_blocks
          where screen_id = $1 order by from_at, id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(rows.into_iter().map(block_of).collect()))
}
