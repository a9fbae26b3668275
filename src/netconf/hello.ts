// Reads a NETCONF <hello> (RFC 6241 §8.1) for the peer's capabilities and session-id, and
// decides which framing follows the hellos (RFC 6242 §4.1). Input is one whole message whose
// size the caller has already capped.
import { FramingError, type Framing } from './framing.js';
import { CAPABILITY_BASE_1_1, NETCONF_BASE_NS } from './vocabulary.js';
import { XmlSyntaxError, ownNamespace, xmlTokens } from './xml.js';

export interface Hello {
  /** Capability URIs in the order advertised, entity-decoded and trimmed; empty ones dropped. */
  capabilities: string[];
  /** Present in a server's hello (RFC 6241 §8.1), absent in a client's. */
  sessionId?: string;
}

/** The first message is not a NETCONF <hello>; a FramingError with code GW_ERR_NOT_NETCONF. */
export class HelloError extends FramingError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'GW_ERR_NOT_NETCONF' });
    this.name = 'HelloError';
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

// By hand rather than a /\s+$/ regex, which backtracks quadratically on long inner whitespace.
function trimXml(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s.charCodeAt(a))) a++;
  while (b > a && isSpace(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

/**
 * Parses one <hello> message (namespace prefix or default namespace or none; XML declaration,
 * comments and whitespace allowed). Throws HelloError for anything else.
 */
export function parseHello(message: string | Buffer): Hello {
  let text = typeof message === 'string' ? message : message.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  const capabilities: string[] = [];
  let sessionId: string | undefined;
  const stack: string[] = []; // qualified names of open elements
  let sawRoot = false;
  // What the text being collected belongs to: a <capability> or the <session-id>.
  let collecting: 'capability' | 'session-id' | undefined;
  let collectDepth = 0;
  let buf = '';
  let parentIsCapabilities = false;

  const tokens = xmlTokens(text);
  let complete: boolean;
  try {
    for (;;) {
      const next = tokens.next();
      if (next.done) {
        complete = next.value;
        break;
      }
      const tok = next.value;
      if (tok.type === 'start') {
        const depth = stack.length;
        if (depth === 0) {
          if (sawRoot) throw new HelloError('hello is not well-formed: content after the root element');
          sawRoot = true;
          if (tok.local !== 'hello') throw new HelloError(`expected a NETCONF <hello> message, got <${tok.name}>`);
          const ns = ownNamespace(tok);
          if (tok.prefix !== '' && ns === undefined) throw new HelloError(`<${tok.name}> uses an undeclared prefix`);
          // Peers that omit the namespace altogether exist; a different one is not NETCONF.
          if (ns !== undefined && ns !== NETCONF_BASE_NS) {
            throw new HelloError(`<hello> is in namespace ${ns}, not ${NETCONF_BASE_NS}`);
          }
        } else if (collecting === undefined) {
          if (depth === 1 && tok.local === 'capabilities') parentIsCapabilities = true;
          else if (depth === 2 && parentIsCapabilities && tok.local === 'capability') collecting = 'capability';
          else if (depth === 1 && tok.local === 'session-id') collecting = 'session-id';
          if (collecting !== undefined) {
            collectDepth = depth;
            buf = '';
            if (tok.selfClosing) collecting = undefined; // <capability/>: nothing advertised
          }
        }
        if (!tok.selfClosing) stack.push(tok.name);
      } else if (tok.type === 'end') {
        const open = stack.pop();
        if (open !== tok.name) {
          throw new HelloError(`hello is not well-formed: </${tok.name}> closes ${open === undefined ? 'nothing' : `<${open}>`}`);
        }
        const depth = stack.length;
        if (collecting !== undefined && depth === collectDepth) {
          const value = trimXml(buf);
          if (collecting === 'capability') {
            if (value !== '') capabilities.push(value);
          } else {
            sessionId = value;
          }
          collecting = undefined;
        }
        if (depth === 1) parentIsCapabilities = false;
      } else if (stack.length === 0) {
        if (trimXml(tok.text) !== '') throw new HelloError('hello is not well-formed: text outside the root element');
      } else if (collecting !== undefined) {
        buf += tok.text;
      }
    }
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new HelloError(`hello is not well-formed: ${err.message}`, { cause: err });
    throw err;
  }
  if (!sawRoot) throw new HelloError('expected a NETCONF <hello> message, got no element');
  if (!complete || stack.length > 0) throw new HelloError('hello is not well-formed: it ends inside an element');
  return sessionId === undefined ? { capabilities } : { capabilities, sessionId };
}

/**
 * RFC 6242 §4.1: chunked framing follows the hellos iff both peers advertise base:1.1;
 * otherwise end-of-message framing continues.
 */
export function negotiatedFraming(a: readonly string[], b: readonly string[]): Framing {
  return a.includes(CAPABILITY_BASE_1_1) && b.includes(CAPABILITY_BASE_1_1) ? 'chunked' : 'eom';
}
