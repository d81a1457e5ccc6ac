// Real containers for the tests: podman with this repository's containers.conf, the image built from the real
// Containerfile (on a base image made locally by scripts/container-base.sh: no registry is reachable here), and the
// Kubernetes manifests of deploy/kubernetes played with `podman kube play`.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from './cli.js';

/**
 * Container tests need root, podman and runc (scripts/system-deps.sh installs them). They fail when podman cannot
 * run a container, so a broken CI machine is noticed; `H2O_OTEL_SKIP_CONTAINER_TESTS=1` skips them on purpose.
 */
export const skipContainers: string | false =
  process.env.H2O_OTEL_SKIP_CONTAINER_TESTS === '1' ? 'H2O_OTEL_SKIP_CONTAINER_TESTS=1 is set' : false;

/** runc, cgroupfs, no default ulimits: what works on this machine kind (crun refuses its hybrid cgroups). */
export const CONTAINERS_CONF = join(repoRoot, 'test', 'container', 'containers.conf');
export const IMAGE = 'localhost/h2o-otel:test';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with CONTAINERS_CONF set; never rejects (the caller asserts on the code). */
export function run(cmd: string, args: readonly string[], stdin?: string, timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      {
        env: { ...process.env, CONTAINERS_CONF },
        maxBuffer: 64 * 1024 * 1024,
        timeout: timeoutMs,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

export const podman = (args: readonly string[], stdin?: string, timeoutMs?: number): Promise<Run> =>
  run('podman', args, stdin, timeoutMs);

async function must(r: Promise<Run>, what: string): Promise<string> {
  const { code, stdout, stderr } = await r;
  if (code !== 0)
    throw new Error(`${what} failed (exit ${code}):\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`);
  return stdout;
}

let built: Promise<void> | undefined;

/** The base image (once per machine), then the image from the Containerfile (once per test process). */
export function buildImage(): Promise<void> {
  built ??= (async () => {
    await must(run('sh', [join(repoRoot, 'scripts', 'container-base.sh')]), 'scripts/container-base.sh');
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
      .version;
    await must(
      podman([
        'build',
        '--pull=never',
        '-t',
        IMAGE,
        '--build-arg',
        `VERSION=${version}`,
        '-f',
        'Containerfile',
        repoRoot,
      ]),
      'podman build',
    );
  })();
  return built;
}

/** The network `podman kube play` puts pods on (podman 4), made here if no pod made it yet. */
const KUBE_NETWORK = 'podman-default-kube-network';

/** The address a played pod reaches the host at: the gateway of the kube network. */
export async function hostGateway(): Promise<string> {
  if ((await podman(['network', 'exists', KUBE_NETWORK])).code !== 0)
    await must(podman(['network', 'create', KUBE_NETWORK]), `podman network create ${KUBE_NETWORK}`);
  const out = await must(podman(['network', 'inspect', KUBE_NETWORK]), 'podman network inspect');
  const nets = JSON.parse(out) as { subnets?: { gateway?: string }[] }[];
  const gw = nets[0]?.subnets?.[0]?.gateway;
  if (gw === undefined) throw new Error(`no gateway in ${KUBE_NETWORK}: ${out}`);
  return gw;
}

/** A Kubernetes object, loosely typed: the tests patch manifests before playing them. */
export type K8sObject = Record<string, unknown> & { kind: string; metadata: { name: string } };

/** Every document of the YAML files `names` in deploy/kubernetes/`dir`. */
export function loadManifests(dir: string, names: readonly string[]): K8sObject[] {
  const out: K8sObject[] = [];
  for (const name of names) {
    const text = readFileSync(join(repoRoot, 'deploy', 'kubernetes', dir, name), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${dir}/${name}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as K8sObject | null;
      if (value !== null) out.push(value);
    }
  }
  return out;
}

export function toYaml(objects: readonly K8sObject[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

/**
 * A Secret as podman 4.3's `kube play` reads one for `envFrom`/`secretKeyRef`: a podman secret holding a JSON map of
 * base64 values (it cannot take a Secret document from the played file).
 */
export async function createSecret(name: string, data: Record<string, string>): Promise<void> {
  await podman(['secret', 'rm', name]);
  const encoded: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) encoded[k] = Buffer.from(v).toString('base64');
  // A file, not stdin: node gives children socket pairs, which podman does not take for `-`.
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-secret-'));
  try {
    const file = join(dir, 'secret.json');
    writeFileSync(file, JSON.stringify(encoded), { mode: 0o600 });
    await must(podman(['secret', 'create', name, file]), `podman secret create ${name}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pod's IP on podman's default network. */
export async function podIp(pod: string): Promise<string> {
  const infra = (
    await must(podman(['pod', 'inspect', pod, '--format', '{{.InfraContainerID}}']), 'pod inspect')
  ).trim();
  const ip = (
    await must(podman(['inspect', infra, '--format', '{{.NetworkSettings.IPAddress}}']), 'inspect infra')
  ).trim();
  if (ip !== '') return ip;
  const nets = await must(
    podman(['inspect', infra, '--format', '{{json .NetworkSettings.Networks}}']),
    'inspect',
  );
  const first = Object.values(JSON.parse(nets) as Record<string, { IPAddress: string }>)[0];
  if (first === undefined || first.IPAddress === '') throw new Error(`pod ${pod} has no IP: ${nets}`);
  return first.IPAddress;
}

export const logs = async (container: string): Promise<string> => {
  const r = await podman(['logs', container]);
  return r.stdout + r.stderr;
};
