-- Catalog reads: the live seat map's version and browsing by city.
--
-- Never edit this file once it has landed: add a new migration instead.

-- The version of a show's seat map is its highest booking_events.seq; ingress reads
-- it (max(seq) for one show) whenever it rebuilds a map, which must not scan the log.
create index booking_events_show_seq on booking_events (show_id, seq);

-- Browsing lists a movie's upcoming on-sale shows in start order; the partial index
-- holds only those, so the filter by city or day reads no cancelled or past rows.
create index shows_on_sale_movie_time on shows (movie_id, starts_at, id) where status = 'on_sale';

-- With a city filter the planner starts from the city's screens: this finds one
-- movie's upcoming shows on each screen without reading the screen's other shows.
create index shows_on_sale_screen_movie on shows (screen_id, movie_id, starts_at) where status = 'on_sale';

-- City filters compare case-insensitively.
create index theaters_city_lower on theaters (lower(city));
