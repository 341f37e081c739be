/*
 * The live status page served at `/` of a node's HTTP endpoint: one self-contained document
 * (inline CSS and script, nothing fetched from elsewhere, so it passes the page's
 * Content-Security-Policy) that asks `api/status` every second and updates what it shows in
 * place. Every string from the node goes in through textContent, never as markup.
 *
 * The page is in one of three states, kept in `data-state` on <body>:
 *   loading  no answer yet;
 *   ok       the last request answered: the figures are current;
 *   offline  the last request failed or timed out: a banner says "node not answering" and the
 *            figures, dimmed, are those of the last answer; polling goes on, and the next
 *            answer brings the page back to ok.
 *
 * Stable attributes for tests and scripts: `data-field="<name>"` on each value (role, nodeId,
 * epoch, root, folderId, seq, ready, readyReason, fenced, fencedBy, offline, progress, errors),
 * one `data-peer="<id>"` row per peer whose cells carry `data-field` (id, url, connected, seq,
 * lagOps, lagBytes, lagSeconds, rate, bytes) and the raw number in `data-value`; while a sync
 * is under way, `progressFiles` carries the files done and their total in `data-value` and
 * `data-total`, `progressBar` the percentage in `aria-valuenow`.
 */

/** The page, served as is. */
export const STATUS_PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>mimic</title>
<style>
:root { --fg: #1d2430; --muted: #5d6878; --bg: #f5f7fa; --card: #fff; --line: #d9dee6;
  --ok: #17803d; --warn: #a15c00; --bad: #c0262d; --accent: #2457c5; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e8ee; --muted: #98a2b3; --bg: #12161c; --card: #1b2129; --line: #2d3540;
    --ok: #4cc47a; --warn: #e5a03a; --bad: #ff6b6b; --accent: #7aa2ff; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header, main { max-width: 1100px; margin: 0 auto; padding: 0 16px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; padding-top: 14px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; color: var(--muted); font-weight: 600; }
.muted { color: var(--muted); }
.mono, td, dd { overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.role { display: inline-block; padding: 1px 10px; border-radius: 999px; font-size: 14px;
  background: var(--line); vertical-align: 2px; }
body[data-role="primary"] .role { background: var(--accent); color: #fff; }
body[data-role="mirror"] .role { background: var(--ok); color: #fff; }
body[data-role="fenced"] .role { background: var(--bad); color: #fff; text-transform: uppercase; }
.banner { margin: 12px auto 0; max-width: 1068px; padding: 10px 14px; border-radius: 8px;
  font-weight: 600; overflow-wrap: anywhere; }
.banner.fenced { background: var(--bad); color: #fff; font-size: 17px; }
.banner.offline { background: var(--warn); color: #fff; }
body[data-state="offline"] main { opacity: 0.55; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; margin: 12px 0; }
dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px 18px; margin: 0; }
@media (min-width: 721px) { dl .wide { grid-column: span 2; } }
dt { font-size: 12px; color: var(--muted); }
dd { margin: 0; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.bar { height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; margin: 6px 0; }
.bar > div { height: 100%; width: 0; background: var(--accent); transition: width 0.4s; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.behind td[data-field="lagSeconds"], tr.behind td[data-field="lagOps"] { color: var(--warn); font-weight: 600; }
table.no-url [data-field="url"], table.no-url th.url { display: none; }
ol.errors { list-style: none; margin: 0; padding: 0; }
ol.errors li { padding: 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
ol.errors li:last-child { border-bottom: 0; }
ol.errors time { color: var(--muted); margin-right: 8px; font-variant-numeric: tabular-nums; }
ol.errors b { margin-right: 8px; color: var(--bad); }
@media (max-width: 720px) {
  header, main { padding: 0 10px; }
  header { padding-top: 10px; }
  .banner { margin: 10px 10px 0; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: 8px; padding: 4px 10px; margin: 8px 0; }
  td { display: flex; justify-content: space-between; gap: 12px; padding: 4px 0; text-align: right; }
  td.num { text-align: right; }
  td:last-child { border-bottom: 0; }
  td::before { content: attr(data-label); color: var(--muted); font-size: 12px; font-weight: 400;
    text-align: left; flex: none; }
}
</style>
</head>
<body data-state="loading" data-role="">
<header>
  <h1>mimic <span class="role" data-field="role">…</span></h1>
  <span class="mono" data-field="nodeId"></span>
  <span class="muted" data-field="updated">connecting…</span>
</header>
<div class="banner offline" data-field="offline" role="alert" hidden></div>
<div class="banner fenced" data-field="fenced" role="alert" hidden>FENCED: <span data-field="fencedBy"></span></div>
<main>
<section>
  <dl>
    <div><dt>epoch</dt><dd data-field="epoch">–</dd></div>
    <div><dt>seq</dt><dd data-field="seq">–</dd></div>
    <div><dt>ready</dt><dd><span data-field="ready">–</span> <span class="muted" data-field="readyReason"></span></dd></div>
    <div class="wide"><dt>root</dt><dd class="mono" data-field="root">–</dd></div>
    <div class="wide"><dt>folder</dt><dd class="mono" data-field="folderId">–</dd></div>
  </dl>
</section>
<section data-field="progress" hidden>
  <h2><span data-field="phase"></span></h2>
  <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" data-field="progressBar"><div></div></div>
  <div><b data-field="progressPct"></b> · <span data-field="progressFiles"></span> · <span data-field="progressBytes"></span> ·
    <span data-field="progressRate"></span> · ETA <span data-field="progressEta"></span></div>
</section>
<section>
  <h2 data-field="peersTitle">peers</h2>
  <div class="scroll"><table>
    <thead><tr><th>id</th><th class="url">url</th><th>connected</th><th class="num">seq</th><th class="num">lag ops</th>
      <th class="num">lag bytes</th><th class="num">lag</th><th class="num">rate</th><th class="num" data-field="bytesTitle">bytes</th></tr></thead>
    <tbody data-field="peers"></tbody>
  </table></div>
  <p class="muted" data-field="noPeers" hidden>none</p>
</section>
<section>
  <h2>last errors</h2>
  <ol class="errors" data-field="errors"></ol>
  <p class="muted" data-field="noErrors" hidden>none</p>
</section>
</main>
<script>
'use strict';
(() => {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;
  const field = (name, root) => (root || document).querySelector('[data-field="' + name + '"]');
  const set = (name, text, root) => {
    const el = field(name, root);
    const t = String(text);
    if (el && el.textContent !== t) el.textContent = t;
    return el;
  };
  const num = (n) => (typeof n === 'number' && Number.isFinite(n) ? n : 0);
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  const bytes = (n) => {
    let v = num(n);
    let i = 0;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + UNITS[i];
  };
  const rate = (n) => bytes(n) + '/s';
  const duration = (s) => {
    if (s === null || s === undefined || !Number.isFinite(s)) return '–';
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  };
  const clock = (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  };
  const show = (el, on) => { if (el.hidden === on) el.hidden = !on; };
  const mark = (el, cls) => {
    el.classList.toggle('ok', cls === 'ok');
    el.classList.toggle('bad', cls === 'bad');
  };

  const COLUMNS = [
    ['id', 'id', 'mono'], ['url', 'url', 'mono'], ['connected', 'connected', ''], ['seq', 'seq', 'num'],
    ['lagOps', 'lag ops', 'num'], ['lagBytes', 'lag bytes', 'num'], ['lagSeconds', 'lag', 'num'],
    ['rate', 'rate', 'num'], ['bytes', 'bytes', 'num'],
  ];
  const rows = new Map();
  const newRow = () => {
    const tr = document.createElement('tr');
    for (const [name, label, cls] of COLUMNS) {
      const td = document.createElement('td');
      td.dataset.field = name;
      td.dataset.label = label;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  };
  const cell = (tr, name, text, value) => {
    const td = set(name, text, tr);
    if (value !== undefined && td.dataset.value !== String(value)) td.dataset.value = String(value);
    return td;
  };
  const renderPeers = (s) => {
    const body = field('peers');
    const mirrorRole = s.role === 'mirror';
    set('peersTitle', mirrorRole ? 'primary followed' : 'mirrors');
    set('bytesTitle', mirrorRole ? 'received' : 'sent');
    const peers = Array.isArray(s.peers) ? s.peers : [];
    const seen = new Set();
    peers.forEach((p, i) => {
      const key = p.id || p.url || '#' + i;
      seen.add(key);
      let tr = rows.get(key);
      if (!tr) rows.set(key, (tr = newRow()));
      if (tr.dataset.peer !== String(p.id)) tr.dataset.peer = String(p.id);
      cell(tr, 'id', p.id || '(not known yet)');
      cell(tr, 'url', p.url || '–');
      mark(cell(tr, 'connected', p.connected ? 'yes' : 'no', p.connected), p.connected ? 'ok' : 'bad');
      cell(tr, 'seq', num(p.seq), num(p.seq));
      cell(tr, 'lagOps', num(p.lagOps), num(p.lagOps));
      cell(tr, 'lagBytes', bytes(p.lagBytes), num(p.lagBytes));
      cell(tr, 'lagSeconds', duration(num(p.lagSeconds)), num(p.lagSeconds));
      cell(tr, 'rate', rate(p.rateBytesPerSec), num(p.rateBytesPerSec));
      cell(tr, 'bytes', bytes(p.bytes), num(p.bytes)).dataset.label = mirrorRole ? 'received' : 'sent';
      tr.classList.toggle('behind', num(p.lagOps) > 0);
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    for (const [key, tr] of rows) if (!seen.has(key)) { tr.remove(); rows.delete(key); }
    body.parentElement.classList.toggle('no-url', !peers.some((p) => p.url));
    show(field('noPeers'), peers.length === 0);
  };

  const renderProgress = (p) => {
    const box = field('progress');
    show(box, !!p);
    if (!p) return;
    const names = { initial: 'initial sync', reconcile: 'reconcile', 'catch-up': 'catching up' };
    set('phase', names[p.phase] || String(p.phase), box);
    const total = num(p.bytesTotal);
    const files = num(p.filesTotal);
    const share = total > 0 ? num(p.bytes) / total : files > 0 ? num(p.files) / files : 0;
    const pct = Math.max(0, Math.min(100, Math.round(share * 1000) / 10));
    const bar = field('progressBar', box);
    bar.setAttribute('aria-valuenow', String(pct));
    bar.firstElementChild.style.width = pct + '%';
    set('progressPct', pct + '%', box);
    const count = set('progressFiles', num(p.files) + ' of ' + files + ' files', box);
    count.dataset.value = String(num(p.files));
    count.dataset.total = String(files);
    set('progressBytes', total > 0 ? bytes(p.bytes) + ' of ' + bytes(total) : bytes(p.bytes), box);
    set('progressRate', rate(p.rateBytesPerSec), box);
    set('progressEta', duration(p.etaSeconds), box);
  };

  let errorsKey = '';
  const renderErrors = (errors) => {
    const list = Array.isArray(errors) ? errors : [];
    const key = JSON.stringify(list);
    if (key === errorsKey) return;
    errorsKey = key;
    const items = list.map((e) => {
      const li = document.createElement('li');
      const t = document.createElement('time');
      t.dateTime = String(e.time);
      t.title = String(e.time);
      t.textContent = clock(e.time);
      const ev = document.createElement('b');
      ev.textContent = String(e.event);
      const msg = document.createElement('span');
      msg.textContent = String(e.message);
      li.append(t, ev, msg);
      return li;
    });
    field('errors').replaceChildren(...items);
    show(field('noErrors'), list.length === 0);
  };

  const render = (s) => {
    const role = String(s.role);
    if (document.body.dataset.role !== role) document.body.dataset.role = role;
    set('role', role);
    set('nodeId', s.nodeId);
    const fenced = role === 'fenced';
    show(field('fenced'), fenced);
    const by = s.fencedBy;
    set('fencedBy', fenced
      ? (by ? 'a newer primary leads, ' + by.epoch.node + ' at epoch ' + by.epoch.term +
          (by.url ? ' (' + by.url + ')' : '') : 'a newer primary leads') + '. This node sends nothing to mirrors.'
      : '');
    set('epoch', s.epoch ? 'term ' + s.epoch.term + ' (' + s.epoch.node + ')' : '–');
    set('seq', num(s.seq));
    mark(set('ready', s.ready ? 'ready' : 'not ready'), s.ready ? 'ok' : 'bad');
    set('readyReason', s.readyReason || '');
    set('root', s.root);
    set('folderId', s.folderId || '–');
    set('updated', 'updated ' + clock(s.time));
    renderPeers(s);
    renderProgress(s.progress);
    renderErrors(s.errors);
    document.title = 'mimic ' + role + (s.nodeId ? ' ' + s.nodeId : '');
  };

  let downSince = null;
  const answered = () => {
    downSince = null;
    document.body.dataset.state = 'ok';
    show(field('offline'), false);
  };
  const failed = (why) => {
    if (downSince === null) downSince = new Date();
    document.body.dataset.state = 'offline';
    set('offline', 'node not answering since ' + downSince.toLocaleTimeString() + ' (' + why +
      '); the figures below are from the last answer. Retrying every second.');
    show(field('offline'), true);
    document.title = 'mimic: not answering';
  };

  const poll = async () => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const res = await fetch('api/status', { cache: 'no-store', signal: abort.signal,
        headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
      answered();
    } catch (err) {
      failed(err && err.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
        : String((err && err.message) || err));
    } finally {
      clearTimeout(timer);
      setTimeout(poll, POLL_MS);
    }
  };
  poll();
})();
</script>
</body>
</html>
`;
