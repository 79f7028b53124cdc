// `lxr exec`: a new process in a running container, through the runtime library's exec.
import { LxrError } from '../../runtime/errors.js';
import type { LxrContext } from '../context.js';

export interface ExecOptions {
  command: string[];
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
}

export async function execCommand(_ctx: LxrContext, ref: string, _o: ExecOptions): Promise<number> {
  throw new LxrError(`exec in ${ref}: the runtime library has no exec yet in this build`);
}
