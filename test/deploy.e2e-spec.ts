import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import request from 'supertest';
import { MIGRATIONS_DIR } from '../src/bootstrap';
import { runCli } from '../src/cli/cli';
import { loadConfig } from '../src/config/config';
import { CONFIG_VARIABLES } from '../src/config/config.schema';
import {
  copyOf,
  dockerignoreFilter,
  envOf,
  execForm,
  flagsOf,
  healthcheckCommand,
  instructionsOf,
  parseDockerfile,
  type Stage,
  words,
} from './support/dockerfile';
import { startTestGateway, type TestGateway } from './support/gateway';
import { parsePrometheusText } from './support/prometheus-text';
import { KUBERNETES_MODELS_VERSION, schemaErrors, unknownFieldErrors } from './support/kubernetes-schema';
import { applyOperation, containersOf, type Manifest, readManifests, renderKustomization } from './support/kustomize';

/**
 * The container image and the Kubernetes manifests. No Docker engine, kubectl
 * or cluster runs here: the Dockerfile is parsed and checked, the kustomizations
 * rendered by test/support/kustomize.ts and validated against the Kubernetes
 * schemas, and what they point at (ports, probe paths, commands, settings)
 * checked against the real gateway.
 */

const ROOT = path.join(__dirname, '..');
const K8S = path.join(ROOT, 'k8s');
const DEFAULT_PORT = loadConfig({}).port;
const KNOWN_KEYS = new Map(CONFIG_VARIABLES.map((variable) => [variable.key, variable]));
const PACKAGE = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };

/** The single object of a kind among rendered manifests, typed by the caller. */
function one<T>(manifests: Manifest[], kind: string): T {
  const found = manifests.filter((manifest) => manifest.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as unknown as T;
}

/** A Kubernetes quantity of bytes (`64Mi`, `1Gi`, `1000`) as a number; NaN for anything else. */
function bytesOf(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity);
  if (!match) return Number.NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[match[2] as 'Ki' | 'Mi' | 'Gi'] ?? 1;
  return Number(match[1]) * unit;
}

function podSpecOfWorkload(workload: IDeployment | IJob): IPodSpec {
  const spec = workload.spec?.template.spec;
  if (!spec) throw new Error(`${workload.kind} without a pod spec`);
  return spec;
}

function firstContainer(workload: IDeployment | IJob): IContainer {
  const containers = podSpecOfWorkload(workload).containers;
  if (containers.length !== 1 || !containers[0]) throw new Error(`${workload.kind}: expected one container`);
  return containers[0];
}

const asManifest = (object: object): Manifest => object as unknown as Manifest;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => path.join(dir, entry))
    .filter((file) => statSync(file).isFile());
}

describe('the Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const { dockerfile, stages } = parseDockerfile(text);
  const final = stages.at(-1) as Stage;
  const stageNamed = (name: string | undefined): Stage | undefined => stages.find((stage) => stage.name === name);
  const runs = (stage: Stage): string[] => instructionsOf(stage, 'RUN').map((run) => words(run).join(' '));
  const finalCopies = instructionsOf(final, 'COPY').map(copyOf);
  const [workdirInstruction] = instructionsOf(final, 'WORKDIR');
  const workdir = workdirInstruction ? (words(workdirInstruction)[0] ?? '') : '';
  const env = envOf(final);

  it('builds in stages from one pinned Node 24 LTS slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    for (const stage of stages) {
      // A tag naming the exact release (a digest may follow); never `latest` or a floating `24`.
      expect(stage.image).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/);
      expect(stage.image).toBe(final.image);
    }
    // BuildKit syntax, for RUN --mount.
    expect(dockerfile.getDirectives().map((directive) => `${directive.getName()}=${directive.getValue()}`)).toContain(
      'syntax=docker/dockerfile:1',
    );
  });

  it('installs with npm ci from the lock file, and downloads nothing but npm packages', () => {
    const everyRun = stages.flatMap(runs);
    expect(everyRun.some((run) => /\bnpm ci\b/.test(run))).toBe(true);
    for (const run of everyRun) {
      expect(run).not.toMatch(/\bnpm (install|i|add)\b/);
      expect(run).not.toMatch(/\b(apt-get|apt|apk|curl|wget|git)\b/);
    }
    expect(stages.flatMap((stage) => instructionsOf(stage, 'ADD'))).toEqual([]);
  });

  it('compiles in a build stage: generated Prisma client, then TypeScript', () => {
    const distCopy = finalCopies.find((copy) => copy.destination === './dist');
    const build = stageNamed(distCopy?.from);
    expect(build).toBeDefined();
    const buildRuns = build ? runs(build) : [];
    expect(buildRuns.some((run) => /\bnpm ci\b/.test(run))).toBe(true);
    expect(buildRuns.some((run) => run.includes('scripts/prisma-generate.js') && run.includes('npm run build'))).toBe(
      true,
    );
  });

  it('gives the final stage production dependencies only, installed without scripts', () => {
    const modules = finalCopies.filter((copy) => copy.destination.replace(/\/$/, '').endsWith('node_modules'));
    expect(modules).toHaveLength(1);
    const deps = stageNamed(modules[0]?.from);
    expect(deps).toBeDefined();
    const install = (deps ? runs(deps) : []).find((run) => /\bnpm ci\b/.test(run)) ?? '';
    expect(install).toContain('--omit=dev');
    expect(install).toContain('--ignore-scripts');
    // The final stage itself installs nothing.
    expect(runs(final).some((run) => /\bnpm (ci|install|i)\b/.test(run))).toBe(false);
  });

  it('copies what the runtime needs: dist, bin, package.json, and the migrations where the code looks', () => {
    // Where each file or directory of the build context lands in the image.
    const landed = finalCopies
      .filter((copy) => copy.from === undefined)
      .flatMap((copy) =>
        copy.sources.map((source) =>
          copy.destination.endsWith('/')
            ? path.posix.join(workdir, copy.destination, path.posix.basename(source))
            : path.posix.join(workdir, copy.destination),
        ),
      );
    // src/bootstrap.ts reads the migrations from <package root>/prisma/migrations, the package root
    // being the directory above dist/.
    const migrations = path.relative(ROOT, MIGRATIONS_DIR).split(path.sep).join('/');
    expect(landed.sort()).toEqual(
      [`${workdir}/package.json`, `${workdir}/bin`, path.posix.join(workdir, migrations)].sort(),
    );
    expect(finalCopies).toContainEqual({ from: expect.any(String), sources: ['/app/dist'], destination: './dist' });
    expect(workdir).toBe('/app');
  });

  it('puts the mcp-gateway bin on PATH, as CMD names it', () => {
    const bin = PACKAGE.bin['mcp-gateway'];
    expect(bin).toBe('bin/mcp-gateway.js');
    expect(runs(final).join(' ')).toContain(`ln -s ${path.posix.join(workdir, bin ?? '')} /usr/local/bin/mcp-gateway`);
  });

  it('runs as a numeric non-root user that owns DATA_DIR and nothing else', () => {
    const users = instructionsOf(final, 'USER').map((user) => words(user)[0]);
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] ?? '').split(':');
    expect(uid).toMatch(/^[1-9][0-9]*$/);
    const dataDir = env.get('DATA_DIR');
    expect(dataDir).toMatch(/^\//);
    const setup = runs(final).join(' ');
    expect(setup).toContain(`mkdir -p ${dataDir}`);
    expect(setup).toContain(`chown ${uid}:${gid} ${dataDir}`);
    // Only DATA_DIR changes owner: the code stays read-only to the gateway's user.
    expect(setup.match(/chown/g)).toHaveLength(1);
    expect(text).not.toMatch(/COPY\s+--chown/);
  });

  it('exposes the default port and serves as PID 1 with CMD ["mcp-gateway", "serve"]', () => {
    expect(instructionsOf(final, 'EXPOSE').map(words)).toEqual([[String(DEFAULT_PORT)]]);
    expect(env.get('PORT')).toBe(String(DEFAULT_PORT));
    expect(env.get('NODE_ENV')).toBe('production');
    // Exec form throughout: no shell between the runtime and the gateway, so SIGTERM reaches it.
    expect(instructionsOf(final, 'ENTRYPOINT').map(execForm)).toEqual([[]]);
    expect(instructionsOf(final, 'CMD').map(execForm)).toEqual([['mcp-gateway', 'serve']]);
  });

  it('health-checks /health/live with node (no curl in a slim image)', () => {
    const healthchecks = instructionsOf(final, 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const command = healthchecks.map(healthcheckCommand)[0];
    expect(command?.[0]).toBe('node');
    expect(command?.join(' ')).toContain('/health/live');
    const flags = healthchecks.map(flagsOf)[0];
    expect([...(flags?.keys() ?? [])].sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
    const commands = stages.flatMap((stage) => [...instructionsOf(stage, 'RUN'), ...healthchecks].map(words));
    expect(commands.flat().filter((word) => /\b(curl|wget)\b/.test(word))).toEqual([]);
  });

  it('sends only what the Dockerfile copies as the build context (.dockerignore)', () => {
    const included = dockerignoreFilter(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8'));
    const contextSources = stages
      .flatMap((stage) => instructionsOf(stage, 'COPY').map(copyOf))
      .filter((copy) => copy.from === undefined)
      .flatMap((copy) => copy.sources);
    for (const source of contextSources) {
      expect([source, included(source)]).toEqual([source, true]);
      const full = path.join(ROOT, source);
      if (!statSync(full).isDirectory()) continue;
      // Inside a copied directory, only generated code and unit tests stay out.
      const dropped = filesUnder(full)
        .map((file) => path.relative(ROOT, file).split(path.sep).join('/'))
        .filter((file) => !included(file));
      for (const file of dropped) expect(file).toMatch(/^src\/generated\/|\.spec\.ts$/);
    }
    for (const kept of ['src/main.ts', 'bin/mcp-gateway.js', 'scripts/prisma-generate.js', 'package-lock.json']) {
      expect([kept, included(kept)]).toEqual([kept, true]);
    }
    for (const dropped of [
      'node_modules/pg/package.json',
      'dist/main.js',
      '.git/HEAD',
      '.mcp-gateway/pgdata/PG_VERSION',
      'src/generated/prisma/client.ts',
      'src/config/config.spec.ts',
      'test/deploy.e2e-spec.ts',
      'k8s/base/deployment.yaml',
      '.env',
      'src/.env.local',
      'Dockerfile',
    ]) {
      expect([dropped, included(dropped)]).toEqual([dropped, false]);
    }
  });
});

describe('the Kubernetes manifests', () => {
  const app = renderKustomization(path.join(K8S, 'overlays', 'example'));
  const migrate = renderKustomization(path.join(K8S, 'overlays', 'example', 'migrate'));
  const base = renderKustomization(path.join(K8S, 'base'));
  const baseMigrate = renderKustomization(path.join(K8S, 'base', 'migrate'));
  const secretExampleFile = path.join(K8S, 'overlays', 'example', 'secret.example.yaml');
  const secretExample = one<ISecret>(readManifests(secretExampleFile), 'Secret');

  const deployment = one<IDeployment>(app.manifests, 'Deployment');
  const job = one<IJob>(migrate.manifests, 'Job');
  const configMap = one<IConfigMap>(app.manifests, 'ConfigMap');
  const settings = configMap.data ?? {};
  const service = one<IService>(app.manifests, 'Service');
  const policy = one<INetworkPolicy>(app.manifests, 'NetworkPolicy');
  const podSpec = podSpecOfWorkload(deployment);
  const gateway = firstContainer(deployment);
  const migrator = firstContainer(job);
  /** The gateway container's literal `env` values, as name → value. */
  const literals = Object.fromEntries((gateway.env ?? []).flatMap((v) => (v.value ? [[v.name, v.value]] : [])));
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  const containerPort = (name: string): number | undefined =>
    gateway.ports?.find((port) => port.name === name)?.containerPort;

  it('are all part of a kustomization, except the Secret example', () => {
    const yamlFiles = filesUnder(K8S).filter((file) => /\.ya?ml$/.test(file));
    const used = new Set([...app.files, ...migrate.files]);
    expect(yamlFiles.filter((file) => !used.has(file))).toEqual([secretExampleFile]);
    expect([...base.files, ...baseMigrate.files].filter((file) => !used.has(file))).toEqual([]);
  });

  it(`validate against the Kubernetes schemas (kubernetes-models ${KUBERNETES_MODELS_VERSION}), unknown fields included`, () => {
    const all = [...app.manifests, ...migrate.manifests, ...base.manifests, ...baseMigrate.manifests];
    all.push(asManifest(secretExample));
    const errors = schemaErrors(all).flatMap((list, index) =>
      list.map((error) => `${all[index]?.kind} ${all[index]?.metadata.name}: ${error}`),
    );
    expect(errors).toEqual([]);
    expect(unknownFieldErrors(all)).toEqual([]);
  });

  it('fail validation when wrong: a bad type, a misspelt field, a patch that no longer fits', () => {
    const broken = structuredClone(deployment);
    const port = firstContainer(broken).ports?.[0];
    if (port) (port as { containerPort: unknown }).containerPort = 'http';
    expect(schemaErrors([asManifest(broken)])[0]?.join()).toMatch(/containerPort must be integer/);

    const misspelt = structuredClone(deployment);
    const container = firstContainer(misspelt) as unknown as Record<string, unknown>;
    container.readinessProbes = container.readinessProbe;
    expect(unknownFieldErrors([asManifest(misspelt)])).toEqual([
      expect.stringMatching(/^Deployment mcp-gateway: .*readinessProbes/),
    ]);

    const test = { op: 'test', path: '/spec/revisionHistoryLimit', value: 2 };
    expect(() => applyOperation(structuredClone(deployment), test, 'here')).toThrow(/test failed/);
  });

  it('render the overlay: namespace, the pinned image, this environment’s settings and addresses', () => {
    const rendered = [...app.manifests, ...migrate.manifests];
    for (const manifest of rendered) expect(manifest.metadata.namespace).toBe('mcp-gateway');
    const images = new Set(rendered.flatMap(containersOf).map((container) => container.image));
    expect(images).toEqual(new Set(['registry.example.com/platform/mcp-gateway:0.1.0']));
    expect(settings).toMatchObject({ PUBLIC_URL: 'https://mcp.example.com', AUTH_MODE: 'entra' });
    expect(one<IConfigMap>(base.manifests, 'ConfigMap').data).not.toHaveProperty('PUBLIC_URL');
    // The base's documentation addresses (RFC 5737) are all replaced.
    expect(JSON.stringify(rendered)).not.toContain('192.0.2.');
    expect(JSON.stringify([...base.manifests, ...baseMigrate.manifests])).toContain('192.0.2.');
  });

  it('leave the replica count to the HPA, rolled with none unavailable, spread over nodes and zones', () => {
    // A count in the Deployment would reset the HPA's on every apply.
    expect(deployment.spec).not.toHaveProperty('replicas');
    expect(deployment.spec?.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    const spread = podSpec.topologySpreadConstraints ?? [];
    expect(spread.map((constraint) => constraint.topologyKey)).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const constraint of spread) expect(podLabels).toMatchObject(constraint.labelSelector?.matchLabels ?? {});
  });

  it('probe /health/live and /health/ready on the container port, which is the gateway’s default port', () => {
    expect(containerPort('http')).toBe(DEFAULT_PORT);
    expect(settings).not.toHaveProperty('PORT');
    expect(gateway.startupProbe?.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(gateway.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(gateway.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    // /health/ready waits up to 2 s for the database and Redis (src/health/health.service.ts).
    expect(gateway.readinessProbe?.timeoutSeconds).toBeGreaterThan(2);
  });

  it('pause before SIGTERM, and give the drain time to finish before SIGKILL', () => {
    const pause = gateway.lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(pause).toBeGreaterThanOrEqual(5);
    // The gateway exits by itself once its drain has taken SHUTDOWN_GRACE_MS plus AUDIT_WRITE_TIMEOUT_MS.
    const config = loadConfig(settings);
    const drainMs = config.shutdownGraceMs + config.audit.writeTimeoutMs;
    const margin = 5;
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pause + drainMs / 1000 + margin);
  });

  it('meet the "restricted" Pod Security Standard, with a read-only root filesystem', () => {
    for (const workload of [deployment, job]) {
      const spec = podSpecOfWorkload(workload);
      expect(spec).toMatchObject({
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      });
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
      expect([spec.hostNetwork, spec.hostPID, spec.hostIPC]).toEqual([undefined, undefined, undefined]);
      for (const volume of spec.volumes ?? []) expect(Object.keys(volume).sort()).toEqual(['emptyDir', 'name']);
      const container = firstContainer(workload);
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
      // The writable places: /tmp, and DATA_DIR where the container sets one.
      const mounts = (container.volumeMounts ?? []).map((mount) => mount.mountPath);
      expect(mounts).toContain('/tmp');
      const dataDir = container.env?.find((variable) => variable.name === 'DATA_DIR')?.value;
      if (dataDir) expect(mounts).toContain(dataDir);
      expect(container.resources).toMatchObject({
        requests: { cpu: expect.any(String), memory: expect.any(String) },
        limits: { memory: expect.any(String) },
      });
    }
  });

  it('select the gateway’s pods: Service, HPA, PodDisruptionBudget, NetworkPolicy', () => {
    expect(podLabels).toMatchObject(deployment.spec?.selector.matchLabels ?? { missing: true });
    expect(podLabels).toMatchObject(service.spec?.selector ?? { missing: true });
    expect(service.spec?.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    const pdb = one<IPodDisruptionBudget>(app.manifests, 'PodDisruptionBudget');
    expect(podLabels).toMatchObject(pdb.spec?.selector?.matchLabels ?? { missing: true });
    const hpa = one<IHorizontalPodAutoscaler>(app.manifests, 'HorizontalPodAutoscaler');
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'mcp-gateway' });
    expect(hpa.spec?.minReplicas).toBe(3);
    expect(hpa.spec?.maxReplicas).toBeGreaterThan(hpa.spec?.minReplicas ?? Infinity);
    // While Redis is down each replica allows 1/RATE_LIMIT_REPLICAS of a budget: however far the HPA scaled, the
    // replicas together stay within it.
    expect(settings.RATE_LIMIT_REPLICAS).toBe(String(hpa.spec?.maxReplicas));
    // A node drain never takes the gateway below two replicas.
    expect((hpa.spec?.minReplicas ?? 0) - Number(pdb.spec?.maxUnavailable)).toBeGreaterThanOrEqual(2);
    expect(podLabels).toMatchObject(policy.spec?.podSelector?.matchLabels ?? { missing: true });
    // The Job's pods are not the Service's.
    expect(job.spec?.template.metadata?.labels).not.toMatchObject(service.spec?.selector ?? {});
  });

  it('let in only the ingress controller and labelled clients, on the container port', () => {
    expect(policy.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    const ingress = policy.spec?.ingress ?? [];
    expect(ingress.flatMap((rule) => rule.ports)).toEqual([{ protocol: 'TCP', port: containerPort('http') }]);
    for (const rule of ingress) expect(rule.from?.length).toBeGreaterThan(0);
    const egress = policy.spec?.egress ?? [];
    expect(egress.map((rule) => rule.ports?.map((port) => port.port))).toEqual([[53, 53], [5432], [6379, 6380], [443]]);
    // The Job reaches the same DNS and PostgreSQL as the gateway, and takes no traffic.
    const jobPolicy = one<INetworkPolicy>(migrate.manifests, 'NetworkPolicy');
    expect(jobPolicy.spec?.podSelector?.matchLabels).toEqual(job.spec?.template.metadata?.labels);
    expect(jobPolicy.spec?.ingress).toBeUndefined();
    expect(jobPolicy.spec?.egress).toEqual(egress.slice(0, 2));
  });

  it('hold only known, non-secret settings in the ConfigMap, and never run a replica on embedded stores', () => {
    for (const key of Object.keys(settings)) {
      expect([key, KNOWN_KEYS.has(key), KNOWN_KEYS.get(key)?.secret]).toEqual([key, true, false]);
    }
    for (const { name } of gateway.env ?? []) expect([name, KNOWN_KEYS.has(name)]).toEqual([name, true]);
    // Required secretKeyRefs: without them a pod does not start, instead of running on a PGlite of its own.
    for (const name of ['DATABASE_URL', 'REDIS_URL']) {
      expect(gateway.env?.find((variable) => variable.name === name)?.valueFrom).toEqual({
        secretKeyRef: { name: 'mcp-gateway', key: name },
      });
    }
    expect(gateway.envFrom).toEqual([
      { configMapRef: { name: 'mcp-gateway' } },
      { secretRef: { name: 'mcp-gateway' } },
    ]);
    expect(settings).toMatchObject({ NODE_ENV: 'production', AUTH_MODE: 'entra' });
  });

  it('give DATA_DIR room for the audit spool at its limit, and for a full audit queue spooled past it', () => {
    const { audit } = loadConfig({ ...settings, ...secretExample.stringData, ...literals });
    const mount = gateway.volumeMounts?.find((volumeMount) => volumeMount.mountPath === literals.DATA_DIR);
    const sizeLimit = podSpec.volumes?.find((volume) => volume.name === mount?.name)?.emptyDir?.sizeLimit;
    expect(audit.spoolMaxBytes).toBeGreaterThan(0);
    // A record is about 1 KB besides its arguments (src/audit/audit-spool.ts writes them as JSON lines).
    const fullQueue = audit.queueCapacity * (audit.argumentsMaxBytes + 1024);
    expect(bytesOf(String(sizeLimit))).toBeGreaterThanOrEqual(audit.spoolMaxBytes + fullQueue);
    const volumes = (podSpec.volumes ?? []).map((volume) => bytesOf(String(volume.emptyDir?.sizeLimit)));
    const requested = bytesOf(String(gateway.resources?.requests?.['ephemeral-storage']));
    expect(requested).toBeGreaterThan(volumes.reduce((sum, bytes) => sum + bytes, 0));
  });

  it('show the Secret with every secret setting, placeholders only, in values the gateway accepts', () => {
    const secretKeys = CONFIG_VARIABLES.filter((variable) => variable.secret).map((variable) => variable.key);
    const data = secretExample.stringData ?? {};
    expect(Object.keys(data).sort()).toEqual([...secretKeys].sort());
    for (const value of Object.values(data)) expect(value).toContain('CHANGE-ME');
    expect(secretExample.metadata?.name).toBe('mcp-gateway');
    expect(() => loadConfig({ ...settings, ...data, ...literals })).not.toThrow();
  });

  it('migrate with `mcp-gateway migrate` in a Job, from the image about to roll out', () => {
    expect(migrator.image).toBe(gateway.image);
    expect([...(migrator.command ?? []), ...(migrator.args ?? [])]).toEqual(['mcp-gateway', 'migrate']);
    expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
    expect(migrator.env).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'mcp-gateway', key: 'DATABASE_URL' } },
    });
    // The replicas leave the schema to the Job.
    expect(gateway.args).toContain('--no-migrate');
  });

  it('run commands and flags the CLI has', async () => {
    for (const container of [gateway, migrator]) {
      const [bin, ...args] = [...(container.command ?? []), ...(container.args ?? [])];
      expect(Object.keys(PACKAGE.bin)).toContain(bin);
      let help = '';
      const io = { env: {}, stdout: (text: string) => (help += text), stderr: (text: string) => (help += text) };
      expect(await runCli(['node', bin ?? '', ...args, '--help'], io)).toBe(0);
      expect(help).toContain(`Usage: mcp-gateway ${args[0]}`);
      for (const flag of args.filter((arg) => arg.startsWith('--'))) expect(help).toContain(flag);
    }
  });
});

describe('the probes against the real gateway', () => {
  const app = renderKustomization(path.join(K8S, 'overlays', 'example'));
  const deployment = one<IDeployment>(app.manifests, 'Deployment');
  const settings = one<IConfigMap>(app.manifests, 'ConfigMap').data ?? {};
  const container = firstContainer(deployment);
  const { stages } = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const [healthcheck] = instructionsOf(stages.at(-1) as Stage, 'HEALTHCHECK');
  const healthcheckArgs = healthcheck ? (healthcheckCommand(healthcheck) ?? []) : [];
  let served: TestGateway;

  beforeAll(async () => {
    // As a replica runs: the overlay's settings and the container's literal env, on PostgreSQL and
    // Redis (DATA_DIR and the listen address are the test's own).
    const literals = Object.fromEntries(
      (container.env ?? []).flatMap((v) => (v.value && v.name !== 'DATA_DIR' ? [[v.name, v.value]] : [])),
    );
    served = await startTestGateway('services', { ...settings, ...literals });
  });

  afterAll(async () => {
    await served.close();
  });

  it('answers 200 on every probe path of the Deployment', async () => {
    const probes = [container.startupProbe, container.livenessProbe, container.readinessProbe];
    const paths = probes.map((probe) => probe?.httpGet?.path ?? '(none)');
    expect(new Set(paths)).toEqual(new Set(['/health/live', '/health/ready']));
    for (const probePath of paths) await request(served.url).get(probePath).expect(200);
  });

  it('serves Prometheus metrics where the pod’s scrape annotations point', async () => {
    const annotations = deployment.spec?.template.metadata?.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    const http = container.ports?.find((port) => port.name === 'http')?.containerPort;
    expect(Number(annotations['prometheus.io/port'])).toBe(http);
    const res = await request(served.url)
      .get(annotations['prometheus.io/path'] ?? '(none)')
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
    expect(parsePrometheusText(res.text).get('mcp_gateway_http_requests_total')?.type).toBe('counter');
  });

  it('passes the image’s HEALTHCHECK, which fails once the gateway is gone', async () => {
    const port = new URL(served.url).port;
    // Asynchronously: the gateway serves from this very process.
    const run = (): Promise<number | null> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, healthcheckArgs.slice(1), { env: { PORT: port }, stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', (code) => resolve(code));
      });
    expect(healthcheckArgs[0]).toBe('node');
    expect(await run()).toBe(0);
    await served.close();
    expect(await run()).toBe(1);
  });
});
