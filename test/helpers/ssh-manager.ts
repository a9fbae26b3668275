// A minimal NETCONF/SSH manager built on ssh2's Client, for northbound paths that need
// byte-level control (malformed framing, exact payloads). Real managers are in test/e2e.
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

export interface ManagerSession {
  client: ssh2.Client;
  channel: ClientChannel;
  /** Everything received on the channel so far. */
  received(): Buffer;
  stderr(): string;
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  closed: Promise<{ code: number | null }>;
}

export function connectManager(port: number, username: string, auth: { password?: string; privateKey?: string | Buffer }): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username, ...auth, readyTimeout: 10_000 });
  });
}

export async function openNetconf(client: ssh2.Client): Promise<ManagerSession> {
  let exitCode: number | null = null;
  const channel = await new Promise<ClientChannel>((resolve, reject) =>
    client.subsys('netconf', (err, ch) => {
      if (err) return reject(err);
      // Listen at once: a refusal's exit-status can arrive in the same read as the
      // subsystem reply, before an `await` would let us attach the listener.
      ch.on('exit', (code: number | null) => (exitCode = code));
      resolve(ch);
    }),
  );
  const chunks: Buffer[] = [];
  let errText = '';
  const waiters = new Set<() => void>();
  channel.on('data', (c: Buffer) => {
    chunks.push(c);
    for (const w of waiters) w();
  });
  channel.stderr.on('data', (c: Buffer) => (errText += c.toString()));
  const closed = new Promise<{ code: number | null }>((resolve) => channel.once('close', () => resolve({ code: exitCode })));
  const received = () => Buffer.concat(chunks);
  return {
    client,
    channel,
    received,
    stderr: () => errText,
    closed,
    waitFor(text: string, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (received().includes(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`"${text}" not received within ${timeoutMs} ms; got ${received().length} bytes`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

export const CLIENT_HELLO_11 =
  '<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>' +
  '<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>';

/** One message in RFC 6242 §4.2 chunked framing. */
export function chunked(xml: string): string {
  return `\n#${Buffer.byteLength(xml)}\n${xml}\n##\n`;
}
