// Small DOM helpers: elements are built with `h`, never from HTML strings, so no
// text from the API is ever parsed as markup.

/**
 * Creates an element. `attrs`: `class`, `text`, `style` (an object), `on` (event ->
 * handler), booleans (present when true), anything else as an attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A short message for assistive technology and sighted users alike. */
export function toast(message) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = message;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 5000);
}

/** An error box with the API's words (`detail`) or the exception's message. */
export function errorBox(err, prefix = '') {
  const box = h('div', { class: 'notice error', role: 'alert' }, prefix, err?.detail ?? err?.message ?? String(err));
  // Staff refused for want of a second factor: the way to set it up.
  if (err?.code === 'mfa_enrollment_required') box.append(' ', h('a', { href: '/account', id: 'mfa-setup-link' }, 'Set up two-step sign-in'));
  return box;
}

/** Polls `fn` every `ms` while the page is visible; returns a stop function. */
export function every(ms, fn) {
  let stopped = false;
  let timer;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch { /* the next tick retries */ }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}
