// Checkout, in the seat page's side panel: sign in or register inline, hold the
// seats (POST /v1/bookings), the hold's countdown, a test-card chooser (the local
// gateway's card tokens), and the booking's progress queued -> held ->
// payment_pending -> confirmed as it happens (polling GET /v1/bookings/{id}).
// A taken seat or a declined card is said in plain words.

import { h, replace, errorBox, toast } from './dom.js';
import { api, session, signIn, register } from './api.js';
import { codeStep } from './pages/security.js';
import { navigate } from './nav.js';
import { money, clock } from './format.js';

/** How often the booking is re-read while it is being decided. */
const POLL_MS = 500;

/** The bundled local gateway's test cards (see payment-adapter/src/local.rs). */
export const TEST_CARDS = [
  { id: 'pm_card_ok', label: 'Visa ending 4242', note: 'approves' },
  { id: 'pm_card_slow', label: 'Mastercard ending 4444', note: 'approves after a pause' },
  { id: 'pm_card_error', label: 'RuPay ending 0005', note: 'gateway error, then approves on retry' },
  { id: 'pm_card_declined', label: 'Visa ending 0002', note: 'declined by the bank' },
];

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
    const text = declined
      ? 'Your card was declined by the bank. No money was taken. The hold was released, but your seats are still picked: continue to try another card.'
      : b.status === 'expired'
        ? 'Your hold ran out before payment. The seats went back on sale.'
        : b.status === 'failed'
          ? `The payment did not go through (${(b.reason ?? 'payment failed').replaceAll('_', ' ')}). No money was taken.`
          : `The booking ended: ${b.status}.`;
    this.back([], h('div', { class: 'notice error', role: 'alert', id: 'checkout-error' }, text));
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
    const err = h('div');
    const decline = b.payment?.status === 'failed' ? h('div', { class: 'notice error', role: 'alert' },
      'Your card was declined by the bank. No money was taken. You can try another card while the hold lasts.') : null;
    const cards = h('fieldset', { class: 'cards-choice' },
      h('legend', {}, 'Pay with a test card'),
      h('p', { class: 'muted small' }, 'Test mode: these are the local gateway’s test cards; nothing is charged.'),
      TEST_CARDS.map((c, i) => h('label', { class: 'card-option' },
        h('input', { type: 'radio', name: 'card', value: c.id, checked: i === 0 }),
        h('span', {}, h('strong', {}, c.label), h('small', { class: 'muted' }, ` — ${c.note}`)))));
    const timer = h('strong', { class: 'countdown', id: 'countdown' });
    const pay = h('button', { class: 'btn primary wide', type: 'submit', id: 'pay' }, `Pay ${money(b.amount, b.currency)}`);
    const form = h('form', {
      on: {
        submit: async (e) => {
          e.preventDefault();
          pay.disabled = true;
          replace(err);
          const method = new FormData(form).get('card');
          try {
            await api(`/v1/bookings/${b.booking_id}/payment`, { method: 'POST', body: { payment_method: method } });
            this.drawProgress({ status: 'payment_pending' });
          } catch (ex) {
            replace(err, errorBox(ex));
            pay.disabled = false;
          }
        },
      },
    }, cards, err, pay);
    replace(this.box,
      this.heading('Pay for your seats'),
      steps(1),
      decline,
      h('p', { id: 'checkout-status', role: 'status' }, `Seats ${b.seats.join(', ')} are held for you.`),
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
