// The theater admin (role admin), read-mostly for now: theaters with their screens,
// the upcoming shows with their door check-ins (bookings in / bookings that admit)
// and their sales (sold, held, free, blocked, revenue, by seat
// type), and cancelling a show after a confirmation. Creating and editing theaters,
// screens, layouts and shows is still done through `/v1/admin` and `bookctl`.

import { h, replace, errorBox, toast } from '../dom.js';
import { api, profile, qs } from '../api.js';
import { money, whenText, cap } from '../format.js';
import { signInForm } from './account.js';

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
  const theaters = h('section', { 'aria-labelledby': 'adm-theaters' });
  const shows = h('section', { 'aria-labelledby': 'adm-shows' });
  const sales = h('section', { id: 'show-sales', 'aria-labelledby': 'adm-sales', hidden: true });
  replace(main, h('h1', {}, 'Theater admin'),
    h('p', { class: 'muted' }, 'Theaters, screens, shows and their sales. Theaters, screens, layouts and shows are created and changed through the API (',
      h('a', { href: '/docs' }, '/v1/admin'), ') for now.'),
    shows, sales, theaters);
  await Promise.all([drawShows(shows, sales), drawTheaters(theaters)]);
}

/** A table; header cells named in `numeric` are right-aligned like their numbers. */
function table(caption, head, rows, numeric = []) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: numeric.includes(c) ? 'num' : null }, c)))),
    h('tbody', {}, rows)));
}

async function drawTheaters(box) {
  const title = h('h2', { id: 'adm-theaters' }, 'Theaters and screens');
  let list;
  try { list = (await api(`/v1/admin/theaters${qs({ limit: PAGE })}`)).items; } catch (e) { replace(box, title, errorBox(e)); return; }
  const screens = await Promise.all(list.map((t) => api(`/v1/admin/theaters/${t.id}/screens`).catch(() => null)));
  replace(box, title, list.length === 0 ? h('p', { class: 'muted' }, 'No theaters yet.') : table('Theaters and their screens', ['Theater', 'City', 'Address', 'Screens'],
    list.map((t, i) => h('tr', {},
      h('th', { scope: 'row' }, t.name),
      h('td', {}, t.city),
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
