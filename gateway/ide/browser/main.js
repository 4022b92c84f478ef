// The analysts' IDE in the browser: GraphiQL, bundled with everything it needs by gateway/ide/build.ts
// (no CDN), and beside it the data product catalog (the supergraph's Query.dataProducts: search,
// facets, a product's description, owners, SLA and fields with the policy that applies to the
// signed-in principal, and its example opened in GraphiQL). It reads its configuration from
// ./config.json (the endpoint and the sign-ins offered: OpenID Connect, development); who is signed
// in is session.js's. The example operations, one per data product, come from the catalog once
// signed in, as the catalog writes them for that caller (fields denied to it left out), so that no
// caller learns of fields it cannot read. Plain JavaScript: it runs in the browser, outside the
// project's Node type check.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { createElement as h, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { claimsOf, endSession, finishOidcSignIn, isOidcCallback, loadSession, refreshOidcSession, renewalDelay, saveSession, sessionFor, startOidcSignIn } from './session.js';

// GraphiQL edits in Monaco, whose language services run in web workers: each is a file of this
// bundle (gateway/ide/build.ts), started from the IDE's own origin as an ES module.
globalThis.MonacoEnvironment = {
  getWorker(_id, label) {
    const worker = label === 'json' || label === 'graphql' ? label : 'editor';
    return new Worker(new URL(`./${worker}.worker.js`, import.meta.url), { type: 'module', name: `${worker} worker` });
  },
};

// Monaco cancels the pending work of an editor it disposes (GraphiQL's editors go on sign-out) by
// rejecting it with an error named `Canceled`, which Monaco itself treats as expected
// (`isCancellationError`); one rejected outside its own handler must not surface as an uncaught
// error. Any other rejection still does.
globalThis.addEventListener('unhandledrejection', (event) => {
  const { reason } = event;
  if (reason instanceof Error && reason.name === 'Canceled' && reason.message === 'Canceled') event.preventDefault();
});

/** A moment with its date, as the reader's locale writes it. */
const when = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function DevSignIn({ config, onToken }) {
  const offer = config.devSignIn;
  const [role, setRole] = useState(offer?.roles[0] ?? 'analyst');
  const [regions, setRegions] = useState(offer ? [offer.regions[0]] : []);
  const [purpose, setPurpose] = useState('');
  const [error, setError] = useState(null);
  if (!offer) return null;
  const signIn = async () => {
    setError(null);
    const response = await fetch('./dev-token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role, regions, ...(purpose ? { purpose } : {}) }),
    });
    const body = await response.json();
    if (!response.ok) setError(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
    else onToken(sessionFor(body.token, 'dev'));
  };
  const toggle = (region) => setRegions((current) => (current.includes(region) ? current.filter((r) => r !== region) : [...current, region]));
  return h(
    'div',
    { className: 'datamesh-signin' },
    h('strong', null, 'Development sign-in'),
    h('label', null, 'role ', h('select', { value: role, onChange: (e) => setRole(e.target.value), 'aria-label': 'role' }, offer.roles.map((o) => h('option', { key: o, value: o }, o)))),
    h(
      'fieldset',
      { 'aria-label': 'regions' },
      h('legend', null, 'regions'),
      offer.regions.map((region) =>
        h('label', { key: region }, h('input', { type: 'checkbox', checked: regions.includes(region), onChange: () => toggle(region), 'aria-label': `region ${region}` }), ` ${region}`),
      ),
    ),
    h(
      'label',
      null,
      'purpose ',
      h('select', { value: purpose, onChange: (e) => setPurpose(e.target.value), 'aria-label': 'purpose' }, [h('option', { key: '', value: '' }, 'none'), ...offer.purposes.map((o) => h('option', { key: o, value: o }, o))]),
    ),
    h('button', { type: 'button', className: 'graphiql-button', onClick: signIn }, 'Sign in'),
    error ? h('span', { className: 'datamesh-error', role: 'alert' }, error) : null,
  );
}

/** Who is signed in, from the token's claims (never the token itself), since when, and a way out. */
function SignedIn({ session, onSignOut }) {
  const claims = claimsOf(session.token) ?? {};
  const roles = [].concat(claims.roles ?? []).join(', ') || 'no role';
  const regions = [].concat(claims.regions ?? []).join(', ') || 'no region';
  const who = claims.name ?? claims.preferred_username ?? claims.sub ?? 'a principal without a subject';
  const renewed = session.via === 'oidc' && session.refreshToken ? ' · renewed before it expires' : session.expiresAt ? ` · until ${when(session.expiresAt)}` : '';
  return h(
    'div',
    { className: 'datamesh-who', 'aria-label': 'signed in' },
    h('span', null, 'Signed in as ', h('strong', null, who), ` · roles ${roles} · regions ${regions}${claims.purpose ? ` · purpose ${claims.purpose}` : ''}`),
    h('span', { className: 'datamesh-muted', 'aria-label': 'session' }, `since ${when(session.signedInAt)}${renewed}`),
    h('button', { type: 'button', className: 'graphiql-button', onClick: onSignOut }, 'Sign out'),
  );
}

/** What a signed-out analyst sees: how to sign in (the schema is for signed-in principals only). */
function SignedOut({ config, onToken, problem }) {
  const [pasted, setPasted] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const token = pasted.trim().replace(/^Bearer\s+/i, '');
  const organisation = async () => {
    setBusy(true);
    setError(null);
    try {
      await startOidcSignIn(config.oidc);
    } catch (failure) {
      setBusy(false);
      setError(`The identity provider cannot be reached: ${failure.message}`);
    }
  };
  return h(
    'main',
    { className: 'datamesh-signed-out' },
    h('h1', null, 'Sign in to explore the data mesh'),
    h('p', null, 'The schema, its documentation and every query need a signed-in principal: what you may read, and what is masked for you, follows from who you are.'),
    problem || error ? h('p', { className: 'datamesh-error', role: 'alert' }, problem ?? error) : null,
    config.oidc
      ? h('section', null, h('button', { type: 'button', className: 'graphiql-button datamesh-primary', disabled: busy, onClick: organisation }, busy ? 'Signing in…' : 'Sign in with your organisation'))
      : null,
    config.devSignIn ? h('section', null, h(DevSignIn, { config, onToken })) : null,
    h(
      'section',
      null,
      h('label', { htmlFor: 'datamesh-token' }, 'Or paste a token from your identity provider:'),
      h('textarea', { id: 'datamesh-token', rows: 3, value: pasted, onChange: (e) => setPasted(e.target.value), 'aria-label': 'token', autoComplete: 'off', spellCheck: false }),
      h('button', { type: 'button', className: 'graphiql-button', disabled: claimsOf(token) === null, onClick: () => onToken(sessionFor(token, 'pasted')) }, 'Use this token'),
    ),
  );
}

/** A GraphQL request to the gateway as the signed-in principal; resolves to `data`, or throws the first error's message. */
async function gql(endpoint, token, query, variables) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json().catch(() => ({}));
  if (body.errors?.length) {
    const error = body.errors[0];
    throw new Error(`${error.extensions?.code ? `${error.extensions.code}: ` : ''}${error.message}`);
  }
  if (!response.ok || !body.data) throw new Error(`HTTP ${response.status}`);
  return body.data;
}

const FACETS = [
  ['domain', 'Domain'],
  ['status', 'Status'],
  ['owner', 'Owner'],
  ['tag', 'Tag'],
  ['classification', 'Classification'],
];

const SEARCH = `query CatalogSearch($filter: DataProductFilter) {
  dataProducts(filter: $filter, first: 100) {
    totalCount
    unavailableDomains
    facets { domain { value count } status { value count } owner { value count } tag { value count } classification { value count } }
    nodes { id title domain status version tags description { purpose } }
  }
}`;

const PRODUCT = `query CatalogProduct($id: ID!) {
  dataProduct(id: $id) {
    id title version status domain graphqlType rootFields contractId rowPolicy exampleOperation tags
    description { purpose limitations usage }
    owners { username name role }
    sla { property value unit element description }
    outputPorts { name type version description }
    inputPorts { name version contractId }
    fields { name type description classification tags mask readableBy rule forYou { access reason } profile { nullShare distinctCount min max minLength maxLength detections { detector description share } } }
    usage { client registered reads lastSeen }
    freshness { loadedAt newestRecordAt ageSeconds slaSeconds status }
    quality { status lastRun { at trigger outcome checks { name dimension severity outcome value threshold unit failedRows } } history(first: 5) { at trigger outcome } }
    pipeline { everySeconds nextRunAt paused slaMet runs(first: 10) { runId trigger backfillFrom backfillTo parentPipeline anomaliesAccepted startedAt endedAt attempts outcome load rows rowsInserted rowsUpdated rowsDeleted watermark error anomalies { measure kind severity message } } }
  }
}`;

/** A column's profile in a line: distinct values, nulls, bounds or lengths, and what the detectors recognised. */
function profileText(profile) {
  if (!profile) return '';
  const parts = [`${profile.distinctCount} distinct`, `${Math.round(profile.nullShare * 1000) / 10}% null`];
  if (profile.min !== null && profile.max !== null) parts.push(`${profile.min} to ${profile.max}`);
  else if (profile.minLength !== null && profile.maxLength !== null) parts.push(`${profile.minLength} to ${profile.maxLength} characters`);
  for (const found of profile.detections) parts.push(`${Math.round(found.share * 100)}% look like ${found.description}`);
  return parts.join('; ');
}

/** Seconds as the largest unit that fits: `3 h`, `2 d`. */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return 'unknown';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60]]) if (seconds >= size) return `${Math.floor(seconds / size)} ${unit}`;
  return `${seconds} s`;
}

function Facets({ facets, filter, onFilter }) {
  return h(
    'aside',
    { className: 'datamesh-facets', 'aria-label': 'facets' },
    FACETS.map(([key, label]) =>
      h(
        'section',
        { key },
        h('h3', null, label),
        (facets?.[key] ?? []).length === 0 ? h('p', { className: 'datamesh-muted' }, 'none') : null,
        (facets?.[key] ?? []).map(({ value, count }) => {
          const active = filter[key] === value;
          return h(
            'button',
            {
              key: value,
              type: 'button',
              className: active ? 'datamesh-facet active' : 'datamesh-facet',
              'aria-pressed': active,
              'aria-label': `${label} ${value}`,
              onClick: () => onFilter({ ...filter, [key]: active ? undefined : value }),
            },
            `${value} (${count})`,
          );
        }),
      ),
    ),
  );
}

const ACCESS_TEXT = { READABLE: 'readable', MASKED: 'masked for you', DENIED: 'not for you' };

/** What a run's load did, in a few words: `swapped: +20 ~5 -1 to 20261207T100000Z-000003`, `current`, `rejected`. */
function loadText(run) {
  if (run.load === null) return '–';
  const changed = run.rowsInserted === null ? '' : `: +${run.rowsInserted} ~${run.rowsUpdated} -${run.rowsDeleted}`;
  return `${run.load}${changed}${run.watermark ? ` to ${run.watermark}` : ''}${run.rows !== null ? ` (${run.rows} rows)` : ''}`;
}

/** Why a run ran: `schedule`, `manual`, `backfill 2025-12-01 to 2025-12-31`, `dependency (after finance.orders)`. */
function triggerText(run) {
  const accepted = run.anomaliesAccepted ? ' (anomalies accepted)' : '';
  if (run.backfillFrom) return `${run.trigger} ${run.backfillFrom} to ${run.backfillTo}${accepted}`;
  if (run.parentPipeline) return `${run.trigger} (after ${run.parentPipeline})`;
  return `${run.trigger}${accepted}`;
}

/** The product's pipeline: its schedule, its next run, and its latest runs with what each load did. */
function Pipeline({ pipeline }) {
  if (!pipeline) return h('p', { 'aria-label': 'pipeline', className: 'datamesh-muted' }, 'Its domain runs no pipelines here.');
  const schedule = pipeline.everySeconds === null ? 'when asked or after its dependencies' : `every ${duration(pipeline.everySeconds)}`;
  const next = pipeline.nextRunAt ? ` · next ${new Date(pipeline.nextRunAt).toLocaleString()}` : '';
  const sla = pipeline.slaMet === null ? '' : pipeline.slaMet ? ' · next run within its SLA' : ' · next run too late for its SLA';
  return h(
    'div',
    null,
    h('p', { 'aria-label': 'pipeline', 'data-paused': String(pipeline.paused) }, `${pipeline.paused ? 'PAUSED · ' : ''}runs ${schedule}${next}${sla}`),
    pipeline.runs.length === 0
      ? h('p', { className: 'datamesh-muted' }, 'No run yet.')
      : h(
          'table',
          { className: 'datamesh-table', 'aria-label': 'pipeline runs' },
          h('thead', null, h('tr', null, ['started', 'trigger', 'outcome', 'attempts', 'load', 'anomalies'].map((title) => h('th', { key: title }, title)))),
          h(
            'tbody',
            null,
            pipeline.runs.map((run) =>
              h(
                'tr',
                { key: run.runId, 'data-run': run.runId, 'data-outcome': run.outcome, 'data-load': run.load ?? '' },
                h('td', null, new Date(run.startedAt).toLocaleString()),
                h('td', { 'data-cell': 'trigger' }, triggerText(run)),
                h('td', { className: run.outcome === 'failed' ? 'datamesh-access-denied' : 'datamesh-access-readable', title: run.error ?? '' }, run.outcome),
                h('td', null, String(run.attempts)),
                h('td', { 'data-cell': 'load' }, loadText(run)),
                h('td', { className: run.anomalies.length ? 'datamesh-access-denied' : 'datamesh-muted' }, run.anomalies.length ? run.anomalies.map((anomaly) => `${anomaly.severity === 'error' ? 'error: ' : ''}${anomaly.message}`).join(' ') : 'none'),
              ),
            ),
          ),
        ),
  );
}

function ProductDetail({ product, onOpenExample, onBack }) {
  const description = product.description;
  return h(
    'article',
    { className: 'datamesh-product', 'aria-label': `data product ${product.id}` },
    h('button', { type: 'button', className: 'graphiql-button', onClick: onBack }, '← All products'),
    h('h2', null, product.title, ' ', h('code', null, product.id)),
    h('p', { className: 'datamesh-muted' }, `${product.status} · version ${product.version} · domain ${product.domain} · type ${product.graphqlType} (${product.rootFields.join(', ')}) · contract ${product.contractId}`),
    h('p', null, description.purpose),
    description.limitations ? h('p', null, h('strong', null, 'Limitations: '), description.limitations) : null,
    description.usage ? h('p', null, h('strong', null, 'Usage: '), description.usage) : null,
    product.exampleOperation ? h('button', { type: 'button', className: 'graphiql-button datamesh-primary', onClick: () => onOpenExample(product.exampleOperation) }, 'Open example in GraphiQL') : null,
    h('h3', null, 'Owners'),
    h('ul', null, product.owners.map((owner) => h('li', { key: owner.username }, `${owner.name ?? owner.username} (${owner.username}), ${owner.role}`))),
    h('h3', null, 'Service level'),
    h('table', { className: 'datamesh-table' }, h('tbody', null, product.sla.map((sla) => h('tr', { key: sla.property }, h('th', null, sla.property), h('td', null, `${sla.value}${sla.unit ? ` ${sla.unit}` : ''}${sla.element ? ` on ${sla.element}` : ''}`), h('td', null, sla.description ?? ''))))),
    product.rowPolicy ? h('p', null, h('strong', null, 'Rows: '), product.rowPolicy) : null,
    h('h3', null, 'Freshness'),
    h(
      'p',
      { 'aria-label': 'freshness', 'data-status': product.freshness.status },
      `${product.freshness.status} · loaded ${product.freshness.loadedAt ? new Date(product.freshness.loadedAt).toLocaleString() : 'unknown'} (${duration(product.freshness.ageSeconds)} ago) · SLA ${duration(product.freshness.slaSeconds)}${product.freshness.newestRecordAt ? ` · newest record ${product.freshness.newestRecordAt}` : ''}`,
    ),
    h('h3', null, 'Data quality'),
    h(
      'p',
      { 'aria-label': 'quality status', 'data-status': product.quality.status },
      `${product.quality.status}${product.quality.lastRun ? ` · last run ${new Date(product.quality.lastRun.at).toLocaleString()} (${product.quality.lastRun.trigger}, ${product.quality.lastRun.outcome})` : ' · no run yet'}`,
    ),
    product.quality.lastRun
      ? h(
          'table',
          { className: 'datamesh-table', 'aria-label': 'quality checks' },
          h('thead', null, h('tr', null, ['check', 'dimension', 'severity', 'outcome', 'value', 'threshold'].map((title) => h('th', { key: title }, title)))),
          h(
            'tbody',
            null,
            product.quality.lastRun.checks.map((check) =>
              h(
                'tr',
                { key: check.name, 'data-check': check.name, 'data-outcome': check.outcome },
                h('td', null, h('code', null, check.name)),
                h('td', null, check.dimension),
                h('td', null, check.severity),
                h('td', { className: check.outcome === 'pass' ? 'datamesh-access-readable' : 'datamesh-access-denied' }, check.outcome),
                h('td', null, check.value === null ? '–' : `${check.value}${check.unit === 'percent' ? ' %' : ''}`),
                h('td', null, check.threshold),
              ),
            ),
          ),
        )
      : null,
    h('h3', null, 'Pipeline'),
    h(Pipeline, { pipeline: product.pipeline }),
    h('h3', null, 'Fields, and what you may see of them'),
    h(
      'table',
      { className: 'datamesh-table', 'aria-label': 'fields' },
      h('thead', null, h('tr', null, ['field', 'type', 'classification', 'mask', 'readable by', 'for you', 'profile (last load)'].map((title) => h('th', { key: title }, title)))),
      h(
        'tbody',
        null,
        product.fields.map((field) =>
          h(
            'tr',
            { key: field.name, 'data-field': field.name, 'data-access': field.forYou.access },
            h('td', null, h('code', null, field.name)),
            h('td', null, h('code', null, field.type)),
            h('td', null, `${field.classification}${field.tags.length ? ` (${field.tags.join(', ')})` : ''}`),
            h('td', null, field.mask ?? ''),
            h('td', null, field.readableBy),
            h('td', { className: `datamesh-access-${field.forYou.access.toLowerCase()}`, title: field.forYou.reason ?? '' }, ACCESS_TEXT[field.forYou.access], field.forYou.reason ? h('div', { className: 'datamesh-muted' }, field.forYou.reason) : null),
            h('td', { className: 'datamesh-muted', 'data-profile': field.profile ? 'shown' : 'none' }, profileText(field.profile)),
          ),
        ),
      ),
    ),
    h('h3', null, 'Ports'),
    h('ul', null, [
      ...product.outputPorts.map((port) => h('li', { key: `out-${port.name}` }, `output ${port.name} (${port.type} ${port.version})${port.description ? `: ${port.description}` : ''}`)),
      ...product.inputPorts.map((port) => h('li', { key: `in-${port.name}` }, `input ${port.name} (${port.version}, contract ${port.contractId})`)),
    ]),
    h('h3', null, 'Used by (last 30 days)'),
    product.usage.length === 0 ? h('p', { className: 'datamesh-muted' }, 'No recorded client.') : h('ul', null, product.usage.map((use) => h('li', { key: use.client }, `${use.client}${use.registered ? ' (registered)' : ''}: ${use.reads} reads, last ${new Date(use.lastSeen).toLocaleString()}`))),
  );
}

function Catalog({ config, token, onOpenExample }) {
  const [text, setText] = useState('');
  const [filter, setFilter] = useState({});
  const [result, setResult] = useState(null);
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let current = true;
    const variables = { filter: Object.fromEntries(Object.entries({ ...filter, text: filter.text || undefined }).filter(([, value]) => value !== undefined)) };
    gql(config.endpoint, token, SEARCH, variables)
      .then((data) => current && (setResult(data.dataProducts), setError(null)))
      .catch((failure) => current && setError(failure.message));
    return () => {
      current = false;
    };
  }, [filter, token]);
  const open = (id) =>
    gql(config.endpoint, token, PRODUCT, { id })
      .then((data) => (setSelected(data.dataProduct), setError(null)))
      .catch((failure) => setError(failure.message));
  if (selected) return h('div', { className: 'datamesh-catalog' }, error ? h('p', { role: 'alert', className: 'datamesh-error' }, error) : null, h(ProductDetail, { product: selected, onOpenExample, onBack: () => setSelected(null) }));
  return h(
    'div',
    { className: 'datamesh-catalog' },
    h(
      'form',
      { className: 'datamesh-search', role: 'search', onSubmit: (e) => (e.preventDefault(), setFilter({ ...filter, text })) },
      h('input', { type: 'search', value: text, placeholder: 'Search data products: names, descriptions, tags, fields', onChange: (e) => setText(e.target.value), 'aria-label': 'search data products' }),
      h('button', { type: 'submit', className: 'graphiql-button' }, 'Search'),
    ),
    error ? h('p', { role: 'alert', className: 'datamesh-error' }, error) : null,
    h(
      'div',
      { className: 'datamesh-catalog-body' },
      h(Facets, { facets: result?.facets, filter, onFilter: setFilter }),
      h(
        'section',
        { className: 'datamesh-results', 'aria-label': 'data products' },
        result ? h('p', { className: 'datamesh-muted', 'aria-label': 'result count' }, `${result.totalCount} data product${result.totalCount === 1 ? '' : 's'}`) : h('p', null, 'Loading…'),
        result?.unavailableDomains.length ? h('p', { className: 'datamesh-error' }, `Not answering now: ${result.unavailableDomains.join(', ')}`) : null,
        (result?.nodes ?? []).map((product) =>
          h(
            'button',
            { key: product.id, type: 'button', className: 'datamesh-result', onClick: () => open(product.id), 'data-product': product.id },
            h('strong', null, product.title),
            ' ',
            h('code', null, product.id),
            h('span', { className: 'datamesh-muted' }, ` · ${product.status} · v${product.version}${product.tags.length ? ` · ${product.tags.join(', ')}` : ''}`),
            h('div', null, product.description.purpose),
          ),
        ),
      ),
    ),
  );
}

/** The example operation of each data product, as the catalog writes it for this caller. */
async function examplesFor(config, token) {
  const response = await fetch(config.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ dataProducts(first: 100) { nodes { id exampleOperation } } }' }),
  });
  const body = await response.json();
  return (body.data?.dataProducts?.nodes ?? []).map((node) => node.exampleOperation).filter(Boolean);
}

/**
 * One WebSocket client for the page's subscriptions, connecting when the first one starts; its
 * token is read at each connection, and a new sign-in (another principal) closes it.
 */
let socketClient = null;
function webSocketClient(config, current) {
  if (!socketClient) {
    const url = new URL(config.endpoint, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socketClient = createClient({ url: url.href, lazy: true, retryAttempts: 0, connectionParams: () => ({ authorization: `Bearer ${current.current}` }) });
  }
  return socketClient;
}
function closeSocketClient() {
  socketClient?.dispose();
  socketClient = null;
}

function Ide({ config }) {
  // A stored session whose token expired with no way to renew it signs out: the prompt, not a failing editor.
  const [session, setSession] = useState(() => (isOidcCallback() ? null : loadSession()));
  const [problem, setProblem] = useState(null);
  const [finishing, setFinishing] = useState(() => Boolean(config.oidc) && isOidcCallback());
  const [generation, setGeneration] = useState(0);
  const [view, setView] = useState('query');
  // An example opened from the catalog: GraphiQL opens it in a tab of its own (beside the stored ones).
  const [opened, setOpened] = useState(undefined);
  // The token of the moment, for the fetcher: a renewed token is used without remounting GraphiQL.
  const current = useRef(session?.token ?? null);
  const onSession = (next) => {
    saveSession(next);
    current.current = next?.token ?? null;
    setSession(next);
  };
  const onToken = (next) => {
    setProblem(null);
    closeSocketClient();
    onSession(next);
    setGeneration((g) => g + 1);
  };
  const token = session?.token ?? null;
  // Back from the identity provider: exchange the code for tokens.
  useEffect(() => {
    if (!finishing) return;
    finishOidcSignIn(config.oidc).then(
      (next) => (onToken(next), setFinishing(false)),
      (failure) => (setProblem(failure.message), setFinishing(false)),
    );
  }, []);
  // Renewed before it expires; a renewal refused ends the session, saying so.
  useEffect(() => {
    const delay = renewalDelay(session);
    if (delay === null || !config.oidc) return undefined;
    const timer = setTimeout(() => {
      refreshOidcSession(config.oidc, session).then(onSession, () => {
        onSession(null);
        setProblem('Your session ended (the identity provider did not renew it): sign in again.');
      });
    }, delay);
    return () => clearTimeout(timer);
  }, [session]);
  // The caller's example operations, from the catalog (null until they arrive; [] if they cannot be read).
  const [examples, setExamples] = useState(null);
  useEffect(() => {
    if (!token) return undefined;
    let live = true;
    setExamples(null);
    examplesFor(config, token).then((found) => live && setExamples(found), () => live && setExamples([]));
    return () => {
      live = false;
    };
  }, [generation]);
  if (finishing) return h('main', { className: 'datamesh-signed-out', 'aria-busy': 'true' }, 'Signing you in…');
  if (!token) return h(SignedOut, { config, onToken, problem });
  if (examples === null) return h('main', { className: 'datamesh-signed-out', 'aria-busy': 'true' }, 'Loading the data products…');
  // Every request carries the token of the moment; the headers editor never shows it. Subscriptions
  // go over WebSocket, the token in connection_init (read at each connection: a renewed one is used).
  const fetcher = createGraphiQLFetcher({
    url: config.endpoint,
    fetch: (input, init = {}) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${current.current}` } }),
    wsClient: webSocketClient(config, current),
  });
  const tabs = [...(opened ? [{ query: opened }] : []), ...examples.map((query) => ({ query }))];
  const openExample = (query) => {
    setOpened(query);
    setView('query');
    setGeneration((g) => g + 1);
  };
  const signOut = () => {
    const ending = session;
    onToken(null);
    void endSession(config.oidc, ending);
  };
  const viewButton = (name, label) =>
    h('button', { type: 'button', role: 'tab', 'aria-selected': view === name, className: view === name ? 'datamesh-view active' : 'datamesh-view', onClick: () => (setOpened(undefined), setView(name)) }, label);
  return h(
    'div',
    { className: 'datamesh-ide' },
    h(
      'header',
      null,
      h('span', { className: 'datamesh-title' }, 'Data mesh IDE'),
      h('nav', { role: 'tablist', 'aria-label': 'views' }, viewButton('query', 'Query'), viewButton('catalog', 'Catalog')),
      h(SignedIn, { session, onSignOut: signOut }),
    ),
    view === 'catalog'
      ? h(Catalog, { config, token, onOpenExample: openExample })
      : h(GraphiQL, {
          key: generation,
          fetcher,
          defaultTabs: tabs.length > 0 ? tabs : undefined,
          ...(opened ? { initialQuery: opened } : {}),
          shouldPersistHeaders: false,
        }),
  );
}

// The theme GraphiQL keeps (light, dark, or the system's) applies to the sign-in and catalog pages too.
const theme = localStorage.getItem('graphiql:theme');
if (theme === 'dark' || theme === 'light') document.body.classList.add(`graphiql-${theme}`);
const config = await (await fetch('./config.json')).json();
createRoot(document.getElementById('ide')).render(h(Ide, { config }));
