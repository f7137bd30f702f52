// Checkout, in the seat page's side panel: sign in or register inline, hold the
// seats (POST /v1/bookings), the hold's countdown, a test-card chooser (the local
// gateway's card tokens), and the booking's progress queued -> held ->
// payment_pending -> confirmed as it happens (polling GET /v1/bookings/{id}).
// A taken seat is said in plain words; a declined card keeps the seats held, says
// why, and offers another card (payform.js), as does "Release seats".

import { h, replace, errorBox, toast } from './dom.js';
import { api, session, signIn, register } from './api.js';
import { codeStep } from './pages/security.js';
import { navigate } from './nav.js';
import { money, clock } from './format.js';
import { payForm, TEST_CARDS } from './payform.js';
import { heldText } from './zones.js';

/** Seats and places a booking holds. */
const heldCount = (b) => (b.seats?.length ?? 0) + (b.zones ?? []).reduce((n, z) => n + z.quantity, 0);

export { TEST_CARDS };

/** How often the booking is re-read while it is being decided. */
const POLL_MS = 500;

const STEPS = [
  ['queued', 'Requested'],
  ['held', 'Seats held'],
  ['payment_pending', 'Paying'],
  ['confirmed', 'Confirmed'],
];

export class Checkout {
  constructor({ show, seatmap, panel, onBack, refreshMap }) {
    this.show = show;
    this.seatmap = seatmap;
    this.panel = panel;
    this.onBack = onBack;
    this.refreshMap = refreshMap;
    this.active = false;
    this.box = h('section', { class: 'checkout', 'aria-label': 'Checkout' });
    this.notice = h('div', { class: 'checkout-notice' });
    panel.prepend(this.notice);
    panel.append(this.box);
    this.timers = [];
  }

  stop() {
    this.timers.forEach(clearTimeout);
    this.timers = [];
    clearInterval(this.countdown);
  }

  /** Starts checkout for `{seats}` or `{quantity, seat_type}`. */
  start(request) {
    this.request = request;
    this.active = true;
    this.booking = null;
    replace(this.notice);
    this.panel.querySelector('.summary').hidden = true;
    if (session.signedIn()) this.submit(); else this.drawAuth();
  }

  back(taken, message) {
    this.stop();
    this.active = false;
    replace(this.box);
    if (message) replace(this.notice, message);
    this.panel.querySelector('.summary').hidden = false;
    this.onBack(taken);
  }

  heading(text) {
    return h('div', { class: 'checkout-head' },
      h('h2', { id: 'checkout-title', tabindex: '-1' }, text),
      this.booking ? null : h('button', { type: 'button', class: 'link', on: { click: () => this.back() } }, 'Change seats'));
  }

  drawAuth(mode = 'register') {
    const err = h('div');
    const field = (name, label, attrs = {}) => h('p', { class: 'field' },
      h('label', { for: `co-${name}` }, label),
      h('input', { id: `co-${name}`, name, required: true, ...attrs }));
    const submit = async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const btn = e.target.querySelector('button[type=submit]');
      btn.disabled = true;
      replace(err);
      try {
        if (mode === 'register') {
          await register({ name: f.get('name'), email: f.get('email'), password: f.get('password'), ...(f.get('phone') ? { phone: f.get('phone') } : {}) });
        } else {
          const challenge = await signIn(f.get('email'), f.get('password'));
          if (challenge) {
            replace(this.box, this.heading('Two-step sign-in'), codeStep(challenge, () => this.submit()));
            return;
          }
        }
        this.submit();
      } catch (ex) {
        replace(err, errorBox(ex));
        btn.disabled = false;
      }
    };
    const form = mode === 'register'
      ? h('form', { class: 'auth', id: 'register-form', on: { submit } },
        field('name', 'Your name', { autocomplete: 'name' }),
        field('email', 'Email', { type: 'email', autocomplete: 'email' }),
        field('password', 'Password (8 or more characters)', { type: 'password', autocomplete: 'new-password', minlength: 8 }),
        h('p', { class: 'field' }, h('label', { for: 'co-phone' }, 'Phone (optional, e.g. +919812345678)'),
          h('input', { id: 'co-phone', name: 'phone', type: 'tel', autocomplete: 'tel' })),
        err,
        h('button', { class: 'btn primary wide', type: 'submit' }, 'Create account and continue'))
      : h('form', { class: 'auth', id: 'signin-form', on: { submit } },
        field('email', 'Email', { type: 'email', autocomplete: 'username' }),
        field('password', 'Password', { type: 'password', autocomplete: 'current-password' }),
        err,
        h('button', { class: 'btn primary wide', type: 'submit' }, 'Sign in and continue'));
    replace(this.box,
      this.heading('Sign in to book'),
      h('div', { class: 'tabs', role: 'group', 'aria-label': 'Account' },
        h('button', { type: 'button', class: 'chip', 'aria-pressed': String(mode === 'register'), on: { click: () => this.drawAuth('register') } }, 'New here'),
        h('button', { type: 'button', class: 'chip', 'aria-pressed': String(mode === 'signin'), on: { click: () => this.drawAuth('signin') } }, 'I have an account')),
      form);
    this.box.querySelector('input')?.focus();
  }

  async submit() {
    this.drawProgress({ status: 'queued' });
    const key = crypto.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    try {
      const res = await api('/v1/bookings', {
        method: 'POST',
        headers: { 'Idempotency-Key': key },
        body: { show_id: this.show.id, ...this.request },
      });
      this.bookingId = res.booking_id;
      this.poll();
    } catch (e) {
      this.back([], errorBox(e, 'We could not hold these seats: '));
    }
  }

  poll() {
    const tick = async () => {
      let b;
      try {
        b = await api(`/v1/bookings/${this.bookingId}`);
      } catch {
        this.timers.push(setTimeout(tick, POLL_MS * 2));
        return;
      }
      // The buyer may have left checkout (released) while this read was in flight.
      if (!this.active) return;
      if (this.onBooking(b)) this.timers.push(setTimeout(tick, POLL_MS));
    };
    tick();
  }

  /** Shows the booking's state; true while it is still moving. */
  onBooking(b) {
    const prev = this.booking;
    this.booking = b;
    const changed = !prev || prev.status !== b.status || prev.payment?.status !== b.payment?.status;
    switch (b.status) {
      case 'queued':
      case 'payment_pending':
        if (changed) this.drawProgress(b);
        return true;
      case 'held':
        if (changed) {
          this.seatmap.mine = new Set(b.seats);
          this.seatmap.refresh();
          this.refreshMap();
          this.drawHeld(b);
        }
        return true;
      case 'confirmed':
        this.stop();
        this.active = false;
        toast('Booking confirmed. Enjoy the show!');
        navigate(`/bookings/${b.booking_id}`);
        return false;
      case 'rejected':
        this.rejected(b);
        return false;
      default:
        this.ended(b);
        return false;
    }
  }

  rejected(b) {
    const taken = b.reason_detail?.seats ?? [];
    let text;
    if (b.reason === 'seat_unavailable' && taken.length) {
      text = `${taken.length === 1 ? `Seat ${taken[0]} was` : `Seats ${taken.join(', ')} were`} just taken by someone else. Please pick ${taken.length === 1 ? 'another seat' : 'other seats'}.`;
    } else if (b.reason === 'not_enough_seats') {
      text = 'There are not enough free seats for that request. Try fewer seats or another type.';
    } else if (b.reason === 'not_enough_places') {
      text = `There are only ${b.reason_detail?.available ?? 'a few'} places left in that area. Try fewer places.`;
    } else if (b.reason === 'limit_per_user') {
      text = 'You already have the most tickets one person may buy for this show.';
    } else {
      text = `These seats could not be booked (${(b.reason ?? 'rejected').replaceAll('_', ' ')}).`;
    }
    this.back(taken, h('div', { class: 'notice error', role: 'alert', id: 'checkout-error' }, text));
    this.refreshMap();
  }

  ended(b) {
    const declined = isDecline(b);
    const text = b.status === 'released'
      ? 'You released the seats: they are back on sale. Pick seats again whenever you like.'
      : declined
        ? 'Your card was declined and the hold ran out before another payment, so the seats went back on sale. No money was taken. Your seats are still picked: continue to try again.'
        : b.status === 'expired'
          ? 'Your hold ran out before payment. The seats went back on sale.'
          : b.status === 'failed'
            ? `The payment did not go through (${(b.reason ?? 'payment failed').replaceAll('_', ' ')}). No money was taken.`
            : `The booking ended: ${b.status}.`;
    const kind = b.status === 'released' ? 'notice ok' : 'notice error';
    this.back([], h('div', { class: kind, role: 'alert', id: 'checkout-error' }, text));
    this.refreshMap();
  }

  drawProgress(b, extra = null) {
    clearInterval(this.countdown);
    const at = STEPS.findIndex(([s]) => s === b.status);
    replace(this.box,
      this.heading(b.status === 'payment_pending' ? 'Paying…' : 'Holding your seats…'),
      steps(at),
      h('p', { class: 'muted', role: 'status', id: 'checkout-status' }, b.status === 'payment_pending' ? 'Waiting for the bank to confirm the payment.' : 'Your request is in the queue for this show.'),
      extra);
  }

  drawHeld(b) {
    const { notice, form } = payForm(b, {
      onPaying: () => this.drawProgress({ status: 'payment_pending' }),
      onReleased: () => this.ended({ ...b, status: 'released' }),
    });
    const timer = h('strong', { class: 'countdown', id: 'countdown' });
    replace(this.box,
      this.heading(notice ? 'Try another card' : 'Pay for your seats'),
      steps(1),
      notice,
      h('p', { id: 'checkout-status', role: 'status' }, `${heldText(b)} ${heldCount(b) === 1 ? 'is' : 'are'} held for you.`),
      h('p', { class: 'hold' }, 'Time left to pay: ', timer),
      h('p', { class: 'total' }, h('span', {}, 'Total'), h('strong', {}, money(b.amount, b.currency))),
      form);
    const ends = Date.parse(b.hold_expires_at);
    const tickClock = () => {
      const left = (ends - Date.now()) / 1000;
      timer.textContent = clock(left);
      timer.classList.toggle('urgent', left < 60);
    };
    tickClock();
    clearInterval(this.countdown);
    this.countdown = setInterval(tickClock, 1000);
    this.box.querySelector('#checkout-title')?.focus();
  }
}

function steps(at) {
  return h('ol', { class: 'steps', 'aria-label': 'Progress' }, STEPS.map(([, label], i) => h('li', {
    class: i < at ? 'done' : i === at ? 'current' : '',
    'aria-current': i === at ? 'step' : false,
  }, h('span', { class: 'dot', 'aria-hidden': 'true' }, i < at ? '✓' : String(i + 1)), label)));
}

function isDecline(b) {
  const words = [b.reason, JSON.stringify(b.reason_detail ?? ''), b.payment?.decline_reason, b.payment?.failure_reason].filter(Boolean).join(' ');
  return /declin/.test(words);
}
