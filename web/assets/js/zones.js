// General-admission zones on the seat page: each zone's places left (from the seat
// map's `zones`, re-read with it), a labelled quantity picker and a button that
// books places, with the seats picked on the map too where the layout mixes them.

import { h, toast } from './dom.js';
import { money } from './format.js';

/** Most places and seats in one booking (the API's limit). */
const MAX = 10;

/** What a booking holds, in words: "A1, A2 and 3 places on Standing floor". */
export function heldText(b) {
  const parts = [];
  if (b.seats?.length) parts.push(`Seat${b.seats.length === 1 ? '' : 's'} ${b.seats.join(', ')}`);
  for (const z of b.zones ?? []) parts.push(`${z.quantity} place${z.quantity === 1 ? '' : 's'} in ${z.zone}`);
  return parts.join(' and ');
}

export class Zones {
  /**
   * `map`: the first seat map; `picked()`: the seats picked on the map;
   * `onBook(request)`: starts checkout with `{zone, quantity, seats?}`.
   */
  constructor(map, { currency, onSale, picked, onBook }) {
    this.zones = map.zones ?? [];
    this.mixed = Boolean(map.mixed_booking);
    this.left = new Map();
    this.available = new Map(this.zones.map((z) => [z.id, z.available]));
    this.el = this.zones.length === 0 ? null : h('section', { class: 'zones panel', 'aria-labelledby': 'zones-title' },
      h('h2', { id: 'zones-title' }, 'Standing and open areas'),
      this.mixed ? h('p', { class: 'muted small' }, 'Seats you pick on the map are booked together with the places.') : null,
      this.zones.map((z) => this.zone(z, { currency, onSale, picked, onBook })));
  }

  zone(z, { currency, onSale, picked, onBook }) {
    const qtyId = `zone-qty-${z.id}`;
    const left = h('span', { id: `zone-left-${z.id}` }, leftText(z.available));
    this.left.set(z.id, left);
    const qty = h('select', { id: qtyId }, Array.from({ length: MAX }, (_, i) => h('option', { value: i + 1, selected: i === 1 }, String(i + 1))));
    const book = () => {
      const quantity = Number(qty.value);
      const seats = this.mixed ? picked() : [];
      if (quantity + seats.length > MAX) { toast(`One booking holds up to ${MAX} places and seats.`); return; }
      if (quantity > (this.available.get(z.id) ?? 0)) { toast(`Only ${leftText(this.available.get(z.id) ?? 0)} in ${z.name}.`); return; }
      onBook({ zone: z.id, quantity, seats: seats.length ? seats : undefined });
    };
    return h('div', { class: 'zone', id: `zone-${z.id}` },
      h('h3', {}, z.name),
      h('p', {}, money(z.price, currency), ' a place · ', left, ` of ${z.capacity}`),
      onSale ? h('div', { class: 'best-form' },
        h('label', { for: qtyId }, 'Places'), qty,
        h('button', { class: 'btn secondary', type: 'button', id: `zone-book-${z.id}`, on: { click: book } }, `Book ${z.name}`)) : null);
  }

  /** The places left of a newer map. */
  update(map) {
    for (const z of map.zones ?? []) {
      this.available.set(z.id, z.available);
      const el = this.left.get(z.id);
      if (el) el.textContent = leftText(z.available);
    }
  }
}

function leftText(n) {
  return n === 0 ? 'sold out' : `${n} place${n === 1 ? '' : 's'} left`;
}
