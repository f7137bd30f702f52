-- Reminders before a show (issue 14, "SMS"): when a show's reminder time comes
-- (notifier.reminder_before_secs before it starts), the workers' reminder sweep
-- claims the show by inserting its row here, in the same transaction as one
-- `booking.reminder` outbox row per booking confirmed by then. The primary key is
-- the claim: of several workers processes sweeping at once, one writes a show's
-- reminders; the others find the row and skip it. A show moved to another time has
-- a new `starts_at`, so it is reminded again for that time. The notifier sends each
-- reminder once per channel (`sent_messages`, like every other event).
create table show_reminders (
    show_id    uuid not null references shows (id) on delete cascade,
    starts_at  timestamptz not null,
    -- How many bookings got a reminder event.
    bookings   integer not null default 0,
    swept_at   timestamptz not null default now(),
    primary key (show_id, starts_at)
);
