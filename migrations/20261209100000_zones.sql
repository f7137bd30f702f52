-- General-admission zones (issue 15). A screen's layout may hold
-- `zones: [{id, name, capacity, seat_type}]`; a booking may take `quantity` places
-- of a zone. The sequencer decides; the database proves the capacity on its own:
--
-- - `bookings.zones` is the booking's places as the sequencer decided them
--   (`[{"zone": "floor", "quantity": 2}]`), like `bookings.seats`;
-- - `booking_zones` is one row per (booking, zone), live while `released_at` is
--   null, like `booking_seats`;
-- - `show_zones` counts the live places of each (show, zone), kept by a trigger on
--   `booking_zones` with the capacity read from the show's screen layout; its CHECK
--   refuses a commit that would put more places in a zone than it has, whatever
--   the application does (a bug in the sequencer fails the runner's transaction
--   instead of overselling).

alter table bookings add column zones jsonb not null default '[]';

create table booking_zones (
    booking_id  uuid not null references bookings (id),
    show_id     uuid not null,
    zone_id     text not null,
    quantity    integer not null check (quantity > 0),
    released_at timestamptz,
    primary key (booking_id, zone_id)
);
create index booking_zones_live on booking_zones (show_id, zone_id) where released_at is null;

create table show_zones (
    show_id  uuid not null,
    zone_id  text not null,
    capacity integer not null check (capacity > 0),
    taken    integer not null default 0,
    primary key (show_id, zone_id),
    constraint show_zones_within_capacity check (taken >= 0 and taken <= capacity)
);

create function booking_zones_count() returns trigger language plpgsql as $$
declare
    delta integer := 0;
    the_show uuid;
    the_zone text;
    cap integer;
begin
    if tg_op = 'INSERT' then
        the_show := new.show_id;
        the_zone := new.zone_id;
        if new.released_at is null then
            delta := new.quantity;
        end if;
    elsif tg_op = 'UPDATE' then
        if new.show_id <> old.show_id or new.zone_id <> old.zone_id then
            raise exception 'a booking_zones row keeps its show and zone'
                using errcode = 'check_violation';
        end if;
        the_show := new.show_id;
        the_zone := new.zone_id;
        delta := (case when new.released_at is null then new.quantity else 0 end)
               - (case when old.released_at is null then old.quantity else 0 end);
    else
        the_show := old.show_id;
        the_zone := old.zone_id;
        if old.released_at is null then
            delta := -old.quantity;
        end if;
    end if;
    if delta = 0 then
        return null;
    end if;
    select (z ->> 'capacity')::integer into cap
      from shows s
      join screens sc on sc.id = s.screen_id
     cross join lateral jsonb_array_elements(coalesce(sc.layout -> 'zones', '[]'::jsonb)) as z
     where s.id = the_show and z ->> 'id' = the_zone;
    if cap is null then
        raise exception 'show % has no zone %', the_show, the_zone
            using errcode = 'check_violation';
    end if;
    -- The row first (a proposed row is checked before its conflict is found, so
    -- the count goes in by an update), then the count, which the CHECK bounds.
    insert into show_zones (show_id, zone_id, capacity, taken)
    values (the_show, the_zone, cap, 0)
    on conflict (show_id, zone_id) do update set capacity = excluded.capacity;
    update show_zones set taken = taken + delta
     where show_id = the_show and zone_id = the_zone;
    return null;
end;
$$;

create trigger booking_zones_count after insert or update or delete on booking_zones
    for each row execute function booking_zones_count();
