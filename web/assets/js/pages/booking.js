// A booking: its status while it is decided (a held one can be paid, again after
// a decline, or released here), then the e-ticket (a QR code large enough to scan,
// the show, theater, screen, seats and time), printable.

import { h, replace, errorBox, every, toast } from '../dom.js';
import { api, session } from '../api.js';
import { money, whenText, statusWord } from '../format.js';
import { payForm, declineText } from '../payform.js';

/** Why a booking ended where it did, in plain words (null while it moves). */
function outcome(b) {
  switch (b.status) {
    case 'released': return 'You released these seats; they are back on sale.';
    case 'expired': return 'The hold ran out before payment; the seats went back on sale.';
    case 'failed': return `${declineText(b) ?? 'The payment did not go through. No money was taken.'} The hold ran out, so the seats went back on sale.`;
    default: return null;
  }
}

const POLL_MS = 1000;
const MOVING = new Set(['queued', 'held', 'payment_pending']);

export async function render(main, [id]) {
  document.title = 'Your booking — Marquee';
  if (!session.signedIn()) {
    replace(main, h('h1', {}, 'Your booking'), h('p', {}, 'Sign in to see this booking. ', h('a', { href: `/signin?next=/bookings/${id}` }, 'Sign in')));
    return;
  }
  let b = await api(`/v1/bookings/${encodeURIComponent(id)}`);
  const show = await api(`/v1/shows/${b.show_id}`).catch(() => null);
  const refetch = async () => {
    b = await api(`/v1/bookings/${b.booking_id}`);
    await draw();
  };
  const held = () => {
    if (b.status !== 'held') return null;
    const { notice, form } = payForm(b, {
      onPaying: () => { b = { ...b, status: 'payment_pending' }; draw(); },
      onReleased: () => { toast('Seats released.'); refetch(); },
    });
    return h('section', { class: 'noprint held-pay', 'aria-label': 'Pay' }, notice, form);
  };
  const draw = async () => {
    const ticket = b.status === 'confirmed' ? await api(`/v1/bookings/${b.booking_id}/ticket`).catch((e) => e) : null;
    const ended = outcome(b);
    const title = show?.movie?.title ?? show?.event?.title ?? 'Your booking';
    document.title = `${b.status === 'confirmed' ? 'Ticket' : 'Booking'}: ${title} — Marquee`;
    replace(main,
      h('nav', { class: 'crumbs noprint', 'aria-label': 'Breadcrumb' }, h('a', { href: '/account/bookings' }, 'My bookings'), ' › ', title),
      h('article', { class: `ticket ${b.status}` },
        h('header', {},
          h('p', { class: `status-pill ${b.status}`, id: 'booking-status' }, statusWord(b.status)),
          h('h1', {}, title),
          show ? h('p', { class: 'when' }, whenText(show)) : null,
          ended ? h('p', { class: 'notice', id: 'booking-outcome' }, ended) : null),
        held(),
        h('div', { class: 'ticket-body' },
          ticketQr(ticket),
          h('dl', { class: 'facts' },
            show ? [h('dt', {}, 'Theater'), h('dd', {}, [show.theater.name, show.theater.address, show.theater.city].filter(Boolean).join(', '))] : null,
            show ? [h('dt', {}, 'Screen'), h('dd', {}, show.screen.name)] : null,
            h('dt', {}, b.seats.length === 1 ? 'Seat' : 'Seats'), h('dd', { class: 'seats', id: 'ticket-seats' }, b.seats.join(', ') || '—'),
            (b.zones ?? []).length ? [h('dt', {}, 'Places'), h('dd', { id: 'ticket-zones' }, (b.zones ?? []).map((z) => `${z.quantity} × ${z.zone}`).join(', '))] : null,
            h('dt', {}, 'Amount'), h('dd', {}, money(b.amount, b.currency)),
            h('dt', {}, 'Booking'), h('dd', { class: 'mono' }, b.booking_id))),
        b.status === 'confirmed'
          ? h('p', { class: 'noprint actions' },
            h('button', { class: 'btn', type: 'button', on: { click: () => window.print() } }, 'Print ticket'),
            ' ', h('a', { class: 'btn secondary', href: '/account/bookings' }, 'All my bookings'))
          : null));
  };
  await draw();
  if (!MOVING.has(b.status)) return undefined;
  const stop = every(POLL_MS, async () => {
    const next = await api(`/v1/bookings/${b.booking_id}`);
    // A new decline of a held booking is news too.
    if (next.status !== b.status || next.payment?.attempts !== b.payment?.attempts) { b = next; await draw(); }
    if (!MOVING.has(b.status)) stop();
  });
  return stop;
}

function ticketQr(ticket) {
  if (!ticket) return null;
  if (ticket instanceof Error) return errorBox(ticket, 'The e-ticket is not available yet: ');
  return h('figure', { class: 'qr' },
    h('img', { id: 'ticket-qr', src: `data:image/png;base64,${ticket.qr_png_base64}`, alt: 'Ticket QR code: show it at the door', width: 280, height: 280 }),
    h('figcaption', { class: 'muted small' }, 'Show this code at the door. It works offline.'));
}
