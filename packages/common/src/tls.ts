/**
 * Mutual TLS for every socket. Servers ask for a client certificate and check it themselves
 * (rejectUnauthorized is off at the TLS layer only so that the real reason, such as
 * CERT_HAS_EXPIRED, can be logged; an unauthorized socket is destroyed before any byte of HTTP).
 */
import type { TLSSocket, PeerCertificate } from 'node:tls';
import type { TlsMaterial } from './config';
import { HandshakeError } from './errors';

export const TLS_HANDSHAKE_TIMEOUT_MS = 5000;

export function serverTlsOptions(t: TlsMaterial) {
  return {
    key: t.key,
    cert: t.cert,
    ca: t.ca,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2' as const,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

export function clientTlsOptions(t: TlsMaterial) {
  return {
    key: t.key,
    cert: t.cert,
    ca: t.ca,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
  };
}

/** CN and DNS/IP SANs of the peer certificate, for allow-lists and logs. */
export function peerNames(socket: TLSSocket): string[] {
  // null once the socket is destroyed, {} when the peer sent no certificate.
  const cert = socket.getPeerCertificate() as PeerCertificate | null;
  const names = new Set<string>();
  const cn = cert?.subject?.CN;
  if (typeof cn === 'string') names.add(cn);
  const san = cert?.subjectaltname;
  if (san) {
    for (const part of san.split(',')) {
      const m = /^\s*(?:DNS|IP Address):(.+)$/.exec(part);
      if (m) names.add(m[1]!.trim());
    }
  }
  return [...names];
}

/** When the peer's certificate stops being valid (ms since epoch), or null if unknown. */
export function peerCertExpiry(socket: TLSSocket): number | null {
  const validTo = (socket.getPeerCertificate() as PeerCertificate | null)?.valid_to;
  const t = validTo ? Date.parse(validTo) : NaN;
  return Number.isFinite(t) ? t : null;
}

/**
 * Why a client socket is not acceptable, or null when it is: CERT_REJECTED (TLS refused its
 * certificate; `tlsCode` holds TLS's reason, e.g. CERT_HAS_EXPIRED) or PEER_NOT_ALLOWED (its names
 * are not in the allow-list).
 */
export function peerRefusal(socket: TLSSocket, allow: readonly string[]): HandshakeError | null {
  if (!socket.authorized) {
    const tlsCode = socket.authorizationError ? String(socket.authorizationError) : 'NO_CERTIFICATE';
    return new HandshakeError('CERT_REJECTED', `client certificate refused: ${String(socket.authorizationError ?? 'no certificate')}`, { tlsCode });
  }
  if (allow.length > 0) {
    const names = peerNames(socket);
    if (!names.some((n) => allow.includes(n)))
      return new HandshakeError('PEER_NOT_ALLOWED', `client certificate names [${names.join(', ')}] are not in the allow-list`);
  }
  return null;
}

/** Why a client socket is not acceptable, as one line, or null when it is. */
export function refusalReason(socket: TLSSocket, allow: readonly string[]): string | null {
  return peerRefusal(socket, allow)?.message ?? null;
}
