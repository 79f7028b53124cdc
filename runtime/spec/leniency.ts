// Every place where lxr-runtime accepts a config.json that the runtime-spec schema
// (oci-spec/schemas) refuses, with the engine that needs it. Nothing else is relaxed:
// the schema check itself is unchanged, it only sees a copy of the config in which each
// value listed here is replaced by the schema-valid value that stands for it.
// Add a leniency here, never by filtering validator errors elsewhere.

export interface Leniency {
  /** the field, as error messages name it */
  field: string;
  /** what the schema allows */
  schema: string;
  /** what lxr accepts in addition */
  accepts: string;
  /** who writes it, and which runtimes accept it */
  needs: string;
  /** replace the lenient value (if present) in the copy the schema sees */
  standIn(config: Record<string, unknown>): void;
}

const RECURSIVE_PROPAGATION: Record<string, string> = {
  rprivate: 'private', rshared: 'shared', rslave: 'slave', runbindable: 'unbindable',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export const LENIENCIES: Leniency[] = [
  {
    field: 'linux.rootfsPropagation',
    schema: '"private", "shared", "slave", "unbindable"',
    accepts: '"rprivate", "rshared", "rslave", "runbindable" (the recursive forms, as mount(8) names them)',
    needs: "containerd's CRI plugin writes \"rslave\" for a pod with a HostToContainer mount (and \"rshared\" for Bidirectional); runc and crun accept all four",
    standIn(config) {
      const linux = config.linux;
      if (!isObject(linux)) return;
      const v = linux.rootfsPropagation;
      if (typeof v === 'string' && v in RECURSIVE_PROPAGATION) linux.rootfsPropagation = RECURSIVE_PROPAGATION[v];
    },
  },
];

/**
 * The config as the schema should see it: a copy with every accepted leniency replaced
 * by its schema-valid stand-in. The original is returned unchanged when nothing applies.
 */
export function forSchema(config: unknown): unknown {
  if (!isObject(config)) return config;
  const copy = structuredClone(config);
  for (const l of LENIENCIES) l.standIn(copy);
  return copy;
}
