// Home: what is on in the chosen city (movies and events of every kind), by day,
// with a kind filter, search (typo-tolerant, done by the API), genre and language
// filters, and "More" paging by cursor. The filters live in the address
// (?kind=&q=&date=&genre=&lang=) so links and Back keep them.

import { h, replace, errorBox } from '../dom.js';
import { api, qs } from '../api.js';
import { city, navigate } from '../nav.js';
import { nextDays, duration, cap } from '../format.js';

const PAGE_SIZE = 12;
const DAYS_SHOWN = 7;
const GENRES = ['action', 'drama', 'comedy', 'thriller', 'romance', 'horror', 'sci-fi', 'family', 'animation', 'crime', 'adventure', 'fantasy'];
/** The kinds of `/v1/events`, with their plural for headings and the chips. */
const KINDS = [
  ['', 'Everything'],
  ['movie', 'Movies'],
  ['concert', 'Concerts'],
  ['sports', 'Sports'],
  ['play', 'Plays'],
  ['comedy', 'Comedy'],
  ['other', 'Other events'],
];
const KIND_WORDS = { movie: 'Movie', concert: 'Concert', sports: 'Sports', play: 'Play', comedy: 'Comedy', other: 'Event' };

export async function render(main) {
  const params = new URLSearchParams(location.search);
  const state = {
    kind: params.get('kind') ?? '',
    q: params.get('q') ?? '',
    date: params.get('date') ?? '',
    genre: params.get('genre') ?? '',
    lang: params.get('lang') ?? '',
  };
  if (!KINDS.some(([k]) => k === state.kind)) state.kind = '';
  const here = city();
  const what = KINDS.find(([k]) => k === state.kind)[1];
  const heading = state.kind ? what : 'Movies and events';
  document.title = here ? `${heading} in ${here} — Marquee` : `${heading} — Marquee`;

  const results = h('ul', { class: 'cards', id: 'results', 'aria-label': heading });
  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const more = h('button', { class: 'btn secondary', type: 'button', hidden: true }, 'Show more');
  const loaded = [];
  let cursor = null;

  const apply = () => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v) q.set(k, v);
    const s = q.toString();
    navigate(s ? `/?${s}` : '/', { replace: true });
  };

  const search = h('input', {
    type: 'search', id: 'search', name: 'q', value: state.q,
    placeholder: 'Search titles, cast or artists, e.g. “Interstelar”', autocomplete: 'off',
  });
  const searchForm = h('form', { class: 'search', role: 'search', on: { submit: (e) => { e.preventDefault(); state.q = search.value.trim(); apply(); } } },
    h('label', { for: 'search', class: 'visually-hidden' }, 'Search movies and events'),
    search,
    h('button', { class: 'btn', type: 'submit' }, 'Search'));

  const kindButtons = KINDS.map(([k, label]) => h('button', {
    type: 'button', class: 'chip', 'aria-pressed': String(state.kind === k), 'data-kind': k || 'all',
    on: { click: () => { state.kind = k; apply(); } },
  }, label));

  const dayButtons = [{ day: '', label: 'Any day' }, ...nextDays(DAYS_SHOWN)].map((d) => h('button', {
    type: 'button', class: 'chip', 'aria-pressed': String(state.date === d.day),
    on: { click: () => { state.date = d.day; apply(); } },
  }, d.label));

  const genreSelect = h('select', { id: 'genre', on: { change: (e) => { state.genre = e.target.value; apply(); } } },
    h('option', { value: '' }, 'All genres'),
    GENRES.map((g) => h('option', { value: g, selected: state.genre === g }, cap(g))));
  const langSelect = h('select', { id: 'lang', on: { change: (e) => { state.lang = e.target.value; draw(); } } },
    h('option', { value: '' }, 'All languages'));

  const draw = () => {
    state.lang = langSelect.value;
    const langs = [...new Set(loaded.map((m) => m.language).filter(Boolean))].sort();
    replace(langSelect, h('option', { value: '' }, 'All languages'),
      langs.map((l) => h('option', { value: l, selected: state.lang === l }, l)));
    const shown = loaded.filter((m) => !state.lang || m.language === state.lang);
    replace(results, shown.map(card));
    more.hidden = !cursor;
    status.textContent = shown.length
      ? `${shown.length}${cursor ? '+' : ''} ${shown.length === 1 ? 'title' : 'titles'}${state.q ? ` matching “${state.q}”` : ''}`
      : (cursor ? 'Nothing in this language on the first page: show more.' : nothingText(state, here));
  };

  const load = async () => {
    more.disabled = true;
    try {
      const page = await api(`/v1/events${qs({ kind: state.kind, city: here, date: state.date, genre: state.genre, q: state.q, limit: PAGE_SIZE, cursor })}`);
      loaded.push(...page.items);
      cursor = page.next_cursor;
      draw();
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => load().catch((e) => status.replaceWith(errorBox(e))));

  replace(main,
    h('section', { class: 'hero' },
      h('h1', {}, here ? `${heading} in ${here}` : `${heading} on now`),
      here ? null : h('p', { class: 'muted' }, 'Choose your city at the top to see what is on near you.'),
      searchForm),
    h('div', { class: 'filters' },
      h('div', { class: 'chips', role: 'group', 'aria-label': 'Kind' }, kindButtons),
      h('div', { class: 'chips', role: 'group', 'aria-label': 'Day' }, dayButtons),
      h('div', { class: 'selects' },
        h('label', { for: 'genre' }, 'Genre'), genreSelect,
        h('label', { for: 'lang' }, 'Language'), langSelect)),
    status, results, h('div', { class: 'more' }, more));
  try {
    await load();
  } catch (e) {
    results.replaceWith(errorBox(e));
  }
}

function nothingText(state, here) {
  if (state.q) return `Nothing matches “${state.q}”${here ? ` in ${here}` : ''}. Try other words.`;
  return `Nothing with shows${here ? ` in ${here}` : ''}${state.date ? ' on that day' : ''}.`;
}

function card(m) {
  const kind = m.kind ?? 'movie';
  const facts = [kind === 'movie' ? null : KIND_WORDS[kind], m.language, duration(m.duration_min), m.rating].filter(Boolean).join(' · ');
  const href = kind === 'movie' ? `/movies/${m.id}` : `/events/${m.id}`;
  return h('li', { class: `card movie kind-${kind}` },
    h('div', { class: 'poster', 'aria-hidden': 'true' }, initials(m.title)),
    h('div', { class: 'body' },
      h('h2', {}, h('a', { href, class: 'stretch' }, m.title)),
      h('p', { class: 'muted' }, facts),
      h('p', { class: 'tags' }, (m.genres ?? []).map((g) => h('span', { class: 'tag' }, cap(g))))));
}

function initials(title) {
  return title.split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w)).slice(0, 2).map((w) => w[0].toUpperCase()).join('');
}
