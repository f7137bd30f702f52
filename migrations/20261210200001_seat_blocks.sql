-- Seat blocks (issue 15): a broken seat of a screen is off sale in every show of the
-- screen starting at or after `from_at`; earlier shows are never touched. The
-- sequencer reads the blocks of a show when it loads it and receives each new one
-- as a `BlockSeats` command in the show's partition.
create table seat_blocks (
    id          uuid primary key,
    screen_id   uuid not null references screens (id),
    seat_ids    text[] not null check (cardinality(seat_ids) between 1 and 100),
    from_at     timestamptz not null,
    created_at  timestamptz not null default now()
);
create index seat_blocks_screen_from on seat_blocks (screen_id, from_at);
