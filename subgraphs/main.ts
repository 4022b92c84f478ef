/**
 * The subgraphs' command line (`npm run data`, `npm run subgraph -- <domain>`, `npm run sdl -- <domain>`).
 *
 *   tsx subgraphs/main.ts prepare [--reset]  generate the raw data if needed, build every domain's warehouse
 *   tsx subgraphs/main.ts serve <domain>     build that domain's warehouse if needed, then serve it
 *   tsx subgraphs/main.ts sdl <domain>       print the subgraph SDL the domain serves (for the registry)
 *
 * Configuration comes from the environment (see subgraphs/config.ts and the README).
 */
import { createHash } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Argument } from 'commander';
import { pino, type Logger } from 'pino';
import { allowedHostsFromEnv } from '../policy/host-check.js';
import { previousSigningKeyFromEnv, signingKeyFromEnv } from '../policy/subgraph-signature.js';

/** Env `SUBGRAPH_DIRECT_ACCESS`: `deny` (default) or `allow` (unsigned callers reach ordinary fields). */
function directAccessFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.SUBGRAPH_DIRECT_ACCESS || 'deny';
  if (value !== 'allow' && value !== 'deny') throw new Error(`SUBGRAPH_DIRECT_ACCESS must be allow or deny, got "${value.slice(0, 40)}".`);
  return value === 'allow';
}
import { defineCommand, runCommand, serviceAction } from '../policy/command-line.js';
import { identityConfigFromEnv } from '../policy/identity-config.js';
import { openAuditSinkFromEnv } from '../policy/audit-config.js';
import { hashKeyFromEnv } from '../policy/masking.js';
import { rawDirOf, subgraphConfigFromEnv, portOf, warehouseUrlOf, type SubgraphConfig } from './config.js';
import type { AnyDomain } from './domains.js';
import { meshDomains } from './mesh-domains.js';
import { printDomainSdl } from './kit/domain-schema.js';
import { loadFactsAt } from './kit/freshness.js';
import { lineageSink } from './kit/lineage.js';
import { profilesAt, summarizeProfiles } from './kit/profiles.js';
import { summarizeRun } from './kit/quality.js';
import { startSubgraphServer } from './kit/subgraph-server.js';
import { servePipelines, type PipelineLoad } from './kit/pipelines/serve-pipelines.js';
import { ensureWarehouse, qualityHistoryAt, type EnsureWarehouseOptions } from './kit/warehouse/build.js';
import { INCREMENTS_FOLDER } from './kit/warehouse/increments.js';
import { followInputs, gatewayInputReader, inputAccessFromEnv, inputsOf, keptKeys } from './kit/events/inputs.js';
import { readWarehouseAt } from './kit/warehouse/open.js';
import { extractSources } from './kit/warehouse/extract.js';
import { openWarehouse } from './kit/warehouse/open.js';
import { startChangePublisher } from './kit/events/publisher.js';
import { changeFeedFromEnv, eventsNatsUrlFromEnv } from '../policy/events/feed-from-env.js';
import { ensureSourceData } from './synthetic-sources/source-data.js';
import { readRawManifest } from './synthetic-sources/manifest.js';
import { liveSourcesFromEnv } from '../policy/live-sources.js';

const { domains, manifest: meshManifest } = await meshDomains();


/** What a folder of raw files holds (names, sizes, times): a load is made again when it changes. */
async function folderFingerprint(folder: string): Promise<string> {
  const hash = createHash('sha256');
  let entries;
  try {
    entries = await readdir(folder, { recursive: true, withFileTypes: true });
  } catch (error) {
    throw new Error(`The raw files' folder ${folder} could not be read: ${(error as Error).message}`);
  }
  // Increments are merged as they arrive (warehouse/increments.ts): they change no full file.
  const full = (e: { parentPath: string }) => !relative(folder, e.parentPath).split(/[\\/]/).includes(INCREMENTS_FOLDER);
  for (const entry of entries.filter((e) => e.isFile() && full(e)).sort((a, b) => join(a.parentPath, a.name).localeCompare(join(b.parentPath, b.name)))) {
    const path = join(entry.parentPath, entry.name);
    const { size, mtimeMs } = await stat(path);
    hash.update(`${relative(folder, path)}\0${size}\0${mtimeMs}\n`);
  }
  return hash.digest('hex');
}

/** A domain's raw folder: where the mesh manifest places its data (`data`), else the generator's folder for it. */
const domainRawDir = (name: string, config: SubgraphConfig): string => meshManifest.domains.find((entry) => entry.name === name)?.data ?? join(rawDirOf(config), name);

/** Builds each domain's warehouse when needed; returns what each load did (none when the warehouse was current). */
/** What a pipeline run asks of a load: every file again (`force`), a range only, its lineage's parent, its gate. */
type RunLoad = Pick<EnsureWarehouseOptions, 'force' | 'backfill' | 'lineageParent' | 'gate' | 'eventsPublishedThrough'>;

async function prepareDomains(config: SubgraphConfig, selected: readonly AnyDomain[], log: Logger, reset = false, run: RunLoad = {}): Promise<Map<string, PipelineLoad>> {
  const outcomes = new Map<string, PipelineLoad>();
  const started = performance.now();
  // A reset generates the raw files again and rebuilds every warehouse, whatever is there.
  if (reset) await rm(join(rawDirOf(config), 'manifest.json'), { force: true });
  const { manifest, generated } = await ensureSourceData({ rawDir: rawDirOf(config), scale: config.scale, seed: config.seed });
  log.info(
    { scale: manifest.scale, seed: manifest.seed, rows: manifest.rows, ms: Math.round(performance.now() - started) },
    generated ? 'raw data generated' : 'raw data reused',
  );
  for (const domain of selected) {
    const t = performance.now();
    const lineage = lineageSink({ dir: join(config.dataDir, 'lineage'), domain: domain.name, url: process.env.OPENLINEAGE_URL, log });
    // A domain whose raw files the mesh manifest places (`data`) is rebuilt when they change; the others come from the generator.
    const ownData = meshManifest.domains.find((entry) => entry.name === domain.name)?.data ?? null;
    const rawDir = domainRawDir(domain.name, config);
    // What the products' declared sources hold past their watermarks, as increments (or their first full files).
    try {
      const extracted = (await extractSources(domain, rawDir)).filter(({ kind }) => kind !== 'nothing');
      if (extracted.length > 0) log.info({ domain: domain.name, extracted }, 'extracted from its sources');
    } catch (error) {
      log.error({ domain: domain.name, error: (error as Error).message }, 'extraction failed; the serving warehouse stays');
      outcomes.set(domain.name, { outcome: 'failed', build: { built: false, loadError: (error as Error).message } });
      continue;
    }
    const build = await ensureWarehouse({
      domain,
      url: warehouseUrlOf(domain.name, config),
      rawDir,
      sourceFingerprint: ownData ? await folderFingerprint(ownData) : manifest.fingerprint,
      ...(!ownData && manifest.extractedAt ? { sourceExtractedAt: manifest.extractedAt } : {}),
      ...run,
      force: reset || Boolean(run.force),
      onLineage: (events) => lineage.emit(events),
      onProgress: (progress) => {
        if (progress.step === 'loading') log.info({ domain: domain.name }, 'loading the raw files into a new warehouse version');
        if (progress.step === 'loaded') log.info({ domain: domain.name, rows: progress.rows }, 'raw files loaded; running the data quality checks');
        if (progress.step === 'checked') log.info({ domain: domain.name, checks: summarizeRun(progress.run), outcome: progress.run.outcome }, 'data quality checks done');
        if (progress.step === 'profiled') log.info({ domain: domain.name, personalData: summarizeProfiles(progress.profiles) }, 'columns profiled');
        if (progress.step === 'swapping') log.info({ domain: domain.name }, 'swapping the new version in');
      },
    });
    await lineage.flush();
    const ms = Math.round(performance.now() - t);
    const checks = build.quality && summarizeRun(build.quality);
    if (build.loadError !== undefined) outcomes.set(domain.name, { outcome: 'failed', build });
    else if (build.rejectedKeptAt !== undefined) outcomes.set(domain.name, { outcome: 'rejected', build });
    else if (build.built) outcomes.set(domain.name, { outcome: 'swapped', build });
    if (build.loadError !== undefined) {
      log.error({ domain: domain.name, ms, error: build.loadError }, 'load failed; the serving warehouse stays');
    } else if (build.rejectedKeptAt !== undefined) {
      // The serving version stays; the rejected load is kept for inspection.
      log.warn(
        { domain: domain.name, rows: build.rows, ms, failing: build.quality!.results.filter((r) => r.outcome === 'fail' || r.outcome === 'error'), keptAt: build.rejectedKeptAt },
        `load rejected by its quality checks (${checks}); the serving warehouse stays`,
      );
    } else if (build.backfill) {
      log.info({ domain: domain.name, backfill: build.backfill, changes: build.incremental?.changes, ms, ...(checks ? { checks } : {}) }, 'range reloaded into the serving warehouse (backfill)');
    } else if (build.incremental) {
      log.info({ domain: domain.name, increments: build.incremental.increments, changes: build.incremental.changes, watermark: build.watermark, ms, ...(checks ? { checks } : {}) }, 'increments merged into the serving warehouse');
    } else {
      log.info({ domain: domain.name, rows: build.rows, ms, ...(checks ? { checks } : {}) }, build.built ? 'warehouse built' : 'warehouse reused');
    }
  }
  return outcomes;
}

/** Builds the domain's warehouse if needed, then serves it until SIGINT or SIGTERM. */
async function serve(name: string): Promise<void> {
  const config = subgraphConfigFromEnv();
  const log = pino({ level: config.logLevel, base: { service: name } });
  const domain = domains.find((candidate) => candidate.name === name)!;
  // Configuration mistakes (a development identity in production) stop the start before any work.
  const identity = identityConfigFromEnv();
  eventsNatsUrlFromEnv(); // a malformed broker URL stops the start, as any configuration mistake
  const allowedHosts = allowedHostsFromEnv();
  const hashKey = hashKeyFromEnv();
  const signature = { key: signingKeyFromEnv(), previousKey: previousSigningKeyFromEnv(), directAccess: directAccessFromEnv() };
  // Where and as whom it reads other domains' products it is fed by (refused in production without a token of its own).
  const inputAccess = inputsOf(domain).length > 0 ? inputAccessFromEnv(domain.name) : null;
  const loadOutcome = (await prepareDomains(config, [domain], log)).get(domain.name)?.outcome;
  const warehouse = openWarehouse(warehouseUrlOf(domain.name, config));
  const qualityHistory = await qualityHistoryAt(warehouseUrlOf(domain.name, config));
  const loadFacts = await loadFactsAt(warehouseUrlOf(domain.name, config), domain);
  const profiles = await profilesAt(warehouseUrlOf(domain.name, config));
  const servingSink = lineageSink({ dir: join(config.dataDir, 'lineage'), domain: domain.name, url: process.env.OPENLINEAGE_URL, log });
  const audit = await openAuditSinkFromEnv({ service: domain.name, defaultDir: config.auditDir });
  const server = await startSubgraphServer({
    audit,
    strictAuditLevel: config.strictAuditLevel,
    domain,
    warehouse,
    log,
    identity,
    allowedHosts,
    signature,
    hashKey,
    port: portOf(meshManifest.domains.find((entry) => entry.name === name)!.url),
    qualityHistory,
    loadFacts,
    profiles,
    ...(loadOutcome ? { loadOutcome } : {}),
    onLineage: (events) => servingSink.emit(events),
    qualityIntervalMs: config.qualityIntervalMs,
    host: config.host,
  });
  // Its change feed: what each new version changed, published once it is served (and at start, what the last run left).
  const changes = startChangePublisher({
    openFeed: () => changeFeedFromEnv({ dataDir: config.dataDir, name: `subgraph-${domain.name}` }),
    domain,
    url: warehouseUrlOf(domain.name, config),
    signingKey: signature.key,
    log,
  });
  void changes.publish();
  // Its products' pipelines: each run merges what was delivered since the serving version (or loads
  // every file again when a full file changed, or for a backfill) and serves the new version without
  // a restart.
  const runner = await servePipelines({
    domain,
    server,
    url: warehouseUrlOf(domain.name, config),
    dataDir: config.dataDir,
    log,
    load: async ({ trigger, range, run, gate }) =>
      (await prepareDomains(config, [domain], log, false, { force: trigger === 'backfill' && !range, ...(range ? { backfill: range } : {}), lineageParent: run, gate, eventsPublishedThrough: changes.publishedThrough() })).get(domain.name),
    onLineage: (events) => servingSink.emit(events),
    onServed: () => void changes.publish(),
  });
  // Its inputs: other domains' products it is fed by, followed by their change feeds, read through the gateway, merged by its pipelines.
  const inputs = inputAccess
    ? followInputs({
        domain,
        rawDir: domainRawDir(domain.name, config),
        openFeed: () => changeFeedFromEnv({ dataDir: config.dataDir, name: `inputs-${domain.name}` }),
        reader: gatewayInputReader(inputAccess),
        load: (feeds) => runner.runToEnd(feeds, 'event'),
        servingKeys: (input) => readWarehouseAt(warehouseUrlOf(domain.name, config), (db) => keptKeys(db, domain, input), []),
        log,
      })
    : null;
  if (inputs) server.attachInputs(() => inputs.status());
  // Said once every route it serves is up (its pipelines' too): tests and operators act on it.
  log.info({ url: server.url }, `subgraph ${domain.name} serving`);
  // Once, whichever signal comes first: Ctrl-C reaches every process of the mesh, and the launcher then sends SIGTERM too.
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      await inputs?.stop(); // what it wrote and did not merge, the next start merges
      await runner.stop(); // a run in progress is aborted: its build was beside the serving version
      await changes.stop(); // what it did not publish, the outbox keeps for the next start
      await server.stop(); // requests in flight finish, and write their records
      await audit.close(); // then whatever is pending is written, and the shutdown checkpoint
      await server.serving().close();
      process.exit(0);
    })());
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

/** Delivers an increment of new and changed rows to the generated raw files every LIVE_SOURCES seconds, until SIGINT or SIGTERM. */
async function live(): Promise<void> {
  const config = subgraphConfigFromEnv();
  const log = pino({ level: config.logLevel, base: { service: 'live-sources' } });
  const seconds = liveSourcesFromEnv();
  if (seconds === null) throw new Error('The live sources are off (LIVE_SOURCES=off).');
  const rawDir = rawDirOf(config);
  const { deliverIncrement } = await import('./synthetic-sources/live.js');
  let timer: NodeJS.Timeout | undefined;
  let delivering: Promise<unknown> = Promise.resolve();
  // One delivery at a time: the next is scheduled once this one is written (they share raw/live.json).
  const deliver = () => {
    delivering = (async () => {
      if (!(await readRawManifest(rawDir))) return log.info({ rawDir }, 'no generated data yet: nothing delivered');
      const delivery = await deliverIncrement({ rawDir });
      log.info({ increment: delivery.name, rows: delivery.rows }, 'live sources delivered an increment');
    })()
      .catch((error: unknown) => log.error({ err: error }, 'the live sources could not deliver'))
      .finally(() => {
        timer = setTimeout(deliver, seconds * 1000);
      });
  };
  timer = setTimeout(deliver, seconds * 1000);
  log.info({ rawDir, everySeconds: seconds }, 'live sources started');
  const stop = async () => {
    clearTimeout(timer);
    await delivering; // never half an increment: each is renamed into place whole
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

const domainArgument = () => new Argument('<domain>', 'the domain').choices(domains.map((domain) => domain.name));
const command = defineCommand('tsx subgraphs/main.ts', 'The domains\' subgraphs: build their warehouses, serve one, print one\'s SDL. Configuration comes from the environment (README).');
command
  .command('prepare')
  .description('generates the raw data if needed and builds every domain\'s warehouse (npm run data)')
  .option('--reset', 'generate the raw data again and rebuild every warehouse')
  .action(async (options: { reset?: boolean }) => {
    const config = subgraphConfigFromEnv();
    await prepareDomains(config, domains, pino({ level: config.logLevel, base: { service: 'subgraphs' } }), options.reset === true);
  });
command
  .command('serve')
  .description('builds the domain\'s warehouse if needed, then serves it (npm run subgraph -- <domain>)')
  .addArgument(domainArgument())
  .action(serviceAction(serve));
command
  .command('live')
  .description('delivers new and changed rows to the generated raw files every LIVE_SOURCES seconds (npm start runs it in development)')
  .action(serviceAction(live));
command
  .command('sdl')
  .description('prints the subgraph SDL the domain serves, for the registry (npm run -s sdl -- <domain>)')
  .addArgument(domainArgument())
  .action((name: string) => {
    process.stdout.write(printDomainSdl(domains.find((candidate) => candidate.name === name)!));
  });

await runCommand(command);
