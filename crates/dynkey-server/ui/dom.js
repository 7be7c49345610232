// Building elements (text always through textContent: format strings and
// names come from the service and are never parsed as markup) and the two
// message regions: one `status` for results, one `alert` for errors.

/** `h('td', {class: 'x'}, 'text', child)`: an element. Props: `class`,
 * `text`, `on<event>` listeners, DOM properties (`checked`, `value`,
 * `disabled`, `hidden`, `selected`), else attributes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'checked' || k === 'value' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel) => document.querySelector(sel);

const REASON = {
  0: 'No answer',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  421: 'Misdirected Request',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const listeners = [];

/** Calls `f(error)` for every error shown (the page asks for a token
 * again on a 401). */
export function onError(f) {
  listeners.push(f);
}

/** A result, in the status region; clears any error. */
export function say(text) {
  $('#alert').replaceChildren();
  $('#alert').hidden = true;
  $('#status').textContent = text;
}

/** An error reply in the alert region: status, then each error's
 * category and message; `detail(error)` may add nodes per error (the
 * query with the offending word marked). */
export function showError(err, detail = () => null) {
  const status = err.status ?? 0;
  const items = (err.errors || [{ category: 'E_PAGE', message: String(err.message || err) }]).map((e) =>
    h('li', {},
      h('strong', { class: 'category', text: e.category }),
      ` ${e.message}`,
      detail(e)),
  );
  const what = err.method ? ` (${err.method} /${err.path})` : '';
  $('#status').textContent = '';
  $('#alert').hidden = false;
  const parts = [
    h('p', { class: 'alert-title' }, `${status || ''} ${REASON[status] || ''}`.trim() + what),
    h('ul', {}, items),
  ];
  if (status === 401) parts.push(h('p', {}, 'dynkeyd refused the request: it needs a valid token. Enter it in the Token field.'));
  parts.push(h('button', { type: 'button', class: 'dismiss', onclick: dismiss }, 'Dismiss'));
  $('#alert').replaceChildren(...parts);
  for (const f of listeners) f(err);
}

function dismiss() {
  $('#alert').replaceChildren();
  $('#alert').hidden = true;
  $('#query').focus();
}

/** Clears the alert region (a new attempt is under way). */
export function clearAlert() {
  $('#alert').replaceChildren();
  $('#alert').hidden = true;
}

/** Formats an RFC 3339 time as local date and time, keeping the exact
 * value in a `<time>` element. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted', text: 'never' });
  const d = new Date(iso);
  const text = Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  return h('time', { datetime: iso, title: iso, text });
}

/** Runs `render` (which replaces elements) and puts the focus back on the
 * element with the same id, so a keyboard user keeps their place when a
 * list is drawn again. */
export function keepFocus(render) {
  const active = document.activeElement;
  const id = active && active !== document.body ? active.id : '';
  render();
  if (id && !active.isConnected) document.getElementById(id)?.focus();
}
