// Muster's GraphiQL page, run in the browser after React, ReactDOM and GraphiQL (their UMD
// builds, served by server/http/graphiql.ts). Plain script, no build step: it asks for the API
// token first, then renders GraphiQL with a fetcher that sends the token and the CSRF header,
// sends operations with Upload variables as GraphQL multipart requests, and follows
// subscriptions over server-sent events. A classic script: its top-level names stay in this page.
const { createElement: h, useEffect, useState, useSyncExternalStore } = window.React;
const { GraphiQL, ReactDOM } = window;
const { parse } = GraphiQL.GraphQL;
const ENDPOINT = window.location.pathname;
const TOKEN_KEY = 'muster.token';
// Yoga refuses multipart and GET requests without it (a form on another site cannot send it).
const CSRF_HEADER = 'x-graphql-yoga-csrf';
const SESSION_ID_PLACEHOLDER = 'filled in when StartImport succeeds';

const IMPORT_DOCUMENT = `# Import users from a spreadsheet, stage by stage.
# Run the operations below in order: press the Run
# button and pick one from its list, or click inside
# one and press Ctrl+Enter.
# Their variables (below) are shared: StartImport
# fills in sessionId. Every field is described in
# the Docs (book icon, top left).

# Stage 1, the file: choose the .xlsx in the Import
# panel (upload icon, left), then run StartImport.
# The file is sent as $file. "mode": ADD_AND_UPDATE
# adds and updates users; SYNC also archives the
# active users the file lacks.
mutation StartImport($file: Upload!, $comment: String, $mode: ImportMode = ADD_AND_UPDATE) {
  startImport(input: { file: $file, comment: $comment, mode: $mode }) {
    __typename
    ... on ImportSession { id stage busy fileName mode }
    ... on Error { code message }
  }
}

# Watch the import work: progress arrives while it
# runs. When busy is false, the stage waits for you:
# press Stop (the Run button) and run the next one.
# It ends by itself at COMPLETED (or REVERTED).
subscription FollowImport($sessionId: ID!) {
  importSessionUpdated(id: $sessionId) {
    stage
    busy
    progress { phase processed total percent }
    rowCount
    validRowCount
    invalidRowCount
    columns { header status }
    failure { code message }
    result { created updated unchanged skipped archived restored }
    revertResult { removed updated unarchived rearchived conflicts }
  }
}

# Stage 2, columns (stage CUSTOM_FIELDS, only when a
# column matched no field or a required field has
# no column): each column with the fields suggested
# for it, best first.
query ColumnChoices($sessionId: ID!) {
  importSession(id: $sessionId) {
    stage
    unmappedFields { key label }
    columns {
      header
      status
      field { key }
      suggestions { field { key label } score explanation }
    }
  }
}

# Decide the columns in "columns": MAP to a field
# (fieldKey, e.g. a suggestion's), ADD as a new
# custom field, IGNORE, or MATCHED to keep a match.
# New columns not named are ignored. MAP decisions
# are remembered for the next files (columnMappings).
mutation ConfirmColumns($sessionId: ID!, $columns: [ColumnDecisionInput!]!) {
  confirmColumns(input: { sessionId: $sessionId, columns: $columns }) {
    __typename
    ... on ImportSession { id stage busy columns { header status field { key } } }
    ... on Error { code message }
  }
}

# Stage 3, errors (stage VALIDATION): the rows with
# errors and the error report (its link appears in
# the Import panel).
query ImportErrors($sessionId: ID!) {
  importSession(id: $sessionId) {
    stage
    validRowCount
    invalidRowCount
    errorReport { url fileName expiresAt }
    errors(first: 50) {
      edges { node { rowNumber column value code message } }
    }
  }
}

# Fix rows here instead of in the file: put the row
# number and the new cell values in "rows"; they
# are checked again at once.
mutation FixRows($sessionId: ID!, $rows: [ImportRowEditInput!]!) {
  updateImportRows(input: { sessionId: $sessionId, rows: $rows }) {
    __typename
    ... on ImportSession { id validRowCount invalidRowCount }
    ... on Error { code message }
  }
}

# Or replace a text in every cell of one column
# ("header"), e.g. a mistyped email domain.
mutation ReplaceInColumn($sessionId: ID!, $header: String!, $find: String!, $replace: String!) {
  replaceInColumn(input: { sessionId: $sessionId, header: $header, find: $find, replace: $replace }) {
    __typename
    ... on ImportSession { id validRowCount invalidRowCount }
    ... on Error { code message }
  }
}

# ContinueFromValidation skips the rows still with
# errors; CancelImport stops instead.
mutation ContinueFromValidation($sessionId: ID!) {
  continueImport(input: { sessionId: $sessionId, stage: VALIDATION }) {
    __typename
    ... on ImportSession { id stage busy }
    ... on Error { code message }
  }
}

# Stage 4, review (stage REVIEW): how many users each
# action concerns and what each row does. A SYNC
# archives the users in usersToArchive; past the
# archive limit, archiveWarning is set: check them,
# then set "acknowledgeArchive" to true to go on.
query ReviewRows($sessionId: ID!) {
  importSession(id: $sessionId) {
    stage
    mode
    actionCounts { create update unchanged restore skip archive }
    archiveWarning { archiveCount activeUserCount limitPercent }
    usersToArchive(first: 20) { edges { node { email userName } } }
    importedUsersReport { url fileName expiresAt }
    rows(first: 50) {
      edges { node { rowNumber action values { header value } changes { field { label } from to } } }
    }
  }
}

mutation ContinueFromReview($sessionId: ID!, $acknowledgeArchive: Boolean) {
  continueImport(input: { sessionId: $sessionId, stage: REVIEW, acknowledgeArchive: $acknowledgeArchive }) {
    __typename
    ... on ImportSession { id stage busy }
    ... on ArchiveLimitExceededError { archiveCount activeUserCount limitPercent }
    ... on Error { code message }
  }
}

# Stage 5, training groups (GROUP_ASSIGNMENT): how
# many users each group gets. CommitImport imports
# them; run FollowImport to see it reach COMPLETED.
# If users changed meanwhile so that a SYNC passes
# the archive limit, it comes back here with
# archiveWarning: acknowledge it as in stage 4.
query GroupAssignment($sessionId: ID!) {
  importSession(id: $sessionId) {
    stage
    groupAssignment { trainingGroup { name } userCount }
    archiveWarning { archiveCount activeUserCount limitPercent }
  }
}

mutation CommitImport($sessionId: ID!, $acknowledgeArchive: Boolean) {
  continueImport(input: { sessionId: $sessionId, stage: GROUP_ASSIGNMENT, acknowledgeArchive: $acknowledgeArchive }) {
    __typename
    ... on ImportSession { id stage busy }
    ... on ArchiveLimitExceededError { archiveCount activeUserCount limitPercent }
    ... on Error { code message }
  }
}

# At any stage before the commit: stop the import;
# nothing is imported.
mutation CancelImport($sessionId: ID!) {
  cancelImport(input: { sessionId: $sessionId }) {
    __typename
    ... on ImportSession { id stage }
    ... on Error { code message }
  }
}

# After the import (COMPLETED): what it did to each
# user, field by field.
query ImportChanges($sessionId: ID!) {
  importSession(id: $sessionId) {
    stage
    committedAt
    result { created updated unchanged skipped archived restored }
    changes(first: 50) {
      edges { node { email action revertOutcome fields { fieldKey before after } } }
    }
  }
}

# Undo it (within IMPORT_UNDO_DAYS): created users
# are removed, the others get back what they had.
# Users changed since stop it (conflicts) unless
# "force" is true, which leaves them as they are.
# Run FollowImport to see it reach REVERTED.
mutation RevertImport($sessionId: ID!, $force: Boolean = false) {
  revertImport(input: { sessionId: $sessionId, force: $force }) {
    __typename
    ... on ImportSession { id stage busy }
    ... on RevertConflictError { conflictCount }
    ... on Error { code message }
  }
}
`;

const IMPORT_VARIABLES = `{
  "file": null,
  "comment": "Imported in GraphiQL",
  "mode": "ADD_AND_UPDATE",
  "sessionId": "${SESSION_ID_PLACEHOLDER}",
  "columns": [
    { "header": "Department", "action": "ADD" },
    { "header": "Mail", "action": "MAP", "fieldKey": "email" }
  ],
  "rows": [
    { "rowNumber": 2, "values": [{ "header": "Email", "value": "ann@example.com" }] }
  ],
  "header": "Email",
  "find": "@exmaple.com",
  "replace": "@example.com",
  "acknowledgeArchive": false,
  "force": false
}`;

const TOKENS_DOCUMENT = `# Your company's API tokens (needs an ADMIN token).
# A VIEWER token can read but not change anything.
# Press Run and pick an operation, or click inside
# one and press Ctrl+Enter.
query ApiTokens {
  apiTokens { id role label createdAt lastUsedAt }
}

# The new token's secret is shown once: copy it.
mutation CreateApiToken($role: TokenRole!, $label: String!) {
  createApiToken(input: { role: $role, label: $label }) {
    __typename
    ... on CreatedApiToken { secret token { id role label createdAt } }
    ... on Error { code message }
  }
}

# Put the token's id (from ApiTokens or
# CreateApiToken) in "tokenId".
mutation RevokeApiToken($tokenId: ID!) {
  revokeApiToken(input: { tokenId: $tokenId }) {
    __typename
    ... on ApiToken { id label revokedAt }
    ... on Error { code message }
  }
}
`;

const TOKENS_VARIABLES = `{
  "role": "VIEWER",
  "label": "reporting",
  "tokenId": "the id of the token to revoke"
}`;

// What the page learned from results, shared by the fetcher and the components.
let state = { file: null, session: null, startedSessionId: null, downloads: [] };
const listeners = new Set();
function update(patch) {
  state = { ...state, ...patch };
  for (const listener of listeners) listener();
}
function useAppState() {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => state,
  );
}

/** Notes the import sessions and the download links found anywhere in a result. */
function observe(result) {
  const downloads = [...state.downloads];
  let session = state.session;
  const visit = (value) => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    if (typeof value.url === 'string' && typeof value.fileName === 'string') {
      const known = downloads.findIndex((d) => d.fileName === value.fileName);
      if (known >= 0) downloads.splice(known, 1);
      downloads.unshift({ url: value.url, fileName: value.fileName });
    }
    if (typeof value.stage === 'string') {
      session = {
        id: typeof value.id === 'string' ? value.id : session?.id,
        stage: value.stage,
        busy: typeof value.busy === 'boolean' ? value.busy : session?.busy,
        progress: value.progress ?? null,
      };
    }
    Object.values(value).forEach(visit);
  };
  visit(result?.data);
  const started = result?.data?.startImport;
  const patch = { downloads: downloads.slice(0, 6), session };
  if (started?.__typename === 'ImportSession') patch.startedSessionId = started.id;
  update(patch);
}

function requestHeaders(token, editorHeaders) {
  return {
    accept: 'application/graphql-response+json, application/json',
    authorization: `Bearer ${token}`,
    [CSRF_HEADER]: '1',
    ...(editorHeaders ?? {}),
  };
}

function findOperation(query, operationName) {
  let document;
  try {
    document = parse(query);
  } catch {
    return null;
  }
  const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition');
  if (operationName) return operations.find((o) => o.name?.value === operationName) ?? null;
  return operations.length === 1 ? operations[0] : null;
}

/** The names of the operation's variables of type Upload (Upload or Upload!). */
function uploadVariables(operation) {
  return (operation.variableDefinitions ?? [])
    .filter((definition) => {
      const type = definition.type.kind === 'NonNullType' ? definition.type.type : definition.type;
      return type.kind === 'NamedType' && type.name.value === 'Upload';
    })
    .map((definition) => definition.variable.name.value);
}

async function readResult(response) {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) return response.json();
  throw new Error(`The server answered ${response.status} ${await response.text()}`);
}

/** The GraphQL multipart request: the chosen file bound to every Upload variable. */
async function sendWithFile(params, headers, names) {
  const file = state.file;
  if (!file) {
    throw new Error(
      'Choose the spreadsheet first: open the Import panel (upload icon on the left) and pick the .xlsx file, then run this again.',
    );
  }
  const variables = { ...(params.variables ?? {}) };
  for (const name of names) variables[name] = null;
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({ query: params.query, operationName: params.operationName, variables }),
  );
  form.append('map', JSON.stringify({ 0: names.map((name) => `variables.${name}`) }));
  form.append('0', file, file.name);
  const response = await fetch(ENDPOINT, { method: 'POST', headers, body: form });
  return readResult(response);
}

async function sendJson(params, headers) {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  return readResult(response);
}

/** A subscription over server-sent events (POST): each event is yielded as it arrives. */
async function* subscribe(params, headers) {
  const controller = new AbortController();
  try {
    const response = await fetch(ENDPOINT, {
      method: 'POST',
      headers: { ...headers, accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify(params),
      signal: controller.signal,
    });
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      yield await readResult(response);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (event === 'complete') return;
        if (data.length > 0 && data.join('') !== '') {
          const result = JSON.parse(data.join('\n'));
          observe(result);
          yield result;
        }
      }
    }
  } finally {
    controller.abort();
  }
}

function createFetcher(token) {
  return (params, options) => {
    const headers = requestHeaders(token, options?.headers);
    const operation = findOperation(params.query, params.operationName);
    if (operation?.operation === 'subscription') return subscribe(params, headers);
    const names = operation ? uploadVariables(operation) : [];
    const sent =
      names.length > 0 ? sendWithFile(params, headers, names) : sendJson(params, headers);
    return sent.then((result) => {
      observe(result);
      return result;
    });
  };
}

async function checkToken(token) {
  const result = await sendJson(
    { query: '{ viewer { role company { name } } }' },
    requestHeaders(token, {}),
  );
  if (result.data?.viewer) return result.data.viewer;
  throw new Error(result.errors?.[0]?.message ?? 'The token was not accepted.');
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function TokenScreen({ error, onToken }) {
  const [value, setValue] = useState('');
  const [checking, setChecking] = useState(false);
  const [problem, setProblem] = useState(error);
  const submit = (event) => {
    event.preventDefault();
    const token = value.trim().replace(/^Bearer\s+/i, '');
    if (!token) return setProblem('Paste the token first.');
    setChecking(true);
    checkToken(token).then(
      (viewer) => onToken(token, viewer),
      (failure) => {
        setChecking(false);
        setProblem(failure.message);
      },
    );
  };
  return h(
    'main',
    { className: 'muster-welcome' },
    h('h1', null, 'Muster GraphiQL'),
    h(
      'p',
      null,
      'Everything here needs an API token of your company. Paste it below: GraphiQL opens with the import, step by step, and the schema documentation.',
    ),
    h(
      'form',
      { onSubmit: submit },
      h('label', { htmlFor: 'muster-token' }, 'API token'),
      h('input', {
        id: 'muster-token',
        type: 'password',
        autoComplete: 'off',
        placeholder: 'mst_…',
        value,
        onChange: (event) => setValue(event.target.value),
      }),
      h('button', { type: 'submit', disabled: checking }, checking ? 'Checking…' : 'Open GraphiQL'),
    ),
    problem ? h('p', { className: 'muster-problem', role: 'alert' }, problem) : null,
    h('h2', null, 'Where do I get a token?'),
    h(
      'ul',
      null,
      h(
        'li',
        null,
        'The first time the server starts, it prints the admin token of the default company in its log (or uses BOOTSTRAP_ADMIN_TOKEN if that was set).',
      ),
      h(
        'li',
        null,
        'For a new company, the operator runs: npm run admin -- create-company "<name>"',
      ),
      h(
        'li',
        null,
        'An admin can make more tokens in GraphiQL, in the "API tokens" tab (createApiToken).',
      ),
    ),
    h(
      'p',
      { className: 'muster-note' },
      'The token stays in this browser tab only and is sent as "Authorization: Bearer <token>".',
    ),
  );
}

function ImportPanel() {
  const { file, session, downloads } = useAppState();
  return h(
    'div',
    { className: 'muster-panel' },
    h('div', { className: 'graphiql-doc-explorer-title' }, 'Import'),
    h(
      'ol',
      { className: 'muster-steps' },
      h('li', null, 'Choose the spreadsheet below.'),
      h('li', null, 'In the first tab, run StartImport, then FollowImport.'),
      h('li', null, 'Run the next operation for the stage the session waits at.'),
    ),
    h('label', { className: 'muster-file-label', htmlFor: 'muster-file' }, 'Spreadsheet (.xlsx)'),
    h('input', {
      id: 'muster-file',
      type: 'file',
      accept: '.xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      onChange: (event) => update({ file: event.target.files?.[0] ?? null }),
    }),
    h(
      'p',
      { className: 'muster-file', 'data-testid': 'chosen-file' },
      file
        ? `${file.name} (${formatBytes(file.size)}) is sent as $file when you run StartImport.`
        : 'No file chosen yet.',
    ),
    session
      ? h(
          'div',
          { className: 'muster-session' },
          h('h3', null, 'Import session'),
          h('p', null, `Stage: ${session.stage}${session.busy ? ' (working…)' : ''}`),
          session.progress && session.busy
            ? h('p', null, `Progress: ${session.progress.percent ?? 0}%`)
            : null,
          session.id ? h('p', { className: 'muster-id' }, `ID: ${session.id}`) : null,
        )
      : null,
    downloads.length > 0
      ? h(
          'div',
          { className: 'muster-downloads' },
          h('h3', null, 'Downloads'),
          h(
            'ul',
            null,
            downloads.map((download) =>
              h(
                'li',
                { key: download.fileName },
                h(
                  'a',
                  { href: download.url, target: '_blank', rel: 'noopener' },
                  download.fileName,
                ),
              ),
            ),
          ),
          h(
            'p',
            { className: 'muster-note' },
            'The links work for a short time; run the query again for fresh ones.',
          ),
        )
      : null,
  );
}

function UploadIcon() {
  return h(
    'svg',
    { viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', strokeWidth: 1.5 },
    h('path', { d: 'M12 16V4m0 0l-5 5m5-5l5 5M4 16v3a1 1 0 001 1h14a1 1 0 001-1v-3' }),
  );
}

const importPlugin = { title: 'Import', icon: UploadIcon, content: ImportPanel };

/**
 * Opens the Import panel once GraphiQL is there: GraphiQL 4 keeps a plugin given as
 * visiblePlugin hidden until its sidebar button is used, so the button is used.
 */
function ImportPanelOpener() {
  useEffect(() => {
    // The sidebar gets its buttons after the first render: wait for this one (a few frames).
    let frame = 0;
    let tries = 0;
    const open = () => {
      const button = document.querySelector('.graphiql-sidebar button[aria-label="Show Import"]');
      if (button) button.click();
      else if (tries++ < 120) frame = window.requestAnimationFrame(open);
    };
    frame = window.requestAnimationFrame(open);
    return () => window.cancelAnimationFrame(frame);
  }, []);
  return null;
}

/** Puts the id of the session StartImport made into the variables of the current tab. */
function SessionIdFiller() {
  const { startedSessionId } = useAppState();
  const editors = GraphiQL.React.useEditorContext();
  const variableEditor = editors?.variableEditor;
  useEffect(() => {
    if (!startedSessionId || !variableEditor) return;
    let variables;
    try {
      variables = JSON.parse(variableEditor.getValue() || '{}');
    } catch {
      return;
    }
    if (!variables || typeof variables !== 'object' || !('sessionId' in variables)) return;
    if (variables.sessionId === startedSessionId) return;
    variables.sessionId = startedSessionId;
    variableEditor.setValue(JSON.stringify(variables, null, 2));
  }, [startedSessionId, variableEditor]);
  return null;
}

const hasStoredTabs = window.localStorage.getItem('graphiql:tabState') !== null;

function App() {
  const stored = window.sessionStorage.getItem(TOKEN_KEY);
  const [auth, setAuth] = useState(stored ? { token: stored, viewer: null } : null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!auth || auth.viewer) return;
    checkToken(auth.token).then(
      (viewer) => setAuth({ token: auth.token, viewer }),
      (failure) => {
        window.sessionStorage.removeItem(TOKEN_KEY);
        setError(failure.message);
        setAuth(null);
      },
    );
  }, [auth]);
  if (!auth) {
    return h(TokenScreen, {
      error,
      onToken: (token, viewer) => {
        window.sessionStorage.setItem(TOKEN_KEY, token);
        setAuth({ token, viewer });
      },
    });
  }
  if (!auth.viewer) return h('p', { className: 'muster-loading' }, 'Checking the token…');
  const forget = () => {
    window.sessionStorage.removeItem(TOKEN_KEY);
    setError(null);
    setAuth(null);
  };
  return h(
    'div',
    { className: 'muster-app' },
    h(
      'header',
      { className: 'muster-bar' },
      h('strong', null, 'Muster'),
      h(
        'span',
        { 'data-testid': 'signed-in' },
        `${auth.viewer.company.name} · ${auth.viewer.role} token …${auth.token.slice(-4)}`,
      ),
      h('button', { type: 'button', onClick: forget }, 'Use another token'),
    ),
    h(
      'div',
      { className: 'muster-graphiql' },
      h(
        GraphiQL,
        {
          // A new token is a new GraphiQL: the schema is fetched again with it.
          key: auth.token,
          fetcher: createFetcher(auth.token),
          plugins: [importPlugin],
          defaultEditorToolsVisibility: 'variables',
          // GraphiQL 4 takes the first tab's variables from this prop, not from defaultTabs;
          // once tabs are stored, they are restored as the admin left them.
          variables: hasStoredTabs ? undefined : IMPORT_VARIABLES,
          defaultTabs: [
            { query: IMPORT_DOCUMENT, variables: IMPORT_VARIABLES },
            { query: TOKENS_DOCUMENT, variables: TOKENS_VARIABLES },
          ],
        },
        h(GraphiQL.Footer, null, h(SessionIdFiller), h(ImportPanelOpener)),
      ),
    ),
  );
}

ReactDOM.createRoot(document.getElementById('muster-graphiql')).render(h(App));
