// Account: sign in (with the code step of two-step sign-in, and "forgot password"),
// profile (name, preferred city), phone and notifications (pages/phone.js),
// security (pages/security.js), sign out, and my bookings (status, the ticket,
// cancel with the fee shown first).

import { h, replace, errorBox, toast } from '../dom.js';
import { api, qs, session, profile, signIn, register, signOut } from '../api.js';
import { navigate, setCity } from '../nav.js';
import { codeStep, forgotForm, securitySection } from './security.js';
import { phoneSection } from './phone.js';
import { money, statusWord, whenText } from '../format.js';

const PAGE_SIZE = 20;

/** A sign-in form (with a "create account" switch); `done` runs when signed in. */
export function signInForm(done, mode = 'signin') {
  const box = h('div', { class: 'auth-box' });
  const draw = (m) => {
    const err = h('div');
    const field = (name, label, attrs = {}) => h('p', { class: 'field' },
      h('label', { for: `acc-${name}` }, label), h('input', { id: `acc-${name}`, name, required: true, ...attrs }));
    const form = h('form', {
      class: 'auth',
      on: {
        submit: async (e) => {
          e.preventDefault();
          const f = new FormData(form);
          try {
            if (m === 'signin') {
              const challenge = await signIn(f.get('email'), f.get('password'));
              if (challenge) { replace(box, codeStep(challenge, done)); return; }
            } else await register({ name: f.get('name'), email: f.get('email'), password: f.get('password') });
            done();
          } catch (ex) { replace(err, errorBox(ex)); }
        },
      },
    },
    m === 'register' ? field('name', 'Your name', { autocomplete: 'name' }) : null,
    field('email', 'Email', { type: 'email', autocomplete: 'username' }),
    field('password', m === 'register' ? 'Password (8 or more characters)' : 'Password', { type: 'password', minlength: m === 'register' ? 8 : false, autocomplete: m === 'register' ? 'new-password' : 'current-password' }),
    err,
    h('button', { class: 'btn primary', type: 'submit' }, m === 'signin' ? 'Sign in' : 'Create account'));
    replace(box, form,
      m === 'signin' ? providerButtons() : null,
      m === 'signin' ? h('p', {}, h('button', { type: 'button', class: 'link', id: 'forgot', on: { click: () => replace(box, forgotForm(() => draw('signin'))) } }, 'Forgot your password?')) : null,
      h('p', { class: 'muted' }, m === 'signin' ? 'New here? ' : 'Have an account? ',
        h('button', { type: 'button', class: 'link', on: { click: () => draw(m === 'signin' ? 'register' : 'signin') } }, m === 'signin' ? 'Create an account' : 'Sign in')));
  };
  draw(mode);
  return box;
}

/**
 * "Sign in with <provider>" links, one per configured OpenID provider (filled in
 * when the list arrives; none configured: nothing shown).
 */
function providerButtons() {
  const box = h('p', { class: 'providers' });
  api('/v1/auth/oidc').then((list) => {
    for (const p of list.items) {
      box.append(h('a', { class: 'btn secondary wide', href: p.start_url, id: `oidc-${p.name}` }, `Sign in with ${p.display_name}`));
    }
  }).catch(() => {});
  return box;
}

/**
 * The answer of a provider sign-in, which comes back to /account in the URL's
 * fragment (never sent to a server): the token pair, or the code step's challenge.
 * Taken out of the address bar at once.
 */
function providerAnswer() {
  if (!location.hash.includes('access_token=') && !location.hash.includes('mfa_token=')) return null;
  const f = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname + location.search);
  if (f.get('mfa_required') === 'true') return { mfa_required: true, mfa_token: f.get('mfa_token'), expires_in: Number(f.get('expires_in')) };
  session.save({ access_token: f.get('access_token'), refresh_token: f.get('refresh_token'), token_type: 'Bearer', expires_in: Number(f.get('expires_in')) });
  return null;
}

export async function renderSignIn(main) {
  document.title = 'Sign in — Marquee';
  const next = new URLSearchParams(location.search).get('next');
  const safeNext = next && next.startsWith('/') && !next.startsWith('//') ? next : '/account';
  replace(main, h('section', { class: 'narrow' }, h('h1', {}, 'Sign in'), signInForm(() => navigate(safeNext))));
}

export async function render(main) {
  document.title = 'Account — Marquee';
  const challenge = providerAnswer();
  if (challenge) {
    replace(main, h('section', { class: 'narrow' }, h('h1', {}, 'Two-step sign-in'), codeStep(challenge, () => navigate('/account'))));
    return;
  }
  const me = await profile();
  if (!me) return renderSignIn(main);
  const err = h('div');
  const form = h('form', {
    class: 'profile',
    on: {
      submit: async (e) => {
        e.preventDefault();
        const f = new FormData(form);
        const city = f.get('city').trim();
        try {
          Object.assign(me, await api('/v1/me', {
            method: 'PATCH',
            // `me` is current: the phone section updates it as the preference changes.
            body: { name: f.get('name'), preferences: { ...me.preferences, city: city || null } },
          }));
          setCity(city);
          document.getElementById('city-input').value = city;
          session.save(session.tokens());
          toast('Profile saved.');
          replace(err);
        } catch (ex) { replace(err, errorBox(ex)); }
      },
    },
  },
  h('p', { class: 'field' }, h('label', { for: 'p-name' }, 'Name'), h('input', { id: 'p-name', name: 'name', value: me.name, required: true, autocomplete: 'name' })),
  h('p', { class: 'field' }, h('label', { for: 'p-email' }, 'Email'), h('input', { id: 'p-email', value: me.email, readonly: true })),
  h('p', { class: 'field' }, h('label', { for: 'p-city' }, 'Preferred city'), h('input', { id: 'p-city', name: 'city', value: me.preferences?.city ?? '', list: 'city-list' })),
  err,
  h('button', { class: 'btn primary', type: 'submit' }, 'Save'));
  replace(main,
    h('h1', {}, 'Your account'),
    h('div', { class: 'account-grid' },
      h('section', { 'aria-labelledby': 'profile-h' }, h('h2', { id: 'profile-h' }, 'Profile'), form),
      phoneSection(me),
      securitySection(me),
      h('section', { 'aria-labelledby': 'more-h' },
        h('h2', { id: 'more-h' }, 'Bookings and sign-in'),
        h('p', {}, h('a', { class: 'btn secondary', href: '/account/bookings' }, 'My bookings')),
        ['admin', 'operator', 'staff'].includes(me.role) ? h('p', {}, h('a', { href: '/door' }, 'Door check')) : null,
        h('p', {}, h('button', {
          class: 'btn', type: 'button', id: 'sign-out',
          on: { click: async () => { await signOut(); toast('Signed out.'); navigate('/'); } },
        }, 'Sign out')))));
}

export async function renderBookings(main) {
  document.title = 'My bookings — Marquee';
  if (!session.signedIn()) {
    replace(main, h('section', { class: 'narrow' }, h('h1', {}, 'My bookings'), h('p', { class: 'muted' }, 'Sign in to see your bookings.'),
      signInForm(() => renderBookings(main))));
    return;
  }
  const list = h('ul', { class: 'bookings', 'aria-label': 'Bookings, newest first' });
  const more = h('button', { class: 'btn secondary', type: 'button', hidden: true }, 'Older bookings');
  let cursor = null;
  const load = async () => {
    const page = await api(`/v1/me/bookings${qs({ limit: PAGE_SIZE, cursor })}`);
    list.append(...page.items.map(row));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!list.children.length) list.replaceWith(h('p', { class: 'notice' }, 'No bookings yet. ', h('a', { href: '/' }, 'Find a movie')));
  };
  more.addEventListener('click', () => load().catch((e) => more.replaceWith(errorBox(e))));
  replace(main, h('h1', {}, 'My bookings'), list, h('div', { class: 'more' }, more));
  await load();
}

function row(b) {
  const when = b.show?.starts_at ? new Date(b.show.starts_at) : null;
  const actions = h('div', { class: 'actions' },
    h('a', { class: 'btn secondary small', href: `/bookings/${b.booking_id}` }, b.status === 'confirmed' ? 'Ticket' : 'Details'));
  if (b.status === 'confirmed' && when && when > new Date()) actions.append(cancelButton(b));
  return h('li', { class: 'booking-row' },
    h('div', {},
      h('h2', {}, b.show?.movie_title ?? 'Booking'),
      h('p', { class: 'muted' }, [when ? whenText(b.show) : null, `Seats ${b.seats.join(', ')}`, money(b.amount, b.currency)].filter(Boolean).join(' · '))),
    h('p', { class: `status-pill ${b.status}` }, statusWord(b.status)),
    actions);
}

function cancelButton(b) {
  const btn = h('button', { class: 'btn danger small', type: 'button' }, 'Cancel');
  btn.addEventListener('click', async () => {
    const full = await api(`/v1/bookings/${b.booking_id}`).catch(() => null);
    const c = full?.cancellation;
    const terms = c
      ? `Cancelling keeps a fee of ${money(c.fee, c.currency)}; ${money(c.refund, c.currency)} goes back to your card.`
      : 'Cancelling keeps the theater’s cancellation fee; the rest goes back to your card.';
    const dialog = h('div', { class: 'confirm', role: 'alertdialog', 'aria-label': 'Cancel this booking?' },
      h('p', {}, h('strong', {}, 'Cancel this booking? '), terms),
      h('button', {
        class: 'btn danger small', type: 'button',
        on: {
          click: async () => {
            try {
              await api(`/v1/bookings/${b.booking_id}/cancel`, { method: 'POST' });
              dialog.replaceWith(h('p', { class: 'notice', role: 'status' }, 'Cancellation requested. The refund is on its way.'));
            } catch (e) { dialog.replaceWith(errorBox(e)); }
          },
        },
      }, 'Yes, cancel'), ' ',
      h('button', { class: 'btn secondary small', type: 'button', on: { click: () => { dialog.remove(); btn.hidden = false; btn.focus(); } } }, 'Keep it'));
    btn.hidden = true;
    btn.closest('li').append(dialog);
    dialog.querySelector('button').focus();
  });
  return btn;
}
