// One start-up cost of yargs 17 that the lxr CLIs do not need: before running any command it
// lays out the complete help text and keeps it (usage.cacheHelpMessage), so that it could
// print it if the command's promise rejects. lxr's CLIs report a failure with one line, never
// with the help, so that work (5-7 ms of a ~35 ms command) is skipped. --help is unaffected:
// it lays the text out when asked. If a yargs release lacks these internals, nothing changes.
import type { Argv } from 'yargs';

interface UsageInternals {
  cacheHelpMessage?: () => void;
}

export function skipHelpCache<T>(y: Argv<T>): Argv<T> {
  const internal = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => UsageInternals } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
  return y;
}
