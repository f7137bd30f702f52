// Check-in at the door: staff paste or type a ticket code (a hardware scanner types
// it too), or point the device's camera at the QR code where the browser can read
// one (`BarcodeDetector`: Chrome on Android, macOS and ChromeOS, Safari; the button
// is not shown elsewhere), and POST /v1/checkins answers, shown large: CHECKED IN
// with the seats to let in, ALREADY CHECKED IN with when and at which gate, or NOT
// VALID with why. The gate is remembered in this browser.

import { h, replace, errorBox } from '../dom.js';
import { api, profile } from '../api.js';
import { signInForm } from './account.js';

const GATE_KEY = 'marquee.gate';

/** A time of day in the browser's zone, with the day when it is not today. */
function at(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return d.toLocaleString(undefined, sameDay
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
    : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

/** The words of a `ticket_not_valid` reason. */
function reasonText(reason) {
  switch (reason) {
    case 'bad_signature': case 'malformed': case 'unknown_key':
      return 'This code was not issued by us (forged or damaged).';
    case 'booking_cancelled': return 'The booking was cancelled.';
    case 'booking_refunded': return 'The booking was cancelled and refunded.';
    case 'booking_not_found': return 'No such booking.';
    case 'show_mismatch': return 'The ticket does not match its booking.';
    default: return reason ? `Not confirmed (${reason.replaceAll('_', ' ')}).` : 'Not valid.';
  }
}

function verdictBox(kind, title, ...lines) {
  return h('div', { class: `verdict ${kind}`, id: 'verdict-box' }, h('p', { class: 'big' }, title), ...lines);
}

/** Whether this browser reads QR codes from a camera. */
async function canScan() {
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try { return (await window.BarcodeDetector.getSupportedFormats()).includes('qr_code'); } catch { return false; }
}

/**
 * The camera scanner: a live preview that reads a QR code a few times a second and
 * hands its text to `onCode`, pausing two seconds after each read so one ticket held
 * up is checked once. Returns a function that turns the camera off.
 */
async function startScanner(box, onCode) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  const video = h('video', { playsinline: true, muted: true, 'aria-label': 'Camera preview' });
  video.srcObject = stream;
  replace(box, video);
  await video.play();
  const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
  let stopped = false;
  let last = '';
  let pausedUntil = 0;
  const tick = async () => {
    if (stopped) return;
    if (Date.now() >= pausedUntil && video.readyState >= 2) {
      try {
        const [code] = await detector.detect(video);
        if (code?.rawValue && code.rawValue !== last) {
          last = code.rawValue;
          pausedUntil = Date.now() + 2000;
          onCode(code.rawValue);
        }
      } catch { /* a frame that could not be read */ }
    }
    setTimeout(tick, 250);
  };
  tick();
  return () => { stopped = true; stream.getTracks().forEach((t) => t.stop()); replace(box); };
}

export async function render(main) {
  document.title = 'Door check-in — Marquee';
  const me = await profile();
  if (!me || !['admin', 'operator', 'staff'].includes(me.role)) {
    replace(main, h('h1', {}, 'Door check-in'),
      h('p', { class: 'muted' }, me ? 'Your account may not check tickets in: sign in as door staff.' : 'Sign in as door staff to check tickets in.'),
      signInForm(() => render(main)));
    return;
  }
  const verdict = h('div', { id: 'verdict', role: 'status', 'aria-live': 'assertive' });
  const input = h('textarea', { id: 'token', name: 'token', rows: 3, required: true, autocomplete: 'off', spellcheck: 'false' });
  const gate = h('input', { id: 'gate', name: 'gate', maxlength: 64, autocomplete: 'off', value: localStorage.getItem(GATE_KEY) ?? '' });
  const check = async (e) => {
    e?.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    const g = gate.value.trim();
    localStorage.setItem(GATE_KEY, g);
    try {
      const c = await api('/v1/checkins', { method: 'POST', body: { token, gate: g || null } });
      replace(verdict, verdictBox('valid', '✓ CHECKED IN',
        h('p', { class: 'seats' }, `Seats ${c.seats.join(', ')}`),
        h('p', { class: 'mono small' }, `Booking ${c.booking_id} · ${at(c.checked_in_at)}${c.gate ? ` · gate ${c.gate}` : ''}`)));
    } catch (ex) {
      const p = ex.problem ?? {};
      if (ex.code === 'already_checked_in') {
        replace(verdict, verdictBox('invalid', '✕ ALREADY CHECKED IN',
          h('p', { class: 'seats', id: 'first-scan' }, `Already checked in at ${at(p.checked_in_at)}${p.gate ? `, gate ${p.gate}` : ''}.`),
          h('p', { class: 'mono small' }, `Booking ${p.booking_id}`)));
      } else if (ex.code === 'ticket_not_valid') {
        replace(verdict, verdictBox('invalid', '✕ NOT VALID', h('p', { class: 'seats' }, reasonText(p.reason))));
      } else if (ex.status === 403) {
        replace(verdict, verdictBox('invalid', '✕ NOT HERE', h('p', { class: 'seats' }, 'This ticket is for a show of another theater.')));
      } else {
        replace(verdict, errorBox(ex));
      }
    }
    input.select();
  };
  const camera = h('div', { class: 'camera', id: 'camera' });
  let stopCamera = null;
  const cameraButton = h('button', {
    type: 'button', class: 'btn secondary', id: 'camera-scan', hidden: true,
    on: {
      click: async () => {
        if (stopCamera) { stopCamera(); stopCamera = null; cameraButton.textContent = 'Scan with the camera'; return; }
        try {
          stopCamera = await startScanner(camera, (code) => { input.value = code; check(); });
          cameraButton.textContent = 'Stop the camera';
        } catch (ex) {
          replace(camera, errorBox({ message: `The camera could not be used (${ex.message}). Paste or type the code instead.` }));
        }
      },
    },
  }, 'Scan with the camera');
  canScan().then((yes) => { cameraButton.hidden = !yes; });
  replace(main, h('h1', {}, 'Door check-in'),
    h('form', { class: 'door', on: { submit: check } },
      h('label', { for: 'token' }, 'Ticket code (scan or paste)'), input,
      h('label', { for: 'gate' }, 'Gate (optional)'), gate,
      h('button', { class: 'btn primary', type: 'submit', id: 'check-in' }, 'Check in'),
      cameraButton),
    camera,
    verdict);
  input.focus();
  return () => stopCamera?.();
}
