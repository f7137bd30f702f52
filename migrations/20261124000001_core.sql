-- The first schema of the booking platform: accounts, the catalog a booking needs,
-- bookings and their seats, the append-only event log, and the sequencer's
-- bookkeeping (inbox, outbox, partition epochs).
--
-- Never edit this file once it has landed: add a new migration instead.

-- Accounts. Emails are stored lower-cased; the unique index makes them unique.
create table users (
    id            uuid primary key,
    email         text not null,
    password_hash text not null,
    name          text not null default '',
    phone         text,
    role          text not null check (role in ('customer', 'admin', 'operator')),
    preferences   jsonb not null default '{}',
    created_at    timestamptz not null default now(),
    constraint users_email_lowercase check (email = lower(email))
);
create unique index users_email_unique on users (email);

-- Catalog: theaters have screens; a screen's seat layout is JSON (contracts::ScreenLayout:
-- rows front to back, seats left to right with a type, aisles, an optional focal point).
create table theaters (
    id         uuid primary key,
    name       text not null,
    city       text not null,
    address    text not null default '',
    created_at timestamptz not null default now()
);
create index theaters_city on theaters (city);

create table screens (
    id         uuid primary key,
    theater_id uuid not null references theaters (id),
    name       text not null,
    layout     jsonb not null,
    seat_count integer not null check (seat_count > 0),
    created_at timestamptz not null default now(),
    constraint screens_name_unique unique (theater_id, name)
);

create table movies (
    id           uuid primary key,
    title        text not null,
    genres       text[] not null default '{}',
    cast_members text[] not null default '{}',
    duration_min integer not null check (duration_min > 0),
    rating       text,
    language     text,
    synopsis     text not null default '',
    created_at   timestamptz not null default now()
);

-- A show is a movie on a screen at a time. Only shows 'on_sale' take bookings.
create table shows (
    id         uuid primary key,
    movie_id   uuid not null references movies (id),
    screen_id  uuid not null references screens (id),
    starts_at  timestamptz not null,
    ends_at    timestamptz not null,
    status     text not null default 'on_sale' check (status in ('scheduled', 'on_sale', 'cancelled')),
    created_at timestamptz not null default now(),
    constraint shows_ends_after_start check (ends_at > starts_at)
);
create index shows_screen_time on shows (screen_id, starts_at);
create index shows_movie_time on shows (movie_id, starts_at);

-- One price per seat type per show, in minor units.
create table show_prices (
    show_id   uuid not null references shows (id) on delete cascade,
    seat_type text not null,
    amount    bigint not null check (amount >= 0),
    currency  text not null check (currency ~ '^[A-Z]{3}$'),
    primary key (show_id, seat_type)
);

-- Bookings as decided by the sequencer. A booking has no row while it is only
-- 'queued' (that state lives in Redis); the sequencer writes the row with its first
-- decision and updates it on every later transition.
-- user_id and show_id carry no foreign key on purpose: the sequencer's batch commit
-- must never fail because of one row (a whole partition would stall); ingress checks
-- both before it accepts a request, and a booking for a vanished show is rejected.
create table bookings (
    id              uuid primary key,
    user_id         uuid not null,
    show_id         uuid not null,
    status          text not null check (status in (
                        'queued', 'held', 'payment_pending', 'confirmed', 'rejected',
                        'expired', 'failed', 'cancelled', 'refunded')),
    seats           text[] not null default '{}',
    amount          bigint not null default 0,
    currency        text,
    payment_method  text,
    hold_expires_at timestamptz,
    reason          jsonb,
    created_at      timestamptz not null,
    updated_at      timestamptz not null
);
create index bookings_user_recent on bookings (user_id, created_at desc, id desc);
create index bookings_show on bookings (show_id);
-- The expiry sweep looks only at holds.
create index bookings_hold_expiry on bookings (hold_expires_at) where status = 'held';

-- Seat allocations. A row is live while released_at is null. The partial unique
-- index is the database's own proof that no seat of a show is ever allocated to
-- two live bookings, whatever the application does.
create table booking_seats (
    booking_id  uuid not null references bookings (id),
    show_id     uuid not null,
    seat_id     text not null,
    released_at timestamptz,
    primary key (booking_id, seat_id)
);
create unique index booking_seats_one_live_allocation
    on booking_seats (show_id, seat_id) where released_at is null;

-- Every transition of every booking, with the command that caused it. Append-only:
-- the trigger below refuses updates and deletes.
create table booking_events (
    seq         bigserial primary key,
    id          uuid not null unique,
    booking_id  uuid not null,
    show_id     uuid not null,
    type        text not null,
    payload     jsonb not null,
    caused_by   uuid not null,
    occurred_at timestamptz not null,
    recorded_at timestamptz not null default now()
);
create index booking_events_booking on booking_events (booking_id, seq);

create function booking_events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'booking_events is append-only';
end;
$$;
create trigger booking_events_no_update before update or delete on booking_events
    for each row execute function booking_events_append_only();

-- The sequencer's inbox: ids of the queue messages already applied, so that a
-- redelivered batch is a no-op.
create table processed_messages (
    message_id   uuid primary key,
    partition    smallint not null,
    processed_at timestamptz not null default now()
);

-- Events committed but maybe not yet published. The runner publishes right after
-- its commit and deletes the rows; the relay publishes whatever a crash left here.
create table outbox (
    id          bigserial primary key,
    event_id    uuid not null unique,
    exchange    text not null,
    routing_key text not null,
    payload     jsonb not null,
    created_at  timestamptz not null default now()
);

-- One row per partition: the runner that owns it and its fencing epoch. A runner
-- that becomes active bumps the epoch; every batch commits only if the epoch is
-- still its own, so a runner that lost its turn can never write.
create table partitions (
    partition       smallint primary key,
    epoch           bigint not null default 0,
    owner           text,
    acquired_at     timestamptz,
    last_batch_at   timestamptz,
    last_batch_size integer
);
