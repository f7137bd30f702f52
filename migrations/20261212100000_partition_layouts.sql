-- Growing the partition count under load (docs/repartition.md).
--
-- A layout generation is a partition count with queues of its own. Generation 1 is
-- the layout a deployment starts with (`amqp.partitions`), written by the first
-- process that finds this table empty. `bookctl partitions grow N` adds the next
-- one (`declared`), makes it `current` (the flip: producers route to it from then
-- on), and retires the old one once each of its partitions is sealed and drained.
create table partition_layouts (
    generation  smallint primary key check (generation > 0),
    partitions  smallint not null check (partitions > 0),
    state       text not null check (state in ('declared', 'current', 'retiring', 'retired')),
    created_at  timestamptz not null default now(),
    flipped_at  timestamptz,
    retired_at  timestamptz
);
-- At most one layout is current.
create unique index partition_layouts_one_current on partition_layouts (state)
    where state = 'current';

-- A partition of an old generation whose runner reached the seal marker: every
-- command before the marker is committed; what came after is forwarded to the next
-- layout. A runner of the next layout starts consuming once its parent is here.
create table partition_seals (
    generation      smallint not null,
    partition       smallint not null,
    next_generation smallint not null,
    next_partitions smallint not null,
    owner           text not null,
    sealed_at       timestamptz not null default now(),
    primary key (generation, partition)
);

-- The fence and ownership of a partition are per generation.
alter table partitions add column generation smallint not null default 1;
alter table partitions drop constraint partitions_pkey;
alter table partitions add primary key (generation, partition);
