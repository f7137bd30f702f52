// The theater admin (role admin): a screen's week on a calendar and the form that
// schedules a show on it; the upcoming shows with their door check-ins (bookings in /
// bookings that admit) and their sales (sold, held, free, blocked, revenue, by seat
// type), cancelling a show after a confirmation; theaters with their screens, a new
// theater, a new screen drawn in the layout editor, and a new event of any kind.

import { h, replace, errorBox, toast } from '../dom.js';
import { api, profile, qs } from '../api.js';
import { money, whenText, cap } from '../format.js';
import { signInForm } from './account.js';
import { screenEditor } from './admin/layout.js';
import { scheduler } from './admin/schedule.js';
import { theaterForm, eventForm } from './admin/forms.js';

/** Rows read per list (one page of the API; the API allows up to 100). */
const PAGE = 50;

export async function render(main) {
  document.title = 'Theater admin — Marquee';
  const me = await profile();
  if (me?.role !== 'admin') {
    replace(main, h('h1', {}, 'Theater admin'),
      h('p', { class: 'muted' }, me ? 'Your account may not manage theaters: sign in as an admin.' : 'Sign in as an admin to see theaters, shows and sales.'),
      signInForm(() => render(main)));
    return;
  }
  const schedule = h('section', { 'aria-labelledby': 'adm-schedule' });
  const shows = h('section', { 'aria-labelledby': 'adm-shows' });
  const sales = h('section', { id: 'show-sales', 'aria-labelledby': 'adm-sales', hidden: true });
  const theaters = h('section', { 'aria-labelledby': 'adm-theaters' });
  const newScreen = h('div', { id: 'new-screen' });
  const create = h('section', { 'aria-labelledby': 'adm-create' });
  replace(main, h('h1', {}, 'Theater admin'),
    h('p', { class: 'muted' }, 'Schedule shows on a screen\'s week, follow their sales and door, add theaters, screens and events. Everything here is also in the API (',
      h('a', { href: '/docs' }, '/v1/admin'), ').'),
    schedule, shows, sales, theaters, create);

  /** Reloads theaters and screens; the calendar shows `screenId` when given. */
  const reload = async (screenId) => {
    const data = await loadTheaters();
    drawTheaters(theaters, data);
    drawSchedule(schedule, data, screenId, () => drawShows(shows, sales));
    return data;
  };
  const data = await reload();
  replace(newScreen, data.error ? null : screenEditor(data.list, (s) => reload(s.id)));
  replace(create, h('h2', { id: 'adm-create' }, 'Add'),
    h('details', { id: 'add-screen' }, h('summary', {}, 'A screen, with its seat layout'), newScreen),
    h('details', { id: 'add-theater' }, h('summary', {}, 'A theater'), theaterForm(async () => {
      const d = await reload();
      replace(newScreen, screenEditor(d.list, (s) => reload(s.id)));
    })),
    h('details', { id: 'add-event' }, h('summary', {}, 'An event (a movie, a concert, a match, a play, ...)'), eventForm()));
  await drawShows(shows, sales);
}

/** Theaters with their screens: `{ list, screens: [[screen]], error }`. */
async function loadTheaters() {
  let list;
  try { list = (await api(`/v1/admin/theaters${qs({ limit: PAGE })}`)).items; } catch (error) { return { list: [], screens: [], error }; }
  const screens = await Promise.all(list.map((t) => api(`/v1/admin/theaters/${t.id}/screens`).catch(() => null)));
  return { list, screens, error: null };
}

function drawSchedule(box, data, screenId, onScheduled) {
  const title = h('h2', { id: 'adm-schedule' }, 'Schedule');
  if (data.error) { replace(box, title, errorBox(data.error)); return; }
  const all = data.list.flatMap((t, i) => (data.screens[i] ?? []).map((s) => ({ ...s, theater: t })));
  const first = all.findIndex((s) => s.id === screenId);
  if (first > 0) all.unshift(...all.splice(first, 1));
  replace(box, title, scheduler(all, onScheduled));
}

/** A table; header cells named in `numeric` are right-aligned like their numbers. */
function table(caption, head, rows, numeric = []) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: numeric.includes(c) ? 'num' : null }, c)))),
    h('tbody', {}, rows)));
}

function drawTheaters(box, { list, screens, error }) {
  const title = h('h2', { id: 'adm-theaters' }, 'Theaters and screens');
  if (error) { replace(box, title, errorBox(error)); return; }
  replace(box, title, list.length === 0 ? h('p', { class: 'muted' }, 'No theaters yet.') : table('Theaters and their screens', ['Theater', 'City', 'Time zone', 'Address', 'Screens'],
    list.map((t, i) => h('tr', {},
      h('th', { scope: 'row' }, t.name),
      h('td', {}, t.city),
      h('td', {}, t.time_zone ?? ''),
      h('td', {}, t.address),
      h('td', {}, screens[i] === null ? 'could not be read'
        : screens[i].map((s) => `${s.name} (${s.seat_count} seats)`).join(', ') || 'none')))));
}

async function drawShows(box, salesBox) {
  const title = h('h2', { id: 'adm-shows' }, 'Shows');
  let list;
  let movies;
  try {
    [list, movies] = await Promise.all([
      api(`/v1/admin/shows${qs({ limit: PAGE })}`).then((p) => p.items),
      api(`/v1/admin/movies${qs({ limit: PAGE })}`).then((p) => new Map(p.items.map((m) => [m.id, m.title]))),
    ]);
  } catch (e) { replace(box, title, errorBox(e)); return; }
  replace(box, title, list.length === 0 ? h('p', { class: 'muted' }, 'No shows yet.') : table('Shows', ['Starts', 'Movie', 'Status', 'Checked in', ''],
    list.map((s) => {
      const name = movies.get(s.movie_id) ?? s.movie_id;
      return h('tr', { dataset: { show: s.id } },
        h('th', { scope: 'row' }, whenText(s)),
        h('td', {}, name),
        h('td', {}, h('span', { class: `status-pill ${s.status}` }, cap(s.status.replaceAll('_', ' ')))),
        h('td', { class: 'num checked-in', 'aria-label': `${s.checked_in} of ${s.admitted} bookings checked in` }, `${s.checked_in} / ${s.admitted}`),
        h('td', {}, h('button', {
          type: 'button', class: 'btn secondary small', 'aria-label': `Sales of ${name}, ${whenText(s)}`,
          on: { click: () => drawSales(salesBox, s, name, () => drawShows(box, salesBox)) },
        }, 'Sales')));
    })));
}

function counts(c) {
  return [c.capacity, c.sold, c.held, c.free, c.blocked].map((n) => h('td', { class: 'num' }, String(n)));
}

async function drawSales(box, show, name, reload) {
  box.hidden = false;
  const title = h('h2', { id: 'adm-sales', tabindex: '-1' }, `Sales: ${name}, ${whenText(show)}`);
  let s;
  try { s = await api(`/v1/admin/shows/${show.id}/sales`); } catch (e) { replace(box, title, errorBox(e)); title.focus(); return; }
  const outcome = h('div', { id: 'cancel-outcome', role: 'status' });
  const head = ['', 'Seats', 'Sold', 'Held', 'Free', 'Blocked'];
  replace(box, title,
    h('p', { id: 'sales-revenue', class: 'notice' }, `Revenue ${money(s.revenue.amount, s.revenue.currency)} from ${s.sold} seats sold of ${s.capacity}.`),
    table('Sales by seat type', head, [
      h('tr', {}, h('th', { scope: 'row' }, 'All'), counts(s)),
      ...s.by_seat_type.map((t) => h('tr', {}, h('th', { scope: 'row' }, cap(t.seat_type)), counts(t))),
    ], head.slice(1)),
    show.status === 'cancelled' ? null : h('p', {}, h('button', {
      type: 'button', class: 'btn danger', id: 'cancel-show-open',
      on: { click: () => confirmCancel(show, name, outcome, reload) },
    }, 'Cancel this show…')),
    outcome);
  title.focus();
}

function confirmCancel(show, name, outcome, reload) {
  const dialog = h('dialog', { id: 'cancel-confirm', 'aria-labelledby': 'cancel-confirm-title' },
    h('h2', { id: 'cancel-confirm-title' }, 'Cancel this show?'),
    h('p', {}, `${name}, ${whenText(show)} stops selling at once; every booking is released and refunded in full. This cannot be undone.`),
    h('form', { method: 'dialog', class: 'dialog-actions' },
      h('button', { class: 'btn secondary', value: 'keep', autofocus: true }, 'Keep the show'),
      h('button', { class: 'btn primary', value: 'cancel', id: 'cancel-show-go' }, 'Cancel the show')));
  dialog.addEventListener('close', async () => {
    dialog.remove();
    if (dialog.returnValue !== 'cancel') return;
    try {
      await api(`/v1/admin/shows/${show.id}/cancel`, { method: 'POST' });
      replace(outcome, h('p', { class: 'notice' }, 'Cancelled: no more sales; its bookings are being released and refunded.'));
      toast('Show cancelled');
      document.getElementById('cancel-show-open')?.remove();
      await reload();
    } catch (e) {
      replace(outcome, errorBox(e, 'The show was not cancelled: '));
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}
