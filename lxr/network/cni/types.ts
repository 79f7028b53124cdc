// CNI data types (SPEC.md sections 1 and 5), as far as lxr uses them.
import { LxrError } from '../../../common/errors.js';

export const CNI_VERSION = '1.1.0';
/** Versions lxr's plugins speak. Results of 0.x versions are not produced: configs must say 1.0.0 or later. */
export const SUPPORTED_VERSIONS = ['1.0.0', '1.1.0'];

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

export interface CniErrorResult {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/** A plugin configuration object as a plugin receives it on stdin (request configuration). */
export interface PluginConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: { type: string; [k: string]: unknown };
  dns?: CniDns;
  runtimeConfig?: { portMappings?: PortMapping[]; [k: string]: unknown };
  prevResult?: CniResult;
  capabilities?: Record<string, boolean>;
  'cni.dev/valid-attachments'?: { containerID: string; ifname: string }[];
  [k: string]: unknown;
}

/** A network configuration list (a .conflist file). */
export interface NetworkConfList {
  cniVersion: string;
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: { type: string; capabilities?: Record<string, boolean>; [k: string]: unknown }[];
  [k: string]: unknown;
}

/** Well-known error codes (SPEC.md "Error"). */
export const ERR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgain: 11,
  notAvailable: 50,
  limitedConnectivity: 51,
  /** lxr: a published host port is already taken */
  portInUse: 100,
  /** lxr: the address pool is exhausted */
  poolExhausted: 101,
  /** lxr: a failure of ip/iptables or the kernel */
  system: 102,
} as const;

export class CniError extends LxrError {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
