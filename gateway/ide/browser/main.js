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

function SignIn({ config, onToken }) {
  const [role, setRole] = useState(config.devSignIn?.roles[0] ?? 'analyst');
  const [region, setRegion] = useState(config.devSignIn?.regions[0] ?? 'EMEA');
  const [error, setError] = useState(null);
  if (!config.devSignIn) return null;
  const signIn = async () => {
    setError(null);
    const response = await fetch('./dev-token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role, regions: [region] }),
    });
    const body = await response.json();
    if (!response.ok) setError(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
    else onToken(body.token);
  };
  const select = (value, set, options, label) =>
    h('label', null, `${label} `, h('select', { value, onChange: (e) => set(e.target.value), 'aria-label': label }, options.map((o) => h('option', { key: o, value: o }, o))));
  return h(
    'div',
    { className: 'datamesh-signin' },
    h('strong', null, 'Development sign-in'),
    select(role, setRole, config.devSignIn.roles, 'role'),
    select(region, setRegion, config.devSignIn.regions, 'region'),
    h('button', { type: 'button', onClick: signIn }, 'Sign in'),
    error ? h('span', { className: 'datamesh-error', role: 'alert' }, error) : null,
  );
}

function Ide({ config }) {
  const [token, setToken] = useState(() => localStorage.getItem(TOKEN_KEY) ?? '');
  const [generation, setGeneration] = useState(0);
  const onToken = (next) => {
    localStorage.setItem(TOKEN_KEY, next);
    setToken(next);
    setGeneration((g) => g + 1); // a fresh editor, with the token in every tab's headers
  };
  const fetcher = createGraphiQLFetcher({ url: config.endpoint });
  const tabs = config.examples.map((example) => ({ query: example.query, headers: headersFor(token) }));
  return h(
    'div',
    { className: 'datamesh-ide' },
    h(
      'header',
      null,
      h('span', { className: 'datamesh-title' }, 'Data mesh IDE'),
      token ? null : h('span', { className: 'datamesh-hint' }, 'Signed out: paste {"Authorization": "Bearer <token>"} into Headers, or sign in.'),
      h(SignIn, { config, onToken }),
    ),
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
