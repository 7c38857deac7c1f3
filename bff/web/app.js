// The live page's script (/assets/app.js, an ES module; no framework, nothing
// from elsewhere): loads the feeds, prices, recent rounds, latest reports and
// submissions from the bff's public API, follows new rounds over the SSE
// stream, polls the system status, and runs on-demand refreshes. It shows one
// chain: the page's own `?chain=NAME` (default: the API's first chain), chosen
// in the header's list of `/v1/chains`.

const HISTORY_POINTS = 30; // rounds drawn in a sparkline
const STATUS_EVERY_MS = 2000;
const SUBMISSIONS_EVERY_MS = 5000;
const SUBMISSIONS_SHOWN = 8;
const FALLBACK_POLL_MS = 2000; // /v1/prices polling while the stream is closed
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Per pair: its configuration, its latest value and its elements. */
const feeds = new Map();
/** Set once the first values, rounds and reports were asked for. */
let started = false;
/** The chain shown: the page's `?chain=`, or empty for the API's default. */
const CHAIN = new URLSearchParams(window.location.search).get('chain') || '';
/** Its name as the API gave it (known once the feeds are loaded). */
let chainName = CHAIN;

/** `path` asking for the chain shown (routes that read one chain). */
function withChain(path) {
  if (!CHAIN || path.startsWith('/v1/status') || path.startsWith('/v1/chains')) return path;
  return `${path}${path.includes('?') ? '&' : '?'}chain=${encodeURIComponent(CHAIN)}`;
}

// ---- API ------------------------------------------------------------------

function apiKey() {
  try {
    return localStorage.getItem('oracleApiKey') || '';
  } catch {
    return '';
  }
}

/** A JSON call: `{status, ok, body}`; throws only when no answer came. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  const key = apiKey();
  if (key) headers.set('X-API-Key', key);
  const response = await fetch(withChain(path), { ...init, headers, cache: 'no-store' });
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  return { status: response.status, ok: response.ok, body };
}

// ---- formatting -----------------------------------------------------------

const field = (root, name) => root.querySelector(`[data-field="${name}"]`);

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** Seconds as `7 s`, `2 m 05 s`, `3 h 04 m`. */
function formatAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad2(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} m`;
}

/** Unix ms as local `HH:MM:SS`. */
function clock(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** `0x1234abcd…89ef` for long hex strings. */
function short(hex) {
  if (typeof hex !== 'string') return '—';
  return hex.length > 18 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function badge(text, kind) {
  return el('span', `badge badge-${kind}`, text);
}

// ---- feeds ----------------------------------------------------------------

function addFeed(config) {
  const body = document.getElementById('feed-row').content.firstElementChild.cloneNode(true);
  body.dataset.pair = config.pair;
  setText(field(body, 'pair'), config.pair);
  const card = document.getElementById('feed-card').content.firstElementChild.cloneNode(true);
  card.dataset.detail = config.pair;
  setText(field(card, 'pair'), config.pair);
  const feed = {
    pair: config.pair,
    path: config.path,
    heartbeat: config.heartbeat_s,
    sources: config.sources,
    price: null, // the latest PriceResponse
    points: [], // [{round, value}], oldest first
    tx: null, // {round, tx_hash, block_number} of the latest round
    reportSeq: 0,
    txSeq: 0,
    body,
    card,
  };
  body.querySelector('[data-action="refresh"]').addEventListener('click', () => refresh(feed));
  document.getElementById('feeds').append(body);
  document.getElementById('details').append(card);
  feeds.set(config.pair, feed);
  return feed;
}

/** Shows `p` (a PriceResponse) when it is not older than what is shown. */
function applyPrice(p) {
  const feed = feeds.get(p && p.pair);
  if (!feed || typeof p.round !== 'number') return;
  const previous = feed.price;
  if (previous && p.round < previous.round) return;
  const newRound = !previous || p.round > previous.round;
  feed.price = p;
  const row = feed.body;
  setText(field(row, 'price'), p.price);
  setText(field(row, 'round'), String(p.round));
  row.dataset.round = String(p.round);
  const count = field(row, 'sources-count');
  setText(count, p.num_sources == null ? '—' : String(p.num_sources));
  count.title = p.confidence == null ? '' : `confidence ±${p.confidence}`;
  const card = feed.card;
  setText(field(card, 'chain-id'), String(p.chain.chain_id));
  setText(field(card, 'contract'), p.chain.contract);
  setText(field(card, 'block-number'), String(p.chain.block_number));
  setText(field(card, 'block-hash'), p.chain.block_hash);
  tick(feed, Date.now());
  if (!newRound) return;
  if (!previous) {
    // The first value of a feed that had none when the page loaded.
    if (started) {
      loadHistory(feed);
      loadReport(feed);
    }
    return;
  }
  // A new round: the sparkline grows, the proof and the report follow.
  const last = feed.points[feed.points.length - 1];
  if (last && p.round === last.round + 1) {
    feed.points.push({ round: p.round, value: Number(p.price) });
    feed.points.splice(0, Math.max(0, feed.points.length - HISTORY_POINTS));
    drawSparkline(feed);
    loadTx(feed);
  } else {
    loadHistory(feed);
  }
  loadReport(feed);
  flash(field(row, 'price'));
  soon(loadSubmissions);
}

function flash(node) {
  node.classList.remove('flash');
  void node.offsetWidth; // restart the animation
  node.classList.add('flash');
}

/** Age and staleness of one feed at `nowMs`. */
function tick(feed, nowMs) {
  const p = feed.price;
  if (!p) return;
  const age = nowMs / 1000 - p.updated_at;
  setText(field(feed.body, 'age'), formatAge(age));
  const stale = Boolean(p.stale) || (feed.heartbeat > 0 && age > feed.heartbeat);
  const value = stale ? 'true' : 'false';
  if (feed.body.dataset.stale !== value) feed.body.dataset.stale = value;
}

function tickAll() {
  const now = Date.now();
  for (const feed of feeds.values()) tick(feed, now);
}

function drawSparkline(feed) {
  const svg = field(feed.body, 'sparkline');
  const points = feed.points;
  svg.replaceChildren();
  svg.dataset.points = String(points.length);
  if (points.length === 0) {
    svg.setAttribute('aria-label', 'no rounds yet');
    return;
  }
  const [w, h, pad] = [120, 28, 3];
  let min = Math.min(...points.map((p) => p.value));
  let max = Math.max(...points.map((p) => p.value));
  if (!(max > min)) {
    const d = Math.abs(max) * 1e-6 || 1;
    min -= d;
    max += d;
  }
  const x = (i) => (points.length === 1 ? w / 2 : pad + (i * (w - 2 * pad)) / (points.length - 1));
  const y = (v) => pad + ((max - v) * (h - 2 * pad)) / (max - min);
  const coords = points.map((p, i) => `${x(i).toFixed(2)},${y(p.value).toFixed(2)}`);
  const area = document.createElementNS(SVG_NS, 'polygon');
  area.setAttribute('class', 'spark-area');
  area.setAttribute('points', `${x(0).toFixed(2)},${h} ${coords.join(' ')} ${x(points.length - 1).toFixed(2)},${h}`);
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('class', 'spark-line');
  line.setAttribute('points', coords.join(' '));
  // A zero-length round-capped line: a dot that stays round when stretched.
  const [lx, ly] = coords[coords.length - 1].split(',');
  const dot = document.createElementNS(SVG_NS, 'line');
  dot.setAttribute('class', 'spark-dot');
  for (const [k, v] of [['x1', lx], ['y1', ly], ['x2', lx], ['y2', ly]]) dot.setAttribute(k, v);
  svg.append(area, line, dot);
  const first = points[0];
  const latest = points[points.length - 1];
  svg.dataset.lastRound = String(latest.round);
  svg.setAttribute('aria-label', `rounds ${first.round} to ${latest.round}`);
  const title = document.createElementNS(SVG_NS, 'title');
  title.textContent = `Rounds ${first.round}–${latest.round}`;
  svg.prepend(title);
}

/** The recent rounds of a feed: the sparkline and the latest round's transaction. */
async function loadHistory(feed) {
  const seq = ++feed.txSeq;
  let r;
  try {
    r = await api(`/v1/prices/${feed.path}/history?limit=${HISTORY_POINTS}`);
  } catch {
    return;
  }
  if (seq !== feed.txSeq || !r.ok || !r.body || !Array.isArray(r.body.rounds)) return;
  const rounds = r.body.rounds; // newest first
  feed.points = rounds
    .slice()
    .reverse()
    .map((e) => ({ round: e.round, value: Number(e.price) }));
  drawSparkline(feed);
  showTx(feed, rounds[0]);
}

/** The newest round's transaction, after a new round (the sparkline already has it). */
async function loadTx(feed) {
  const seq = ++feed.txSeq;
  let r;
  try {
    r = await api(`/v1/prices/${feed.path}/history?limit=1`);
  } catch {
    return;
  }
  if (seq !== feed.txSeq || !r.ok || !r.body || !Array.isArray(r.body.rounds)) return;
  showTx(feed, r.body.rounds[0]);
}

function showTx(feed, entry) {
  if (!entry) return;
  if (feed.tx && feed.tx.round > entry.round) return;
  feed.tx = { round: entry.round, tx_hash: entry.tx_hash, block_number: entry.block_number };
  const card = feed.card;
  setText(field(card, 'included'), `round ${entry.round} · block ${entry.block_number}`);
  setText(field(card, 'tx-hash'), entry.tx_hash);
}

// ---- reports ----------------------------------------------------------------

async function loadReport(feed) {
  const seq = ++feed.reportSeq;
  let r = null;
  try {
    r = await api(`/v1/reports/${feed.path}/latest`);
  } catch {
    r = null;
  }
  if (seq !== feed.reportSeq) return;
  if (r && r.ok && r.body) {
    renderReport(feed, r.body);
  } else {
    const none = r && r.status === 404 && r.body && r.body.code === 'no_data';
    renderNoReport(feed, none ? 'no signed report yet' : '—');
  }
}

function renderNoReport(feed, text) {
  const card = feed.card;
  setText(field(card, 'report-meta'), text);
  setText(field(card, 'report-median'), '—');
  const rows = field(card, 'sources');
  const row = el('tr', 'placeholder');
  const cell = el('td', 'muted', '—');
  cell.colSpan = 3;
  row.append(cell);
  rows.replaceChildren(row);
  card.dataset.reportRound = '';
}

function renderReport(feed, report) {
  const card = feed.card;
  card.dataset.reportRound = String(report.round);
  const meta = field(card, 'report-meta');
  meta.replaceChildren();
  const parts = [`round ${report.round}`];
  if (report.reason) parts.push(String(report.reason).replace(/_/g, ' '));
  if (report.leader) parts.push(`leader ${report.leader}`);
  if (Array.isArray(report.signers)) parts.push(`${report.signers.length} signer${report.signers.length === 1 ? '' : 's'}`);
  meta.append(parts.join(' · '));
  if (report.status) {
    meta.append(' ');
    meta.append(badge(report.status, report.status));
  }
  if (Array.isArray(report.signers) && report.signers.length > 0) meta.title = `signed by ${report.signers.join(', ')}`;
  const median = field(card, 'report-median');
  median.replaceChildren();
  median.append('median ');
  median.append(el('span', 'mono', report.price ?? '—'));
  if (report.confidence != null) {
    median.append(' ± ');
    median.append(el('span', 'mono', String(report.confidence)));
  }
  if (report.computed_at_ms) median.append(el('span', 'muted', ` · computed ${clock(report.computed_at_ms)}`));
  const rows = [];
  const at = report.computed_at_ms;
  for (const s of report.sources || []) {
    const row = el('tr', 'used');
    row.dataset.source = s.source;
    row.append(el('td', '', s.source), el('td', 'num mono', s.price));
    const note = at && s.observed_at_ms ? `${((at - s.observed_at_ms) / 1000).toFixed(1)} s old` : '';
    row.append(el('td', 'muted', note));
    rows.push(row);
  }
  for (const s of report.rejected || []) {
    const row = el('tr', 'rejected');
    row.dataset.source = s.source;
    row.append(el('td', '', s.source), el('td', 'num mono', s.price ?? '—'));
    const note = el('td', 'reason');
    note.append(badge('rejected', 'failed'), ` ${s.reason ?? ''}`);
    row.append(note);
    rows.push(row);
  }
  if (rows.length === 0) {
    const row = el('tr', 'placeholder');
    const cell = el('td', 'muted', '—');
    cell.colSpan = 3;
    row.append(cell);
    rows.push(row);
  }
  field(card, 'sources').replaceChildren(...rows);
}

// ---- refresh ------------------------------------------------------------------

async function refresh(feed) {
  const button = feed.body.querySelector('[data-action="refresh"]');
  const out = field(feed.body, 'refresh-outcome');
  out.closest('tr').hidden = false;
  button.disabled = true;
  button.textContent = 'Refreshing…';
  out.dataset.state = 'running';
  delete out.dataset.round;
  out.replaceChildren('Asking the aggregators for a new round…');
  const started = performance.now();
  const took = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  try {
    const r = await api(`/v1/prices/${feed.path}/refresh`, { method: 'POST' });
    const b = r.body || {};
    if (r.status === 200 && typeof b.round === 'number') {
      out.dataset.state = 'success';
      out.dataset.round = String(b.round);
      out.replaceChildren(
        badge('included', 'success'),
        ` round ${b.round} · block ${b.chain ? b.chain.block_number : '—'} · tx `,
        el('span', 'mono', short(b.tx_hash)),
        el('span', 'muted', ` · ${took()}`),
      );
      if (b.tx_hash && b.chain) showTx(feed, { round: b.round, tx_hash: b.tx_hash, block_number: b.chain.block_number });
      applyPrice(b);
    } else if (r.status === 202) {
      out.dataset.state = 'pending';
      out.replaceChildren(
        badge('pending', 'pending'),
        ' submission ',
        el('span', 'mono', b.submission_id || 'not seen yet'),
        el('span', 'muted', ` · ${took()}`),
      );
      soon(loadSubmissions);
    } else {
      out.dataset.state = 'error';
      out.replaceChildren(
        badge(`error ${r.status}`, 'failed'),
        ' ',
        el('span', 'mono', b.code || 'error'),
        `: ${b.message || 'no message'}`,
      );
    }
  } catch (err) {
    out.dataset.state = 'error';
    out.replaceChildren(badge('error', 'failed'), ` the request failed: ${err.message}`);
  } finally {
    button.disabled = false;
    button.textContent = 'Refresh';
  }
}

// ---- status -------------------------------------------------------------------

function setPill(id, state, text, detail) {
  const pill = document.getElementById(id);
  if (pill.dataset.state !== state) pill.dataset.state = state;
  setText(field(pill, 'state'), text);
  const d = field(pill, 'detail');
  if (d) setText(d, detail);
}

function stateOf(part) {
  return part && (part.state === 'up' || part.state === 'down') ? part.state : 'unknown';
}

async function pollStatus() {
  let s = null;
  try {
    const r = await api('/v1/status');
    if (r.ok && r.body) s = r.body;
  } catch {
    s = null;
  }
  if (!s) {
    for (const id of ['status-aggregator', 'status-chain', 'status-bus']) setPill(id, 'unknown', '—', '');
    return;
  }
  const agg = s.aggregator || {};
  const aggState = stateOf(agg);
  let aggDetail = '';
  if (aggState === 'up') {
    aggDetail = agg.leader ? `leader ${agg.leader}` : '';
    if (typeof agg.lease_age_ms === 'number') aggDetail += ` · lease ${(agg.lease_age_ms / 1000).toFixed(1)} s`;
  } else if (aggState === 'down') {
    aggDetail = agg.leader ? `last leader ${agg.leader}` : 'no leader';
  }
  setPill('status-aggregator', aggState, aggState === 'unknown' ? '—' : aggState === 'down' ? 'stopped' : 'up', aggDetail);
  const chain = (Array.isArray(s.chains) && s.chains.find((c) => c.name === chainName)) || s.chain || {};
  const chainState = stateOf(chain);
  setPill('status-chain', chainState, chainState === 'unknown' ? '—' : chainState, typeof chain.head === 'number' ? `head ${chain.head}` : '');
  const busState = stateOf(s.bus);
  setPill('status-bus', busState, busState === 'unknown' ? '—' : busState, '');
}

// ---- submissions ------------------------------------------------------------

let submissionsTimer = null;

/** Runs `fn` once shortly, however often asked in the meantime. */
const pendingSoon = new Set();
function soon(fn) {
  if (pendingSoon.has(fn)) return;
  pendingSoon.add(fn);
  setTimeout(() => {
    pendingSoon.delete(fn);
    fn();
  }, 300);
}

async function loadSubmissions() {
  clearTimeout(submissionsTimer);
  submissionsTimer = setTimeout(loadSubmissions, SUBMISSIONS_EVERY_MS);
  let r;
  try {
    r = await api(`/v1/submissions?limit=${SUBMISSIONS_SHOWN}`);
  } catch {
    return;
  }
  const message = document.getElementById('submissions-message');
  if (!r.ok || !r.body || !Array.isArray(r.body.submissions)) {
    setText(message, '—');
    message.hidden = false;
    return;
  }
  const list = r.body.submissions;
  message.hidden = list.length > 0;
  setText(message, list.length ? '' : 'No submissions yet.');
  const rows = list.map((s) => {
    const row = el('tr');
    row.dataset.submission = s.id;
    row.dataset.status = s.status;
    const time = el('td', 'mono', clock(s.at_ms));
    time.title = s.id;
    const status = el('td');
    status.append(badge(s.status, s.status));
    if (s.error) status.title = s.error;
    const rounds = el('td');
    rounds.textContent = (s.reports || []).map((x) => `${x.pair} #${x.round}`).join(', ') || '—';
    if (Array.isArray(s.skipped) && s.skipped.length) {
      rounds.append(el('span', 'muted', ` (skipped: ${s.skipped.map((k) => `${k.pair} ${k.reason}`).join(', ')})`));
    }
    const node = el('td', 'opt', s.aggregator || '—');
    const block = el('td', 'num mono', s.block == null ? '—' : String(s.block));
    const tx = el('td', 'opt mono', s.tx_hash ? short(s.tx_hash) : '—');
    if (s.tx_hash) tx.title = s.tx_hash;
    row.append(time, status, rounds, node, block, tx);
    return row;
  });
  field(document.getElementById('submissions'), 'rows').replaceChildren(...rows);
}

// ---- stream -------------------------------------------------------------------

let fallbackTimer = null;

function setStream(state, text) {
  setPill('status-stream', state, text ?? state, '');
}

async function loadPrices() {
  let r;
  try {
    r = await api('/v1/prices');
  } catch {
    return;
  }
  if (!r.ok || !r.body) return;
  for (const p of r.body.prices || []) applyPrice(p);
  for (const pair of r.body.no_data || []) {
    const feed = feeds.get(pair);
    if (feed && !feed.price) setText(field(feed.body, 'price'), 'no data yet');
  }
}

function startFallback() {
  if (fallbackTimer) return;
  fallbackTimer = setInterval(loadPrices, FALLBACK_POLL_MS);
}

function stopFallback() {
  clearInterval(fallbackTimer);
  fallbackTimer = null;
}

function openStream() {
  const stream = new EventSource(withChain('/v1/stream'));
  setStream('connecting', 'connecting');
  stream.addEventListener('open', () => {
    setStream('up', 'live');
    stopFallback();
  });
  stream.addEventListener('price', (e) => {
    try {
      applyPrice(JSON.parse(e.data));
    } catch {
      // a malformed event: the next one carries the current value
    }
  });
  stream.addEventListener('lag', () => {
    // The server sends the current values right after.
  });
  stream.addEventListener('error', (e) => {
    if (e.data) {
      // The server's own `error` event (shutting down): it closes next.
      setStream('connecting', 'reconnecting');
      return;
    }
    if (stream.readyState === EventSource.CLOSED) {
      // Refused (an API key is needed, or too many streams): poll instead.
      setStream('down', 'polling');
      startFallback();
      setTimeout(openStream, 10000);
    } else {
      setStream('connecting', 'reconnecting');
    }
  });
}

// ---- chains ---------------------------------------------------------------------

/** Fills the chain list from `/v1/chains`; choosing one reloads the page on it. */
async function loadChains() {
  const select = document.getElementById('chain-select');
  let r;
  try {
    r = await api('/v1/chains');
  } catch {
    return;
  }
  if (!r.ok || !r.body || !Array.isArray(r.body.chains) || r.body.chains.length < 2) return;
  const options = r.body.chains.map((c) => {
    const option = el('option', '', `${c.name} (${c.chain_id})`);
    option.value = c.name;
    option.selected = c.name === chainName;
    return option;
  });
  select.replaceChildren(...options);
  select.closest('label').hidden = false;
  select.addEventListener('change', () => {
    const url = new URL(window.location.href);
    const first = r.body.chains.find((c) => c.default);
    if (first && select.value === first.name) url.searchParams.delete('chain');
    else url.searchParams.set('chain', select.value);
    window.location.assign(url.toString());
  });
}

// ---- start ----------------------------------------------------------------------

async function start() {
  const message = document.getElementById('feeds-message');
  let r;
  try {
    r = await api('/v1/feeds');
  } catch (err) {
    r = { ok: false, body: { message: err.message } };
  }
  if (!r.ok || !r.body || !Array.isArray(r.body.feeds)) {
    setText(message, `Could not load the feeds (${(r.body && (r.body.code || r.body.message)) || 'no answer'}); retrying…`);
    setTimeout(start, 3000);
    return;
  }
  chainName = r.body.chain || CHAIN;
  setText(
    document.getElementById('chain-summary'),
    `${chainName ? `${chainName} · ` : ''}chain ${r.body.chain_id} · hub ${r.body.contract}`,
  );
  loadChains();
  for (const f of r.body.feeds) addFeed(f);
  message.hidden = r.body.feeds.length > 0;
  setText(message, r.body.feeds.length ? '' : 'No feeds are configured.');
  await loadPrices();
  for (const feed of feeds.values()) {
    loadHistory(feed);
    loadReport(feed);
  }
  started = true;
  openStream();
  loadSubmissions();
  pollStatus();
  setInterval(pollStatus, STATUS_EVERY_MS);
  setInterval(tickAll, 1000);
}

start();
