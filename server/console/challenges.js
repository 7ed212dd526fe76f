// Challenges: the filtered list, and one challenge's evidence.

import { api, describe, query } from './api.js';
import {
  actionButton, card, h, kv, link, money, notice, seconds, shortId, status, table, text, time,
} from './dom.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled'];
const PROCESSORS = ['enfuce', 'adyen', 'paysafe', 'treezor', 'api'];
const PAGE = 50;

/** A `datetime-local` value, read as UTC, in Unix milliseconds. */
function utcMillis(value) {
  if (!value) return undefined;
  const t = Date.parse(value + 'Z');
  return Number.isNaN(t) ? undefined : t;
}

function field(label, control) {
  return h('label', {}, label, control);
}

function select(name, values, current) {
  return h('select', { name },
    h('option', { value: '' }, 'any'),
    values.map((v) => h('option', { value: v, selected: v === current }, v)));
}

function filterForm(p) {
  const input = (name, attrs = {}) => h('input', { name, value: p.get(name) || '', ...attrs });
  const form = h('form', { class: 'filters card', id: 'challenge-filters' },
    field('Status', select('status', STATUSES, p.get('status'))),
    field('Processor', select('provider', PROCESSORS, p.get('provider'))),
    field('Reference', input('reference', { size: 28, spellcheck: 'false', placeholder: 'processor reference' })),
    field('Cardholder id', input('cardholder', { size: 38, spellcheck: 'false' })),
    field('Created from (UTC)', input('since', { type: 'datetime-local', step: 1 })),
    field('Created before (UTC)', input('until', { type: 'datetime-local', step: 1 })),
    h('button', { type: 'submit' }, 'Search'),
    h('button', { type: 'button', on: { click: () => { location.hash = '#/challenges'; } } }, 'Clear'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = {};
    for (const [k, v] of new FormData(form)) params[k] = String(v).trim();
    location.hash = '#/challenges' + query(params);
  });
  return form;
}

/** `#/challenges?status=&provider=&reference=&cardholder=&since=&until=&before=` */
export async function list(p) {
  const until = utcMillis(p.get('until'));
  const before = p.get('before') ? Number(p.get('before')) : undefined;
  const bounds = [until, before].filter((v) => v !== undefined && !Number.isNaN(v));
  const answer = await api('GET', '/v1/admin/challenges' + query({
    status: p.get('status'),
    provider: p.get('provider'),
    reference: p.get('reference'),
    cardholder: p.get('cardholder'),
    since: utcMillis(p.get('since')),
    before: bounds.length ? Math.min(...bounds) : undefined,
    limit: PAGE,
  }));
  const rows = answer.challenges;
  const open = (c) => '#/challenge/' + encodeURIComponent(c.id);
  const older = () => {
    const next = new URLSearchParams(p);
    next.set('before', String(rows[rows.length - 1].created_at));
    return '#/challenges?' + next.toString();
  };
  return h('div', {},
    h('h1', {}, 'Challenges'),
    filterForm(p),
    table([
      ['Created (UTC)', (c) => time(c.created_at)],
      ['Challenge', (c) => link(open(c), shortId(c.id))],
      ['Processor', (c) => c.provider],
      ['Reference', (c) => link(open(c), h('span', { class: 'mono' }, c.provider_ref))],
      ['Cardholder', (c) => link('#/cardholder/' + encodeURIComponent(c.cardholder), shortId(c.cardholder))],
      ['Amount', (c) => money(c.amount)],
      ['Payee', (c) => text(c.payee)],
      ['Status', (c) => status(c.status)],
      ['Upstream', (c) => status(c.upstream)],
    ], rows, 'No challenge matches.'),
    rows.length === PAGE ? h('p', { class: 'pager' }, link(older(), 'Older challenges →')) : null);
}

function proofSummary(s) {
  if (!s) return null;
  return kv([
    ['Type (typ)', h('span', { class: 'mono' }, s.typ)],
    ['Key id (kid)', h('span', { class: 'mono' }, text(s.kid))],
    ['Signed decision', text(s.decision) + (s.reason ? ' (' + s.reason + ')' : '')],
    ['User verification (uv)', text(s.uv)],
    ['Signed at (iat)', seconds(s.iat)],
    ['Expires (exp)', seconds(s.exp)],
    ['Transaction digest (txn)', h('span', {},
      h('span', { class: 'mono' }, text(s.txn)), ' ',
      status(s.txn_matches ? 'intact' : 'broken'), s.txn_matches ? ' matches the challenge' : ' does not match the challenge')],
    ['Processor output digest', s.pout ? 'signed (pout)' : 'none'],
    ['Signature', s.verified_with
      ? h('span', {}, 'verifies with the device\'s current ' + s.verified_with.use + ' key ',
        h('span', { class: 'mono' }, s.verified_with.thumbprint))
      : 'does not verify with the device\'s current keys (rotated since, or the device is gone); it was verified when received'],
    ['Proof SHA-256', h('span', { class: 'mono' }, s.sha256)],
  ]);
}

function decisionCard(ev) {
  const d = ev.decision;
  if (!d) return card('Decision', h('p', { class: 'empty' }, 'No decision recorded (status ' + ev.challenge.status + ').'));
  return card('Decision',
    kv([
      ['Decision', status(d.decision === 'approve' ? 'approved' : 'denied')],
      ['Reason', text(d.reason)],
      ['Device', h('span', { class: 'mono' }, d.device)],
      ['User verification', text(d.user_verification)],
      ['Received', time(d.at)],
      ['Processor output', d.processor_output ? 'forwarded' : 'none'],
    ]),
    h('h2', {}, 'Proof summary'),
    proofSummary(ev.proof_summary),
    h('p', { class: 'hint' }, 'The whole proof is kept as evidence and is in the admin API\'s answer; it is not shown here.'));
}

function deliveries(ev) {
  const kindOf = new Map(ev.outbox.map((o) => [o.id, o.kind]));
  return card('Pushes and upstream deliveries',
    table([
      ['Row', (o) => o.id],
      ['Kind', (o) => o.kind],
      ['Device', (o) => (o.device ? shortId(o.device) : '—')],
      ['Status', (o) => status(o.status)],
      ['Attempts', (o) => o.attempts],
      ['Next attempt', (o) => (o.status === 'pending' ? time(o.next_attempt_at) : '—')],
      ['Deadline', (o) => time(o.deadline)],
      ['Last error', (o) => text(o.last_error)],
    ], ev.outbox, 'Nothing was queued for this challenge.'),
    h('h2', {}, 'Every attempt'),
    h('div', { id: 'attempts' }, table([
      ['At', (a) => time(a.at)],
      ['Row', (a) => a.outbox],
      ['Kind', (a) => a.kind || kindOf.get(a.outbox)],
      ['#', (a) => a.attempt_no],
      ['Device', (a) => (a.device ? shortId(a.device) : '—')],
      ['Outcome', (a) => status(a.outcome === 'ok' ? 'done' : a.outcome === 'fatal' ? 'failed' : 'pending')],
      ['HTTP', (a) => text(a.http_status)],
      ['Latency', (a) => a.latency_ms + ' ms'],
      ['Error', (a) => text(a.error)],
    ], ev.attempts, 'No delivery attempted yet.')));
}

function auditCard(ev) {
  const check = ev.audit_check || {};
  const chain = h('span', { id: 'chain-result' });
  const verify = h('button', { type: 'button', id: 'verify-chain' }, 'Verify the whole chain');
  verify.addEventListener('click', async () => {
    verify.disabled = true;
    chain.replaceChildren(document.createTextNode(' checking…'));
    try {
      const r = await api('GET', '/v1/admin/audit/verify');
      chain.replaceChildren(' ', status(r.result), r.result === 'intact'
        ? ' the whole audit chain verifies (' + r.entries + ' entries)'
        : ' the chain is broken at entry ' + r.seq);
    } catch (error) {
      chain.replaceChildren(document.createTextNode(' ' + describe(error)));
    } finally {
      verify.disabled = false;
    }
  });
  return card('Audit trail',
    h('p', {}, status(check.result || 'unknown'), check.result === 'intact'
      ? ' each of these ' + check.entries + ' entries matches its hash'
      : ' entry ' + check.seq + ' does not match its hash'),
    table([
      ['Seq', (e) => e.seq],
      ['At', (e) => time(e.at)],
      ['Actor', (e) => e.actor],
      ['Action', (e) => e.action],
      ['Device', (e) => (e.device ? shortId(e.device) : '—')],
      ['Details', (e) => h('span', { class: 'mono' }, text(e.details))],
      ['Hash', (e) => h('span', { class: 'mono', title: e.hash }, e.hash.slice(0, 12) + '…')],
    ], ev.audit, 'No audit entries.'),
    h('p', {}, verify, chain));
}

/** `#/challenge/<id>`: what was shown, the decision and its proof, deliveries, audit. */
export async function evidence(id) {
  const ev = await api('GET', '/v1/admin/challenges/' + encodeURIComponent(id));
  const c = ev.challenge;
  const actions = h('div', { class: 'actions' });
  if (c.status === 'pending') {
    actions.append(actionButton('Cancel challenge', async () => {
      try {
        await api('POST', '/v1/admin/challenges/' + encodeURIComponent(c.id) + '/cancel');
        notice('Challenge cancelled.', 'ok');
      } catch (error) {
        notice(describe(error));
      }
    }, { danger: true }));
  }
  const shown = ev.shown || { summary: '', display_fields: [] };
  return h('div', { id: 'evidence' },
    h('h1', {}, 'Challenge ', h('span', { class: 'mono' }, c.id), ' ', status(c.status)),
    actions,
    card('Challenge', kv([
      ['Processor', c.provider],
      ['Reference', h('span', { class: 'mono' }, c.provider_ref)],
      ['Cardholder', link('#/cardholder/' + encodeURIComponent(c.cardholder), h('span', { class: 'mono' }, c.cardholder))],
      ['Kind', c.kind],
      ['Amount', text(ev.display_amount)],
      ['Payee', h('span', { id: 'payee' }, text(c.payee))],
      ['Created', time(c.created_at)],
      ['Decision deadline', time(c.deadline)],
      ['Closed', time(c.closed_at)],
      ['Upstream', status(c.upstream)],
      ['Upstream deadline', time(c.upstream_deadline)],
      ['Processor final status', c.final_status ? h('span', { class: 'mono' }, text(c.final_status)) : '—'],
    ])),
    card('What the phone showed',
      h('p', { class: 'shown' }, h('strong', { id: 'shown-summary' }, shown.summary)),
      table([
        ['Line', (f) => f.key + (f.known ? '' : ' (unknown to this server)')],
        ['Shown', (f) => f.value],
      ], shown.display_fields, 'No display lines.'),
      h('p', { class: 'hint' }, 'Signed transaction digest ', h('span', { class: 'mono' }, c.txn_digest))),
    decisionCard(ev),
    deliveries(ev),
    auditCard(ev));
}
