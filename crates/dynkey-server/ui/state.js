// The state in force (`GET /state`: layers and local operations, each
// local one with its expiry and a Revoke button), the audit log
// (`GET /audit`, newest first, older pages on demand) and the instance's
// fleet view (`GET /fleet`, shown only when the fleet is on).

import { getOptional, request, seg } from './api.js';
import { $, h, keepFocus, say, showError, time } from './dom.js';
import { describeOp, plural, untilText } from './text.js';
import { siteById, siteName } from './sites.js';

let mutate = null;
let auditShown = 50;
let auditNext = null;

/** `run` runs a mutation (then refresh). */
export function init(run) {
  mutate = run;
  $('#revoke-all').addEventListener('click', revokeAll);
  $('#audit-more').addEventListener('click', olderAudit);
}

const nameOf = (id) => {
  const r = siteById(id);
  return r ? siteName(r) : null;
};

/** Loads state, audit and fleet. A route this dynkeyd lacks hides its
 * section; errors (a 401 among them) are thrown to the caller. */
export async function load() {
  const [st, audit, fleet] = await Promise.all([
    getOptional('state'),
    getOptional('audit', { query: { limit: Math.min(1000, auditShown) } }),
    getOptional('fleet'),
  ]);
  keepFocus(() => {
    renderState(st);
    renderAudit(audit, false);
    renderFleet(fleet);
  });
}

function renderState(st) {
  $('#state-section').hidden = st === null;
  if (st === null) return;
  const local = st.local || [];
  const rows = local.map((o) => h('tr', {},
    h('td', { 'data-label': 'Id' }, String(o.id)),
    h('td', { 'data-label': 'Operation', id: `op-${o.id}` }, h('code', {}, describeOp(o.op, nameOf))),
    h('td', { 'data-label': 'Who' }, `${o.who}${o.from ? ` from ${o.from}` : ''}`),
    h('td', { 'data-label': 'When' }, time(o.at)),
    h('td', { 'data-label': 'Expires' }, o.expires_at
      ? h('span', {}, `${untilText(o.expires_at)} `, time(o.expires_at))
      : h('span', { class: 'muted' }, 'never')),
    h('td', { 'data-label': '' }, o.origin === 'code'
      ? h('span', { class: 'muted' }, 'set in code')
      : h('button', {
        type: 'button',
        id: `revoke-${o.id}`,
        'aria-describedby': `op-${o.id}`,
        onclick: () => revoke(o),
      }, 'Revoke'))));
  $('#local-ops tbody').replaceChildren(...rows);
  $('#local-ops').hidden = rows.length === 0;
  $('#no-local-ops').hidden = rows.length !== 0;
  $('#revoke-all').disabled = !local.some((o) => o.origin !== 'code');
  const layers = [['baseline', st.baseline || []]];
  for (const f of st.fleet || []) layers.push([`fleet ${f.scope} (revision ${f.revision})`, f.ops || []]);
  $('#layers').replaceChildren(...layers.map(([name, ops]) => h('li', {},
    h('strong', {}, name), `: ${ops.length ? '' : 'empty'}`,
    ops.length ? h('ul', {}, ops.map((op) => h('li', {}, h('code', {}, describeOp(op, nameOf))))) : null)));
}

async function revoke(o) {
  try {
    const r = await mutate(() => request('DELETE', `state/ops/${seg(o.id)}`));
    say(`Revoked operation ${o.id} (${describeOp(o.op, nameOf)}): ${r.changed} changed, ${r.rendezvous} rendezvous`);
    $('#revoke-all').focus();
  } catch (e) {
    showError(e);
  }
}

async function revokeAll() {
  try {
    const r = await mutate(() => request('DELETE', 'state/ops'));
    say(`Revoked ${plural(r.revoked, 'operation')}: ${r.changed} changed, ${r.rendezvous} rendezvous`);
  } catch (e) {
    showError(e);
  }
}

function auditRow(e) {
  const ok = e.result === 'ok';
  return h('tr', {},
    h('td', { 'data-label': 'When' }, time(e.at)),
    h('td', { 'data-label': 'Who' }, `${e.who}${e.from ? ` from ${e.from}` : ''}`),
    h('td', { 'data-label': 'Operation' }, h('code', {}, describeOp(e.op, nameOf))),
    h('td', { 'data-label': 'Result', class: ok ? 'ok' : 'failed' }, e.result),
    h('td', { 'data-label': 'Changed', class: 'num' }, String(e.changed)),
    h('td', { 'data-label': 'Rendezvous', class: 'num' }, String(e.rendezvous)));
}

function renderAudit(audit, append) {
  $('#audit-section').hidden = audit === null;
  if (audit === null) return;
  const rows = audit.entries.map(auditRow);
  if (append) $('#audit tbody').append(...rows);
  else $('#audit tbody').replaceChildren(...rows);
  const count = $('#audit tbody').children.length;
  $('#audit').hidden = count === 0;
  $('#no-audit').hidden = count !== 0;
  auditNext = audit.next ?? null;
  $('#audit-more').hidden = auditNext === null;
}

async function olderAudit() {
  try {
    const audit = await request('GET', 'audit', { query: { limit: 50, before: auditNext } });
    auditShown += audit.entries.length;
    renderAudit(audit, true);
  } catch (e) {
    showError(e);
  }
}

function renderFleet(fleet) {
  const on = fleet !== null && fleet.enabled === true;
  $('#fleet-section').hidden = !on;
  $('#nav-fleet').hidden = !on;
  if (!on) return;
  const labels = Object.entries(fleet.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ') || 'none';
  $('#fleet-summary').replaceChildren(
    h('dt', {}, 'Instance'), h('dd', {}, fleet.instance),
    h('dt', {}, 'Connected'), h('dd', { class: fleet.connected ? 'ok' : 'failed' }, fleet.connected ? 'yes' : 'no'),
    h('dt', {}, 'Labels'), h('dd', {}, labels),
    h('dt', {}, 'Drift'), h('dd', {}, fleet.drift ? `${plural(fleet.drift, 'local operation')} on top of the fleet` : 'none'),
  );
  $('#fleet-scopes tbody').replaceChildren(...(fleet.scopes || []).map((s) => h('tr', {},
    h('td', { 'data-label': 'Scope' }, h('code', {}, s.scope)),
    h('td', { 'data-label': 'Revision', class: 'num' }, String(s.revision)),
    h('td', { 'data-label': 'Applied' }, time(s.applied_at)),
    h('td', { 'data-label': 'Error', class: s.error ? 'failed' : 'ok' }, s.error || 'none'))));
}

