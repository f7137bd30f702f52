-- Sign in with a provider (OpenID Connect): which provider account (its issuer's
-- `sub`, stable and never reused) is which of our accounts. A first sign-in links by
-- the provider's verified email, or creates the account; later ones go by subject.
create table user_identities (
    provider text not null,
    subject text not null,
    user_id uuid not null references users (id) on delete cascade,
    -- The address the provider vouched for when the link was made.
    email text not null,
    created_at timestamptz not null default now(),
    primary key (provider, subject)
);

create index user_identities_user_idx on user_identities (user_id);
