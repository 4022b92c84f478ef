/**
 * `npm run pipelines -- <command>`: the operators' view of the data products' pipelines, through each
 * domain's subgraph (its `/pipelines` route, signed with the gateway's key, as the platform's routes
 * are), found where the gateway finds them: `SUBGRAPHS` (name=url,…), else the mesh manifest.
 *
 *   status [--domain NAME]   each pipeline's schedule, next run, pause and last run
 *   run <domain.product> [--accept-anomalies]
 *                            a run now (its dependents follow); refused while paused or running;
 *                            with --accept-anomalies none of its anomalies rejects its load, and its
 *                            measures start the baseline later runs are judged by
 *   backfill <domain.product> [--from DAY --to DAY] [--accept-anomalies]
 *                            every source file loaded again, or only the rows of the product's time
 *                            column (its SLA's latency element) from one day to another
 *   pause <domain.product>   its scheduled and dependent runs are skipped until resumed
 *   resume <domain.product>
 *
 * Exit 0 done, 1 refused (paused, a run already queued or running), 2 failed (unknown pipeline or
 * domain, a wrong range, a subgraph not answering, a wrong command line).
 */
import { defineCommand, CommandFailure, EXIT_FAILED, EXIT_REFUSED, runCommand } from '../policy/command-line.js';
import { subgraphEndpointsFromEnv, type SubgraphEndpoint } from '../gateway/config.js';
import { DEFAULT_MESH_MANIFEST } from '../policy/mesh-manifest.js';
import { SIGNATURE_HEADER, signSubgraphRequest, signingKeyFromEnv } from '../policy/subgraph-signature.js';

interface PipelineLine {
  readonly id: string;
  readonly everySeconds: number | null;
  readonly nextRunAt: string | null;
  readonly paused: boolean;
  readonly runs: readonly { readonly trigger: string; readonly range?: { from: string; to: string }; readonly outcome: string; readonly load: string | null; readonly endedAt: string; readonly error: string | null }[];
}

/** POSTs to a domain's `/pipelines`, signed; its answer, or a CommandFailure with its code and exit. */
async function ask(domain: SubgraphEndpoint, body: Record<string, string | boolean | undefined>): Promise<any> {
  const text = JSON.stringify(body);
  let response: Response;
  try {
    response = await fetch(new URL('pipelines', domain.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: signingKeyFromEnv(), body: text }) },
      body: text,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new CommandFailure(`PIPELINE_UNREACHABLE: the ${domain.name} subgraph at ${domain.url} did not answer: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`, EXIT_FAILED);
  }
  const answer = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (response.ok) return answer;
  const code = answer?.error?.code ?? `HTTP_${response.status}`;
  throw new CommandFailure(`${code}: ${answer?.error?.message ?? `the ${domain.name} subgraph answered HTTP ${response.status}`}`, response.status === 409 ? EXIT_REFUSED : EXIT_FAILED);
}

/** This machine's subgraphs (as the gateway reads them), and where the list comes from. */
function endpoints(): { readonly domains: readonly SubgraphEndpoint[]; readonly from: string } {
  try {
    return { domains: subgraphEndpointsFromEnv(), from: process.env.SUBGRAPHS ? 'SUBGRAPHS' : process.env.MESH_MANIFEST || DEFAULT_MESH_MANIFEST };
  } catch (error) {
    throw new CommandFailure((error as Error).message, EXIT_FAILED);
  }
}

/** The subgraph of a pipeline's address. */
function domainOf(pipeline: string): SubgraphEndpoint {
  const manifest = endpoints();
  const name = pipeline.split('.')[0]!;
  const domain = manifest.domains.find((candidate) => candidate.name === name);
  if (!domain || !pipeline.includes('.')) throw new CommandFailure(`PIPELINE_UNKNOWN: "${pipeline.slice(0, 100)}" is not <domain>.<product> of a domain of ${manifest.from} (${manifest.domains.map((d) => d.name).join(', ')}).`, EXIT_FAILED);
  return domain;
}

const every = (seconds: number | null) => (seconds === null ? 'when asked' : seconds % 86_400 === 0 ? `every ${seconds / 86_400} d` : seconds % 3_600 === 0 ? `every ${seconds / 3_600} h` : seconds % 60 === 0 ? `every ${seconds / 60} min` : `every ${seconds} s`);

const ACCEPT = 'the data changed for good: its anomalies are warnings, none rejects the load, and its measures start a new baseline';

const command = defineCommand('npm run pipelines --', "The data products' pipelines: their status, a run now, a backfill, pause and resume (through each domain's subgraph).");
command
  .command('status')
  .description("each pipeline's schedule, next run, pause and last run")
  .option('--domain <name>', 'one domain only')
  .action(async (options: { domain?: string }) => {
    const manifest = endpoints();
    const domains = manifest.domains.filter((domain) => !options.domain || domain.name === options.domain);
    if (domains.length === 0) throw new CommandFailure(`PIPELINE_UNKNOWN: no domain "${String(options.domain).slice(0, 60)}" in ${manifest.from}.`, EXIT_FAILED);
    let failed = false;
    for (const domain of domains) {
      try {
        const { pipelines } = (await ask(domain, { action: 'status' })) as { pipelines: PipelineLine[] };
        for (const line of pipelines) {
          const last = line.runs[0];
          console.log(`${line.id.padEnd(28)} ${every(line.everySeconds).padEnd(14)} ${line.paused ? 'PAUSED' : `next ${line.nextRunAt ?? '-'}`}  last ${last ? `${last.outcome} (${last.trigger}${last.range ? ` ${last.range.from} to ${last.range.to}` : ''}, load ${last.load ?? '-'}) at ${last.endedAt}${last.error ? `: ${last.error}` : ''}` : 'none'}`);
        }
      } catch (error) {
        failed = true;
        console.log(`${domain.name.padEnd(28)} ${(error as Error).message}`);
      }
    }
    if (failed) throw new CommandFailure('Some domains did not answer (above).', EXIT_FAILED);
  });
command
  .command('backfill')
  .description("every source file loaded again, or with --from and --to only the rows of those days (the product's time column); its dependents follow")
  .argument('<pipeline>', 'the data product, <domain>.<product>')
  .option('--from <day>', 'the first day reloaded, YYYY-MM-DD')
  .option('--to <day>', 'the last day reloaded, YYYY-MM-DD (included)')
  .option('--accept-anomalies', ACCEPT)
  .action(async (pipeline: string, options: { from?: string; to?: string; acceptAnomalies?: boolean }) => {
    const answer = (await ask(domainOf(pipeline), { action: 'backfill', pipeline, from: options.from, to: options.to, ...(options.acceptAnomalies ? { acceptAnomalies: true } : {}) })) as { runId: string };
    console.log(`${pipeline}: backfill ${options.from || options.to ? `of ${options.from ?? '?'} to ${options.to ?? '?'} ` : ''}run ${answer.runId} queued.`);
  });
command
  .command('run')
  .description('a run now (its dependents follow it); refused while paused or while one is queued or running')
  .argument('<pipeline>', 'the data product, <domain>.<product>')
  .option('--accept-anomalies', ACCEPT)
  .action(async (pipeline: string, options: { acceptAnomalies?: boolean }) => {
    const answer = (await ask(domainOf(pipeline), { action: 'run', pipeline, ...(options.acceptAnomalies ? { acceptAnomalies: true } : {}) })) as { runId: string };
    console.log(`${pipeline}: run ${answer.runId} queued${options.acceptAnomalies ? ', its anomalies accepted' : ''}.`);
  });
for (const [action, description] of [
  ['pause', 'its scheduled and dependent runs are skipped until resumed'],
  ['resume', 'runs again on its schedule'],
] as const) {
  command
    .command(action)
    .description(description)
    .argument('<pipeline>', 'the data product, <domain>.<product>')
    .action(async (pipeline: string) => {
      await ask(domainOf(pipeline), { action, pipeline });
      console.log(`${pipeline} ${action === 'pause' ? 'paused' : 'resumed'}.`);
    });
}

await runCommand(command);
