// Money in the show's currency (minor units -> "₹350.00") and show times: the
// theater's local time when the API gives it (`starts_at_local`), else UTC, labelled.

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

/**
 * When a show starts, as shown: `{ day: "2026-12-03", dayLabel: "Thu 3 Dec",
 * time: "18:30", zone: "UTC" }`. With `starts_at_local` ("...+05:30") the wall
 * time of the theater is shown, labelled with its zone name.
 */
export function when(show) {
  const local = show.starts_at_local;
  if (local) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(local);
    if (m) {
      const day = m[1];
      return {
        day,
        dayLabel: DAY.format(new Date(`${day}T12:00:00Z`)),
        time: m[2],
        zone: show.theater?.time_zone ?? local.slice(19).replace(/^\.\d+/, ''),
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

/** "Thu 3 Dec, 18:30 UTC". */
export function whenText(show) {
  const w = when(show);
  return `${w.dayLabel}, ${w.time} ${w.zone}`;
}

/** The next `n` days as `{ day: "YYYY-MM-DD", label }`, from today (UTC). */
export function nextDays(n) {
  const out = [];
  const now = new Date();
  for (let i = 0; i < n; i++) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + i, 12));
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
