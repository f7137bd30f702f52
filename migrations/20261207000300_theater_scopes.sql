-- Door staff and theater scopes (API.md, Round 2, "Door" and "Theater staff").
--
-- Never edit this file once it has landed: add a new migration instead.

-- A new role, `staff`: checks tickets in at the door and looks bookings up.
alter table users drop constraint users_role_check;
alter table users add constraint users_role_check
    check (role in ('customer', 'admin', 'operator', 'staff'));

-- Whether the account is limited to the theaters of its grants. Set by the first
-- grant and never cleared by a revoke: revoking an admin's last theater must leave
-- an account that manages nothing, not promote it to a platform admin (an admin
-- without scope). `bookctl user unscope` clears it, on purpose and by name.
-- Staff are always scoped, whatever this says.
alter table users add column theater_scoped boolean not null default false;

-- The theaters a scoped admin or staff member manages.
create table theater_grants (
    user_id    uuid not null references users (id) on delete cascade,
    theater_id uuid not null references theaters (id) on delete cascade,
    granted_at timestamptz not null default now(),
    primary key (user_id, theater_id)
);
create index theater_grants_theater on theater_grants (theater_id);
-- Scoped lists join shows to their theater through the screen.
create index screens_theater on screens (theater_id);
