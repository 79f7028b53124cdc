// The cgroup v2 controllers (admin-guide/cgroup-v2.rst "Controllers"): a unified key's
// prefix is only taken for a controller when it is one of these.
export const V2_CONTROLLERS = ['cpu', 'cpuset', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc', 'perf_event'];
