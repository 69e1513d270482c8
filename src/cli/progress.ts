// The copy progress bar: `progressLine` is pure (the state of a transfer in, one line out) and
// tested; `ProgressBar` redraws it on a terminal at most every 100 ms, so a fast copy does not
// spend its time writing to the terminal.

import { formatBytes, formatClock, formatRate } from './format.js';

export interface ProgressState {
  /** What is being copied, e.g. the file name; shortened to fit. */
  readonly label: string;
  readonly doneBytes: number;
  /** Null when the size is not known in advance (then there is no percent and no ETA). */
  readonly totalBytes: number | null;
  readonly elapsedMilliseconds: number;
  /** The terminal's width; the bar takes what the numbers leave. */
  readonly widthColumns: number;
}

/** E.g. `big.iso [#######.......]  45%  9.00 MiB/20.0 MiB  12.3 MiB/s  ETA 0:01`, never wider than widthColumns. */
export function progressLine(state: ProgressState): string {
  const seconds = state.elapsedMilliseconds / 1000;
  const rate = seconds > 0 ? state.doneBytes / seconds : 0;
  const known = state.totalBytes !== null;
  const total = state.totalBytes ?? 0;
  const fraction = known ? (total === 0 ? 1 : Math.min(1, state.doneBytes / total)) : 0;
  const percent = known ? `${String(Math.floor(fraction * 100)).padStart(3)}%` : '';
  const amounts = known ? `${formatBytes(state.doneBytes)}/${formatBytes(total)}` : formatBytes(state.doneBytes);
  const remaining = known && rate > 0 ? (total - state.doneBytes) / rate : NaN;
  const eta = known ? `ETA ${formatClock(state.doneBytes >= total ? 0 : remaining)}` : '';
  const numbers = [percent, amounts, rate > 0 ? formatRate(rate) : '-- B/s', eta].filter((part) => part !== '').join('  ');
  const room = state.widthColumns - numbers.length - 2;
  // The label gets up to a third of what is left, the bar the rest; a narrow terminal drops both.
  const labelWidth = Math.min(state.label.length, Math.max(0, Math.floor(room / 3)));
  const label = state.label.length > labelWidth ? (labelWidth > 1 ? `…${state.label.slice(state.label.length - labelWidth + 1)}` : '') : state.label;
  const barWidth = known ? room - label.length - (label === '' ? 0 : 1) - 2 : 0;
  const bar = barWidth >= 5 ? `[${'#'.repeat(Math.round(fraction * barWidth)).padEnd(barWidth, '.')}]` : '';
  const line = [label, bar].filter((part) => part !== '').join(' ');
  return (line === '' ? numbers : `${line}  ${numbers}`).slice(0, Math.max(0, state.widthColumns));
}

export interface TerminalLike {
  write(text: string): unknown;
  readonly columns?: number;
}

/** Redraws `progressLine` in place on a terminal. */
export class ProgressBar {
  private lastDrawMilliseconds = -Infinity;
  private readonly startMilliseconds: number;
  private label = '';
  private doneBytes = 0;

  constructor(
    private readonly terminal: TerminalLike,
    private readonly totalBytes: number | null,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startMilliseconds = now();
  }

  update(label: string, doneBytes: number): void {
    this.label = label;
    this.doneBytes = doneBytes;
    const now = this.now();
    if (now - this.lastDrawMilliseconds < 100) return;
    this.lastDrawMilliseconds = now;
    this.draw(now);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    this.draw(this.now());
    this.terminal.write('\n');
  }

  private draw(now: number): void {
    const line = progressLine({ label: this.label, doneBytes: this.doneBytes, totalBytes: this.totalBytes, elapsedMilliseconds: now - this.startMilliseconds, widthColumns: (this.terminal.columns || 80) - 1 });
    // \r returns to the start of the line; ESC[K clears what a longer earlier line left behind.
    this.terminal.write(`\r${line}\x1b[K`);
  }
}
