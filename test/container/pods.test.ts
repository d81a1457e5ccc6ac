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
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] } };
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

async function play(name: string, objects: K8sObject[]): Promise<string> {
  const file = join(repoRoot, 'dist', `pod-${name}.yaml`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, toYaml(objects));
  await podman(['kube', 'down', file]);
  const r = await podman(['kube', 'play', file]);
  assert.equal(r.code, 0, `podman kube play ${name}:\n${r.stderr}`);
  return file;
}

/** SIGTERM to every container (as Kubernetes does on a rollout), waited for. */
async function down(file: string): Promise<void> {
  const r = await podman(['kube', 'down', file], undefined, 120_000);
  assert.equal(r.code, 0, `podman kube down:\n${r.stderr}`);
}

describe('container image and Kubernetes pods (podman)', { skip: skipContainers }, () => {
  let receiver: OtlpReceiver;
  let gateway: string;

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
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(image.Config.Labels['org.opencontainers.image.version'], version);
    assert.equal(image.Config.Labels['org.opencontainers.image.licenses'], 'MIT');
    assert.ok(image.Config.Labels['org.opencontainers.image.source']);
    assert.ok(image.Config.Env.includes('H2O_OTEL_HEALTH_PORT=8888'), image.Config.Env.join(' '));
    process.stderr.write(`# image ${IMAGE}: ${(image.Size / 1e6).toFixed(0)} MB\n`);
    const tools = await podman(['run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', 'id -u; command -v pahole; ls /usr/lib/*/libbpf.so.1']);
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

  test('socket mode: H2O (stand-in) and the sidecar share the h2olog socket; spans arrive; kube down flushes', async () => {
    const expected = (await replayInto(testPipeline({ request: [], response: [], sanitize: [], maxValueLength: 64 }), readFileSync(join(repoRoot, CAPTURE)))).length;
    const objects = loadManifests('socket', ['h2o-config.yaml', 'h2o-otel-config.yaml', 'deployment.yaml']);
    useTestImage(objects);
    const h2o = container(objects, 'h2o');
    mountRepo(objects, h2o);
    h2o.command = ['node', '/repo/dist/harness/h2olog-standin.js', '/run/h2olog/h2olog.sock', `/repo/${CAPTURE}`];
    h2o.args = [];
    // Spans wait in the queue until SIGTERM: what arrives after kube down was flushed by it.
    await createSecret(SECRET, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://${gateway}:${new URL(receiver.httpUrl).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100000',
    });
    const before = receiver.spans.length;
    const file = await play('socket', objects);
    const ip = await podIp('h2o-pod-0');
    let ready = await http(`http://${ip}:8888/readyz`);
    for (let i = 0; i < 120 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      ready = await http(`http://${ip}:8888/readyz`);
    }
    assert.equal(ready.status, 200, `readyz: ${ready.body}\n${await logs('h2o-pod-0-h2o-otel')}`);
    assert.match(ready.body, /"status":"ready"/);
    assert.equal((await http(`http://${ip}:8888/healthz`)).status, 200);
    for (let i = 0; i < 60 && !/SENT \d+/.test(await logs('h2o-pod-0-h2o')); i++)
      await new Promise((r) => setTimeout(r, 500));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(receiver.spans.length, before, 'spans wait in the queue until SIGTERM');
    const sidecarLog = await logs('h2o-pod-0-h2o-otel');
    await down(file);
    await receiver.waitForSpans(before + expected, 20_000);
    const spans = receiver.spans.slice(before);
    assert.equal(spans.length, expected, sidecarLog);
    assert.ok(spans.every((s) => s.resource['service.name'] === 'h2o'));
  });
});
