// A tiny NETCONF server for bulk benchmarks, run by OpenSSH's sshd as the `netconf`
// subsystem (stdin/stdout). netconfd cannot produce or swallow a 1 GiB message at any useful
// speed, so this one only frames bytes (RFC 6242): a <get> whose filter names
// <bulk size="N"/> is answered with an N-byte reply, any other request is read to its end and
// answered <ok/>, <close-session/> ends the session.
// With digest="sha256" on <bulk> the bytes are checked end to end: a reply's filler is random
// and its last chunk carries <sha256> of every chunk before it; a request's content is hashed
// and the <ok/> reply carries <sha256> of it.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';

const BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
const HELLO =
  `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${BASE_NS}"><capabilities>` +
  '<capability>urn:ietf:params:netconf:base:1.0</capability><capability>urn:ietf:params:netconf:base:1.1</capability>' +
  `</capabilities><session-id>${process.pid}</session-id></hello>]]>]]>`;
const CHUNK = 1024 * 1024;
const FILLER = Buffer.alloc(CHUNK, 'x');
let randomFiller: Buffer | undefined;

/** Random text (so a dropped, doubled or swapped packet changes the digest), stamped with the chunk's index. */
function digestFiller(index: number): Buffer {
  randomFiller ??= Buffer.from(randomBytes((CHUNK * 3) / 4).toString('base64'));
  const chunk = Buffer.from(randomFiller);
  chunk.write(index.toString(16).padStart(16, '0'), 0, 'latin1');
  return chunk;
}

// stdout is a pipe: writeSync blocks until sshd takes the bytes, which is the back-pressure.
function out(data: Buffer | string): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      process.exit(0);
    }
  }
}

function chunk(text: string): void {
  out(`\n#${Buffer.byteLength(text)}\n${text}`);
}

function reply(messageId: string, prefix: string): void {
  const id = /message-id="([^"]*)"/.exec(prefix)?.[1] ?? messageId;
  const size = /<bulk[^>]*size="([0-9]+)"/.exec(prefix);
  if (/<close-session/.test(prefix)) {
    chunk(`<rpc-reply xmlns="${BASE_NS}" message-id="${id}"><ok/></rpc-reply>`);
    out('\n##\n');
    process.exit(0);
  }
  if (size && /<get[ >/]/.test(prefix)) {
    const digest = /<bulk[^>]*digest="sha256"/.test(prefix) ? createHash('sha256') : undefined;
    const head = `<rpc-reply xmlns="${BASE_NS}" message-id="${id}"><data><bulk xmlns="urn:bench">`;
    const tail = (digest ? `<sha256>${'0'.repeat(64)}</sha256>` : '') + '</bulk></data></rpc-reply>';
    let body = Math.max(0, Number(size[1]) - head.length - tail.length);
    chunk(head);
    digest?.update(head);
    const header = Buffer.from(`\n#${CHUNK}\n`);
    for (let index = 0; body > 0; index++) {
      const n = Math.min(CHUNK, body);
      const filler = digest ? digestFiller(index) : FILLER;
      out(n === CHUNK ? header : `\n#${n}\n`);
      out(n === CHUNK ? filler : filler.subarray(0, n));
      digest?.update(filler.subarray(0, n));
      body -= n;
    }
    chunk(digest ? tail.replace('0'.repeat(64), digest.digest('hex')) : tail);
  } else {
    const sha = requestDigest ? `<sha256>${requestDigest.digest('hex')}</sha256>` : '';
    chunk(`<rpc-reply xmlns="${BASE_NS}" message-id="${id}"><ok/>${sha}</rpc-reply>`);
  }
  requestDigest = undefined;
  out('\n##\n');
}

out(HELLO);
let pending: Buffer = Buffer.alloc(0);
let helloDone = false;
// chunked-framing reader: only the first 4 KiB of each message are kept (enough to decide)
let inChunk = 0;
let prefix = '';
// every request is hashed until its first 4 KiB show whether it asks for the digest
let requestDigest: Hash | undefined = createHash('sha256');
process.stdin.on('data', (data: Buffer) => {
  let buf: Buffer = pending.length ? Buffer.concat([pending, data]) : data;
  pending = Buffer.alloc(0);
  if (!helloDone) {
    const end = buf.indexOf(']]>]]>');
    if (end < 0) {
      pending = buf;
      return;
    }
    helloDone = true;
    buf = buf.subarray(end + 6);
  }
  let i = 0;
  while (i < buf.length) {
    if (inChunk > 0) {
      const n = Math.min(inChunk, buf.length - i);
      if (prefix.length < 4096) prefix += buf.toString('utf8', i, i + Math.min(n, 4096 - prefix.length));
      requestDigest?.update(buf.subarray(i, i + n));
      if (requestDigest && prefix.length >= 4096 && !/<bulk[^>]*digest="sha256"/.test(prefix)) requestDigest = undefined;
      inChunk -= n;
      i += n;
      continue;
    }
    const nl = buf.indexOf(10, i + 1);
    if (nl < 0) {
      pending = Buffer.from(buf.subarray(i));
      return;
    }
    const header = buf.toString('latin1', i, nl + 1);
    i = nl + 1;
    if (header === '\n##\n') {
      if (requestDigest && !/<bulk[^>]*digest="sha256"/.test(prefix)) requestDigest = undefined;
      reply('0', prefix);
      prefix = '';
      requestDigest = createHash('sha256');
    } else {
      const m = /^\n#([0-9]+)\n$/.exec(header);
      if (!m) process.exit(1);
      inChunk = Number(m[1]);
    }
  }
});
process.stdin.on('end', () => process.exit(0));
