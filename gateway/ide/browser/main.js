// The analysts' IDE in the browser: GraphiQL, bundled with everything it needs by gateway/ide/build.ts
// (no CDN). It reads its configuration from ./config.json: the endpoint, one example operation per
// data product, and whether the development sign-in is offered. Plain JavaScript: it runs in the
// browser, outside the project's Node type check.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import { createElement as h, useState } from 'react';
import { createRoot } from 'react-dom/client';

const TOKEN_KEY = 'datamesh:token';

function headersFor(token) {
  return JSON.stringify(token ? { Authorization: `Bearer ${token}` } : {}, null, 2);
}

/** The claims of a token, for showing who is signed in (the gateway verifies it; this only reads it). */
function claimsOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

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
    else onToken(body.token);
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
    h('button', { type: 'button', onClick: signIn }, 'Sign in'),
    error ? h('span', { className: 'datamesh-error', role: 'alert' }, error) : null,
  );
}

/** Who is signed in, from the token's claims, and a way out. */
function SignedIn({ token, onSignOut }) {
  const claims = claimsOf(token) ?? {};
  const roles = [].concat(claims.roles ?? []).join(', ') || 'no role';
  const regions = [].concat(claims.regions ?? []).join(', ') || 'no region';
  const expires = claims.exp ? new Date(claims.exp * 1000).toLocaleTimeString() : null;
  return h(
    'div',
    { className: 'datamesh-who', 'aria-label': 'signed in' },
    h('span', null, 'Signed in as ', h('strong', null, claims.sub ?? 'a principal without a subject'), ` · roles ${roles} · regions ${regions}${claims.purpose ? ` · purpose ${claims.purpose}` : ''}${expires ? ` · until ${expires}` : ''}`),
    h('button', { type: 'button', onClick: onSignOut }, 'Sign out'),
  );
}

/** What a signed-out analyst sees: how to sign in (the schema is for signed-in principals only). */
function SignedOut({ config, onToken }) {
  const [pasted, setPasted] = useState('');
  const token = pasted.trim().replace(/^Bearer\s+/i, '');
  return h(
    'main',
    { className: 'datamesh-signed-out' },
    h('h1', null, 'Sign in to explore the data mesh'),
    h('p', null, 'The schema, its documentation and every query need a signed-in principal: what you may read, and what is masked for you, follows from your token.'),
    config.devSignIn ? h('section', null, h(DevSignIn, { config, onToken })) : null,
    h(
      'section',
      null,
      h('label', { htmlFor: 'datamesh-token' }, 'Or paste a token from your identity provider:'),
      h('textarea', { id: 'datamesh-token', rows: 3, value: pasted, onChange: (e) => setPasted(e.target.value), 'aria-label': 'token' }),
      h('button', { type: 'button', disabled: claimsOf(token) === null, onClick: () => onToken(token) }, 'Use this token'),
    ),
  );
}

function Ide({ config }) {
  // A stored token that has expired (or cannot be read) signs out: the prompt, not a failing editor.
  const [token, setToken] = useState(() => {
    const stored = localStorage.getItem(TOKEN_KEY) ?? '';
    const claims = claimsOf(stored);
    return claims && (!claims.exp || claims.exp * 1000 > Date.now()) ? stored : '';
  });
  const [generation, setGeneration] = useState(0);
  const onToken = (next) => {
    if (next) localStorage.setItem(TOKEN_KEY, next);
    else localStorage.removeItem(TOKEN_KEY);
    setToken(next);
    setGeneration((g) => g + 1); // a fresh editor, with the token in every tab's headers
  };
  if (!token) return h(SignedOut, { config, onToken });
  const fetcher = createGraphiQLFetcher({ url: config.endpoint });
  const tabs = config.examples.map((example) => ({ query: example.query, headers: headersFor(token) }));
  return h(
    'div',
    { className: 'datamesh-ide' },
    h('header', null, h('span', { className: 'datamesh-title' }, 'Data mesh IDE'), h(SignedIn, { token, onSignOut: () => onToken('') })),
    h(GraphiQL, {
      key: generation,
      fetcher,
      defaultTabs: tabs.length > 0 ? tabs : undefined,
      defaultHeaders: headersFor(token),
      headers: headersFor(token),
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false,
    }),
  );
}

const config = await (await fetch('./config.json')).json();
createRoot(document.getElementById('ide')).render(h(Ide, { config }));
