// The ops console in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a real pushauth server. run.sh starts the server and sets:
//   PUSHAUTH_TEST_SERVER, PUSHAUTH_TEST_ADMIN_KEY  the server and its configured key
//   CONSOLE_TEST_BACKEND                           sqlite | postgres (for names only)
//   CONSOLE_TEST_SCREENSHOTS                       where each page's screenshot goes
//   CONSOLE_TEST_DEVICE                            the virtual phone (device.py) command
//   CHROMIUM                                       the browser (default /usr/bin/chromium)
//
// Data is made the way an issuer makes it: the admin API (cardholder, activation code,
// a generic-API challenge whose merchant name is hostile markup) and the mobile SDK
// (the Python bindings enroll a device and approve). Then, in the browser: log in,
// find the challenge by reference, open its evidence, revoke the device, issue an
// activation code (QR code), log in with a read-only key and see an action refused,
// and the issuer events page. No dialog may open and no script may run from data.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const server = process.env.PUSHAUTH_TEST_SERVER;
const adminKey = process.env.PUSHAUTH_TEST_ADMIN_KEY;
const backend = process.env.CONSOLE_TEST_BACKEND || 'sqlite';
const shots = process.env.CONSOLE_TEST_SCREENSHOTS;
const device = JSON.parse(process.env.CONSOLE_TEST_DEVICE || '[]');
assert.ok(server && adminKey && shots && device.length, 'run through tests/console/run.sh');

const HOSTILE = '<img src=x onerror=alert(1)>';
const suffix = randomBytes(4).toString('hex');
const reference = `console-${backend}-${suffix}`;

async function call(method, path, body, key = adminKey) {
  const response = await fetch(server + path, {
    method,
    headers: { Authorization: 'Bearer ' + key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function admin(method, path, body) {
  const r = await call(method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function phone(...args) {
  return execFileSync(device[0], [...device.slice(1), ...args], { encoding: 'utf8' }).trim();
}

const world = {};
const dialogs = [];
const pageErrors = [];
const cspReports = [];
let browser;
let page;
let shot = 0;

async function screenshot(name) {
  shot += 1;
  await page.screenshot({ path: join(shots, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  // The issuer's side: a cardholder with a processor link, an enrolled phone, a
  // challenge approved on it and another one still pending; a read-only key.
  const cardholder = await admin('POST', '/v1/admin/cardholders', { label: 'Console test', external_ref: `cust-${suffix}` });
  await admin('POST', `/v1/admin/cardholders/${cardholder.id}/links`, { provider: 'api', provider_key: `card-${suffix}` });
  const code = await admin('POST', `/v1/admin/cardholders/${cardholder.id}/activation-codes`);
  const phoneDir = mkdtempSync(join(tmpdir(), 'pushauth-console-phone-'));
  world.device = phone('enroll', phoneDir, code.deeplink);
  const created = await admin('POST', '/v1/admin/challenges', {
    cardholder_id: cardholder.id,
    reference,
    amount: { minor: 4990, currency: 'EUR' },
    payee: HOSTILE,
    details: { merchant_country: 'FR' },
    ttl_secs: 300,
  });
  world.challenge = created.challenge.id;
  phone('approve', phoneDir, world.challenge);
  await admin('POST', '/v1/admin/challenges', {
    cardholder_id: cardholder.id, reference: `other-${suffix}`, amount: { minor: 100, currency: 'EUR' }, payee: 'Another Shop',
  });
  world.cardholder = cardholder.id;
  world.readKey = (await admin('POST', '/v1/admin/admin-keys', { name: 'console-viewer', scope: 'read' })).key;

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // root in a container: Chromium's sandbox needs user namespaces it may not have
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
});

test('log in with the admin key', async () => {
  await page.goto(server + '/console');
  await page.locator('#login-key').waitFor();
  await screenshot('login');
  await page.fill('#login-key', 'not-a-key-of-this-server');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error', { hasText: 'That key was refused.' }).waitFor();
  await page.fill('#login-key', adminKey);
  await page.click('#login-form button[type=submit]');
  await page.locator('#who', { hasText: 'full access' }).waitFor();
  await page.locator('#main table').waitFor();
  assert.ok(!page.url().includes(adminKey), page.url());
  const storage = await page.evaluate(() => ({ local: localStorage.length, cookies: document.cookie }));
  assert.deepEqual(storage, { local: 0, cookies: '' });
  await screenshot('challenges');
});

test('find the challenge by its reference', async () => {
  await page.fill('#challenge-filters input[name=reference]', reference);
  await page.click('#challenge-filters button[type=submit]');
  await page.waitForURL(/reference=/);
  const rows = page.locator('#main tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1);
  assert.ok((await rows.first().textContent()).includes(reference));
  // the hostile merchant name is text in the table, not an element
  assert.equal(await rows.first().locator('td').nth(6).textContent(), HOSTILE);
  await screenshot('challenges-by-reference');
});

test('open its evidence', async () => {
  await page.locator('#main tbody tr').first().getByText(reference).click();
  await page.locator('#evidence').waitFor();
  assert.equal(await page.textContent('#payee'), HOSTILE);
  assert.equal(await page.textContent('#shown-summary'), `EUR 49.90 at ${HOSTILE}`);
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'markup from data became an element');
  const text = await page.textContent('#evidence');
  for (const expected of ['pushauth-approval+jwt', 'biometric', 'matches the challenge', world.device,
    'verifies with the device\'s current approval key', 'decision.accepted', 'matches its hash']) {
    assert.ok(text.includes(expected), `evidence lacks ${expected}`);
  }
  // the proof summary, never the proof
  const evidence = await admin('GET', `/v1/admin/challenges/${world.challenge}`);
  const signature = evidence.decision.proof.split('.')[2];
  assert.ok(!text.includes(signature), 'the whole proof is on the page');
  await page.click('#verify-chain');
  await page.locator('#chain-result', { hasText: 'the whole audit chain verifies' }).waitFor();
  await screenshot('evidence');
});

test('revoke the device', async () => {
  await page.locator('#evidence').getByRole('link', { name: world.cardholder }).click();
  const row = page.locator(`tr[data-device="${world.device}"]`);
  await row.waitFor();
  const revoke = row.getByRole('button', { name: 'Revoke' });
  await revoke.click();
  await row.getByRole('button', { name: 'Confirm: revoke' }).click();
  await page.locator('#notice', { hasText: 'Revoke device: done.' }).waitFor();
  await page.locator(`tr[data-device="${world.device}"] .status`, { hasText: 'revoked' }).waitFor();
  const d = await admin('GET', `/v1/admin/devices/${world.device}`);
  assert.equal(d.device.status, 'revoked');
  await screenshot('device-revoked');
});

test('issue an activation code shown as a QR code', async () => {
  await page.getByRole('button', { name: 'New activation code' }).click();
  await page.locator('#activation-qr').waitFor();
  assert.ok(await page.locator('#activation-qr').evaluate((img) => img.complete && img.naturalWidth > 0), 'QR code not drawn');
  assert.match(await page.textContent('#activation-code'), /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
  assert.match(await page.textContent('#activation-link'), /^pushauth:\/\/enroll\?v=1&server=/);
  await screenshot('activation-code');
});

test('a read-only key sees everything and is refused every action', async () => {
  await page.click('#logout');
  await page.locator('#login-key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'log out left the key behind');
  await page.fill('#login-key', world.readKey);
  await page.click('#login-form button[type=submit]');
  await page.locator('#who', { hasText: 'read-only' }).waitFor();
  await page.goto(`${server}/console#/cardholder/${world.cardholder}`);
  await page.getByRole('button', { name: 'Block cardholder' }).click();
  await page.getByRole('button', { name: 'Confirm: block cardholder' }).click();
  await page.locator('#notice', { hasText: 'read-only (403 insufficient_scope)' }).waitFor();
  const c = await admin('GET', `/v1/admin/cardholders/${world.cardholder}`);
  assert.equal(c.cardholder.status, 'active');
  await screenshot('read-only-refused');
});

test('issuer events, or that this server has none', async () => {
  await page.goto(`${server}/console#/events`);
  await page.locator('#main h1', { hasText: 'Issuer events' }).waitFor();
  const api = await call('GET', '/v1/admin/events?limit=50');
  if (api.status === 404) {
    await page.locator('#events-unavailable', { hasText: 'not available on this server' }).waitFor();
  } else {
    assert.equal(api.status, 200);
    await page.locator('#main table, #main .empty').first().waitFor();
  }
  await screenshot('issuer-events');
});

test('no dialog, no script error, no CSP violation', () => {
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(cspReports, []);
});
