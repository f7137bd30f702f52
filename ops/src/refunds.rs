//! A refund an operator made by hand (in the provider's dashboard, by bank
//! transfer) for a booking whose refund the gateway refused for good: recorded,
//! it goes through the saga like any refund (`RefundCompleted` into the booking's
//! partition, `refunded`), so seats, money and reconciliation agree. Shared by
//! `bookctl refund record` and `POST /v1/ops/bookings/{id}/refund-record`.
//!
//! The parked `refund_failed` message may stay in `payments.dlq` or be purged: a
//! replay of it after the record finds the refund done and does nothing.

use crate::OpsError;
use crate::dlq::replay::{Target, publish_confirmed};
use contracts::topology::REFUND_RECORD_TYPE;
use contracts::{BookingId, MessageId, RefundRecord, Topology};
use lapin::options::ConfirmSelectOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Connection};
use serde::Serialize;
use sqlx::PgPool;

/// Longest refund reference and note accepted.
pub const REFUND_ID_LEN_MAX: usize = 255;
pub const NOTE_LEN_MAX: usize = 1000;

/// What was recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub booking_id: BookingId,
    /// The payment attempt whose refund failed.
    pub attempt: i32,
    /// The refund the booking was owed, in minor units.
    pub amount: i64,
    pub refund_id: String,
}

/// Checks the operator's reference and note: a reference of 1 to
/// [`REFUND_ID_LEN_MAX`] visible ASCII characters, a note of 1 to
/// [`NOTE_LEN_MAX`] characters that is not only whitespace.
pub fn check(refund_id: &str, note: &str) -> Result<(), OpsError> {
    if refund_id.is_empty()
        || refund_id.len() > REFUND_ID_LEN_MAX
        || !refund_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(OpsError::Invalid(format!(
            "refund_id must be 1-{REFUND_ID_LEN_MAX} visible ASCII characters (the provider's or bank's reference)"
        )));
    }
    if note.trim().is_empty() || note.chars().count() > NOTE_LEN_MAX {
        return Err(OpsError::Invalid(format!(
            "note must say what was done, in 1-{NOTE_LEN_MAX} characters"
        )));
    }
    Ok(())
}

/// Records that the failed refund of `booking` was made by hand as `refund_id`:
/// hands it to the saga (publisher confirm) and answers what it recorded. Refused
/// unless the booking has a failed refund.
pub async fn record(
    conn: &Connection,
    pool: &PgPool,
    topo: &Topology,
    booking: BookingId,
    refund_id: &str,
    note: &str,
    recorded_by: &str,
) -> Result<Recorded, OpsError> {
    check(refund_id, note)?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from bookings where id = $1)")
        .bind(booking.0)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Err(OpsError::NotFound(format!(
            "booking {booking} does not exist"
        )));
    }
    let failed: Option<(i32, Option<i64>)> = sqlx::query_as(
        "select attempt, refund_amount from payments
          where booking_id = $1 and refund_status = 'failed' order by attempt limit 1",
    )
    .bind(booking.0)
    .fetch_optional(pool)
    .await?;
    let Some((attempt, amount)) = failed else {
        return Err(OpsError::Conflict(format!(
            "booking {booking} has no failed refund: only a refund the gateway refused can be recorded as made by hand"
        )));
    };
    let msg = RefundRecord {
        booking_id: booking,
        attempt,
        refund_id: refund_id.to_owned(),
        note: note.to_owned(),
        recorded_by: recorded_by.to_owned(),
    };
    let body = serde_json::to_vec(&msg).map_err(|e| OpsError::Invalid(e.to_string()))?;
    let id = MessageId::for_booking(booking, &format!("refund-record-a{attempt}"));
    let target = Target {
        exchange: String::new(),
        routing_key: topo.saga_queue(),
        properties: BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(id.to_string()))
            .with_type(ShortString::from(REFUND_RECORD_TYPE)),
        what: String::new(),
    };
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let sent = publish_confirmed(&ch, &target, &body).await;
    drop(ch.close(200, "refund recorded".into()).await);
    sent.map_err(|detail| OpsError::Replay {
        message_id: id.to_string(),
        replayed: 0,
        detail,
    })?;
    tracing::warn!(booking_id = %booking, refund_id, recorded_by, "refund made by hand recorded");
    Ok(Recorded {
        booking_id: booking,
        attempt,
        amount: amount.unwrap_or(0),
        refund_id: refund_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_a_reference_and_says_what_was_done() {
        assert!(check("bank-tx-2026-12-08/001", "wired by hand").is_ok());
        for (id, note) in [
            ("", "x"),
            ("has space", "x"),
            (&"r".repeat(256), "x"),
            ("r1", ""),
            ("r1", "   "),
            ("r1", &"n".repeat(1001)),
        ] {
            assert!(
                matches!(check(id, note), Err(OpsError::Invalid(_))),
                "{id:?} {note:?}"
            );
        }
    }
}
