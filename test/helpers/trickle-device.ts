// A call-home device in its own process (so the test process's CPU time is the gateway's
// alone) that sends its <hello> in pieces of a given size, one SSH channel write each.
// Usage: node trickle-device.js '{"port":N,"hostKey":PEM,"username":U,"password":P,"helloBytes":N,"pieceBytes":N}'
// With "tls": {"cert":PEM,"key":PEM} it is a TLS call-home device instead (one TLS record per piece).
import net from 'node:net';
import tls from 'node:tls';
import ssh2 from 'ssh2';

export interface TrickleOptions {
  port: number;
  hostKey: string;
  username: string;
  password: string;
  helloBytes: number;
  pieceBytes: number;
  tls?: { cert: string; key: string };
}

/** A well-formed device <hello> of about `bytes` bytes (many capabilities), with its ]]>]]>. */
export function bigHello(bytes: number): string {
  const head =
    '<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>';
  const tail = '</capabilities><session-id>9</session-id></hello>]]>]]>';
  const parts: string[] = [head];
  let size = head.length + tail.length;
  for (let i = 0; size < bytes; i++) {
    const cap = `<capability>urn:example:yang:module-${i}?module=module-${i}&amp;revision=2024-01-01</capability>`;
    parts.push(cap);
    size += cap.length;
  }
  parts.push(tail);
  return parts.join('');
}

function runTls(o: TrickleOptions, hello: Buffer): void {
  const socket = net.connect(o.port, '127.0.0.1', () => {
    // RFC 8071 §4.2: the device that opened the TCP connection is the TLS server on it.
    const secure = new tls.TLSSocket(socket, { isServer: true, cert: o.tls!.cert, key: o.tls!.key });
    secure.on('error', () => process.exit(0));
    secure.on('data', () => {});
    // Waiting for each write keeps every piece in a TLS record of its own.
    const trickle = async (): Promise<void> => {
      for (let i = 0; i < hello.length; i += o.pieceBytes) {
        await new Promise<void>((resolve) => secure.write(hello.subarray(i, i + o.pieceBytes), () => resolve()));
      }
    };
    secure.once('secure', () => void trickle());
  });
  socket.on('error', () => process.exit(0));
  socket.on('close', () => process.exit(0));
}

function run(o: TrickleOptions): void {
  const hello = Buffer.from(bigHello(o.helloBytes));
  if (o.tls) return runTls(o, hello);
  const server = new ssh2.Server({ hostKeys: [o.hostKey] }, (conn) => {
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => (ctx.method === 'password' && ctx.username === o.username && ctx.password === o.password ? ctx.accept() : ctx.reject(['password'])));
    conn.on('ready', () =>
      conn.on('session', (accept) =>
        accept().on('subsystem', (acceptSub) => {
          const channel = acceptSub();
          channel.on('data', () => {});
          for (let i = 0; i < hello.length; i += o.pieceBytes) channel.write(hello.subarray(i, i + o.pieceBytes));
        }),
      ),
    );
  });
  const socket = net.connect(o.port, '127.0.0.1', () => server.injectSocket(socket));
  socket.on('error', () => process.exit(0));
  socket.on('close', () => process.exit(0));
}

if (process.argv[2]) run(JSON.parse(process.argv[2]) as TrickleOptions);
