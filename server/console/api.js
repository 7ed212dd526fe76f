// The admin API from the page: the key the operator typed, kept for this tab only
// (sessionStorage; never local storage, an address or a cookie), sent as
// `Authorization: Bearer`. A cross-site page cannot add that header, so no request
// it triggers can act with the key: the actions need no CSRF token.

const KEY = 'pushauth-console-key';

export const session = {
  key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** A refused request: HTTP status and the RFC 9457 problem (or null). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || 'HTTP ' + status);
    this.status = status;
    this.problem = problem;
  }

  get reason() {
    return this.problem && this.problem.reason;
  }
}

/** Called on 401: the key is unknown or was revoked. Set by app.js. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** `method path` on the admin API with an optional JSON body; the parsed answer (null when empty). */
export async function api(method, path, body) {
  const key = session.key();
  if (!key) {
    onUnauthorized('Log in first.');
    throw new ApiError(401, null);
  }
  const headers = { Authorization: 'Bearer ' + key, Accept: 'application/json' };
  const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) onUnauthorized('The server refused the key (' + (error.reason || 'unauthorized') + '). Log in again.');
    throw error;
  }
  return data;
}

/** A query string from the members of `params` that have a value. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/** One line for the operator about a failed request. */
export function describe(error) {
  if (!(error instanceof ApiError)) return 'Request failed: ' + (error && error.message ? error.message : String(error));
  if (error.status === 403 && error.reason === 'insufficient_scope') {
    return 'Refused: this admin key is read-only (403 insufficient_scope). Log in with a full key to change anything.';
  }
  const p = error.problem;
  return 'Refused: HTTP ' + error.status + (p && p.reason ? ' ' + p.reason : '') + (p && p.detail ? ': ' + p.detail : '');
}
