-- Check-in at the door (API.md, Round 2, "Door").
--
-- Never edit this file once it has landed: add a new migration instead.

-- One row per booking that came in: the primary key is the database's own proof
-- that a ticket is checked in exactly once, however many scanners race. The row is
-- the booking's FIRST scan by scan time (an offline scanner's upload may move it to
-- an earlier scan, never to a later one: ingress::routes::door::offline).
create table checkins (
    booking_id    uuid primary key references bookings (id),
    show_id       uuid not null,
    -- The booking's seats when it came in (who the ticket admitted).
    seats         text[] not null,
    -- When the first scan happened: the server's clock online, the scanner's offline.
    checked_in_at timestamptz not null,
    gate          text,
    source        text not null check (source in ('online', 'offline')),
    -- The account that scanned it (staff, admin or operator).
    scanned_by    uuid not null,
    recorded_at   timestamptz not null default now()
);
-- A show's check-in list, by time (keyset pages).
create index checkins_show_time on checkins (show_id, checked_in_at, booking_id);
