//! After the load: wait for quiescence, then check the invariants against the
//! database, the gateway and the mail the SMTP sink stored.

use crate::drive::Log;
use payment_adapter::{IntentStatus, PaymentGateway};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Statuses that end a booking's story once the soak stops acting.
const FINAL: [&str; 6] = [
    "confirmed",
    "rejected",
    "expired",
    "failed",
    "refunded",
    "released",
];

/// How `quiesce` names a booking `payment_pending` for over 30 s whose every
/// payment attempt failed (see [`pending_after_decline`]).
const PENDING_AFTER_DECLINE: &str = "payment_pending after a decline";

/// Events that get an email (notifier `Template::for_event`).
const MAILED: [&str; 6] = [
    "booking.confirmed",
    "booking.cancelled",
    "booking.refunded",
    "booking.expired",
    "booking.payment_failed",
    "booking.released",
];

/// One invariant: its name, whether it held, and the figures behind it.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: String) -> Check {
    Check { name, ok, detail }
}

/// Waits until every accepted booking has a row in a final status (or `max`);
/// returns the seconds waited and the statuses of those that did not get there.
pub async fn quiesce(
    pool: &PgPool,
    ids: &[Uuid],
    max: Duration,
) -> anyhow::Result<(f64, BTreeMap<String, usize>)> {
    let started = Instant::now();
    loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select case when status = 'payment_pending' and updated_at < now() - interval '30 seconds'
                          and not exists (select 1 from payments p where p.booking_id = b.id
                                             and p.status in ('creating', 'pending', 'succeeded'))
                         then $2 else status end, count(*)
               from bookings b where id = any($1) group by 1",
        )
        .bind(ids)
        .bind(PENDING_AFTER_DECLINE)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen = 0;
        for (st, n) in rows {
            let n = usize::try_from(n).unwrap_or(0);
            seen += n;
            if !FINAL.contains(&st.as_str()) {
                open.insert(st, n);
            }
        }
        if seen < ids.len() {
            open.insert("no row (queued)".into(), ids.len() - seen);
        }
        // Bookings stuck for good (below) are not waited for.
        if open.keys().all(|k| k == PENDING_AFTER_DECLINE) || started.elapsed() > max {
            return Ok((started.elapsed().as_secs_f64(), open));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every 202 decided exactly once: a row for each, exactly one decision event
/// (held or rejected) each.
pub async fn decided_once(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<Check> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "select b.id, (select count(*) from booking_events e
                        where e.booking_id = b.id and e.type in ('booking.held', 'booking.rejected'))
           from bookings b where b.id = any($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let missing = ids.len() - rows.len();
    let twice = rows.iter().filter(|(_, n)| *n > 1).count();
    let never = rows.iter().filter(|(_, n)| *n == 0).count();
    Ok(check(
        "decided_once",
        missing == 0 && twice == 0 && never == 0,
        format!(
            "{} accepted: {missing} without a row, {never} without a decision, {twice} decided more than once",
            ids.len()
        ),
    ))
}

/// Statuses at the end; an open one is a booking stuck (e.g. `cancelled` whose
/// refund never completed).
pub fn settled(open: &BTreeMap<String, usize>, waited: f64) -> Check {
    let open: BTreeMap<_, _> = open
        .iter()
        .filter(|(k, _)| *k != PENDING_AFTER_DECLINE)
        .collect();
    check(
        "all_settled",
        open.is_empty(),
        if open.is_empty() {
            format!(
                "every accepted booking final after {waited:.0} s of quiescence (but those below)"
            )
        } else {
            format!("still open after {waited:.0} s: {open:?}")
        },
    )
}

/// A booking left `payment_pending` for good although every payment attempt of it
/// failed: `PaymentStarted` of an attempt applied after its `PaymentFailed` (the
/// two commands race out of the saga), and nothing resolves a booking whose
/// payment is no longer pending, so its seats stay taken. Its own check, so that
/// the report says exactly this.
pub fn pending_after_decline(open: &BTreeMap<String, usize>) -> Check {
    let n = open.get(PENDING_AFTER_DECLINE).copied().unwrap_or(0);
    check(
        "no_pending_after_decline",
        n == 0,
        format!("{n} bookings payment_pending for good with every payment attempt failed"),
    )
}

/// No seat of a show in two live bookings; no show over capacity.
pub async fn oversold(pool: &PgPool, shows: &HashMap<Uuid, usize>) -> anyhow::Result<Check> {
    let ids: Vec<Uuid> = shows.keys().copied().collect();
    let twice: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select show_id, seat, count(*) from bookings, unnest(seats) as seat
          where show_id = any($1) and status in ('held', 'payment_pending', 'confirmed')
          group by 1, 2 having count(*) > 1",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let live: Vec<(Uuid, i64)> = sqlx::query_as(
        "select show_id, count(*) from booking_seats where released_at is null and show_id = any($1) group by 1",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let over: Vec<_> = live
        .iter()
        .filter(|(s, n)| usize::try_from(*n).unwrap_or(0) > shows[s])
        .collect();
    let sold: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(seats)), 0)::int8 from bookings
          where show_id = any($1) and status = 'confirmed'",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?;
    Ok(check(
        "none_oversold",
        twice.is_empty() && over.is_empty(),
        format!(
            "{sold} seats sold of {}; seats in two live bookings: {}; shows over capacity: {}",
            shows.values().sum::<usize>(),
            twice.len(),
            over.len()
        ),
    ))
}

/// `bookctl reconcile` (the same function), and every payment attempt compared
/// with what the gateway says of it.
pub async fn reconciled(
    pool: &PgPool,
    gateway: &payment_adapter::HttpGateway,
    ids: &[Uuid],
) -> anyhow::Result<Check> {
    let report = ops::reconcile::reconcile(pool).await?;
    let mut problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{} {:?}: {}", p.kind, p.booking_id, p.detail))
        .collect();
    type Row = (
        Uuid,
        String,
        Option<String>,
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select p.booking_id, p.status, p.payment_id, p.amount, p.currency, p.refund_status,
                b.status, b.payment_id
           from payments p join bookings b on b.id = p.booking_id
          where p.booking_id = any($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut asked = 0;
    for (booking, st, pid, amount, currency, refund, bst, bpid) in rows {
        let Some(pid) = pid else {
            if st != "failed" && st != "canceled" {
                problems.push(format!(
                    "gateway {booking}: attempt {st} without a payment id"
                ));
            }
            continue;
        };
        asked += 1;
        let intent = match gateway.get_payment(&pid).await {
            Ok(i) => i,
            Err(e) => {
                problems.push(format!("gateway {booking}: {pid} unreadable: {e}"));
                continue;
            }
        };
        let captured = intent.status == IntentStatus::Succeeded;
        let mut bad = |what: &str| problems.push(format!("gateway {booking} {pid}: {what}"));
        if intent.metadata.booking_id != booking {
            bad("names another booking");
        }
        if intent.amount != amount || intent.currency != currency {
            bad("amount or currency differ");
        }
        if captured != (st == "succeeded") {
            bad(&format!("gateway {:?}, database {st}", intent.status));
        }
        let kept = captured && intent.amount_refunded == 0;
        let ticket = bst == "confirmed" && bpid.as_deref() == Some(pid.as_str());
        if kept && !ticket {
            bad(&format!("captured and not refunded, booking {bst}"));
        }
        if ticket && !kept {
            bad("ticket without a kept capture");
        }
        if (intent.amount_refunded > 0) != (refund.as_deref() == Some("succeeded")) {
            bad(&format!(
                "refunded {} at the gateway, refund {refund:?} in the database",
                intent.amount_refunded
            ));
        }
    }
    Ok(check(
        "reconciled",
        problems.is_empty(),
        format!(
            "bookctl reconcile: {} problem(s); {asked} payments compared with the gateway; {}",
            report.problems.len(),
            if problems.is_empty() {
                "clean".to_owned()
            } else {
                problems
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
    ))
}

/// No booking answered 202 was ever answered 404.
pub fn no_404(log: &Log) -> Check {
    let ids: HashSet<Uuid> = log.not_found.iter().map(|(_, id)| *id).collect();
    check(
        "no_404_after_202",
        log.not_found.is_empty(),
        match (log.not_found.first(), log.not_found.last()) {
            (Some(a), Some(b)) => format!(
                "{} answers 404 for {} accepted bookings, from {:.1} s to {:.1} s",
                log.not_found.len(),
                ids.len(),
                a.0,
                b.0
            ),
            _ => "none".into(),
        },
    )
}

/// No answer 500 (a fault must give 503, not an internal error).
pub fn no_500(log: &Log) -> Check {
    let n = log.obs.iter().filter(|o| o.status == 500).count();
    check("no_500", n == 0, format!("{n} answers 500"))
}

/// Emails per event: the event id is in each Message-ID. Passes when every event
/// that should mail has an email and every repeat is the stated at-least-once kind
/// (the same Message-ID, sent again under a new claim after the first one's lease
/// ran out); counts the repeats.
///
/// Returns the check, the figures per event type, and when (Unix seconds) the
/// first copy of each duplicated event arrived (the sink names its files by the
/// receive time in milliseconds).
pub async fn emails(
    pool: &PgPool,
    ids: &[Uuid],
    dir: &Path,
) -> anyhow::Result<(Check, String, Vec<f64>)> {
    let mut received: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for m in smtp_sink::read_messages(dir).unwrap_or_default() {
        let text = String::from_utf8_lossy(&m.raw);
        let id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.eq_ignore_ascii_case("message-id") {
                return None;
            }
            v.trim()
                .trim_start_matches('<')
                .split('@')
                .next()?
                .parse::<Uuid>()
                .ok()
        });
        let at = m
            .path
            .file_name()
            .and_then(|n| n.to_str()?.split('-').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if let Some(id) = id {
            received.entry(id).or_default().push(at);
        }
    }
    let per_event: HashMap<Uuid, usize> = received.iter().map(|(k, v)| (*k, v.len())).collect();
    #[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit an f64
    let dup_times: Vec<f64> = received
        .values()
        .filter(|v| v.len() > 1)
        .filter_map(|v| v.iter().min())
        .map(|ms| *ms as f64 / 1000.0)
        .collect();
    let expected: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, type from booking_events where booking_id = any($1) and type = any($2)",
    )
    .bind(ids)
    .bind(MAILED.map(str::to_owned).to_vec())
    .fetch_all(pool)
    .await?;
    let mut by_type: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut missing = 0;
    for (id, ty) in &expected {
        let got = per_event.get(id).copied().unwrap_or(0);
        let e = by_type
            .entry(
                MAILED
                    .iter()
                    .copied()
                    .find(|t| *t == ty.as_str())
                    .unwrap_or("other"),
            )
            .or_default();
        e.0 += 1;
        e.1 += got;
        missing += usize::from(got == 0);
    }
    let dup_events = per_event.values().filter(|n| **n > 1).count();
    let extra: usize = per_event.values().map(|n| n.saturating_sub(1)).sum();
    // A repeat is the stated guarantee (at least once, same Message-ID) only when the
    // event's claim was taken again after its lease ran out (attempts > 1): its
    // sender died mid-send, or could not record the send for the whole lease. A
    // repeat under a single claim is a bug.
    let attempts: HashMap<Uuid, i32> =
        sqlx::query_as("select event_id, attempts from sent_messages where booking_id = any($1)")
            .bind(ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let unexplained = per_event
        .iter()
        .filter(|(id, n)| **n > 1 && attempts.get(*id).copied().unwrap_or(1) <= 1)
        .count();
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from sent_messages where booking_id = any($1) and status <> 'sent'",
    )
    .bind(ids)
    .fetch_one(pool)
    .await?;
    let figures = by_type
        .iter()
        .map(|(t, (ev, sent))| format!("{t}: {ev} events, {sent} emails"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        check(
            "emails_once",
            unexplained == 0 && missing == 0,
            format!(
                "{} emails for {} events: {extra} repeats over {dup_events} events ({unexplained} under a single claim), {missing} events without an email ({failed} not recorded as sent)",
                per_event.values().sum::<usize>(),
                expected.len()
            ),
        ),
        figures,
        dup_times,
    ))
}

/// Nothing dead-lettered: every message of the commands, the saga and the notifier
/// was handled (a message parked in a DLQ waits for an operator).
pub async fn no_dead_letters(settings: &platform::Settings) -> anyhow::Result<Check> {
    let conn = platform::amqp::connect(&settings.amqp.url, "soak-check").await?;
    let ch = conn.create_channel().await?;
    let mut parked = Vec::new();
    for q in settings.topology().dead_letter_queues() {
        let (n, _) = platform::amqp::queue_counts(&ch, &q).await?;
        parked.push((q, n));
    }
    drop(conn.close(200, "done".into()).await);
    let total: u32 = parked.iter().map(|(_, n)| n).sum();
    Ok(check(
        "no_dead_letters",
        total == 0,
        parked
            .iter()
            .map(|(q, n)| format!("{q}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}
