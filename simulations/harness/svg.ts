// A dependency-free line plot: hosts reached vs time, simulated against the model.

export interface Series { name: string, color: string, points: Array<[number, number]> }

export function linePlot (title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 720
  const H = 420
  const L = 70
  const R = 20
  const T = 40
  const B = 50
  const xs = series.flatMap(s => s.points.map(p => p[0]))
  const ys = series.flatMap(s => s.points.map(p => p[1]))
  const xMax = Math.max(1, ...xs)
  const yMax = Math.max(1, ...ys)
  const x = (v: number): string => (L + (W - L - R) * v / xMax).toFixed(1)
  const y = (v: number): string => (H - B - (H - T - B) * v / yMax).toFixed(1)
  const ticks = [0, 0.25, 0.5, 0.75, 1]
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...ticks.map(f => `<text x="${x(f * xMax)}" y="${H - B + 16}" text-anchor="middle">${Math.round(f * xMax)}</text>`),
    ...ticks.map(f => `<text x="${L - 6}" y="${y(f * yMax)}" text-anchor="end" dominant-baseline="middle">${Math.round(f * yMax)}</text>`),
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${xLabel}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${yLabel}</text>`
  ]
  series.forEach((s, i) => {
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map(p => `${x(p[0])},${y(p[1])}`).join(' ')}"/>`)
    out.push(`<text x="${L + 12}" y="${T + 16 + 16 * i}" fill="${s.color}">${s.name}</text>`)
  })
  out.push('</svg>')
  return out.join('\n')
}
