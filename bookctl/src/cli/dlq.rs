//! `bookctl dlq`: list, show, replay (with its dry run) and purge dead-lettered
//! messages.

use super::DlqCmd;
use super::table::{age, table};
use anyhow::Context;
use ops::dlq::dry_run::{self, DryRunMessage};
use ops::dlq::{DlqMessage, Selection};
use platform::Settings;
use serde_json::json;
use std::io::{BufRead, Write};

pub(super) async fn run(
    settings: &Settings,
    command: DlqCmd,
    json: bool,
    out: &mut impl Write,
    input: Option<&mut dyn BufRead>,
) -> anyhow::Result<()> {
    let topo = settings.topology();
    // Refuse a name outside the registry before touching anything.
    match &command {
        DlqCmd::List => {}
        DlqCmd::Show { queue, .. } | DlqCmd::Replay { queue, .. } | DlqCmd::Purge { queue, .. } => {
            ops::dlq::resolve(&topo, queue)?;
        }
    }
    if let DlqCmd::Purge {
        queue, ids, yes, ..
    } = &command
        && !yes
    {
        let Some(input) = input else {
            anyhow::bail!(
                "refusing to purge without confirmation: there is no terminal to ask on; pass --yes"
            );
        };
        eprint!(
            "Permanently remove the message(s) with id {} from {queue}? [y/N] ",
            ids.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            if json {
                writeln!(out, "{}", json!({"removed": 0, "cancelled": true}))?;
            } else {
                writeln!(out, "purge cancelled; nothing removed")?;
            }
            return Ok(());
        }
    }
    let conn = platform::amqp::connect(&settings.amqp.url, "bookctl")
        .await
        .context("connecting to RabbitMQ")?;
    let res = dlq_on(settings, &conn, command, json, out).await;
    drop(conn.close(200, "bookctl done".into()).await);
    res
}

async fn dlq_on(
    settings: &Settings,
    conn: &lapin::Connection,
    command: DlqCmd,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let topo = settings.topology();
    match command {
        DlqCmd::List => {
            let items = ops::dlq::list(conn, &topo).await?;
            if json {
                writeln!(out, "{}", json!({ "items": items }))?;
            } else {
                let rows = items
                    .iter()
                    .map(|q| {
                        vec![
                            q.queue.clone(),
                            q.messages.to_string(),
                            q.oldest_age_secs.map_or("-".into(), age),
                        ]
                    })
                    .collect();
                table(out, &["QUEUE", "MESSAGES", "OLDEST"], rows)?;
            }
        }
        DlqCmd::Show { queue, limit } => {
            let items = ops::dlq::show(conn, &topo, &queue, limit).await?;
            if json {
                writeln!(out, "{}", json!({ "items": items }))?;
            } else if items.is_empty() {
                writeln!(out, "{queue} is empty")?;
            } else {
                for m in &items {
                    show_message(out, m)?;
                }
            }
        }
        DlqCmd::Replay {
            queue,
            ids,
            all,
            dry_run,
        } => {
            let selection = if all {
                Selection::All
            } else {
                Selection::Ids(ids)
            };
            if dry_run {
                let peeked = ops::dlq::peek(conn, &topo, &queue, &selection).await?;
                let pool = platform::db::pool(&settings.database)?;
                let lines = dry_run::simulate(&pool, &topo, &queue, &peeked.messages).await;
                pool.close().await;
                print_dry_run(out, json, &queue, &lines?, &peeked.not_found)?;
            } else {
                let pool = platform::db::pool(&settings.database)?;
                let layout = platform::layout::LayoutWatch::spawn(&pool, topo.clone());
                let outcome = ops::dlq::replay(conn, &topo, &layout, &queue, &selection).await;
                drop(layout);
                pool.close().await;
                let outcome = outcome?;
                if json {
                    writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
                } else {
                    writeln!(out, "replayed {} message(s) from {queue}", outcome.replayed)?;
                    if !outcome.not_found.is_empty() {
                        writeln!(out, "not found: {}", outcome.not_found.join(", "))?;
                    }
                    for s in &outcome.skipped {
                        writeln!(
                            out,
                            "skipped {}: {}",
                            s.message_id.as_deref().unwrap_or("(no id)"),
                            s.reason
                        )?;
                    }
                }
            }
        }
        DlqCmd::Purge { queue, ids, .. } => {
            let outcome = ops::dlq::purge(conn, &topo, &queue, &ids).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
            } else {
                writeln!(out, "removed {} message(s) from {queue}", outcome.removed)?;
                if !outcome.not_found.is_empty() {
                    writeln!(out, "not found: {}", outcome.not_found.join(", "))?;
                }
            }
        }
    }
    Ok(())
}

fn print_dry_run(
    out: &mut impl Write,
    json: bool,
    queue: &str,
    lines: &[DryRunMessage],
    not_found: &[String],
) -> anyhow::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            json!({"dry_run": true, "queue": queue, "messages": lines, "not_found": not_found})
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "dry run of {} message(s) from {queue}: nothing is published or removed",
        lines.len()
    )?;
    for l in lines {
        writeln!(
            out,
            "  {}: {}",
            l.message_id.as_deref().unwrap_or("(no id)"),
            l.summary()
        )?;
    }
    if !not_found.is_empty() {
        writeln!(out, "not found: {}", not_found.join(", "))?;
    }
    Ok(())
}

fn show_message(out: &mut impl Write, m: &DlqMessage) -> anyhow::Result<()> {
    writeln!(
        out,
        "message {}  (dead-lettered {}x, {} ago)",
        m.message_id.as_deref().unwrap_or("(no id)"),
        m.death_count,
        m.age_secs.map_or("?".into(), age)
    )?;
    writeln!(
        out,
        "  reason:  {}",
        m.reason.as_deref().unwrap_or("(unknown)")
    )?;
    writeln!(
        out,
        "  source:  {}",
        m.source_queue.as_deref().unwrap_or("(unknown)")
    )?;
    for d in &m.history {
        writeln!(
            out,
            "  died:    {} in {}: {}",
            d.at.map_or("?".into(), |t| age(now_secs().saturating_sub(t)) + " ago"),
            d.source,
            d.reason
        )?;
    }
    writeln!(out, "  headers: {}", m.headers)?;
    writeln!(out, "  body:    {}", m.body)?;
    Ok(())
}

fn now_secs() -> u64 {
    u64::try_from(platform::now_millis().0 / 1000).unwrap_or(0)
}
