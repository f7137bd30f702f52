//! Emails: templates (files under `notifier/templates/`, rendered with minijinja into
//! an HTML and a plain-text part) and sending them over SMTP with lettre.

use contracts::{Event, EventEnvelope};
use minijinja::Environment;
use serde::Serialize;
use std::sync::Arc;

mod send;
pub use send::{Mailer, SendError};

/// Content id of the inline QR image of a confirmation email.
pub const QR_CID: &str = "ticket-qr";

const TEMPLATES: [(&str, &str); 16] = [
    ("layout.html", include_str!("../templates/layout.html")),
    ("layout.txt", include_str!("../templates/layout.txt")),
    (
        "confirmed.html",
        include_str!("../templates/confirmed.html"),
    ),
    ("confirmed.txt", include_str!("../templates/confirmed.txt")),
    (
        "cancelled.html",
        include_str!("../templates/cancelled.html"),
    ),
    ("cancelled.txt", include_str!("../templates/cancelled.txt")),
    ("refunded.html", include_str!("../templates/refunded.html")),
    ("refunded.txt", include_str!("../templates/refunded.txt")),
    ("expired.html", include_str!("../templates/expired.html")),
    ("expired.txt", include_str!("../templates/expired.txt")),
    (
        "payment_failed.html",
        include_str!("../templates/payment_failed.html"),
    ),
    (
        "payment_failed.txt",
        include_str!("../templates/payment_failed.txt"),
    ),
    (
        "show_cancelled.html",
        include_str!("../templates/show_cancelled.html"),
    ),
    (
        "show_cancelled.txt",
        include_str!("../templates/show_cancelled.txt"),
    ),
    ("reminder.html", include_str!("../templates/reminder.html")),
    ("reminder.txt", include_str!("../templates/reminder.txt")),
];

/// Which email an event gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Confirmed,
    Cancelled,
    /// The theater cancelled the show: a paid booking is refunded in full, a held
    /// one is released.
    ShowCancelled,
    Refunded,
    Expired,
    PaymentFailed,
    /// The show of a confirmed booking starts soon.
    Reminder,
}

impl Template {
    /// The email of `event`, if it gets one.
    pub fn for_event(event: &Event) -> Option<Self> {
        match event {
            Event::BookingConfirmed { .. } => Some(Self::Confirmed),
            Event::BookingCancelled {
                by_theater: true, ..
            }
            | Event::HoldReleased { .. } => Some(Self::ShowCancelled),
            Event::BookingCancelled { .. } => Some(Self::Cancelled),
            Event::BookingRefunded { .. } => Some(Self::Refunded),
            Event::BookingExpired { .. } => Some(Self::Expired),
            Event::PaymentFailed { .. } => Some(Self::PaymentFailed),
            Event::ShowReminder { .. } => Some(Self::Reminder),
            Event::BookingHeld { .. }
            | Event::BookingRejected { .. }
            | Event::BookingReleased { .. }
            | Event::PaymentDeclined { .. }
            | Event::PaymentPending { .. }
            | Event::LatePaymentRefused { .. } => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::ShowCancelled => "show_cancelled",
            Self::Refunded => "refunded",
            Self::Expired => "expired",
            Self::PaymentFailed => "payment_failed",
            Self::Reminder => "reminder",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Confirmed => "Your tickets are confirmed",
            Self::Cancelled => "Your booking is cancelled",
            Self::ShowCancelled => "The show is cancelled by the theater",
            Self::Refunded => "Your refund is on its way",
            Self::Expired => "Your seat hold ran out",
            Self::PaymentFailed => "Your payment did not go through",
            Self::Reminder => "Your show is coming up",
        }
    }
}

/// What, where and when, for every email (absent when the catalog has no such
/// show): the time on the theater's clock with its zone, as people read it.
#[derive(Debug, Clone, Serialize)]
pub struct ShowInfo {
    pub title: String,
    pub theater: String,
    pub address: String,
    pub city: String,
    pub screen: String,
    /// RFC 3339, UTC.
    pub starts_at: String,
    /// `Thu 3 Dec 2026, 00:30 IST (Asia/Kolkata)` ([`platform::localtime::local_human`]).
    pub starts_at_local: String,
}

/// The recipient and what the templates show beside the event.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: String,
    pub name: String,
}

/// A rendered email, before it becomes MIME.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub template: Template,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The e-ticket token and its QR PNG (confirmation emails only).
    pub ticket: Option<(String, Vec<u8>)>,
}

#[derive(Serialize)]
struct Context<'a> {
    subject: &'a str,
    name: &'a str,
    booking_id: String,
    show: Option<&'a ShowInfo>,
    seats: Vec<String>,
    amount: Option<String>,
    refund: Option<String>,
    refund_id: Option<&'a str>,
    reason: Option<&'a str>,
    token: Option<&'a str>,
    qr_cid: &'a str,
}

/// The seats, then the general-admission places as "2 x floor".
pub fn seats_and_places(
    seats: &[contracts::SeatId],
    zones: &[contracts::ZonePlaces],
) -> Vec<String> {
    seats
        .iter()
        .map(|s| s.to_string())
        .chain(zones.iter().map(|p| format!("{} x {}", p.quantity, p.zone)))
        .collect()
}

fn money(minor: i64, currency: &str) -> String {
    contracts::Money::new(minor, currency).to_string()
}

/// The compiled templates.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Templates {
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        Ok(Self { env: Arc::new(env) })
    }

    /// Renders the email of `env` (None when the event gets no email). `ticket` is
    /// the signed token of a confirmation.
    pub fn render(
        &self,
        env: &EventEnvelope,
        to: &Recipient,
        show: Option<&ShowInfo>,
        ticket: Option<&str>,
    ) -> Result<Option<Rendered>, anyhow::Error> {
        let Some(template) = Template::for_event(&env.event) else {
            return Ok(None);
        };
        let seats_of =
            |s: &[contracts::SeatId]| -> Vec<String> { s.iter().map(|s| s.to_string()).collect() };
        let (seats, amount, refund, refund_id, reason) = match &env.event {
            Event::BookingConfirmed {
                seats,
                amount,
                currency,
                zones,
                ..
            } => (
                seats_and_places(seats, zones),
                Some(money(*amount, currency)),
                None,
                None,
                None,
            ),
            Event::ShowReminder { seats, zones, .. } => {
                (seats_and_places(seats, zones), None, None, None, None)
            }
            Event::BookingCancelled {
                seats,
                refund_amount,
                currency,
                ..
            } => (
                seats_of(seats),
                None,
                (*refund_amount > 0).then(|| money(*refund_amount, currency)),
                None,
                None,
            ),
            Event::BookingRefunded { refund_id, amount } => (
                vec![],
                None,
                Some(format!(
                    "{}.{:02}",
                    amount.div_euclid(100),
                    amount.rem_euclid(100)
                )),
                Some(refund_id.as_str()),
                None,
            ),
            // Held seats of a show the theater cancelled: nothing was charged.
            Event::HoldReleased { seats, .. } => (seats_of(seats), None, None, None, None),
            Event::BookingExpired { seats } => (seats_of(seats), None, None, None, None),
            Event::PaymentFailed { seats, reason, .. } => {
                (seats_of(seats), None, None, None, Some(reason.as_str()))
            }
            _ => return Ok(None),
        };
        let ctx = Context {
            subject: template.subject(),
            name: &to.name,
            booking_id: env.booking_id.to_string(),
            show,
            seats,
            amount,
            refund,
            refund_id,
            reason,
            token: ticket,
            qr_cid: QR_CID,
        };
        let html = self
            .env
            .get_template(&format!("{}.html", template.name()))?
            .render(&ctx)?;
        let text = self
            .env
            .get_template(&format!("{}.txt", template.name()))?
            .render(&ctx)?;
        let ticket = match (template, ticket) {
            (Template::Confirmed, Some(t)) => Some((t.to_owned(), tickets::qr_png(t)?)),
            _ => None,
        };
        Ok(Some(Rendered {
            template,
            subject: template.subject().to_owned(),
            text,
            html,
            ticket,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::{BookingId, EventId, MessageId, Millis, SeatId, ShowId, UserId};

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope {
            event_id: EventId(uuid::Uuid::new_v4()),
            show_id: ShowId(uuid::Uuid::new_v4()),
            booking_id: BookingId(uuid::Uuid::new_v4()),
            occurred_at: Millis(1_800_000_000_000),
            caused_by: MessageId(uuid::Uuid::new_v4()),
            trace: None,
            event,
        }
    }

    fn seats() -> Vec<SeatId> {
        vec![
            SeatId::try_from("A1".to_owned()).unwrap(),
            SeatId::try_from("A2".to_owned()).unwrap(),
        ]
    }

    /// A show at 23:30 IST on 1 January 2027 (18:00 UTC).
    fn show() -> ShowInfo {
        ShowInfo {
            title: "Film".into(),
            theater: "Odeon".into(),
            address: "MG Road".into(),
            city: "Pune".into(),
            screen: "Audi 2".into(),
            starts_at: "2027-01-01T18:00:00Z".into(),
            starts_at_local: "Fri 1 Jan 2027, 23:30 IST (Asia/Kolkata)".into(),
        }
    }

    fn to() -> Recipient {
        Recipient {
            email: "ana@example.com".into(),
            name: "Ana <script>".into(),
        }
    }

    #[test]
    fn a_confirmation_has_the_token_in_text_and_the_qr_inline_in_html() {
        let env = envelope(Event::BookingConfirmed {
            user_id: UserId(uuid::Uuid::new_v4()),
            seats: seats(),
            amount: 50_000,
            currency: "INR".into(),
            payment_id: "pi_1".into(),
            retaken: false,
            zones: vec![],
        });
        let show = show();
        let r = Templates::new()
            .unwrap()
            .render(&env, &to(), Some(&show), Some("tok.en"))
            .unwrap()
            .unwrap();
        assert_eq!(r.template, Template::Confirmed);
        assert!(r.text.contains("TICKET: tok.en"), "{}", r.text);
        assert!(r.text.contains("A1, A2"));
        assert!(r.text.contains("INR 500.00"));
        assert!(r.html.contains("cid:ticket-qr"));
        // HTML is escaped, text is not.
        assert!(r.html.contains("Ana &lt;script&gt;"), "{}", r.html);
        assert!(r.text.contains("Hello Ana <script>"));
        assert!(r.html.contains("Odeon"));
        assert!(r.ticket.is_some());
        // Where and when, on the theater's clock, in both parts.
        assert!(r.text.contains("Fri 1 Jan 2027, 23:30 IST (Asia/Kolkata)"));
        for part in [&r.text, &r.html] {
            // (HTML escapes the zone's slash: `Asia&#x2f;Kolkata` reads the same.)
            assert!(part.contains("Fri 1 Jan 2027, 23:30 IST (Asia"), "{part}");
            assert!(
                part.contains("MG Road") && part.contains("Audi 2"),
                "{part}"
            );
            assert!(!part.contains("18:00"), "no UTC time: {part}");
        }
    }

    #[test]
    fn every_notified_event_renders_both_parts_and_others_render_nothing() {
        let t = Templates::new().unwrap();
        for ev in [
            Event::BookingCancelled {
                seats: seats(),
                payment_id: "pi".into(),
                refund_amount: 45_000,
                currency: "INR".into(),
                by_theater: false,
            },
            Event::BookingRefunded {
                refund_id: "re_1".into(),
                amount: 45_000,
            },
            Event::BookingExpired { seats: seats() },
            Event::PaymentFailed {
                seats: seats(),
                payment_id: "pi".into(),
                reason: "card_declined".into(),
            },
        ] {
            let r = t.render(&envelope(ev), &to(), None, None).unwrap().unwrap();
            assert!(!r.text.is_empty() && r.html.contains("<html"));
            assert!(r.ticket.is_none());
        }
        for quiet in [
            Event::PaymentPending {
                payment_id: "pi".into(),
            },
            // The buyer is at the checkout: a decline is said there, not by email.
            Event::PaymentDeclined {
                payment_id: "pi".into(),
                reason: "card_declined".into(),
            },
            // The buyer released the seats themselves.
            Event::BookingReleased { seats: seats() },
        ] {
            assert!(
                t.render(&envelope(quiet), &to(), None, None)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_show_the_theater_cancelled_says_so_with_the_full_refund_or_no_charge() {
        let t = Templates::new().unwrap();
        let paid = envelope(Event::BookingCancelled {
            seats: seats(),
            payment_id: "pi".into(),
            refund_amount: 50_000,
            currency: "INR".into(),
            by_theater: true,
        });
        let r = t.render(&paid, &to(), None, None).unwrap().unwrap();
        assert_eq!(r.template, Template::ShowCancelled);
        assert_eq!(r.subject, "The show is cancelled by the theater");
        assert!(
            r.text.contains("The theater has cancelled this show"),
            "{}",
            r.text
        );
        assert!(r.text.contains("full refund of INR 500.00"), "{}", r.text);
        assert!(r.html.contains("full refund of INR 500.00"), "{}", r.html);
        let held = envelope(Event::HoldReleased {
            seats: seats(),
            reason: "show_cancelled".into(),
        });
        let r = t.render(&held, &to(), None, None).unwrap().unwrap();
        assert_eq!(r.template, Template::ShowCancelled);
        assert!(r.text.contains("not been charged"), "{}", r.text);
        assert!(!r.text.contains("refund of"), "{}", r.text);
    }

    #[test]
    fn a_reminder_says_when_and_where_with_the_seats_and_carries_no_ticket() {
        let env = envelope(Event::ShowReminder {
            user_id: UserId(uuid::Uuid::new_v4()),
            seats: seats(),
            zones: vec![contracts::ZonePlaces {
                zone: "floor".into(),
                quantity: 2,
            }],
            starts_at: Millis(1_798_763_400_000),
        });
        let show = show();
        let r = Templates::new()
            .unwrap()
            .render(&env, &to(), Some(&show), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.template, r.subject.as_str()),
            (Template::Reminder, "Your show is coming up")
        );
        assert!(r.ticket.is_none());
        assert!(
            r.text
                .contains("your show starts Fri 1 Jan 2027, 23:30 IST (Asia/Kolkata)"),
            "{}",
            r.text
        );
        for part in [&r.text, &r.html] {
            assert!(part.contains("A1, A2, 2 x floor"), "{part}");
            assert!(
                part.contains("Odeon") && part.contains("MG Road") && part.contains("Audi 2"),
                "{part}"
            );
        }
        let sms = crate::sms::text(&env, r.template, Some(&show)).unwrap();
        assert!(
            sms.starts_with(
                "Reminder, your show is soon: Film, Fri 1 Jan 2027, 23:30 IST (Asia/Kolkata), Odeon (Audi 2). Seats A1, A2, 2 x floor."
            ),
            "{sms}"
        );
    }

    // The pooled transport spawns its pool task: it needs a runtime.
    #[tokio::test]
    async fn the_mime_message_is_multipart_with_an_inline_png() {
        let s = platform::Settings::load_for(platform::settings::AppEnv::Development)
            .unwrap()
            .notifier;
        let mailer = Mailer::from_settings(&s).unwrap();
        let env = envelope(Event::BookingConfirmed {
            user_id: UserId(uuid::Uuid::new_v4()),
            seats: seats(),
            amount: 1,
            currency: "INR".into(),
            payment_id: "pi_1".into(),
            retaken: false,
            zones: vec![],
        });
        let r = Templates::new()
            .unwrap()
            .render(&env, &to(), None, Some("tok.en"))
            .unwrap()
            .unwrap();
        let raw = mailer
            .message(&env.event_id.to_string(), &to(), &r)
            .unwrap()
            .formatted();
        let parsed = mailparse::parse_mail(&raw).unwrap();
        assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
        let related = &parsed.subparts[1];
        assert_eq!(related.ctype.mimetype, "multipart/related");
        let img = &related.subparts[1];
        assert_eq!(img.ctype.mimetype, "image/png");
        assert_eq!(img.get_body_raw().unwrap(), r.ticket.unwrap().1);
        assert!(
            mailer
                .message(
                    "x",
                    &Recipient {
                        email: "not an address".into(),
                        name: String::new()
                    },
                    &t_rendered()
                )
                .is_err()
        );
    }

    fn t_rendered() -> Rendered {
        Rendered {
            template: Template::Expired,
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
            ticket: None,
        }
    }
}
