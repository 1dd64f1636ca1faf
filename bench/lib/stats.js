'use strict';

function sorted(xs) {
  return xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in 0..100) of numbers. */
function percentile(xs, p) {
  const s = sorted(xs);
  if (s.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(s.length, rank) - 1];
}

function median(xs) {
  const s = sorted(xs);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** median and range of one figure over the rounds. */
function summary(xs) {
  const s = sorted(xs);
  return { median: median(s), min: s.length ? s[0] : null, max: s.length ? s[s.length - 1] : null, n: s.length, values: xs };
}

module.exports = { percentile, median, summary };
