// The page's entry point: asks `GET /info` what this dynkeyd offers
// (whether it needs a token, dry run, the fleet), asks for the token when
// one is needed, loads every section, and refreshes every few seconds.

import { getOptional, setToken, token } from './api.js';
import { $, onError, say, showError } from './dom.js';
import * as controls from './controls.js';
import * as live from './live.js';
import * as query from './query.js';
import * as sites from './sites.js';
import * as state from './state.js';

const TICK_MS = 3000;

let locked = false;       // a token is needed and none is accepted yet
let commitsSeen = null;   // the commit counter when the listing was loaded
let busy = false;

/** Runs one mutation with the page's TTL (`fn(ttl)` sends it), then
 * loads what it may have changed. Resolves to the reply. */
async function mutate(fn) {
  const ttl = $('#ttl').value || undefined;
  let reply;
  try {
    reply = await fn(ttl);
  } catch (e) {
    // A refused change is audited too: show it (not after a 401, which
    // the state route would answer the same way).
    if (e.status !== 401 && !locked) await state.load().catch(() => {});
    throw e;
  }
  await refresh();
  return reply;
}

/** Loads every section; errors are shown, never thrown. */
async function refresh() {
  busy = true;
  try {
    const results = await Promise.allSettled([
      live.sample().then((c) => { commitsSeen = c; }),
      sites.load(),
      controls.load(),
      locked ? null : state.load(),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) showError(failed.reason);
  } finally {
    busy = false;
  }
}

/** Every few seconds: rates, state and audit; the listing, keys and
 * params only when the commit counter moved. */
async function tick() {
  if (busy || document.hidden) return;
  busy = true;
  try {
    const commits = await live.sample();
    if (commitsSeen !== null && commits !== commitsSeen) {
      busy = false;
      await refresh();
      return;
    }
    if (!locked) await state.load();
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

function askToken() {
  locked = true;
  $('#auth').hidden = false;
  $('#forget-token').hidden = true;
  $('#token').value = '';
  $('#token').focus();
}

async function useToken(e) {
  e.preventDefault();
  const t = $('#token').value.trim();
  if (!t) return;
  setToken(t);
  let checked;
  try {
    // `GET /state` needs the token whenever one is configured: a check
    // that changes nothing. (A dynkeyd without it checks on the first change.)
    checked = (await getOptional('state')) !== null;
  } catch (err) {
    showError(err);
    return;
  }
  locked = false;
  $('#auth').hidden = true;
  $('#forget-token').hidden = false;
  say(checked
    ? 'Token accepted; it is kept in this tab only.'
    : 'Token kept for this tab; dynkeyd checks it on the first change.');
  await refresh();
}

function forgetToken() {
  setToken(null);
  say('Token forgotten.');
  askToken();
}

function showInfo(info) {
  const parts = [];
  if (info) {
    parts.push(`dynkeyd ${info.version}`, `${info.site_kind} sites`, info.durable ? 'durable state' : 'state in memory');
    if (info.fleet) parts.push('fleet on');
    if (info.token_required) parts.push('token required');
  } else {
    parts.push('dynkeyd (an older one: no dry run, state or audit)');
  }
  $('#instance').textContent = parts.join(' · ');
}

async function boot() {
  sites.init(mutate);
  query.init(mutate);
  controls.init(mutate);
  state.init(mutate);
  $('#token-form').addEventListener('submit', useToken);
  $('#forget-token').addEventListener('click', forgetToken);
  onError((err) => {
    if (err.status === 401) {
      setToken(null);
      askToken();
    }
  });
  let info = null;
  try {
    info = await getOptional('info');
  } catch (e) {
    showError(e);
  }
  showInfo(info);
  query.setDryRun(info !== null);
  if (info?.token_required && !token()) askToken();
  else if (token()) $('#forget-token').hidden = false;
  await refresh();
  setInterval(tick, TICK_MS);
}

boot().catch((e) => showError(e));

