-- Accounts (refresh tokens), catalog search, and screen schedules that cannot overlap.
--
-- Never edit this file once it has landed: add a new migration instead.

-- Both extensions are "trusted" since PostgreSQL 13: the database owner may create them.
create extension if not exists pg_trgm;
create extension if not exists btree_gist;

-- Refresh tokens. Only a hash of each token is stored. A login starts a family; every
-- refresh marks the presented token used and issues the next one in the same family.
-- Presenting a token that was already used (a stolen copy being replayed, or the
-- real client after the thief) revokes the whole family.
create table refresh_tokens (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    family_id  uuid not null,
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    used_at    timestamptz,
    revoked_at timestamptz,
    created_at timestamptz not null default now()
);
create index refresh_tokens_family on refresh_tokens (family_id);
create index refresh_tokens_user on refresh_tokens (user_id);

-- Text search over a movie's title and cast: full-text (weighted: title A, cast B) for
-- whole words, trigrams over the same text for typos ("avngers" finds "Avengers").
-- array_to_string is only STABLE in general, but it is immutable for text[]; the
-- wrappers say so, which generated columns and expression indexes require.
create function text_array_join(items text[]) returns text
    language sql immutable parallel safe
    as $$ select array_to_string(items, ' ') $$;
create function movie_search_text(title text, cast_members text[]) returns text
    language sql immutable parallel safe
    as $$ select lower(title || ' ' || text_array_join(cast_members)) $$;

alter table movies
    add column search tsvector generated always as (
        setweight(to_tsvector('simple', title), 'A')
        || setweight(to_tsvector('simple', text_array_join(cast_members)), 'B')
    ) stored;
create index movies_search on movies using gin (search);
create index movies_search_trgm on movies using gin (movie_search_text(title, cast_members) gin_trgm_ops);
create index movies_title on movies (lower(title), id);

-- A screen is busy from a show's start until its end plus the cleaning buffer
-- (busy_until, set by whoever schedules the show; ends_at when absent). The
-- database refuses two live shows whose busy times overlap on one screen, whatever
-- the application checks first.
alter table shows add column busy_until timestamptz;
alter table shows add constraint shows_busy_after_end check (busy_until is null or busy_until >= ends_at);
alter table shows add constraint shows_no_overlap exclude using gist (
    screen_id with =,
    tstzrange(starts_at, coalesce(busy_until, ends_at)) with &&
) where (status <> 'cancelled');
create index shows_starts_at on shows (starts_at) where status = 'on_sale';
