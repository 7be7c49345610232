// The query box: Preview (the dry run: counts in the status region, the
// rows highlighted in the table) and Apply; a refused query shows each
// error's category with the offending word marked at its byte offset.

import { request } from './api.js';
import { $, h, say, showError, clearAlert } from './dom.js';
import { byteLength, byteToIndex, previewText, plural, wordAt } from './text.js';
import * as sites from './sites.js';

let mutate = null;
let dryRun = false;

/** Wires the form; `run` runs a mutation (ttl, then refresh). */
export function init(run) {
  mutate = run;
  const box = $('#query');
  $('#query-form').addEventListener('submit', (e) => {
    e.preventDefault();
    preview();
  });
  $('#apply').addEventListener('click', apply);
  // Enter previews (the safe action); Shift+Enter starts another query.
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('#query-form').requestSubmit();
    }
  });
  box.addEventListener('input', () => sites.setPreview(null));
}

/** Whether the server has a dry run (a dynkeyd without `GET /info` would
 * ignore `?dry_run=1` and apply the query, so Preview is refused there). */
export function setDryRun(on) {
  dryRun = on;
}

async function preview() {
  const text = $('#query').value;
  if (!dryRun) {
    showError({ status: 0, errors: [{ category: 'E_NO_DRY_RUN', message: 'this dynkeyd has no dry run (it does not answer GET /info), so Preview is off; Apply still works' }] });
    return;
  }
  clearAlert();
  try {
    const r = await request('POST', 'control', { text, query: { dry_run: '1' } });
    if (r.dry_run !== true) {
      // Cannot happen with a dynkeyd that has /info; say so if it does.
      await sites.load();
      throw { status: 0, errors: [{ category: 'E_NO_DRY_RUN', message: 'the server applied the query instead of a dry run' }] };
    }
    sites.setPreview(r.rows || [], r.changed, r.ids);
    say(previewText(r.matched, r.changed));
  } catch (e) {
    sites.setPreview(null);
    showQueryError(e, text);
  }
}

async function apply() {
  const text = $('#query').value;
  clearAlert();
  try {
    const r = await mutate((ttl) => request('POST', 'control', { text, query: { ttl } }));
    sites.setPreview(null);
    const op = r.id !== undefined && r.id !== null ? ` (operation ${r.id})` : '';
    say(`Applied: ${plural(r.matched, 'site')} matched, ${r.changed} changed, ${r.rendezvous} rendezvous${op}`);
  } catch (e) {
    showQueryError(e, text);
  }
}

// Errors whose offset points into the query body.
const NOT_IN_BODY = new Set(['E_UNAUTHORIZED', 'E_HOST', 'E_ORIGIN', 'E_BAD_TTL', 'E_NETWORK', 'E_NO_DRY_RUN', 'E_TIMEOUT', 'E_INTERNAL', 'E_RENDEZVOUS']);

function inBody(err, text) {
  return typeof err.offset === 'number' && !NOT_IN_BODY.has(err.category) && err.offset <= byteLength(text);
}

function showQueryError(e, text) {
  showError(e, (err) => (inBody(err, text) ? marked(text, err) : null));
  const first = (e.errors || []).find((err) => inBody(err, text));
  if (first) {
    const [a, b] = wordAt(text, byteToIndex(text, first.offset));
    const box = $('#query');
    box.focus();
    box.setSelectionRange(a, b);
  }
}

/** The line of the body holding the error, its word in a <mark>. */
function marked(text, err) {
  const [a, b] = wordAt(text, byteToIndex(text, err.offset));
  const lineStart = text.lastIndexOf('\n', a - 1) + 1;
  let lineEnd = text.indexOf('\n', b);
  if (lineEnd < 0) lineEnd = text.length;
  const word = text.slice(a, b);
  return h('div', { class: 'marked' },
    h('span', { class: 'where' }, `query ${err.query + 1}, byte ${err.offset}: `),
    h('code', {},
      text.slice(lineStart, a),
      word ? h('mark', {}, word) : h('mark', { class: 'end' }, '(end of query)'),
      text.slice(b, lineEnd)));
}
