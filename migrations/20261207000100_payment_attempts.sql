-- Round 2, the booking journey: a declined card keeps the seats while the hold
-- lasts and another card may be tried, so a booking has several payment attempts;
-- the buyer may give a hold back (`released`).
--
-- Never edit this file once it has landed: add a new migration instead.

-- `released`: the buyer gave the held seats back (a final status).
alter table bookings drop constraint bookings_status_check;
alter table bookings add constraint bookings_status_check check (status in (
    'queued', 'held', 'payment_pending', 'confirmed', 'rejected',
    'expired', 'failed', 'cancelled', 'refunded', 'released'));

-- Why the last payment attempt of an open booking was declined (the sequencer
-- restores it: a hold that runs out after a decline ends `failed`, not `expired`).
alter table bookings add column decline_reason text;

-- A released booking may still see a payment that was in flight (refunded).
drop index bookings_show_closed;
create index bookings_show_closed on bookings (show_id)
    where status in ('expired', 'failed', 'cancelled', 'released');

-- One row per payment attempt, numbered from 1 per booking. The gateway
-- idempotency key is the booking id for attempt 1 (as before attempts existed) and
-- `{booking_id}-a{attempt}` after; `request_id` names what started the attempt (the
-- booking id for a booking created with a method, else the pay request), so a
-- redelivered request starts no second attempt.
alter table payments add column attempt integer not null default 1 check (attempt >= 1);
alter table payments add column request_id uuid;
update payments set request_id = booking_id;
alter table payments drop constraint payments_pkey;
alter table payments add constraint payments_pkey primary key (booking_id, attempt);
create unique index payments_request_unique on payments (request_id);
