// A library's entry point hands out some functions whose modules load on the first call, so
// that a caller who never needs them (lxr ps never creates a container) never pays for them.

/** `name` of the module that `load` imports, loaded on the first call: lazy(() => import('./m.js'), 'f'). */
export function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): M[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never {
  return (async (...a: unknown[]) => ((await load())[name] as (...x: unknown[]) => unknown)(...a)) as never;
}
