-- Every booking ingress answered 202 for, written after the publisher confirm and
-- before the answer: `GET /v1/bookings/{id}` answers `queued` from it until the
-- sequencer's `bookings` row exists, so an accepted booking is never a 404 (the
-- Redis `queued` marker is a cache and can be lost). The retention sweep removes a
-- row once its booking is decided, and every row after `retention_days`.
create table accepted_bookings (
    booking_id  uuid primary key,
    user_id     uuid not null,
    show_id     uuid not null,
    -- The chosen seats (empty for a best-available request).
    seats       text[] not null,
    accepted_at timestamptz not null default now()
);
create index accepted_bookings_accepted_at on accepted_bookings (accepted_at);
