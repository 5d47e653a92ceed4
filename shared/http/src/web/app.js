// Pithy Jaunt's web page: a client of the HTTP API (docs/http-api.md) with no framework and no
// build step. Server data only ever reaches the document as text (textContent, attributes set
// one by one), never as HTML. The token lives in this tab's sessionStorage and only ever goes
// out in the Authorization header.
'use strict';

const TOKEN_KEY = 'pj.token';
const POLL_MS = 2000;
const STATUSES = ['pending_review', 'scheduled', 'queued', 'running', 'completed', 'failed',
  'needs_review', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'needs_review', 'cancelled']);
const KINDS = {
  code_change: 'Code change',
  api_call: 'API call',
  ghl_action: 'GoHighLevel action',
  notification: 'Notification',
  reminder: 'Reminder',
  report: 'Report',
  browser_automation: 'Browser automation',
  data_extraction: 'Data extraction',
};
const STATUS_LABELS = {
  pending_review: 'Pending review', scheduled: 'Scheduled', queued: 'Queued', running: 'Running',
  completed: 'Completed', failed: 'Failed', needs_review: 'Needs review', cancelled: 'Cancelled',
};

/** A valid config of each built-in kind, to start the editor from. */
function exampleConfig(kind) {
  const inAnHour = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const examples = {
    api_call: { url: 'https://api.example.com/orders', method: 'GET', timeout_secs: 30 },
    ghl_action: { action: 'add_tag', contact_id: 'contact123', tags: ['vip'] },
    notification: { channel: 'email', message: 'Hello from Pithy Jaunt' },
    reminder: { channel: 'email', message: 'Time to look at the dashboard', remind_at: inAnHour },
    report: { report: 'task_summary' },
    browser_automation: {
      start_url: 'https://example.com/',
      steps: [{ action: 'extract', selector: 'h1' }, { action: 'screenshot', full_page: true }],
    },
    data_extraction: { url: 'https://example.com/', fields: { heading: 'h1', link: 'a@href' } },
  };
  return JSON.stringify(examples[kind] || {}, null, 2);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** An element: `attrs` set one by one (`on*` are listeners), children appended as nodes or text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'text') {
      el.textContent = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function badge(status) {
  return h('span', { class: `badge s-${STATUSES.includes(status) ? status : 'queued'}` },
    STATUS_LABELS[status] || String(status));
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function ago(iso) {
  const d = new Date(iso);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (Number.isNaN(s)) return '';
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return d.toLocaleDateString();
}

/** `url` when it is an http(s) URL, else null: a server string never becomes a javascript: link. */
function safeHref(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

function announce(text) {
  const live = document.getElementById('live');
  live.textContent = '';
  // A fresh node each time, so a repeated message is read again.
  setTimeout(() => { live.textContent = text; }, 50);
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// ---------------------------------------------------------------------------------------------
// The API

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.field = error.field || null;
  }
}

class SignedOut extends Error {}

/** A call of the API with the token; a 401 signs out and shows the sign-in form. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    signOut('The server did not accept your token (401). Sign in again.');
    throw new SignedOut();
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || { message: (data && data.message) || response.statusText };
    throw new ApiError(response.status, error);
  }
  return data;
}

/** Where the log stream of `id` is: this origin, or the one the server named (AWS). */
function streamUrl(id) {
  const meta = document.querySelector('meta[name="pj-log-stream-url"]');
  const base = meta && meta.content ? meta.content : '';
  return `${base}tasks/${encodeURIComponent(id)}/logs/stream`;
}

// ---------------------------------------------------------------------------------------------
// Views and routing

const main = () => document.getElementById('main');
/** What the current view runs (polls, streams); aborted when the view is left. */
let viewAbort = new AbortController();
let listRendered = false;

function route() {
  viewAbort.abort();
  viewAbort = new AbortController();
  const signal = viewAbort.signal;
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return; // the skip link: not a route
  const nav = document.getElementById('nav');
  if (!token()) {
    nav.hidden = true;
    renderSignIn(null);
    return;
  }
  nav.hidden = false;
  const path = hash.slice(1);
  let m;
  let current = 'list';
  if (path === '/' || path === '') {
    listView(signal);
  } else if (path === '/new') {
    current = 'new';
    newTaskView();
  } else if (path === '/review') {
    current = 'review';
    reviewView(signal);
  } else if ((m = path.match(/^\/tasks\/([A-Za-z0-9_-]+)$/))) {
    current = null;
    taskView(m[1], signal);
  } else {
    current = null;
    show(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/' }, 'See your tasks.')));
  }
  for (const a of nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** Replaces the page's content and moves focus to its heading, for keyboard and reader users. */
function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat(Infinity));
  const heading = m.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · Pithy Jaunt`;
  }
  window.scrollTo(0, 0);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  viewAbort.abort();
  document.getElementById('nav').hidden = true;
  renderSignIn(message);
}

function renderSignIn(message) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, 'aria-describedby': 'token-hint',
  });
  const error = h('p', { class: 'notice error', role: 'alert', id: 'signin-error' }, message || '');
  error.hidden = !message;
  const form = h('form', { class: 'panel', method: 'post', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'Token'),
      input,
      h('p', { class: 'hint', id: 'token-hint' },
        'With pj serve: the development token in .pj/dev-token, or one of PJ_AUTH_TOKENS. ',
        'On AWS: your JWT. It is kept in this tab only, until you sign out or close it.')),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.textContent = 'Paste a token to sign in.';
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api('GET', 'tasks?limit=1');
    } catch (e) {
      if (!(e instanceof SignedOut)) {
        error.textContent = `Could not reach the API: ${e.message}`;
        error.hidden = false;
        sessionStorage.removeItem(TOKEN_KEY);
      }
      return;
    }
    announce('Signed in');
    route(); // the page asked for (a link from an email, say), now signed in
  });
  show(h('div', { class: 'signin' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Follow and run your tasks: code changes, API calls, messages, reports and browser steps.'),
    error, form));
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Task list

function taskRow(task) {
  return h('tr', { 'data-id': task.id },
    h('td', { class: 'title' }, h('a', { href: `#/tasks/${encodeURIComponent(task.id)}` }, task.title || task.id)),
    h('td', { 'data-label': 'Status' }, badge(task.status)),
    h('td', { 'data-label': 'Kind' }, KINDS[task.kind] || task.kind),
    h('td', { 'data-label': 'Updated', title: when(task.updated_at) }, ago(task.updated_at)),
    h('td', { 'data-label': 'Attempt' }, `${task.attempt} of ${task.max_attempts}`));
}

function taskTable(tasks, caption) {
  return h('table', { class: 'tasks' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Updated'),
      h('th', { scope: 'col' }, 'Attempt'))),
    h('tbody', {}, tasks.map(taskRow)));
}

/** Announces the tasks whose status changed since `before` (id → status). */
function announceChanges(before, tasks) {
  const changed = tasks.filter((t) => before.has(t.id) && before.get(t.id) !== t.status);
  if (changed.length === 1) announce(`${changed[0].title}: ${STATUS_LABELS[changed[0].status] || changed[0].status}`);
  else if (changed.length > 1) announce(`${changed.length} tasks changed status`);
}

/** Calls `tick` now and every POLL_MS while the page is visible, until `signal` aborts. */
function poll(signal, tick) {
  let timer = null;
  let busy = false;
  const run = async () => {
    clearTimeout(timer);
    if (signal.aborted || busy) return;
    busy = true;
    if (document.visibilityState === 'visible') {
      try {
        await tick();
      } catch (e) {
        if (e instanceof SignedOut) return;
        // A failed poll is shown by the view; the next one tries again.
      } finally {
        busy = false;
      }
    }
    busy = false;
    if (!signal.aborted) timer = setTimeout(run, POLL_MS);
  };
  const onVisible = () => { if (document.visibilityState === 'visible') run(); };
  document.addEventListener('visibilitychange', onVisible);
  signal.addEventListener('abort', () => {
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  }, { once: true });
  run();
}

function listView(signal) {
  const state = { status: '', cursors: [null], page: 0, seen: new Map(), last: '' };
  const filter = h('select', { id: 'status-filter' },
    h('option', { value: '' }, 'All statuses'),
    STATUSES.map((s) => h('option', { value: s }, STATUS_LABELS[s])));
  filter.value = state.status;
  const body = h('div', { class: 'panel table-panel', id: 'task-list', 'aria-busy': 'true' },
    h('p', { class: 'empty' }, 'Loading…'));
  const error = h('p', { class: 'notice error', role: 'alert' });
  error.hidden = true;
  const newer = h('button', { type: 'button', class: 'secondary' }, '← Newer');
  const older = h('button', { type: 'button', class: 'secondary' }, 'Older →');
  const pager = h('div', { class: 'pager' }, newer, older);
  pager.hidden = true;

  const tick = async () => {
    const q = new URLSearchParams({ limit: '20' });
    if (state.status) q.set('status', state.status);
    const cursor = state.cursors[state.page];
    if (cursor) q.set('cursor', cursor);
    let page;
    try {
      page = await api('GET', `tasks?${q}`);
    } catch (e) {
      if (!(e instanceof SignedOut)) {
        error.textContent = `Could not load the tasks: ${e.message}`;
        error.hidden = false;
      }
      throw e;
    }
    if (signal.aborted) return;
    error.hidden = true;
    state.cursors[state.page + 1] = page.next_cursor;
    newer.disabled = state.page === 0;
    older.disabled = !page.next_cursor;
    pager.hidden = newer.disabled && older.disabled;
    const key = JSON.stringify(page.tasks.map((t) => [t.id, t.status, t.updated_at, t.title]));
    if (key !== state.last) {
      state.last = key;
      announceChanges(state.seen, page.tasks);
      // Keep the focus on the same task's link across a refresh.
      const focusedId = document.activeElement && document.activeElement.closest('tr[data-id]')
        ? document.activeElement.closest('tr[data-id]').dataset.id : null;
      if (page.tasks.length === 0) {
        body.replaceChildren(h('p', { class: 'empty' },
          state.status ? `No ${STATUS_LABELS[state.status].toLowerCase()} tasks.` : 'No tasks yet. ',
          state.status ? '' : h('a', { href: '#/new' }, 'Create one.')));
      } else {
        body.replaceChildren(taskTable(page.tasks, 'Your tasks, newest first'));
      }
      if (focusedId) {
        const again = body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`);
        if (again) again.focus();
      }
    }
    for (const t of page.tasks) state.seen.set(t.id, t.status);
    body.setAttribute('aria-busy', 'false');
    if (!listRendered) {
      listRendered = true;
      performance.mark('pj:list-rendered');
    }
  };

  const restart = () => {
    state.last = '';
    body.setAttribute('aria-busy', 'true');
    tick().catch(() => {});
  };
  filter.addEventListener('change', () => {
    state.status = filter.value;
    state.cursors = [null];
    state.page = 0;
    state.seen = new Map();
    restart();
  });
  newer.addEventListener('click', () => { state.page = Math.max(0, state.page - 1); restart(); });
  older.addEventListener('click', () => { state.page += 1; restart(); });
  newer.disabled = true;
  older.disabled = true;

  show(
    h('div', { class: 'toolbar' },
      h('h1', { style: null }, 'Tasks'),
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'status-filter' }, 'Status'), filter),
        h('a', { class: 'button', href: '#/new' }, 'New task'))),
    error, body, pager);
  poll(signal, tick);
}

// ---------------------------------------------------------------------------------------------
// New task

/** A labelled field; `control` gets the id, and its hint and error are tied by aria-describedby. */
function field(id, labelText, control, hintText) {
  control.id = id;
  const parts = [h('label', { for: id }, labelText), control];
  if (hintText) {
    parts.push(h('p', { class: 'hint', id: `${id}-hint` }, hintText));
    control.setAttribute('aria-describedby', `${id}-hint`);
  }
  return h('div', { class: 'field', 'data-field': id }, parts);
}

function setFieldError(control, message) {
  const wrap = control.closest('.field');
  const errId = `${control.id}-error`;
  let err = wrap.querySelector('.field-error');
  if (!err) {
    err = h('p', { class: 'field-error', id: errId });
    wrap.append(err);
  }
  err.textContent = message;
  control.setAttribute('aria-invalid', 'true');
  const described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!described.includes(errId)) described.unshift(errId);
  control.setAttribute('aria-describedby', described.join(' '));
}

function clearFieldErrors(form) {
  for (const err of form.querySelectorAll('.field-error')) {
    const control = form.querySelector(`[aria-describedby~="${err.id}"]`);
    if (control) {
      control.removeAttribute('aria-invalid');
      const rest = control.getAttribute('aria-describedby').split(' ').filter((x) => x && x !== err.id);
      if (rest.length) control.setAttribute('aria-describedby', rest.join(' '));
      else control.removeAttribute('aria-describedby');
    }
    err.remove();
  }
}

function newTaskView() {
  const c = {
    kind: h('select', {}, Object.entries(KINDS).map(([k, label]) => h('option', { value: k }, label))),
    title: h('input', { type: 'text', maxlength: '200' }),
    repo: h('input', { type: 'text', inputmode: 'url', required: true, placeholder: 'https://github.com/you/your-repo' }),
    base: h('input', { type: 'text', value: 'main' }),
    prompt: h('textarea', { required: true, rows: '6' }),
    provider: h('select', {}, h('option', { value: '' }, 'Deployment default'),
      h('option', { value: 'openai' }, 'OpenAI'), h('option', { value: 'anthropic' }, 'Anthropic')),
    model: h('input', { type: 'text', placeholder: 'e.g. gpt-4.1 or claude-sonnet-4-5' }),
    config: h('textarea', { class: 'code', spellcheck: 'false', rows: '14' }),
    review: h('input', { type: 'checkbox' }),
    at: h('input', { type: 'datetime-local' }),
  };
  const codeFields = h('fieldset', {},
    h('legend', {}, 'Change request'),
    field('repo_url', 'Repository URL', c.repo, 'An https:// git URL (with pj serve also a local path).'),
    field('prompt', 'What to change', c.prompt, 'Plain words, as you would write to a colleague.'),
    h('div', { class: 'grid2' },
      field('base_branch', 'Base branch', c.base),
      field('model_provider', 'Model provider', c.provider)),
    field('model_name', 'Model (optional)', c.model, 'Leave empty for the deployment’s default model.'));
  const configFields = h('fieldset', {},
    h('legend', {}, 'Configuration'),
    field('config', 'Config (JSON)', c.config, 'The kind’s config; docs/http-api.md, “Task kinds”, has every field.'));
  const configHint = configFields.querySelector('.hint');
  const summary = h('div', { class: 'notice error', role: 'alert', tabindex: '-1' });
  summary.hidden = true;
  const submit = h('button', { type: 'submit' }, 'Create task');
  const form = h('form', { class: 'panel', method: 'post', novalidate: true },
    summary,
    h('div', { class: 'grid2' },
      field('kind', 'Kind', c.kind),
      field('title', 'Title', c.title, 'Optional for a code change (its prompt’s first line).')),
    codeFields, configFields,
    h('div', { class: 'grid2' },
      field('scheduled_for', 'Run at (optional)', c.at, 'Leave empty to run now. Your local time.'),
      h('div', { class: 'field check', 'data-field': 'requires_review' },
        c.review,
        h('label', { for: 'requires_review' }, 'Hold for review: it waits in the review queue until approved'))),
    h('div', { class: 'row' }, submit, h('a', { href: '#/' }, 'Cancel')));
  c.review.id = 'requires_review';

  const onKind = () => {
    const kind = c.kind.value;
    const code = kind === 'code_change';
    codeFields.hidden = !code;
    configFields.hidden = code;
    if (!code) {
      c.config.value = exampleConfig(kind);
      configHint.textContent = `An example ${KINDS[kind]} config to edit; every field is in docs/http-api.md, “Task kinds”.`;
    }
    clearFieldErrors(form);
    summary.hidden = true;
  };
  c.kind.addEventListener('change', onKind);
  onKind();

  const controlFor = (path) => {
    if (!path) return null;
    if (path === 'config' || path.startsWith('config.') || path.startsWith('config[')) return c.config;
    if (path.startsWith('model')) return path === 'model.provider' ? c.provider : c.model;
    const map = {
      repo_url: c.repo, prompt: c.prompt, base_branch: c.base, title: c.title,
      scheduled_for: c.at, requires_review: c.review, kind: c.kind,
    };
    return map[path] || null;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    summary.hidden = true;
    const kind = c.kind.value;
    const body = { kind };
    if (c.title.value.trim()) body.title = c.title.value.trim();
    if (c.review.checked) body.requires_review = true;
    if (c.at.value) {
      const at = new Date(c.at.value);
      if (Number.isNaN(at.getTime())) {
        setFieldError(c.at, 'Not a date and time.');
        c.at.focus();
        return;
      }
      body.scheduled_for = at.toISOString();
    }
    if (kind === 'code_change') {
      body.repo_url = c.repo.value.trim();
      body.prompt = c.prompt.value;
      if (c.base.value.trim()) body.base_branch = c.base.value.trim();
      if (c.provider.value || c.model.value.trim()) {
        body.model = { provider: c.provider.value || 'openai', name: c.model.value.trim() };
      }
    } else {
      try {
        body.config = JSON.parse(c.config.value);
      } catch (e) {
        setFieldError(c.config, `config: not valid JSON (${e.message})`);
        c.config.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      const task = await api('POST', 'tasks', body);
      announce(`Created: ${task.title}`);
      location.hash = `#/tasks/${encodeURIComponent(task.id)}`;
    } catch (e) {
      if (e instanceof SignedOut) return;
      const control = e instanceof ApiError && e.code === 'validation_failed' ? controlFor(e.field) : null;
      if (control) {
        setFieldError(control, e.field && !e.message.startsWith(e.field) ? `${e.field}: ${e.message}` : e.message);
        control.focus();
      } else {
        summary.textContent = e instanceof ApiError
          ? `The task was not created: ${e.message}${e.field ? ` (${e.field})` : ''}`
          : `The task was not created: ${e.message}`;
        summary.hidden = false;
        summary.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });

  show(h('h1', {}, 'New task'), form);
}

// ---------------------------------------------------------------------------------------------
// Task page

const ACTIONS = [
  { name: 'execute', label: 'Execute', when: ['queued'], done: 'Execution requested' },
  { name: 'approve', label: 'Approve', when: ['pending_review'], done: 'Approved' },
  { name: 'retry', label: 'Retry', when: ['failed', 'needs_review', 'cancelled'], done: 'Retry started' },
  { name: 'cancel', label: 'Cancel task', when: ['pending_review', 'scheduled', 'queued', 'running'], done: 'Cancelled', danger: true },
];

function usageText(usage) {
  if (!usage) return '—';
  const parts = [`${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens`];
  if (usage.cost_usd !== null && usage.cost_usd !== undefined) parts.push(`$${Number(usage.cost_usd).toFixed(4)}`);
  else parts.push('cost unknown');
  if (usage.model) parts.push(usage.model);
  return parts.join(' · ');
}

function facts(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function taskView(id, signal) {
  const el = {
    heading: h('h1', {}, 'Task'),
    badge: h('span', {}),
    notice: h('p', { class: 'notice', role: 'status' }),
    actions: h('div', { class: 'actions' }),
    pr: h('div', { class: 'pr' }),
    facts: h('div', {}),
    body: h('div', {}),
    result: h('section', { class: 'panel', 'aria-labelledby': 'result-h' }),
    log: h('ol', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'Log' }),
    logState: h('p', { class: 'hint', id: 'log-state' }),
    executions: h('div', {}),
    artifacts: h('div', {}),
  };
  el.notice.hidden = true;
  el.result.hidden = true;
  let task = null;
  let streaming = false;
  const blobUrls = [];
  signal.addEventListener('abort', () => blobUrls.forEach((u) => URL.revokeObjectURL(u)), { once: true });

  const say = (text, kind) => {
    el.notice.className = `notice ${kind || ''}`;
    el.notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    el.notice.textContent = text;
    el.notice.hidden = false;
  };

  const renderTask = (t) => {
    const before = task;
    task = t;
    el.heading.textContent = t.title || t.id;
    document.title = `${t.title || t.id} · Pithy Jaunt`;
    el.badge.replaceChildren(badge(t.status));
    if (before && before.status !== t.status) announce(`Status: ${STATUS_LABELS[t.status] || t.status}`);
    el.actions.replaceChildren(...ACTIONS.map((a) => h('button', {
      type: 'button', class: a.danger ? 'danger' : (a.name === 'approve' || a.name === 'execute' ? '' : 'secondary'),
      'data-action': a.name, disabled: !a.when.includes(t.status),
      onclick: () => act(a),
    }, a.label)));
    const href = t.pr_url ? safeHref(t.pr_url) : null;
    el.pr.replaceChildren(href
      ? h('a', { class: 'button', href, rel: 'noopener noreferrer', target: '_blank' }, 'View pull request')
      : '');
    el.pr.hidden = !href;
    const model = t.model ? `${t.model.provider}/${t.model.name}` : null;
    el.facts.replaceChildren(facts([
      ['Status', STATUS_LABELS[t.status] || t.status],
      ['Kind', KINDS[t.kind] || t.kind],
      ['Id', h('span', { class: 'mono' }, t.id)],
      t.repo_url && ['Repository', t.repo_url],
      t.base_branch && ['Base branch', t.base_branch],
      t.branch && ['Branch', h('span', { class: 'mono' }, t.branch)],
      model && ['Model', model],
      ['Attempt', `${t.attempt} of ${t.max_attempts}`],
      ['Usage', usageText(t.usage)],
      t.requires_review && ['Review', 'Held for review before running'],
      t.scheduled_for && ['Scheduled for', when(t.scheduled_for)],
      ['Created', when(t.created_at)],
      t.started_at && ['Started', when(t.started_at)],
      t.completed_at && ['Finished', when(t.completed_at)],
    ]));
    const code = t.prompt !== null && t.prompt !== undefined;
    el.body.replaceChildren(
      h('h2', {}, code ? 'Prompt' : 'Config'),
      h('pre', { class: 'light' }, code ? t.prompt : JSON.stringify(t.config, null, 2)));
    el.body.parentElement.hidden = !code && !t.config;
    const resultParts = [];
    if (t.error) resultParts.push(h('p', { class: 'notice error' }, `${t.error.message} (${t.error.code})`));
    if (t.result_summary) resultParts.push(h('p', {}, t.result_summary));
    if (t.result !== null && t.result !== undefined) resultParts.push(h('pre', { class: 'light' }, JSON.stringify(t.result, null, 2)));
    el.result.replaceChildren(h('h2', { id: 'result-h' }, t.error ? 'Error' : 'Result'), ...resultParts);
    el.result.hidden = resultParts.length === 0;
    if (before && (before.status !== t.status || before.attempt !== t.attempt)) {
      loadExecutions();
      if (TERMINAL.has(t.status)) loadArtifacts();
    }
  };

  const act = async (action) => {
    el.notice.hidden = true;
    const buttons = el.actions.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const t = await api('POST', `tasks/${encodeURIComponent(id)}/${action.name}`);
      renderTask(t);
      say(`${action.done}.`, 'ok');
      announce(`${action.done}. Status: ${STATUS_LABELS[t.status] || t.status}`);
      if (!streaming && !TERMINAL.has(t.status)) follow();
    } catch (e) {
      if (e instanceof SignedOut) return;
      say(`${action.label} was refused: ${e.message}`, 'error');
      if (task) renderTask(task);
    }
  };

  const loadExecutions = async () => {
    try {
      const { executions } = await api('GET', `tasks/${encodeURIComponent(id)}/executions`);
      if (signal.aborted) return;
      el.executions.replaceChildren(executions.length === 0
        ? h('p', { class: 'muted' }, 'No attempt yet.')
        : h('table', {},
          h('thead', {}, h('tr', {}, ['Attempt', 'Status', 'Runner', 'Triggered by', 'Started', 'Duration', 'Error']
            .map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, executions.map((x) => h('tr', {},
            h('td', {}, String(x.attempt)),
            h('td', {}, x.status),
            h('td', {}, x.runner || '—'),
            h('td', {}, x.triggered_by || '—'),
            h('td', {}, when(x.started_at)),
            h('td', {}, x.duration_ms === null || x.duration_ms === undefined ? '—' : `${(x.duration_ms / 1000).toFixed(1)} s`),
            h('td', {}, x.error ? `${x.error.code}: ${x.error.message}` : '—'))))));
    } catch (e) {
      if (!(e instanceof SignedOut)) el.executions.replaceChildren(h('p', { class: 'notice error' }, `Could not load the attempts: ${e.message}`));
    }
  };

  const fetchBlob = async (name) => {
    const r = await fetch(`tasks/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(name)}`, {
      headers: { Authorization: `Bearer ${token()}` }, cache: 'no-store', signal,
    });
    if (r.status === 401) {
      signOut('The server did not accept your token (401). Sign in again.');
      throw new SignedOut();
    }
    if (!r.ok) throw new ApiError(r.status, { message: `HTTP ${r.status}` });
    const url = URL.createObjectURL(await r.blob());
    blobUrls.push(url);
    return url;
  };

  const loadArtifacts = async () => {
    try {
      const { artifacts } = await api('GET', `tasks/${encodeURIComponent(id)}/artifacts`);
      if (signal.aborted) return;
      if (artifacts.length === 0) {
        el.artifacts.replaceChildren(h('p', { class: 'muted' }, 'No files.'));
        return;
      }
      const shots = artifacts.filter((a) => a.content_type === 'image/png');
      const others = artifacts.filter((a) => a.content_type !== 'image/png');
      const list = h('ul', { class: 'artifact-list' }, others.map((a) => h('li', {},
        h('span', { class: 'mono' }, a.name),
        h('span', { class: 'muted' }, `${a.size} bytes, attempt ${a.attempt}`),
        h('button', {
          type: 'button', class: 'secondary',
          onclick: async () => {
            try {
              const url = await fetchBlob(a.name);
              const link = h('a', { href: url, download: a.name });
              document.body.append(link);
              link.click();
              link.remove();
            } catch (e) {
              if (!(e instanceof SignedOut)) say(`Could not download ${a.name}: ${e.message}`, 'error');
            }
          },
        }, 'Download', h('span', { class: 'visually-hidden' }, ` ${a.name}`)))));
      const grid = h('div', { class: 'shots' });
      el.artifacts.replaceChildren(others.length ? list : '', shots.length ? grid : '');
      for (const a of shots) {
        const img = h('img', { alt: `Screenshot ${a.name} (attempt ${a.attempt})` });
        grid.append(h('figure', {}, img, h('figcaption', {}, a.name)));
        fetchBlob(a.name).then((url) => { img.src = url; }).catch(() => { img.alt = `${a.name}: could not be loaded`; });
      }
    } catch (e) {
      if (!(e instanceof SignedOut)) el.artifacts.replaceChildren(h('p', { class: 'notice error' }, `Could not load the files: ${e.message}`));
    }
  };

  // The live log: fetch() with the Authorization header (EventSource cannot send it), the
  // server-sent events parsed here, resumed after a drop with Last-Event-ID.
  let lastId = null;
  const appendLine = (line) => {
    const atBottom = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 24;
    const ts = line.ts ? new Date(line.ts) : null;
    el.log.append(h('li', { class: line.stream || '' },
      ts && !Number.isNaN(ts.getTime()) ? h('span', { class: 'ts' }, ts.toLocaleTimeString()) : '',
      line.text));
    if (atBottom) el.log.scrollTop = el.log.scrollHeight;
  };
  const onEvent = (type, data, eventId) => {
    if (type === 'log') {
      if (eventId) lastId = eventId;
      appendLine(JSON.parse(data));
    } else if (type === 'status') {
      renderTask(JSON.parse(data));
    } else if (type === 'error') {
      let message = 'the stream failed';
      try { message = JSON.parse(data).error.message; } catch { /* keep the default */ }
      throw new Error(message);
    }
  };

  const follow = async () => {
    streaming = true;
    let delay = 1000;
    try {
      while (!signal.aborted) {
        el.logState.textContent = 'Live: connecting…';
        const headers = { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        try {
          const response = await fetch(streamUrl(id), { headers, signal, cache: 'no-store' });
          if (response.status === 401) {
            signOut('The server did not accept your token (401). Sign in again.');
            return;
          }
          if (response.status === 404) {
            el.logState.textContent = 'No such task.';
            return;
          }
          if (!response.ok) {
            const wait = Number(response.headers.get('Retry-After'));
            el.logState.textContent = `The log stream answered ${response.status}; trying again.`;
            await sleep(wait > 0 ? wait * 1000 : delay, signal);
            delay = Math.min(delay * 2, 15000);
            continue;
          }
          el.logState.textContent = 'Live';
          delay = 1000;
          await readEvents(response.body, onEvent);
          if (task && TERMINAL.has(task.status)) {
            el.logState.textContent = `The task ended: ${STATUS_LABELS[task.status]}.`;
            return;
          }
        } catch (e) {
          if (signal.aborted) return;
          el.logState.textContent = `The log stream broke (${e.message}); reconnecting…`;
        }
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 15000);
      }
    } finally {
      streaming = false;
    }
  };

  show(
    h('p', {}, h('a', { href: '#/' }, '← All tasks')),
    h('div', { class: 'title-row' }, el.heading, el.badge),
    el.notice,
    el.pr,
    h('section', { class: 'panel', 'aria-label': 'Actions' }, el.actions),
    el.result,
    h('div', { class: 'cols' },
      h('section', { class: 'panel', 'aria-labelledby': 'log-h' },
        h('div', { class: 'row spread' }, h('h2', { id: 'log-h' }, 'Log'), el.logState),
        el.log),
      h('section', { class: 'panel', 'aria-labelledby': 'details-h' },
        h('h2', { id: 'details-h' }, 'Details'), el.facts)),
    h('section', { class: 'panel' }, el.body),
    h('section', { class: 'panel', 'aria-labelledby': 'exec-h' }, h('h2', { id: 'exec-h' }, 'Attempts'), el.executions),
    h('section', { class: 'panel', 'aria-labelledby': 'files-h' }, h('h2', { id: 'files-h' }, 'Files and screenshots'), el.artifacts));

  (async () => {
    try {
      renderTask(await api('GET', `tasks/${encodeURIComponent(id)}`));
    } catch (e) {
      if (e instanceof SignedOut || signal.aborted) return;
      show(h('h1', {}, e.status === 404 ? 'No such task' : 'Could not load the task'),
        h('p', {}, e.message, ' ', h('a', { href: '#/' }, 'See your tasks.')));
      return;
    }
    loadExecutions();
    loadArtifacts();
    follow();
  })();
}

/** Reads server-sent events from `body` and calls `onEvent(type, data, id)` for each. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let type = '';
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    // A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent(type || 'message', data.join('\n'), id);
        type = '';
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (name === 'event') type = value;
      else if (name === 'data') data.push(value);
      else if (name === 'id') id = value;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Review queue

function reviewView(signal) {
  const pending = h('div', { class: 'panel table-panel' }, h('p', { class: 'empty' }, 'Loading…'));
  const needs = h('div', { class: 'panel table-panel' }, h('p', { class: 'empty' }, 'Loading…'));
  const notice = h('p', { class: 'notice', role: 'status' });
  notice.hidden = true;
  const keys = { pending: '', needs: '' };

  const act = async (task, name, done) => {
    notice.hidden = true;
    try {
      const t = await api('POST', `tasks/${encodeURIComponent(task.id)}/${name}`);
      notice.className = 'notice ok';
      notice.textContent = `${task.title}: ${done}. Status: ${STATUS_LABELS[t.status] || t.status}.`;
      announce(notice.textContent);
    } catch (e) {
      if (e instanceof SignedOut) return;
      notice.className = 'notice error';
      notice.textContent = `${task.title}: ${name} was refused: ${e.message}`;
    }
    notice.hidden = false;
    keys.pending = '';
    keys.needs = '';
    await tick().catch(() => {});
    const first = main().querySelector('button[data-action]');
    if (first) first.focus();
  };

  const rows = (tasks, buttons) => h('table', { class: 'tasks' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col' }, 'Kind'),
      h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Actions'))),
    h('tbody', {}, tasks.map((t) => h('tr', { 'data-id': t.id },
      h('td', { class: 'title' }, h('a', { href: `#/tasks/${encodeURIComponent(t.id)}` }, t.title || t.id),
        t.error ? h('div', { class: 'hint' }, `${t.error.code}: ${t.error.message}`) : ''),
      h('td', { 'data-label': 'Kind' }, KINDS[t.kind] || t.kind),
      h('td', { 'data-label': 'Created' }, when(t.created_at)),
      h('td', { class: 'cell-actions' }, h('div', { class: 'actions' }, buttons(t)))))));

  const fill = (target, which, tasks, empty, buttons) => {
    const key = JSON.stringify(tasks.map((t) => [t.id, t.updated_at]));
    if (key === keys[which]) return;
    keys[which] = key;
    target.replaceChildren(tasks.length ? rows(tasks, buttons) : h('p', { class: 'empty' }, empty));
  };

  const tick = async () => {
    const [p, n] = await Promise.all([
      api('GET', 'tasks?status=pending_review&limit=100'),
      api('GET', 'tasks?status=needs_review&limit=100'),
    ]);
    if (signal.aborted) return;
    fill(pending, 'pending', p.tasks, 'Nothing waits for approval.', (t) => [
      h('button', { type: 'button', 'data-action': 'approve', onclick: () => act(t, 'approve', 'approved') },
        'Approve', h('span', { class: 'visually-hidden' }, ` ${t.title}`)),
      h('button', { type: 'button', class: 'danger', 'data-action': 'cancel', onclick: () => act(t, 'cancel', 'cancelled') },
        'Cancel', h('span', { class: 'visually-hidden' }, ` ${t.title}`)),
    ]);
    fill(needs, 'needs', n.tasks, 'No finished task needs a look.', (t) => [
      h('button', { type: 'button', class: 'secondary', 'data-action': 'retry', onclick: () => act(t, 'retry', 'retry started') },
        'Retry', h('span', { class: 'visually-hidden' }, ` ${t.title}`)),
    ]);
  };

  show(h('h1', {}, 'Review'), notice,
    h('h2', {}, 'Waiting for approval'),
    h('p', { class: 'hint' }, 'Created with “Hold for review”: nothing runs until you approve.'),
    pending,
    h('h2', {}, 'Needs review'),
    h('p', { class: 'hint' }, 'Finished, but a person should look (the patch did not apply, a check failed, no change). Retry starts a new attempt.'),
    needs);
  poll(signal, tick);
}

// ---------------------------------------------------------------------------------------------
// Start

document.getElementById('sign-out').addEventListener('click', () => {
  signOut(null);
  announce('Signed out');
});
document.getElementById('skip').addEventListener('click', (event) => {
  event.preventDefault();
  main().focus();
});
window.addEventListener('hashchange', route);
route();
