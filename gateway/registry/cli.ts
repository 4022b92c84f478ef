/**
 * The registry's command line, for domain teams and their CI (`npm run registry -- <command>`):
 *
 *   check   <subgraph> (--schema FILE [--documents DIR] | --introspect URL) [--url URL]   would it be accepted?
 *   publish <subgraph> (--schema FILE [--documents DIR] | --introspect URL) [--url URL]   publish it if every check passes
 *   history <subgraph>                                                   its versions, newest first
 *   documents <subgraph> [--version N]                                   the data product documents (ODPS, ODCS) of a version
 *   rollback <subgraph> [--to VERSION]                                   publish an earlier version again
 *   remove <subgraph>                                                    take it out of the supergraph (its history stays)
 *   owner <subgraph> --team TEAM                                         set the team that owns it (the governance group)
 *   publish-running [--subgraphs name=url,…]                             publish each running subgraph (default env SUBGRAPHS)
 *   status                                                               what the supergraph is made of
 *   clients register <client> FILE… | --manifest FILE                    register a client's documents, or its
 *                                                                        trusted-documents manifest (hash → operation)
 *
 * Options: `--registry` (default env `REGISTRY_URL`, else `<DATA_DIR>/registry`): a directory or a
 * PostgreSQL URL is the store itself (the platform's operators), an http(s) URL the registry API
 * (`http://<gateway>/registry`), called with the token of env `REGISTRY_TOKEN` or `--token-file`:
 * the API records the token's subject and team as the publisher and lets a team write only the
 * subgraphs it owns. `--by` (who publishes, on the store; default env `REGISTRY_USER`, else the OS
 * user), `--team` (publish through the API: the team a new subgraph is claimed for), `--usage-days` (default 30),
 * `--json` (the report as JSON), `--verbose` (list safe changes too). A subgraph's data product
 * documents come with `--introspect` from its `/catalog`, or from `--documents DIR` (the files
 * `npm run catalog -- export --domain <subgraph>` writes); without either, the serving version's stay. Exit codes: 0 accepted, 1 refused by a check, 2 the command
 * failed (usage, unreadable SDL, unknown version, registry unavailable).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { buildSchema, parse, validate, type GraphQLError } from 'graphql';
import { fetchFailureReason, fetchSubgraphSdl } from '../supergraph/supergraph.js';
import { DOCUMENT_ID } from '../request-stages/trusted-documents.js';
import { defineCommand, isHelpAskedFor, wholeNumber } from '../../policy/command-line.js';
import { isRegistryApiUrl, remoteRegistry, type RemoteRegistry, type RemoteReport } from './remote.js';
import { RegistryError } from './codes.js';
import { openRegistry, registryUrlFromEnv } from './open.js';
import { parseSubgraphList, subgraphEndpointsFromEnv } from '../config.js';
import { documentProblems, type ProductDocument } from '../catalog/domain-entries.js';
import { checkProposal, fetchSubgraphDocuments, publishedHistory, publishedVersion, publishRunningSubgraphs, publishSubgraph, removeSubgraph, rollbackSubgraph, setSubgraphOwner } from './publish.js';
import { assertClientName, assertSubgraphName, type Registry } from './registry.js';

export interface CliResult {
  readonly exitCode: 0 | 1 | 2;
  readonly output: string;
}

/** The command a command line chose, with its arguments and options (named as on the command line). */
interface Chosen {
  readonly command: string;
  readonly args: string[];
  readonly values: Record<string, string | boolean | undefined>;
}

/**
 * The registry's command line, on commander: each subcommand with its own options and `--help`.
 * Output goes to `write` (the in-process runner collects it); nothing exits the process here.
 */
function registryProgram(chosen: (choice: Chosen) => void, write: (text: string) => void): Command {
  const program = defineCommand('npm run -s registry --', 'Checks and publishes subgraphs, their data product documents and client documents. Exit 0 accepted, 1 refused by a check, 2 the command failed.')
    .configureOutput({ writeOut: write, writeErr: write })
    .showHelpAfterError('(run with --help for usage)');
  const common = (command: Command) =>
    command
      .option('--registry <url|dir>', 'the registry: its API (http://<gateway>/registry) or its store (a directory, a postgres:// URL); default env REGISTRY_URL, else <DATA_DIR>/registry')
      .option('--token-file <file>', 'with the registry API: a file holding the token (default env REGISTRY_TOKEN)')
      .option('--usage-days <n>', 'how far back client usage counts (default 30)', wholeNumber(1, 3650))
      .option('--json', 'the report as JSON')
      .option('--verbose', 'list safe changes too');
  const by = (command: Command) => command.option('--by <name>', 'who publishes (default env REGISTRY_USER, else the OS user)');
  const proposal = (command: Command) =>
    command
      .argument('<subgraph>', 'the subgraph\'s name')
      .option('--schema <file>', 'the SDL, from a file')
      .option('--documents <dir>', 'with --schema: the data product documents `npm run catalog -- export` wrote')
      .option('--introspect <url>', 'the SDL and documents, from the running subgraph')
      .option('--url <url>', 'the routing URL (default: the --introspect URL, else the serving version\'s)');
  const take = (command: string) =>
    function (this: Command, ...positionals: unknown[]) {
      const options = this.opts<Record<string, string | number | boolean | undefined>>();
      const values: Record<string, string | boolean | undefined> = {};
      for (const [key, value] of Object.entries(options)) values[key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)] = typeof value === 'number' ? String(value) : value;
      const args = positionals.slice(0, -2).flatMap((value) => (Array.isArray(value) ? (value as string[]) : value === undefined ? [] : [String(value)]));
      chosen({ command, args, values });
    };
  // Given before any command (or with none), they are refused only for want of a command.
  common(program.enablePositionalOptions());
  common(proposal(program.command('check').description('would this version be accepted? (nothing is published)'))).action(take('check'));
  by(common(proposal(program.command('publish').description('publishes the version if every check passes')))).option('--team <team>', 'with the registry API: the team a new subgraph is claimed for (default: the token\'s only team)').action(take('publish'));
  common(program.command('history').description('the subgraph\'s versions, newest first').argument('<subgraph>', 'the subgraph\'s name')).action(take('history'));
  common(program.command('documents').description('the data product documents (ODPS, ODCS) of a version').argument('<subgraph>', 'the subgraph\'s name').option('--version <n>', 'the version (default: the serving one)', wholeNumber(1, 999_999_999))).action(take('documents'));
  by(common(program.command('rollback').description('publishes an earlier version again').argument('<subgraph>', 'the subgraph\'s name').option('--to <version>', 'the version (default: the one before the serving one)', wholeNumber(1, 999_999_999)))).action(take('rollback'));
  common(program.command('remove').description('takes the subgraph out of the supergraph (its history stays), if nothing it serves is in use').argument('<subgraph>', 'the subgraph\'s name')).action(take('remove'));
  by(common(program.command('owner').description('sets the team that owns the subgraph (the governance group)').argument('<subgraph>', 'the subgraph\'s name').requiredOption('--team <team>', 'the owning team'))).action(take('owner'));
  by(common(program.command('publish-running').description('publishes each running subgraph').option('--subgraphs <list>', 'name=url,… (default env SUBGRAPHS)'))).action(take('publish-running'));
  common(program.command('status').description('what the supergraph is made of')).action(take('status'));
  const clients = program.command('clients').description('client documents');
  by(
    common(
      clients
        .command('register')
        .description('registers a client\'s documents (checks then protect what they use), or its trusted-documents manifest (the client may send only those)')
        .argument('<client>', 'the client (the token\'s azp)')
        .argument('[files...]', 'GraphQL documents')
        .option('--manifest <file>', 'a persisted-documents manifest: { "sha256:<hex>": "<document>" }'),
    ),
  ).action(function (this: Command, client: string, files: string[]) {
    take('clients').call(this, 'register', client, ...files, this.opts(), this);
  });
  return program;
}

function whole(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new RegistryError('REGISTRY_USAGE', `--${option} must be a whole number, got "${value.slice(0, 40)}".`);
  return Number(value);
}

async function readSdl(values: { schema?: string; introspect?: string }, name: string): Promise<string> {
  if (Boolean(values.schema) === Boolean(values.introspect)) {
    throw new RegistryError('REGISTRY_USAGE', 'Give the SDL with exactly one of --schema FILE or --introspect URL.');
  }
  try {
    if (values.schema) return await readFile(values.schema, 'utf8');
    return await fetchSubgraphSdl({ name, url: values.introspect! });
  } catch (error) {
    const reason = fetchFailureReason(error);
    throw new RegistryError('REGISTRY_SDL_UNAVAILABLE', `The SDL of ${name} cannot be read from ${values.schema ?? values.introspect}: ${reason}`, { cause: error });
  }
}

/**
 * A subgraph's data product documents from a folder `npm run catalog -- export` wrote: each
 * `<subgraph>.<product>.odps.json` with its `<subgraph>.<product>.odcs.json`, and its
 * `<subgraph>.<product>.profile.json` when the export found the load's column profile.
 */
async function readDocumentsDir(dir: string, subgraph: string): Promise<ProductDocument[]> {
  const fail = (why: string, cause?: unknown): never => {
    throw new RegistryError('REGISTRY_DOCUMENTS_UNAVAILABLE', `The data product documents of ${subgraph} cannot be read from ${dir}: ${why}`, { cause });
  };
  let files: string[] = [];
  try {
    files = await readdir(dir);
  } catch (error) {
    fail((error as Error).message, error);
  }
  const ids = files.filter((file) => file.startsWith(`${subgraph}.`) && file.endsWith('.odps.json')).map((file) => file.slice(0, -'.odps.json'.length)).sort();
  if (ids.length === 0) fail(`it holds no ${subgraph}.<product>.odps.json (write them with: npm run catalog -- export --domain ${subgraph} --out ${dir})`);
  const read = async (file: string): Promise<any> => {
    try {
      return JSON.parse(await readFile(join(dir, file), 'utf8'));
    } catch (error) {
      return fail(`${file}: ${(error as Error).message}`, error);
    }
  };
  const documents: ProductDocument[] = [];
  for (const id of ids) {
    if (!files.includes(`${id}.odcs.json`)) fail(`${id}.odps.json has no ${id}.odcs.json beside it`);
    const odps = await read(`${id}.odps.json`);
    const odcs = await read(`${id}.odcs.json`);
    if (odps?.kind !== 'DataProduct' || odcs?.kind !== 'DataContract') fail(`${id}: the files are not an ODPS data product and an ODCS data contract`);
    const profile = files.includes(`${id}.profile.json`) ? await read(`${id}.profile.json`) : undefined;
    const problems = documentProblems({ id, odps, odcs, ...(profile === undefined ? {} : { profile }) });
    if (problems.length > 0) fail(`${id}: ${problems.join('; ')}`);
    documents.push({ id, odps, odcs, ...(profile === undefined ? {} : { profile }) });
  }
  return documents;
}

/** The report as text: errors and warnings in full, safe changes counted (listed with `--verbose`). */
async function readDocumentFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file} cannot be read: ${(error as Error).message}`);
  }
}

/** A persisted-documents manifest: `{ "sha256:<hex>": "<document>" }`, each hash the document's. */
async function readManifest(file: string): Promise<[string, string][]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readDocumentFile(file));
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file} is not JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file} is not a manifest: an object of "sha256:<hash>": "<document>".`);
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file} holds no document.`);
  for (const [id, body] of entries) {
    if (!DOCUMENT_ID.test(id) || typeof body !== 'string') {
      throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file}: "${id.slice(0, 80)}" is not a "sha256:<64 hex>" key with a document string.`);
    }
    if (`sha256:${createHash('sha256').update(body).digest('hex')}` !== id) {
      throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${file}: ${id} is not the SHA-256 of its document.`);
    }
  }
  return entries as [string, string][];
}

function renderReport(report: RemoteReport, heading: string, verbose: boolean): string {
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.filter((f) => f.severity === 'warning').length;
  const verdict = report.accepted ? (report.unchanged ? 'UNCHANGED' : 'ACCEPTED') : 'REFUSED';
  const lines = [`${verdict}: ${heading} (${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'})`];
  for (const severity of verbose ? (['error', 'warning', 'info'] as const) : (['error', 'warning'] as const)) {
    for (const f of report.findings.filter((x) => x.severity === severity)) {
      lines.push(`  ${severity.padEnd(7)} ${f.code}${f.coordinate ? ` ${f.coordinate}` : ''}: ${f.message.replace(/\s*\n\s*/g, ' ')}`);
    }
  }
  const safe = report.findings.filter((f) => f.code === 'SAFE_CHANGE').length;
  if (!verbose && safe > 0) lines.push(`  ${safe} safe change${safe === 1 ? '' : 's'} (--verbose lists them)`);
  const unchanged = report.findings.find((f) => f.code === 'UNCHANGED');
  if (!verbose && unchanged) lines.push(`  ${unchanged.message}`);
  return lines.join('\n');
}

/** A write's outcome, from the store or the API (the report without its composed supergraph and documents). */
interface WriteOutcome {
  readonly report: RemoteReport & { composed?: unknown; dataProducts?: unknown };
  readonly published: { readonly name: string; readonly version: number } | null;
  readonly revision: number;
}

function publishResult(outcome: WriteOutcome, options: { json: boolean; verbose: boolean }, what: string): CliResult {
  const { report, published } = outcome;
  const exitCode = report.accepted ? 0 : 1;
  if (options.json) {
    const { composed: _composed, dataProducts: _documents, ...rest } = report;
    return { exitCode, output: JSON.stringify({ ...rest, published: published && { ...published, sdl: undefined, dataProducts: undefined }, revision: outcome.revision }, null, 2) };
  }
  const tail = published
    ? `\nPublished ${published.name} version ${published.version} (registry revision ${outcome.revision}); the gateway picks it up without a restart.`
    : report.accepted
      ? ''
      : '\nNothing was published; the serving supergraph is unchanged.';
  return { exitCode, output: `${renderReport(report, what, options.verbose)}${tail}` };
}

function publisher(values: { by?: string }, env: NodeJS.ProcessEnv): string {
  const by = values.by ?? env.REGISTRY_USER ?? userInfo().username;
  return by.slice(0, 128);
}

async function run(registry: Registry, command: string, args: string[], values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Promise<CliResult> {
  const json = values.json === true;
  const str = (key: string) => values[key] as string | undefined;
  const judge = { usageDays: whole(str('usage-days'), 'usage-days') ?? 30 };
  const [name] = args;
  const needName = () => {
    if (!name) throw new RegistryError('REGISTRY_USAGE', `${command} needs a subgraph name.`);
    return name;
  };

  switch (command) {
    case 'check':
    case 'publish': {
      const subgraph = assertSubgraphName(needName());
      if (str('documents') && str('introspect')) throw new RegistryError('REGISTRY_USAGE', '--documents goes with --schema; --introspect reads the documents from the running subgraph.');
      const sdl = await readSdl({ schema: str('schema'), introspect: str('introspect') }, subgraph);
      const serving = (await registry.state())?.subgraphs.find((s) => s.name === subgraph);
      const url = str('url') ?? str('introspect') ?? serving?.url;
      if (!url) throw new RegistryError('REGISTRY_USAGE', `${subgraph} has no published version yet: give its routing URL with --url.`);
      const dataProducts = str('documents')
        ? await readDocumentsDir(str('documents')!, subgraph)
        : str('introspect')
          ? await fetchSubgraphDocuments({ name: subgraph, url: str('introspect')! })
          : undefined;
      const proposal = { name: subgraph, url, sdl, ...(dataProducts !== undefined ? { dataProducts } : {}) };
      if (command === 'check') {
        const report = await checkProposal(registry, proposal, judge);
        if (json) {
          const { composed: _composed, dataProducts: _documents, ...rest } = report;
          return { exitCode: report.accepted ? 0 : 1, output: JSON.stringify(rest, null, 2) };
        }
        return { exitCode: report.accepted ? 0 : 1, output: renderReport(report, `${subgraph} against ${registry.location}`, values.verbose === true) };
      }
      const outcome = await publishSubgraph(registry, { ...proposal, publishedBy: publisher(values, env) }, judge);
      return publishResult(outcome, { json, verbose: values.verbose === true }, `publish ${subgraph} to ${registry.location}`);
    }
    case 'publish-running': {
      let endpoints;
      try {
        endpoints = str('subgraphs') ? parseSubgraphList(str('subgraphs')!) : subgraphEndpointsFromEnv(env);
      } catch (error) {
        throw new RegistryError('REGISTRY_USAGE', (error as Error).message);
      }
      const outcomes = await publishRunningSubgraphs(registry, endpoints, { publishedBy: publisher(values, env), ...judge });
      const results = outcomes.map((outcome) => publishResult(outcome, { json, verbose: values.verbose === true }, `publish ${outcome.name} to ${registry.location}`));
      return {
        exitCode: results.some((r) => r.exitCode !== 0) ? 1 : 0,
        output: json ? `[${results.map((r) => r.output).join(',\n')}]` : results.map((r) => r.output).join('\n'),
      };
    }
    case 'rollback': {
      const subgraph = needName();
      const version = whole(str('to'), 'to');
      const outcome = await rollbackSubgraph(registry, { name: subgraph, ...(version !== undefined ? { version } : {}), publishedBy: publisher(values, env), ...judge });
      return publishResult(outcome, { json, verbose: values.verbose === true }, `rollback ${subgraph}${version !== undefined ? ` to version ${version}` : ''}`);
    }
    case 'remove': {
      const subgraph = assertSubgraphName(needName());
      const outcome = await removeSubgraph(registry, { name: subgraph, ...judge });
      return removalResult(outcome, { json, verbose: values.verbose === true }, `remove ${subgraph} from ${registry.location}`);
    }
    case 'owner': {
      const subgraph = assertSubgraphName(needName());
      await setSubgraphOwner(registry, { name: subgraph, team: str('team')!, setBy: publisher(values, env) });
      return { exitCode: 0, output: `${subgraph} is owned by team ${str('team')}: only its tokens (and the governance group's) may publish, roll back or remove it through the registry API.` };
    }
    case 'history': {
      const subgraph = needName();
      const { history, serving } = await publishedHistory(registry, subgraph);
      if (json) return { exitCode: 0, output: JSON.stringify(history.map(({ sdl: _sdl, dataProducts, ...v }) => ({ ...v, dataProducts: dataProducts?.map((p) => ({ id: p.id, version: p.odps.version })) ?? null, serving: v.version === serving })), null, 2) };
      const lines = history.map(
        (v) =>
          `${v.version === serving ? '*' : ' '} v${v.version}  ${v.publishedAt}  ${v.publishedBy}  ${v.url}  sdl ${v.sdlHash.slice(0, 12)}${v.dataProducts ? `  products ${v.dataProducts.map((p) => `${p.id}@${p.odps.version}`).join(', ')}` : ''}${v.note ? `  (${v.note})` : ''}`,
      );
      return { exitCode: 0, output: [`${subgraph}: ${history.length} version(s), * serving`, ...lines].join('\n') };
    }
    case 'documents': {
      const subgraph = needName();
      const version = await publishedVersion(registry, subgraph, whole(str('version'), 'version'));
      return { exitCode: 0, output: JSON.stringify({ subgraph, version: version.version, publishedAt: version.publishedAt, dataProducts: version.dataProducts }, null, 2) };
    }
    case 'status': {
      const state = await registry.state();
      if (!state) return { exitCode: 0, output: `The registry at ${registry.location} is empty: publish a subgraph first.` };
      if (json) return { exitCode: 0, output: JSON.stringify({ ...state, supergraphSdl: undefined, apiSchemaSdl: undefined, subgraphs: state.subgraphs.map(({ sdl: _s, ...v }) => v) }, null, 2) };
      return {
        exitCode: 0,
        output: [
          `revision ${state.revision}, supergraph ${state.supergraphVersion}, composed ${state.composedAt}`,
          ...state.subgraphs.map((v) => `  ${v.name.padEnd(12)} v${v.version}  ${v.url}  by ${v.publishedBy} at ${v.publishedAt}`),
        ].join('\n'),
      };
    }
    case 'clients': {
      const [action, client, ...files] = args;
      const manifest = str('manifest');
      if (action !== 'register' || !client || (files.length === 0) === !manifest) throw new RegistryError('REGISTRY_USAGE', 'clients register needs a client and either document files or --manifest FILE, not both.');
      assertClientName(client);
      const state = await registry.state();
      if (!state) throw new RegistryError('REGISTRY_INVALID_DOCUMENT', 'The registry has no API schema yet to validate documents against: publish first.');
      const schema = buildSchema(state.apiSchemaSdl);
      const entries = await documentsToRegister(files, manifest);
      for (const [name, body] of entries) {
        let errors: readonly GraphQLError[];
        try {
          errors = validate(schema, parse(body));
        } catch (error) {
          errors = [error as GraphQLError];
        }
        if (errors.length > 0) {
          throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${name} does not validate against the current API schema: ${errors.map((e) => e.message).join('; ')}`);
        }
      }
      await registry.registerDocuments(entries.map(([name, body]) => ({ client, name, body, registeredBy: publisher(values, env) })));
      return {
        exitCode: 0,
        output: manifest
          ? `Registered ${entries.length} trusted document(s) for ${client}: tokens issued to ${client} may now send only these; checks protect the coordinates they use.`
          : `Registered ${entries.length} document(s) for ${client}; checks now protect the coordinates they use.`,
      };
    }
    default:
      throw new RegistryError('REGISTRY_USAGE', `Unknown command "${command}".`);
  }
}

function removalResult(outcome: { report: RemoteReport; removed: boolean; revision: number }, options: { json: boolean; verbose: boolean }, what: string): CliResult {
  const exitCode = outcome.removed ? 0 : 1;
  if (options.json) {
    const { composed: _composed, dataProducts: _documents, ...rest } = outcome.report as RemoteReport & { composed?: unknown; dataProducts?: unknown };
    return { exitCode, output: JSON.stringify({ ...rest, removed: outcome.removed, revision: outcome.revision }, null, 2) };
  }
  const tail = outcome.removed ? `\nRemoved (registry revision ${outcome.revision}); its history stays.` : '\nNothing was removed; the serving supergraph is unchanged.';
  return { exitCode, output: `${renderReport(outcome.report, what, options.verbose)}${tail}` };
}

/** Documents to register: named files, or a trusted-documents manifest. */
async function documentsToRegister(files: readonly string[], manifest: string | undefined): Promise<[name: string, body: string][]> {
  const entries: [string, string][] = manifest ? await readManifest(manifest) : [];
  for (const file of files) entries.push([basename(file), await readDocumentFile(file)]);
  return entries;
}

/** The same commands, through the registry API: who writes is the token's, not a name given here. */
async function runRemote(api: RemoteRegistry, command: string, args: string[], values: Record<string, string | boolean | undefined>): Promise<CliResult> {
  const json = values.json === true;
  const verbose = values.verbose === true;
  const str = (key: string) => values[key] as string | undefined;
  if (str('by') !== undefined) throw new RegistryError('REGISTRY_USAGE', '--by names the publisher on the store; the registry API records the token\'s subject and team instead.');
  const [name] = args;
  const needName = () => {
    if (!name) throw new RegistryError('REGISTRY_USAGE', `${command} needs a subgraph name.`);
    return assertSubgraphName(name);
  };
  switch (command) {
    case 'check':
    case 'publish': {
      const subgraph = needName();
      if (str('documents') && str('introspect')) throw new RegistryError('REGISTRY_USAGE', '--documents goes with --schema; --introspect reads the documents from the running subgraph.');
      const sdl = await readSdl({ schema: str('schema'), introspect: str('introspect') }, subgraph);
      const url = str('url') ?? str('introspect');
      const dataProducts = str('documents') ? await readDocumentsDir(str('documents')!, subgraph) : str('introspect') ? await fetchSubgraphDocuments({ name: subgraph, url: str('introspect')! }) : undefined;
      const proposal = { sdl, ...(url ? { url } : {}), ...(dataProducts !== undefined ? { dataProducts } : {}) };
      if (command === 'check') {
        const { report } = await api.check(subgraph, proposal);
        return { exitCode: report.accepted ? 0 : 1, output: json ? JSON.stringify(report, null, 2) : renderReport(report, `${subgraph} against ${api.location}`, verbose) };
      }
      const outcome = await api.publish(subgraph, { ...proposal, ...(str('team') ? { team: str('team')! } : {}) });
      return publishResult(outcome, { json, verbose }, `publish ${subgraph} to ${api.location}`);
    }
    case 'rollback': {
      const subgraph = needName();
      const version = whole(str('to'), 'to');
      return publishResult(await api.rollback(subgraph, version), { json, verbose }, `rollback ${subgraph}${version !== undefined ? ` to version ${version}` : ''}`);
    }
    case 'remove': {
      const subgraph = needName();
      return removalResult(await api.remove(subgraph), { json, verbose }, `remove ${subgraph} from ${api.location}`);
    }
    case 'owner': {
      const subgraph = needName();
      const { owner } = await api.setOwner(subgraph, str('team')!);
      return { exitCode: 0, output: `${subgraph} is owned by team ${owner.team} (set by ${owner.setBy}).` };
    }
    case 'history': {
      const subgraph = needName();
      const { serving, owner, versions } = await api.history(subgraph);
      if (json) return { exitCode: 0, output: JSON.stringify(versions.map((v) => ({ ...v, serving: v.version === serving })), null, 2) };
      const lines = versions.map((v) => `${v.version === serving ? '*' : ' '} v${v.version}  ${v.publishedAt}  ${v.publishedBy}  ${v.url}  sdl ${v.sdlHash.slice(0, 12)}${v.note ? `  (${v.note})` : ''}`);
      return { exitCode: 0, output: [`${subgraph}: ${versions.length} version(s), * serving; owner ${owner ? `team ${owner.team}` : 'none'}`, ...lines].join('\n') };
    }
    case 'documents':
      return { exitCode: 0, output: JSON.stringify(await api.documents(needName(), whole(str('version'), 'version')), null, 2) };
    case 'status': {
      const status = await api.status();
      if (json) return { exitCode: 0, output: JSON.stringify(status, null, 2) };
      return {
        exitCode: 0,
        output: [`revision ${status.revision}, supergraph ${status.supergraphVersion ?? '(none)'}`, ...status.subgraphs.map((v) => `  ${v.name.padEnd(12)} v${v.version}  ${v.url}  by ${v.publishedBy} at ${v.publishedAt}  owner ${v.owner ? `team ${v.owner.team}` : 'none'}`)].join('\n'),
      };
    }
    case 'clients': {
      const [action, client, ...files] = args;
      const manifest = str('manifest');
      if (action !== 'register' || !client || (files.length === 0) === !manifest) throw new RegistryError('REGISTRY_USAGE', 'clients register needs a client and either document files or --manifest FILE, not both.');
      const entries = await documentsToRegister(files, manifest);
      const { registered } = await api.registerDocuments(assertClientName(client), entries.map(([documentName, body]) => ({ name: documentName, body })));
      return { exitCode: 0, output: `Registered ${registered} document(s) for ${client}; checks now protect the coordinates they use.` };
    }
    default:
      throw new RegistryError('REGISTRY_USAGE', `${command} runs on the registry's store, not through its API: give --registry a directory or a postgres:// URL.`);
  }
}

/** The registry API's token: env `REGISTRY_TOKEN`, or the file `--token-file` names. */
async function tokenOf(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = values['token-file'] as string | undefined;
  if (!file) return env.REGISTRY_TOKEN?.trim() || undefined;
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new RegistryError('REGISTRY_USAGE', `--token-file ${file} cannot be read: ${(error as Error).message}`);
  }
}

/** Runs one command; never throws (a failure is exit code 2 with its code and message). */
export async function runRegistryCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  let registry: Registry | undefined;
  try {
    let output = '';
    let choice: Chosen | undefined;
    try {
      await registryProgram((chosen) => (choice = chosen), (text) => (output += text)).parseAsync([...argv], { from: 'user' });
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error;
      // Help asked for (or shown for a bare `clients`): exit 0 with it; a usage mistake: exit 2, naming it.
      if (isHelpAskedFor(error)) return { exitCode: 0, output: output.trimEnd() };
      // No command at all: commander shows the help, as an error.
      if (error.code === 'commander.help') throw new RegistryError('REGISTRY_USAGE', 'Give a command (run with --help for the list).');
      throw new RegistryError('REGISTRY_USAGE', output.replace(/^error: /, '').trimEnd());
    }
    if (!choice) throw new RegistryError('REGISTRY_USAGE', 'Give a command (run with --help for the list).');
    const { command, args, values } = choice;
    const location = (values.registry as string | undefined) ?? registryUrlFromEnv(env);
    if (isRegistryApiUrl(location)) return await runRemote(remoteRegistry(location, await tokenOf(values, env)), command, args, values);
    if (values['token-file'] !== undefined || values.team !== undefined && command === 'publish') throw new RegistryError('REGISTRY_USAGE', '--token-file and --team go with the registry API (--registry http://<gateway>/registry); on the store, the operator writes as --by.');
    registry = await openRegistry(location);
    return await run(registry, command, args, values, env);
  } catch (error) {
    if (error instanceof RegistryError) return { exitCode: 2, output: `error ${error.code}: ${error.message}` };
    return { exitCode: 2, output: `error REGISTRY_UNAVAILABLE: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    await registry?.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { exitCode, output } = await runRegistryCli(process.argv.slice(2));
  (exitCode === 2 ? process.stderr : process.stdout).write(`${output}\n`);
  process.exit(exitCode);
}
