// Pure helpers (no DOM): byte offsets, words of a query, wording of
// results, the Prometheus text format, operations as text. The browser
// tests import this file under node too.

/** Bytes that code point `cp` takes in UTF-8 (a lone surrogate is written
 * as U+FFFD by TextEncoder: 3 bytes). */
function utf8Len(cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

/** The UTF-8 length of `text`. */
export function byteLength(text) {
  let n = 0;
  for (const ch of text) n += utf8Len(ch.codePointAt(0));
  return n;
}

/**
 * The index in the JavaScript string `text` (UTF-16 code units) of the
 * character that starts at UTF-8 byte `offset`, as the server's error
 * offsets count. An offset inside a character gives that character's
 * start; one at or past the end gives `text.length`.
 */
export function byteToIndex(text, offset) {
  let bytes = 0;
  let index = 0;
  for (const ch of text) {
    const n = utf8Len(ch.codePointAt(0));
    if (bytes + n > offset) return index;
    bytes += n;
    index += ch.length;
  }
  return text.length;
}

// The tokenizer's separators (as the query parser has them): ASCII
// whitespace between words, `;` and newline between queries.
const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/**
 * The word of a query body that starts at string index `start`: a quoted
 * word runs to its closing quote (or the end of its query when the quote
 * is missing), any other to the next whitespace or `;`. Returns
 * `[start, end)`; empty at the end of the text.
 */
export function wordAt(text, start) {
  if (start >= text.length) return [text.length, text.length];
  const q = text[start];
  let end = start + 1;
  if (q === '"' || q === "'") {
    while (end < text.length && text[end] !== q && text[end] !== '\n' && text[end] !== ';') end++;
    if (text[end] === q) end++;
  } else {
    while (end < text.length && !SPACE.has(text[end]) && text[end] !== ';') end++;
  }
  return [start, end];
}

/** `N sites match, M would change` with the singular for one. */
export function previewText(matched, changed) {
  const verb = matched === 1 ? 'site matches' : 'sites match';
  return `${matched} ${verb}, ${changed} would change`;
}

/** `n thing` or `n things`. */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Samples of the Prometheus text format: `{name: [{labels, value}]}`.
 * Only what the page reads is needed: plain samples with optional labels
 * (no escaped quotes in our label values), comments skipped.
 */
export function parseMetrics(text) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[2] || '').split(',')) {
      const kv = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"\s*$/.exec(pair);
      if (kv) labels[kv[1]] = kv[2];
    }
    (out[m[1]] ||= []).push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The figures the page shows: commits, rendezvous (all methods), the
 * active method (the one whose `dynkey_rendezvous_method` is 1). */
export function liveFigures(metrics) {
  const sum = (name) => (metrics[name] || []).reduce((s, x) => s + x.value, 0);
  const active = (metrics.dynkey_rendezvous_method || []).find((x) => x.value === 1);
  return {
    commits: sum('dynkey_commits_total'),
    rendezvous: sum('dynkey_rendezvous_total'),
    method: active ? active.labels.method : null,
  };
}

/** A per-second rate between two samples, for display. */
export function rate(before, after, seconds) {
  if (!(seconds > 0) || after < before) return null;
  return (after - before) / seconds;
}

/** The listing's form of a format string: `\n \t \r` and `"` escaped. */
export function escapeFormat(format) {
  return `"${format.replace(/[\n\t\r"]/g, (c) => ({ '\n': '\\n', '\t': '\\t', '\r': '\\r', '"': '\\"' })[c])}"`;
}

/** An operation (one JSON shape for journal, state and audit)
 * in a few words; `siteName(id)` names a site id when the page knows it. */
export function describeOp(op, siteName = () => null) {
  if (!op || typeof op !== 'object') return String(op);
  if (typeof op.query === 'string') return op.query;
  if (op.keys && typeof op.keys === 'object') {
    return Object.entries(op.keys)
      .map(([k, v]) => `key ${k} ${v ? 'on' : 'off'}`)
      .join(', ');
  }
  if (op.call !== undefined) return `call ${op.call} = ${op.target}`;
  if (op.param !== undefined) return `param ${op.param} = ${op.value}`;
  if (op.site !== undefined) {
    const name = siteName(op.site);
    return `site ${name ? `${name} (id ${op.site})` : op.site} ${op.flags}`;
  }
  return JSON.stringify(op);
}

/** "in 9 min" / "in 42 s" / "expired" for an RFC 3339 time. */
export function untilText(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return 'expiring';
  if (s < 120) return `in ${s} s`;
  if (s < 7200) return `in ${Math.round(s / 60)} min`;
  return `in ${Math.round(s / 3600)} h`;
}

/**
 * Which classes of a param are on: bits (`disjoint_bits`, bit i is class
 * i) or levels (`level_num`: level N turns on the first N classes).
 */
export function classesOn(kind, value, count) {
  const v = Number(value);
  const on = [];
  for (let i = 0; i < count; i++) {
    if (kind === 'level_num') on.push(Number.isFinite(v) && i < v);
    else on.push(Number.isFinite(v) && i < 53 && Math.floor(v / 2 ** i) % 2 === 1);
  }
  return on;
}
