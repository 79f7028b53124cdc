// The one wait of the tests: poll `fn` every `every` ms until it gives a truthy value (a
// promise is waited for: its value, not the promise, says whether the condition holds), for
// at most `ms`. Resolves with that value, or undefined when the time is up.
export async function until<T>(fn: () => T | Promise<T>, ms = 10000, every = 20): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, every));
  }
}
