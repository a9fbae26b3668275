// The NETCONF words the gateway says itself or listens for (RFC 6241, RFC 6242), in one place:
// the base namespace and capabilities, the framing markers, the hello, the RPCs it originates
// (close-session, keepalive, lock release), the <ok/> reply, and reading a message's head
// (root element, message-id, operation, result) to route, meter or answer it.
import { XmlSyntaxError, attrByLocalName, xmlTokens } from './xml.js';

export const NETCONF_BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
export const CAPABILITY_BASE_1_0 = 'urn:ietf:params:netconf:base:1.0';
export const CAPABILITY_BASE_1_1 = 'urn:ietf:params:netconf:base:1.1';
export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/** RFC 6242 §4.3: the end-of-message marker, as text and as wire bytes. */
export const EOM = ']]>]]>';
export const EOM_MARKER: Buffer = Buffer.from(EOM, 'latin1');
/** RFC 6242 §4.2: end-of-chunks. */
export const END_OF_CHUNKS: Buffer = Buffer.from('\n##\n', 'latin1');

/** Message-ids of the RPCs the gateway sends itself, so they show in a device's logs. */
export const PROBE_MESSAGE_ID = 'callhome-gateway-probe';
export const IDLE_RELEASE_MESSAGE_ID = 'idle-release';

/** The base capabilities offered up to `maxBase`. */
export function baseCapabilities(maxBase: '1.0' | '1.1'): string[] {
  return maxBase === '1.1' ? [CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1] : [CAPABILITY_BASE_1_0];
}

/** A <hello> (RFC 6241 §8.1) with an XML declaration; a server's carries its session-id. */
export function helloMessage(capabilities: readonly string[], sessionId?: string | number): string {
  return (
    `${XML_DECLARATION}<hello xmlns="${NETCONF_BASE_NS}"><capabilities>` +
    capabilities.map((c) => `<capability>${c}</capability>`).join('') +
    '</capabilities>' +
    (sessionId !== undefined ? `<session-id>${sessionId}</session-id>` : '') +
    '</hello>'
  );
}

/** An <rpc> around `operation` (RFC 6241 §4.1). */
export function rpcMessage(messageId: string, operation: string): string {
  return `<rpc message-id="${escapeAttr(messageId)}" xmlns="${NETCONF_BASE_NS}">${operation}</rpc>`;
}

/** <close-session> (RFC 6241 §7.8), with an XML declaration. */
export function closeSessionRpc(messageId: string): string {
  return XML_DECLARATION + rpcMessage(messageId, '<close-session/>');
}

/** The keepalive a held session sends an idle device: the smallest <get> (an empty subtree filter). */
export function keepaliveRpc(messageId: string): string {
  return rpcMessage(messageId, '<get><filter type="subtree"/></get>');
}

/** <rpc-reply><ok/></rpc-reply> for the <rpc> with `messageId` (none when the rpc had none). */
export function okReply(messageId: string | undefined): string {
  const attr = messageId !== undefined ? `message-id="${escapeAttr(messageId)}" ` : '';
  return `<rpc-reply ${attr}xmlns="${NETCONF_BASE_NS}"><ok/></rpc-reply>`;
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** The head of a client's <close-session> (RFC 6241 §7.8). */
export function isCloseSession(head: MessageHead | undefined): boolean {
  return head?.root === 'rpc' && head.operation === 'close-session';
}

/** What the start of a message says about it. */
export interface MessageHead {
  /** Local name of the root element: 'rpc', 'rpc-reply', 'notification', … */
  root: string;
  messageId?: string;
  /** rpc: local name of the first child element (the operation). */
  operation?: string;
  /** rpc-reply: 'ok', the first <rpc-error>'s <error-tag>, or 'rpc-error' if that is cut off. */
  result?: string;
}

/**
 * Reads the root element, message-id, operation and reply result from the start of a message.
 * `text` may be cut anywhere; what lies beyond is simply unknown. Never throws.
 */
export function readMessageHead(text: string): MessageHead | undefined {
  let head: MessageHead | undefined;
  let depth = 0;
  let inError = false; // inside a top-level <rpc-error>
  let tagDepth = -1; // depth of the open <error-tag>, or -1
  let tagText = '';
  try {
    for (const tok of xmlTokens(text)) {
      if (tok.type === 'start') {
        if (depth === 0) {
          if (head) return head; // a second root: not one message; keep what is known
          head = { root: tok.local };
          const id = attrByLocalName(tok, 'message-id');
          if (id !== undefined) head.messageId = id;
          if (tok.local !== 'rpc' && tok.local !== 'rpc-reply') return head;
        } else if (head!.root === 'rpc') {
          if (depth === 1) {
            head!.operation = tok.local;
            return head;
          }
        } else if (depth === 1 && tok.local === 'rpc-error') {
          // RFC 6241 §4.3: each error is an <rpc-error> child of <rpc-reply>.
          inError = true;
        } else if (inError && depth === 2 && tok.local === 'error-tag') {
          tagDepth = depth;
          tagText = '';
        }
        if (tok.selfClosing) {
          if (depth === 0) break; // <rpc-reply …/>: nothing inside
          if (tagDepth === depth) tagDepth = -1;
        } else {
          depth++;
        }
      } else if (tok.type === 'end') {
        depth--;
        if (depth < 0) return head;
        if (depth === tagDepth) {
          const tag = tagText.trim();
          head!.result = tag === '' ? 'rpc-error' : tag;
          return head;
        }
        if (depth === 1 && inError) {
          head!.result = 'rpc-error';
          return head;
        }
        if (depth === 0) break;
      } else if (tagDepth >= 0) {
        tagText += tok.text;
      }
    }
  } catch (err) {
    if (!(err instanceof XmlSyntaxError)) throw err;
  }
  if (head?.root === 'rpc-reply') head.result = inError ? 'rpc-error' : 'ok';
  return head;
}
