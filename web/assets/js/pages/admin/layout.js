// The layout editor: a new screen for a theater, its rows drawn as the buyer will
// see them while the admin edits. A quick start fills every row alike (rows, seats
// per row, aisles, a second seat type for the back rows); each row can then be
// changed on its own (label, seat count, type, aisles), and pressing a seat in the
// preview blocks it (never sold: a broken seat, a wheelchair space) or frees it.
// What is saved is the API's layout (`POST /v1/admin/theaters/{id}/screens`), and
// the API's own checks answer any mistake the form lets through.

import { h, replace, errorBox, toast } from '../../dom.js';
import { api } from '../../api.js';
import { SeatMap } from '../../seatmap.js';

/** Seat types offered in the row editor (any other name may be typed). */
const TYPES = ['regular', 'premium', 'recliner', 'wheelchair'];
const MAX_ROWS = 26;
const MAX_SEATS = 60;

/** The preview: the buyer's seat map, where a press blocks or frees a seat. */
class LayoutPreview extends SeatMap {
  press(id) {
    this.focusId = id;
    this.onToggle(id);
  }
}

/** "3, 11" -> [3, 11]: seat numbers after which an aisle runs. */
function parseAisles(text, seats) {
  return [...new Set(String(text).split(/[\s,]+/).filter(Boolean).map(Number))]
    .filter((n) => Number.isInteger(n) && n >= 1 && n < seats)
    .sort((a, b) => a - b);
}

/** Row labels A, B, ... Z from `first`. */
function labels(first, n) {
  const start = Math.max(0, (first || 'A').toUpperCase().charCodeAt(0) - 65);
  return Array.from({ length: n }, (_, i) => String.fromCharCode(65 + Math.min(25, start + i)));
}

function numberField(id, label, value, min, max) {
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('input', { id, type: 'number', min, max, value, required: true, inputmode: 'numeric' }));
}

function textField(id, label, value, extra = {}) {
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('input', { id, type: 'text', value, ...extra }));
}

/**
 * The "new screen" form for one of `theaters`; `onSaved(screen)` after the API
 * created it.
 */
export function screenEditor(theaters, onSaved) {
  // The rows being edited, front (nearest the screen) to back.
  let rows = [];
  const blocked = new Set();
  const form = h('form', { class: 'layout-editor', id: 'screen-form', novalidate: true });
  const rowsBox = h('div', { class: 'table-wrap' });
  const previewBox = h('div', { class: 'seatmap layout-preview', id: 'layout-preview' });
  const summary = h('p', { id: 'layout-summary', role: 'status', class: 'muted' });
  const outcome = h('div', { id: 'screen-outcome' });
  const preview = new LayoutPreview(previewBox, {
    onToggle: (id) => {
      if (blocked.has(id)) blocked.delete(id); else blocked.add(id);
      draw();
      preview.buttons.get(id)?.focus();
    },
  });

  const val = (id) => form.querySelector(`#${id}`).value;
  const generate = () => {
    const n = Math.min(MAX_ROWS, Math.max(1, Number(val('lay-rows')) || 1));
    const seats = Math.min(MAX_SEATS, Math.max(1, Number(val('lay-seats')) || 1));
    const back = Math.min(n, Math.max(0, Number(val('lay-back')) || 0));
    const aisles = parseAisles(val('lay-aisles'), seats);
    rows = labels(val('lay-first'), n).map((row, i) => ({
      row,
      seats,
      type: i >= n - back ? (val('lay-back-type').trim() || 'premium') : (val('lay-type').trim() || 'regular'),
      aisles,
    }));
    for (const id of [...blocked]) if (!seatExists(id)) blocked.delete(id);
    drawRows();
    draw();
  };
  const seatExists = (id) => rows.some((r) => id.startsWith(r.row) && Number(id.slice(r.row.length)) <= r.seats && /^\d+$/.test(id.slice(r.row.length)));

  /** The API's layout of what is on the form. */
  const layout = () => ({
    rows: rows.map((r) => ({
      row: r.row,
      seats: Array.from({ length: r.seats }, (_, i) => {
        const number = i + 1;
        const seat = { number, type: r.type };
        if (blocked.has(`${r.row}${number}`)) seat.blocked = true;
        return seat;
      }),
      ...(r.aisles.length ? { aisles_after: r.aisles } : {}),
    })),
  });

  const draw = () => {
    const l = layout();
    preview.draw({
      currency: 'INR',
      rows: l.rows.map((r) => ({
        row: r.row,
        aisles_after: r.aisles_after ?? [],
        seats: r.seats.map((s) => ({ id: `${r.row}${s.number}`, type: s.type, status: s.blocked ? 'blocked' : 'available', price: null })),
      })),
    });
    const total = rows.reduce((n, r) => n + r.seats, 0);
    const byType = new Map();
    for (const r of rows) byType.set(r.type, (byType.get(r.type) ?? 0) + r.seats);
    summary.textContent = `${rows.length} rows, ${total} seats (${[...byType].map(([t, n]) => `${n} ${t}`).join(', ')}), ${blocked.size} blocked${blocked.size ? `: ${[...blocked].join(', ')}` : ''}. Press a seat in the preview to block or free it.`;
  };

  const drawRows = () => {
    const cell = (i, key, input) => {
      input.addEventListener('input', () => {
        const r = rows[i];
        if (key === 'row') r.row = input.value.trim().toUpperCase();
        if (key === 'seats') r.seats = Math.min(MAX_SEATS, Math.max(1, Number(input.value) || 1));
        if (key === 'type') r.type = input.value.trim();
        if (key === 'aisles') r.aisles = parseAisles(input.value, r.seats);
        draw();
      });
      return h('td', {}, input);
    };
    replace(rowsBox, h('table', { class: 'grid rows-table' },
      h('caption', {}, 'Rows, from the screen to the back'),
      h('thead', {}, h('tr', {}, ['Row', 'Seats', 'Seat type', 'Aisles after seats'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r, i) => h('tr', { dataset: { row: r.row } },
        cell(i, 'row', h('input', { type: 'text', value: r.row, size: 3, maxlength: 3, 'aria-label': `Row ${i + 1}: label` })),
        cell(i, 'seats', h('input', { type: 'number', min: 1, max: MAX_SEATS, value: r.seats, 'aria-label': `Row ${r.row}: seats` })),
        cell(i, 'type', h('input', { type: 'text', value: r.type, list: 'seat-types', size: 10, 'aria-label': `Row ${r.row}: seat type` })),
        cell(i, 'aisles', h('input', { type: 'text', value: r.aisles.join(', '), size: 8, 'aria-label': `Row ${r.row}: aisles after seats` })))))));
  };

  const submit = async (e) => {
    e.preventDefault();
    const theater = val('screen-theater');
    const name = val('screen-name').trim();
    if (!name) { replace(outcome, errorBox({ message: 'Give the screen a name.' })); return; }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const screen = await api(`/v1/admin/theaters/${theater}/screens`, { method: 'POST', body: { name, layout: layout() } });
      replace(outcome, h('p', { class: 'notice ok', role: 'status' }, `Screen ${screen.name} created with ${screen.seat_count} seats.`));
      toast(`Screen ${screen.name} created`);
      await onSaved?.(screen);
    } catch (err) {
      replace(outcome, errorBox(err, 'The screen was not created: '));
    } finally {
      button.disabled = false;
    }
  };

  replace(form,
    h('datalist', { id: 'seat-types' }, TYPES.map((t) => h('option', { value: t }))),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'screen-theater' }, 'Theater'),
        h('select', { id: 'screen-theater', required: true }, theaters.map((t) => h('option', { value: t.id }, `${t.name}, ${t.city}`)))),
      textField('screen-name', 'Screen name', '', { required: true, maxlength: 100, placeholder: 'Screen 4' })),
    h('fieldset', {}, h('legend', {}, 'Quick start: every row alike'),
      h('div', { class: 'form-grid' },
        numberField('lay-rows', 'Rows', 8, 1, MAX_ROWS),
        textField('lay-first', 'First row (nearest the screen)', 'A', { maxlength: 1, size: 2 }),
        numberField('lay-seats', 'Seats per row', 14, 1, MAX_SEATS),
        textField('lay-aisles', 'Aisles after seats', '3, 11', { placeholder: '3, 11' }),
        textField('lay-type', 'Seat type', 'regular', { list: 'seat-types' }),
        numberField('lay-back', 'Back rows of another type', 2, 0, MAX_ROWS),
        textField('lay-back-type', 'Their seat type', 'premium', { list: 'seat-types' })),
      h('button', { type: 'button', class: 'btn secondary', id: 'layout-generate', on: { click: generate } }, 'Fill the rows')),
    rowsBox,
    h('h4', {}, 'Preview'),
    summary,
    previewBox,
    h('p', {}, h('button', { type: 'submit', class: 'btn primary', id: 'screen-save' }, 'Create the screen')),
    outcome);
  form.addEventListener('submit', submit);
  generate();
  return form;
}
