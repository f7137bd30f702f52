-- Sales reports from a rollup (issue 15, API.md Round 2 "Theater staff"): one row
-- per show holding what the report sums and groups by, so that a report reads one
-- table, at most one row per show of its period, instead of every booking and
-- payment (and the shows and screens).
--
-- The figures are kept by statement triggers on `bookings` and `payments`, in the
-- very transactions that change them (the runner's batch commit, the saga's payment
-- updates, anything else), so they cannot lag and no writer can forget them:
--
-- - `tickets`: seats and zone places of confirmed bookings;
-- - `sold`: amounts of confirmed bookings;
-- - `fees`: what the succeeded payments of cancelled or refunded bookings kept
--   (amount less refund_amount), on the booking's show;
-- - `refunds`: succeeded refunds, on the payment's show (a payment's `show_id` is its
--   booking's: the saga pays only bookings the sequencer wrote).
--
-- `fees` joins the two tables: a booking that becomes cancelled brings its payments'
-- kept amounts, a payment that changes under a cancelled booking brings its own.
-- Both triggers lock the shows' `show_sales` rows (sorted) before they read the other
-- table, and hold them to commit: of two concurrent transactions the second reads
-- after the first committed, so a cancellation racing a payment update is counted
-- once, never twice or not at all (READ COMMITTED: each statement of a trigger
-- function takes a fresh snapshot).
--
-- What the report groups by is the show's, kept by triggers on `shows` (a new show
-- gets its row; a move changes it) and `screens` (a new layout changes the
-- capacity): `starts_at`, `theater_id`, `movie_id` and `capacity`, the seats and
-- zone places of its screen (`screens.zone_capacity`, new here). A row whose show
-- does not exist (a booking of a vanished show) has no `starts_at`: no report lists
-- it.
--
-- Cost on the hot path: each statement on `bookings` or `payments` sums its
-- transition tables per booking; a statement that changes no figure (a hold, a
-- rejection, an expiry, a payment attempt being created) stops there, without a
-- lock. Otherwise one locked update per show of the statement (a batch of 400
-- confirmations of a hot show updates one row), a HOT update: no index covers a
-- figure.
--
-- Never edit this file once it has landed: add a new migration instead.

-- No writes to these tables while the triggers go in and the backfill reads.
lock table shows, screens, bookings, payments in share row exclusive mode;

-- A booking's tickets: its seats and the places of its zones. (Inlined by the
-- planner; the subquery over the zones runs only for a booking with places.)
create function zone_places(zones jsonb) returns bigint
    language sql immutable parallel safe as $$
    select coalesce(sum((z ->> 'quantity')::bigint), 0) from jsonb_array_elements(zones) as z
$$;

create function booking_tickets(seats text[], zones jsonb) returns bigint
    language sql immutable parallel safe as $$
    select cardinality(seats)::bigint
         + case when coalesce(jsonb_array_length(zones), 0) = 0 then 0 else zone_places(zones) end
$$;

-- The places of a layout's general-admission zones.
create function layout_zone_capacity(layout jsonb) returns integer
    language sql immutable parallel safe as $$
    select coalesce(sum((z ->> 'capacity')::integer), 0)::integer
      from jsonb_array_elements(coalesce(layout -> 'zones', '[]'::jsonb)) as z
$$;

alter table screens add column zone_capacity integer not null
    generated always as (layout_zone_capacity(layout)) stored;

create table show_sales (
    show_id    uuid primary key,
    -- The show's, null while it does not exist.
    starts_at  timestamptz,
    theater_id uuid,
    movie_id   uuid,
    capacity   integer not null default 0,
    -- The figures.
    tickets    bigint not null default 0,
    sold       bigint not null default 0,
    fees       bigint not null default 0,
    refunds    bigint not null default 0
) with (fillfactor = 80);
create index show_sales_starts_at on show_sales (starts_at);
create index show_sales_theater on show_sales (theater_id, starts_at);
-- A report by day groups by the UTC day: what the planner needs to know to hash a
-- few hundred days rather than sort every show.
create statistics show_sales_start_day on ((starts_at at time zone 'UTC')::date) from show_sales;

-- The shows' own columns: a new show, a show moved to another time, screen or event,
-- a screen's new layout.
create function show_sales_of_shows(shows uuid[]) returns void language plpgsql as $$
begin
    insert into show_sales (show_id, starts_at, theater_id, movie_id, capacity)
    select s.id, s.starts_at, sc.theater_id, s.movie_id, sc.seat_count + sc.zone_capacity
      from shows s join screens sc on sc.id = s.screen_id
     where s.id = any(shows)
     order by s.id
    on conflict (show_id) do update
       set starts_at = excluded.starts_at, theater_id = excluded.theater_id,
           movie_id = excluded.movie_id, capacity = excluded.capacity;
end;
$$;

create function shows_sales() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform show_sales_of_shows(array(select id from new_rows));
    elsif tg_op = 'UPDATE' then
        perform show_sales_of_shows(array[new.id]);
    else
        update show_sales set starts_at = null, theater_id = null, movie_id = null, capacity = 0
         where show_id = old.id;
    end if;
    return null;
end;
$$;

create function screens_sales() returns trigger language plpgsql as $$
begin
    perform show_sales_of_shows(array(select id from shows where screen_id = new.id));
    return null;
end;
$$;

create trigger shows_sales_insert after insert on shows
    referencing new table as new_rows
    for each statement execute function shows_sales();
create trigger shows_sales_update after update of starts_at, screen_id, movie_id on shows
    for each row when (old.starts_at is distinct from new.starts_at
                       or old.screen_id is distinct from new.screen_id
                       or old.movie_id is distinct from new.movie_id)
    execute function shows_sales();
create trigger shows_sales_delete after delete on shows
    for each row execute function shows_sales();
create trigger screens_sales_update after update of layout, seat_count, theater_id on screens
    for each row execute function screens_sales();

-- Makes sure `shows` have a row and locks them, sorted (the order every writer takes).
create function show_sales_lock(shows uuid[]) returns void language plpgsql as $$
begin
    insert into show_sales (show_id)
    select distinct s from unnest(shows) as s order by 1
    on conflict (show_id) do nothing;
    perform 1 from show_sales where show_id = any(shows) order by show_id for update;
end;
$$;

-- Applies changes of bookings, one element per booking: its show, the change of its
-- tickets and amount as confirmed, and `closed` (+1: became cancelled or refunded,
-- -1: no longer). A booking's payments count in `fees` while it is closed; they are
-- read after the lock.
create function show_sales_bookings(booking uuid[], show uuid[], tickets bigint[],
                                    sold bigint[], closed integer[])
    returns void language plpgsql as $$
begin
    if cardinality(booking) = 0 then
        return;
    end if;
    perform show_sales_lock(show);
    update show_sales t
       set tickets = t.tickets + d.tickets, sold = t.sold + d.sold, fees = t.fees + d.fees
      from (select u.s, sum(u.t) as tickets, sum(u.a) as sold,
                   coalesce(sum(case when u.c <> 0 then u.c * (
                       select coalesce(sum(p.amount - coalesce(p.refund_amount, 0)), 0)
                         from payments p where p.booking_id = u.b and p.status = 'succeeded')
                   end), 0) as fees
              from unnest(booking, show, tickets, sold, closed) as u(b, s, t, a, c)
             group by u.s) d
     where t.show_id = d.s;
end;
$$;

-- Applies changes of payments, one element per (booking, show) of a payment: the
-- change of its kept amount while succeeded, and of its succeeded refund. The
-- kept amount counts in `fees` if the booking is closed, read after the lock.
create function show_sales_payments(booking uuid[], show uuid[], kept bigint[],
                                    refunded bigint[])
    returns void language plpgsql as $$
declare
    shows uuid[];
begin
    if cardinality(booking) = 0 then
        return;
    end if;
    -- The bookings' shows too (a booking never changes show).
    select array_agg(distinct s) into shows
      from (select unnest(show) as s
            union all
            select b.show_id from bookings b where b.id = any(booking)) x;
    perform show_sales_lock(shows);
    update show_sales t
       set fees = t.fees + d.fees, refunds = t.refunds + d.refunds
      from (select s, sum(fees) as fees, sum(refunds) as refunds
              from (select u.s, 0::bigint as fees, u.r as refunds
                      from unnest(booking, show, kept, refunded) as u(b, s, k, r)
                     where u.r <> 0
                    union all
                    select b.show_id, u.k, 0
                      from unnest(booking, show, kept, refunded) as u(b, s, k, r)
                      join bookings b on b.id = u.b
                     where u.k <> 0 and b.status in ('cancelled', 'refunded')) x
             group by s) d
     where t.show_id = d.s;
end;
$$;

-- What one booking row and one payment row count for. (Set-returning SQL
-- functions of one SELECT: the planner inlines them into the triggers' queries.)
create function booking_sales(status text, seats text[], zones jsonb, amount bigint)
    returns table (tickets bigint, sold bigint, closed integer)
    language sql immutable parallel safe as $$
    select case when status = 'confirmed' then booking_tickets(seats, zones) else 0 end,
           case when status = 'confirmed' then amount else 0 end,
           case when status in ('cancelled', 'refunded') then 1 else 0 end
$$;

create function payment_sales(status text, amount bigint, refund_status text,
                              refund_amount bigint)
    returns table (kept bigint, refunded bigint)
    language sql immutable parallel safe as $$
    select case when status = 'succeeded' then amount - coalesce(refund_amount, 0) else 0 end,
           case when refund_status = 'succeeded' then coalesce(refund_amount, 0) else 0 end
$$;

-- The statement triggers: the new rows count positively, the old negatively, netted
-- per booking; what nets to nothing (a hold, a status that counts for nothing) is
-- dropped before any lock. (A transition table exists only for its own events: each
-- branch reads only the one its event has.)
create function bookings_sales() returns trigger language plpgsql as $$
declare
    b uuid[] := '{}';
    s uuid[] := '{}';
    t bigint[] := '{}';
    a bigint[] := '{}';
    c integer[] := '{}';
begin
    if tg_op <> 'DELETE' then
        select b || array_agg(r.id), s || array_agg(r.show_id), t || array_agg(x.tickets),
               a || array_agg(x.sold), c || array_agg(x.closed)
          into b, s, t, a, c
          from new_rows r, booking_sales(r.status, r.seats, r.zones, r.amount) x
         where r.status in ('confirmed', 'cancelled', 'refunded');
    end if;
    if tg_op <> 'INSERT' then
        select b || array_agg(r.id), s || array_agg(r.show_id), t || array_agg(-x.tickets),
               a || array_agg(-x.sold), c || array_agg(-x.closed)
          into b, s, t, a, c
          from old_rows r, booking_sales(r.status, r.seats, r.zones, r.amount) x
         where r.status in ('confirmed', 'cancelled', 'refunded');
    end if;
    select coalesce(array_agg(n.b), '{}'), coalesce(array_agg(n.s), '{}'),
           coalesce(array_agg(n.t), '{}'), coalesce(array_agg(n.a), '{}'),
           coalesce(array_agg(n.c), '{}')
      into b, s, t, a, c
      from (select u.b, u.s, sum(u.t)::bigint as t, sum(u.a)::bigint as a,
                   sum(u.c)::integer as c
              from unnest(b, s, t, a, c) as u(b, s, t, a, c)
             group by u.b, u.s) n
     where n.t <> 0 or n.a <> 0 or n.c <> 0;
    perform show_sales_bookings(b, s, t, a, c);
    return null;
end;
$$;

create function payments_sales() returns trigger language plpgsql as $$
declare
    b uuid[] := '{}';
    s uuid[] := '{}';
    k bigint[] := '{}';
    r bigint[] := '{}';
begin
    if tg_op <> 'DELETE' then
        select b || array_agg(p.booking_id), s || array_agg(p.show_id),
               k || array_agg(x.kept), r || array_agg(x.refunded)
          into b, s, k, r
          from new_rows p, payment_sales(p.status, p.amount, p.refund_status, p.refund_amount) x
         where p.status = 'succeeded' or p.refund_status = 'succeeded';
    end if;
    if tg_op <> 'INSERT' then
        select b || array_agg(p.booking_id), s || array_agg(p.show_id),
               k || array_agg(-x.kept), r || array_agg(-x.refunded)
          into b, s, k, r
          from old_rows p, payment_sales(p.status, p.amount, p.refund_status, p.refund_amount) x
         where p.status = 'succeeded' or p.refund_status = 'succeeded';
    end if;
    select coalesce(array_agg(n.b), '{}'), coalesce(array_agg(n.s), '{}'),
           coalesce(array_agg(n.k), '{}'), coalesce(array_agg(n.r), '{}')
      into b, s, k, r
      from (select u.b, u.s, sum(u.k)::bigint as k, sum(u.r)::bigint as r
              from unnest(b, s, k, r) as u(b, s, k, r)
             group by u.b, u.s) n
     where n.k <> 0 or n.r <> 0;
    perform show_sales_payments(b, s, k, r);
    return null;
end;
$$;

create trigger bookings_sales_insert after insert on bookings
    referencing new table as new_rows
    for each statement execute function bookings_sales();
create trigger bookings_sales_update after update on bookings
    referencing old table as old_rows new table as new_rows
    for each statement execute function bookings_sales();
create trigger bookings_sales_delete after delete on bookings
    referencing old table as old_rows
    for each statement execute function bookings_sales();
create trigger payments_sales_insert after insert on payments
    referencing new table as new_rows
    for each statement execute function payments_sales();
create trigger payments_sales_update after update on payments
    referencing old table as old_rows new table as new_rows
    for each statement execute function payments_sales();
create trigger payments_sales_delete after delete on payments
    referencing old table as old_rows
    for each statement execute function payments_sales();

-- The backfill: every show's row, then the figures of the bookings and payments
-- already there, by the same rules as the triggers.
select show_sales_of_shows(array(select id from shows));
insert into show_sales as t (show_id, tickets, sold, fees, refunds)
select show_id, sum(tickets), sum(sold), sum(fees), sum(refunds)
  from (select b.show_id, x.tickets, x.sold, 0::bigint as fees, 0::bigint as refunds
          from bookings b, booking_sales(b.status, b.seats, b.zones, b.amount) x
         where b.status = 'confirmed'
        union all
        select b.show_id, 0, 0, x.kept, 0
          from payments p
          join bookings b on b.id = p.booking_id,
               payment_sales(p.status, p.amount, p.refund_status, p.refund_amount) x
         where b.status in ('cancelled', 'refunded') and p.status = 'succeeded'
        union all
        select p.show_id, 0, 0, 0, x.refunded
          from payments p,
               payment_sales(p.status, p.amount, p.refund_status, p.refund_amount) x
         where p.refund_status = 'succeeded') f
 group by show_id
on conflict (show_id) do update
   set tickets = excluded.tickets, sold = excluded.sold, fees = excluded.fees,
       refunds = excluded.refunds;
analyze show_sales;
