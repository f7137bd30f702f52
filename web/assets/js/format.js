// Money in the show's currency (minor units -> "₹350.00") and show times: the
// theater's local time (`starts_at_local`) labelled with its zone ("IST"), else
// UTC, labelled.

const LOCALE = 'en-IN';
const formatters = new Map();

function moneyFormat(currency) {
  let f = formatters.get(currency);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, { style: 'currency', currency });
    formatters.set(currency, f);
  }
  return f;
}

/** `minor` units of `currency` as the currency writes them. */
export function money(minor, currency) {
  if (minor === null || minor === undefined || !currency) return '—';
  const f = moneyFormat(currency);
  return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
}

/** "₹250.00" or "₹250.00–₹450.00" for a show's price list. */
export function priceRange(prices) {
  if (!prices?.length) return '';
  const amounts = prices.map((p) => p.amount);
  const lo = Math.min(...amounts);
  const hi = Math.max(...amounts);
  const cur = prices[0].currency;
  return lo === hi ? money(lo, cur) : `${money(lo, cur)}–${money(hi, cur)}`;
}

const DAY = new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });
const TIME = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });

const zoneNames = new Map();

/**
 * The short name of an IANA zone at an instant ("IST", "BST"), or the zone's
 * city ("Kolkata") where the browser only knows an offset ("GMT+5:30").
 */
function zoneLabel(zone, at) {
  const key = `${zone} ${at.toISOString().slice(0, 10)}`;
  if (!zoneNames.has(key)) {
    let name = null;
    try {
      name = new Intl.DateTimeFormat('en-IN', { timeZone: zone, timeZoneName: 'short' })
        .formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? null;
    } catch { /* a zone this browser does not know */ }
    if (!name || /^(GMT|UTC)[+-]/.test(name)) name = zone.split('/').pop().replace(/_/g, ' ');
    zoneNames.set(key, name);
  }
  return zoneNames.get(key);
}

/**
 * When a show starts, as shown: `{ day: "2026-12-03", dayLabel: "Thu 3 Dec",
 * time: "00:30", zone: "IST" }`. With `starts_at_local` ("...+05:30") the wall
 * time of the theater is shown, labelled with its zone (`theater.time_zone`, or
 * `time_zone` beside the times), else with the offset.
 */
export function when(show) {
  const local = show.starts_at_local;
  if (local) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(local);
    if (m) {
      const day = m[1];
      const zone = show.theater?.time_zone ?? show.time_zone;
      return {
        day,
        dayLabel: DAY.format(new Date(`${day}T12:00:00Z`)),
        time: m[2],
        zone: zone ? zoneLabel(zone, new Date(show.starts_at ?? local)) : local.slice(19).replace(/^\.\d+/, ''),
        timeZone: zone ?? null,
      };
    }
  }
  const d = new Date(show.starts_at);
  return {
    day: d.toISOString().slice(0, 10),
    dayLabel: DAY.format(d),
    time: TIME.format(d),
    zone: 'UTC',
  };
}

/** "Thu 3 Dec, 00:30 IST" (the theater's clock and zone). */
export function whenText(show) {
  const w = when(show);
  return `${w.dayLabel}, ${w.time} ${w.zone}`;
}

/**
 * The next `n` days as `{ day: "YYYY-MM-DD", label }`, from today on this
 * device's calendar (the API's `date=` is the theater's local day).
 */
export function nextDays(n) {
  const out = [];
  const now = new Date();
  for (let i = 0; i < n; i++) {
    const d = new Date(Date.UTC(now.getFullYear(), now.getMonth(), now.getDate() + i, 12));
    out.push({ day: d.toISOString().slice(0, 10), label: i === 0 ? 'Today' : i === 1 ? 'Tomorrow' : DAY.format(d) });
  }
  return out;
}

/** "7:59" for a number of seconds. */
export function clock(secs) {
  const s = Math.max(0, Math.floor(secs));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const STATUS_WORDS = {
  queued: 'Queued',
  held: 'Seats held',
  payment_pending: 'Payment in progress',
  confirmed: 'Confirmed',
  rejected: 'Not booked',
  expired: 'Hold expired',
  failed: 'Payment failed',
  cancelled: 'Cancelled',
  refunded: 'Refunded',
  released: 'Released',
};

export function statusWord(status) {
  return STATUS_WORDS[status] ?? status;
}

/** "2 h 30 min". */
export function duration(min) {
  if (!min) return '';
  const hrs = Math.floor(min / 60);
  return hrs ? `${hrs} h ${min % 60} min` : `${min} min`;
}

/** Title case of a genre word ("sci-fi" -> "Sci-fi"). */
export function cap(word) {
  return word ? word[0].toUpperCase() + word.slice(1) : '';
}

const OFFSET_PARTS = new Map();

/** How far `zone`'s clock is ahead of UTC at instant `t` (milliseconds). */
function offsetAt(zone, t) {
  let f = OFFSET_PARTS.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    OFFSET_PARTS.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return wall - Math.floor(t / 1000) * 1000;
}

/**
 * The instant (RFC 3339, UTC) at which the clock of `zone` shows `day` ("2026-12-10")
 * `time` ("18:30"): what an admin types is the theater's wall time. The offset is
 * found by asking the browser's zone database twice (it may change on that day).
 */
export function zonedInstant(day, time, zone) {
  const wall = Date.parse(`${day}T${time}:00Z`);
  let t = wall - offsetAt(zone, wall);
  t = wall - offsetAt(zone, t);
  return new Date(t).toISOString().replace(/\.000Z$/, 'Z');
}

/** `day` ("YYYY-MM-DD") plus `n` days. */
export function addDays(day, n) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Today's date on the clock of `zone`. */
export function todayIn(zone) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** "Thu 3 Dec" for a day "YYYY-MM-DD". */
export function dayLabel(day) {
  return DAY.format(new Date(`${day}T12:00:00Z`));
}
