// The door check: staff paste (or scan, where the browser has BarcodeDetector) a
// ticket token; GET /v1/tickets/verify answers, shown large: VALID or NOT VALID.

import { h, replace, errorBox } from '../dom.js';
import { api, profile } from '../api.js';
import { signInForm } from './account.js';

export async function render(main) {
  document.title = 'Door check — Marquee';
  const me = await profile();
  if (!me || !['admin', 'operator', 'staff'].includes(me.role)) {
    replace(main, h('h1', {}, 'Door check'),
      h('p', { class: 'muted' }, me ? 'Your account may not check tickets: sign in as door staff.' : 'Sign in as door staff to check tickets.'),
      signInForm(() => render(main)));
    return;
  }
  const verdict = h('div', { id: 'verdict', role: 'status', 'aria-live': 'assertive' });
  const input = h('textarea', { id: 'token', name: 'token', rows: 3, required: true, autocomplete: 'off', spellcheck: 'false' });
  const check = async (e) => {
    e?.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    try {
      const v = await api(`/v1/tickets/verify?token=${encodeURIComponent(token)}`);
      replace(verdict, h('div', { class: `verdict ${v.valid ? 'valid' : 'invalid'}` },
        h('p', { class: 'big' }, v.valid ? '✓ VALID' : '✕ NOT VALID'),
        v.valid ? h('p', {}, `Seats ${v.seats?.join(', ')}`) : h('p', {}, v.reason ? `Reason: ${v.reason.replaceAll('_', ' ')}` : 'This ticket was not issued by us.'),
        v.booking_id ? h('p', { class: 'mono small' }, `Booking ${v.booking_id}`) : null));
    } catch (ex) {
      replace(verdict, errorBox(ex));
    }
    input.select();
  };
  replace(main, h('h1', {}, 'Door check'),
    h('form', { class: 'door', on: { submit: check } },
      h('label', { for: 'token' }, 'Ticket code (scan or paste)'), input,
      h('button', { class: 'btn primary', type: 'submit' }, 'Check ticket')),
    verdict);
  input.focus();
}
