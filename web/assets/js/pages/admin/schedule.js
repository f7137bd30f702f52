// Scheduling: a screen's week as a calendar on the theater's clock (each show a
// block from its start to its end), and the form that puts a new show on it: an
// event found by title, a day and a time on the theater's clock, one price per seat
// type of the screen's layout. The API refuses an overlap (the screen's cleaning
// buffer included) with a 409 whose words the page shows as they are.

import { h, replace, errorBox, toast } from '../../dom.js';
import { api, qs } from '../../api.js';
import { addDays, dayLabel, todayIn, zonedInstant, cap } from '../../format.js';

const CURRENCIES = ['INR', 'USD', 'EUR', 'GBP', 'AED', 'SGD'];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
/** Height of one hour on the calendar, in pixels. */
const HOUR_PX = 22;

/** Minutes since midnight of an RFC 3339 time's wall clock ("...T18:30:00+05:30"). */
function minutesOf(local) {
  const m = /T(\d{2}):(\d{2})/.exec(local);
  return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
}

/**
 * The schedule panel. `screens`: `[{ id, name, layout, theater }]` with the theater's
 * `time_zone`; `onScheduled()` after a show was created.
 */
export function scheduler(screens, onScheduled) {
  const box = h('div', { class: 'scheduler' });
  if (screens.length === 0) {
    replace(box, h('p', { class: 'muted' }, 'No screens yet: create one below first.'));
    return box;
  }
  let screen = screens[0];
  let week = todayIn(screen.theater.time_zone);
  const calendar = h('div', { id: 'calendar', class: 'calendar-wrap' });
  const form = h('form', { id: 'show-form', class: 'show-form', novalidate: true });
  const outcome = h('div', { id: 'show-outcome' });
  const weekLabel = h('span', { id: 'week-label', 'aria-live': 'polite' });

  const screenSelect = h('select', {
    id: 'sched-screen',
    on: {
      change: () => {
        screen = screens.find((s) => s.id === screenSelect.value);
        drawForm();
        drawWeek();
      },
    },
  }, screens.map((s) => h('option', { value: s.id }, `${s.theater.name} — ${s.name} (${s.seat_count} seats)`)));
  const move = (days) => { week = addDays(week, days); drawWeek(); };

  async function drawWeek() {
    const zone = screen.theater.time_zone;
    const days = Array.from({ length: 7 }, (_, i) => addDays(week, i));
    weekLabel.textContent = `${dayLabel(days[0])} – ${dayLabel(days[6])} (${zone})`;
    let shows;
    try {
      // A day either side: a show is placed by its day on the theater's clock.
      const page = await api(`/v1/admin/shows${qs({
        screen_id: screen.id,
        from: zonedInstant(addDays(week, -1), '00:00', zone),
        to: zonedInstant(addDays(week, 8), '00:00', zone),
        limit: 100,
      })}`);
      shows = page.items.filter((s) => days.includes(s.starts_at_local.slice(0, 10)));
    } catch (e) { replace(calendar, errorBox(e)); return; }
    const titles = await eventTitles(shows.map((s) => s.event_id));
    replace(calendar, h('div', { class: 'calendar', role: 'group', 'aria-label': `Shows on ${screen.name}, week of ${dayLabel(week)}` },
      h('div', { class: 'cal-hours', 'aria-hidden': 'true' }, Array.from({ length: 24 }, (_, i) => h('span', {}, `${String(i).padStart(2, '0')}:00`))),
      days.map((day) => {
        const todays = shows.filter((s) => s.starts_at_local.slice(0, 10) === day);
        const col = h('ul', { class: 'cal-day', dataset: { day }, 'aria-label': `${dayLabel(day)}: ${todays.length ? `${todays.length} shows` : 'no shows'}` },
          todays.map((s) => {
            const start = minutesOf(s.starts_at_local);
            const sameDay = s.ends_at_local.slice(0, 10) === day;
            const end = sameDay ? minutesOf(s.ends_at_local) : 24 * 60;
            const li = h('li', { class: `cal-show ${s.status}`, dataset: { show: s.id } },
              h('a', { href: `/shows/${s.id}` }, `${s.starts_at_local.slice(11, 16)}–${s.ends_at_local.slice(11, 16)} `, h('strong', {}, titles.get(s.event_id) ?? 'a show')),
              s.status === 'cancelled' ? ' (cancelled)' : null);
            li.style.top = `${(start / 60) * HOUR_PX}px`;
            li.style.height = `${Math.max(HOUR_PX, ((end - start) / 60) * HOUR_PX)}px`;
            return li;
          }));
        col.style.height = `${24 * HOUR_PX}px`;
        // A press on free time puts that day and hour (to the quarter) on the form.
        col.addEventListener('click', (e) => {
          if (e.target !== col) return;
          const mins = Math.floor(((e.offsetY / HOUR_PX) * 60) / 15) * 15;
          form.querySelector('#show-day').value = day;
          form.querySelector('#show-time').value = `${String(Math.floor(mins / 60)).padStart(2, '0')}:${String(mins % 60).padStart(2, '0')}`;
          form.querySelector('#show-event-q').focus();
        });
        return h('div', { class: 'cal-col' }, h('h4', {}, dayLabel(day)), col);
      })));
  }

  function drawForm() {
    const zone = screen.theater.time_zone;
    const types = [...new Set(screen.layout.rows.flatMap((r) => r.seats.map((s) => s.type)))];
    const query = h('input', { id: 'show-event-q', type: 'search', placeholder: 'Find by title', autocomplete: 'off' });
    const pick = h('select', { id: 'show-event', required: true });
    const search = async () => {
      try {
        const page = await api(`/v1/admin/movies${qs({ q: query.value, limit: 50 })}`);
        replace(pick, page.items.length === 0 ? h('option', { value: '' }, 'No title matches')
          : page.items.map((m) => h('option', { value: m.id, dataset: { duration: m.duration_min } }, `${m.title} · ${cap(m.kind)} · ${m.duration_min} min`)));
      } catch (e) { replace(outcome, errorBox(e)); }
    };
    let timer;
    query.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 250); });
    replace(form,
      h('div', { class: 'form-grid' },
        h('div', { class: 'field' }, h('label', { for: 'show-event-q' }, 'Event'), query),
        h('div', { class: 'field' }, h('label', { for: 'show-event' }, 'Matching titles'), pick),
        h('div', { class: 'field' }, h('label', { for: 'show-day' }, 'Day'),
          h('input', { id: 'show-day', type: 'date', required: true, value: addDays(todayIn(zone), 1) })),
        h('div', { class: 'field' }, h('label', { for: 'show-time' }, `Starts at (${zone})`),
          h('input', { id: 'show-time', type: 'time', required: true, value: '18:30', step: 300 })),
        h('div', { class: 'field' }, h('label', { for: 'show-currency' }, 'Currency'),
          h('select', { id: 'show-currency' }, CURRENCIES.map((c) => h('option', { value: c }, c))))),
      h('fieldset', {}, h('legend', {}, 'Repeat (optional)'),
        h('div', { class: 'form-grid' },
          h('div', { class: 'field' }, h('label', { for: 'show-until' }, 'At this time every day until'),
            h('input', { id: 'show-until', type: 'date' })),
          h('div', { class: 'field weekdays', role: 'group', 'aria-label': 'Only on' },
            h('span', { class: 'label' }, 'Only on (none ticked: every day)'),
            h('div', { class: 'selects' }, WEEKDAYS.map((d) => h('label', {}, h('input', { type: 'checkbox', value: d, class: 'weekday' }), ` ${cap(d)}`)))))),
      h('fieldset', {}, h('legend', {}, 'Prices per seat type (in the currency\'s units, e.g. 250.00)'),
        h('div', { class: 'form-grid' }, types.map((t) => h('div', { class: 'field' },
          h('label', { for: `price-${t}` }, cap(t)),
          h('input', { id: `price-${t}`, type: 'number', min: '0.01', step: '0.01', required: true, dataset: { type: t }, inputmode: 'decimal' }))))),
      h('p', {}, h('button', { type: 'submit', class: 'btn primary', id: 'show-save' }, 'Schedule the show')),
      outcome);
    search();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const zone = screen.theater.time_zone;
    const event = form.querySelector('#show-event').value;
    const day = form.querySelector('#show-day').value;
    const time = form.querySelector('#show-time').value;
    const currency = form.querySelector('#show-currency').value;
    const prices = [...form.querySelectorAll('input[data-type]')].map((i) => ({
      seat_type: i.dataset.type,
      amount: Math.round(Number(i.value) * 100),
      currency,
    }));
    const missing = [];
    if (!event) missing.push('an event');
    if (!day || !time) missing.push('a day and a time');
    if (prices.some((p) => !(p.amount > 0))) missing.push('a price for every seat type');
    if (missing.length) { replace(outcome, errorBox({ message: `Give ${missing.join(', ')}.` })); return; }
    const until = form.querySelector('#show-until').value;
    const weekdays = [...form.querySelectorAll('input.weekday:checked')].map((i) => i.value);
    const button = form.querySelector('#show-save');
    button.disabled = true;
    try {
      if (until) {
        // A recurring schedule: all or none, every clash named by the API.
        const res = await api('/v1/admin/shows/recurring', {
          method: 'POST',
          body: { event_id: event, screen_id: screen.id, times: [time], from: day, to: until, weekdays: weekdays.length ? weekdays : undefined, prices },
        });
        replace(outcome, h('p', { class: 'notice ok', role: 'status', id: 'show-created' }, `Scheduled ${res.created} shows at ${time} (${zone}) from ${day} to ${until}, on sale now.`));
        toast(`${res.created} shows scheduled`);
      } else {
        const show = await api('/v1/admin/shows', {
          method: 'POST',
          body: { event_id: event, screen_id: screen.id, starts_at: zonedInstant(day, time, zone), prices },
        });
        replace(outcome, h('p', { class: 'notice ok', role: 'status', id: 'show-created' }, `Scheduled: ${day} at ${time} (${zone}), on sale now. `,
          h('a', { href: `/shows/${show.id}` }, 'Open its seat page')));
        toast('Show scheduled');
      }
      if (day < week || day >= addDays(week, 7)) week = day;
      await drawWeek();
      await onScheduled?.();
    } catch (err) {
      const clashes = err.problem?.overlaps ?? [];
      replace(outcome, errorBox(err, 'Not scheduled: '), clashes.length ? h('ul', { class: 'clashes', id: 'show-clashes' },
        clashes.map((o) => h('li', {}, `${o.starts_at_local.slice(0, 16).replace('T', ' ')} meets ${o.other_show_id ? 'the show' : 'another show of this schedule'} at ${o.other_starts_at_local.slice(0, 16).replace('T', ' ')}`))) : null);
    } finally {
      button.disabled = false;
    }
  });

  replace(box,
    h('div', { class: 'selects cal-nav' },
      h('label', { for: 'sched-screen' }, 'Screen'), screenSelect,
      h('button', { type: 'button', class: 'btn secondary small', id: 'week-prev', on: { click: () => move(-7) } }, '← Week before'),
      weekLabel,
      h('button', { type: 'button', class: 'btn secondary small', id: 'week-next', on: { click: () => move(7) } }, 'Week after →')),
    calendar,
    h('h3', {}, 'New show on this screen'),
    form);
  drawForm();
  drawWeek();
  return box;
}

/** Titles of the events `ids` (one request each, at most once per id). */
const titleCache = new Map();
async function eventTitles(ids) {
  const unknown = [...new Set(ids)].filter((id) => !titleCache.has(id));
  await Promise.all(unknown.map((id) => api(`/v1/admin/movies/${id}`).then((m) => titleCache.set(id, m.title)).catch(() => {})));
  return titleCache;
}
