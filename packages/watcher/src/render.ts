/**
 * How `taskmesh-watch` shows events to a person: on a terminal, one live progress bar per running
 * task (done/total, rate, ETA) under the state and log lines; elsewhere, plain lines, with at most
 * one progress line per task a second so a busy task does not flood a log file.
 */
import type { TaskEvent } from '@taskmesh/common';

interface Bar {
  key: string;
  label: string;
  done: number;
  total: number | null;
  message: string | null;
  /** First progress seen: rate = (done - done0) / elapsed. */
  t0: number;
  done0: number;
  lastPrint: number;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

function short(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

function time(ts: number): string {
  return new Date(ts).toISOString().slice(11, 23);
}

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class HumanRenderer {
  private readonly bars = new Map<string, Bar>();
  private drawn = 0;
  private redrawTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
  ) {}

  event(e: TaskEvent): void {
    const key = `${e.task}`;
    const label = `${short(e.task)} ${e.name} #${e.attempt}`;
    if (e.type === 'progress') return this.progress(key, label, e);
    let line: string;
    if (e.type === 'state') {
      const extra = e.state === 'END' ? ` ${JSON.stringify(e.result ?? null)}` : e.error ? ` ${String(e.error)}` : '';
      line = `${e.state}${extra}`;
      if (e.state !== 'RUNNING') this.bars.delete(key);
    } else if (e.type === 'log') line = `[${String(e.level)}] ${String(e.message)}`;
    else if (e.type === 'event') line = `event ${String(e.event)} ${JSON.stringify(e.data ?? null)}`;
    else line = `(${String(e.lost)} events not available)`;
    this.print(`${time(e.ts)} ${label} ${line}`);
  }

  /** Leaves the terminal clean. */
  finish(): void {
    if (this.redrawTimer) clearTimeout(this.redrawTimer);
    if (this.tty) this.redraw();
  }

  private progress(key: string, label: string, e: TaskEvent): void {
    const done = Number(e.done);
    const total = typeof e.total === 'number' ? e.total : null;
    let bar = this.bars.get(key);
    if (!bar || bar.label !== label) {
      bar = { key, label, done, total, message: null, t0: e.ts, done0: done, lastPrint: 0 };
      this.bars.set(key, bar);
    }
    bar.done = done;
    bar.total = total;
    bar.message = typeof e.message === 'string' ? e.message : bar.message;
    if (this.tty) {
      this.redrawTimer ??= setTimeout(() => {
        this.redrawTimer = undefined;
        this.redraw();
      }, REDRAW_MS);
      return;
    }
    const now = Date.now();
    if (now - bar.lastPrint < 1000 && !(total !== null && done >= total)) return;
    bar.lastPrint = now;
    this.print(`${time(e.ts)} ${label} progress ${this.figures(bar, e.ts)}`);
  }

  private figures(bar: Bar, now: number): string {
    const elapsed = (now - bar.t0) / 1000;
    const rate = elapsed > 0 ? (bar.done - bar.done0) / elapsed : 0;
    const parts = [bar.total !== null ? `${bar.done}/${bar.total}` : `${bar.done}`];
    if (bar.total !== null && bar.total > 0) parts.unshift(`${Math.floor((100 * bar.done) / bar.total)}%`);
    if (rate > 0) parts.push(`${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`);
    if (rate > 0 && bar.total !== null) parts.push(`ETA ${duration((bar.total - bar.done) / rate)}`);
    if (bar.message) parts.push(bar.message);
    return parts.join(' ');
  }

  private line(bar: Bar): string {
    const frac = bar.total ? Math.max(0, Math.min(1, bar.done / bar.total)) : 0;
    const filled = Math.round(frac * BAR_WIDTH);
    const gauge = bar.total ? `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]` : '[ ... ]';
    const text = `${bar.label} ${gauge} ${this.figures(bar, Date.now())}`;
    const cols = this.out.columns || 100;
    return text.length > cols - 1 ? text.slice(0, cols - 1) : text;
  }

  /** Prints a line above the bars. */
  private print(text: string): void {
    if (!this.tty) {
      this.out.write(`${text}\n`);
      return;
    }
    this.clearBars();
    this.out.write(`${text}\n`);
    this.drawBars();
  }

  private redraw(): void {
    this.clearBars();
    this.drawBars();
  }

  private clearBars(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private drawBars(): void {
    for (const bar of this.bars.values()) this.out.write(`${this.line(bar)}\n`);
    this.drawn = this.bars.size;
  }
}
