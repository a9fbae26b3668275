// Shared test material for the NETCONF scanners and meter: realistic messages, encoders for
// both framings, a seeded PRNG, and ways of cutting one byte stream into reads.
import { FrameScanner, type FrameSink, type Framing } from '../../src/netconf/framing.js';

export const NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';

// Shaped like what netconfd (yuma123) sends: XML declaration, default namespace, module
// capabilities with &amp;-escaped query strings, a session-id.
export const DEVICE_HELLO_11 = `<?xml version="1.0" encoding="UTF-8"?>
<hello xmlns="${NS}">
 <capabilities>
  <capability>urn:ietf:params:netconf:base:1.0</capability>
  <capability>urn:ietf:params:netconf:base:1.1</capability>
  <capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>
  <capability>urn:ietf:params:netconf:capability:confirmed-commit:1.1</capability>
  <capability>urn:ietf:params:netconf:capability:rollback-on-error:1.0</capability>
  <capability>urn:ietf:params:netconf:capability:validate:1.1</capability>
  <capability>urn:ietf:params:netconf:capability:xpath:1.0</capability>
  <capability>urn:ietf:params:netconf:capability:notification:1.0</capability>
  <capability>urn:ietf:params:netconf:capability:interleave:1.0</capability>
  <capability>urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&amp;also-supported=report-all,trim</capability>
  <capability>urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&amp;revision=2010-10-04</capability>
  <capability>urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces&amp;revision=2018-02-20&amp;features=if-mib</capability>
  <capability>http://netconfcentral.org/ns/yuma-system?module=yuma-system&amp;revision=2013-07-15</capability>
 </capabilities>
 <session-id>4</session-id>
</hello>`;

export const DEVICE_HELLO_11_CAPS = [
  'urn:ietf:params:netconf:base:1.0',
  'urn:ietf:params:netconf:base:1.1',
  'urn:ietf:params:netconf:capability:candidate:1.0',
  'urn:ietf:params:netconf:capability:confirmed-commit:1.1',
  'urn:ietf:params:netconf:capability:rollback-on-error:1.0',
  'urn:ietf:params:netconf:capability:validate:1.1',
  'urn:ietf:params:netconf:capability:xpath:1.0',
  'urn:ietf:params:netconf:capability:notification:1.0',
  'urn:ietf:params:netconf:capability:interleave:1.0',
  'urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim',
  'urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&revision=2010-10-04',
  'urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces&revision=2018-02-20&features=if-mib',
  'http://netconfcentral.org/ns/yuma-system?module=yuma-system&revision=2013-07-15',
];

export const DEVICE_HELLO_10 = DEVICE_HELLO_11.replace('  <capability>urn:ietf:params:netconf:base:1.1</capability>\n', '');

// Shaped like ncclient's: a namespace prefix on every element, no whitespace.
export const CLIENT_HELLO_11 =
  `<?xml version="1.0" encoding="UTF-8"?><nc:hello xmlns:nc="${NS}"><nc:capabilities>` +
  '<nc:capability>urn:ietf:params:netconf:base:1.0</nc:capability>' +
  '<nc:capability>urn:ietf:params:netconf:base:1.1</nc:capability>' +
  '<nc:capability>urn:ietf:params:netconf:capability:writable-running:1.0</nc:capability>' +
  '<nc:capability>urn:ietf:params:netconf:capability:candidate:1.0</nc:capability>' +
  '</nc:capabilities></nc:hello>';

export const CLIENT_HELLO_10 = CLIENT_HELLO_11.replace('<nc:capability>urn:ietf:params:netconf:base:1.1</nc:capability>', '');

export const RPC_GET_CONFIG = `<?xml version="1.0" encoding="UTF-8"?>
<rpc message-id="101" xmlns="${NS}">
  <get-config>
    <source><running/></source>
    <filter type="subtree"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"/></filter>
  </get-config>
</rpc>`;

export const REPLY_DATA = `<?xml version="1.0" encoding="UTF-8"?>
<rpc-reply message-id="101" xmlns="${NS}">
 <data>
  <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
   <interface><name>eth0</name><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type><enabled>true</enabled></interface>
   <interface><name>lo</name><description>]]&gt;]]&gt; is not a marker here; ]]>]] nor this</description></interface>
  </interfaces>
 </data>
</rpc-reply>`;

export const RPC_LOCK = `<nc:rpc xmlns:nc="${NS}" xmlns:x="urn:x" x:tag='a' message-id='102'><nc:lock><nc:target><nc:candidate/></nc:target></nc:lock></nc:rpc>`;

export const REPLY_LOCK_ERROR = `<rpc-reply xmlns="${NS}" message-id="102">
  <rpc-error>
    <error-type>protocol</error-type>
    <error-tag>lock-denied</error-tag>
    <error-severity>error</error-severity>
    <error-info><session-id>7</session-id></error-info>
    <error-message xml:lang="en">Lock failed, lock is already held</error-message>
  </rpc-error>
</rpc-reply>`;

export const RPC_COMMIT = `<rpc message-id="103" xmlns="${NS}"><commit/></rpc>`;
export const REPLY_OK = `<rpc-reply message-id="103" xmlns="${NS}"><ok/></rpc-reply>`;

export const NOTIFICATION = `<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"><eventTime>2024-01-01T00:00:00Z</eventTime><netconf-config-change xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"><changed-by><server/></changed-by></netconf-config-change></notification>`;

export const eomEncode = (msgs: readonly string[]): Buffer => Buffer.from(msgs.map((m) => `${m}]]>]]>`).join(''));

/** Chunked encoding (RFC 6242 §4.2) with each message cut into chunks of at most `chunkSize`. */
export function chunkedEncode(msgs: readonly string[], chunkSize = Infinity): Buffer {
  const parts: Buffer[] = [];
  for (const m of msgs) {
    const body = Buffer.from(m);
    for (let i = 0; i < body.length; i += chunkSize) {
      const piece = body.subarray(i, Math.min(body.length, i + chunkSize));
      parts.push(Buffer.from(`\n#${piece.length}\n`), piece);
    }
    parts.push(Buffer.from('\n##\n'));
  }
  return Buffer.concat(parts);
}

export function encode(framing: Framing, msgs: readonly string[], chunkSize?: number): Buffer {
  return framing === 'eom' ? eomEncode(msgs) : chunkedEncode(msgs, chunkSize);
}

/** mulberry32: small, seeded, good enough to make random splits reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `buf` at the given offsets (sorted, deduplicated, within 1..len-1). */
export function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

export function randomSplit(buf: Buffer, rand: () => number, maxPiece = 64): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + Math.floor(rand() * maxPiece);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** One-byte reads. */
export function* bytewise(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i++) yield buf.subarray(i, i + 1);
}

/** A sink that records messages (payload as text) and checks it is never handed an empty segment. */
export class Collector implements FrameSink {
  messages: string[] = [];
  current: Buffer[] = [];
  emptySegments = 0;
  data(segment: Buffer): void {
    if (segment.length === 0) this.emptySegments++;
    this.current.push(Buffer.from(segment));
  }
  end(): void {
    this.messages.push(Buffer.concat(this.current).toString('utf8'));
    this.current = [];
  }
  get partial(): string {
    return Buffer.concat(this.current).toString('utf8');
  }
}

export interface ScanResult {
  messages: string[];
  partial: string;
  error?: unknown;
  maxHeld: number;
  emptySegments: number;
}

/** Feeds `pieces` to a fresh scanner, reusing (and scribbling over) one copy buffer per read. */
export function scan(framing: Framing, pieces: Iterable<Buffer>, maxMessageBytes = 1 << 20): ScanResult {
  const sink = new Collector();
  const scanner = new FrameScanner(framing, sink, { maxMessageBytes });
  let maxHeld = 0;
  try {
    for (const piece of pieces) {
      // The scanner must not keep references into a read after push returns.
      const read = Buffer.from(piece);
      scanner.push(read);
      read.fill(0x21);
      maxHeld = Math.max(maxHeld, scanner.heldBytes);
    }
  } catch (error) {
    return { messages: sink.messages, partial: sink.partial, error, maxHeld, emptySegments: sink.emptySegments };
  }
  return { messages: sink.messages, partial: sink.partial, maxHeld, emptySegments: sink.emptySegments };
}
