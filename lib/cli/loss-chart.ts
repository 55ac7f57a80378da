// A loss-curve chart as a standalone SVG: training and validation loss against steps.
export interface LossPoint {
  step: number;
  loss?: number;
  valLoss?: number;
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function escape(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
}

export function lossChartSvg(points: LossPoint[], title = 'Loss'): string {
  const W = 720, H = 420, left = 64, right = 24, top = 44, bottom = 52;
  const pw = W - left - right, ph = H - top - bottom;
  const series = [
    { key: 'loss' as const, label: 'training loss', color: '#1f77b4' },
    { key: 'valLoss' as const, label: 'validation loss', color: '#d62728' },
  ];
  const values = points.flatMap((p) => [p.loss, p.valLoss]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const steps = points.map((p) => p.step);
  const x0 = 0, x1 = Math.max(1, ...steps);
  let y0 = values.length ? Math.min(...values) : 0, y1 = values.length ? Math.max(...values) : 1;
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const ys = niceStep(y1 - y0, 6);
  y0 = Math.floor(y0 / ys) * ys;
  y1 = Math.ceil(y1 / ys) * ys;
  const sx = (s: number): number => left + ((s - x0) / (x1 - x0)) * pw;
  const sy = (v: number): number => top + (1 - (v - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${escape(title)}</text>`);
  const xs = niceStep(x1 - x0, 8);
  for (let s = 0; s <= x1 + 1e-9; s += xs) {
    out.push(`<line x1="${sx(s).toFixed(1)}" y1="${top}" x2="${sx(s).toFixed(1)}" y2="${top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${sx(s).toFixed(1)}" y="${top + ph + 18}" text-anchor="middle">${+s.toFixed(6)}</text>`);
  }
  for (let v = y0; v <= y1 + 1e-9; v += ys) {
    out.push(`<line x1="${left}" y1="${sy(v).toFixed(1)}" x2="${left + pw}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${left - 8}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${+v.toFixed(4)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">step</text>`);
  out.push(`<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + ph / 2})">loss (nats per symbol)</text>`);
  series.forEach((s, i) => {
    const pts = points.filter((p) => typeof p[s.key] === 'number' && Number.isFinite(p[s.key] as number));
    if (pts.length) {
      const d = pts.map((p) => `${sx(p.step).toFixed(1)},${sy(p[s.key] as number).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${d}"/>`);
      for (const p of pts) out.push(`<circle cx="${sx(p.step).toFixed(1)}" cy="${sy(p[s.key] as number).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    }
    const lx = left + pw - 150, ly = top + 16 + i * 18;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 30}" y="${ly}">${s.label}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
