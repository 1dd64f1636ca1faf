/**
 * One authenticated WebSocket between two taskmesh processes: the share_key handshake, validated
 * frames, and health checks (a peer is down when its stream closes or after `misses` silent
 * intervals). Used by the distributor and worker on both ends, and by watchers.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { TlsMaterial } from './config';
import { clientProof, newNonce, proofMatches, serverProof } from './auth';
import { BATCH_MAX_BYTES, BATCH_MAX_FRAMES, CloseCode, decodeFrame, encodeFrame, PROTOCOL_VERSION, type Message, type MessageOf } from './protocol';
import { clientTlsOptions, peerRefusal, refusalReason, serverTlsOptions, peerNames, peerCertExpiry } from './tls';
import type { Logger } from './log';
import type { RefusalReason } from './metrics';
import { HandshakeError, type HandshakeErrorCode } from './errors';

export const HANDSHAKE_TIMEOUT_MS = 5000;

export interface ChannelEvents {
  message: [Message];
  close: [number, string];
}

/** An authenticated connection. `peerId` is the config id the peer proved with the share_key. */
export class Channel extends EventEmitter<ChannelEvents> {
  private lastSeen = Date.now();
  private healthTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Encoded frames sent in this turn of the event loop, written together at its end. */
  private outbox: string[] = [];
  private outboxBytes = 0;
  private flushScheduled = false;
  private readonly batchBytes: number;

  /**
   * @param certExpiresAt when the peer's certificate expires: TLS checked it only at the handshake,
   *   so a long-lived connection is closed (4008) once it has expired.
   * @param maxPayload this side's limits.max_message_bytes: a batch stays well below it.
   */
  constructor(
    readonly ws: WebSocket,
    readonly peerId: string,
    readonly peerRole: string,
    private readonly log: Logger,
    private readonly certExpiresAt: number | null = null,
    maxPayload = BATCH_MAX_BYTES * 2,
  ) {
    super();
    // Room for the batch wrapper; half the limit, so a peer with a smaller one still fits most.
    this.batchBytes = Math.min(BATCH_MAX_BYTES, Math.floor(maxPayload / 2)) - 64;
    ws.on('message', (data: RawData, isBinary: boolean) => this.onData(data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => this.onClose(code, reason.toString()));
    ws.on('pong', () => (this.lastSeen = Date.now()));
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Whether the socket holds more than this many bytes it could not write yet (a slow reader). */
  get buffered(): number {
    return this.ws.bufferedAmount + this.outboxBytes;
  }

  send(msg: Message): boolean {
    return this.sendEncoded(encodeFrame(msg));
  }

  /**
   * Sends a frame that is already JSON text (a caller that splices stored JSON into a frame
   * instead of parsing and re-encoding it). Frames sent in one turn of the event loop leave as
   * one `batch` frame: one WebSocket message and one TLS record instead of hundreds.
   */
  sendEncoded(frame: string): boolean {
    if (!this.open) return false;
    // Bytes as sent (UTF-8), plus the comma that joins it to a batch.
    const size = Buffer.byteLength(frame) + 1;
    if (this.outboxBytes + size > this.batchBytes || this.outbox.length >= BATCH_MAX_FRAMES) this.flush();
    this.outbox.push(frame);
    this.outboxBytes += size;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** Writes what the outbox holds: one frame as itself, several as one batch. */
  private flush(): void {
    this.flushScheduled = false;
    const frames = this.outbox;
    if (frames.length === 0) return;
    this.outbox = [];
    this.outboxBytes = 0;
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frames.length === 1 ? frames[0]! : `{"type":"batch","frames":[${frames.join(',')}]}`);
  }

  /** Pings every interval; declares the peer down after `misses` intervals without any frame. */
  startHealth(intervalMs: number, misses: number, running?: () => number): void {
    this.lastSeen = Date.now();
    this.healthTimer = setInterval(() => {
      if (this.certExpiresAt !== null && Date.now() >= this.certExpiresAt) {
        this.log.warn('peer certificate expired; closing', { peer: this.peerId });
        this.close(CloseCode.CERT_EXPIRED, 'certificate expired');
        return;
      }
      if (Date.now() - this.lastSeen > intervalMs * misses) {
        // After our own event loop stalled, timers run before the socket's buffered frames are
        // read: look again once they have been, or a pause here would condemn a healthy peer.
        setImmediate(() => {
          if (this.closed || Date.now() - this.lastSeen <= intervalMs * misses) return;
          this.log.warn('peer missed health checks', { peer: this.peerId, misses });
          this.close(CloseCode.HEALTH_TIMEOUT, 'missed health checks', true);
        });
        return;
      }
      this.send(running ? { type: 'ping', ts: Date.now(), running: running() } : { type: 'ping', ts: Date.now() });
    }, intervalMs);
    this.healthTimer.unref();
  }

  close(code: number = CloseCode.NORMAL, reason = '', force = false): void {
    if (this.closed) return;
    if (!force) this.flush();
    if (force) {
      // A peer that stopped answering will not complete a close handshake.
      this.ws.terminate();
      this.onClose(code, reason);
    } else {
      this.ws.close(code, reason);
      // ws waits up to 30 s for the peer's close frame; a silent peer must not hold the process.
      setTimeout(() => this.ws.terminate(), 1000).unref();
    }
  }

  private onData(data: RawData, isBinary: boolean): void {
    this.lastSeen = Date.now();
    if (isBinary) {
      this.send({ type: 'error', code: 'BAD_FRAME', message: 'binary frames are not part of the protocol' });
      return;
    }
    const d = decodeFrame(data.toString());
    if (!d.ok) {
      this.log.warn('invalid frame', { peer: this.peerId, reason: d.error.message });
      this.send({ type: 'error', code: 'BAD_FRAME', message: d.error.message });
      return;
    }
    if (d.msg.type === 'batch') {
      for (const m of d.msg.frames) this.receive(m);
    } else {
      this.receive(d.msg);
    }
  }

  private receive(msg: Message): void {
    if (this.closed) return;
    if (msg.type === 'ping') this.send({ type: 'pong', ts: msg.ts });
    this.emit('message', msg);
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.emit('close', code, reason);
  }
}

/**
 * What a close during the handshake means, by close code; other codes are HANDSHAKE_REFUSED.
 * A server sends 4004 during the handshake only for a protocol version it does not speak.
 */
const HANDSHAKE_CLOSE_CODES: ReadonlyMap<number, HandshakeErrorCode> = new Map([
  [CloseCode.AUTH_FAILED, 'SHARE_KEY_MISMATCH'],
  [CloseCode.HANDSHAKE_TIMEOUT, 'HANDSHAKE_TIMEOUT'],
  [CloseCode.NOT_ALLOWED, 'ROLE_NOT_ACCEPTED'],
  [CloseCode.PROTOCOL_ERROR, 'PROTOCOL_VERSION'],
]);

/** TLS error codes that mean a certificate was refused (rather than a network failure). */
const CERT_ERROR = /CERT|UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|ERR_TLS_|ERR_SSL_/;

/** The typed error for a socket error during the handshake; errors that are not about the peer (ECONNREFUSED...) pass as they are. */
function socketError(err: Error & { code?: string }): Error {
  const code = err.code ?? '';
  if (CERT_ERROR.test(code)) return new HandshakeError('CERT_REJECTED', `certificate refused: ${code} (${err.message})`, { tlsCode: code, cause: err });
  // A server that refuses the client certificate destroys the socket after TLS: the client sees a reset.
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return new HandshakeError('HANDSHAKE_REFUSED', `the server dropped the connection during the handshake (${err.message})`, { tlsCode: code, cause: err });
  return err;
}

/** Waits for one frame of a given type, or fails with a HandshakeError on close, a different frame, or timeout. */
function nextFrame<T extends Message['type']>(ws: WebSocket, type: T, timeoutMs: number): Promise<MessageOf<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new HandshakeError('HANDSHAKE_TIMEOUT', `no ${type} frame within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (data: RawData) => {
      const d = decodeFrame(data.toString());
      if (!d.ok) return done(new HandshakeError('HANDSHAKE_REFUSED', `invalid ${type} frame: ${d.error.message}`));
      if (d.msg.type === 'error') return done(new HandshakeError('HANDSHAKE_REFUSED', `the peer answered with an error: ${d.msg.code}: ${d.msg.message}`));
      if (d.msg.type !== type) return done(new HandshakeError('HANDSHAKE_REFUSED', `expected ${type}, got ${d.msg.type}`));
      done(null, d.msg as MessageOf<T>);
    };
    const onClose = (code: number, reason: Buffer) =>
      done(
        new HandshakeError(HANDSHAKE_CLOSE_CODES.get(code) ?? 'HANDSHAKE_REFUSED', `closed with ${code}${reason.length ? ` (${reason.toString()})` : ''}`, {
          closeCode: code,
        }),
      );
    const onErr = (err: Error) => done(socketError(err));
    function done(err: Error | null, msg?: MessageOf<T>) {
      clearTimeout(timer);
      ws.off('message', onMsg);
      ws.off('close', onClose);
      ws.off('error', onErr);
      if (err) reject(err);
      else resolve(msg!);
    }
    ws.on('message', onMsg);
    ws.on('close', onClose);
    ws.on('error', onErr);
  });
}

export interface ServerOptions {
  id: string;
  role: 'distributor' | 'worker';
  tls: TlsMaterial;
  shareKey: string;
  host: string;
  port: number;
  maxPayload: number;
  allow: readonly string[];
  /** Roles this server accepts. */
  accept: ReadonlyArray<'worker' | 'watcher'>;
  log: Logger;
  onChannel: (ch: Channel) => void;
  /** Told of every refused connection (for the refused-connections counter), beside the log line. */
  onRefused?: (reason: RefusalReason) => void;
}

export interface MeshServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** A TLS WebSocket listener that hands over only channels that passed TLS and the share_key proof. */
export async function listen(opts: ServerOptions): Promise<MeshServer> {
  const { log } = opts;
  const refused = (reason: RefusalReason) => opts.onRefused?.(reason);
  const server = createServer(serverTlsOptions(opts.tls));
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false });
  const sockets = new Set<TLSSocket>();

  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const refusal = peerRefusal(socket, opts.allow);
    const why = refusal?.message;
    if (refusal) {
      log.warn('refused connection', { remote: socket.remoteAddress, reason: why });
      refused(refusal.code === 'PEER_NOT_ALLOWED' ? 'allow_list' : 'certificate');
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err: Error & { code?: string }) => {
    log.warn('TLS handshake failed', { reason: err.code ?? err.message });
    refused('tls_handshake');
  });
  server.on('request', (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('taskmesh speaks WebSocket only\n');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Whatever a client sends, this handler must not throw: that would take the process down.
    try {
      const tlsSocket = req.socket as TLSSocket;
      if (tlsSocket.destroyed || refusalReason(tlsSocket, opts.allow)) {
        socket.destroy();
        return;
      }
      const names = peerNames(tlsSocket);
      const expiry = peerCertExpiry(tlsSocket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        // Without an 'error' listener one bad frame would crash the whole process.
        ws.on('error', (err) => log.warn('socket error', { reason: err.message }));
        void serverHandshake(ws, opts, names, expiry, refused).catch(() => undefined);
      });
    } catch (err) {
      log.warn('upgrade failed', { reason: (err as Error).message });
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    async close() {
      for (const ws of wss.clients) ws.close(CloseCode.GOING_AWAY, 'shutting down');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(() => {
          for (const s of sockets) s.destroy();
          resolve();
        }, 1000).unref();
      });
    },
  };
}

async function serverHandshake(
  ws: WebSocket,
  opts: ServerOptions,
  names: string[],
  certExpiresAt: number | null,
  refused: (reason: RefusalReason) => void,
): Promise<void> {
  const nonce = newNonce();
  ws.send(encodeFrame({ type: 'hello', v: PROTOCOL_VERSION, role: opts.role, id: opts.id, nonce }));
  let auth: MessageOf<'auth'>;
  try {
    auth = await nextFrame(ws, 'auth', HANDSHAKE_TIMEOUT_MS);
  } catch (err) {
    opts.log.warn('handshake failed', { names, reason: (err as Error).message });
    refused('handshake');
    ws.close(CloseCode.HANDSHAKE_TIMEOUT, 'handshake failed');
    return;
  }
  if (!opts.accept.includes(auth.role)) {
    refused('role');
    ws.close(CloseCode.NOT_ALLOWED, `role ${auth.role} is not accepted here`);
    return;
  }
  if (auth.v !== PROTOCOL_VERSION) {
    // Both proofs are keyed on the version: a client of another one could never pass them.
    refused('handshake');
    ws.close(CloseCode.PROTOCOL_ERROR, `protocol version ${auth.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
    return;
  }
  if (!proofMatches(clientProof(opts.shareKey, auth.role, auth.id, nonce, auth.nonce), auth.mac)) {
    opts.log.warn('refused peer: wrong share_key', { peer: auth.id, names });
    refused('share_key');
    ws.close(CloseCode.AUTH_FAILED, 'authentication failed');
    return;
  }
  ws.send(encodeFrame({ type: 'welcome', id: opts.id, mac: serverProof(opts.shareKey, opts.id, nonce, auth.nonce) }));
  opts.onChannel(new Channel(ws, auth.id, auth.role, opts.log, certExpiresAt, opts.maxPayload));
}

export interface ConnectOptions {
  id: string;
  role: 'worker' | 'watcher';
  tls: TlsMaterial;
  shareKey: string;
  host: string;
  port: number;
  maxPayload: number;
  /** Server certificate names accepted (CN/SAN); empty = any name the CA signed. */
  allow: readonly string[];
  log: Logger;
}

/** Connects, verifies the server certificate and its share_key proof, and returns the channel. */
export async function connect(opts: ConnectOptions): Promise<Channel> {
  const ws = new WebSocket(`wss://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}/`, {
    ...clientTlsOptions(opts.tls),
    perMessageDeflate: false,
    maxPayload: opts.maxPayload,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  ws.on('error', () => undefined);
  let serverNames: string[] = [];
  let serverExpiry: number | null = null;
  ws.once('upgrade', (res: IncomingMessage) => {
    serverNames = peerNames(res.socket as TLSSocket);
    serverExpiry = peerCertExpiry(res.socket as TLSSocket);
  });
  const helloP = nextFrame(ws, 'hello', HANDSHAKE_TIMEOUT_MS);
  try {
    const hello = await helloP;
    if (opts.allow.length > 0 && !serverNames.some((n) => opts.allow.includes(n))) {
      throw new HandshakeError('PEER_NOT_ALLOWED', `server certificate names [${serverNames.join(', ')}] are not in the allow-list`);
    }
    if (hello.v !== PROTOCOL_VERSION) {
      throw new HandshakeError('PROTOCOL_VERSION', `the server speaks protocol version ${hello.v}, this client ${PROTOCOL_VERSION}`);
    }
    const nonce = newNonce();
    const welcomeP = nextFrame(ws, 'welcome', HANDSHAKE_TIMEOUT_MS);
    ws.send(
      encodeFrame({
        type: 'auth',
        v: PROTOCOL_VERSION,
        role: opts.role,
        id: opts.id,
        nonce,
        mac: clientProof(opts.shareKey, opts.role, opts.id, hello.nonce, nonce),
      }),
    );
    const welcome = await welcomeP;
    if (!proofMatches(serverProof(opts.shareKey, welcome.id, hello.nonce, nonce), welcome.mac)) {
      throw new HandshakeError('SHARE_KEY_MISMATCH', 'server failed the share_key proof');
    }
    return new Channel(ws, welcome.id, hello.role, opts.log, serverExpiry, opts.maxPayload);
  } catch (err) {
    ws.terminate();
    throw err;
  }
}
