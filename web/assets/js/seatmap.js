// The seat map, drawn to scale from `GET /v1/shows/{id}/seats`: rows front (screen)
// to back, each seat in the column of its number, an aisle as an empty column after
// the seats the row names in `aisles_after`, missing numbers as gaps.
//
// Every seat is a focusable <button> named "Row F, seat 10, premium, ₹350.00,
// available"; one seat is in the tab order at a time (roving tabindex) and the
// arrow keys move between seats, Home/End to the row's ends. A status is never
// shown by colour alone: held seats are striped, sold ones crossed, blocked ones
// dashed, the buyer's own carry a check mark, and seat types differ in shape.

import { h, replace } from './dom.js';
import { money, cap } from './format.js';

const STATUS_WORD = { available: 'available', held: 'held by someone else', sold: 'sold', blocked: 'not for sale' };

export class SeatMap {
  /**
   * `onToggle(seatId)` is called when the buyer presses an available (or their
   * selected) seat.
   */
  constructor(container, { onToggle }) {
    this.container = container;
    this.onToggle = onToggle;
    this.buttons = new Map();
    this.selected = new Set();
    this.mine = new Set();
    this.focusId = null;
    this.types = [];
  }

  /** Draws the map anew (layout and statuses). */
  draw(map) {
    this.map = map;
    this.currency = map.currency;
    this.types = [...new Set(map.rows.flatMap((r) => r.seats.map((s) => s.type)))];
    const placed = map.rows.map((row) => placeRow(row));
    const columns = Math.max(1, ...placed.map((p) => p.columns));
    this.buttons.clear();
    this.grid = placed.map(({ row, cells }) => cells.map(({ seat, col }) => {
      const b = h('button', {
        type: 'button',
        class: `seat t${this.types.indexOf(seat.type) % 4}`,
        dataset: { seat: seat.id, row: row.row },
        on: { click: () => this.press(seat.id), keydown: (e) => this.key(e, seat.id), focus: () => { this.focusId = seat.id; } },
      }, h('span', { class: 'num', 'aria-hidden': 'true' }, seatNumber(row.row, seat.id)));
      b.style.gridColumn = String(col);
      b._seat = { ...seat, row: row.row, col };
      this.buttons.set(seat.id, b);
      return b;
    }));
    const rows = placed.map(({ row }, i) => {
      const seats = h('div', { class: 'seats' }, this.grid[i]);
      seats.style.gridTemplateColumns = `repeat(${columns}, var(--seat))`;
      return h('div', { class: 'row', role: 'group', 'aria-label': `Row ${row.row}` },
        h('span', { class: 'rowlabel', 'aria-hidden': 'true' }, row.row),
        seats,
        h('span', { class: 'rowlabel', 'aria-hidden': 'true' }, row.row));
    });
    replace(this.container,
      h('div', { class: 'screen-side' }, h('div', { class: 'screen', 'aria-hidden': 'true' }), h('p', {}, 'Screen this way')),
      h('div', { class: 'rows', role: 'group', 'aria-label': `Seat map: ${map.rows.length} rows, the screen in front of row ${map.rows[0]?.row ?? ''}. Use the arrow keys to move between seats.` }, rows));
    this.refresh();
  }

  /** Updates statuses from a newer map of the same layout (no redraw, focus kept). */
  update(map) {
    if (!this.map || map.rows.length !== this.map.rows.length) return this.draw(map);
    this.map = map;
    for (const row of map.rows) {
      for (const seat of row.seats) {
        const b = this.buttons.get(seat.id);
        if (b) b._seat = { ...b._seat, status: seat.status, price: seat.price };
      }
    }
    this.refresh();
  }

  /** The state of one seat as the buyer sees it. */
  state(id) {
    const s = this.buttons.get(id)?._seat;
    if (!s) return null;
    if (this.mine.has(id)) return 'yours';
    if (this.selected.has(id)) return 'selected';
    return s.status;
  }

  seat(id) { return this.buttons.get(id)?._seat; }

  refresh() {
    let focusable = this.buttons.get(this.focusId);
    for (const [id, b] of this.buttons) {
      const s = b._seat;
      const state = this.state(id);
      b.className = `seat t${this.types.indexOf(s.type) % 4} ${state}`;
      const word = state === 'yours' ? 'held for you' : state === 'selected' ? 'selected' : STATUS_WORD[s.status] ?? s.status;
      b.setAttribute('aria-label', `Row ${s.row}, seat ${seatNumber(s.row, id)}, ${s.type}, ${money(s.price, this.currency)}, ${word}`);
      b.setAttribute('aria-pressed', String(state === 'selected' || state === 'yours'));
      const usable = state === 'available' || state === 'selected';
      if (usable) b.removeAttribute('aria-disabled'); else b.setAttribute('aria-disabled', 'true');
      b.tabIndex = -1;
      if (!focusable && usable) focusable = b;
    }
    (focusable ?? this.buttons.values().next().value)?.setAttribute('tabindex', '0');
  }

  press(id) {
    this.focusId = id;
    const state = this.state(id);
    if (state === 'available' || state === 'selected') this.onToggle(id);
  }

  key(e, id) {
    const b = this.buttons.get(id);
    const { col } = b._seat;
    const r = this.grid.findIndex((cells) => cells.includes(b));
    const cells = this.grid[r];
    const i = cells.indexOf(b);
    let next = null;
    switch (e.key) {
      case 'ArrowLeft': next = cells[i - 1]; break;
      case 'ArrowRight': next = cells[i + 1]; break;
      case 'Home': next = cells[0]; break;
      case 'End': next = cells[cells.length - 1]; break;
      case 'ArrowUp': next = nearest(this.grid[r - 1], col); break;
      case 'ArrowDown': next = nearest(this.grid[r + 1], col); break;
      default: return;
    }
    e.preventDefault();
    if (!next) return;
    b.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  /**
   * The legend: one sample per seat type (with its price now: the map's, which
   * carries demand pricing, else the show's base price) and per status.
   */
  legend(prices) {
    const base = (t) => prices?.find((p) => p.seat_type === t);
    const now = (t) => this.map?.rows.flatMap((r) => r.seats).find((s) => s.type === t && s.price != null)?.price;
    const priceOf = (t) => {
      const p = base(t);
      const current = now(t);
      return p && current != null ? { ...p, amount: current } : p;
    };
    const sample = (cls, label) => h('li', {}, h('span', { class: `seat sample ${cls}`, 'aria-hidden': 'true' }, h('span', { class: 'num' }, '')), label);
    return h('div', { class: 'legend' },
      h('h3', { class: 'visually-hidden' }, 'Legend'),
      h('ul', { 'aria-label': 'Seat types and prices' }, this.types.map((t, i) => {
        const p = priceOf(t);
        return sample(`t${i % 4} available`, `${cap(t)} · ${p ? money(p.amount, p.currency) : 'not sold'}`);
      })),
      h('ul', { 'aria-label': 'Seat states' },
        sample('t0 available', 'Available'),
        sample('t0 selected', 'Your pick'),
        sample('t0 held', 'Held'),
        sample('t0 sold', 'Sold'),
        sample('t0 blocked', 'Not for sale')));
  }
}

/** Columns of a row's seats: number + aisles before it (so equal numbers align). */
function placeRow(row) {
  const aisles = [...(row.aisles_after ?? [])].sort((a, b) => a - b);
  let columns = 0;
  const cells = row.seats.map((seat) => {
    const n = Number(seatNumber(row.row, seat.id)) || 1;
    const col = n + aisles.filter((a) => a < n).length;
    columns = Math.max(columns, col);
    return { seat, col };
  });
  return { row, cells, columns };
}

function nearest(cells, col) {
  if (!cells?.length) return null;
  return cells.reduce((best, b) => (Math.abs(b._seat.col - col) < Math.abs(best._seat.col - col) ? b : best));
}

/** "10" of seat "F10" in row "F". */
export function seatNumber(row, id) {
  return id.startsWith(row) ? id.slice(row.length) : id.replace(/^[A-Z]+/, '');
}
