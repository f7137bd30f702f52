//! Booking and show states, as stored in `bookings.status` and `shows.status` and
//! served by the API. Rows are parsed into these at the row boundary, so a typo in a
//! state name cannot compile.

use serde::{Deserialize, Serialize};

/// `queued -> held -> payment_pending -> confirmed -> cancelled -> refunded`, with
/// the exits `rejected`, `expired`, `failed` and `released`. A declined payment
/// takes `payment_pending` back to `held` while the hold lasts; `failed` means
/// paying can no longer succeed (the hold ran out after a decline), `released`
/// that the buyer gave the held seats back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Queued,
    Held,
    PaymentPending,
    Confirmed,
    Rejected,
    Expired,
    Failed,
    Cancelled,
    Refunded,
    Released,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 10] = [
        BookingStatus::Queued,
        BookingStatus::Held,
        BookingStatus::PaymentPending,
        BookingStatus::Confirmed,
        BookingStatus::Rejected,
        BookingStatus::Expired,
        BookingStatus::Failed,
        BookingStatus::Cancelled,
        BookingStatus::Refunded,
        BookingStatus::Released,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Queued => "queued",
            BookingStatus::Held => "held",
            BookingStatus::PaymentPending => "payment_pending",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Rejected => "rejected",
            BookingStatus::Expired => "expired",
            BookingStatus::Failed => "failed",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Refunded => "refunded",
            BookingStatus::Released => "released",
        }
    }

    /// Whether the booking occupies its seats.
    pub fn holds_seats(self) -> bool {
        matches!(
            self,
            BookingStatus::Held | BookingStatus::PaymentPending | BookingStatus::Confirmed
        )
    }

    /// Whether no further transition is expected without a new user action.
    /// (`held` is not terminal: it ends `confirmed`, `expired`, `failed` or `released`.)
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BookingStatus::Rejected
                | BookingStatus::Expired
                | BookingStatus::Failed
                | BookingStatus::Refunded
                | BookingStatus::Released
        )
    }
}

impl std::fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BookingStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown booking status {s:?}"))
    }
}

/// A show's state: `scheduled` (not selling yet), `on_sale`, or `cancelled` for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowStatus {
    Scheduled,
    OnSale,
    Cancelled,
}

impl ShowStatus {
    pub const ALL: [ShowStatus; 3] = [
        ShowStatus::Scheduled,
        ShowStatus::OnSale,
        ShowStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShowStatus::Scheduled => "scheduled",
            ShowStatus::OnSale => "on_sale",
            ShowStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ShowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ShowStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown show status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_show_status_round_trips_through_its_name() {
        for st in ShowStatus::ALL {
            assert_eq!(st.as_str().parse::<ShowStatus>().unwrap(), st);
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
        assert!("on-sale".parse::<ShowStatus>().is_err());
    }

    #[test]
    fn every_status_round_trips_through_its_name() {
        for st in BookingStatus::ALL {
            assert_eq!(st.as_str().parse::<BookingStatus>().unwrap(), st);
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
    }
}
