// The read-only policy of a client session: which RPCs a read-only user may call, how the
// operation of an <rpc> is read from the head of a message, and the access-denied reply
// that refuses one. Pure functions; rpc-filter.ts applies them to a byte stream.
import { NETCONF_BASE_NS } from './vocabulary.js';
import { XmlSyntaxError, xmlTokens, type XmlStartTag } from './xml.js';

/**
 * What a read-only user may call, by namespace and name (an allow-list: anything else is
 * refused). Reads, subscriptions to notifications and the end of one's own session.
 */
export const READ_ONLY_OPERATIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  [NETCONF_BASE_NS, new Set(['get', 'get-config', 'close-session'])],
  ['urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring', new Set(['get-schema'])], // RFC 6022
  ['urn:ietf:params:xml:ns:yang:ietf-netconf-nmda', new Set(['get-data'])], // RFC 8526
  ['urn:ietf:params:xml:ns:netconf:notification:1.0', new Set(['create-subscription'])], // RFC 5277
  // RFC 8639: a subscriber manages its own subscriptions (kill-subscription, for others', is not here).
  ['urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications', new Set(['establish-subscription', 'modify-subscription', 'delete-subscription'])],
  ['urn:ietf:params:xml:ns:yang:ietf-yang-push', new Set(['resync-subscription'])], // RFC 8641
]);

/** An RPC's operation: the first child element of <rpc> (RFC 6241 §4.1), by namespace. */
export interface RpcOperation {
  name: string;
  namespace: string | undefined;
}

export function readOnlyAllows(op: RpcOperation): boolean {
  return op.namespace !== undefined && READ_ONLY_OPERATIONS.get(op.namespace)?.has(op.name) === true;
}

/** What the head of an <rpc> says, once enough of it is read. */
export type RpcHead =
  | { kind: 'rpc'; root: XmlStartTag; op: RpcOperation }
  | { kind: 'other' } // a message that is not an <rpc> (nothing a device would execute)
  | { kind: 'refuse'; root: XmlStartTag | undefined; why: string };

/** Reads `text` (the start of a client message); undefined while more is needed. */
export function readRpcHead(text: string, complete: boolean): RpcHead | undefined {
  // A DTD could make the device read another element than the one seen here (entities).
  const dtd = text.includes('<!DOCTYPE');
  let root: XmlStartTag | undefined;
  try {
    for (const tok of xmlTokens(text)) {
      if (tok.type !== 'start') {
        if (tok.type === 'end') return root ? { kind: 'refuse', root, why: 'send an <rpc> without an operation' } : { kind: 'refuse', root, why: 'send a message that is not XML' };
        continue;
      }
      if (!root) {
        root = tok;
        if (dtd) return { kind: 'refuse', root, why: 'send a document type declaration' };
        if (tok.local !== 'rpc') return { kind: 'other' };
        if (tok.selfClosing) return { kind: 'refuse', root, why: 'send an <rpc> without an operation' };
        continue;
      }
      const ns = tok.attrs.get(tok.prefix === '' ? 'xmlns' : `xmlns:${tok.prefix}`) ?? root.attrs.get(tok.prefix === '' ? 'xmlns' : `xmlns:${tok.prefix}`);
      return { kind: 'rpc', root, op: { name: tok.local, namespace: ns } };
    }
  } catch (err) {
    if (!(err instanceof XmlSyntaxError)) throw err;
    return { kind: 'refuse', root, why: 'send a message that is not well-formed XML' };
  }
  if (!complete) return undefined;
  if (dtd) return { kind: 'refuse', root, why: 'send a document type declaration' };
  return root ? { kind: 'refuse', root, why: 'send an <rpc> without an operation' } : { kind: 'other' };
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The <rpc-reply> refusing an <rpc>: RFC 6241 §4.2 (the <rpc>'s message-id and every other
 * attribute, namespace declarations included, copied) and appendix A (access-denied,
 * error-type protocol: the operation itself is refused, whatever its parameters).
 */
export function accessDeniedReply(root: XmlStartTag | undefined, message: string): string {
  const p = root && root.prefix !== '' ? `${root.prefix}:` : '';
  const attrs = root ? [...root.attrs].map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('') : '';
  const ns = root?.attrs.has(p === '' ? 'xmlns' : `xmlns:${root.prefix}`) ? '' : ` ${p === '' ? 'xmlns' : `xmlns:${root!.prefix}`}="${NETCONF_BASE_NS}"`;
  const el = (name: string, body: string, extra = '') => `<${p}${name}${extra}>${body}</${p}${name}>`;
  return el(
    'rpc-reply',
    el('rpc-error', el('error-type', 'protocol') + el('error-tag', 'access-denied') + el('error-severity', 'error') + el('error-message', escapeXml(message), ' xml:lang="en"')),
    attrs + ns,
  );
}
