// Navigation and the remembered city, shared by the shell and the pages (kept apart
// from app.js so that pages do not import the shell).

const CITY_KEY = 'marquee.city';

/** The chosen city, remembered in this browser ('' when none). */
export function city() {
  return localStorage.getItem(CITY_KEY) ?? '';
}

export function setCity(c) {
  if (c) localStorage.setItem(CITY_KEY, c); else localStorage.removeItem(CITY_KEY);
}

/** Goes to `path` inside the app (the shell listens for `app:navigate`). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  window.dispatchEvent(new Event('app:navigate'));
}
