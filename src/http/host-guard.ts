// DNS rebinding guard for the API: a browser lured to a hostile page can be made to send
// requests to the gateway under a name the attacker controls (Host: evil.example), and to
// read the answers. The API answers only Host headers that are IP literals (a browser that
// addresses the gateway by IP is on the gateway's own origin), loopback names, or names
// the operator listed in http.allowedHosts. /metrics, /healthz and /readyz are not guarded:
// probes and scrapers use whatever address they were given, and those answers hold nothing
// a device address could be learnt from.
import net from 'node:net';

/** The host part of a Host header value: no port, no IPv6 brackets, lower case. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.lastIndexOf(':');
  return (colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h).replace(/\.$/, '');
}

/**
 * A predicate on the Host header (undefined when absent, e.g. HTTP/1.0). `allowed` holds
 * exact names or `*.suffix` patterns.
 */
export function hostGuard(allowed: readonly string[]): (host: string | undefined) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of allowed) {
    const name = raw.trim().toLowerCase().replace(/\.$/, '');
    if (name === '') continue;
    if (name.startsWith('*.')) suffixes.push(name.slice(1));
    else exact.add(hostName(name));
  }
  return (host) => {
    if (host === undefined) return true; // not a browser: browsers always send Host
    const name = hostName(host);
    if (net.isIP(name) !== 0) return true;
    if (name === 'localhost' || name.endsWith('.localhost')) return true;
    return exact.has(name) || suffixes.some((s) => name.endsWith(s) && name.length > s.length);
  };
}
