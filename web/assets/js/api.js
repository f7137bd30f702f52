// The public HTTP API (`/v1`, same origin), with the signed-in user's tokens.
// Tokens live in localStorage; an expired access token is refreshed once (single
// flight) and the call repeated.

const TOKENS_KEY = 'marquee.tokens';
const listeners = new Set();

export const session = {
  tokens() {
    try { return JSON.parse(localStorage.getItem(TOKENS_KEY)); } catch { return null; }
  },
  signedIn() { return Boolean(this.tokens()?.access_token); },
  save(pair) {
    localStorage.setItem(TOKENS_KEY, JSON.stringify({
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
    }));
    listeners.forEach((fn) => fn());
  },
  clear() {
    localStorage.removeItem(TOKENS_KEY);
    listeners.forEach((fn) => fn());
  },
  onChange(fn) { listeners.add(fn); },
};

/** A problem+json answer (`code`, `detail`) or a network failure. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    const detail = problem?.detail ?? problem?.title ?? (status ? `HTTP ${status}` : 'network error');
    super(detail);
    this.status = status;
    this.code = problem?.code ?? null;
    this.detail = status === 429
      ? `Too many requests just now; try again in ${retryAfter ?? 'a few'} seconds.`
      : detail;
    this.problem = problem;
  }
}

let refreshing = null;

async function refresh() {
  const t = session.tokens();
  if (!t?.refresh_token) return false;
  refreshing ??= fetch('/v1/auth/refresh', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ refresh_token: t.refresh_token }),
  }).then(async (res) => {
    if (!res.ok) { session.clear(); return false; }
    session.save(await res.json());
    return true;
  }).catch(() => false).finally(() => { refreshing = null; });
  return refreshing;
}

/**
 * Calls the API. `body` is sent as JSON; `headers` are added. Resolves to the JSON
 * answer (null for 204), or rejects with an ApiError.
 */
export async function api(path, { method = 'GET', body, headers = {}, retried = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const t = session.tokens();
  if (t?.access_token) h.Authorization = `Bearer ${t.access_token}`;
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { detail: 'The server could not be reached. Check your connection and try again.' });
  }
  if (res.status === 401 && t?.refresh_token && !retried && !path.startsWith('/v1/auth/')) {
    if (await refresh()) return api(path, { method, body, headers, retried: true });
  }
  if (res.status === 204 || res.status === 205) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
  return data;
}

/** Query string of the defined, non-empty values of `params`. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The signed-in user's profile, memoised until the session changes. */
let me = null;
session.onChange(() => { me = null; });
export function profile() {
  if (!session.signedIn()) return Promise.resolve(null);
  me ??= api('/v1/me').catch((e) => { me = null; if (e.status === 401) session.clear(); return null; });
  return me;
}

/**
 * Signs in. Resolves to null when signed in, or to the challenge
 * (`{mfa_required, mfa_token, expires_in}`) of an account with two-step sign-in:
 * `completeSignIn` with a code finishes it.
 */
export async function signIn(email, password) {
  const answer = await api('/v1/auth/login', { method: 'POST', body: { email, password } });
  if (answer?.mfa_required) return answer;
  session.save(answer);
  return null;
}

/** The code step of a two-step sign-in: a TOTP code or a recovery code. */
export async function completeSignIn(mfaToken, code) {
  session.save(await api('/v1/auth/mfa', { method: 'POST', body: { mfa_token: mfaToken, code: code.trim() } }));
}

/**
 * Renews the access token with the refresh token now (after a password change the
 * old access token is refused; this login carries on).
 */
export async function renewSession() {
  return refresh();
}

export async function register(fields) {
  const r = await api('/v1/auth/register', { method: 'POST', body: fields });
  session.save(r);
  return r.user;
}

export async function signOut() {
  const t = session.tokens();
  if (t?.refresh_token) {
    await api('/v1/auth/logout', { method: 'POST', body: { refresh_token: t.refresh_token } }).catch(() => {});
  }
  session.clear();
}
