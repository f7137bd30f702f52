-- Payments: the saga's state per booking, the webhook inbox, and the payment id on
-- the booking.

alter table bookings add column payment_id text;

-- Closed bookings a late payment or a refund may still touch are loaded by the
-- sequencer with the show: find them fast.
create index bookings_show_closed on bookings (show_id)
    where status in ('expired', 'failed', 'cancelled');
-- The expiry sweep also looks at pending payments whose hold ran out.
create index bookings_pending_expiry on bookings (hold_expires_at) where status = 'payment_pending';

-- One payment per booking (the booking id is the gateway idempotency key).
--   status: creating -> pending -> succeeded | failed | canceled
--   refund_status: null | requested -> succeeded | failed
create table payments (
    booking_id     uuid primary key,
    show_id        uuid not null,
    payment_id     text unique,
    method         text not null,
    amount         bigint not null check (amount >= 0),
    currency       text not null,
    status         text not null check (status in ('creating', 'pending', 'succeeded', 'failed', 'canceled')),
    failure_reason text,
    refund_status  text check (refund_status in ('requested', 'succeeded', 'failed')),
    refund_id      text,
    refund_amount  bigint,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
create index payments_open on payments (status) where status in ('creating', 'pending');

-- Webhook deliveries seen, by the gateway's event id: a duplicate is answered 200
-- and ignored.
create table payment_webhooks (
    event_id    text primary key,
    type        text not null,
    payment_id  text not null,
    booking_id  uuid not null,
    payload     jsonb not null,
    received_at timestamptz not null default now()
);
