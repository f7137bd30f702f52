// The account page's phone and notifications section: a phone verified by an SMS
// code (`POST /v1/me/phone/verify`, then `POST /v1/me/phone/confirm`), and how
// booking messages (confirmations, cancellations, reminders before a show) reach
// the buyer: email, SMS or both (`PATCH /v1/me` with `preferences.notify`).

import { h, replace, toast } from '../dom.js';
import { api, session } from '../api.js';
import { field, form } from './security.js';

const CHOICES = [
  { id: 'email', notify: ['email'], label: 'Email', by: 'by email' },
  { id: 'sms', notify: ['sms'], label: 'SMS', by: 'by SMS' },
  { id: 'both', notify: ['email', 'sms'], label: 'Email and SMS', by: 'by email and SMS' },
];

function choiceOf(notify) {
  const has = (c) => (notify ?? ['email']).includes(c);
  if (has('email') && has('sms')) return 'both';
  return has('sms') ? 'sms' : 'email';
}

/** Tells the app's other pages the profile changed (the memoised one is dropped). */
function profileChanged() {
  session.save(session.tokens());
}

/**
 * The section for the profile `me`, which it keeps up to date as the phone and the
 * preference change (the profile form saves `me.preferences` as a whole).
 */
export function phoneSection(me) {
  const section = h('section', { 'aria-labelledby': 'phone-h' });
  const draw = () => replace(section,
    h('h2', { id: 'phone-h' }, 'Phone and notifications'),
    phoneBox(me, draw),
    notifyForm(me));
  draw();
  return section;
}

function phoneStatus(me) {
  if (!me.phone) return h('p', { id: 'phone-status' }, 'No phone yet: add one to get booking messages by SMS.');
  return h('p', { id: 'phone-status' }, h('strong', {}, me.phone), me.phone_verified
    ? ' is verified: SMS can go to it.'
    : ' is not verified yet: we send SMS only to a phone confirmed with a code.');
}

/** The phone, and the two steps that verify one: send a code, type it in. */
function phoneBox(me, redraw) {
  const box = h('div', { id: 'phone-box' });
  const ask = form('phone-form', [
    field('phone-number', 'Phone number, with the country code', {
      name: 'phone', type: 'tel', autocomplete: 'tel', placeholder: '+919812345678', value: me.phone ?? '',
    }),
  ], me.phone_verified ? 'Verify another phone' : 'Send a code by SMS', async (data) => {
    const phone = data.get('phone').trim();
    await api('/v1/me/phone/verify', { method: 'POST', body: { phone } });
    replace(box, phoneStatus(me), confirmForm(me, phone, redraw, () => replace(box, phoneStatus(me), ask)));
    box.querySelector('#phone-code').focus();
  });
  replace(box, phoneStatus(me), ask);
  return box;
}

function confirmForm(me, phone, redraw, back) {
  const f = form('phone-code-form', [
    h('p', { role: 'status', id: 'phone-sent' }, `We sent a 6-digit code to ${phone}. It works for 10 minutes.`),
    field('phone-code', 'Code from the SMS', {
      name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', spellcheck: 'false', autocapitalize: 'off',
    }),
  ], 'Confirm', async (data) => {
    await api('/v1/me/phone/confirm', { method: 'POST', body: { code: data.get('code').trim() } });
    Object.assign(me, await api('/v1/me'));
    profileChanged();
    toast('Phone verified.');
    redraw();
  });
  f.append(' ', h('button', { type: 'button', class: 'link', on: { click: back } }, 'Use another number'));
  return f;
}

/** Email, SMS or both; the SMS choices wait for a verified phone. */
function notifyForm(me) {
  const current = choiceOf(me.preferences?.notify);
  const canSms = Boolean(me.phone && me.phone_verified);
  const said = h('p', { class: 'muted small', id: 'notify-said', role: 'status' });
  const f = form('notify-form', [
    h('fieldset', {},
      h('legend', {}, 'Booking messages'),
      h('p', { class: 'muted small' }, 'Confirmations, cancellations, and a reminder before each show.'),
      CHOICES.map((c) => {
        const needsPhone = c.notify.includes('sms') && !canSms;
        return h('label', { class: 'choice' },
          h('input', { type: 'radio', name: 'notify', value: c.id, id: `notify-${c.id}`, checked: c.id === current, disabled: needsPhone }),
          h('span', {}, c.label, needsPhone ? h('small', { class: 'muted' }, ' (verify a phone first)') : null));
      })),
    said,
  ], 'Save', async (data) => {
    const choice = CHOICES.find((c) => c.id === data.get('notify'));
    if (!choice) throw new Error('Choose how booking messages reach you.');
    Object.assign(me, await api('/v1/me', { method: 'PATCH', body: { preferences: { ...me.preferences, notify: choice.notify } } }));
    profileChanged();
    const text = `Booking messages now go ${CHOICES.find((c) => c.id === choiceOf(me.preferences.notify)).by}.`;
    replace(said, text);
    toast(text);
  });
  return f;
}
