/**
 * Who may change state (cancel, retry): a request with `Authorization: Bearer <dashboard.token>`,
 * or, when the page is served over HTTPS (`dashboard.tls`), one whose client certificate chains to
 * the mesh CA. Reading the page needs neither: it binds to loopback by default.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

export type AuthResult = { ok: true; by: 'token' | 'certificate' } | { ok: false; status: 401 | 403; reason: string };

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compares digests, so neither the length nor a common prefix of the token leaks through timing. */
function sameToken(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function authorize(req: IncomingMessage, token: string | null): AuthResult {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted && socket.authorized === true) return { ok: true, by: 'certificate' };
  const header = req.headers.authorization;
  if (!header) {
    return {
      ok: false,
      status: 401,
      reason:
        token === null
          ? 'this dashboard accepts only a client certificate to change state (dashboard.tls); none was given'
          : 'send Authorization: Bearer <dashboard.token>',
    };
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m || token === null || !sameToken(m[1]!, token)) return { ok: false, status: 403, reason: 'wrong token' };
  return { ok: true, by: 'token' };
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Hostname of a Host header or an origin, lower-cased, without the port. */
function hostOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.split(':')[0] ?? '';
}

/**
 * A page on loopback must be asked for by a loopback name: a foreign name that resolves to
 * 127.0.0.1 (DNS rebinding) would otherwise let any web site read it from the user's browser.
 */
export function hostAllowed(req: IncomingMessage, bindHost: string): boolean {
  if (!LOOPBACK_NAMES.has(bindHost) && !bindHost.startsWith('127.')) return true;
  const host = req.headers.host;
  if (!host) return false;
  const name = hostOf(host);
  // An IPv4 literal only: a name like 127.example.com is exactly what DNS rebinding would use.
  return LOOPBACK_NAMES.has(name) || /^127(\.\d{1,3}){3}$/.test(name);
}

/**
 * A state change must come from the page itself or from a tool that sends no Origin (curl):
 * browsers send Origin on every cross-site POST, and a client certificate would otherwise go
 * along with a forged form (CSRF).
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}
