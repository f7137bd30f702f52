// The seat page of a show: the live seat map (short polling of its `version`),
// picking seats up to the limit or asking for the best N, a running total, then
// checkout in the side panel (see checkout.js).

import { h, replace, every, toast } from '../dom.js';
import { api } from '../api.js';
import { money, whenText } from '../format.js';
import { SeatMap } from '../seatmap.js';
import { Checkout } from '../checkout.js';
import { Zones } from '../zones.js';

/** Most seats in one booking (the API's limit). */
const MAX_SEATS = 10;
/** How often the seat map is re-read while the page is open. */
const POLL_MS = 1500;

export async function render(main, [id]) {
  const [show, first] = await Promise.all([api(`/v1/shows/${encodeURIComponent(id)}`), api(`/v1/shows/${encodeURIComponent(id)}/seats`)]);
  const title = show.movie?.title ?? show.event?.title ?? 'Show';
  document.title = `${title}, ${whenText(show)} — Seats — Marquee`;
  let version = first.version;
  const selected = [];

  const mapBox = h('div', { class: 'seatmap', id: 'seatmap' });
  const live = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const summary = h('div', { class: 'summary' });
  const panel = h('aside', { class: 'panel', 'aria-label': 'Your booking' }, summary);
  const seatmap = new SeatMap(mapBox, { onToggle: toggle });
  const checkout = new Checkout({
    show,
    seatmap,
    panel,
    onBack: (taken) => {
      for (const t of taken ?? []) {
        const i = selected.indexOf(t);
        if (i >= 0) selected.splice(i, 1);
      }
      seatmap.selected = new Set(selected);
      seatmap.mine.clear();
      drawSummary();
      poll();
    },
    refreshMap: () => poll(),
  });

  const zones = new Zones(first, {
    currency: show.prices[0]?.currency,
    onSale: show.on_sale,
    picked: () => [...selected],
    onBook: (request) => { if (!checkout.active) checkout.start(request); },
  });

  function toggle(seatId) {
    if (checkout.active) return;
    const i = selected.indexOf(seatId);
    if (i >= 0) selected.splice(i, 1);
    else if (selected.length >= MAX_SEATS) { toast(`You can pick up to ${MAX_SEATS} seats in one booking.`); return; }
    else selected.push(seatId);
    seatmap.selected = new Set(selected);
    seatmap.refresh();
    live.textContent = `${i >= 0 ? 'Removed' : 'Added'} ${seatId}. ${selected.length} selected, ${money(total(), show.prices[0]?.currency)} in total.`;
    drawSummary();
  }

  const total = () => selected.reduce((sum, sid) => sum + (seatmap.seat(sid)?.price ?? 0), 0);

  function drawSummary() {
    const cur = show.prices[0]?.currency;
    const cont = h('button', {
      class: 'btn primary wide', type: 'button', id: 'continue', disabled: selected.length === 0 || !show.on_sale,
      on: { click: () => checkout.start({ seats: [...selected] }) },
    }, selected.length ? `Continue with ${selected.length} seat${selected.length === 1 ? '' : 's'}` : 'Pick your seats');
    const qty = h('select', { id: 'best-qty' }, Array.from({ length: MAX_SEATS }, (_, i) => h('option', { value: i + 1, selected: i === 1 }, String(i + 1))));
    const types = [...new Set(show.prices.map((p) => p.seat_type))];
    const type = h('select', { id: 'best-type' }, h('option', { value: '' }, 'Any type'), types.map((t) => h('option', { value: t }, t)));
    replace(summary,
      h('h2', {}, 'Your seats'),
      selected.length
        ? h('ul', { class: 'picked', 'aria-label': 'Selected seats' }, selected.map((sid) => {
          const s = seatmap.seat(sid);
          return h('li', {}, h('span', {}, `${sid}`, h('small', { class: 'muted' }, ` ${s?.type ?? ''}`)), h('span', {}, money(s?.price, cur)),
            h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${sid}`, on: { click: () => toggle(sid) } }, '✕'));
        }))
        : h('p', { class: 'muted' }, `Choose up to ${MAX_SEATS} seats on the map.`),
      h('p', { class: 'total' }, h('span', {}, 'Total'), h('strong', { id: 'total' }, money(total(), cur))),
      show.on_sale ? null : h('p', { class: 'notice error' }, 'This show is not on sale.'),
      cont,
      show.on_sale ? h('details', { class: 'best' },
        h('summary', {}, 'Or let us pick the best seats'),
        h('div', { class: 'best-form' },
          h('label', { for: 'best-qty' }, 'Seats'), qty,
          h('label', { for: 'best-type' }, 'Type'), type,
          h('button', {
            class: 'btn secondary', type: 'button', id: 'best',
            on: { click: () => checkout.start({ quantity: Number(qty.value), seat_type: type.value || undefined }) },
          }, 'Find best seats'))) : null);
  }

  async function poll() {
    const map = await api(`/v1/shows/${encodeURIComponent(id)}/seats`);
    if (map.version === version && !checkout.active) return;
    version = map.version;
    const lost = selected.filter((sid) => map.rows.some((r) => r.seats.some((s) => s.id === sid && s.status !== 'available')));
    if (lost.length && !checkout.active) {
      for (const sid of lost) selected.splice(selected.indexOf(sid), 1);
      seatmap.selected = new Set(selected);
      toast(`${lost.join(', ')} ${lost.length === 1 ? 'was' : 'were'} just taken by someone else.`);
      drawSummary();
    }
    seatmap.update(map);
    zones.update(map);
    // A demand-priced show's prices move with its sales: the legend follows.
    main.querySelector('.legend')?.replaceWith(seatmap.legend(show.prices));
  }

  replace(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '/' }, 'Home'), ' › ',
      show.movie ? h('a', { href: eventHref(show) }, title) : title, ' › Seats'),
    h('header', { class: 'show-head' },
      h('h1', {}, title),
      h('p', { class: 'muted' }, `${show.theater.name}, ${show.theater.city} · ${show.screen.name} · ${whenText(show)}`)),
    h('div', { class: 'seat-layout' },
      h('section', { class: 'map-area', 'aria-label': 'Seats' }, h('div', { class: 'map-scroll' }, mapBox), h('div', { id: 'legend' }), zones.el),
      panel),
    live);
  seatmap.draw(first);
  // On a narrow screen a wide hall scrolls sideways inside its box: say so.
  const scroller = main.querySelector('.map-scroll');
  if (scroller.scrollWidth > scroller.clientWidth + 1) {
    scroller.before(h('p', { class: 'muted small scroll-hint' }, 'The hall is wider than your screen: scroll sideways to see every seat.'));
  }
  main.querySelector('#legend').replaceWith(seatmap.legend(show.prices));
  drawSummary();
  // The page is usable from here (every seat a button): the web benchmark reads it.
  performance.mark('seatmap-interactive');
  const stop = every(POLL_MS, poll);
  return () => { stop(); checkout.stop(); };
}

/** The show's movie page, or its event page for other kinds. */
function eventHref(show) {
  const kind = show.event?.kind ?? 'movie';
  return kind === 'movie' ? `/movies/${show.movie.id}` : `/events/${show.movie.id}`;
}
