// The shapes of a container's record (container.json) and of the settings kept in it: types
// only, shared by every module of lxr/containers, so that none imports another for a type.
import type { SeccompProfile } from '../security/profile.js';

export type RestartPolicy = 'no' | 'on-failure' | 'always';

export interface PortMapping {
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface VolumeMount {
  /** absolute host path, or a volume name */
  source: string;
  destination: string;
  readonly: boolean;
  named: boolean;
  /** a new named volume starts empty instead of as a copy of the image's directory */
  nocopy?: boolean;
  /** --mount type=tmpfs: a new tmpfs (source unused) */
  tmpfs?: { size?: number; mode?: number };
}

/** What the user asked for at create: enough to build the spec again. */
export interface CreateSettings {
  image: string;
  command?: string[];
  entrypoint?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  network: string;
  ports: PortMapping[];
  volumes: VolumeMount[];
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  restart: RestartPolicy;
  tty: boolean;
  interactive: boolean;
  autoRemove: boolean;
  /** --privileged: every capability, no seccomp filter, no masked or read-only paths */
  privileged?: boolean;
  /** --security-opt seccomp=: "unconfined" or a profile file's path (unset: lxr's default profile) */
  seccomp?: string;
  /** the profile file's content as read at create (a later change of the file does not change the container) */
  seccompProfile?: SeccompProfile;
  /** --security-opt no-new-privileges[=true|false] (unset: lxr's default, true) */
  noNewPrivileges?: boolean;
  ide?: boolean;
  /** --ide-bind: the host address code-server is served on (default 127.0.0.1) */
  ideBind?: string;
  /** --ide: the host port code-server is published on, and its login password */
  idePort?: number;
  idePassword?: string;
  /** docker run's other flags (run-flags.ts) */
  flags?: RunFlags;
  /** --label/-l K=V (lxr/containers/labels.ts) */
  labels?: Record<string, string>;
}

export type ContainerStatus = 'created' | 'running' | 'exited';

export interface ContainerRecord {
  id: string;
  name: string;
  /** the reference as the user typed it, and the normalised one */
  image: string;
  imageRef: string;
  imageDigest: string;
  created: string;
  settings: CreateSettings;
  /** snapshot directories, bottom layer first */
  layers: string[];
  stopSignal?: string;
  status: ContainerStatus;
  pid?: number;
  /** pid + /proc start time of the process waiting on the init (monitor or foreground lxr) */
  monitorPid?: number;
  monitorStart?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  restartCount: number;
  /** set by `lxr stop`/`rm -f` so the restart policy does not bring it back */
  stopRequested?: boolean;
  ip?: string;
  netnsPath?: string;
}

/** --health-cmd, --health-interval, ... as given (durations in ms), or --no-healthcheck */
export interface HealthFlags {
  cmd?: string;
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
  none?: boolean;
}

/** A container whose record exists but cannot be read (torn write, full disk, hand edit). */
export interface BrokenRecord {
  id: string;
  /** the name, if the torn text still holds it */
  name?: string;
  file: string;
  reason: string;
  /** when the file was last written (ISO 8601) */
  modified: string;
}


export interface DeviceFlag {
  path: string;
  containerPath: string;
  access: string;
}

export interface UlimitFlag {
  name: string;
  soft: number;
  hard: number;
}

/** What these flags asked for, as kept in the record (CreateSettings.flags). */
export interface RunFlags {
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: { name: string; ip: string }[];
  shmSize?: number;
  ulimits?: UlimitFlag[];
  memorySwap?: number;
  memoryReservation?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  oomScoreAdj?: number;
  devices?: DeviceFlag[];
  tmpfs?: { path: string; options: string[] }[];
  pid?: string;
  ipc?: string;
  uts?: string;
  sysctl?: Record<string, string>;
  init?: boolean;
  groupAdd?: string[];
  stopSignal?: string;
  stopTimeout?: number;
  platform?: string;
  /** --expose: PORT/PROTO the container listens on (beside the image's EXPOSE) */
  expose?: string[];
  /** -P: publish every exposed port on a free host port */
  publishAll?: boolean;
  /** --health-*, --no-healthcheck as given */
  health?: HealthFlags;
  /** the check in force (the image's HEALTHCHECK with the flags on top), resolved at create */
  healthcheck?: HealthConfig;
  /** --log-driver, --log-opt */
  log?: LogOptions;
  /** --cidfile: the id is written there (refused if it exists); removed if the create fails */
  cidfile?: string;
}


/** The check the container runs, resolved at create (the image's HEALTHCHECK, flags on top). */
export interface HealthConfig {
  /** docker's Test: ["CMD", ...] or ["CMD-SHELL", "..."] */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

export interface HealthLog {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLog[];
}

/** docker's image config Healthcheck (durations in nanoseconds). */
export interface ImageHealthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}


export interface LogOptions {
  /** "json-file" (lxr's file, the default), "k8s-file" (the same) or "none" */
  driver: string;
  maxSize?: number;
  maxFile?: number;
}
