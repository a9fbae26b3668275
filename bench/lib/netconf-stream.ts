// A tiny NETCONF server for bulk benchmarks, run by OpenSSH's sshd as the `netconf`
// subsystem (stdin/stdout). netconfd cannot produce or swallow a 1 GiB message at any useful
// speed, so this one only frames bytes (RFC 6242): a <get> whose filter names
// <bulk size="N"/> is answered with an N-byte reply, any other request is read to its end and
// answered <ok/>, <close-session/> ends the session.
import { writeSync } from 'node:fs';

const BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
const HELLO =
  `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${BASE_NS}"><capabilities>` +
  '<capability>urn:ietf:params:netconf:base:1.0</capability><capability>urn:ietf:params:netconf:base:1.1</capability>' +
  `</capabilities><session-id>${process.pid}</session-id></hello>]]>]]>`;
const CHUNK = 1024 * 1024;
const FILLER = Buffer.alloc(CHUNK, 'x');

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
  if (size && /<get[ >\/]/.test(prefix)) {
    const head = `<rpc-reply xmlns="${BASE_NS}" message-id="${id}"><data><bulk xmlns="urn:bench">`;
    const tail = '</bulk></data></rpc-reply>';
    let body = Math.max(0, Number(size[1]) - head.length - tail.length);
    chunk(head);
    const header = Buffer.from(`\n#${CHUNK}\n`);
    while (body >= CHUNK) {
      out(header);
      out(FILLER);
      body -= CHUNK;
    }
    if (body > 0) {
      out(`\n#${body}\n`);
      out(FILLER.subarray(0, body));
    }
    chunk(tail);
  } else {
    chunk(`<rpc-reply xmlns="${BASE_NS}" message-id="${id}"><ok/></rpc-reply>`);
  }
  out('\n##\n');
}

out(HELLO);
let pending: Buffer = Buffer.alloc(0);
let helloDone = false;
// chunked-framing reader: only the first 4 KiB of each message are kept (enough to decide)
let inChunk = 0;
let prefix = '';
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
      reply('0', prefix);
      prefix = '';
    } else {
      const m = /^\n#([0-9]+)\n$/.exec(header);
      if (!m) process.exit(1);
      inChunk = Number(m[1]);
    }
  }
});
process.stdin.on('end', () => process.exit(0));
