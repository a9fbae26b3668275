// The benchmark's one picture, written as plain SVG: gateway RSS against device count
// (left) and RPC latency percentiles (right).
import type { LatencyResult } from '../scenarios/latency.js';
import type { ScalePoint } from '../scenarios/scale.js';

const W = 900;
const H = 360;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function renderFigure(scale: ScalePoint[], latency: LatencyResult | undefined): string {
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  // left: RSS vs devices
  const L = { x: 60, y: 40, w: 340, h: 260 };
  parts.push(`<text x="${L.x}" y="24" font-size="14">Gateway RSS vs connected devices</text>`);
  if (scale.length > 0) {
    const maxX = Math.max(...scale.map((p) => p.devices));
    const maxY = Math.max(...scale.map((p) => p.rssAfterMiB)) * 1.15;
    const px = (x: number): number => L.x + (x / maxX) * L.w;
    const py = (y: number): number => L.y + L.h - (y / maxY) * L.h;
    parts.push(axes(L, 'devices', 'RSS (MiB)'));
    for (let i = 0; i <= 4; i++) {
      const v = (maxY * i) / 4;
      parts.push(`<text x="${L.x - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>`);
    }
    const pts = [{ devices: 0, rssAfterMiB: scale[0]!.rssBeforeMiB }, ...scale.map((p) => ({ devices: p.devices, rssAfterMiB: p.rssAfterMiB }))];
    parts.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${pts.map((p) => `${px(p.devices).toFixed(1)},${py(p.rssAfterMiB).toFixed(1)}`).join(' ')}"/>`);
    for (const p of scale) {
      parts.push(`<circle cx="${px(p.devices)}" cy="${py(p.rssAfterMiB)}" r="4" fill="#1f77b4"/>`);
      parts.push(`<text x="${px(p.devices)}" y="${py(p.rssAfterMiB) - 10}" text-anchor="middle">${p.rssAfterMiB} MiB (${p.rssPerDeviceKiB} KiB/dev)</text>`);
      parts.push(`<text x="${px(p.devices)}" y="${L.y + L.h + 16}" text-anchor="middle">${p.devices}</text>`);
    }
  }
  // right: latency percentiles
  const R = { x: 500, y: 40, w: 370, h: 260 };
  parts.push(`<text x="${R.x}" y="24" font-size="14">RPC latency (ms): p50 / p90 / p99</text>`);
  const series: Array<[string, { p50: number; p90: number; p99: number }, string]> = [];
  if (latency) {
    series.push(['direct', latency.direct, '#2ca02c']);
    series.push(['gateway', latency.gateway, '#1f77b4']);
  }
  for (const p of scale) series.push([`${p.devices} dev.`, p.rpc, '#ff7f0e']);
  if (series.length > 0) {
    const maxY = Math.max(...series.map((s) => s[1].p99)) * 1.15 || 1;
    const py = (y: number): number => R.y + R.h - (y / maxY) * R.h;
    parts.push(axes(R, '', 'ms'));
    for (let i = 0; i <= 4; i++) {
      const v = (maxY * i) / 4;
      parts.push(`<text x="${R.x - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text>`);
    }
    const group = R.w / series.length;
    const bw = Math.min(22, (group - 10) / 3);
    series.forEach(([name, pc, color], i) => {
      const gx = R.x + i * group + (group - 3 * bw) / 2;
      (['p50', 'p90', 'p99'] as const).forEach((k, j) => {
        const y = py(pc[k]);
        parts.push(`<rect x="${gx + j * bw}" y="${y}" width="${bw - 2}" height="${R.y + R.h - y}" fill="${color}" opacity="${0.45 + 0.25 * j}"/>`);
        parts.push(`<text x="${gx + j * bw + bw / 2 - 1}" y="${y - 3}" text-anchor="middle" font-size="9">${pc[k]}</text>`);
      });
      parts.push(`<text x="${gx + 1.5 * bw}" y="${R.y + R.h + 16}" text-anchor="middle">${esc(name)}</text>`);
    });
    parts.push(`<text x="${R.x}" y="${H - 20}" font-size="10">direct / gateway: one session, small RPCs one at a time; N dev.: random devices while N are connected</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function axes(b: { x: number; y: number; w: number; h: number }, xLabel: string, yLabel: string): string {
  return (
    `<line x1="${b.x}" y1="${b.y + b.h}" x2="${b.x + b.w}" y2="${b.y + b.h}" stroke="black"/>` +
    `<line x1="${b.x}" y1="${b.y}" x2="${b.x}" y2="${b.y + b.h}" stroke="black"/>` +
    `<text x="${b.x + b.w / 2}" y="${b.y + b.h + 34}" text-anchor="middle">${xLabel}</text>` +
    `<text x="${b.x - 45}" y="${b.y + b.h / 2}" transform="rotate(-90 ${b.x - 45} ${b.y + b.h / 2})" text-anchor="middle">${yLabel}</text>`
  );
}
