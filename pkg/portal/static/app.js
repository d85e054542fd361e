// Bulkhead's self-service portal: a single page that calls the public API
// with the tenant's API key. No framework and no build step.
//
// Security rules this file keeps:
//   - every string from the API or the user is rendered with textContent or
//     createTextNode (el() below), never parsed as HTML, so markup in an agent's
//     name or a message shows as text and never runs;
//   - the API key lives in the variable apiKey and in sessionStorage (gone
//     with the tab), never in local storage, a cookie, a URL or a log line;
//   - the page's Content-Security-Policy allows no inline script or style,
//     so styling is by class only.
'use strict';

(function () {
  const KEY_STORAGE = 'bulkhead.apiKey';
  let apiKey = '';
  try {
    apiKey = window.sessionStorage.getItem(KEY_STORAGE) || '';
  } catch (e) {
    apiKey = '';
  }

  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // el builds an element. attrs: "class", "text" (textContent), "on<event>"
  // (a listener function) and plain attributes; children: nodes or strings
  // (as text nodes), null skipped, arrays flattened.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.setAttribute('class', v);
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }

  // ---- API --------------------------------------------------------------

  class APIError extends Error {
    constructor(status, body, headers) {
      const e = (body && body.error) || {};
      super(e.message || ('HTTP ' + status));
      this.status = status;
      this.code = e.code || ('http_' + status);
      this.detail = e;
      this.retryAfter = headers ? headers.get('Retry-After') : null;
    }
  }

  function authHeaders(extra) {
    return Object.assign({ Authorization: 'Bearer ' + apiKey }, extra || {});
  }

  async function api(method, path, body) {
    const init = { method, headers: authHeaders(), cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!res.ok) {
      const err = new APIError(res.status, data, res.headers);
      if (res.status === 401) signedOut(err); // the key is no longer valid: forget it
      throw err;
    }
    return data;
  }

  // listAll follows next_cursor up to maxPages pages of 100.
  async function listAll(path, maxPages) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < (maxPages || 10); i++) {
      const sep = path.includes('?') ? '&' : '?';
      const page = await api('GET', path + sep + 'limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      items.push(...page.data);
      if (!page.has_more || !page.next_cursor) break;
      cursor = page.next_cursor;
    }
    return items;
  }

  const seg = (s) => encodeURIComponent(s);

  // ---- formatting -------------------------------------------------------

  const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? '—'));
  const usd = (n) => (n === null || n === undefined ? '—' : '$' + String(n));
  function when(s) {
    if (!s) return '—';
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  function duration(from, to) {
    const ms = new Date(to) - new Date(from);
    if (isNaN(ms)) return '—';
    return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(2) + ' s';
  }

  // errorView shows an API error in the API's own words: its code and
  // message, and for a 429 when the limit resets.
  function errorView(err) {
    const box = el('div', { class: 'error', role: 'alert', 'data-code': err.code || 'error' });
    if (err instanceof APIError) {
      box.appendChild(el('strong', { class: 'error-code', text: err.code }));
      box.appendChild(el('span', { class: 'error-message', text: ' ' + err.message }));
      if (err.status === 429) {
        let reset = null;
        if (err.detail.resets_at) reset = new Date(err.detail.resets_at);
        else if (err.retryAfter && /^\d+$/.test(err.retryAfter)) reset = new Date(Date.now() + Number(err.retryAfter) * 1000);
        const parts = [];
        if (err.detail.quota_type) parts.push('Quota: ' + err.detail.quota_type + '.');
        if (err.detail.limit !== undefined) parts.push('Limit ' + num(err.detail.limit) + ', used ' + num(err.detail.used) + '.');
        if (reset && !isNaN(reset)) parts.push('Resets at ' + when(reset.toISOString()) + '.');
        if (err.retryAfter && !err.detail.resets_at) parts.push('Retry after ' + err.retryAfter + ' s.');
        box.appendChild(el('div', { class: 'error-reset', text: parts.join(' ') }));
      }
    } else {
      box.appendChild(el('strong', { class: 'error-code', text: 'network_error' }));
      box.appendChild(el('span', { class: 'error-message', text: ' ' + (err && err.message ? err.message : String(err)) }));
    }
    return box;
  }

  function empty(text) {
    return el('p', { class: 'empty', text });
  }

  function table(headers, rows, attrs) {
    return el('table', attrs || {},
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { text: h })))),
      el('tbody', {}, rows));
  }

  function dl(pairs, attrs) {
    return el('dl', Object.assign({ class: 'facts' }, attrs || {}),
      pairs.map(([k, v, id]) => [el('dt', { text: k }), el('dd', { id: id || null }, v instanceof Node ? v : String(v ?? '—'))]));
  }

  // ---- sign-in ----------------------------------------------------------

  function signedOut(reason) {
    apiKey = '';
    try {
      window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) { /* storage unavailable: the variable was the only copy */ }
    $('nav').hidden = true;
    $('view').hidden = true;
    $('view').replaceChildren();
    $('signin').hidden = false;
    $('signin-error').replaceChildren(reason instanceof Error ? errorView(reason) : '');
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('api-key');
    const key = input.value.trim();
    $('signin-error').replaceChildren();
    if (!key) return;
    apiKey = key;
    try {
      await api('GET', '/v1/usage');
    } catch (err) {
      apiKey = '';
      $('signin-error').replaceChildren(errorView(err));
      return;
    }
    input.value = '';
    try {
      window.sessionStorage.setItem(KEY_STORAGE, key);
    } catch (e) { /* kept in memory only */ }
    showApp();
  }

  function showApp() {
    $('signin').hidden = true;
    $('nav').hidden = false;
    $('view').hidden = false;
    if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/usage';
    else route();
  }

  // ---- routing ----------------------------------------------------------

  let renderSeq = 0;

  async function route() {
    if (!apiKey) return;
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const page = parts[0] || 'usage';
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
    const pages = {
      usage: pageUsage, agents: pageAgents, console: pageConsole, conversations: pageConversations,
      executions: pageExecution, keys: pageKeys, invoices: pageInvoices,
    };
    const fn = pages[page] || pageUsage;
    const seq = ++renderSeq;
    const view = $('view');
    view.replaceChildren(el('p', { class: 'loading', text: 'Loading…' }));
    view.setAttribute('data-page', page);
    view.removeAttribute('data-ready');
    let content;
    try {
      content = await fn(parts.slice(1));
    } catch (err) {
      content = errorView(err);
    }
    if (seq !== renderSeq) return; // another page was asked for meanwhile
    view.replaceChildren(content);
    view.setAttribute('data-ready', page);
  }

  // ---- usage ------------------------------------------------------------

  function bar(id, label, used, max, fmt) {
    const p = el('progress', { id: 'bar-' + id, max: max > 0 ? max : 1, value: Math.min(used, max > 0 ? max : 1) });
    const pct = max > 0 ? Math.round((used / max) * 1000) / 10 : 0;
    return el('div', { class: 'quota' + (max > 0 && used >= max ? ' full' : ''), 'data-quota': id },
      el('div', { class: 'quota-label' },
        el('span', { text: label }),
        el('span', { class: 'quota-numbers' },
          el('span', { id: 'used-' + id, 'data-value': String(used), text: fmt(used) }),
          ' / ',
          el('span', { id: 'max-' + id, 'data-value': String(max), text: fmt(max) }),
          ' (' + pct + '%)')),
      p);
  }

  async function pageUsage() {
    const [u, daily, bill] = await Promise.all([api('GET', '/v1/usage'), api('GET', '/v1/usage/daily'), api('GET', '/v1/billing/current')]);
    const q = u.quota, us = u.usage;
    const quotas = el('section', { class: 'card' },
      el('h1', { text: 'Usage this month (' + u.period.month + ')' }),
      el('p', { class: 'muted', text: 'Tier ' + u.tier + '. The month resets at ' + when(u.period.month_resets_at) + ', the hourly request count at ' + when(u.period.hour_resets_at) + '.' }),
      bar('tokens', 'Tokens this month', us.tokens_this_month, q.max_tokens_per_month, num),
      bar('spend', 'Spend this month', us.spend_this_month, q.max_spend_per_month, usd),
      bar('requests', 'Requests this hour', us.requests_this_hour, q.max_requests_per_hour, num),
      bar('concurrency', 'Concurrent executions', us.concurrent_agents, q.max_concurrent_agents, num),
      bar('storage', 'Storage (MB)', us.storage_mb, q.max_storage_mb, num),
      dl([
        ['Executions this month', num(us.executions_this_month), 'usage-executions'],
        ['Input / output tokens', num(us.input_tokens) + ' / ' + num(us.output_tokens)],
        ['Remaining tokens', num(us.remaining_tokens)],
        ['Remaining budget', usd(us.remaining_budget)],
      ]));
    const chart = el('section', { class: 'card' }, el('h2', { text: 'Daily tokens and spend' }),
      daily.data.length ? dailyChart(daily.month, daily.data) : empty('No executions this month yet.'));
    const billing = el('section', { class: 'card', id: 'bill' }, el('h2', { text: 'Running bill (estimate)' }),
      dl([
        ['Month', bill.month],
        ['Tier', bill.tier],
        ['Base fee', usd(bill.base_fee)],
        ['Tokens included', num(bill.tokens_included)],
        ['Tokens used', num(bill.tokens_used), 'bill-tokens'],
        ['Overage tokens', num(bill.overage_tokens)],
        ['Overage fee', usd(bill.overage_fee)],
        ['Total so far', usd(bill.total), 'bill-total'],
      ]));
    return el('div', {}, quotas, chart, billing);
  }

  // dailyChart draws the month's days: a bar of tokens per day and a line of
  // spend, each on its own scale, built as SVG nodes.
  function dailyChart(month, days) {
    const [y, m] = month.split('-').map(Number);
    const ndays = new Date(Date.UTC(y, m, 0)).getUTCDate();
    const byDay = new Map(days.map((d) => [Number(d.date.slice(8, 10)), d]));
    const W = 720, H = 240, L = 56, R = 56, T = 16, B = 28;
    const pw = (W - L - R) / ndays, ph = H - T - B;
    const maxTok = Math.max(1, ...days.map((d) => d.tokens));
    const maxCost = Math.max(0.000001, ...days.map((d) => d.cost));
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', id: 'daily-chart', role: 'img', 'aria-label': 'Tokens and spend per day' });
    root.appendChild(svg('line', { x1: L, y1: T + ph, x2: W - R, y2: T + ph, class: 'axis' }));
    root.appendChild(svg('text', { x: L - 6, y: T + 10, class: 'tick tokens', 'text-anchor': 'end' }, num(maxTok)));
    root.appendChild(svg('text', { x: L - 6, y: T + ph, class: 'tick', 'text-anchor': 'end' }, '0'));
    root.appendChild(svg('text', { x: W - R + 6, y: T + 10, class: 'tick spend' }, usd(maxCost)));
    const points = [];
    for (let d = 1; d <= ndays; d++) {
      const x = L + (d - 1) * pw;
      const v = byDay.get(d);
      if (v) {
        const h = (v.tokens / maxTok) * ph;
        root.appendChild(svg('rect', { x: x + pw * 0.15, y: T + ph - h, width: pw * 0.7, height: h, class: 'bar', 'data-date': v.date, 'data-tokens': v.tokens },
          svg('title', {}, v.date + ': ' + num(v.tokens) + ' tokens, ' + usd(v.cost) + ', ' + num(v.executions) + ' executions')));
      }
      if (v) {
        const cx = x + pw / 2, cy = T + ph - (v.cost / maxCost) * ph;
        points.push(cx.toFixed(1) + ',' + cy.toFixed(1));
        root.appendChild(svg('circle', { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 3.5, class: 'spend-dot', 'data-date': v.date, 'data-cost': v.cost },
          svg('title', {}, v.date + ': ' + usd(v.cost))));
      }
      if (d === 1 || d % 5 === 0) root.appendChild(svg('text', { x: x + pw / 2, y: H - 8, class: 'tick', 'text-anchor': 'middle' }, String(d)));
    }
    // The spend line joins the days that had executions, drawn under the dots.
    root.insertBefore(svg('polyline', { points: points.join(' '), class: 'spend-line' }), root.querySelector('.spend-dot'));
    const legend = el('p', { class: 'legend' }, el('span', { class: 'swatch tokens' }), ' tokens per day  ', el('span', { class: 'swatch spend' }), ' spend per day (USD)');
    const rows = days.map((d) => el('tr', {}, el('td', { text: d.date }), el('td', { text: num(d.executions) }), el('td', { text: num(d.tokens) }), el('td', { text: usd(d.cost) })));
    return el('div', {}, root, legend, table(['Day', 'Executions', 'Tokens', 'Spend'], rows, { class: 'compact' }));
  }

  // ---- agents -----------------------------------------------------------

  async function pageAgents(args) {
    if (args[0] === 'new') return agentForm(null);
    if (args[0]) return agentForm(await api('GET', '/v1/agents/' + seg(args[0])));
    const agents = await listAll('/v1/agents');
    const out = el('section', { class: 'card' },
      el('div', { class: 'title-row' }, el('h1', { text: 'Agents' }), el('a', { class: 'button', href: '#/agents/new', id: 'new-agent', text: 'New agent' })));
    if (!agents.length) {
      out.appendChild(empty('No agents yet. Create one to run it in the console.'));
      return out;
    }
    const msg = el('div', { class: 'messages' });
    const rows = agents.map((a) => {
      const del = el('button', { type: 'button', class: 'danger delete', text: 'Delete' });
      del.addEventListener('click', async () => {
        if (del.dataset.armed !== '1') {
          del.dataset.armed = '1';
          del.textContent = 'Confirm delete';
          return;
        }
        try {
          await api('DELETE', '/v1/agents/' + seg(a.agent_id));
          route();
        } catch (err) {
          msg.replaceChildren(errorView(err));
        }
      });
      const toggle = el('button', { type: 'button', class: 'toggle', text: a.status === 'active' ? 'Disable' : 'Enable' });
      toggle.addEventListener('click', async () => {
        try {
          await api('PATCH', '/v1/agents/' + seg(a.agent_id), { status: a.status === 'active' ? 'disabled' : 'active' });
          route();
        } catch (err) {
          msg.replaceChildren(errorView(err));
        }
      });
      return el('tr', { 'data-agent-id': a.agent_id },
        el('td', {}, el('a', { href: '#/agents/' + seg(a.agent_id), class: 'agent-name', text: a.name })),
        el('td', { text: a.status, class: 'status-' + a.status }),
        el('td', { text: a.model }),
        el('td', { text: a.tools.join(', ') || '—' }),
        el('td', { text: String(a.version) }),
        el('td', { class: 'actions' }, el('a', { href: '#/console/' + seg(a.agent_id), class: 'button', text: 'Run' }), toggle, del));
    });
    out.append(msg, table(['Name', 'Status', 'Model', 'Tools', 'Version', ''], rows, { id: 'agents-table' }));
    return out;
  }

  async function agentForm(agent) {
    let models = [];
    try {
      models = await listAll('/v1/models');
    } catch (err) {
      models = [];
    }
    const name = el('input', { id: 'agent-name', required: true, maxlength: 128, value: agent ? agent.name : '' });
    const prompt = el('textarea', { id: 'agent-prompt', rows: 6, required: true });
    prompt.value = agent ? agent.system_prompt : 'You are a helpful assistant.';
    const tools = el('input', { id: 'agent-tools', value: agent ? agent.tools.join(', ') : '', placeholder: 'search_kb, create_ticket' });
    const model = el('select', { id: 'agent-model' });
    const names = models.map((m) => m.model);
    if (agent && !names.includes(agent.model)) names.unshift(agent.model);
    if (!names.length) names.push('bulkhead-offline-1');
    for (const n of names) model.appendChild(el('option', { value: n, text: n, selected: agent ? n === agent.model : n === 'bulkhead-offline-1' }));
    const msg = el('div', { class: 'messages', id: 'agent-form-messages' });
    const form = el('form', { id: 'agent-form', class: 'stack' },
      el('label', { for: 'agent-name', text: 'Name' }), name,
      el('label', { for: 'agent-prompt', text: 'System prompt' }), prompt,
      el('label', { for: 'agent-tools', text: 'Tools (comma-separated names)' }), tools,
      el('label', { for: 'agent-model', text: 'Model' }), model,
      el('button', { type: 'submit', id: 'agent-save', text: agent ? 'Save' : 'Create agent' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {
        name: name.value,
        system_prompt: prompt.value,
        tools: tools.value.split(',').map((s) => s.trim()).filter(Boolean),
        model: model.value,
      };
      try {
        const saved = agent ? await api('PATCH', '/v1/agents/' + seg(agent.agent_id), body) : await api('POST', '/v1/agents', body);
        location.hash = '#/agents';
        if (agent && saved) route();
      } catch (err) {
        msg.replaceChildren(errorView(err));
      }
    });
    return el('section', { class: 'card' },
      el('h1', { text: agent ? 'Edit agent' : 'New agent' }),
      agent ? el('p', { class: 'muted', text: agent.agent_id + ' · version ' + agent.version + ' · ' + agent.status }) : null,
      msg, form);
  }

  // ---- console ----------------------------------------------------------

  let consoleConversation = null; // the conversation the console continues

  async function pageConsole(args) {
    const agents = await listAll('/v1/agents');
    if (!agents.length) return el('section', { class: 'card' }, el('h1', { text: 'Console' }), empty('No agents yet: create one first.'), el('a', { class: 'button', href: '#/agents/new', text: 'New agent' }));
    const select = el('select', { id: 'console-agent' });
    for (const a of agents) select.appendChild(el('option', { value: a.agent_id, text: a.name + (a.status === 'active' ? '' : ' (' + a.status + ')'), selected: a.agent_id === args[0] }));
    const message = el('textarea', { id: 'console-message', rows: 3, placeholder: 'Say something to the agent…', required: true });
    const keep = el('input', { type: 'checkbox', id: 'console-continue' });
    const transcript = el('div', { id: 'console-transcript', class: 'transcript' });
    const status = el('div', { id: 'console-status', class: 'messages' });
    const run = el('button', { type: 'submit', id: 'console-run', text: 'Run' });
    select.addEventListener('change', () => {
      consoleConversation = null;
      keep.checked = false;
    });
    const form = el('form', { id: 'console-form', class: 'stack' },
      el('label', { for: 'console-agent', text: 'Agent' }), select,
      el('label', { for: 'console-message', text: 'Message' }), message,
      el('label', { class: 'inline' }, keep, ' Continue the last conversation'),
      run);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!message.value.trim()) return;
      run.disabled = true;
      status.replaceChildren();
      try {
        await runStreamed(select.value, message.value, keep.checked ? consoleConversation : null, transcript, status);
        message.value = '';
        keep.checked = consoleConversation !== null;
      } finally {
        run.disabled = false;
      }
    });
    return el('section', { class: 'card' }, el('h1', { text: 'Console' }), form, status, transcript);
  }

  // runStreamed executes an agent with "stream": true and renders the
  // Server-Sent Events as they arrive. EventSource cannot send an
  // Authorization header, so the stream is read with fetch.
  async function runStreamed(agentID, text, conversationID, transcript, status) {
    const turn = el('div', { class: 'turn running' });
    turn.appendChild(el('div', { class: 'msg user' }, el('span', { class: 'role', text: 'you' }), el('span', { class: 'content', text })));
    const tools = el('div', { class: 'tools' });
    const reply = el('span', { class: 'content reply' });
    turn.appendChild(tools);
    turn.appendChild(el('div', { class: 'msg assistant' }, el('span', { class: 'role', text: 'agent' }), reply));
    const summary = el('div', { class: 'summary' });
    turn.appendChild(summary);
    transcript.prepend(turn);
    const body = { message: text, stream: true };
    if (conversationID) body.conversation_id = conversationID;
    let res;
    try {
      res = await fetch('/v1/agents/' + seg(agentID) + '/execute', {
        method: 'POST', cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
        headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
      });
    } catch (err) {
      status.replaceChildren(errorView(err));
      turn.classList.remove('running');
      return;
    }
    const ctype = res.headers.get('Content-Type') || '';
    if (!res.ok || !ctype.startsWith('text/event-stream')) {
      let data = null;
      try {
        data = JSON.parse(await res.text());
      } catch (e) {
        data = null;
      }
      if (res.ok && data) {
        finishTurn(data, reply, summary);
      } else {
        status.replaceChildren(errorView(new APIError(res.status, data, res.headers)));
        turn.classList.add('failed');
      }
      turn.classList.remove('running');
      return;
    }
    const toolRows = new Map();
    const onEvent = (event, data) => {
      let v;
      try {
        v = JSON.parse(data);
      } catch (e) {
        return;
      }
      if (event === 'delta') {
        reply.appendChild(document.createTextNode(v.text));
      } else if (event === 'tool_call') {
        const out = el('pre', { class: 'tool-output', text: '…' });
        const row = el('div', { class: 'tool-call', 'data-tool': v.name },
          el('div', {}, el('span', { class: 'tool-name', text: v.name }), el('code', { class: 'tool-args', text: ' ' + JSON.stringify(v.arguments) })), out);
        toolRows.set(v.id, out);
        tools.appendChild(row);
      } else if (event === 'tool_result') {
        const out = toolRows.get(v.tool_call_id);
        if (out) out.textContent = v.output;
      } else if (event === 'done') {
        finishTurn(v, reply, summary);
        consoleConversation = v.conversation_id;
      } else if (event === 'error') {
        status.replaceChildren(errorView(new APIError(500, v, null)));
        turn.classList.add('failed');
      }
    };
    try {
      await readSSE(res.body, onEvent);
    } catch (err) {
      status.replaceChildren(errorView(err));
      turn.classList.add('failed');
    }
    turn.classList.remove('running');
  }

  function finishTurn(v, reply, summary) {
    if (!reply.textContent && v.message) reply.textContent = v.message;
    summary.replaceChildren(
      el('span', { class: 'exec-status', text: v.status }), ' · ',
      el('span', { class: 'exec-tokens', 'data-value': String(v.tokens_used), text: num(v.tokens_used) + ' tokens' }), ' · ',
      usd(v.cost), ' · ',
      el('a', { href: '#/executions/' + seg(v.execution_id), class: 'exec-link', text: v.execution_id }), ' · ',
      el('a', { href: '#/conversations/' + seg(v.conversation_id), text: 'conversation' }));
    summary.closest('.turn').classList.add('done');
  }

  // readSSE parses a text/event-stream body: events are separated by a blank
  // line; "event:" names one and "data:" lines carry its data.
  async function readSSE(stream, onEvent) {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const dispatch = (block) => {
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) onEvent(event, data.join('\n'));
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let m;
      while ((m = /\r?\n\r?\n/.exec(buf))) {
        dispatch(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    }
    buf += decoder.decode();
    if (buf.trim()) dispatch(buf);
  }

  // ---- conversations and executions -------------------------------------

  async function agentNames() {
    const names = new Map();
    for (const a of await listAll('/v1/agents')) names.set(a.agent_id, a.name);
    return names;
  }

  async function pageConversations(args) {
    if (args[0]) return conversationDetail(args[0]);
    const [convs, names, records] = await Promise.all([listAll('/v1/conversations'), agentNames(), api('GET', '/v1/usage/records?limit=100')]);
    const out = el('div', {});
    const c1 = el('section', { class: 'card' }, el('h1', { text: 'Conversations' }));
    if (!convs.length) c1.appendChild(empty('No conversations yet. Run an agent in the console to start one.'));
    else {
      c1.appendChild(table(['Conversation', 'Agent', 'Turns', 'Tokens', 'Updated'], convs.map((c) => el('tr', {},
        el('td', {}, el('a', { href: '#/conversations/' + seg(c.conversation_id), text: c.conversation_id })),
        el('td', { text: names.get(c.agent_id) || c.agent_id }),
        el('td', { text: num(c.turns) }), el('td', { text: num(c.tokens_used) }), el('td', { text: when(c.updated_at) }))), { id: 'conversations-table' }));
    }
    const c2 = el('section', { class: 'card' }, el('h2', { text: 'Executions this month' }));
    if (!records.data.length) c2.appendChild(empty('No executions this month.'));
    else {
      c2.appendChild(table(['Execution', 'Agent', 'Model', 'Status', 'Tokens', 'Cost', 'Tool calls', 'Started'], records.data.map((r) => el('tr', {},
        el('td', {}, el('a', { href: '#/executions/' + seg(r.execution_id), text: r.execution_id })),
        el('td', { text: names.get(r.agent_id) || r.agent_id }), el('td', { text: r.model }), el('td', { text: r.status }),
        el('td', { text: num(r.tokens) }), el('td', { text: usd(r.cost) }), el('td', { text: num(r.tool_calls) }), el('td', { text: when(r.started_at) }))), { id: 'executions-table' }));
      if (records.has_more) c2.appendChild(el('p', { class: 'muted', text: 'The first 100 of the month are shown.' }));
    }
    out.append(c1, c2);
    return out;
  }

  function messageView(m) {
    const node = el('div', { class: 'msg ' + m.role },
      el('span', { class: 'role', text: m.role + (m.name ? ' ' + m.name : '') }),
      el('span', { class: 'content', text: m.content }));
    for (const tc of m.tool_calls || []) {
      node.appendChild(el('div', { class: 'tool-call' }, el('span', { class: 'tool-name', text: tc.name }), el('code', { class: 'tool-args', text: ' ' + JSON.stringify(tc.arguments) })));
    }
    if (m.execution_id && m.role === 'user') node.appendChild(el('a', { class: 'exec-link', href: '#/executions/' + seg(m.execution_id), text: m.execution_id }));
    return node;
  }

  async function allMessages(id) {
    let c = await api('GET', '/v1/conversations/' + seg(id) + '?limit=100');
    const messages = [...c.messages];
    for (let i = 0; i < 10 && c.has_more && c.next_cursor; i++) {
      c = await api('GET', '/v1/conversations/' + seg(id) + '?limit=100&cursor=' + encodeURIComponent(c.next_cursor));
      messages.push(...c.messages);
    }
    return { head: c, messages };
  }

  async function conversationDetail(id) {
    const [{ head, messages }, names] = await Promise.all([allMessages(id), agentNames()]);
    return el('section', { class: 'card' },
      el('h1', { text: 'Conversation' }),
      dl([['Conversation', head.conversation_id], ['Agent', names.get(head.agent_id) || head.agent_id], ['Turns', num(head.turns)], ['Tokens', num(head.tokens_used)], ['Started', when(head.created_at)]]),
      el('div', { class: 'transcript', id: 'conversation-messages' }, messages.length ? messages.map(messageView) : empty('No messages.')),
      el('a', { href: '#/console/' + seg(head.agent_id), class: 'button', text: 'Run this agent' }));
  }

  async function pageExecution(args) {
    const x = await api('GET', '/v1/executions/' + seg(args[0] || ''));
    let steps = null, calls = [];
    let note = null;
    try {
      const { messages } = await allMessages(x.conversation_id);
      const mine = messages.filter((m) => m.execution_id === x.execution_id);
      steps = mine.filter((m) => m.role === 'assistant').length;
      const results = new Map(mine.filter((m) => m.role === 'tool').map((m) => [m.tool_call_id, m.content]));
      for (const m of mine) for (const tc of m.tool_calls || []) calls.push({ tc, result: results.get(tc.id) });
    } catch (err) {
      note = el('p', { class: 'muted', text: 'The transcript is gone (' + (err.code || 'error') + '): steps and tool calls are not shown.' });
    }
    const card = el('section', { class: 'card', id: 'execution' },
      el('h1', { text: 'Execution' }),
      dl([
        ['Execution', x.execution_id],
        ['Status', x.status, 'execution-status'],
        ['Model', x.model, 'execution-model'],
        ['Steps', steps === null ? '—' : String(steps), 'execution-steps'],
        ['Tool calls', num(x.tool_call_count), 'execution-tool-calls'],
        ['Tokens', num(x.tokens_used) + ' (' + num(x.usage.input_tokens) + ' in, ' + num(x.usage.output_tokens) + ' out)', 'execution-tokens'],
        ['Cost', usd(x.cost), 'execution-cost'],
        ['Duration', duration(x.started_at, x.finished_at), 'execution-duration'],
        ['Started', when(x.started_at)],
        ['Conversation', el('a', { href: '#/conversations/' + seg(x.conversation_id), text: x.conversation_id })],
      ]),
      note);
    if (calls.length) {
      card.appendChild(el('h2', { text: 'Tool calls' }));
      card.appendChild(table(['Tool', 'Arguments', 'Result'], calls.map(({ tc, result }) => el('tr', {},
        el('td', { text: tc.name }), el('td', {}, el('code', { text: JSON.stringify(tc.arguments) })), el('td', {}, el('pre', { class: 'tool-output', text: result ?? '—' })))), { id: 'execution-calls' }));
    }
    if (x.message) card.append(el('h2', { text: 'Reply' }), el('p', { class: 'reply', text: x.message }));
    return card;
  }

  // ---- API keys ---------------------------------------------------------

  async function pageKeys() {
    const keys = await listAll('/v1/keys');
    const msg = el('div', { class: 'messages', id: 'keys-messages' });
    const name = el('input', { id: 'key-name', placeholder: 'name (optional)', maxlength: 128 });
    const form = el('form', { id: 'key-form', class: 'row' }, name, el('button', { type: 'submit', id: 'key-create', text: 'Create key' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const k = await api('POST', '/v1/keys', name.value.trim() ? { name: name.value.trim() } : {});
        // The secret is shown once, here; it is not kept anywhere.
        const secret = el('code', { id: 'new-key-secret', class: 'secret', text: k.api_key });
        const box = el('div', { class: 'notice', id: 'new-key' },
          el('strong', { text: 'New key ' + k.prefix + '… created.' }),
          el('p', { text: 'Copy its secret now: it is shown this once and cannot be shown again.' }), secret);
        const list = await listAll('/v1/keys');
        const view = el('div', {}, box, keysCard(list, form, msg));
        $('view').replaceChildren(view);
        name.value = '';
      } catch (err) {
        msg.replaceChildren(errorView(err));
      }
    });
    return keysCard(keys, form, msg);
  }

  function keysCard(keys, form, msg) {
    const mine = (k) => apiKey.startsWith(k.prefix);
    const rows = keys.map((k) => {
      let action = null;
      if (k.status === 'active') {
        action = el('button', { type: 'button', class: 'danger revoke', text: 'Revoke' });
        action.addEventListener('click', async () => {
          if (action.dataset.armed !== '1') {
            action.dataset.armed = '1';
            action.textContent = mine(k) ? 'Confirm: revoke the key you are signed in with' : 'Confirm revoke';
            return;
          }
          try {
            await api('DELETE', '/v1/keys/' + seg(k.key_id));
            route();
          } catch (err) {
            msg.replaceChildren(errorView(err));
          }
        });
      }
      return el('tr', { 'data-key-id': k.key_id, 'data-status': k.status },
        el('td', { text: k.name || '—' }), el('td', {}, el('code', { text: k.prefix + '…' })),
        el('td', { class: 'key-status', text: k.status + (mine(k) ? ' (this session)' : '') }),
        el('td', { text: when(k.created_at) }), el('td', { text: when(k.revoked_at) }), el('td', {}, action));
    });
    return el('section', { class: 'card' }, el('h1', { text: 'API keys' }), msg, form,
      keys.length ? table(['Name', 'Prefix', 'Status', 'Created', 'Revoked', ''], rows, { id: 'keys-table' }) : empty('No keys.'));
  }

  // ---- invoices ---------------------------------------------------------

  async function pageInvoices(args) {
    if (args[0]) {
      const inv = await api('GET', '/v1/billing/invoices/' + seg(args[0]));
      return el('section', { class: 'card' }, el('h1', { text: 'Invoice ' + inv.month }),
        dl([['Invoice', inv.invoice_id], ['Status', inv.status], ['Tier', inv.tier], ['Tokens used', num(inv.tokens_used)], ['Executions', num(inv.executions)], ['Total', usd(inv.total)], ['Closed', when(inv.closed_at)]]),
        table(['Line', 'Quantity', 'Amount'], (inv.lines || []).map((l) => el('tr', {}, el('td', { text: l.description || l.type }), el('td', { text: l.quantity ? num(l.quantity) : '' }), el('td', { text: usd(l.amount) })))),
        (inv.agents || []).length ? [el('h2', { text: 'By agent' }), table(['Agent', 'Executions', 'Tokens'], inv.agents.map((a) => el('tr', {}, el('td', { text: a.agent_id }), el('td', { text: num(a.executions) }), el('td', { text: num(a.tokens) }))))] : null);
    }
    const invoices = await listAll('/v1/billing/invoices');
    const card = el('section', { class: 'card' }, el('h1', { text: 'Invoices' }));
    if (!invoices.length) card.appendChild(empty('No invoices yet: a month is invoiced once it closes. The running month is on the Usage page.'));
    else card.appendChild(table(['Month', 'Status', 'Tokens', 'Total', 'Closed'], invoices.map((i) => el('tr', {},
      el('td', {}, el('a', { href: '#/invoices/' + seg(i.month), text: i.month })), el('td', { text: i.status }), el('td', { text: num(i.tokens_used) }),
      el('td', { text: usd(i.total) }), el('td', { text: when(i.closed_at) }))), { id: 'invoices-table' }));
    return card;
  }

  // ---- start ------------------------------------------------------------

  function start() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', () => {
      signedOut(null);
      location.hash = '';
    });
    window.addEventListener('hashchange', route);
    if (apiKey) showApp();
    else signedOut(null);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
