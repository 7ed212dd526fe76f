// The console's shell: log in and out, the navigation, and the pages by address
// (`#/challenges?…`, `#/challenge/<id>`, `#/cardholders`, `#/cardholder/<id>`,
// `#/events`). The address holds filters and ids, never the key.

import { api, describe, session, whenUnauthorized } from './api.js';
import { fill, h, notice } from './dom.js';
import * as challenges from './challenges.js';
import * as cardholders from './cardholders.js';
import * as events from './events.js';

const $ = (id) => document.getElementById(id);

const pages = [
  [/^#\/challenges(?:\?(.*))?$/, (m) => challenges.list(new URLSearchParams(m[1] || '')), 'challenges'],
  [/^#\/challenge\/([0-9A-Za-z-]+)$/, (m) => challenges.evidence(m[1]), 'challenges'],
  [/^#\/cardholders(?:\?(.*))?$/, (m) => cardholders.list(new URLSearchParams(m[1] || '')), 'cardholders'],
  [/^#\/cardholder\/([0-9A-Za-z-]+)$/, (m) => cardholders.detail(m[1]), 'cardholders'],
  [/^#\/events$/, () => events.list(), 'events'],
];

let me = null;
let shown = 0;

function showLogin(message) {
  me = null;
  session.clear();
  $('nav').hidden = true;
  $('logout').hidden = true;
  fill($('who'));
  fill($('main'));
  notice(null);
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-key').value = '';
  $('login-key').focus();
}

function showShell() {
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  const readOnly = me.scope !== 'full';
  fill($('who'), 'Key ', h('strong', {}, me.name), ' ',
    h('span', { class: 'badge ' + (readOnly ? 'read' : 'full') }, readOnly ? 'read-only' : 'full access'));
}

async function render() {
  if (!me) return;
  const hash = location.hash || '#/challenges';
  const page = pages.find(([re]) => re.test(hash));
  const main = $('main');
  const ticket = ++shown;
  notice(null);
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', page !== undefined && a.dataset.section === page[2]);
  }
  if (!page) {
    fill(main, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/challenges' }, 'Challenges')));
    return;
  }
  fill(main, h('p', { class: 'empty' }, 'Loading…'));
  try {
    const content = await page[1](hash.match(page[0]));
    if (ticket === shown) fill(main, content);
  } catch (error) {
    if (ticket !== shown || !me) return;
    fill(main, h('h1', {}, 'Could not load this page'));
    notice(describe(error));
  }
}

async function logIn(key) {
  session.set(key);
  try {
    me = await api('GET', '/v1/admin/me');
  } catch (error) {
    showLogin(error.status === 401 ? 'That key was refused.' : describe(error));
    return;
  }
  showShell();
  if (!location.hash || location.hash === '#') location.hash = '#/challenges';
  else await render();
}

function start() {
  whenUnauthorized((message) => showLogin(message));
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('login-key').value.trim();
    $('login-key').value = '';
    if (key) logIn(key);
  });
  $('logout').addEventListener('click', () => {
    showLogin('Logged out.');
    history.replaceState(null, '', location.pathname);
  });
  window.addEventListener('hashchange', render);
  const key = session.key();
  if (key) logIn(key);
  else showLogin('');
}

start();
