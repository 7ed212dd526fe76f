// DOM helpers. Every piece of data reaches the page as a text node or an attribute
// value set through the DOM API, never as markup: a merchant called
// `<img src=x onerror=alert(1)>` is shown as those characters.

/** An element: `h('td', {class: 'num'}, 'text', child, …)`; `on: {click: fn}` adds listeners. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === 'class') {
      el.className = value;
    } else if (/^on/i.test(name) || name === 'style' || name === 'srcdoc') {
      throw new Error('attribute not allowed: ' + name);
    } else if ((name === 'href' || name === 'src') && !/^(#|\/(?!\/)|data:image\/svg\+xml;base64,)/.test(String(value))) {
      throw new Error('only local or inline-image addresses');
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** A local link (`#/…`). */
export function link(hash, ...children) {
  return h('a', { href: hash }, ...children);
}

/** Unix milliseconds as `2026-01-31 12:34:56Z` (UTC), or a dash. */
export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Unix seconds (proof claims) as a time. */
export function seconds(s) {
  return s === null || s === undefined ? '—' : time(s * 1000);
}

/** A value, or a dash when there is none. */
export function text(v) {
  if (v === null || v === undefined || v === '') return '—';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** `{minor, currency}` as `EUR 49.90` (the currency's minor digits from the browser's ISO 4217 data). */
export function money(m) {
  if (!m || typeof m.minor !== 'number') return '—';
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency: m.currency }).resolvedOptions().maximumFractionDigits;
  } catch (_) { /* unknown to the browser: two digits */ }
  return m.currency + ' ' + (m.minor / 10 ** digits).toFixed(digits);
}

/** A status word, coloured by its class. */
export function status(word) {
  return h('span', { class: 'status ' + String(word).replace(/[^a-z_]/g, '') }, text(word));
}

/** A shortened id (first 8 characters) with the whole id as its tooltip. */
export function shortId(id) {
  return h('span', { class: 'mono', title: id }, String(id).slice(0, 8) + '…');
}

/** A table: `columns` = [[heading, row => cell], …]; an `empty` line when no rows. */
export function table(columns, rows, empty = 'Nothing to show.', rowAttrs = () => ({})) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([heading]) => h('th', {}, heading)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs(row),
      columns.map(([, cell]) => h('td', {}, cell(row)))))));
}

/** A definition list of `[label, value]` pairs (pairs whose value is undefined are left out). */
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined)
    .map(([label, value]) => [h('dt', {}, label), h('dd', {}, value instanceof Node ? value : text(value))]));
}

/** A titled card. */
export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...children);
}

/** Shows a message above the page (`kind` error or ok); `null` hides it. */
export function notice(message, kind = 'error') {
  const el = document.getElementById('notice');
  if (message === null) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  el.className = 'notice ' + kind;
  el.replaceChildren(document.createTextNode(message));
  el.hidden = false;
}

/**
 * A button for an action that changes something: the first click arms it ("Confirm
 * …"), the second runs `action`; no browser dialog. `done(result)` runs after success.
 */
export function actionButton(label, action, { danger = false, confirm = true } = {}) {
  const button = h('button', { type: 'button', class: danger ? 'danger' : '' }, label);
  let armed = !confirm;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = 'Confirm: ' + label.toLowerCase();
      button.classList.add('confirm');
      return;
    }
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      armed = !confirm;
      button.textContent = label;
      button.classList.remove('confirm');
    }
  });
  return button;
}
