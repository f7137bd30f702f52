// The small creation forms of the admin page: a theater (its city and the IANA time
// zone of its clock) and an event of any kind (a movie, a concert, a match, ...).
// Each posts to the API and shows the API's own words when it refuses.

import { h, replace, errorBox, toast } from '../../dom.js';
import { api } from '../../api.js';
import { cap } from '../../format.js';

const KINDS = ['movie', 'concert', 'sports', 'play', 'comedy', 'other'];

function field(id, label, input) {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

/** A comma-separated list as the API's array ("a, b" -> ["a", "b"]). */
function list(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Wires `form` to post `body()` to `path`; `done(answer)` on success. */
function posting(form, path, body, outcome, done) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const answer = await api(path(), { method: 'POST', body: body() });
      await done(answer);
    } catch (err) {
      replace(outcome, errorBox(err, 'Not created: '));
    } finally {
      button.disabled = false;
    }
  });
}

/** The time zones this browser knows, the theater's usual one first. */
function zones() {
  let all = [];
  try { all = Intl.supportedValuesOf('timeZone'); } catch { /* an older browser */ }
  return ['Asia/Kolkata', ...all.filter((z) => z !== 'Asia/Kolkata')];
}

/** New theater; `onSaved(theater)` after the API created it. */
export function theaterForm(onSaved) {
  const outcome = h('div', { id: 'theater-outcome' });
  const form = h('form', { id: 'theater-form', novalidate: true },
    h('div', { class: 'form-grid' },
      field('theater-name', 'Name', h('input', { type: 'text', required: true, maxlength: 200, placeholder: 'Galaxy Pune' })),
      field('theater-city', 'City', h('input', { type: 'text', required: true, maxlength: 100 })),
      field('theater-address', 'Address', h('input', { type: 'text', maxlength: 300 })),
      field('theater-zone', 'Time zone of its clock', h('select', {}, zones().map((z) => h('option', { value: z }, z))))),
    h('p', {}, h('button', { type: 'submit', class: 'btn primary' }, 'Create the theater')),
    outcome);
  const val = (id) => form.querySelector(`#${id}`).value.trim();
  posting(form, () => '/v1/admin/theaters', () => ({
    name: val('theater-name'), city: val('theater-city'), address: val('theater-address') || undefined, time_zone: val('theater-zone'),
  }), outcome, async (t) => {
    replace(outcome, h('p', { class: 'notice ok', role: 'status' }, `Theater ${t.name} created in ${t.city}.`));
    toast(`Theater ${t.name} created`);
    await onSaved?.(t);
  });
  return form;
}

/** New event of any kind; `onSaved(event)` after the API created it. */
export function eventForm(onSaved) {
  const outcome = h('div', { id: 'event-outcome' });
  const form = h('form', { id: 'event-form', novalidate: true },
    h('div', { class: 'form-grid' },
      field('event-kind', 'Kind', h('select', {}, KINDS.map((k) => h('option', { value: k }, cap(k))))),
      field('event-title', 'Title', h('input', { type: 'text', required: true, maxlength: 200 })),
      field('event-duration', 'Length in minutes (empty: the kind\'s usual)', h('input', { type: 'number', min: 1, max: 600, inputmode: 'numeric' })),
      field('event-language', 'Language', h('input', { type: 'text', maxlength: 50 })),
      field('event-genres', 'Genres (comma-separated)', h('input', { type: 'text' })),
      field('event-performers', 'Cast, artists or teams (comma-separated)', h('input', { type: 'text' })),
      field('event-rating', 'Rating', h('input', { type: 'text', maxlength: 10, placeholder: 'UA' }))),
    field('event-synopsis', 'Synopsis', h('textarea', { rows: 3, maxlength: 2000 })),
    h('p', {}, h('button', { type: 'submit', class: 'btn primary' }, 'Create the event')),
    outcome);
  const val = (id) => form.querySelector(`#${id}`).value.trim();
  posting(form, () => '/v1/admin/events', () => ({
    kind: val('event-kind'),
    title: val('event-title'),
    duration_min: val('event-duration') ? Number(val('event-duration')) : undefined,
    language: val('event-language') || undefined,
    genres: list(val('event-genres')),
    performers: list(val('event-performers')),
    rating: val('event-rating') || undefined,
    synopsis: val('event-synopsis') || undefined,
  }), outcome, async (ev) => {
    replace(outcome, h('p', { class: 'notice ok', role: 'status' }, `${cap(ev.kind)} “${ev.title}” created: schedule its shows above.`));
    toast(`${ev.title} created`);
    await onSaved?.(ev);
  });
  return form;
}
