/** Something the user must fix; the message says what. */
export class BpfError extends Error {}

export const CAPABILITY_HELP =
  'run it as root, or grant the capabilities CAP_BPF and CAP_PERFMON (and CAP_SYS_PTRACE to trace a process of ' +
  'another container or user); in Kubernetes: securityContext.capabilities.add: [BPF, PERFMON, SYS_PTRACE]';
