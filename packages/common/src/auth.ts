/**
 * share_key proof: both sides show they hold the key without sending it. The server sends a random
 * nonce; the client answers with its own nonce and an HMAC over both; the server answers with an
 * HMAC over them in the other order. Compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PROTOCOL_VERSION } from './protocol';

export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

export function clientProof(shareKey: string, role: string, clientId: string, serverNonce: string, clientNonce: string): string {
  return createHmac('sha256', shareKey).update(`taskmesh/${PROTOCOL_VERSION} client ${role} ${clientId} ${serverNonce} ${clientNonce}`).digest('hex');
}

export function serverProof(shareKey: string, serverId: string, serverNonce: string, clientNonce: string): string {
  return createHmac('sha256', shareKey).update(`taskmesh/${PROTOCOL_VERSION} server ${serverId} ${clientNonce} ${serverNonce}`).digest('hex');
}

export function proofMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
