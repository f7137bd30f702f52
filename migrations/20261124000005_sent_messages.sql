-- The notifier's record of emails, one row per booking event that gets one.
-- A row is written BEFORE the send (status 'sending', with a lease so two consumers
-- never send the same event at once); 'sent' and 'failed' are final, so a redelivered
-- event sends nothing more. A crash between the SMTP answer and the 'sent' update
-- can repeat one email after the lease runs out: at-least-once, never silently lost.
create table sent_messages (
    event_id    uuid primary key,
    booking_id  uuid not null,
    template    text not null,
    status      text not null check (status in ('sending', 'sent', 'failed')),
    recipient   text,
    attempts    integer not null default 1,
    lease_until timestamptz not null,
    last_error  text,
    created_at  timestamptz not null default now(),
    sent_at     timestamptz
);
create index sent_messages_booking on sent_messages (booking_id);
