-- Account security: email verification, password change and reset, two-factor
-- authentication (TOTP) with recovery codes, and ending every login of an account.

-- email_verified_at: set when the emailed verification token is used.
-- auth_epoch: the account's session generation. Access tokens carry the generation
--   they were issued in; a password change or reset bumps it, and ingress refuses a
--   token of an older generation on every authenticated request (a primary-key read
--   the request's database pool does anyway), so every instance refuses it at once.
-- mfa_secret: the TOTP secret of an enrolled account, sealed by ingress
--   (ChaCha20-Poly1305, nonce first, the account id as associated data; never answered
--   again after enrolment, never logged); mfa_pending_secret: one being enrolled, until
--   a code confirms it; mfa_enabled_at: when MFA became required at login.
-- mfa_last_step: the last TOTP time step accepted, so a code is never used twice.
alter table users
    add column email_verified_at timestamptz,
    add column auth_epoch bigint not null default 0,
    add column mfa_secret bytea,
    add column mfa_pending_secret bytea,
    add column mfa_enabled_at timestamptz,
    add column mfa_last_step bigint not null default 0;

-- Single-use tokens sent by email: only their SHA-256 is stored.
create table account_tokens (
    token_hash bytea primary key,
    user_id    uuid not null references users (id) on delete cascade,
    purpose    text not null check (purpose in ('verify_email', 'password_reset')),
    expires_at timestamptz not null,
    used_at    timestamptz,
    created_at timestamptz not null default now()
);
create index account_tokens_user on account_tokens (user_id, purpose);

-- Recovery codes of an enrolled account: SHA-256 of each, each usable once.
create table mfa_recovery_codes (
    user_id   uuid not null references users (id) on delete cascade,
    code_hash bytea not null,
    used_at   timestamptz,
    primary key (user_id, code_hash)
);

-- The second step of a login with MFA: the password was right, a code must follow
-- before `expires_at`, within `attempts_max` tries. Only the SHA-256 of the
-- challenge token is stored.
create table mfa_challenges (
    token_hash bytea primary key,
    user_id    uuid not null references users (id) on delete cascade,
    expires_at timestamptz not null,
    attempts   int not null default 0,
    used_at    timestamptz,
    created_at timestamptz not null default now()
);
create index mfa_challenges_user on mfa_challenges (user_id);

-- Whether the login a refresh-token family belongs to used a second factor: the
-- access tokens of its refreshes say so too (the `amr` claim).
alter table refresh_tokens add column mfa boolean not null default false;
