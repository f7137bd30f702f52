//! Typed identifiers. Past the HTTP edge nothing is a bare `String` or `Uuid`.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// A scheduled showing of a movie on a screen.
    ShowId
);
uuid_id!(
    /// A booking: one user's request for seats of one show.
    BookingId
);
uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// The id of one message on a queue; the sequencer's inbox dedupes by it.
    MessageId
);
uuid_id!(
    /// The id of one event in `booking_events` and on `booking.events`.
    EventId
);

/// Namespace of the booking ids derived from (user, idempotency key).
const BOOKING_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_4c3e_9a52_4d0e_8f7a_2c51_b0d9_e341);
/// Namespace of the message ids derived from a booking and a command kind.
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x0c7e_91a4_55d2_4b8f_a3e6_7d10_f2b8_c965);

impl BookingId {
    /// The booking id for `key` sent by `user`: the same pair always gives the same
    /// id, so client retries collapse into one booking.
    pub fn derive(user: UserId, key: &IdempotencyKey) -> Self {
        let mut name = Vec::with_capacity(16 + key.0.len());
        name.extend_from_slice(user.0.as_bytes());
        name.extend_from_slice(key.0.as_bytes());
        Self(Uuid::new_v5(&BOOKING_NAMESPACE, &name))
    }
}

impl MessageId {
    /// A message id fixed by (booking, command kind), so re-publishing the same
    /// command (a retried request, a second expiry sweep) is deduped by the inbox.
    pub fn for_booking(booking: BookingId, kind: &str) -> Self {
        Self::for_subject(booking.0, kind)
    }

    /// A message id fixed by (show, command kind), for show-wide commands.
    pub fn for_show(show: ShowId, kind: &str) -> Self {
        Self::for_subject(show.0, kind)
    }

    fn for_subject(subject: Uuid, kind: &str) -> Self {
        let mut name = Vec::with_capacity(16 + kind.len());
        name.extend_from_slice(subject.as_bytes());
        name.extend_from_slice(kind.as_bytes());
        Self(Uuid::new_v5(&MESSAGE_NAMESPACE, &name))
    }
}

impl EventId {
    /// The id of the `index`-th event caused by message `caused_by`: replaying the
    /// same command gives the same event ids, so downstream dedupe works.
    pub fn derive(caused_by: MessageId, index: u32) -> Self {
        Self(Uuid::new_v5(&caused_by.0, &index.to_be_bytes()))
    }
}

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for IdempotencyKey {
    type Error = &'static str;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.is_empty() {
            return Err("Idempotency-Key must not be empty");
        }
        if s.len() > Self::MAX_LEN {
            return Err("Idempotency-Key must be at most 255 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("Idempotency-Key must be visible ASCII characters");
        }
        Ok(Self(s.to_owned()))
    }
}

/// A seat id as printed on a ticket: a row label (1-3 uppercase letters) followed
/// by a seat number (1-999), e.g. `A1`, `AA12`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "A1", pattern = "^[A-Z]{1,3}[1-9][0-9]{0,2}$")]
pub struct SeatId(String);

impl SeatId {
    /// Builds the id of seat `number` in row `row`.
    pub fn new(row: &str, number: u16) -> Result<Self, SeatIdError> {
        Self::try_from(format!("{row}{number}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The row label part (`"AA"` of `"AA12"`).
    pub fn row(&self) -> &str {
        let split = self.0.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        &self.0[..split]
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a seat id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatIdError(pub String);

impl fmt::Display for SeatIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a seat id (a row of 1-3 letters A-Z and a number 1-999, like \"A1\")",
            self.0
        )
    }
}

impl std::error::Error for SeatIdError {}

impl TryFrom<String> for SeatId {
    type Error = SeatIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let split = s.find(|c: char| c.is_ascii_digit());
        let ok = match split {
            Some(i) if (1..=3).contains(&i) => {
                let (row, num) = s.split_at(i);
                row.bytes().all(|b| b.is_ascii_uppercase())
                    && num.len() <= 3
                    && num.bytes().all(|b| b.is_ascii_digit())
                    && !num.starts_with('0')
            }
            _ => false,
        };
        if ok { Ok(Self(s)) } else { Err(SeatIdError(s)) }
    }
}

impl From<SeatId> for String {
    fn from(s: SeatId) -> String {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_ids_parse_row_and_number() {
        assert_eq!(SeatId::try_from("A1".to_owned()).unwrap().row(), "A");
        assert_eq!(SeatId::try_from("AB12".to_owned()).unwrap().row(), "AB");
        for bad in ["", "1", "a1", "A0", "A01", "ABCD1", "A1000", "A-1", "A1B"] {
            assert!(SeatId::try_from(bad.to_owned()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_same_user_and_key_derive_the_same_booking() {
        let user = UserId(Uuid::from_u128(1));
        let key = IdempotencyKey::try_from("order-42").unwrap();
        let a = BookingId::derive(user, &key);
        assert_eq!(a, BookingId::derive(user, &key));
        assert_ne!(a, BookingId::derive(UserId(Uuid::from_u128(2)), &key));
        // Pinned: changing the derivation would split retries across two bookings.
        assert_eq!(a.to_string(), "ae192963-f296-517b-baea-a22cbc494866");
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::try_from("").is_err());
        assert!(IdempotencyKey::try_from("a b").is_err());
        assert!(IdempotencyKey::try_from("x".repeat(256).as_str()).is_err());
        assert!(IdempotencyKey::try_from("abc-123_XYZ").is_ok());
    }
}
