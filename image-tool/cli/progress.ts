// Pull progress for the CLI: a bar per layer plus a total on a TTY, one line per
// finished layer otherwise, nothing with --quiet. Always written to stderr.
import type { PullProgress } from '../registry/pull.js';
import { humanSize } from '../../common/cli/format.js';


const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

export interface ProgressRenderer {
  onProgress(e: PullProgress): void;
  finish(): void;
}

export function progressRenderer(mode: 'tty' | 'lines' | 'none', out: NodeJS.WritableStream = process.stderr): ProgressRenderer {
  if (mode === 'none') return { onProgress() {}, finish() {} };
  if (mode === 'lines') {
    return {
      onProgress(e) {
        if (e.type === 'resolved') out.write(`Resolved ${e.reference} to ${e.manifestDigest} (${e.layers.length} layers)\n`);
        else if (e.type === 'layer-done') out.write(`Layer ${short(e.digest)} ${e.cached ? 'already present' : 'downloaded'} (${humanSize(e.size)})\n`);
        else if (e.type === 'layer-reset') out.write(`Layer ${short(e.digest)} restarting (the registry ignored the Range request)\n`);
      },
      finish() {},
    };
  }
  const layers = new Map<string, { size: number; done: number; state: 'waiting' | 'downloading' | 'done' | 'cached' }>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const width = 30;
  const bar = (done: number, size: number) => {
    const f = size > 0 ? Math.min(1, done / size) : 1;
    const n = Math.round(f * width);
    return `[${'='.repeat(Math.max(0, n - 1))}${n > 0 ? (f < 1 ? '>' : '=') : ''}${' '.repeat(width - n)}]`;
  };
  const draw = () => {
    timer = undefined;
    const lines: string[] = [];
    let total = 0;
    let done = 0;
    for (const [d, l] of layers) {
      total += l.size;
      done += l.state === 'cached' ? l.size : l.done;
      const status = l.state === 'cached' ? 'Already exists' : l.state === 'done' ? 'Done' : l.state === 'waiting' ? 'Waiting' : `${bar(l.done, l.size)} ${humanSize(l.done)}/${humanSize(l.size)}`;
      lines.push(`${short(d)}: ${status}`);
    }
    lines.push(`Total ${bar(done, total)} ${humanSize(done)}/${humanSize(total)}`);
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const l of lines) s += `\x1b[2K${l}\n`;
    out.write(s);
    drawn = lines.length;
  };
  const schedule = () => {
    timer ??= setTimeout(draw, 100);
  };
  return {
    onProgress(e) {
      if (e.type === 'resolved') {
        out.write(`Pulling ${e.reference} (${e.manifestDigest})\n`);
        for (const l of e.layers) layers.set(l.digest, { size: l.size, done: 0, state: 'waiting' });
      } else {
        const l = layers.get(e.digest);
        if (!l) return;
        if (e.type === 'layer-start') l.state = 'downloading';
        else if (e.type === 'layer-bytes') l.done = e.done;
        else if (e.type === 'layer-reset') l.done = 0;
        else if (e.type === 'layer-done') l.state = e.cached ? 'cached' : 'done';
      }
      schedule();
    },
    finish() {
      if (timer) clearTimeout(timer);
      if (layers.size) draw();
    },
  };
}
