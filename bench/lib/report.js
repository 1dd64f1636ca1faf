'use strict';
/**
 * Turning trials into figures: median and range per figure and system, the ratio of the subject
 * (the first column, taskmesh) to the best peer, the printed tables and the target lines.
 */
const { summary } = require('./stats');

const FMT = {
  int: (v) => Math.round(v).toLocaleString('en-US'),
  dec1: (v) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1)),
  dec2: (v) => v.toFixed(2),
  dec3: (v) => v.toFixed(3),
  mib: (v) => (v / 1048576).toFixed(1),
};

function fmt(v, kind) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return (FMT[kind] || FMT.dec1)(v);
}

/** Per figure and system: { median, min, max, n }. */
function summarize(c) {
  const out = {};
  for (const f of c.figures) {
    out[f.key] = {};
    for (const s of c.systems) {
      const vals = (c.trials[s.key] || []).map((t) => t[f.key]).filter((v) => typeof v === 'number' && Number.isFinite(v));
      out[f.key][s.key] = summary(vals);
    }
  }
  return out;
}

/**
 * The subject's median against the reference: the best peer (highest or lowest median, by the
 * figure's direction) or the system named by `case.reference`.
 */
function ratio(c, sums, f) {
  const subject = c.systems[0];
  const sm = sums[f.key][subject.key].median;
  let refs = c.reference ? c.systems.filter((s) => s.key === c.reference) : c.systems.filter((s) => s.peer);
  refs = refs.filter((s) => sums[f.key][s.key].median !== null);
  if (sm === null || refs.length === 0) return null;
  const best = refs.reduce((a, b) => {
    const am = sums[f.key][a.key].median;
    const bm = sums[f.key][b.key].median;
    return f.better === 'higher' ? (bm > am ? b : a) : bm < am ? b : a;
  });
  const bm = sums[f.key][best.key].median;
  return { value: bm === 0 ? (sm === 0 ? 1 : Infinity) : sm / bm, against: best.label, againstKey: best.key, reference: bm };
}

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** One case as a text table: figure | each system "median (min–max)" | ratio. */
function table(c) {
  const sums = summarize(c);
  const rows = [];
  const head = ['figure', ...c.systems.map((s) => s.label), c.reference ? `vs ${c.systems.find((s) => s.key === c.reference)?.label}` : 'vs fastest peer'];
  rows.push(head);
  for (const f of c.figures) {
    if (c.systems.every((s) => sums[f.key][s.key].n === 0)) continue;
    const cells = [`${f.label} ${f.better === 'higher' ? '↑' : '↓'}`];
    for (const s of c.systems) {
      const m = sums[f.key][s.key];
      if (m.n === 0) cells.push('–');
      else if (m.n === 1 || m.min === m.max) cells.push(fmt(m.median, f.fmt));
      else cells.push(`${fmt(m.median, f.fmt)} (${fmt(m.min, f.fmt)}–${fmt(m.max, f.fmt)})`);
    }
    const r = ratio(c, sums, f);
    cells.push(r ? `${r.value === Infinity ? '∞' : r.value.toFixed(2)}× ${c.reference ? '' : r.against}`.trim() : '–');
    rows.push(cells);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const lines = rows.map(
    (r) =>
      '  ' +
      r
        .map((cell, i) => pad(cell, widths[i]))
        .join('   ')
        .trimEnd(),
  );
  lines.splice(1, 0, '  ' + widths.map((w) => '-'.repeat(w)).join('   '));
  for (const s of c.systems) {
    for (const e of c.errors[s.key] || []) lines.push(`  ! ${s.label}: ${e}`);
    for (const t of c.trials[s.key] || []) if (t.note) lines.push(`  note ${s.label}: ${t.note}`);
  }
  return lines.join('\n');
}

function getCase(results, caseId) {
  for (const w of Object.values(results)) if (w.cases && w.cases[caseId]) return w.cases[caseId];
  return null;
}

/** "subject / best peer >= min" (higher-is-better figures) as a target line. */
function ratioTarget(results, caseId, figKey, min, text) {
  const c = getCase(results, caseId);
  if (!c) return { text, status: 'not run' };
  const sums = summarize(c);
  const f = c.figures.find((x) => x.key === figKey);
  const r = ratio(c, sums, f);
  if (!r) return { text, status: 'not run', detail: 'no figures' };
  const met = f.better === 'higher' ? r.value >= min : r.value <= min;
  return {
    text,
    status: met ? 'met' : 'not met',
    detail: `${fmt(sums[figKey][c.systems[0].key].median, f.fmt)} vs ${fmt(r.reference, f.fmt)} (${r.against}): ${r.value.toFixed(2)}×`,
  };
}

/** "subject median <= limit" (absolute). */
function limitTarget(results, caseId, figKey, limit, text, systemKey) {
  const c = getCase(results, caseId);
  if (!c) return { text, status: 'not run' };
  const sums = summarize(c);
  const f = c.figures.find((x) => x.key === figKey);
  const m = sums[figKey][systemKey || c.systems[0].key];
  if (!m || m.n === 0) return { text, status: 'not run', detail: 'no figures' };
  return {
    text,
    status: m.median <= limit ? 'met' : 'not met',
    detail: `median ${fmt(m.median, f.fmt)} (range ${fmt(m.min, f.fmt)}–${fmt(m.max, f.fmt)}), limit ${fmt(limit, f.fmt)}`,
  };
}

module.exports = { summarize, ratio, table, ratioTarget, limitTarget, getCase, fmt };
