// A movie (or event): details, then its shows in the chosen city grouped by day and
// theater, each with its time, price range and a sold-out / filling-fast mark (from
// the seat maps of the day's first shows).

import { h, replace } from '../dom.js';
import { api, qs } from '../api.js';
import { city } from '../nav.js';
import { when, priceRange, duration, cap } from '../format.js';

/** How a kind is named, and who is on stage. */
const KIND_WORDS = { movie: 'Movie', concert: 'Concert', sports: 'Sports', play: 'Play', comedy: 'Comedy', other: 'Event' };
const PEOPLE_WORDS = { movie: 'Cast', concert: 'Artists', sports: 'Teams', play: 'Cast', comedy: 'Performers', other: 'Performers' };

/** Most pages of shows read for one movie (100 shows each). */
const MAX_SHOW_PAGES = 5;
/** Seat maps read to mark availability (the rest stay unmarked). */
const MAX_AVAILABILITY_READS = 12;
/** Below this share of free seats a show is "filling fast". */
const FILLING_FAST_SHARE = 0.25;

export async function render(main, [id], kind = 'movie') {
  const base = kind === 'event' ? `/v1/events/${encodeURIComponent(id)}` : `/v1/movies/${encodeURIComponent(id)}`;
  const here = city();
  const [movie, shows] = await Promise.all([api(base), allShows(`${base}/shows`, here)]);
  document.title = `${movie.title} — Marquee`;
  const kindWord = KIND_WORDS[movie.kind] ?? null;
  const facts = [kind === 'event' ? kindWord : null, movie.language, duration(movie.duration_min), movie.rating].filter(Boolean).join(' · ');
  const people = movie.cast ?? movie.performers ?? [];
  const list = h('div', { class: 'showtimes' });
  replace(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: kind === 'event' ? '/' : '/?kind=movie' }, kind === 'event' ? 'Home' : 'Movies'), ' › ', movie.title),
    h('section', { class: 'movie-head' },
      h('h1', {}, movie.title),
      h('p', { class: 'muted' }, facts),
      h('p', { class: 'tags' }, (movie.genres ?? []).map((g) => h('span', { class: 'tag' }, cap(g)))),
      movie.synopsis ? h('p', { class: 'synopsis' }, movie.synopsis) : null,
      people.length ? h('p', { class: 'muted' }, `${PEOPLE_WORDS[movie.kind] ?? 'Cast'}: ${people.join(', ')}`) : null),
    h('h2', {}, here ? `Show times in ${here}` : 'Show times'),
    list);
  if (!shows.length) {
    replace(list, h('p', { class: 'notice' }, here ? `No upcoming shows in ${here}. Try another city at the top.` : 'No upcoming shows.'));
    return;
  }
  const marks = new Map();
  const byDay = group(shows, (s) => when(s).day);
  for (const [, dayShows] of byDay) {
    const w = when(dayShows[0]);
    const byTheater = group(dayShows, (s) => s.theater.id);
    list.append(h('section', { class: 'day' },
      h('h3', {}, w.dayLabel),
      [...byTheater.values()].map((ts) => h('div', { class: 'theater' },
        h('h4', {}, ts[0].theater.name, h('span', { class: 'muted' }, ` · ${ts[0].theater.city}`),
          ts[0].theater.time_zone ? h('span', { class: 'muted small' }, ` · times in ${ts[0].theater.time_zone}`) : null),
        h('ul', { class: 'times' }, ts.map((s) => {
          const mark = h('span', { class: 'mark' });
          marks.set(s.id, mark);
          const t = when(s);
          return h('li', {},
            h('a', { class: 'time', href: `/shows/${s.id}` },
              h('span', {}, h('strong', {}, t.time), h('small', {}, ` ${t.zone}`)),
              h('span', { class: 'sub' }, `${s.screen.name} · ${priceRange(s.prices)}`),
              mark));
        }))))));
  }
  markAvailability(shows.slice(0, MAX_AVAILABILITY_READS), marks);
}

async function allShows(path, here) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < MAX_SHOW_PAGES; i++) {
    const page = await api(`${path}${qs({ city: here, limit: 100, cursor })}`);
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

function group(items, key) {
  const m = new Map();
  for (const it of items) {
    const k = key(it);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(it);
  }
  return m;
}

async function markAvailability(shows, marks) {
  await Promise.all(shows.map(async (s) => {
    try {
      const map = await api(`/v1/shows/${s.id}/seats`);
      const seats = map.rows.flatMap((r) => r.seats).filter((x) => x.status !== 'blocked');
      const free = seats.filter((x) => x.status === 'available').length;
      const mark = marks.get(s.id);
      if (!mark) return;
      if (free === 0) { mark.textContent = 'Sold out'; mark.className = 'mark soldout'; mark.closest('a').classList.add('is-soldout'); }
      else if (free / seats.length < FILLING_FAST_SHARE) { mark.textContent = 'Filling fast'; mark.className = 'mark fast'; }
    } catch { /* unmarked */ }
  }));
}
