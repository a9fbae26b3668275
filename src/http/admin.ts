// The API's write side (onboarding) and its bearer-token check. Writes always need the
// admin token (no token configured: writes are refused); reads need the read token or the
// admin token when http.readToken(File) or http.requireTokenForReads is set.
// /metrics, /healthz and /readyz never do.
import { timingSafeEqual, createHash } from 'node:crypto';
import type http from 'node:http';
import type { Actor, OperatorApi } from './operator.js';

export interface AdminAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface AdminApi {
  /** The current token ('' when none is configured). Read per request, so a token file can be rotated. */
  token(): string;
  /** The read token ('' when none is configured or its file is unreadable: then only the admin token reads). */
  readToken(): string;
  requireTokenForReads: boolean;
  approve(fingerprint: string, body: unknown): Promise<AdminAnswer>;
  reject(fingerprint: string): Promise<AdminAnswer>;
  /** Ending sessions and dropping devices (src/http/operator.ts). */
  operator?: OperatorApi;
}

const MAX_BODY = 64 * 1024;

/** A percent-decoded path segment, or undefined when its encoding is malformed. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function sameToken(given: string, expected: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function authorized(req: http.IncomingMessage, ...tokens: string[]): boolean {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m !== null && tokens.some((expected) => expected !== '' && sameToken(m[1]!, expected));
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error(`request body larger than ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw Object.assign(new Error('request body is not valid JSON'), { status: 400 });
  }
}

const UNAUTHORIZED: AdminAnswer = {
  status: 401,
  body: { error: 'a valid bearer token is required (http.adminToken / http.adminTokenFile)' },
  headers: { 'WWW-Authenticate': 'Bearer realm="callhome-gateway"' },
};

/**
 * Answers /api/* requests that are writes or that fail the token check; undefined lets an
 * authorised read through to the read API.
 */
export async function handleAdmin(req: http.IncomingMessage, path: string, api: AdminApi): Promise<AdminAnswer | undefined> {
  if (!path.startsWith('/api/')) return undefined;
  const method = req.method ?? 'GET';
  const read = method === 'GET' || method === 'HEAD';
  if (read) {
    if (api.requireTokenForReads && !authorized(req, api.token(), api.readToken())) return UNAUTHORIZED;
    return undefined;
  }
  const operatorAnswer = handleOperator(req, method, path, api);
  if (operatorAnswer) return operatorAnswer;
  const approve = /^\/api\/pending\/([^/]+)\/approve$/.exec(path);
  const pending = /^\/api\/pending\/([^/]+)$/.exec(path);
  if (!(approve && method === 'POST') && !(pending && method === 'DELETE')) {
    return { status: 405, body: { error: `method ${method} not allowed on ${path}` }, headers: { Allow: 'GET, HEAD' } };
  }
  if (!authorized(req, api.token())) return UNAUTHORIZED;
  const fingerprint = decodeSegment((approve ?? pending)![1]!);
  if (fingerprint === undefined) return { status: 400, body: { error: 'malformed percent-encoding in the fingerprint' } };
  if (approve) {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      return { status: (err as { status?: number }).status ?? 400, body: { error: (err as Error).message } };
    }
    return api.approve(fingerprint, body);
  }
  return api.reject(fingerprint);
}

function actorOf(req: http.IncomingMessage): Actor {
  const agent = req.headers['user-agent'];
  return { remoteAddress: `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`, ...(agent ? { userAgent: agent.slice(0, 200) } : {}) };
}

/** DELETE /api/sessions/{id} and POST /api/devices/{id}/disconnect; undefined for other paths. */
function handleOperator(req: http.IncomingMessage, method: string, path: string, api: AdminApi): AdminAnswer | undefined {
  const operator = api.operator;
  if (!operator) return undefined;
  const session = /^\/api\/sessions\/([^/]+)$/.exec(path);
  const device = /^\/api\/devices\/([^/]+)\/disconnect$/.exec(path);
  if (!session && !device) return undefined;
  if (session && method !== 'DELETE') return { status: 405, body: { error: `method ${method} not allowed on ${path}` }, headers: { Allow: 'GET, HEAD, DELETE' } };
  if (device && method !== 'POST') return { status: 405, body: { error: `method ${method} not allowed on ${path}` }, headers: { Allow: 'POST' } };
  const target = decodeSegment((session ?? device)![1]!);
  if (target === undefined) return { status: 400, body: { error: 'malformed percent-encoding in the path' } };
  const action = session ? 'session-kill' : 'device-disconnect';
  if (!authorized(req, api.token())) {
    operator.unauthorized(action, target, actorOf(req));
    return UNAUTHORIZED;
  }
  return session ? operator.killSession(target, actorOf(req)) : operator.disconnectDevice(target, actorOf(req));
}
