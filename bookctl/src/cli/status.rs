//! `bookctl partitions` and `bookctl reconcile`.

use super::table::table;
use platform::Settings;
use serde_json::json;
use std::io::Write;

/// `bookctl partitions grow N`: each step on a line as it happens, the outcome last.
pub(super) async fn grow(
    settings: &Settings,
    pool: &sqlx::PgPool,
    command: super::PartitionsCmd,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let super::PartitionsCmd::Grow {
        partitions,
        stop_after_flip,
        timeout_secs,
    } = command;
    let opts = ops::grow::GrowOptions {
        target: partitions,
        stop_after_flip,
        timeout: std::time::Duration::from_secs(timeout_secs),
    };
    let conn = platform::amqp::connect(&settings.amqp.url, "bookctl").await?;
    let mut lines = Vec::new();
    let res = ops::grow::grow(
        &conn,
        pool,
        &settings.topology(),
        settings.amqp.queue_shape(),
        &opts,
        &mut |line: &str| {
            eprintln!("{line}");
            lines.push(line.to_owned());
        },
    )
    .await;
    drop(conn.close(200, "bookctl done".into()).await);
    let report = res?;
    if json {
        writeln!(out, "{}", json!({ "report": report, "steps": lines }))?;
    } else {
        writeln!(
            out,
            "{}: generation {} with {} partitions (from generation {} with {}); {} forwarded",
            report.state,
            report.generation,
            report.partitions,
            report.from_generation,
            report.from_partitions,
            report.forwarded
        )?;
    }
    Ok(())
}

/// Every partition queue: depth, consumers, owner, epoch and last batch.
pub(super) async fn partitions(
    settings: &Settings,
    pool: &sqlx::PgPool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let conn = platform::amqp::connect(&settings.amqp.url, "bookctl").await?;
    let res = ops::partitions::list(&conn, pool, &settings.topology()).await;
    drop(conn.close(200, "bookctl done".into()).await);
    let items = res?;
    if json {
        writeln!(out, "{}", json!({ "items": items }))?;
    } else {
        let rows = items
            .iter()
            .map(|p| {
                vec![
                    if p.generation == 1 {
                        p.partition.to_string()
                    } else {
                        format!("g{}.{}", p.generation, p.partition)
                    },
                    p.layout.to_owned(),
                    p.queue.clone(),
                    p.messages.to_string(),
                    p.consumers.to_string(),
                    p.owner.clone().unwrap_or_else(|| "-".into()),
                    p.epoch.map_or("-".into(), |e| e.to_string()),
                    p.last_batch_at.clone().unwrap_or_else(|| "-".into()),
                    p.last_batch_size.map_or("-".into(), |n| n.to_string()),
                ]
            })
            .collect();
        table(
            out,
            &[
                "PARTITION",
                "LAYOUT",
                "QUEUE",
                "MESSAGES",
                "CONSUMERS",
                "OWNER",
                "EPOCH",
                "LAST BATCH AT",
                "LAST BATCH SIZE",
            ],
            rows,
        )?;
    }
    Ok(())
}

/// Money and seats agree across the database and with the payment gateway; an
/// error when they do not.
pub(super) async fn reconcile(
    settings: &Settings,
    pool: &sqlx::PgPool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let gateway = ops::reconcile::gateway_of(settings);
    let report = ops::reconcile::with_gateway(pool, &gateway).await?;
    if json {
        writeln!(out, "{}", json!(report))?;
    } else {
        writeln!(
            out,
            "{} bookings checked: {}",
            report.bookings,
            if report.ok {
                "money and seats agree"
            } else {
                "PROBLEMS FOUND"
            }
        )?;
        let rows = report
            .problems
            .iter()
            .map(|p| {
                vec![
                    p.kind.to_owned(),
                    p.booking_id.map_or("-".into(), |b| b.to_string()),
                    p.detail.clone(),
                ]
            })
            .collect();
        if !report.ok {
            table(out, &["PROBLEM", "BOOKING", "DETAIL"], rows)?;
        }
    }
    anyhow::ensure!(
        report.ok,
        "{} reconciliation problem(s)",
        report.problems.len()
    );
    Ok(())
}
