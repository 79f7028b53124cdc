// A library's entry point hands out some functions whose modules load on the first call, so
// that a caller who never needs them (lxr ps never creates a container) never pays for them.
import { createRequire } from 'node:module';

/** `name` of the module that `load` imports, loaded on the first call: lazy(() => import('./m.js'), 'f'). */
export function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): M[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never {
  return (async (...a: unknown[]) => ((await load())[name] as (...x: unknown[]) => unknown)(...a)) as never;
}

/**
 * A Node built-in module, loaded on first use: for modules that sit on a light command's
 * import path (lxr ps) but need node:tty or node:child_process only in one function.
 */
let req: NodeJS.Require | undefined;
export function builtin<T>(name: 'node:tty' | 'node:child_process'): T {
  req ??= createRequire(import.meta.url);
  return req(name) as T;
}

/** Several functions of one module, each loaded on its first call (see lazy). */
export function lazyAll<M, K extends keyof M>(load: () => Promise<M>, names: readonly K[]): { [P in K]: ReturnType<typeof lazy<M, P>> } {
  return Object.fromEntries(names.map((n) => [n, lazy(load, n)])) as never;
}
