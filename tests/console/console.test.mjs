// The ops console in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a real pushauth server. run.sh starts the server and sets:
//   PUSHAUTH_TEST_SERVER, PUSHAUTH_TEST_ADMIN_KEY  the server and its configured key
//   CONSOLE_TEST_BACKEND                           sqlite | postgres (for names only)
//   CONSOLE_TEST_SCREENSHOTS                       where each page's screenshot goes
//   CONSOLE_TEST_DEVICE                            the virtual phone (device.py) command
//   CONSOLE_TEST_CALLBACK_SECRET                   the server's [api] callback_secret
//   CHROMIUM                                       the browser (default /usr/bin/chromium)
//
// Data is made the way an issuer makes it: the admin API (cardholder, activation code,
// a generic-API challenge whose merchant name is hostile markup) and the mobile SDK
// (the Python bindings enroll a device and approve); the result goes to a callback
// receiver here that checks its signature as an issuer's would. Then, in the browser:
// log in, find the challenge by reference, open its evidence, revoke the device,
// issue an activation code whose QR code (decoded with zbarimg) enrolls a new phone,
// log in with a read-only key and see an action refused, and the issuer events page.
// No dialog may open and no script may run from data.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const server = process.env.PUSHAUTH_TEST_SERVER;
const adminKey = process.env.PUSHAUTH_TEST_ADMIN_KEY;
const backend = process.env.CONSOLE_TEST_BACKEND || 'sqlite';
const shots = process.env.CONSOLE_TEST_SCREENSHOTS;
const device = JSON.parse(process.env.CONSOLE_TEST_DEVICE || '[]');
const callbackSecret = process.env.CONSOLE_TEST_CALLBACK_SECRET;
assert.ok(server && adminKey && shots && device.length && callbackSecret, 'run through tests/console/run.sh');

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

/** The issuer's callback endpoint: checks `PushAuth-Signature` (HMAC-SHA256 of `t.body`). */
const callbacks = [];
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers['pushauth-signature'] || '');
    const ok = m !== null && createHmac('sha256', callbackSecret).update(`${m[1]}.${body}`).digest('hex') === m[2];
    callbacks.push({ ok, body });
    res.writeHead(ok ? 204 : 401).end();
  });
});

/** Re-reads the API until `done(answer)`: the outbox works in the background. */
async function until(path, done) {
  for (let i = 0; i < 400; i += 1) {
    const answer = await admin('GET', path);
    if (done(answer)) return answer;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path}: condition never met`);
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
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const callbackUrl = `http://127.0.0.1:${receiver.address().port}/pushauth/result`;
  // The issuer's side: a cardholder with a processor link, an enrolled phone, a
  // challenge approved on it and another one still pending; a read-only key.
  const cardholder = await admin('POST', '/v1/admin/cardholders', { label: 'Console test', external_ref: `cust-${suffix}` });
  await admin('POST', `/v1/admin/cardholders/${cardholder.id}/links`, { provider: 'api', provider_key: `card-${suffix}` });
  const code = await admin('POST', `/v1/admin/cardholders/${cardholder.id}/activation-codes`);
  const phoneDir = mkdtempSync(join(tmpdir(), 'pushauth-console-phone-'));
  world.tmp = phoneDir;
  world.device = phone('enroll', join(phoneDir, 'first'), code.deeplink);
  const created = await admin('POST', '/v1/admin/challenges', {
    cardholder_id: cardholder.id,
    reference,
    amount: { minor: 4990, currency: 'EUR' },
    payee: HOSTILE,
    details: { merchant_country: 'FR' },
    ttl_secs: 300,
    callback_url: callbackUrl,
  });
  world.challenge = created.challenge.id;
  phone('approve', join(phoneDir, 'first'), world.challenge);
  // the result reached the issuer's endpoint (recorded as an upstream attempt)
  await until(`/v1/admin/challenges/${world.challenge}`, (ev) => ev.attempts.some((a) => a.kind === 'upstream' && a.outcome === 'ok'));
  assert.ok(callbacks.length > 0 && callbacks.every((c) => c.ok), JSON.stringify(callbacks));
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
  receiver.close();
  if (world.tmp) rmSync(world.tmp, { recursive: true, force: true });
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

/** Polls `check` every 50 ms for up to 5 s; fails with `what` when it never holds. */
async function eventually(check, what) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`never: ${what}`);
}

test('find the challenge by its reference', async () => {
  await page.fill('#challenge-filters input[name=reference]', reference);
  await page.click('#challenge-filters button[type=submit]');
  await page.waitForURL(/reference=/);
  const rows = page.locator('#main tbody tr');
  // The filtered table replaces the full one: wait for it, not for the old rows.
  await page.locator('#main tbody tr', { hasText: reference }).first().waitFor();
  await eventually(async () => (await rows.count()) === 1, 'exactly the one challenge listed');
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
  // the result's delivery to the issuer, attempt by attempt
  const attempt = page.locator('#attempts tbody tr', { hasText: 'upstream' });
  assert.equal(await attempt.count(), 1);
  assert.equal(await attempt.locator('td').nth(6).textContent(), '204');
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
  const link = await page.textContent('#activation-link');
  assert.match(link, /^pushauth:\/\/enroll\?v=1&server=/);
  await screenshot('activation-code');
  // what a phone scans: the QR code as drawn on the page holds the link, and enrolls
  const qr = join(world.tmp, 'qr.png');
  await page.locator('#activation-qr').screenshot({ path: qr });
  const scanned = execFileSync('zbarimg', ['--raw', '-q', qr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  assert.equal(scanned, link);
  const second = phone('enroll', join(world.tmp, 'second'), scanned);
  const c = await admin('GET', `/v1/admin/cardholders/${world.cardholder}`);
  assert.deepEqual(c.devices.map((d) => [d.id, d.status]).sort(),
    [[world.device, 'revoked'], [second, 'active']].sort());
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

test('issuer events and their failing deliveries', async () => {
  // The device revoked above is an event; its delivery to the configured endpoint
  // (nobody listening) fails and is retried, with the error shown.
  let revoked;
  for (let i = 0; i < 100 && !revoked; i++) {
    const api = await admin('GET', '/v1/admin/events?limit=50');
    revoked = api.items.find((e) => e.type === 'device.revoked' && e.deliveries.length > 0
      && e.deliveries[0].attempts > 0);
    if (!revoked) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(revoked, 'a device.revoked event with an attempted delivery');
  assert.equal(revoked.deliveries[0].endpoint, 'issuer-siem');
  assert.equal(revoked.deliveries[0].status, 'pending');
  await page.goto(`${server}/console#/events`);
  await page.locator('#main h1', { hasText: 'Issuer events' }).waitFor();
  const row = page.locator('#main tr', { hasText: revoked.id });
  await row.waitFor();
  assert.match(await row.innerText(), /device\.revoked[\s\S]*issuer-siem[\s\S]*connection failed/);
  await screenshot('issuer-events');
});

test('no dialog, no script error, no CSP violation', () => {
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(cspReports, []);
});
