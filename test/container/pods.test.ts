// The image built from the real Containerfile, and both Kubernetes manifests of deploy/kubernetes played by podman
// with a stand-in H2O in the pod: spans reach an OTLP receiver outside the pod, readiness turns ready, and
// `podman kube down` (SIGTERM) flushes every span. The BPF pod runs with exactly the capabilities its manifest lists
// and fails with a clear message without one of them. Run alone: `node --test dist/test/container/`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../../harness/cli.js';
import {
  buildImage,
  createSecret,
  hostGateway,
  IMAGE,
  loadManifests,
  logs,
  podIp,
  podman,
  skipContainers,
  toYaml,
} from '../../harness/containers.js';
import type { K8sObject } from '../../harness/containers.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver } from '../../harness/otlp-receiver.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';
import { buildUsdtFixture } from '../../harness/usdt-fixture.js';

const CAPTURE = join('examples', 'captures', 'all-protocols.jsonl');
const SECRET = 'h2o-otel-otlp';

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: { runAsUser?: number; capabilities?: { add?: string[]; drop?: string[] } };
}

function podSpec(objects: K8sObject[]): { containers: Container[]; volumes: Record<string, unknown>[] } {
  const deployment = objects.find((o) => o.kind === 'Deployment');
  assert.ok(deployment, 'a Deployment in the manifests');
  const spec = (deployment as unknown as { spec: { template: { spec: unknown } } }).spec.template.spec;
  return spec as { containers: Container[]; volumes: Record<string, unknown>[] };
}

function container(objects: K8sObject[], name: string): Container {
  const c = podSpec(objects).containers.find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
}

/** The repository, read-only at /repo in the pod: the stand-ins (dist/harness, the USDT fixture) live there. */
function mountRepo(objects: K8sObject[], c: Container): void {
  podSpec(objects).volumes.push({ name: 'repo', hostPath: { path: repoRoot, type: 'Directory' } });
  (c.volumeMounts ??= []).push({ name: 'repo', mountPath: '/repo', readOnly: true });
}

/** Both images point at the image under test. */
function useTestImage(objects: K8sObject[]): void {
  for (const c of podSpec(objects).containers) c.image = IMAGE;
}

async function http(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: (err as Error).message };
  }
}

/** /readyz of the pod at `ip` once it answers 200, or its last answer after a minute. */
async function readyz(ip: string): Promise<{ status: number; body: string }> {
  let ready = await http(`http://${ip}:8888/readyz`);
  for (let i = 0; i < 120 && ready.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 500));
    ready = await http(`http://${ip}:8888/readyz`);
  }
  return ready;
}

async function play(name: string, objects: K8sObject[]): Promise<string> {
  const file = join(repoRoot, 'dist', `pod-${name}.yaml`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, toYaml(objects));
  await podman(['kube', 'down', file]);
  const r = await podman(['kube', 'play', file]);
  assert.equal(r.code, 0, `podman kube play ${name}:\n${r.stderr}`);
  return file;
}

/**
 * SIGTERM to the sidecar, as the kubelet sends it on a rollout: the pod's network stays up until every container has
 * exited, so the flush can reach the collector. (podman 4.3's `kube down` stops the pod's network container at the
 * same time as the others, so an export on the way out finds no network there; the README says so.)
 */
async function stopSidecar(name: string): Promise<void> {
  const r = await podman(['stop', '--time', '30', name], undefined, 60_000);
  assert.equal(r.code, 0, `podman stop ${name}:\n${r.stderr}`);
  const exit = await podman(['inspect', name, '--format', '{{.State.ExitCode}}']);
  assert.equal(exit.stdout.trim(), '0', `${name} exit code; its log:\n${await logs(name)}`);
}

async function down(file: string): Promise<void> {
  const r = await podman(['kube', 'down', file], undefined, 120_000);
  assert.equal(r.code, 0, `podman kube down:\n${r.stderr}`);
}

describe('container image and Kubernetes pods (podman)', { skip: skipContainers }, () => {
  let receiver: OtlpReceiver;
  let gateway: string;

  /** The collector for the sidecar; spans wait in its queue until SIGTERM, so what arrives after it was flushed by it. */
  const collectorSecret = (): Promise<void> =>
    createSecret(SECRET, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://${gateway}:${new URL(receiver.httpUrl).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100000',
    });

  before(async () => {
    const info = await podman(['info', '--format', '{{.Host.OCIRuntime.Name}}']);
    assert.equal(
      info.code,
      0,
      `podman is not usable here (H2O_OTEL_SKIP_CONTAINER_TESTS=1 skips these tests):\n${info.stderr}`,
    );
    await buildImage();
    receiver = await startOtlpReceiver('0.0.0.0');
    gateway = await hostGateway();
  });

  after(async () => {
    await receiver?.stop();
    await podman(['secret', 'rm', SECRET]);
  });

  test('the image: non-root, exec-form entrypoint, OCI labels, health on by default, BPF tools present', async () => {
    const inspect = await podman(['image', 'inspect', IMAGE]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const [image] = JSON.parse(inspect.stdout) as {
      Size: number;
      Config: { User: string; Entrypoint: string[]; Env: string[]; Labels: Record<string, string> };
    }[];
    assert.ok(image);
    assert.equal(image.Config.User, '10001:10001');
    assert.deepEqual(image.Config.Entrypoint, ['node', '/app/dist/src/cli/main.js']);
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
      .version;
    assert.equal(image.Config.Labels['org.opencontainers.image.version'], version);
    assert.equal(image.Config.Labels['org.opencontainers.image.licenses'], 'MIT');
    assert.ok(image.Config.Labels['org.opencontainers.image.source']);
    assert.ok(image.Config.Env.includes('H2O_OTEL_HEALTH_PORT=8888'), image.Config.Env.join(' '));
    process.stderr.write(`# image ${IMAGE}: ${(image.Size / 1e6).toFixed(0)} MB\n`);
    const tools = await podman([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      IMAGE,
      '-c',
      'id -u; command -v pahole; ls /usr/lib/*/libbpf.so.1',
    ]);
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /^10001\n\/usr\/bin\/pahole\n.*libbpf\.so\.1/);
    // The whole CLI runs in it: a capture through stdin, spans on stdout.
    const replay = await podman(
      ['run', '--rm', '-i', IMAGE, '--replay', '-', '--exporter', 'console'],
      readFileSync(join(repoRoot, CAPTURE), 'utf8'),
    );
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /GET/);
  });

  test('socket mode: H2O (stand-in) and the sidecar share the h2olog socket; spans arrive; SIGTERM flushes them all', async () => {
    const expected = (
      await replayInto(
        testPipeline({ request: [], response: [], sanitize: [], maxValueLength: 64 }),
        readFileSync(join(repoRoot, CAPTURE)),
      )
    ).length;
    const objects = loadManifests('socket', ['h2o-config.yaml', 'h2o-otel-config.yaml', 'deployment.yaml']);
    useTestImage(objects);
    const h2o = container(objects, 'h2o');
    mountRepo(objects, h2o);
    h2o.command = [
      'node',
      '/repo/dist/harness/h2olog-standin.js',
      '/run/h2olog/h2olog.sock',
      `/repo/${CAPTURE}`,
    ];
    h2o.args = [];
    await collectorSecret();
    const before = receiver.spans.length;
    const file = await play('socket', objects);
    const ip = await podIp('h2o-pod-0');
    const ready = await readyz(ip);
    assert.equal(ready.status, 200, `readyz: ${ready.body}\n${await logs('h2o-pod-0-h2o-otel')}`);
    assert.match(ready.body, /"status":"ready"/);
    assert.equal((await http(`http://${ip}:8888/healthz`)).status, 200);
    for (let i = 0; i < 60 && !/SENT \d+/.test(await logs('h2o-pod-0-h2o')); i++)
      await new Promise((r) => setTimeout(r, 500));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(receiver.spans.length, before, 'spans wait in the queue until SIGTERM');
    await stopSidecar('h2o-pod-0-h2o-otel');
    const sidecarLog = await logs('h2o-pod-0-h2o-otel');
    await down(file);
    assert.match(sidecarLog, /SIGTERM: flushing/);
    await receiver.waitForSpans(before + expected, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\nthe sidecar's log:\n${sidecarLog}`);
    });
    const spans = receiver.spans.slice(before);
    assert.equal(spans.length, expected, sidecarLog);
    assert.ok(spans.every((s) => s.resource['service.name'] === 'h2o'));
  });

  /** The BPF manifests, the USDT fixture (with h2o_dispose_request and debug info) in place of H2O's binary. */
  function bpfPod(capabilities: string[]): K8sObject[] {
    const objects = loadManifests('bpf', ['h2o-config.yaml', 'h2o-otel-config.yaml', 'deployment.yaml']);
    useTestImage(objects);
    const h2o = container(objects, 'h2o');
    mountRepo(objects, h2o);
    // H2O's image starts as root (H2O drops privileges itself); the test image's default user is h2o-otel's.
    h2o.securityContext = { runAsUser: 0 };
    // The manifest's own copy-once-then-exec command, with the fixture's path and arguments.
    h2o.command = h2o.command!.map((a) =>
      a
        .replace('/usr/local/bin/h2o', '/repo/dist/usdt-fixture/h2o-usdt-fixture')
        .replace('-c /etc/h2o/h2o.conf', '--port 8080'),
    );
    container(objects, 'h2o-otel').securityContext!.capabilities!.add = capabilities;
    return objects;
  }

  test('BPF mode: the request probe in a sidecar with exactly the listed capabilities; SIGTERM flushes', async () => {
    await buildUsdtFixture();
    const objects = bpfPod(['SYS_ADMIN']);
    const listed = loadManifests('bpf', ['deployment.yaml']);
    assert.deepEqual(container(listed, 'h2o-otel').securityContext?.capabilities?.add, ['SYS_ADMIN']);
    await collectorSecret();
    const before = receiver.spans.length;
    const file = await play('bpf', objects);
    const sidecar = 'h2o-bpf-pod-0-h2o-otel';
    for (let i = 0; i < 120 && !/attached 1 uprobe/.test(await logs(sidecar)); i++)
      await new Promise((r) => setTimeout(r, 500));
    assert.match(await logs(sidecar), /attached 1 uprobe at h2o_dispose_request/);
    const ip = await podIp('h2o-bpf-pod-0');
    const ready = await readyz(ip);
    assert.equal(ready.status, 200, ready.body);
    // Requests from inside the pod: the fixture listens on loopback only.
    const n = 20;
    const load = await podman([
      'exec',
      sidecar,
      'node',
      '-e',
      `(async () => { for (let i = 0; i < ${n}; i++) await (await fetch('http://127.0.0.1:8080/pod-' + i, { headers: { connection: 'close' } })).text(); })()`,
    ]);
    assert.equal(load.code, 0, load.stderr);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(receiver.spans.length, before, 'spans wait in the queue until SIGTERM');
    await stopSidecar(sidecar);
    await down(file);
    const served = (): number =>
      receiver.spans.slice(before).filter((s) => String(s.attributes['url.path']).startsWith('/pod-')).length;
    for (let i = 0; i < 40 && served() < n; i++) await new Promise((r) => setTimeout(r, 250));
    assert.equal(served(), n);
  });

  test('BPF mode without its capability: the sidecar says what to grant', async () => {
    const file = await play('bpf-nocap', bpfPod([]));
    const sidecar = 'h2o-bpf-pod-0-h2o-otel';
    try {
      for (let i = 0; i < 60 && !/needs CAP_|refused/.test(await logs(sidecar)); i++)
        await new Promise((r) => setTimeout(r, 500));
      const log = await logs(sidecar);
      assert.match(log, /attaching BPF probes needs CAP_BPF and CAP_PERFMON/);
      assert.match(log, /SYS_ADMIN/);
    } finally {
      await down(file);
    }
  });
});
