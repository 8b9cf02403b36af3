// @ts-check
// The live server counters: polled once a second from the server the page is on, each with a
// sparkline of its last minute.
import { $, fmt, state } from './state.js';

const HISTORY = 60;

/** @param {string} id @param {Array<number | null>} values */
function spark(id, values) {
  const canvas = /** @type {HTMLCanvasElement} */ ($(id));
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const numbers = values.filter(/** @returns {v is number} */ (v) => typeof v === 'number');
  const range = $(`${id}-range`);
  if (numbers.length < 2) {
    range.textContent = '';
    return;
  }
  const max = Math.max(...numbers, 1);
  const min = Math.min(...numbers);
  range.textContent = `${fmt(min)}–${fmt(max)} over ${numbers.length} s`;
  ctx.strokeStyle = '#2557d6';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let drawing = false;
  values.forEach((v, i) => {
    if (typeof v !== 'number') {
      drawing = false;
      return;
    }
    const x = (i / (HISTORY - 1)) * width;
    const y = height - 2 - (v / max) * (height - 4);
    if (!drawing) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
    drawing = true;
  });
  ctx.stroke();
}

/** @param {string} key @param {number | null} value */
function push(key, value) {
  const s = /** @type {Array<number | null>} */ (state.series[key]);
  s.push(value);
  if (s.length > HISTORY) s.shift();
}

export async function pollStats() {
  if (!state.live) return; // stale until connected again: the marks say so, the values stay as they were
  try {
    const res = await fetch(`http://${state.address}/api/stats`, { signal: AbortSignal.timeout(1500) });
    const s = await res.json();
    const now = performance.now();
    const last = state.lastStats;
    const rate = last ? Math.max(0, ((s.deliveries - last.s.deliveries) * 1000) / (now - last.at)) : 0;
    // How much the version batches, over the last second: 1 for v1 and v2, more for v3 under load;
    // none when nothing was written.
    const writes = last ? s.writes - last.s.writes : 0;
    const batch = last && writes > 0 ? Math.round(((s.deliveries - last.s.deliveries) / writes) * 10) / 10 : null;
    state.lastStats = { s, at: now };
    const values = { connections: s.connections, rate: Math.round(rate), batch, deliveries: s.deliveries, drops: s.drops, queue: s.queueDepth, loop: Math.round(s.loopDelayMs.p99 * 10) / 10 };
    for (const [key, v] of Object.entries(values)) {
      push(key, v);
      $(`stat-${key}`).textContent = v === null ? '–' : v.toLocaleString('en-US');
      spark(`chart-${key}`, state.series[key] ?? []);
    }
  } catch {
    // the server is too busy to answer: the gap in the charts says so
  }
}
