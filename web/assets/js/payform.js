// The pay form of a held booking, shared by the checkout panel (/shows/{id}) and
// the booking page (/bookings/{id}): the last attempt's decline in plain words,
// the local gateway's test cards (another one picked after a decline), "Pay", and
// "Release seats" (POST /v1/bookings/{id}/release gives the seats back at once).

import { h, replace, errorBox } from './dom.js';
import { api } from './api.js';
import { money } from './format.js';

/** The bundled local gateway's test cards (see payment-adapter/local). */
export const TEST_CARDS = [
  { id: 'pm_card_ok', label: 'Visa ending 4242', note: 'approves' },
  { id: 'pm_card_slow', label: 'Mastercard ending 4444', note: 'approves after a pause' },
  { id: 'pm_card_error', label: 'RuPay ending 0005', note: 'gateway error, then approves on retry' },
  { id: 'pm_card_declined', label: 'Visa ending 0002', note: 'declined by the bank' },
];

/** What a decline reason means to a buyer. */
const DECLINES = {
  card_declined: 'Your card was declined by the bank.',
  insufficient_funds: 'The bank says there are not enough funds on this card.',
  expired_card: 'This card has expired.',
  invalid_payment_method: 'The payment provider does not accept this card.',
  payment_refused: 'The payment provider refused this card.',
  hold_expired: 'The payment took too long and was stopped.',
  canceled: 'The payment was stopped before it completed.',
};

/** The decline of a booking's last payment attempt, in plain words (or null). */
export function declineText(b) {
  const p = b.payment;
  if (!p || (p.status !== 'failed' && p.status !== 'canceled')) return null;
  const why = p.decline_reason ?? p.status;
  const said = DECLINES[why] ?? `The payment did not go through (${String(why).replaceAll('_', ' ')}).`;
  return `${said} No money was taken.`;
}

/**
 * The pay form of held booking `b`. `onPaying()` runs once a payment attempt is
 * accepted, `onReleased()` once the release is; both are the caller's to draw.
 */
export function payForm(b, { onPaying, onReleased }) {
  const err = h('div');
  const declined = declineText(b);
  // After a decline, offer a different card than the one that failed.
  const tried = b.payment?.method;
  const first = TEST_CARDS.find((c) => c.id !== tried && c.id !== 'pm_card_declined') ?? TEST_CARDS[0];
  const cards = h('fieldset', { class: 'cards-choice' },
    h('legend', {}, declined ? 'Try another card' : 'Pay with a test card'),
    h('p', { class: 'muted small' }, 'Test mode: these are the local gateway’s test cards; nothing is charged.'),
    TEST_CARDS.map((c) => h('label', { class: 'card-option' },
      h('input', { type: 'radio', name: 'card', value: c.id, checked: c === first }),
      h('span', {}, h('strong', {}, c.label), h('small', { class: 'muted' }, ` — ${c.note}`)))));
  const pay = h('button', { class: 'btn primary wide', type: 'submit', id: 'pay' },
    `${declined ? 'Pay again' : 'Pay'} ${money(b.amount, b.currency)}`);
  const release = h('button', {
    class: 'btn danger wide',
    type: 'button',
    id: 'release',
    on: {
      click: async () => {
        release.disabled = true;
        pay.disabled = true;
        replace(err);
        try {
          await api(`/v1/bookings/${b.booking_id}/release`, { method: 'POST' });
          onReleased();
        } catch (ex) {
          replace(err, errorBox(ex, 'The seats could not be released: '));
          release.disabled = false;
          pay.disabled = false;
        }
      },
    },
  }, 'Release seats');
  const form = h('form', {
    class: 'pay-form',
    on: {
      submit: async (e) => {
        e.preventDefault();
        pay.disabled = true;
        release.disabled = true;
        replace(err);
        const method = new FormData(form).get('card');
        try {
          await api(`/v1/bookings/${b.booking_id}/payment`, { method: 'POST', body: { payment_method: method } });
          onPaying();
        } catch (ex) {
          replace(err, errorBox(ex));
          pay.disabled = false;
          release.disabled = false;
        }
      },
    },
  }, cards, err, pay,
  h('p', { class: 'muted small release-note' }, 'Changed your mind? Give the seats back now, so others can have them.'),
  release);
  const notice = declined
    ? h('div', { class: 'notice error', role: 'alert', id: 'decline' },
      `${declined} Your seats are still held for you: try another card before the time runs out.`,
      b.payment?.attempts > 1 ? h('span', { class: 'muted small' }, ` (${b.payment.attempts} attempts so far)`) : null)
    : null;
  return { notice, form };
}
