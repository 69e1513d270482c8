// The copy progress bar. Goal: the line shows bytes, percent, rate and ETA, fits the terminal
// (the bar shrinks, then the label, then both go), handles an unknown total and an empty file, and
// the drawer redraws at most every 100 ms and ends with a newline. Method: progressLine over fixed
// states; ProgressBar with a fake clock and a recording terminal.

import t from 'tap';
import { ProgressBar, progressLine } from '../../src/cli/progress.js';

const mebibyte = 1024 * 1024;

t.test('a line with bytes, percent, rate and ETA', async (t) => {
  const line = progressLine({ label: 'big.iso', doneBytes: 5 * mebibyte, totalBytes: 20 * mebibyte, elapsedMilliseconds: 1000, widthColumns: 80 });
  t.equal(line, 'big.iso [######.................]   25%  5.00 MiB/20.0 MiB  5.00 MiB/s  ETA 0:03');
  t.equal(line.length, 80, 'the bar fills the width');
  t.equal(progressLine({ label: 'big.iso', doneBytes: 20 * mebibyte, totalBytes: 20 * mebibyte, elapsedMilliseconds: 2000, widthColumns: 80 }).match(/100%.*ETA 0:00$/)?.length, 1, 'done: 100% and ETA 0:00');
  t.match(progressLine({ label: 'x', doneBytes: 0, totalBytes: 10, elapsedMilliseconds: 0, widthColumns: 80 }), /  0%  0 B\/10 B  -- B\/s  ETA --:--$/, 'at the start: no rate, no ETA');
  t.match(progressLine({ label: 'empty', doneBytes: 0, totalBytes: 0, elapsedMilliseconds: 5, widthColumns: 80 }), /100%/, 'an empty file is complete');
});

t.test('an unknown total: bytes and rate only', async (t) => {
  t.equal(progressLine({ label: 'stdin', doneBytes: 2048, totalBytes: null, elapsedMilliseconds: 2000, widthColumns: 80 }), 'stdin  2.00 KiB  1.00 KiB/s');
});

t.test('narrow terminals: the label shortens, the bar goes, the line never overflows', async (t) => {
  const label = 'backups/2026/photos/a-very-long-file-name.jpeg';
  for (const width of [120, 80, 60, 40, 20, 5, 0]) {
    const line = progressLine({ label, doneBytes: mebibyte, totalBytes: 4 * mebibyte, elapsedMilliseconds: 1000, widthColumns: width });
    t.ok(line.length <= width, `${width} columns: ${JSON.stringify(line)}`);
  }
  t.match(progressLine({ label, doneBytes: mebibyte, totalBytes: 4 * mebibyte, elapsedMilliseconds: 1000, widthColumns: 80 }), /^…[^ ]*jpeg \[#+\.+\]/, 'a long label keeps its end');
  t.equal(progressLine({ label, doneBytes: mebibyte, totalBytes: 4 * mebibyte, elapsedMilliseconds: 1000, widthColumns: 40 }), ' 25%  1.00 MiB/4.00 MiB  1.00 MiB/s  ETA', 'too narrow: numbers only, cut');
});

t.test('the drawer redraws at most every 100 ms and ends the line', async (t) => {
  let now = 0;
  const written: string[] = [];
  const bar = new ProgressBar({ write: (text: string) => written.push(text), columns: 60 }, 1000, () => now);
  bar.update('f', 100);
  now = 50;
  bar.update('f', 200);
  now = 150;
  bar.update('f', 500);
  now = 200;
  bar.finish();
  t.equal(written.length, 4, 'draws at 0 and 150 ms, then the final state and a newline');
  t.match(written[0], /^\r.* 10% .*\x1b\[K$/);
  t.match(written[1], / 50% /);
  t.match(written[2], / 50% /, 'the final state');
  t.equal(written[3], '\n');
  const unsized: string[] = [];
  new ProgressBar({ write: (text: string) => unsized.push(text), columns: 0 }, 10, () => 0).finish();
  t.equal(unsized[0]?.replace(/^\r|\x1b\[K$/g, '').length, 79, 'a terminal reporting 0 columns is drawn 80 wide');
});
