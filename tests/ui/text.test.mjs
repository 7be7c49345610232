// The page's pure helpers (crates/dynkey-server/ui/text.js) under node:
// byte offsets against TextEncoder on random text, words of a query, the
// wording of a preview, the Prometheus text the page reads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  byteLength, byteToIndex, classesOn, describeOp, escapeFormat, liveFigures, parseMetrics, previewText, rate, wordAt,
} from '../../crates/dynkey-server/ui/text.js';

// A small seeded generator, so a failure can be replayed.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['a', 'Z', ' ', '\t', '\n', ';', '"', "'", '#', 'é', 'ß', '€', '中', '😀', '\u00a0', '\ud800', '\udfff', '+p'];

function randomText(next, max = 24) {
  let s = '';
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

test('byteToIndex maps every UTF-8 offset the server counts to the string index (random text)', () => {
  const enc = new TextEncoder();
  for (let seed = 1; seed <= 2000; seed++) {
    const next = rng(seed);
    const s = randomText(next);
    assert.equal(byteLength(s), enc.encode(s).length, `seed ${seed}`);
    // At each code point boundary i, the byte offset of s[..i] maps back to i.
    let i = 0;
    for (const ch of s) {
      const offset = enc.encode(s.slice(0, i)).length;
      assert.equal(byteToIndex(s, offset), i, `seed ${seed}: ${JSON.stringify(s)} offset ${offset}`);
      // An offset inside the character gives the character's start.
      const width = enc.encode(ch).length;
      for (let k = 1; k < width; k++) assert.equal(byteToIndex(s, offset + k), i);
      i += ch.length;
    }
    assert.equal(byteToIndex(s, enc.encode(s).length), s.length);
    assert.equal(byteToIndex(s, enc.encode(s).length + 5), s.length);
  }
});

test('wordAt finds the word the server pointed at', () => {
  const q = 'module "a b" modul x +p';
  assert.deepEqual(wordAt(q, 0), [0, 6]);
  assert.equal(q.slice(...wordAt(q, 7)), '"a b"');
  assert.equal(q.slice(...wordAt(q, 13)), 'modul');
  const semi = 'func x;modul y +p';
  assert.equal(semi.slice(...wordAt(semi, 7)), 'modul');
  assert.equal(q.slice(...wordAt(q, q.length)), '');
  // A missing closing quote runs to the end of its query.
  const open = 'format "abc +p\nmodule x +p';
  assert.equal(open.slice(...wordAt(open, 7)), '"abc +p');
  // NBSP is not a separator.
  const nb = 'modul\u00a0x +p';
  assert.equal(nb.slice(...wordAt(nb, 0)), 'modul\u00a0x');
  // Random text: a word never holds a separator, and starts where asked.
  for (let seed = 1; seed <= 500; seed++) {
    const next = rng(seed);
    const s = randomText(next);
    const start = Math.floor(next() * (s.length + 1));
    const [a, b] = wordAt(s, start);
    assert.equal(a, Math.min(start, s.length));
    assert.ok(b >= a && b <= s.length);
    const w = s.slice(a, b);
    if (!w.startsWith('"') && !w.startsWith("'")) assert.doesNotMatch(w.slice(1), /[ \t\n\v\f\r;]/);
  }
});

test('the preview says exactly N sites match, M would change, in the singular for one', () => {
  assert.equal(previewText(3, 3), '3 sites match, 3 would change');
  assert.equal(previewText(1, 1), '1 site matches, 1 would change');
  assert.equal(previewText(0, 0), '0 sites match, 0 would change');
  assert.equal(previewText(8077, 12), '8077 sites match, 12 would change');
});

test('the live figures come from the metrics dynkeyd serves', () => {
  const text = [
    '# HELP dynkey_commits_total Commits.',
    '# TYPE dynkey_commits_total counter',
    'dynkey_commits_total 12',
    'dynkey_rendezvous_method{method="membarrier"} 1',
    'dynkey_rendezvous_method{method="none"} 0',
    'dynkey_rendezvous_method{method="signal"} 0',
    'dynkey_rendezvous_total{method="membarrier"} 7',
    'dynkey_rendezvous_total{method="signal"} 2',
    'dynkey_commit_duration_seconds_bucket{le="0.005"} 3',
    '',
  ].join('\n');
  const m = parseMetrics(text);
  assert.deepEqual(liveFigures(m), { commits: 12, rendezvous: 9, method: 'membarrier' });
  assert.deepEqual(m.dynkey_commit_duration_seconds_bucket, [{ labels: { le: '0.005' }, value: 3 }]);
  assert.deepEqual(liveFigures(parseMetrics('')), { commits: 0, rendezvous: 0, method: null });
  assert.equal(rate(10, 16, 3), 2);
  assert.equal(rate(10, 16, 0), null);
  assert.equal(rate(16, 10, 3), null, 'a restarted server is no negative rate');
});

test('operations, formats and params read as the listing and the API write them', () => {
  assert.equal(describeOp({ query: 'module virtio_net +p' }), 'module virtio_net +p');
  assert.equal(describeOp({ keys: { A: true, B: false } }), 'key A on, key B off');
  assert.equal(describeOp({ call: 'C', target: 'adler32' }), 'call C = adler32');
  assert.equal(describeOp({ param: 'drm.debug', value: '0x1ff' }), 'param drm.debug = 0x1ff');
  assert.equal(describeOp({ site: '4', flags: '+p' }, (id) => (id === '4' ? 'a.c:1 f' : null)), 'site a.c:1 f (id 4) +p');
  assert.equal(describeOp({ site: '5', flags: '-p' }), 'site 5 -p');
  assert.equal(escapeFormat('a "b"\n\t\\x'), '"a \\"b\\"\\n\\t\\x"');
  assert.deepEqual(classesOn('disjoint_bits', '0x5', 4), [true, false, true, false]);
  assert.deepEqual(classesOn('level_num', '2', 4), [true, true, false, false]);
});
