// The app shell: client-side routing over the History API (every deep link is
// served `index.html` by the server), the header's city picker and sign-in link.
// Each page module exports `render(main, params)`, which may return a function
// that stops the page's timers when the user leaves it.

import { h, replace, errorBox } from './dom.js';
import { session, profile, api } from './api.js';
import { city, setCity, navigate } from './nav.js';
import * as home from './pages/home.js';
import * as movie from './pages/movie.js';
import * as show from './pages/show.js';
import * as booking from './pages/booking.js';
import * as account from './pages/account.js';
import * as door from './pages/door.js';
import * as ops from './pages/ops.js';
import * as admin from './pages/admin.js';
import * as security from './pages/security.js';

const ROUTES = [
  [/^\/$/, home.render],
  [/^\/movies\/([^/]+)$/, (m, p) => movie.render(m, p, 'movie')],
  [/^\/events\/([^/]+)$/, (m, p) => movie.render(m, p, 'event')],
  [/^\/shows\/([^/]+)$/, show.render],
  [/^\/bookings\/([^/]+)$/, booking.render],
  [/^\/account$/, account.render],
  [/^\/account\/bookings$/, account.renderBookings],
  [/^\/signin$/, account.renderSignIn],
  [/^\/reset-password$/, security.renderResetPassword],
  [/^\/verify-email$/, security.renderVerifyEmail],
  [/^\/door$/, door.render],
  [/^\/admin$/, admin.render],
  [/^\/ops$/, ops.render],
];

const CITIES = ['Mumbai', 'Delhi', 'Bengaluru', 'Hyderabad', 'Chennai', 'Kolkata', 'Pune', 'Ahmedabad', 'Jaipur', 'Lucknow'];

let stopPage = null;

async function route() {
  if (typeof stopPage === 'function') stopPage();
  stopPage = null;
  const main = document.getElementById('main');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  markNav(path);
  for (const [re, render] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    replace(main, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
    try {
      stopPage = await render(main, m.slice(1).map(decodeURIComponent));
    } catch (e) {
      replace(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), errorBox(e));
    }
    focusHeading(main);
    return;
  }
  document.title = 'Not found — Marquee';
  replace(main, h('h1', { tabindex: '-1' }, 'Page not found'),
    h('p', {}, 'There is nothing here. ', h('a', { href: '/' }, 'See what is showing')));
  focusHeading(main);
}

let firstRender = true;
function focusHeading(main) {
  // After a navigation (not the first load), move focus to the new page's heading
  // so screen readers announce it.
  if (firstRender) { firstRender = false; return; }
  const h1 = main.querySelector('h1');
  if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
  window.scrollTo(0, 0);
}

function markNav(path) {
  for (const a of document.querySelectorAll('header nav a')) {
    const here = a.getAttribute('href') === path;
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function updateAccountLink() {
  const a = document.getElementById('nav-account');
  const me = await profile();
  a.textContent = me ? (me.name?.split(' ')[0] || 'Account') : 'Sign in';
  a.setAttribute('aria-label', me ? `Account of ${me.name}` : 'Sign in');
  document.getElementById('nav-ops').hidden = !['admin', 'operator'].includes(me?.role);
  document.getElementById('nav-admin').hidden = me?.role !== 'admin';
  document.getElementById('nav-door').hidden = !['admin', 'operator', 'staff'].includes(me?.role);
}

function setupCity() {
  const form = document.getElementById('city-form');
  const input = document.getElementById('city-input');
  const list = document.getElementById('city-list');
  replace(list, CITIES.map((c) => h('option', { value: c })));
  input.value = city();
  const choose = () => {
    const c = input.value.trim();
    if (c === city()) return;
    setCity(c);
    if (session.signedIn() && c) {
      profile().then((me) => me && api('/v1/me', { method: 'PATCH', body: { preferences: { ...me.preferences, city: c } } }).catch(() => {}));
    }
    window.dispatchEvent(new CustomEvent('citychange'));
    if (location.pathname === '/') route();
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); choose(); });
  input.addEventListener('change', choose);
}

/** A signed-in user's preferred city becomes the page's city when none was chosen. */
async function adoptPreferredCity() {
  if (city()) return;
  const me = await profile();
  const c = me?.preferences?.city;
  if (c) {
    setCity(c);
    document.getElementById('city-input').value = c;
    if (location.pathname === '/') route();
  }
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = a.getAttribute('href');
  if (!href.startsWith('/') || href.startsWith('//') || href.startsWith('/docs') || href.startsWith('/v1') || a.target) return;
  e.preventDefault();
  navigate(href);
});
window.addEventListener('popstate', route);
window.addEventListener('app:navigate', route);
session.onChange(() => { updateAccountLink(); adoptPreferredCity(); });

// A link may name the city (`/?city=Mumbai`): it becomes the remembered one.
const linkedCity = new URLSearchParams(location.search).get('city');
if (linkedCity) setCity(linkedCity.trim());
setupCity();
updateAccountLink();
adoptPreferredCity();
route();
