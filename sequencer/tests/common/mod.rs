//! Helpers shared by the test binaries: a tiny layout notation and a show driver
//! that numbers messages and bookings deterministically.
#![allow(dead_code)]

use contracts::{
    BookingId, Command, CommandEnvelope, Event, EventEnvelope, FocalPoint, HoldSeats, LayoutRow,
    LayoutSeat, MessageId, Millis, Price, ScreenLayout, SeatId, SeatRequest, ShowId, UserId,
    layout::row_label,
};
use sequencer::{ShowConfig, ShowState};
use uuid::Uuid;

/// An id of any kind from an integer.
pub fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(n))
}

pub const HOLD_TTL_MS: i64 = 480_000;
pub const START: Millis = Millis(1_700_000_000_000);

pub fn show_id() -> ShowId {
    id(0xabc)
}

pub fn seat(s: &str) -> SeatId {
    SeatId::try_from(s.to_owned()).unwrap()
}

pub fn names(seats: &[SeatId]) -> Vec<String> {
    seats.iter().map(|s| s.to_string()).collect()
}

/// A layout from one string per row, front row first, labelled A, B, ...:
/// `r` a regular seat, `v` a vip seat, `x` a blocked regular seat, `|` an aisle
/// after the previous seat. Seats are numbered 1, 2, ... from the left.
pub fn plan(rows: &[&str]) -> ScreenLayout {
    ScreenLayout {
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut row = LayoutRow {
                    row: row_label(i),
                    seats: vec![],
                    aisles_after: vec![],
                };
                for c in spec.chars() {
                    let number = row.seats.len() as u16 + 1;
                    let (seat_type, blocked) = match c {
                        'r' => ("regular", false),
                        'v' => ("vip", false),
                        'x' => ("regular", true),
                        '|' => {
                            row.aisles_after.push(number - 1);
                            continue;
                        }
                        other => panic!("unknown plan character {other:?}"),
                    };
                    row.seats.push(LayoutSeat {
                        number,
                        seat_type: seat_type.to_owned(),
                        blocked,
                    });
                }
                row
            })
            .collect(),
        focal_point: None,
        zones: vec![],
        mixed_booking: false,
    }
}

/// `layout` with a general-admission zone `id` of `capacity` places sold at the
/// `standing` price (900 EUR cents).
pub fn with_zone(mut layout: ScreenLayout, id: &str, capacity: u32) -> ScreenLayout {
    layout.zones.push(contracts::LayoutZone {
        id: id.to_owned(),
        name: format!("Zone {id}"),
        capacity,
        seat_type: "standing".to_owned(),
    });
    layout
}

pub fn focal(layout: ScreenLayout, row_permille: u16, col_permille: u16) -> ScreenLayout {
    ScreenLayout {
        focal_point: Some(FocalPoint {
            row_permille,
            col_permille,
        }),
        ..layout
    }
}

/// Regular seats cost 1200, vip seats 2000, in EUR.
pub fn prices() -> Vec<Price> {
    vec![
        Price {
            seat_type: "regular".into(),
            amount: 1200,
            currency: "EUR".into(),
        },
        Price {
            seat_type: "vip".into(),
            amount: 2000,
            currency: "EUR".into(),
        },
        Price {
            seat_type: "standing".into(),
            amount: 900,
            currency: "EUR".into(),
        },
    ]
}

pub fn config(layout: ScreenLayout) -> ShowConfig {
    ShowConfig {
        show_id: show_id(),
        layout,
        prices: prices(),
        on_sale: true,
        max_tickets_per_user: None,
        pricing: None,
        starts_at: None,
        blocked: vec![],
    }
}

/// Drives one show: every command gets the next message id and `now` as its time.
pub struct Driver {
    pub state: ShowState,
    pub now: Millis,
    next_message: u128,
    next_booking: u128,
}

impl Driver {
    pub fn new(layout: ScreenLayout) -> Self {
        Self::from_state(ShowState::new(config(layout)).unwrap())
    }

    pub fn from_state(state: ShowState) -> Self {
        Self {
            state,
            now: START,
            next_message: 1,
            next_booking: 1,
        }
    }

    pub fn envelope(&mut self, command: Command) -> CommandEnvelope {
        self.next_message += 1;
        CommandEnvelope {
            message_id: id::<MessageId>(self.next_message),
            show_id: show_id(),
            issued_at: self.now,
            request_id: None,
            trace: None,
            command,
        }
    }

    pub fn apply(&mut self, command: Command) -> Vec<EventEnvelope> {
        let env = self.envelope(command);
        self.state.apply(&env)
    }

    pub fn new_booking(&mut self) -> BookingId {
        self.next_booking += 1;
        id(0xb00c_0000 + self.next_booking)
    }

    pub fn hold_command(booking_id: BookingId, request: SeatRequest) -> Command {
        Command::HoldSeats(HoldSeats {
            booking_id,
            user_id: id::<UserId>(7),
            request,
            hold_ttl_ms: HOLD_TTL_MS,
            payment_method: None,
        })
    }

    /// Holds for a new booking and returns it with the single event it caused.
    pub fn hold(&mut self, request: SeatRequest) -> (BookingId, Event) {
        let b = self.new_booking();
        let mut events = self.apply(Self::hold_command(b, request));
        assert_eq!(events.len(), 1, "a new hold gives exactly one event");
        (b, events.remove(0).event)
    }

    pub fn choose(&mut self, seats: &[&str]) -> (BookingId, Event) {
        self.hold(SeatRequest::Chosen {
            seats: seats.iter().map(|s| seat(s)).collect(),
        })
    }

    /// `quantity` places of `zone` (and `seats`, mixed) for a new booking.
    pub fn places(&mut self, zone: &str, quantity: u32, seats: &[&str]) -> (BookingId, Event) {
        self.hold(SeatRequest::Zone {
            zone: zone.to_owned(),
            quantity,
            seats: seats.iter().map(|s| seat(s)).collect(),
        })
    }

    /// Places left in `zone`.
    pub fn available(&self, zone: &str) -> u32 {
        self.state
            .zones()
            .find(|z| z.id == zone)
            .map(|z| z.available)
            .expect("zone in the layout")
    }

    /// Takes `seats` for a new booking, panicking unless they are held.
    pub fn take(&mut self, seats: &[&str]) -> BookingId {
        let (b, event) = self.choose(seats);
        assert!(
            matches!(event, Event::BookingHeld { .. }),
            "could not take {seats:?}: {event:?}"
        );
        b
    }

    pub fn best_event(&mut self, quantity: u8, seat_type: Option<&str>) -> Event {
        self.hold(SeatRequest::BestAvailable {
            quantity,
            seat_type: seat_type.map(str::to_owned),
        })
        .1
    }

    /// The seats a best-available request is given, panicking if it is rejected.
    pub fn best(&mut self, quantity: u8, seat_type: Option<&str>) -> Vec<String> {
        match self.best_event(quantity, seat_type) {
            Event::BookingHeld { seats, .. } => names(&seats),
            other => panic!("best available {quantity} was not held: {other:?}"),
        }
    }
}
