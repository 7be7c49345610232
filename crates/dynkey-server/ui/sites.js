// The sites table: the listing (`GET /control?format=json`), filtered by
// typing and shown a page at a time, so 8,077 rows cost what 100 cost.
// Each row has a `p` toggle (`POST /sites/{id}`) and, after a preview, the
// flags it would get.

import { request, seg } from './api.js';
import { $, h, keepFocus, say, showError } from './dom.js';
import { escapeFormat, plural } from './text.js';

const rows = [];        // every site, in listing order
let shown = [];         // indexes into `rows` that pass the filter
let page = 0;
let preview = null;     // Map: row key -> new flags, from the last dry run
let mutate = null;      // set by init: runs a mutation and refreshes

let byId = false;       // whether the dry run's rows carry ids

/** The key that matches a row of the listing with a row of a dry run:
 * the id when the dry run gives ids, else what the row says. */
function rowKey(r) {
  return byId
    ? `id:${r.id}`
    : `${r.module}\u0000${r.file}\u0000${r.line}\u0000${r.func}\u0000${r.format}`;
}

/** The name of a site for messages: `file:line func`. */
export function siteName(r) {
  return `${r.file}:${r.line} ${r.func}`;
}

/** `file:line func` of the site with this id, when the page has it. */
export function siteById(id) {
  return rows.find((r) => String(r.id) === String(id)) || null;
}

/** Wires the controls; `run(label, promiseFn)` runs a mutation. */
export function init(run) {
  mutate = run;
  $('#filter').addEventListener('input', () => {
    page = 0;
    applyFilter();
  });
  $('#only-preview').addEventListener('change', () => {
    page = 0;
    applyFilter();
  });
  $('#page-size').addEventListener('change', () => {
    page = 0;
    render();
  });
  $('#prev').addEventListener('click', () => {
    page = Math.max(0, page - 1);
    render();
  });
  $('#next').addEventListener('click', () => {
    page += 1;
    render();
  });
}

/** Loads the listing again (after a change), keeping filter and page. */
export async function load() {
  const table = $('#sites');
  table.setAttribute('aria-busy', 'true');
  try {
    const data = await request('GET', 'control', { query: { format: 'json' } });
    rows.length = 0;
    for (const s of data.sites) {
      s.hay = `${s.file}:${s.line} ${s.module} ${s.func} =${s.flags} ${s.format} ${s.class ?? ''} ${s.kind}`.toLowerCase();
      rows.push(s);
    }
    applyFilter();
    return data;
  } finally {
    table.setAttribute('aria-busy', 'false');
  }
}

/** Marks the rows a dry run would change (null clears); `changed` is
 * how many would change. The dry run gives the new flags of at most 100
 * rows, and the ids of all of them (`ids`): those are marked too, with
 * their new flags unknown (null). */
export function setPreview(previewRows, changed = 0, ids = null) {
  byId = !!previewRows?.length && previewRows.every((r) => r.id !== undefined && r.id !== null);
  preview = previewRows ? new Map(previewRows.map((r) => [rowKey(r), r.new_flags])) : null;
  if (preview && byId && Array.isArray(ids)) {
    for (const id of ids) if (!preview.has(`id:${id}`)) preview.set(`id:${id}`, null);
  }
  $('#preview-note').textContent = preview && preview.size < changed
    ? `The dry run lists the first ${preview.size} of the ${changed} rows that would change.`
    : '';
  $('#only-preview').disabled = !preview;
  if (!preview) $('#only-preview').checked = false;
  applyFilter();
}

function applyFilter() {
  const words = $('#filter').value.toLowerCase().split(/\s+/).filter(Boolean);
  const only = preview && $('#only-preview').checked;
  shown = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (only && !preview.has(rowKey(r))) continue;
    if (words.every((w) => r.hay.includes(w))) shown.push(i);
  }
  render();
}

function pageSize() {
  return Number($('#page-size').value) || 100;
}

function render() {
  const size = pageSize();
  const pages = Math.max(1, Math.ceil(shown.length / size));
  page = Math.min(page, pages - 1);
  const from = page * size;
  const to = Math.min(shown.length, from + size);
  const body = document.createDocumentFragment();
  for (let i = from; i < to; i++) body.append(renderRow(rows[shown[i]], shown[i], i));
  keepFocus(() => $('#sites tbody').replaceChildren(body));
  $('#sites').setAttribute('aria-rowcount', String(shown.length + 1));
  const num = (n) => n.toLocaleString('en-US');
  const filtered = shown.length === rows.length ? '' : ` (filtered from ${num(rows.length)})`;
  $('#count').textContent = shown.length
    ? `Rows ${num(from + 1)}–${num(to)} of ${num(shown.length)} ${shown.length === 1 ? 'site' : 'sites'}${filtered}`
    : `No sites${filtered}`;
  $('#page-info').textContent = `Page ${page + 1} of ${pages}`;
  $('#prev').disabled = page === 0;
  $('#next').disabled = page >= pages - 1;
}

// `index`: the row in the listing (stable ids); `position`: in the
// filtered rows (what aria-rowindex counts, after the header row).
function renderRow(r, index, position) {
  const change = preview?.get(rowKey(r));
  const on = r.flags.includes('p');
  const name = siteName(r);
  const toggle = h('input', {
    type: 'checkbox',
    class: 'row-p',
    id: `p-${index}`,
    checked: on,
    disabled: r.id === undefined || r.id === null,
    'aria-label': `p for ${name}`,
    title: r.id === undefined || r.id === null ? 'this dynkeyd lists no site ids' : `turn p ${on ? 'off' : 'on'}`,
    onchange: (e) => toggleP(r, e.target),
  });
  return h('tr', { class: change !== undefined ? 'would-change' : null, 'aria-rowindex': position + 2 },
    h('td', { 'data-label': 'p' }, toggle),
    h('td', { 'data-label': 'Site', class: 'file' }, `${r.file}:${r.line}`),
    h('td', { 'data-label': 'Module' }, r.module),
    h('td', { 'data-label': 'Function', class: 'func' }, r.func),
    h('td', { 'data-label': 'Flags', class: 'flags' },
      h('code', {}, `=${r.flags}`),
      change ? h('span', { class: 'new-flags' }, ' → ', h('code', {}, `=${change}`))
        : change === null ? h('span', { class: 'new-flags' }, ' → changes') : null),
    h('td', { 'data-label': 'Format', class: 'format' }, h('code', {}, escapeFormat(r.format))),
    h('td', { 'data-label': 'Class' }, r.class ?? ''),
    h('td', { 'data-label': 'Kind' }, r.kind),
  );
}

async function toggleP(r, input) {
  const want = input.checked;
  input.disabled = true;
  try {
    const reply = await mutate(
      (ttl) => request('POST', `sites/${seg(r.id)}`, { text: want ? '+p' : '-p', query: { ttl } }),
    );
    say(`${want ? 'Turned on' : 'Turned off'} p for ${siteName(r)}: ${plural(reply.changed, 'site')} changed, ${reply.rendezvous} rendezvous`);
  } catch (e) {
    input.checked = !want;
    showError(e);
  } finally {
    input.disabled = false;
  }
}
