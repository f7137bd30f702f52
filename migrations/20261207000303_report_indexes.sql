-- Sales reports (API.md, Round 2, "Theater staff"): a report reads the shows that
-- start in a period, of every status (a cancelled show's fees and refunds count),
-- then their bookings (bookings_show) and payments (their primary key).
--
-- Never edit this file once it has landed: add a new migration instead.
create index shows_starts_at_all on shows (starts_at);
