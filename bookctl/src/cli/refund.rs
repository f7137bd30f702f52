//! `bookctl refund record`: a refund made by hand, handed to the saga.

use super::RefundCmd;
use anyhow::Context;
use platform::Settings;
use serde_json::json;
use std::io::Write;

pub(super) async fn run(
    settings: &Settings,
    pool: &sqlx::PgPool,
    command: RefundCmd,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let RefundCmd::Record {
        booking,
        refund_id,
        note,
    } = command;
    // Refuse bad input before touching anything.
    ops::refunds::check(&refund_id, &note)?;
    let conn = platform::amqp::connect(&settings.amqp.url, "bookctl")
        .await
        .context("connecting to RabbitMQ")?;
    let res = ops::refunds::record(
        &conn,
        pool,
        &settings.topology(),
        contracts::BookingId(booking),
        &refund_id,
        &note,
        "bookctl",
    )
    .await;
    drop(conn.close(200, "bookctl done".into()).await);
    let r = res?;
    if json {
        writeln!(out, "{}", json!({"recorded": r}))?;
    } else {
        writeln!(
            out,
            "recorded refund {} of {} for booking {} (payment attempt {}); the booking ends refunded",
            r.refund_id, r.amount, r.booking_id, r.attempt
        )?;
    }
    Ok(())
}
