// Shared by the security tests: the approve call as an API client makes it.
import type { TestGateway } from '../helpers/gateway.js';

export async function approveViaApi(g: TestGateway, token: string, fingerprint: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${g.httpPort}/api/pending/${encodeURIComponent(fingerprint)}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}
