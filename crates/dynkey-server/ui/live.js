// Live figures from `GET /metrics`: commits and rendezvous per second and
// the active rendezvous method, sampled every few seconds. A change of the
// commit counter also tells the page that flags changed (another client, an
// expiry) and the listing should be loaded again.

import { request } from './api.js';
import { $ } from './dom.js';
import { liveFigures, parseMetrics, rate } from './text.js';

let last = null;   // {at, commits, rendezvous}

/** Takes one sample, shows the rates; returns the commit counter. */
export async function sample() {
  const text = await request('GET', 'metrics');
  const f = liveFigures(parseMetrics(text));
  const at = performance.now();
  $('#method').textContent = f.method ?? 'unknown';
  const dt = last ? (at - last.at) / 1000 : 0;
  // Samples closer than a second (a refresh right after a tick) would
  // make a single commit look like a burst: keep the older one.
  if (last && dt < 1) return f.commits;
  if (last) {
    show('#commits-rate', rate(last.commits, f.commits, dt));
    show('#rendezvous-rate', rate(last.rendezvous, f.rendezvous, dt));
  }
  last = { at, commits: f.commits, rendezvous: f.rendezvous };
  return f.commits;
}

function show(sel, value) {
  $(sel).textContent = value === null ? '–' : value.toFixed(value >= 10 ? 0 : 1);
}
