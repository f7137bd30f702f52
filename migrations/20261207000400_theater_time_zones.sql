-- Theaters' time zones: show times are stored in UTC (timestamptz) and read in the
-- theater's zone, an IANA name (`Asia/Kolkata`) that ingress validates against the
-- time zone database before writing it. Every theater so far is Indian, and so is
-- the seed: the default names India's zone, so existing rows and writers that do
-- not know the column yet keep working.
--
-- Why no local-date column on shows: a show's local day follows from its start and
-- its theater's zone, both of which can change (a show is moved, a theater's zone
-- is corrected), and a generated column cannot read another table. The catalog's
-- `date=` filter instead compares `starts_at` with the day's bounds computed per
-- zone (see ingress/src/catalog/filters.rs), which the existing `starts_at` indexes
-- serve.
--
-- Never edit this file once it has landed: add a new migration instead.

alter table theaters add column time_zone text not null default 'Asia/Kolkata';
