-- Phone verification and SMS notifications (issue 14, "SMS").
--
-- A phone is verified by a 6-digit code sent to it by SMS: one pending code per
-- account (its SHA-256 keyed with the server's secret, never the code), valid for
-- auth.phone_code_ttl_secs, with a few tries; confirming it sets the account's phone
-- and phone_verified_at. Changing the phone otherwise clears phone_verified_at.
alter table users add column phone_verified_at timestamptz;

create table phone_codes (
    user_id       uuid primary key references users (id) on delete cascade,
    phone         text not null,
    code_hash     bytea not null,
    expires_at    timestamptz not null,
    attempts_left integer not null,
    -- Codes sent in the hour starting at window_start (auth.phone_codes_per_hour).
    window_start  timestamptz not null default now(),
    sent_in_window integer not null default 1,
    created_at    timestamptz not null default now()
);

-- The notifier's record is per event AND channel: an event's email and its SMS are
-- claimed, sent and recorded independently (the same exactly-once rule each).
alter table sent_messages
    add column channel text not null default 'email' check (channel in ('email', 'sms'));
alter table sent_messages drop constraint sent_messages_pkey;
alter table sent_messages add primary key (event_id, channel);
