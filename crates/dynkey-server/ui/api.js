// Requests to dynkeyd: same origin only, relative to where the page is
// mounted, the token (when one was given) in the Authorization header.
// Never a cookie: `credentials: 'omit'` keeps any cookie of the origin out.

const TOKEN_KEY = 'dynkey.token';

// Where session storage is refused, the token lives as long as the page.
let memory = null;

// The page is served at <mount>/ui/, the API at <mount>/.
const BASE = new URL('../', document.baseURI);

/** An error reply (`{"errors":[{query,category,offset,message}]}`), or a
 * failure to reach the server (status 0). */
export class ApiError extends Error {
  constructor(status, errors, method, path) {
    const first = errors[0] || {};
    super(`${status} ${first.category || ''}: ${first.message || ''}`);
    this.status = status;
    this.errors = errors;
    this.method = method;
    this.path = path;
  }
}

/** The token kept for this tab (session storage), or null. */
export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Keeps (or, with null, forgets) the token for this tab. */
export function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Refused: `memory` keeps it.
  }
  memory = value || null;
}

/**
 * One request. `path` is relative to the API (`control`, `keys`, ...),
 * `query` an object of URL parameters (empty values left out), `text` a
 * raw body, `json` a JSON body. Resolves to the parsed JSON (or text) of a
 * 2xx reply; rejects with ApiError otherwise.
 */
export async function request(method, path, { query = {}, text, json } = {}) {
  const url = new URL(path, BASE);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = {};
  const t = token() || memory;
  if (t) headers.Authorization = `Bearer ${t}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    body = text;
  }
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body,
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, [{ category: 'E_NETWORK', message: `dynkeyd did not answer (${e.message})`, query: 0, offset: 0 }], method, path);
  }
  const raw = await res.text();
  let data = raw;
  if ((res.headers.get('content-type') || '').includes('json')) {
    try {
      data = JSON.parse(raw);
    } catch {
      data = raw;
    }
  }
  if (!res.ok) {
    const errors = Array.isArray(data?.errors) && data.errors.length
      ? data.errors
      : [{ category: `HTTP ${res.status}`, message: String(raw).slice(0, 200), query: 0, offset: 0 }];
    throw new ApiError(res.status, errors, method, path);
  }
  return data;
}

/** GET that answers null for 404 (a route this dynkeyd does not have). */
export async function getOptional(path, options) {
  try {
    return await request('GET', path, options);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** A path segment (names such as `drm.debug`, ids). */
export const seg = (s) => encodeURIComponent(s);
