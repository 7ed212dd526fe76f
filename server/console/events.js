// Issuer events (Standard Webhooks) and their deliveries to the issuer's endpoints:
// `GET /v1/admin/events?limit=N` →
// {"items":[{"id","type","created_at","deliveries":[{"endpoint","status","attempts",
// "last_status","last_error","next_attempt_at"}]}]}. A server without issuer events
// answers 404: said so, not an error.

import { ApiError, api, query } from './api.js';
import { h, status, table, text, time } from './dom.js';

const PAGE = 50;

/** `#/events` */
export async function list() {
  let answer;
  try {
    answer = await api('GET', '/v1/admin/events' + query({ limit: PAGE }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return h('div', {}, h('h1', {}, 'Issuer events'),
        h('p', { class: 'empty', id: 'events-unavailable' }, 'Issuer events are not available on this server.'));
    }
    throw error;
  }
  const rows = [];
  for (const event of answer.items || []) {
    const deliveries = event.deliveries && event.deliveries.length ? event.deliveries : [null];
    deliveries.forEach((d, i) => rows.push({ event, d, first: i === 0 }));
  }
  return h('div', {},
    h('h1', {}, 'Issuer events'),
    h('p', { class: 'hint' }, 'The latest ' + PAGE + ' events and their delivery to each endpoint.'),
    table([
      ['Created (UTC)', (r) => (r.first ? time(r.event.created_at) : '')],
      ['Event', (r) => (r.first ? h('span', { class: 'mono' }, r.event.id) : '')],
      ['Type', (r) => (r.first ? r.event.type : '')],
      ['Endpoint', (r) => (r.d ? r.d.endpoint : '—')],
      ['Delivery', (r) => (r.d ? status(r.d.status) : 'no endpoint')],
      ['Attempts', (r) => (r.d ? r.d.attempts : '—')],
      ['Last HTTP status', (r) => (r.d ? text(r.d.last_status) : '—')],
      ['Last error', (r) => (r.d ? text(r.d.last_error) : '—')],
      ['Next attempt', (r) => (r.d && r.d.next_attempt_at ? time(r.d.next_attempt_at) : '—')],
    ], rows, 'No issuer events yet.'));
}
