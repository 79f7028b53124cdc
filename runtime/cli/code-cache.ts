// Tell the CLI loader (scripts/loader.cjs) which command this process runs: the first run of
// a command whose code the V8 code cache does not hold yet writes the cache again at exit, so
// that later runs of it start with that code compiled. Outside the loader (tests, a library
// user) there is nobody to tell, and this does nothing.
const LEARN = Symbol.for('lxr.codeCache.learn');

export function learnCommand(command: unknown): void {
  const learn = (globalThis as Record<symbol, unknown>)[LEARN];
  if (typeof learn === 'function' && typeof command === 'string' && /^[\w-]+$/.test(command)) learn(command);
}
