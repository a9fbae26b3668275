// Container HEALTHCHECK: exit 0 when the gateway's GET /healthz answers 200, else 1.
// Slim images carry no curl or wget; node's fetch does the job. Reads the same
// CHGW_HTTP_HOST / CHGW_HTTP_PORT variables as the gateway (defaults 0.0.0.0 / 9834).
const rawHost = process.env.CHGW_HTTP_HOST || '0.0.0.0';
// A wildcard listen address is reached on loopback.
const host = rawHost === '0.0.0.0' ? '127.0.0.1' : rawHost === '::' ? '::1' : rawHost;
const port = Number(process.env.CHGW_HTTP_PORT || 9834);
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  if (res.status !== 200) {
    console.error(`healthcheck: ${url} answered ${res.status}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  console.error(`healthcheck: ${url}: ${err?.cause?.code ?? err?.message ?? err}`);
  process.exit(1);
}
