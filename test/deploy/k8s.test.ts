// Structure lint of deploy/k8s (kubeconform is not available offline; run it where it is): every
// manifest parses (strict YAML subset), has apiVersion/kind/metadata.name, and the required fields
// per kind: GPU request, image, /ready and /health probes on the served port, API keys from a
// Secret, the HPA scaling the Deployment on tokenmill_num_requests_waiting, the Service and
// ServiceMonitor selecting the pods, the KV cache sized from the GPU (args parsed by the real CLI),
// the preStop drain within the grace period and the PodDisruptionBudget. Also the subset parser itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../e2e/cli-helpers.js';
import { parseYamlDocuments, type YamlValue } from './mini-yaml.js';

type Obj = { [k: string]: YamlValue };
const DIR = join(REPO_ROOT, 'deploy', 'k8s');
const API: Record<string, string> = {
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  Service: 'v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  Secret: 'v1',
  PersistentVolumeClaim: 'v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
  InferencePool: 'inference.networking.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  ConfigMap: 'v1',
};

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const manifests: { file: string; doc: Obj }[] = files.flatMap((file) =>
  parseYamlDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => ({ file, doc: doc as Obj })),
);
const byKind = (kind: string): Obj[] => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const obj = (v: YamlValue | undefined, what: string): Obj => {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what} must be a mapping`);
  return v as Obj;
};
const list = (v: YamlValue | undefined, what: string): YamlValue[] => {
  assert.ok(Array.isArray(v), `${what} must be a list`);
  return v;
};

describe('mini YAML subset parser', () => {
  it('parses mappings, sequences of mappings, scalars, flow JSON, literal blocks and documents', () => {
    const docs = parseYamlDocuments(
      'a: 1\nb:\n  - x: "q # not a comment" # comment\n    y: [1, "2"]\n  - plain text\nc: |\n  line 1\n  line 2\nd: {}\ne: ' +
        "'it''s'\n---\nf: true\n",
    );
    assert.deepEqual(docs, [
      { a: 1, b: [{ x: 'q # not a comment', y: [1, '2'] }, 'plain text'], c: 'line 1\nline 2\n', d: {}, e: "it's" },
      { f: true },
    ]);
    assert.deepEqual(parseYamlDocuments('k:\n- a\n- b\n'), [{ k: ['a', 'b'] }]);
  });

  it('rejects what it does not support instead of misreading it', () => {
    assert.throws(() => parseYamlDocuments('a: 1\na: 2\n'), /duplicate key/);
    assert.throws(() => parseYamlDocuments('a: &x 1\n'), /anchors/);
    assert.throws(() => parseYamlDocuments('a:\n\tb: 1\n'), /tabs/);
    assert.throws(() => parseYamlDocuments('a: yes\n'), /ambiguous/);
    assert.throws(() => parseYamlDocuments('a: 1\n   b: 2\n'), /indentation/);
  });
});

describe('deploy/k8s manifests', () => {
  it('every document has apiVersion, kind and metadata.name (or is a Kustomization)', () => {
    assert.ok(files.length >= 5, files.join(', '));
    for (const { file, doc } of manifests) {
      const kind = doc.kind as string;
      assert.ok(typeof kind === 'string' && API[kind] !== undefined, `${file}: unknown kind ${String(kind)}`);
      assert.equal(doc.apiVersion, API[kind], `${file}: apiVersion of ${kind}`);
      if (kind !== 'Kustomization') assert.ok(typeof obj(doc.metadata, `${file} metadata`).name === 'string', `${file}: metadata.name`);
    }
    for (const kind of ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'Secret', 'PodDisruptionBudget'])
      assert.equal(byKind(kind).length, 1, kind);
  });

  it('Deployment: replicas, selector = pod labels, image, one GPU, probes on /ready and /health, keys from a Secret', () => {
    const d = byKind('Deployment')[0]!;
    const spec = obj(d.spec, 'spec');
    assert.ok(typeof spec.replicas === 'number' && spec.replicas >= 1);
    const match = obj(obj(spec.selector, 'selector').matchLabels, 'matchLabels');
    const tmpl = obj(spec.template, 'template');
    const podLabels = obj(obj(tmpl.metadata, 'template.metadata').labels, 'pod labels');
    for (const [k, v] of Object.entries(match)) assert.equal(podLabels[k], v, `selector ${k} matches the pod labels`);
    const pod = obj(tmpl.spec, 'pod spec');
    const containers = list(pod.containers, 'containers').map((c) => obj(c, 'container'));
    assert.equal(containers.length, 1);
    const c = containers[0]!;
    assert.match(String(c.image), /^[\w./-]+:[\w.-]+$/, 'image with an explicit tag');
    const ports = list(c.ports, 'ports').map((p) => obj(p, 'port'));
    const http = ports.find((p) => p.containerPort === 8000);
    assert.ok(http, 'containerPort 8000');
    const res = obj(c.resources, 'resources');
    assert.equal(obj(res.limits, 'limits')['nvidia.com/gpu'], 1);
    const args = list(c.args, 'args').map(String);
    // Host and port are the image entry point's env (deploy/docker/entrypoint.sh), not args.
    assert.ok(!args.includes('--host') && !args.includes('--port'), 'bind address via TOKENMILL_HOST / TOKENMILL_PORT');
    const probePath = (name: string): { path: string; port: YamlValue } => {
      const g = obj(obj(c[name], name).httpGet, `${name}.httpGet`);
      return { path: String(g.path), port: g.port! };
    };
    assert.equal(probePath('readinessProbe').path, '/ready');
    assert.equal(probePath('livenessProbe').path, '/health');
    for (const p of ['readinessProbe', 'livenessProbe']) {
      const port = probePath(p).port;
      assert.ok(port === 8000 || port === http.name, `${p} targets the served port`);
    }
    const env = list(c.env, 'env').map((e) => obj(e, 'env entry'));
    assert.equal(env.find((e) => e.name === 'TOKENMILL_HOST')?.value, '0.0.0.0');
    assert.equal(env.find((e) => e.name === 'TOKENMILL_PORT')?.value, String(http.containerPort));
    const keys = env.find((e) => e.name === 'TOKENMILL_API_KEYS');
    assert.ok(keys, 'TOKENMILL_API_KEYS in env');
    const ref = obj(obj(keys.valueFrom, 'valueFrom').secretKeyRef, 'secretKeyRef');
    const secret = byKind('Secret')[0]!;
    assert.equal(ref.name, obj(secret.metadata, 'secret metadata').name);
    assert.ok((ref.key as string) in obj(secret.stringData, 'stringData'));
    const sc = obj(pod.securityContext, 'pod securityContext');
    assert.equal(sc.runAsNonRoot, true);
    const ann = obj(obj(tmpl.metadata, 'template.metadata').annotations, 'annotations');
    assert.equal(ann['prometheus.io/path'], '/metrics');
    // Scrapes without a key go to the metrics-only port; the API port's /metrics keeps its key.
    assert.ok(!args.includes('--metrics-public'));
    const metricsPort = Number(args[args.indexOf('--metrics-port') + 1]);
    assert.equal(String(metricsPort), ann['prometheus.io/port'], 'Prometheus scrapes the metrics port');
    assert.equal(ports.find((p) => p.name === 'metrics')?.containerPort, metricsPort);
  });

  it(
    'Deployment: KV cache sized from the GPU (--kv-cache-share), preStop ' +
      'drain inside the grace period, args valid for `tokenmill serve`',
    async () => {
      const d = byKind('Deployment')[0]!;
      const pod = obj(obj(obj(d.spec, 'spec').template, 'template').spec, 'pod spec');
      const c = obj(list(pod.containers, 'containers')[0], 'container');
      const args = list(c.args, 'args').map(String);
      assert.ok(!args.includes('--kv-cache-memory'), 'no fixed KV budget: it must follow the GPU size');
      const share = Number(args[args.indexOf('--kv-cache-share') + 1]);
      assert.ok(args.includes('--kv-cache-share') && share > 0 && share <= 1, `--kv-cache-share ${share}`);
      const preStop = obj(obj(c.lifecycle, 'lifecycle').preStop, 'preStop');
      const cmd = list(obj(preStop.exec, 'preStop.exec').command, 'preStop command').map(String);
      assert.equal(cmd[0], 'sleep', 'preStop waits (a second signal would end the drain at once)');
      const preStopS = Number(cmd[1]);
      assert.ok(preStopS >= 5, 'long enough for endpoints to drop the pod');
      const drainS = Number(args[args.indexOf('--drain-timeout') + 1]);
      assert.ok(args.includes('--drain-timeout') && drainS > 0);
      const grace = pod.terminationGracePeriodSeconds as number;
      assert.ok(
        grace >= preStopS + drainS + 5,
        `terminationGracePeriodSeconds ${grace} >= preStop ${preStopS} + drain ${drainS} + 5 s close`,
      );
      // Every arg is a real `serve` flag with a valid value: parse them with the CLI's own program.
      const { buildProgram } = await import('../../src/cli/program.js');
      const program = await buildProgram(['node', 'tokenmill', 'serve']);
      let parsed: Record<string, unknown> | null = null;
      program.commands
        .find((x) => x.name() === 'serve')!
        .action((o: Record<string, unknown>) => {
          parsed = o;
        });
      await program.parseAsync(['node', 'tokenmill', 'serve', ...args]);
      assert.ok(parsed !== null);
      assert.equal((parsed as Record<string, unknown>).kvCacheShare, share);
    },
  );

  it('PodDisruptionBudget: selects the pods and leaves at least one serving', () => {
    const d = byKind('Deployment')[0]!;
    const podLabels = obj(obj(obj(obj(d.spec, 'spec').template, 'template').metadata, 'm').labels, 'labels');
    const pdb = obj(byKind('PodDisruptionBudget')[0]!.spec, 'pdb spec');
    const sel = obj(obj(pdb.selector, 'pdb selector').matchLabels, 'pdb matchLabels');
    for (const [k, v] of Object.entries(sel)) assert.equal(podLabels[k], v, `PDB selector ${k}`);
    const minReplicas = obj(byKind('HorizontalPodAutoscaler')[0]!.spec, 'hpa').minReplicas as number;
    if (pdb.maxUnavailable !== undefined)
      assert.ok((pdb.maxUnavailable as number) >= 1 && (pdb.maxUnavailable as number) < minReplicas, 'maxUnavailable below minReplicas');
    else assert.ok((pdb.minAvailable as number) >= 1 && (pdb.minAvailable as number) < minReplicas, 'minAvailable leaves room to evict');
    const k = byKind('Kustomization')[0]!;
    assert.ok(list(k.resources, 'resources').includes('pdb.yaml'), 'kustomization applies the PDB');
  });

  it('Service and ServiceMonitor select the pods; the HPA scales the Deployment on queue depth', () => {
    const d = byKind('Deployment')[0]!;
    const podLabels = obj(obj(obj(obj(d.spec, 'spec').template, 'template').metadata, 'm').labels, 'labels');
    const svc = byKind('Service')[0]!;
    const sel = obj(obj(svc.spec, 'service spec').selector, 'service selector');
    for (const [k, v] of Object.entries(sel)) assert.equal(podLabels[k], v, `Service selector ${k}`);
    const svcPort = obj(list(obj(svc.spec, 's').ports, 'service ports')[0], 'service port');
    assert.equal(svcPort.targetPort, 'http');
    const sm = byKind('ServiceMonitor')[0]!;
    const smSel = obj(obj(obj(sm.spec, 'sm spec').selector, 'sm selector').matchLabels, 'sm matchLabels');
    const svcLabels = obj(obj(svc.metadata, 'svc metadata').labels, 'svc labels');
    for (const [k, v] of Object.entries(smSel)) assert.equal(svcLabels[k], v, `ServiceMonitor selects the Service (${k})`);
    const ep = obj(list(obj(sm.spec, 'sm').endpoints, 'endpoints')[0], 'endpoint');
    assert.equal(ep.path, '/metrics');
    const scraped = list(obj(svc.spec, 's').ports, 'service ports')
      .map((p) => obj(p, 'port'))
      .find((p) => p.name === ep.port);
    assert.equal(scraped?.targetPort, 'metrics', 'the ServiceMonitor scrapes the metrics port (no API key there)');
    const hpa = byKind('HorizontalPodAutoscaler')[0]!;
    const hs = obj(hpa.spec, 'hpa spec');
    const target = obj(hs.scaleTargetRef, 'scaleTargetRef');
    assert.deepEqual([target.apiVersion, target.kind, target.name], [d.apiVersion, 'Deployment', obj(d.metadata, 'm').name]);
    assert.ok((hs.minReplicas as number) >= 1 && (hs.maxReplicas as number) > (hs.minReplicas as number));
    const metric = obj(list(hs.metrics, 'metrics')[0], 'metric');
    assert.ok(metric.type === 'Pods' || metric.type === 'External');
    const m = obj(metric[metric.type === 'Pods' ? 'pods' : 'external'], 'metric source');
    assert.equal(obj(m.metric, 'metric id').name, 'tokenmill_num_requests_waiting');
  });

  it('kustomization lists existing files', () => {
    const k = byKind('Kustomization')[0]!;
    for (const r of list(k.resources, 'resources')) assert.ok(files.includes(String(r)), `resource ${String(r)}`);
  });
});
