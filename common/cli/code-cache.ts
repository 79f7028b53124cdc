// Tell the CLI loader (scripts/loader.cjs) which command this process runs: the first run of
// a command writes that command's own V8 code cache at exit, so that later runs of it start
// with its code compiled. The loader decides which names it takes. Outside the loader (tests,
// a library user) there is nobody to tell, and this does nothing.
const LEARN = Symbol.for('lxr.codeCache.learn');

export function learnCommand(command: unknown): void {
  const learn = (globalThis as Record<symbol, unknown>)[LEARN];
  if (typeof learn === 'function' && typeof command === 'string') learn(command);
}
