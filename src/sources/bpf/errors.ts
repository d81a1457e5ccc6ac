/** Something the user must fix; the message says what. */
export class BpfError extends Error {}

export const CAPABILITY_HELP =
  'run it as root, or grant the capabilities CAP_BPF and CAP_PERFMON (and CAP_SYS_PTRACE to trace a process of ' +
  'another container or user; some kernels create uprobes only with CAP_SYS_ADMIN); in Kubernetes run the ' +
  'container as root with securityContext.capabilities.add: [SYS_ADMIN] (see deploy/kubernetes/bpf)';

/** errno of a uprobe the kernel would not create for lack of privilege. */
export const EPERM = 1;
export const EACCES = 13;

export const UPROBE_PERMISSION_HELP =
  'the kernel refused to create the uprobe: this kernel wants CAP_SYS_ADMIN for uprobes (CAP_BPF and CAP_PERFMON ' +
  'are not enough), or root outside a container; in Kubernetes: securityContext.capabilities.add: [SYS_ADMIN]';
