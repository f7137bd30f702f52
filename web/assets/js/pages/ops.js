// The operator console (roles operator and admin): dead-letter queues with their
// messages and a replay that is previewed first, partitions, reconciliation. Every
// number comes from `/v1/ops/...`; nothing here is cached.
//
// The replay preview is the API's dry run (`POST .../replay {dry_run: true}`): the
// sequencer's own simulation over the shows' current state says, per message, which
// seats it would take or free, or that it was already applied, would be dead-lettered
// again, or is no command (a replay skips it). Nothing moves until the operator
// confirms. A message can also be purged (deleted for good), after a confirmation.

import { h, replace, errorBox, toast } from '../dom.js';
import { api, profile } from '../api.js';
import { signInForm } from './account.js';

/** Messages read from one dead-letter queue at a time (the API allows up to 100). */
const MESSAGES_SHOWN = 50;

export async function render(main) {
  document.title = 'Operations — Marquee';
  const me = await profile();
  if (!me || !['admin', 'operator'].includes(me.role)) {
    replace(main, h('h1', {}, 'Operations'),
      h('p', { class: 'muted' }, me ? 'Your account may not operate the platform: sign in as an operator.' : 'Sign in as an operator to see dead letters, partitions and reconciliation.'),
      signInForm(() => render(main)));
    return;
  }
  const dlq = h('section', { 'aria-labelledby': 'ops-dlq' });
  const messages = h('section', { id: 'dlq-messages', 'aria-labelledby': 'ops-messages', hidden: true });
  const parts = h('section', { 'aria-labelledby': 'ops-partitions' });
  const recon = h('section', { 'aria-labelledby': 'ops-reconcile' });
  // The last replay's result, kept outside the messages (which are redrawn after it).
  const outcome = h('div', { id: 'replay-outcome', role: 'status' });
  const state = { queue: null };
  const reloadQueues = () => drawQueues(dlq, (q) => { state.queue = q; replace(outcome); showMessages(messages, q, outcome, reloadAll); });
  const reloadAll = async () => {
    await reloadQueues();
    if (state.queue) await showMessages(messages, state.queue, outcome, reloadAll);
  };
  replace(main, h('h1', {}, 'Operations'),
    h('p', { class: 'muted' }, 'Dead letters, partitions and the money-versus-seats check. ',
      h('button', { type: 'button', class: 'btn secondary small', id: 'ops-refresh', on: { click: () => { reloadAll(); drawPartitions(parts); drawReconcile(recon); } } }, 'Refresh all')),
    dlq, messages, outcome, parts, recon);
  await Promise.all([reloadQueues(), drawPartitions(parts), drawReconcile(recon)]);
}

/** "3 s", "4 min", "2 h", "5 d". */
export function age(secs) {
  if (secs === null || secs === undefined) return '—';
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h`;
  return `${Math.floor(secs / 86400)} d`;
}

/** A table; header cells named in `numeric` are right-aligned like their numbers. */
function table(caption, head, rows, numeric = []) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: numeric.includes(c) ? 'num' : null }, c)))),
    h('tbody', {}, rows)));
}

async function drawQueues(box, open) {
  let list;
  try { list = (await api('/v1/ops/dlq')).items; } catch (e) {
    replace(box, h('h2', { id: 'ops-dlq' }, 'Dead-letter queues'), errorBox(e));
    return;
  }
  const total = list.reduce((n, q) => n + q.messages, 0);
  replace(box, h('h2', { id: 'ops-dlq' }, 'Dead-letter queues'),
    h('p', { class: total ? 'notice error' : 'notice', id: 'dlq-total', role: 'status' },
      total ? `${total} dead-lettered message${total === 1 ? '' : 's'} waiting.` : 'No dead letters: every queue is empty.'),
    table('Dead-letter queues', ['Queue', 'Messages', 'Oldest', ''], list.map((q) => h('tr', { dataset: { queue: q.queue } },
      h('th', { scope: 'row', class: 'mono' }, q.queue),
      h('td', { class: 'num' }, String(q.messages)),
      h('td', {}, age(q.oldest_age_secs)),
      h('td', {}, h('button', {
        type: 'button', class: 'btn secondary small', disabled: q.messages === 0,
        'aria-label': `Show the messages of ${q.queue}`, on: { click: () => open(q.queue) },
      }, 'Messages')))), ['Messages']));
}

async function showMessages(box, queue, outcome, reload) {
  box.hidden = false;
  let items;
  try { items = (await api(`/v1/ops/dlq/${encodeURIComponent(queue)}/messages?limit=${MESSAGES_SHOWN}`)).items; } catch (e) {
    replace(box, h('h2', { id: 'ops-messages' }, `Messages in ${queue}`), errorBox(e));
    return;
  }
  const preview = h('div', { id: 'replay-preview', 'aria-live': 'polite' });
  const dryRun = async (selected) => {
    replace(preview, h('p', { class: 'muted' }, 'Dry run…'));
    let run;
    try {
      run = await api(`/v1/ops/dlq/${encodeURIComponent(queue)}/replay`, {
        method: 'POST', body: { message_ids: selected.map((m) => m.message_id).filter(Boolean), dry_run: true },
      });
    } catch (e) { replace(preview, errorBox(e, 'The dry run failed; nothing has moved. ')); return; }
    replace(preview, previewOf(queue, items, selected, run, async () => {
      replace(preview);
      await replay(queue, selected, outcome);
      await reload();
    }));
  };
  const purge = (m) => confirmPurge(queue, m, async () => {
    replace(preview);
    await purgeOne(queue, m, outcome);
    await reload();
  });
  replace(box, h('h2', { id: 'ops-messages', tabindex: '-1' }, `Messages in ${queue}`),
    items.length === 0 ? h('p', { class: 'muted' }, 'This queue is empty now.') : [
      h('p', {}, h('button', { type: 'button', class: 'btn secondary', id: 'dry-run-all', on: { click: () => dryRun(items) } },
        `Dry run: replay all ${items.length}`)),
      h('ol', { class: 'dead-letters' }, items.map((m, i) => message(m, i, () => dryRun([m]), () => purge(m)))),
    ],
    preview);
  box.querySelector('h2').focus({ preventScroll: false });
}

function message(m, i, dryRun, purge) {
  const id = m.message_id ?? `(no id, #${i + 1})`;
  return h('li', { class: 'dead-letter', dataset: { id: m.message_id ?? '' } },
    h('h3', { class: 'mono' }, id),
    h('dl', { class: 'facts small' },
      h('dt', {}, 'Reason'), h('dd', { class: 'reason' }, m.reason ?? 'unknown'),
      h('dt', {}, 'Source'), h('dd', { class: 'mono' }, m.source_queue ?? 'unknown'),
      h('dt', {}, 'Age'), h('dd', {}, age(m.age_secs)),
      h('dt', {}, 'Dead-lettered'), h('dd', {}, `${m.death_count} time${m.death_count === 1 ? '' : 's'}`)),
    h('details', {}, h('summary', {}, 'Body'), h('pre', { class: 'body mono' }, JSON.stringify(m.body, null, 2))),
    h('p', { class: 'actions' },
      h('button', { type: 'button', class: 'btn secondary small dry-run', 'aria-label': `Dry run: replay ${id}`, on: { click: dryRun } }, 'Dry run replay'),
      ' ',
      h('button', { type: 'button', class: 'btn secondary small purge', disabled: !m.message_id, 'aria-label': `Purge ${id}`, on: { click: purge } }, 'Purge…')));
}

/** What the sequencer would do with one message, in words. */
function outcomeOf(d) {
  switch (d.outcome.kind) {
    case 'would_apply':
      return d.changes.length ? d.changes.map((c) => c.summary).join('; ') : 'no change (already decided, or it does not apply now)';
    case 'already_applied': return 'already applied: a no-op';
    case 'show_not_loadable': return `would be dead-lettered again: ${d.outcome.detail}`;
    default: return `not a command, a replay skips it (${d.outcome.detail})`;
  }
}

function previewOf(queue, items, selected, run, confirmed) {
  const source = new Map(items.map((m) => [m.message_id, m.source_queue]));
  const routable = run.messages.filter((d) => d.outcome.kind !== 'not_a_command');
  const skipped = run.messages.filter((d) => d.outcome.kind === 'not_a_command');
  const lines = [
    ...routable.map((d) => h('li', { class: 'del' }, `− ${queue}: ${d.message_id}`)),
    ...routable.map((d) => h('li', { class: 'add' }, `+ ${source.get(d.message_id) ?? 'its source queue'}: ${d.message_id} (${d.command.replaceAll('_', ' ')}, show ${d.show_id}) → ${outcomeOf(d)}`)),
    ...skipped.map((d) => h('li', { class: 'same' }, `= ${queue}: ${d.message_id ?? 'a message without id'} stays (not a command, a replay skips it)`)),
    ...run.not_found.map((id) => h('li', { class: 'same' }, `? ${id}: no longer in the queue`)),
  ];
  const dialog = h('dialog', { id: 'replay-confirm', 'aria-labelledby': 'replay-confirm-title' },
    h('h2', { id: 'replay-confirm-title' }, 'Replay for real?'),
    h('p', {}, `${routable.length} message${routable.length === 1 ? '' : 's'} will be published back to ${routable.length === 1 ? 'its source queue' : 'their source queues'}. A message the sequencer already applied is a no-op.`),
    h('form', { method: 'dialog', class: 'dialog-actions' },
      h('button', { class: 'btn secondary', value: 'cancel', autofocus: true }, 'Cancel'),
      h('button', { class: 'btn primary', value: 'replay', id: 'replay-go' }, 'Replay')));
  dialog.addEventListener('close', () => { if (dialog.returnValue === 'replay') confirmed(); dialog.remove(); });
  return h('div', { class: 'preview' },
    h('h3', { id: 'preview-title' }, 'Dry run — nothing has moved yet'),
    h('p', {}, `${queue}: ${items.length} → ${items.length - routable.length} message${items.length - routable.length === 1 ? '' : 's'}`),
    h('ul', { class: 'diff mono', 'aria-labelledby': 'preview-title' }, lines),
    h('button', {
      type: 'button', class: 'btn primary', id: 'replay-open', disabled: routable.length === 0,
      on: { click: () => { document.body.append(dialog); dialog.showModal(); } },
    }, routable.length ? `Replay ${routable.length}…` : 'Nothing to replay'));
}

async function replay(queue, selected, outcome) {
  const ids = selected.map((m) => m.message_id).filter(Boolean);
  try {
    const r = await api(`/v1/ops/dlq/${encodeURIComponent(queue)}/replay`, { method: 'POST', body: { message_ids: ids } });
    const said = [`Replayed ${r.replayed}.`];
    if (r.skipped?.length) said.push(`Skipped ${r.skipped.map((s) => `${s.message_id ?? 'a message'} (${s.reason})`).join(', ')}.`);
    if (r.not_found?.length) said.push(`No longer in the queue: ${r.not_found.join(', ')}.`);
    replace(outcome, h('p', { class: 'notice' }, said.join(' ')));
    toast(said[0]);
  } catch (e) {
    replace(outcome, errorBox(e, 'The replay failed; the messages stay in the queue. '));
  }
}

/** A confirmation dialog before a message is deleted for good. */
function confirmPurge(queue, m, confirmed) {
  const dialog = h('dialog', { id: 'purge-confirm', 'aria-labelledby': 'purge-confirm-title' },
    h('h2', { id: 'purge-confirm-title' }, 'Purge for good?'),
    h('p', {}, `${m.message_id} will be deleted from ${queue}. It cannot be replayed afterwards.`),
    h('form', { method: 'dialog', class: 'dialog-actions' },
      h('button', { class: 'btn secondary', value: 'cancel', autofocus: true }, 'Cancel'),
      h('button', { class: 'btn danger', value: 'purge', id: 'purge-go' }, 'Purge')));
  dialog.addEventListener('close', () => { if (dialog.returnValue === 'purge') confirmed(); dialog.remove(); });
  document.body.append(dialog);
  dialog.showModal();
}

async function purgeOne(queue, m, outcome) {
  try {
    const r = await api(`/v1/ops/dlq/${encodeURIComponent(queue)}/purge`, { method: 'POST', body: { message_ids: [m.message_id] } });
    const said = r.removed ? `Purged ${r.removed}.` : `${m.message_id} was no longer in the queue.`;
    replace(outcome, h('p', { class: 'notice' }, said));
    toast(said);
  } catch (e) {
    replace(outcome, errorBox(e, 'The purge failed; the message stays in the queue. '));
  }
}

async function drawPartitions(box) {
  const title = h('h2', { id: 'ops-partitions' }, 'Partitions');
  let list;
  try { list = (await api('/v1/ops/partitions')).items; } catch (e) { replace(box, title, errorBox(e)); return; }
  const when = (t) => (t ? new Date(t).toLocaleString() : '—');
  replace(box, title, table('Partitions', ['Partition', 'Owner', 'Epoch', 'Depth', 'Consumers', 'Last batch'], list.map((p) => h('tr', {},
    h('th', { scope: 'row' }, String(p.partition)),
    h('td', { class: 'mono' }, p.owner ?? 'none'),
    h('td', { class: 'num' }, p.epoch ?? '—'),
    h('td', { class: 'num' }, String(p.messages)),
    h('td', { class: 'num' }, String(p.consumers)),
    h('td', {}, p.last_batch_at ? `${when(p.last_batch_at)} (${p.last_batch_size ?? '?'} messages)` : '—'))), ['Epoch', 'Depth', 'Consumers']));
}

async function drawReconcile(box) {
  const title = h('h2', { id: 'ops-reconcile' }, 'Reconciliation');
  let r;
  try { r = await api('/v1/ops/reconcile'); } catch (e) { replace(box, title, errorBox(e)); return; }
  replace(box, title,
    h('p', { class: r.ok ? 'notice ok' : 'notice error', id: 'reconcile-verdict' },
      r.ok ? `✓ Money and seats agree over ${r.bookings} bookings.` : `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} over ${r.bookings} bookings.`),
    r.problems.length ? table('Reconciliation problems', ['Kind', 'Booking', 'Detail'], r.problems.map((p) => h('tr', {},
      h('td', {}, p.kind.replaceAll('_', ' ')),
      h('td', { class: 'mono' }, p.booking_id ? h('a', { href: `/bookings/${p.booking_id}` }, p.booking_id) : '—'),
      h('td', {}, p.detail)))) : null);
}
