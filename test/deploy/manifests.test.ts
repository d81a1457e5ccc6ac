// The Kubernetes manifests of deploy/kubernetes, offline: every document against the Kubernetes API schemas
// (kubernetes-models, which validates with the upstream OpenAPI definitions), each kustomization's resources
// present, h2o-otel's config files read by h2o-otel's own parser, and the security settings the README promises.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { configValues } from '../../src/cli/config-file.js';
import { OPTION_TABLE } from '../../src/cli/option-table.js';
import { repoRoot } from '../../harness/cli.js';

const ROOT = join(repoRoot, 'deploy', 'kubernetes');
const MODES = ['socket', 'bpf'] as const;

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: unknown;
}

function docs(path: string): Doc[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], path);
    return d.toJS() as Doc;
  });
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'v1 ConfigMap': ConfigMap,
  'v1 Secret': Secret,
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? yamlFiles(join(dir, e.name))
      : e.name.endsWith('.yaml') && e.name !== 'kustomization.yaml'
        ? [join(dir, e.name)]
        : [],
  );
}

test('every manifest validates against the Kubernetes schemas', () => {
  const files = yamlFiles(ROOT);
  assert.ok(files.length >= 7, files.join(' '));
  for (const file of files) {
    for (const doc of docs(file)) {
      const Model = MODELS[`${doc.apiVersion} ${doc.kind}`];
      assert.ok(Model, `${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
      assert.doesNotThrow(
        () => new Model(doc as never).validate(),
        `${file}: ${doc.kind} ${doc.metadata.name}`,
      );
    }
  }
  // The check can fail: a wrong type is refused.
  const broken = docs(join(ROOT, 'socket', 'deployment.yaml'))[0]!;
  (broken.spec as { replicas: unknown }).replicas = 'one';
  assert.throws(() => new Deployment(broken as never).validate(), /replicas must be integer/);
});

test("each kustomization lists its directory's manifests, all present", () => {
  for (const mode of MODES) {
    const k = docs(join(ROOT, mode, 'kustomization.yaml'))[0] as unknown as {
      kind: string;
      resources: string[];
    };
    assert.equal(k.kind, 'Kustomization');
    const present = readdirSync(join(ROOT, mode)).filter((f) => f !== 'kustomization.yaml');
    assert.deepEqual([...k.resources].sort(), present.sort(), mode);
  }
});

test("h2o-otel's config files in the ConfigMaps are valid for h2o-otel itself", () => {
  for (const mode of MODES) {
    const cm = docs(join(ROOT, mode, 'h2o-otel-config.yaml'))[0]!;
    const text = cm.data?.['config.yaml'];
    assert.ok(text !== undefined, mode);
    assert.doesNotThrow(() => configValues(text, `${mode}/h2o-otel-config.yaml`, OPTION_TABLE), mode);
  }
});

interface ContainerSpec {
  name: string;
  args?: string[];
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}

function sidecar(mode: string): { pod: { shareProcessNamespace?: boolean }; c: ContainerSpec } {
  const d = docs(join(ROOT, mode, 'deployment.yaml')).find((x) => x.kind === 'Deployment')!;
  const pod = (
    d.spec as { template: { spec: { shareProcessNamespace?: boolean; containers: ContainerSpec[] } } }
  ).template.spec;
  const c = pod.containers.find((x) => x.name === 'h2o-otel');
  assert.ok(c, mode);
  return { pod, c };
}

test('the sidecars: least privilege, probes, resources, the config file', () => {
  for (const mode of MODES) {
    const { c } = sidecar(mode);
    assert.ok(c.livenessProbe && c.readinessProbe, mode);
    assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, mode);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true, mode);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false, mode);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], mode);
    assert.deepEqual(c.args, ['--config', '/etc/h2o-otel/config.yaml'], mode);
  }
  const socket = sidecar('socket');
  assert.equal(socket.c.securityContext?.runAsNonRoot, true);
  assert.equal(socket.c.securityContext?.capabilities?.add, undefined);
  assert.notEqual(socket.pod.shareProcessNamespace, true);
  const bpf = sidecar('bpf');
  assert.equal(bpf.pod.shareProcessNamespace, true);
  assert.deepEqual(bpf.c.securityContext?.capabilities?.add, ['SYS_ADMIN']);
});
