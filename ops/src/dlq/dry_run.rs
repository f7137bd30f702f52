//! The dry run of a dead-letter replay: what replaying the selected messages now
//! would do, without publishing anything.
//!
//! Every message first goes through the replay's own decision (`route_back`):
//! where it would be published, or why the replay would skip it (for the payments
//! queue, whether the saga can read it at all), so the dry run and the replay cannot
//! disagree. For the commands queue it then says what the sequencer would do, in
//! order: a message id the inbox has seen would be a no-op; a show that cannot be
//! loaded would be dead-lettered again; otherwise the command is applied with the
//! pure sequencer to the show's current state (loaded from PostgreSQL like the
//! runner does, then carried from one message to the next).

use super::replay::route_back;
use super::{DlqKind, DlqMessage};
use crate::OpsError;
use contracts::{CommandEnvelope, Event, EventEnvelope, RejectReason, SeatId, ShowId, Topology};
use sequencer::ShowState;
use sequencer_store::{self as store, StoreError};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// What replaying one message would do.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunMessage {
    pub message_id: Option<String>,
    /// `hold_seats`, `expire_hold`, `release_hold` (`None` if not a command).
    pub command: Option<&'static str>,
    pub show_id: Option<String>,
    pub booking_id: Option<String>,
    pub outcome: Outcome,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// It would be applied; `changes` says what it would change (maybe nothing).
    WouldApply,
    /// Its message id is in the sequencer's inbox: replaying it is a no-op.
    AlreadyApplied,
    /// The body is not a command: a replay skips it and it stays in the queue.
    NotACommand { detail: String },
    /// Its show still cannot be loaded: it would be dead-lettered again.
    ShowNotLoadable { detail: String },
    /// (Payments and notifier queues) it would be published to `to`, where its
    /// consumer would do `detail`.
    WouldPublish { to: String, detail: String },
    /// The replay would skip it (it stays in the queue): `detail` says why, e.g.
    /// the saga could not read it.
    WouldSkip { detail: String },
}

/// One event the sequencer would emit, in seat terms.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub booking_id: String,
    /// The event's routing key (`booking.held`, ...).
    pub event: &'static str,
    pub seats_taken: Vec<String>,
    pub seats_freed: Vec<String>,
    /// e.g. `booking 0193.. held A1,A2`.
    pub summary: String,
}

impl DryRunMessage {
    /// One line for people.
    pub fn summary(&self) -> String {
        let what = match (&self.command, &self.show_id) {
            (Some(c), Some(s)) => format!("{c} for show {s}: "),
            _ => String::new(),
        };
        let result = match &self.outcome {
            Outcome::WouldApply if self.changes.is_empty() => {
                "no change (the booking is already decided or the command does not apply now)"
                    .to_owned()
            }
            Outcome::WouldApply => self
                .changes
                .iter()
                .map(|c| c.summary.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Outcome::AlreadyApplied => "already applied: replaying it is a no-op".to_owned(),
            Outcome::NotACommand { detail } => {
                format!("not a command, a replay skips it ({detail})")
            }
            Outcome::ShowNotLoadable { detail } => {
                format!("would be dead-lettered again: {detail}")
            }
            Outcome::WouldPublish { to, detail } => format!("would go back to {to}: {detail}"),
            Outcome::WouldSkip { detail } => {
                format!("a replay skips it, it stays in the queue ({detail})")
            }
        };
        format!("{what}{result}")
    }
}

/// Simulates replaying `messages` of the dead-letter queue `queue` in order. Reads
/// PostgreSQL, writes nothing.
pub async fn simulate(
    pool: &PgPool,
    topo: &Topology,
    queue: &str,
    messages: &[DlqMessage],
) -> Result<Vec<DryRunMessage>, OpsError> {
    let kind = super::resolve(topo, queue)?.kind;
    if kind == DlqKind::Commands {
        return simulate_commands(pool, messages).await;
    }
    Ok(messages
        .iter()
        .map(|m| DryRunMessage {
            message_id: m.message_id.clone(),
            command: None,
            show_id: None,
            booking_id: m
                .body
                .get("booking_id")
                .and_then(|b| b.as_str())
                .map(str::to_owned),
            outcome: match route_back(topo, kind, &m.properties, &m.raw) {
                Ok(t) => Outcome::WouldPublish {
                    to: t.routing_key,
                    detail: t.what,
                },
                Err(detail) => Outcome::WouldSkip { detail },
            },
            changes: vec![],
        })
        .collect())
}

/// The commands queue: the sequencer's outcome of each message, in order.
async fn simulate_commands(
    pool: &PgPool,
    messages: &[DlqMessage],
) -> Result<Vec<DryRunMessage>, OpsError> {
    let parsed: Vec<Result<CommandEnvelope, String>> = messages
        .iter()
        .map(|m| serde_json::from_slice(&m.raw).map_err(|e| e.to_string()))
        .collect();
    let ids: Vec<uuid::Uuid> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|e| e.message_id.0))
        .collect();
    let mut seen: HashSet<uuid::Uuid> = if ids.is_empty() {
        HashSet::new()
    } else {
        store::already_processed(pool, &ids)
            .await?
            .into_iter()
            .collect()
    };
    let mut shows: HashMap<ShowId, Result<ShowState, String>> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for (m, p) in messages.iter().zip(parsed) {
        let env = match p {
            Ok(env) => env,
            Err(detail) => {
                out.push(DryRunMessage {
                    message_id: m.message_id.clone(),
                    command: None,
                    show_id: None,
                    booking_id: None,
                    outcome: Outcome::NotACommand { detail },
                    changes: vec![],
                });
                continue;
            }
        };
        let mut line = DryRunMessage {
            message_id: m.message_id.clone(),
            command: Some(env.command.kind()),
            show_id: Some(env.show_id.to_string()),
            booking_id: Some(env.command.booking_id().to_string()),
            outcome: Outcome::WouldApply,
            changes: vec![],
        };
        // A second copy of one id in the same replay applies once, like in a batch.
        if !seen.insert(env.message_id.0) {
            line.outcome = Outcome::AlreadyApplied;
            out.push(line);
            continue;
        }
        if let Entry::Vacant(slot) = shows.entry(env.show_id) {
            let state = match store::load_show_state(pool, env.show_id).await {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err(format!("show {} does not exist", env.show_id)),
                Err(StoreError::BadShow(_, why)) => {
                    Err(format!("show {} cannot be loaded: {why}", env.show_id))
                }
                Err(e) => return Err(e.into()),
            };
            slot.insert(state);
        }
        match shows.get_mut(&env.show_id).expect("inserted above") {
            Err(detail) => {
                line.outcome = Outcome::ShowNotLoadable {
                    detail: detail.clone(),
                }
            }
            Ok(state) => line.changes = state.apply(&env).iter().map(change).collect(),
        }
        out.push(line);
    }
    Ok(out)
}

fn seats(s: &[SeatId]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// An event in seat terms.
pub fn change(e: &EventEnvelope) -> Change {
    let b = e.booking_id.to_string();
    let (taken, freed, summary) = match &e.event {
        Event::BookingHeld {
            seats: s, zones, ..
        } => {
            let s = seats(s);
            let places: String = zones
                .iter()
                .map(|p| format!(" + {} of zone {}", p.quantity, p.zone))
                .collect();
            let summary = format!("booking {b} held {}{places}", s.join(","));
            (s, vec![], summary)
        }
        Event::BookingRejected { reason, .. } => {
            let detail = match reason {
                RejectReason::SeatUnavailable { seats: s } => seats(s).join(","),
                RejectReason::NotEnoughSeats { available } => format!("{available} available"),
                RejectReason::NotEnoughPlaces { zone, available } => {
                    format!("{available} left in zone {zone}")
                }
                RejectReason::InvalidRequest { detail } => detail.clone(),
                RejectReason::NotOnSale => String::new(),
                RejectReason::LimitPerUser { limit, already } => {
                    format!("{already} of {limit} per user already")
                }
            };
            let summary = format!("booking {b} rejected: {} {detail}", reason.code());
            (vec![], vec![], summary.trim_end().to_owned())
        }
        Event::BookingExpired { seats: s } => {
            let s = seats(s);
            let summary = format!("booking {b} expired: frees {}", s.join(","));
            (vec![], s, summary)
        }
        Event::HoldReleased { seats: s, reason } => {
            let s = seats(s);
            let summary = format!("booking {b} released ({reason}): frees {}", s.join(","));
            (vec![], s, summary)
        }
        Event::BookingReleased { seats: s } => {
            let s = seats(s);
            let summary = format!("booking {b} released by the buyer: frees {}", s.join(","));
            (vec![], s, summary)
        }
        Event::PaymentDeclined { payment_id, reason } => (
            vec![],
            vec![],
            format!("booking {b} payment {payment_id} declined ({reason}): held again"),
        ),
        Event::PaymentPending { payment_id } => (
            vec![],
            vec![],
            format!("booking {b} payment pending ({payment_id})"),
        ),
        Event::BookingConfirmed {
            seats: s,
            payment_id,
            retaken,
            ..
        } => {
            let s = seats(s);
            let summary = format!(
                "booking {b} confirmed ({payment_id}){}: {}",
                if *retaken { ", seats taken again" } else { "" },
                s.join(",")
            );
            // A re-take occupies the seats anew; a plain confirmation keeps them.
            if *retaken {
                (s, vec![], summary)
            } else {
                (vec![], vec![], summary)
            }
        }
        Event::PaymentFailed {
            seats: s, reason, ..
        } => {
            let s = seats(s);
            let summary = format!(
                "booking {b} payment failed ({reason}): frees {}",
                s.join(",")
            );
            (vec![], s, summary)
        }
        Event::LatePaymentRefused {
            payment_id, amount, ..
        } => (
            vec![],
            vec![],
            format!("booking {b} late payment {payment_id} refused: refund {amount}"),
        ),
        Event::BookingCancelled {
            seats: s,
            refund_amount,
            ..
        } => {
            let s = seats(s);
            let summary = format!(
                "booking {b} cancelled: frees {}, refund {refund_amount}",
                s.join(",")
            );
            (vec![], s, summary)
        }
        Event::BookingRefunded { amount, .. } => {
            (vec![], vec![], format!("booking {b} refunded {amount}"))
        }
        Event::ShowReminder { .. } => (vec![], vec![], format!("booking {b} reminded")),
    };
    Change {
        booking_id: b,
        event: e.event.routing_key(),
        seats_taken: taken,
        seats_freed: freed,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::{BookingId, EventId, MessageId, Millis, UserId};
    use uuid::Uuid;

    fn env(event: Event) -> EventEnvelope {
        let msg = MessageId(Uuid::from_u128(1));
        EventEnvelope {
            event_id: EventId::derive(msg, 0),
            show_id: ShowId(Uuid::from_u128(2)),
            booking_id: BookingId(Uuid::from_u128(3)),
            occurred_at: Millis(0),
            caused_by: msg,
            trace: None,
            event,
        }
    }

    fn seat(s: &str) -> SeatId {
        SeatId::try_from(s.to_owned()).unwrap()
    }

    #[test]
    fn events_read_as_seat_changes() {
        let held = change(&env(Event::BookingHeld {
            user_id: UserId(Uuid::from_u128(4)),
            seats: vec![seat("A1"), seat("A2")],
            amount: 1,
            currency: "INR".into(),
            hold_expires_at: Millis(0),
            payment_method: None,
            zones: vec![],
        }));
        assert!(held.summary.ends_with("held A1,A2"), "{}", held.summary);
        assert_eq!(held.seats_taken, ["A1", "A2"]);
        let rejected = change(&env(Event::BookingRejected {
            user_id: UserId(Uuid::from_u128(4)),
            reason: RejectReason::SeatUnavailable {
                seats: vec![seat("A1")],
            },
        }));
        assert!(
            rejected.summary.ends_with("rejected: seat_unavailable A1"),
            "{}",
            rejected.summary
        );
        let expired = change(&env(Event::BookingExpired {
            seats: vec![seat("A3")],
        }));
        assert!(expired.summary.ends_with("expired: frees A3"));
        assert_eq!(expired.seats_freed, ["A3"]);
    }
}
