// Keys (a switch each), calls (a combobox each) and class params (a
// textbox and a Set button each, with the classes they hold). Every change
// is one request, carrying the page's TTL.

import { getOptional, request, seg } from './api.js';
import { $, h, keepFocus, say, showError } from './dom.js';
import { classesOn, plural } from './text.js';

let mutate = null;

/** `run` runs a mutation (ttl, then refresh). */
export function init(run) {
  mutate = run;
}

/** Loads keys, calls and params again. */
export async function load() {
  const [keys, params] = await Promise.all([
    request('GET', 'keys'),
    getOptional('params'),
  ]);
  keepFocus(() => {
    renderKeys(keys.keys || []);
    renderCalls(keys.calls || []);
    renderParams(params);
  });
}

const id = (prefix, i) => `${prefix}-${i}`;

function renderKeys(keys) {
  const list = keys.map((k, i) => h('li', { class: 'control' },
    h('input', {
      type: 'checkbox',
      role: 'switch',
      id: id('key', i),
      checked: k.enabled,
      'aria-describedby': id('key-about', i),
      onchange: (e) => setKey(k.name, e.target),
    }),
    h('label', { for: id('key', i), class: 'name' }, k.name),
    h('span', { id: id('key-about', i), class: 'about' },
      `${k.enabled ? 'on' : 'off'}, ${plural(k.sites, 'site')} (${k.kind}), ${k.defined_at}`)));
  $('#keys').replaceChildren(...(list.length ? list : [h('li', { class: 'muted' }, 'No static keys.')]));
}

async function setKey(name, input) {
  const on = input.checked;
  input.disabled = true;
  try {
    const r = await mutate((ttl) => request('POST', 'keys', { json: { [name]: on }, query: { ttl } }));
    say(`Key ${name} ${on ? 'on' : 'off'}: ${r.changed} changed, ${r.rendezvous} rendezvous`);
  } catch (e) {
    input.checked = !on;
    showError(e);
  } finally {
    input.disabled = false;
  }
}

function renderCalls(calls) {
  const list = calls.map((c, i) => h('li', { class: 'control' },
    h('label', { for: id('call', i), class: 'name' }, c.name),
    h('select', {
      id: id('call', i),
      'aria-describedby': id('call-about', i),
      onchange: (e) => setCall(c.name, c.target, e.target),
    }, c.targets.map((t) => h('option', { value: t, selected: t === c.target }, t))),
    h('span', { id: id('call-about', i), class: 'about' }, `${plural(c.targets.length, 'target')}, ${c.defined_at}`)));
  $('#calls').replaceChildren(...(list.length ? list : [h('li', { class: 'muted' }, 'No static calls.')]));
}

async function setCall(name, was, select) {
  const target = select.value;
  select.disabled = true;
  try {
    const r = await mutate((ttl) => request('PUT', `calls/${seg(name)}`, { text: target, query: { ttl } }));
    say(`Call ${name} now goes to ${target}: ${r.changed} changed, ${r.rendezvous} rendezvous`);
  } catch (e) {
    select.value = was;
    showError(e);
  } finally {
    select.disabled = false;
  }
}

function renderParams(data) {
  if (data === null) {
    $('#params').replaceChildren(h('p', { class: 'muted' }, 'This dynkeyd does not list its params (no GET /params).'));
    return;
  }
  const params = data.params || [];
  const list = params.map((p, i) => {
    const on = classesOn(p.kind, p.value, p.classes.length);
    const label = id('param-label', i);
    return h('div', { role: 'group', 'aria-labelledby': label, class: 'param' },
      h('form', { class: 'param-form', onsubmit: (e) => { e.preventDefault(); setParam(p.name, e.target); } },
        h('label', { id: label, for: id('param', i), class: 'name' }, p.name),
        h('input', {
          id: id('param', i),
          type: 'text',
          name: 'value',
          value: p.value,
          autocomplete: 'off',
          spellcheck: 'false',
          'aria-describedby': id('param-about', i),
        }),
        h('button', { type: 'submit' }, 'Set')),
      h('p', { id: id('param-about', i), class: 'about' },
        `${p.kind === 'level_num' ? 'levels' : 'bits'} for flags ${p.flags || 'p'} in ${p.modules.join(', ')}; classes:`),
      h('ul', { class: 'classes', 'aria-label': `Classes of ${p.name}` },
        p.classes.map((c, j) => h('li', { class: on[j] ? 'on' : 'off' },
          c, h('span', { class: 'visually-hidden' }, on[j] ? ' (on)' : ' (off)')))));
  });
  $('#params').replaceChildren(...(list.length ? list : [h('p', { class: 'muted' }, 'No class params.')]));
}

async function setParam(name, form) {
  const input = form.elements.value;
  const value = input.value;
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const r = await mutate((ttl) => request('PUT', `params/${seg(name)}`, { text: value, query: { ttl } }));
    say(`Param ${name} = ${r.value}: ${r.changed} changed, ${r.rendezvous} rendezvous`);
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
}
