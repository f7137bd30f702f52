//! Booking SMS: the short text of an event (confirmed, cancelled, cancelled by the
//! theater, hold expired, the reminder before a show), to the account's verified phone when its
//! `preferences.notify` holds `"sms"`. Sent through [`platform::sms::SmsClient`]
//! with the same exactly-once rule as email: the consumer claims, sends and records
//! each (event, channel) on its own `sent_messages` row.

use crate::mail::{ShowInfo, Template};
use contracts::{Event, EventEnvelope};

/// A channel a booking event reaches its buyer by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    /// As stored in `sent_messages.channel` and in `preferences.notify`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Whether `template` has an SMS (the others are email only).
pub fn has_sms(template: Template) -> bool {
    matches!(
        template,
        Template::Confirmed
            | Template::Cancelled
            | Template::ShowCancelled
            | Template::Expired
            | Template::Reminder
    )
}

/// Where and how the account wants to hear about its bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub email: bool,
    /// The verified phone, when SMS are wanted (and possible).
    pub sms_to: Option<String>,
}

impl Reach {
    /// From `preferences.notify` (absent: email only) and the phone when verified.
    /// Email is the fallback when SMS is wanted alone but cannot be sent (no
    /// verified phone, or no provider): the buyer always hears of a booking.
    pub fn new(
        notify: Option<&serde_json::Value>,
        verified_phone: Option<String>,
        sms_on: bool,
    ) -> Self {
        let wants = |c: &str| {
            notify
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(c)))
        };
        let (email, sms) = match notify.and_then(|v| v.as_array()) {
            Some(a) if !a.is_empty() => (wants("email"), wants("sms")),
            _ => (true, false),
        };
        let sms_to = verified_phone.filter(|_| sms && sms_on);
        Self {
            email: email || sms_to.is_none(),
            sms_to,
        }
    }
}

/// The SMS text of `env` (None when the event has none).
pub fn text(env: &EventEnvelope, template: Template, show: Option<&ShowInfo>) -> Option<String> {
    if !has_sms(template) {
        return None;
    }
    let seats = |s: &[contracts::SeatId]| {
        s.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seats = match &env.event {
        Event::BookingConfirmed {
            seats: s, zones, ..
        }
        | Event::ShowReminder {
            seats: s, zones, ..
        } => crate::mail::seats_and_places(s, zones).join(", "),
        Event::BookingCancelled { seats: s, .. }
        | Event::HoldReleased { seats: s, .. }
        | Event::BookingExpired { seats: s } => seats(s),
        _ => String::new(),
    };
    let what = match template {
        Template::Confirmed => "Confirmed",
        Template::Cancelled => "Cancelled",
        Template::ShowCancelled => "Cancelled by the theater (full refund if paid)",
        Template::Expired => "Hold ran out, seats released",
        Template::Reminder => "Reminder, your show is soon",
        _ => return None,
    };
    let show = show.map_or_else(String::new, |s| {
        format!(
            " {}, {}, {} ({}).",
            s.title, s.starts_at_local, s.theater, s.screen
        )
    });
    let short = env.booking_id.0.simple().to_string();
    Some(format!(
        "{what}:{show} Seats {seats}. Booking {}.",
        &short[..8]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_preference_and_a_verified_phone_choose_the_channels() {
        let phone = || Some("+919812345678".to_owned());
        let r = Reach::new(None, phone(), true);
        assert_eq!((r.email, r.sms_to.is_some()), (true, false));
        let r = Reach::new(Some(&json!(["email", "sms"])), phone(), true);
        assert_eq!((r.email, r.sms_to.is_some()), (true, true));
        let r = Reach::new(Some(&json!(["sms"])), phone(), true);
        assert_eq!((r.email, r.sms_to.is_some()), (false, true));
        // No verified phone, or no provider: email instead.
        let r = Reach::new(Some(&json!(["sms"])), None, true);
        assert_eq!((r.email, r.sms_to.is_some()), (true, false));
        let r = Reach::new(Some(&json!(["sms"])), phone(), false);
        assert_eq!((r.email, r.sms_to.is_some()), (true, false));
    }
}
