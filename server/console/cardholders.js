// Cardholders: the list, and one cardholder with links and devices (lock, unlock,
// revoke, block, unblock, a new activation code shown as a QR code).

import { api, describe, query } from './api.js';
import {
  actionButton, card, fill, h, kv, link, notice, shortId, status, table, text, time,
} from './dom.js';

const PAGE = 50;

/** `#/cardholders?before=` */
export async function list(p) {
  const answer = await api('GET', '/v1/admin/cardholders' + query({ before: p.get('before'), limit: PAGE }));
  const rows = answer.cardholders;
  const go = h('form', { class: 'filters card', id: 'cardholder-find' },
    h('label', {}, 'Cardholder id', h('input', { name: 'id', size: 38, spellcheck: 'false', required: true })),
    h('button', { type: 'submit' }, 'Open'));
  go.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = String(new FormData(go).get('id') || '').trim();
    if (id) location.hash = '#/cardholder/' + encodeURIComponent(id);
  });
  const open = (c) => '#/cardholder/' + encodeURIComponent(c.id);
  return h('div', {},
    h('h1', {}, 'Cardholders'),
    go,
    table([
      ['Created (UTC)', (c) => time(c.created_at)],
      ['Cardholder', (c) => link(open(c), h('span', { class: 'mono' }, c.id))],
      ['Issuer reference', (c) => text(c.external_ref)],
      ['Label', (c) => text(c.label)],
      ['Status', (c) => status(c.status)],
    ], rows, 'No cardholders yet.'),
    rows.length === PAGE
      ? h('p', { class: 'pager' }, link('#/cardholders' + query({ before: rows[rows.length - 1].created_at }), 'Older cardholders →'))
      : null);
}

function svgDataUrl(svg) {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return 'data:image/svg+xml;base64,' + btoa(binary);
}

function activationCard(issued) {
  return card('New activation code',
    h('div', { class: 'qr', id: 'activation' },
      issued.qr_svg ? h('img', { src: svgDataUrl(issued.qr_svg), alt: 'QR code of the enrollment link', id: 'activation-qr' }) : null,
      kv([
        ['Code', h('strong', { class: 'mono', id: 'activation-code' }, issued.code)],
        ['Expires (UTC)', time(issued.expires_at)],
        ['Enrollment link', h('span', { class: 'mono', id: 'activation-link' }, issued.deeplink)],
      ])),
    h('p', { class: 'hint' }, 'Shown once: the server keeps only a hash. The cardholder scans the QR code with the issuer app, or types the code.'));
}

/** Runs an admin call for a button, reports the outcome, and reloads the page's data. */
function act(label, method, path, reload, body) {
  return async () => {
    try {
      const result = await api(method, path, body);
      notice(label + ': done.', 'ok');
      await reload(result);
    } catch (error) {
      notice(label + ' — ' + describe(error));
    }
  };
}

function deviceActions(d, reload) {
  const path = (what) => '/v1/admin/devices/' + encodeURIComponent(d.id) + '/' + what;
  const buttons = [];
  if (d.status === 'active') buttons.push(actionButton('Lock', act('Lock device', 'POST', path('lock'), reload), { confirm: false }));
  if (d.status === 'locked') buttons.push(actionButton('Unlock', act('Unlock device', 'POST', path('unlock'), reload), { confirm: false }));
  if (d.status !== 'revoked') buttons.push(actionButton('Revoke', act('Revoke device', 'POST', path('revoke'), reload), { danger: true }));
  return h('div', { class: 'actions' }, buttons);
}

/** `#/cardholder/<id>` */
export async function detail(id) {
  const root = h('div', { id: 'cardholder' });
  const base = '/v1/admin/cardholders/' + encodeURIComponent(id);
  let issued = null;
  const load = async () => {
    const answer = await api('GET', base);
    draw(answer);
  };
  const reload = async () => {
    try {
      await load();
    } catch (error) {
      notice(describe(error));
    }
  };
  const draw = ({ cardholder: c, links, devices }) => {
    const actions = h('div', { class: 'actions' },
      c.status === 'active'
        ? actionButton('Block cardholder', act('Block cardholder', 'POST', base + '/block', reload), { danger: true })
        : actionButton('Unblock cardholder', act('Unblock cardholder', 'POST', base + '/unblock', reload)),
      actionButton('New activation code', act('New activation code', 'POST', base + '/activation-codes', async (result) => {
        issued = result;
        await reload();
      }, { qr: 'svg' }), { confirm: false }));
    fill(root,
      h('h1', {}, 'Cardholder ', h('span', { class: 'mono' }, c.id), ' ', status(c.status)),
      actions,
      issued ? activationCard(issued) : null,
      card('Cardholder', kv([
        ['Issuer reference', text(c.external_ref)],
        ['Label', text(c.label)],
        ['Created', time(c.created_at)],
        ['Challenges', link('#/challenges' + query({ cardholder: c.id }), 'this cardholder\'s challenges')],
      ])),
      card('Processor links', table([
        ['Processor', (l) => l.provider],
        ['Processor key', (l) => h('span', { class: 'mono' }, l.provider_key)],
        ['Label', (l) => text(l.label)],
        ['Created', (l) => time(l.created_at)],
      ], links, 'No processor links.')),
      card('Devices', table([
        ['Device', (d) => h('span', { class: 'mono' }, d.id)],
        ['Label', (d) => text(d.label)],
        ['Platform', (d) => d.platform],
        ['Status', (d) => status(d.status)],
        ['Refused proofs', (d) => d.failures],
        ['Enrolled', (d) => time(d.created_at)],
        ['Changed', (d) => time(d.updated_at)],
        ['Approval key', (d) => (d.approval_key ? shortId(d.approval_key.thumbprint) : '—')],
        ['', (d) => deviceActions(d, reload)],
      ], devices, 'No devices enrolled.', (d) => ({ 'data-device': d.id }))));
  };
  await load();
  return root;
}
