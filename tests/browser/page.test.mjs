// The bff's live page (bff/web) in a real headless Chromium, against a running
// stack: loads without console errors or failed requests, shows the API's
// exact price and chain proof, shows new rounds within 2 s without a reload,
// runs a refresh from its button, switches to another served chain from the
// header's list, shows a stopped aggregator, and fits a phone. Run by devstack/tests/browser.rs (which starts the stack and, when
// this script prints `PHASE stop-aggregator`, stops the aggregator and
// answers `aggregator-stopped` on stdin).
//
// Environment: BFF_URL (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT_DIR (default the temp dir), ORACLE_BROWSER_DRIVER=1 when a
// driver answers the stop phase (without it that phase is skipped, saying so).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const BFF = (process.env.BFF_URL || '').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || os.tmpdir();
const DRIVEN = process.env.ORACLE_BROWSER_DRIVER === '1';
const PAIR = 'BTC/USD';
const PATH = 'BTC-USD';
/** Rounds whose page latency is measured. */
const MEASURED_ROUNDS = 3;
/** The bound on round-to-page latency. */
const MAX_LATENCY_MS = 2000;

if (!BFF) {
  console.error('BFF_URL is not set (the base URL of a running bff, e.g. http://127.0.0.1:18080)');
  process.exit(2);
}
if (!fs.existsSync(CHROMIUM)) {
  console.error(`chromium not found at ${CHROMIUM}: run scripts/bootstrap.sh (installs Debian's chromium) or set CHROMIUM`);
  process.exit(2);
}

// ---- helpers ------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = { checks: [], latencies_ms: [] };
const t0 = Date.now();
const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

function ok(what) {
  results.checks.push(what);
  console.log(`ok   [${since()}] ${what}`);
}

function note(what) {
  console.log(`     [${since()}] ${what}`);
}

/** Polls `fn` every `everyMs` until it returns a truthy value; fails after `timeoutMs`. */
async function until(what, timeoutMs, fn, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = null;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(everyMs);
  }
}

async function getJson(p, init) {
  const r = await fetch(`${BFF}${p}`, { ...init, signal: AbortSignal.timeout(20000) });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body };
}

async function apiPrice() {
  const r = await getJson(`/v1/prices/${PATH}`);
  if (r.status !== 200) throw new Error(`GET /v1/prices/${PATH}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Lines from the driver on stdin. */
const stdinLines = [];
let stdinWaiter = null;
if (DRIVEN) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    stdinLines.push(line.trim());
    if (stdinWaiter) stdinWaiter();
  });
}

async function ask(phase, answer, timeoutMs) {
  console.log(`PHASE ${phase}`);
  const deadline = Date.now() + timeoutMs;
  while (!stdinLines.includes(answer)) {
    if (Date.now() > deadline) throw new Error(`the driver did not answer ${answer} within ${timeoutMs} ms`);
    await new Promise((r) => {
      stdinWaiter = r;
      setTimeout(r, 200);
    });
  }
}

// ---- the browser ------------------------------------------------------------

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oracle-page-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
  colorScheme: 'light',
});
const page = context.pages()[0] || (await context.newPage());

// Everything that went wrong in the page. A 4xx/5xx answer also logs a
// console error ("Failed to load resource"); those are judged by their
// response instead: only a 404 `no_data` of a report (no signed report yet)
// is expected.
const problems = [];
const badResponses = [];
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (/^Failed to load resource: the server responded with a status of \d+/.test(m.text())) return;
  problems.push(`console error: ${m.text()} (${m.location().url || 'no location'})`);
});
page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
/** True while the script itself navigates: the old page's requests are aborted then. */
let navigating = false;
page.on('requestfailed', (r) => {
  if (navigating && r.failure()?.errorText === 'net::ERR_ABORTED') return;
  problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
});
page.on('response', async (r) => {
  if (r.status() < 400) return;
  let code = null;
  try {
    code = (await r.json()).code;
  } catch {
    code = null;
  }
  const u = new URL(r.url());
  const expected = r.status() === 404 && code === 'no_data' && /^\/v1\/reports\/[A-Z0-9]+-[A-Z0-9]+\/latest$/.test(u.pathname);
  if (expected) note(`expected: ${r.status()} ${code} from ${u.pathname}`);
  else badResponses.push(`${r.request().method()} ${u.pathname}${u.search}: ${r.status()} ${code ?? ''}`);
});

const row = page.locator(`tbody[data-pair="${PAIR}"]`);
const card = page.locator(`[data-detail="${PAIR}"]`);
const pageText = (loc) => loc.textContent({ timeout: 2000 }).then((t) => (t ?? '').trim());
const pageRound = async () => Number(await pageText(row.locator('[data-field=round]'))) || 0;

async function screenshot(name) {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: true });
  note(`screenshot ${file}`);
  return file;
}

async function run() {
  // ---- load ----
  const started = Date.now();
  const nav = await page.goto(`${BFF}/`, { waitUntil: 'load' });
  assert(nav && nav.status() === 200, `GET / answered ${nav && nav.status()}`);
  const csp = nav.headers()['content-security-policy'] || '';
  assert(csp.includes("script-src 'self'"), `the page has no strict CSP: ${csp}`);
  assert((await page.evaluate(() => document.compatMode)) === 'CSS1Compat', 'the page renders in quirks mode');
  await page.evaluate(() => {
    window.__loadedOnce = true; // gone if the page reloads
  });
  await until('the feed rows and a BTC/USD price on the page', 15000, async () => (await pageRound()) > 0);
  const feeds = (await getJson('/v1/feeds')).body.feeds.map((f) => f.pair);
  const rows = await page.locator('tbody[data-pair]').evaluateAll((els) => els.map((e) => e.dataset.pair));
  assert(JSON.stringify(rows) === JSON.stringify(feeds), `rows ${rows} are not the feeds ${feeds}`);
  ok(`page loaded with a row per feed (${rows.join(', ')}) in ${Date.now() - started} ms`);

  // ---- the exact price, at the same round ----
  const same = await until('the page and GET /v1/prices/BTC-USD at the same round', 15000, async () => {
    const api = await apiPrice();
    const shown = await pageText(row.locator('[data-field=price]'));
    const round = await pageRound();
    return round === api.round ? { api, shown, round } : null;
  });
  assert(same.shown === same.api.price, `the page shows ${same.shown}, the API ${same.api.price} (round ${same.round})`);
  ok(`BTC/USD price on the page equals the API's: ${same.shown} (round ${same.round})`);

  // ---- the chain proof of that value ----
  const proof = await until('the chain proof on the page', 10000, async () => {
    const api = await apiPrice();
    if ((await pageRound()) !== api.round) return null;
    const hist = await getJson(`/v1/prices/${PATH}/history?limit=5`);
    const entry = (hist.body.rounds || []).find((e) => e.round === api.round);
    const tx = await pageText(card.locator('[data-field=tx-hash]'));
    if (!entry || tx !== entry.tx_hash) return null;
    return {
      chain: await pageText(card.locator('[data-field=chain-id]')),
      contract: await pageText(card.locator('[data-field=contract]')),
      block: await pageText(card.locator('[data-field=block-hash]')),
      api,
      entry,
      tx,
    };
  });
  assert(proof.chain === String(proof.api.chain.chain_id), `chain id ${proof.chain} != ${proof.api.chain.chain_id}`);
  assert(proof.contract === proof.api.chain.contract, `contract ${proof.contract} != ${proof.api.chain.contract}`);
  assert(/^0x[0-9a-f]{64}$/.test(proof.block), `block hash ${proof.block}`);
  ok(`chain proof shown: chain ${proof.chain}, hub ${proof.contract}, round ${proof.entry.round} in tx ${proof.tx}`);

  // ---- sparkline ----
  const points = Number(await row.locator('[data-field=sparkline]').getAttribute('data-points'));
  assert(points >= 1, `the sparkline has ${points} points`);
  ok(`sparkline drawn with ${points} round${points === 1 ? '' : 's'}`);

  // ---- the latest report: sources and rejections ----
  const report = await until('the latest report of BTC/USD on the page', 15000, async () => {
    const r = await getJson(`/v1/reports/${PATH}/latest`);
    assert(r.status === 200, `GET /v1/reports/${PATH}/latest: ${r.status} ${JSON.stringify(r.body)}`);
    const shownRound = await card.getAttribute('data-report-round');
    if (shownRound !== String(r.body.round)) return null;
    const used = await card.locator('tr.used').count();
    const rejected = await card.locator('tr.rejected').count();
    if (used !== r.body.sources.length || rejected !== r.body.rejected.length) return null;
    return { report: r.body, used, rejected };
  }, 250);
  ok(`report of round ${report.report.round} shown: ${report.used} sources, ${report.rejected} rejected`);

  // ---- status ----
  await until('aggregator, chain and bus shown as up', 10000, async () => {
    const states = await page.evaluate(() =>
      ['aggregator', 'chain', 'bus'].map((k) => document.getElementById(`status-${k}`).dataset.state),
    );
    return states.every((s) => s === 'up');
  });
  ok('status: aggregator, chain and bus shown up');

  // ---- submissions ----
  const newest = await until('a submission listed by the API', 10000, async () => {
    const r = await getJson('/v1/submissions?limit=1');
    return r.status === 200 && r.body.submissions[0];
  });
  await until(`submission ${newest.id} listed on the page`, 10000, async () =>
    (await page.locator(`[data-submission="${newest.id}"]`).count()) > 0,
  );
  ok(`latest submissions listed (${newest.id}, ${newest.status})`);

  await screenshot('page-desktop.png');

  // ---- new rounds reach the page within 2 s, without a reload ----
  // Each round's time on the page: when its round cell changed (page clock = this machine's).
  await page.evaluate(() => {
    window.__roundSeenAt = {};
    const cell = document.querySelector('tbody[data-pair="BTC/USD"] [data-field=round]');
    const record = () => {
      const r = cell.textContent.trim();
      if (!(r in window.__roundSeenAt)) window.__roundSeenAt[r] = Date.now();
    };
    record();
    new MutationObserver(record).observe(cell, { childList: true, characterData: true, subtree: true });
  });
  for (let i = 0; i < MEASURED_ROUNDS; i++) {
    const before = (await apiPrice()).round;
    // Poll the API until a later round is readable: it became readable after
    // the previous poll was sent (`readableAfter`), so the latency measured
    // from there is an upper bound. Without a natural round in 8 s, ask for one.
    let prevSent = Date.now();
    const askAt = Date.now() + 8000;
    const deadline = Date.now() + 40000;
    let asked = false;
    let seen = null;
    while (!seen) {
      const sent = Date.now();
      const p = await apiPrice();
      if (p.round > before) {
        seen = { round: p.round, readableAfter: prevSent };
        break;
      }
      prevSent = sent;
      if (!asked && Date.now() > askAt) {
        asked = true;
        note('no new round in 8 s: asking for one (POST /v1/prices/BTC-USD/refresh)');
        fetch(`${BFF}/v1/prices/${PATH}/refresh`, { method: 'POST' }).catch(() => {});
      }
      if (Date.now() > deadline) throw new Error(`no new BTC/USD round after ${before} within 40 s`);
      await sleep(20);
    }
    const shownAt = await until(`round ${seen.round} on the page`, MAX_LATENCY_MS + 3000, () =>
      page.evaluate((r) => window.__roundSeenAt[String(r)], seen.round),
    20);
    const latency = shownAt - seen.readableAfter;
    results.latencies_ms.push(latency);
    assert(latency <= MAX_LATENCY_MS, `round ${seen.round} reached the page ${latency} ms after the API served it (limit ${MAX_LATENCY_MS} ms)`);
    ok(`round ${seen.round} on the page ${latency} ms after GET /v1/prices/BTC-USD served it (≤ ${MAX_LATENCY_MS} ms)`);
    // The sparkline grew to it and the price is the API's.
    await until(`the sparkline ending at round ${seen.round} or later`, 5000, async () =>
      Number(await row.locator('[data-field=sparkline]').getAttribute('data-last-round')) >= seen.round,
    );
  }
  assert(await page.evaluate(() => window.__loadedOnce === true), 'the page reloaded');
  ok(`no reload: ${MEASURED_ROUNDS} rounds arrived over the stream, sparkline extended`);

  // ---- the refresh button ----
  const beforeClick = await pageRound();
  const clicked = Date.now();
  await row.locator('[data-action=refresh]').click();
  const outcome = row.locator('[data-field=refresh-outcome]');
  await until('the refresh outcome', 20000, async () => {
    const state = await outcome.getAttribute('data-state');
    if (state === 'error') throw new Error(`refresh failed on the page: ${await pageText(outcome)}`);
    return state === 'success' || state === 'pending';
  }, 100);
  const state = await outcome.getAttribute('data-state');
  const text = await pageText(outcome);
  if (state === 'success') {
    const refreshed = Number(await outcome.getAttribute('data-round'));
    assert(refreshed > beforeClick, `the refresh reported round ${refreshed}, not after ${beforeClick}`);
    await until(`round ${refreshed} in the row`, 5000, async () => (await pageRound()) >= refreshed);
    ok(`refresh button: "${text}" in ${Date.now() - clicked} ms; the row shows round ${await pageRound()} (was ${beforeClick})`);
  } else {
    note(`refresh answered pending: "${text}"`);
    await until('a round after the pending refresh', 20000, async () => (await pageRound()) > beforeClick, 100);
    ok(`refresh button: "${text}", then round ${await pageRound()} (was ${beforeClick})`);
  }

  // ---- a phone ----
  await page.setViewportSize({ width: 375, height: 812 });
  const overflow = await until('the phone layout settled', 5000, () =>
    page.evaluate(() => {
      const doc = document.documentElement;
      if (window.innerWidth !== 375) return null;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return r.width > 1 && r.right > window.innerWidth + 0.5;
        })
        .map((e) => `${e.tagName.toLowerCase()}${e.className ? `.${String(e.className.baseVal ?? e.className).split(' ').join('.')}` : ''}`);
      return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wide };
    }),
  );
  assert(
    overflow.scrollWidth <= overflow.clientWidth && overflow.wide.length === 0,
    `horizontal scroll at 375 px: scrollWidth ${overflow.scrollWidth} > ${overflow.clientWidth}; too wide: ${overflow.wide.slice(0, 10).join(', ')}`,
  );
  const button = await row.locator('[data-action=refresh]').boundingBox();
  assert(button && button.x + button.width <= 375, 'the refresh button is off screen at 375 px');
  ok(`phone (375×812): no horizontal scroll (scrollWidth ${overflow.scrollWidth}), refresh button on screen`);
  await screenshot('page-phone.png');
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---- another chain, chosen in the header ----
  const chains = (await getJson('/v1/chains')).body.chains;
  if (chains.length < 2) {
    note('skipped: choosing another chain (this bff serves one)');
  } else {
    const other = chains.find((c) => !c.default);
    const options = await page.locator('#chain-select option').evaluateAll((els) => els.map((e) => e.value));
    assert(
      JSON.stringify(options) === JSON.stringify(chains.map((c) => c.name)),
      `the chain list shows ${options}, the API serves ${chains.map((c) => c.name)}`,
    );
    const shownChain = await pageText(card.locator('[data-field=chain-id]'));
    navigating = true;
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('chain') === other.name, { timeout: 10000 }),
      page.locator('#chain-select').selectOption(other.name),
    ]);
    await until(`the ${other.name} chain's BTC/USD on the page`, 15000, async () => {
      const api = (await getJson(`/v1/prices/${PATH}?chain=${other.name}`)).body;
      const shown = await pageText(row.locator('[data-field=price]'));
      return api && (await pageRound()) === api.round && shown === api.price;
    });
    navigating = false;
    const summary = await pageText(page.locator('#chain-summary'));
    assert(
      summary.includes(other.name) && summary.includes(String(other.chain_id)),
      `the header says "${summary}" on chain ${other.name} (${other.chain_id})`,
    );
    await until('the chain proof of the other chain', 10000, async () =>
      (await pageText(card.locator('[data-field=chain-id]'))) === String(other.chain_id));
    ok(`chain ${other.name} chosen in the header: its price, round and chain id (${other.chain_id}, was ${shownChain}) shown`);
    await screenshot('page-other-chain.png');
    navigating = true;
    await page.goto(`${BFF}/`, { waitUntil: 'load' });
    await until('the default chain again', 15000, async () => (await pageRound()) > 0);
    navigating = false;
  }

  // ---- a stopped aggregator ----
  if (!DRIVEN) {
    note('skipped: stopping the aggregator (needs the driver, devstack/tests/browser.rs)');
  } else {
    const heartbeat = (await getJson('/v1/feeds')).body.feeds.find((f) => f.pair === PAIR).heartbeat_s;
    await ask('stop-aggregator', 'aggregator-stopped', 60000);
    const stoppedAt = Date.now();
    await until('the aggregator shown as down', 30000, async () =>
      (await page.locator('#status-aggregator').getAttribute('data-state')) === 'down',
    100);
    const shown = (await page.locator('#status-aggregator').innerText()).replace(/\s+/g, ' ').trim();
    ok(`stopped aggregator shown as down ${Date.now() - stoppedAt} ms after it was stopped: "${shown}"`);
    const last = await apiPrice();
    await until(`BTC/USD marked stale (heartbeat ${heartbeat} s)`, (heartbeat + 10) * 1000, async () =>
      (await row.getAttribute('data-stale')) === 'true',
    250);
    assert(await row.locator('[data-field=stale-badge]').isVisible(), 'the stale badge is not visible');
    ok(`BTC/USD marked stale once older than its heartbeat (${heartbeat} s; round ${last.round} updated at ${last.updated_at})`);
    await screenshot('page-aggregator-down.png');
  }

  // ---- nothing went wrong in the page ----
  assert(problems.length === 0, `the page had problems:\n  ${problems.join('\n  ')}`);
  assert(badResponses.length === 0, `unexpected error responses:\n  ${badResponses.join('\n  ')}`);
  ok('no console errors, no uncaught exceptions, no failed requests, no unexpected error responses');
}

let failed = null;
try {
  await run();
} catch (e) {
  failed = e;
  console.log(`FAIL [${since()}] ${e.message}`);
  if (problems.length) console.log(`page problems so far:\n  ${problems.join('\n  ')}`);
  if (badResponses.length) console.log(`error responses so far:\n  ${badResponses.join('\n  ')}`);
  try {
    await screenshot('page-failure.png');
  } catch {
    // the page may be gone
  }
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
const lat = results.latencies_ms;
console.log(
  `RESULT ${JSON.stringify({
    passed: !failed,
    checks: results.checks.length,
    latencies_ms: lat,
    max_latency_ms: lat.length ? Math.max(...lat) : null,
  })}`,
);
console.log(`${results.checks.length} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
