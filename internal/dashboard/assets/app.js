// Passerelle dashboard. It reads the public API like any client: the
// statistics arrive by Server-Sent Events read with fetch(), which, unlike
// EventSource, sends the Authorization header; the token stays in this
// tab's sessionStorage. Data are written with textContent only.
'use strict';
(() => {
  const TOKEN_KEY = 'passerelle.token';
  const $ = (id) => document.getElementById(id);
  const num = new Intl.NumberFormat('fr-FR');
  const pct = new Intl.NumberFormat('fr-FR', { style: 'percent', maximumFractionDigits: 1 });
  const ROLES = {
    pupil: 'élève', guardian: 'responsable légal', school: 'établissement', employer: 'employeur', operator: 'opérateur',
    backoffice: 'back-office', auditor: 'audit', statistician: 'statistiques',
  };
  const METRICS = {
    offers_open: 'offres ouvertes', seats_total: 'places offertes', seats_available: 'places libres', seats_held: 'places retenues',
    applications: 'candidatures', applications_confirmed: 'candidatures confirmées', conventions: 'conventions',
    conventions_signed: 'conventions signées',
  };
  const FOLLOW = { applied: 'a postulé, attend une réponse', none: 'aucune candidature en cours', placed: 'placé', signed: 'convention signée' };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    claims: null, // the token's role and subject, for what to show
    names: { departments: {}, sectors: {} },
    stats: null,
    uai: '', // the school followed
    stream: null, // AbortController of the stats stream
    lines: null, // the followed school's pupils: {uai, at, byId}
    slowTimer: 0,
    session: 0, // bumped at each sign-out: what the ended session asked is dropped
    slowAt: 0,
    desk: null, // the desk's scope, selected pupil and idempotency keys
  };

  class AuthError extends Error {}

  function headers() {
    return state.token ? { Authorization: 'Bearer ' + state.token } : {};
  }

  // abandoned never settles: whatever awaits an answer to a session that
  // has ended stops there, so it neither signs the next user out nor fills
  // their page.
  const abandoned = () => new Promise(() => {});

  async function get(path) {
    const session = state.session;
    const r = await fetch(path, { headers: headers(), cache: 'no-store' });
    const body = await r.json().catch(() => null);
    if (session !== state.session) return abandoned();
    if (r.status === 401) throw new AuthError('unauthenticated');
    if (!r.ok) {
      const e = new Error((body && body.error && body.error.message) || r.statusText);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  // The token's claims, read without verifying (the server does): they
  // only choose which sections to show.
  function claimsOf(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) tr.append(c);
    return tr;
  }

  function numCell(n) {
    const td = el('td', num.format(n || 0), 'num');
    td.dataset.value = String(n || 0);
    return td;
  }

  // fill replaces a table's body, showing its "empty" note when no rows.
  function fill(table, rows) {
    const body = table.tBodies[0];
    body.replaceChildren(...rows);
    const empty = table.parentElement.querySelector('.empty');
    if (empty) empty.hidden = rows.length > 0;
    table.hidden = rows.length === 0;
  }

  function setFigure(id, n) {
    const e = $(id);
    e.textContent = num.format(n || 0);
    e.dataset.value = String(n || 0);
  }

  function setLive(on, text) {
    const e = $('live');
    e.classList.toggle('on', on);
    e.textContent = text;
  }

  // --- the statistics: totals, map, sectors, targets ---

  function depName(code) {
    return state.names.departments[code] ? code + ' ' + state.names.departments[code] : code;
  }

  function renderStats(s) {
    state.stats = s;
    setFigure('offers-open', s.offers_open);
    setFigure('seats-available', s.seats_available);
    setFigure('seats-total', s.seats_total);
    setFigure('seats-held', s.seats_held);
    $('updated').textContent = new Date().toLocaleTimeString('fr-FR');
    $('position').textContent = s.position || '–';

    const deps = Object.keys(s.by_department || {}).sort();
    fill($('by-department'), deps.map((code) => {
      const f = s.by_department[code];
      const tr = row([el('th', depName(code)), numCell(f.offers_open), numCell(f.seats_available), numCell(f.seats_total)]);
      tr.firstChild.scope = 'row';
      tr.dataset.code = code;
      return tr;
    }));
    renderMap();

    const sectors = Object.keys(s.by_sector || {}).sort((a, b) =>
      (s.by_sector[b].seats_available - s.by_sector[a].seats_available) || a.localeCompare(b, 'fr', { numeric: true }));
    const most = Math.max(1, ...sectors.map((c) => s.by_sector[c].seats_available));
    fill($('by-sector'), sectors.map((code) => {
      const f = s.by_sector[code];
      const name = el('th', state.names.sectors[code] || code);
      name.scope = 'row';
      name.append(el('small', code));
      const free = numCell(f.seats_available);
      const bar = el('span', '', 'bar');
      bar.style.width = (100 * f.seats_available / most) + '%';
      free.append(bar);
      const tr = row([name, numCell(f.offers_open), free]);
      tr.dataset.code = code;
      return tr;
    }));
    renderTargets(s.targets || []);
  }

  function renderMap() {
    const s = state.stats;
    const paths = document.querySelectorAll('#map .dep');
    if (!s || paths.length === 0) return;
    const metric = $('metric').value;
    const value = (code) => (s.by_department[code] ? s.by_department[code][metric] : 0) || 0;
    const top = Math.max(0, ...Object.keys(s.by_department).map(value));
    // five classes of equal width up to the largest value; 0 is apart
    const step = Math.max(1, Math.ceil(top / 5));
    for (const p of paths) {
      const code = p.dataset.dep;
      const v = value(code);
      p.setAttribute('class', 'dep' + (v > 0 ? ' q' + Math.min(5, 1 + Math.floor((v - 1) / step)) : ''));
      p.dataset.value = String(v);
      const title = p.querySelector('title');
      if (title) title.textContent = depName(code) + ' : ' + num.format(v) + ' ' + METRICS[metric];
    }
    const legend = [el('li')];
    legend[0].append(el('span', '', 'q0'), '0');
    for (let q = 1; q <= 5 && (q - 1) * step < top; q++) {
      const li = el('li');
      const lo = (q - 1) * step + 1;
      const hi = Math.min(q * step, top);
      li.append(el('span', '', 'q' + q), lo === hi ? num.format(lo) : num.format(lo) + ' à ' + num.format(hi));
      legend.push(li);
    }
    $('legend').replaceChildren(...legend);
  }

  function targetLabel(t) {
    const metric = METRICS[t.metric] || t.metric;
    switch (t.scope) {
      case 'all': return metric + ', France entière';
      case 'department': return metric + ', ' + depName(t.code);
      case 'sector': return metric + ', secteur ' + (state.names.sectors[t.code] || t.code);
      case 'region': return metric + ', région ' + t.code;
      default: return metric + ', ' + t.scope + ' ' + t.code;
    }
  }

  function renderTargets(targets) {
    const items = targets.map((t, i) => {
      const li = el('li');
      li.dataset.target = t.scope + ':' + t.code + ':' + t.metric;
      const id = 'target-' + i;
      const label = el('label', targetLabel(t));
      label.htmlFor = id;
      const bar = el('progress');
      bar.id = id;
      bar.max = t.target;
      bar.value = Math.min(t.current, t.target);
      const figure = el('span', num.format(t.current) + ' sur ' + num.format(t.target) + ' (' + pct.format(t.progress) + ')', 'figure');
      figure.dataset.current = String(t.current);
      figure.dataset.target = String(t.target);
      li.append(label, bar, figure);
      if (t.reached) figure.append(' ', el('span', 'atteint', 'reached'));
      return li;
    });
    $('targets').replaceChildren(...items);
    $('targets-empty').hidden = items.length > 0;
  }

  // --- the stream ---

  // onFrame handles one Server-Sent Event.
  function onFrame(frame) {
    let event = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event !== 'stats' || data.length === 0) return;
    renderStats(JSON.parse(data.join('\n')));
    scheduleSlow();
  }

  async function follow() {
    if (state.stream) state.stream.abort();
    const ctl = new AbortController();
    state.stream = ctl;
    let delay = 1000;
    while (!ctl.signal.aborted) {
      try {
        const r = await fetch('/v1/stats/stream', { headers: { ...headers(), Accept: 'text/event-stream' }, cache: 'no-store', signal: ctl.signal });
        if (r.status === 401) {
          signOut('Le jeton a été refusé ou a expiré.');
          return;
        }
        if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
        setLive(true, 'En direct');
        delay = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onFrame(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      setLive(false, 'Reconnexion…');
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(2 * delay, 15000);
    }
  }

  // --- placements and a school's follow-up, read again after a change ---

  // scheduleSlow reads the placement figures again after a change, at
  // most every 3 s: they cost the server more than the statistics.
  function scheduleSlow() {
    if (state.slowTimer) return;
    const wait = Math.max(0, state.slowAt + 3000 - Date.now());
    state.slowTimer = setTimeout(() => {
      state.slowTimer = 0;
      state.slowAt = Date.now();
      refreshSlow();
    }, wait);
  }

  async function refreshSlow() {
    await Promise.all([refreshPlacements(), refreshSchool(), refreshDesk('')]);
  }

  async function refreshPlacements() {
    let p;
    try {
      p = await get('/v1/stats/placements');
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      $('placements-denied').hidden = e.status !== 403;
      $('placements').querySelector('.scroll').hidden = e.status === 403;
      if (e.status !== 403) $('board-error').textContent = 'Taux de placement indisponibles : ' + e.message;
      return;
    }
    $('placements-denied').hidden = true;
    $('placements').querySelector('.scroll').hidden = false;
    $('placements-summary').textContent = num.format(p.placed) + ' élèves placés sur ' + num.format(p.registered) +
      ' inscrits (' + pct.format(p.placement_rate) + '), ' + num.format(p.signed) + ' conventions signées.';
    const schools = (p.by_school || []).slice().sort((a, b) => (a.placement_rate - b.placement_rate) || a.name.localeCompare(b.name, 'fr'));
    fill($('by-school'), schools.map((s) => {
      const name = el('th', s.name);
      name.scope = 'row';
      name.append(el('small', s.uai + (s.education_priority && s.education_priority !== 'none' ? ' · ' + s.education_priority.replace('_', '+').toUpperCase() : '')));
      const rate = el('td', pct.format(s.placement_rate), 'num');
      rate.dataset.value = String(s.placement_rate);
      const m = el('meter');
      m.min = 0; m.max = 1; m.low = 0.5; m.high = 0.8; m.optimum = 1; m.value = s.placement_rate;
      m.setAttribute('aria-hidden', 'true');
      rate.append(' ', m);
      const tr = row([name, el('td', s.department), numCell(s.registered), numCell(s.placed), numCell(s.signed), rate]);
      tr.dataset.uai = s.uai;
      return tr;
    }));
  }

  async function refreshSchool() {
    const uai = state.uai;
    if (!uai) return;
    let d;
    try {
      d = await get('/v1/schools/' + encodeURIComponent(uai) + '/dashboard');
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      $('school-view').hidden = true;
      $('uai-error').textContent = e.status === 403 || e.status === 404 ? 'Établissement ' + uai + ' introuvable ou hors de vos droits.' : e.message;
      return;
    }
    $('uai-error').textContent = '';
    $('school-view').hidden = false;
    $('school-name').textContent = d.name + ' (' + d.uai + ', ' + depName(d.department) + ') : ' + pct.format(d.placement_rate) + ' des élèves placés.';
    setFigure('school-registered', d.registered);
    setFigure('school-placed', d.placed);
    setFigure('school-without', d.without_placement);
    setFigure('school-signed', d.signed);
    const lines = await pupilLines(uai, d.pupils_without_placement || []);
    fill($('without'), (d.pupils_without_placement || []).map((id) => {
      const l = lines[id] || {};
      const who = el('th', id);
      who.scope = 'row';
      const tr = row([who, el('td', [l.class_name, l.grade].filter(Boolean).join(' · ')), el('td', FOLLOW[l.status] || '')]);
      tr.dataset.pupil = id;
      return tr;
    }));
  }

  // pupilLines are the school's pupils' classes and statuses, by id (the
  // read models hold no names), over at most 20 pages. They are read again
  // for a new pupil, another school, or after 30 s.
  async function pupilLines(uai, ids) {
    const c = state.lines;
    if (c && c.uai === uai && Date.now() - c.at < 30000 && ids.every((id) => c.byId[id])) return c.byId;
    const byId = {};
    try {
      for (let page = 1; page <= 20; page++) {
        const r = await get('/v1/schools/' + encodeURIComponent(uai) + '/pupils?per_page=100&page=' + page);
        for (const l of r.items) byId[l.pupil_id] = l;
        if (page * r.per_page >= r.total) break;
      }
    } catch {
      return {}; // the list still shows the ids
    }
    state.lines = { uai, at: Date.now(), byId };
    return byId;
  }

  // --- the desk: whom to call first, and what to propose them ---

  const PRIORITY = { rep_plus: 'REP+', rep: 'REP', qpv: 'QPV', none: 'hors éducation prioritaire' };
  const PARTS = { offer: 'offre choisie', distance: 'distance', sector: 'secteur', reserved_for_you: 'réservée', seats_left: 'places' };
  const dec = new Intl.NumberFormat('fr-FR', { maximumFractionDigits: 1 });
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  // deskScope is what the token may see of the desk: 'all' (the back
  // office, or no authentication), 'school' (its own pupils) or ''.
  function deskScope() {
    const role = state.claims && state.claims.role;
    if (!state.token || role === 'backoffice') return 'all';
    return role === 'school' ? 'school' : '';
  }

  function chooseDesk() {
    const scope = deskScope();
    state.desk = { school: scope === 'school' ? state.claims.sub : '', department: '', pupil: '', keys: {}, seq: 0, shown: 0 };
    $('desk').hidden = scope === '';
    $('desk-form').hidden = scope !== 'all';
    $('round').hidden = scope !== 'all';
    $('desk-pupil').hidden = true;
    $('round-view').hidden = true;
    $('desk-error').textContent = '';
  }

  function deskPath(position) {
    const q = new URLSearchParams({ per_page: '100' });
    if (state.desk.school) q.set('school', state.desk.school);
    if (state.desk.department) q.set('department', state.desk.department);
    if (position) q.set('min_position', position);
    return '/v1/desk/pupils?' + q;
  }

  // refreshDesk reads the list again (at least up to position, when
  // given) and the selected pupil's suggestions; an answer to an older
  // read than the one shown is dropped.
  async function refreshDesk(position) {
    const desk = state.desk;
    if (!desk || $('desk').hidden) return;
    const seq = ++desk.seq;
    let d;
    try {
      d = await get(deskPath(position));
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      if (state.desk === desk) $('desk-error').textContent = 'La liste du guichet est indisponible : ' + e.message;
      return;
    }
    if (state.desk !== desk || seq < desk.shown) return; // signed out, or a later read is shown
    desk.shown = seq;
    $('desk-error').textContent = '';
    renderDesk(d);
    if (state.desk.pupil) await refreshSuggestions(position, false);
  }

  function renderDesk(d) {
    const where = state.desk.school ? ' à l’établissement ' + state.desk.school
      : state.desk.department ? ' en ' + depName(state.desk.department) : '';
    $('desk-summary').replaceChildren(el('strong', num.format(d.total)), ' élève' + (d.total > 1 ? 's' : '') + ' sans stage' + where +
      (d.total > d.items.length ? ', les ' + num.format(d.items.length) + ' premiers ci-dessous' : '') + '.');
    for (const dd of document.querySelectorAll('#desk-buckets dd')) setFigure(dd.id, (d.by_eligible_offers || {})[dd.dataset.bucket]);
    const lines = state.lines ? state.lines.byId : {};
    fill($('desk-pupils'), d.items.map((p) => {
      const pick = el('button', null, 'pupil');
      pick.type = 'button';
      pick.append(el('span', 'Voir les offres de l’élève ', 'sr-only'), p.pupil_id.slice(0, 8));
      pick.title = p.pupil_id;
      pick.addEventListener('click', () => selectPupil(p.pupil_id));
      const who = el('th');
      who.scope = 'row';
      who.append(pick);
      const school = el('td', p.school_uai);
      if (p.education_priority && p.education_priority !== 'none') school.append(el('small', PRIORITY[p.education_priority]));
      const l = lines[p.pupil_id] || {};
      const tr = row([who, school, el('td', [p.grade, l.class_name].filter(Boolean).join(' · ')), el('td', p.wishes ? 'oui' : 'non'),
        numCell(p.eligible_offers)]);
      tr.dataset.pupil = p.pupil_id;
      return tr;
    }));
    markSelected();
  }

  function markSelected() {
    for (const tr of document.querySelectorAll('#desk-pupils tbody tr')) {
      const on = tr.dataset.pupil === state.desk.pupil;
      tr.setAttribute('aria-current', on ? 'true' : 'false');
      tr.querySelector('button').setAttribute('aria-pressed', on ? 'true' : 'false');
    }
  }

  async function selectPupil(id) {
    state.desk.pupil = id;
    markSelected();
    $('propose-status').textContent = '';
    $('propose-error').textContent = '';
    $('desk-pupil').hidden = false;
    await refreshSuggestions('', true);
  }

  // refreshSuggestions shows the selected pupil's suggestions, the best
  // first, each with its score's parts; focus moves to them when asked.
  async function refreshSuggestions(position, focus) {
    const desk = state.desk;
    const id = desk.pupil;
    let d;
    try {
      d = await get('/v1/pupils/' + encodeURIComponent(id) + '/suggestions?per_page=10' + (position ? '&min_position=' + encodeURIComponent(position) : ''));
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      $('propose-error').textContent = 'Les suggestions sont indisponibles : ' + e.message;
      return;
    }
    if (state.desk !== desk || id !== desk.pupil) return;
    $('suggestions-h').textContent = 'Offres suggérées à l’élève ' + id + ' : ' + num.format(d.total);
    $('suggestions').replaceChildren(...d.items.map((s, i) => suggestionItem(s, i)));
    $('suggestions-empty').hidden = d.items.length > 0;
    if (focus) $('suggestions-h').focus();
  }

  function suggestionItem(s, i) {
    const li = el('li');
    li.dataset.offer = s.id;
    li.dataset.score = String(s.score);
    const title = el('h4', s.title);
    title.id = 'suggestion-' + i;
    const meta = el('p', [s.employer_name, state.names.sectors[s.sector] || s.sector, depName(s.department),
      dec.format(s.distance_km) + ' km'].join(' · '), 'meta');
    const seats = el('p', 'Semaine' + (s.weeks_for_pupil.length > 1 ? 's ' : ' ') + s.weeks_for_pupil.join(' et ') + ' · ' +
      num.format(s.seats_available) + ' place' + (s.seats_available > 1 ? 's' : '') + ' libre' + (s.seats_available > 1 ? 's' : '') +
      ' sur ' + num.format(s.seats_total));
    if (s.reserved_for_you) seats.append(' ', el('span', 'réservée à son établissement', 'tag'));
    const score = el('p', 'Score ', 'score');
    score.append(el('strong', dec.format(s.score)), ', dont :');
    const parts = el('dl', null, 'parts');
    for (const [k, label] of Object.entries(PARTS)) {
      const div = el('div');
      const v = el('dd', dec.format((s.score_parts || {})[k] || 0));
      v.dataset.part = k;
      div.append(el('dt', label), v);
      parts.append(div);
    }
    const go = el('button', 'Proposer l’élève');
    go.type = 'button';
    go.setAttribute('aria-describedby', title.id);
    go.addEventListener('click', () => propose(s, go));
    li.append(title, meta, seats, score, parts, go);
    return li;
  }

  // idempotencyKey is one per pupil, offer and weeks: proposing again
  // after a lost answer replays the first proposal rather than making one.
  function idempotencyKey(pupil, s) {
    const k = pupil + ' ' + s.id + ' ' + s.weeks_for_pupil.join(',');
    if (!state.desk.keys[k]) {
      const b = crypto.getRandomValues(new Uint8Array(16));
      state.desk.keys[k] = 'desk-' + [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    }
    return state.desk.keys[k];
  }

  async function propose(s, button) {
    const desk = state.desk;
    const pupil = desk.pupil;
    button.disabled = true;
    $('propose-error').textContent = '';
    $('propose-status').textContent = 'Proposition en cours…';
    let r;
    let body;
    const session = state.session;
    try {
      r = await fetch('/v1/offers/' + encodeURIComponent(s.id) + '/proposals', {
        method: 'POST', cache: 'no-store',
        headers: { ...headers(), 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey(pupil, s) },
        body: JSON.stringify({ pupil_id: pupil, weeks: s.weeks_for_pupil }),
      });
      body = await r.json().catch(() => null);
    } catch {
      r = null;
    }
    if (session !== state.session) return; // signed out meanwhile
    if (r && r.status === 401) return signOut('Le jeton a été refusé ou a expiré.');
    if (state.desk !== desk) return; // another desk chosen meanwhile
    if (!r || !r.ok) {
      button.disabled = false;
      $('propose-status').textContent = '';
      $('propose-error').textContent = !r ? 'Le service ne répond pas : réessayez, la proposition ne sera pas faite deux fois.'
        : 'Proposition refusée : ' + ((body && body.error && body.error.message) || r.statusText);
      return;
    }
    $('propose-status').textContent = 'Élève ' + pupil + ' proposé pour « ' + s.title + ' » (' + s.weeks_for_pupil.join(', ') +
      ') : la candidature ' + body.id + ' attend la réponse de l’employeur.';
    $('propose-status').dataset.application = body.id;
    await refreshDesk(body.position);
    if (state.desk === desk) $('suggestions-h').focus();
  }

  async function applyDeskFilter() {
    const dep = $('desk-department').value.trim().toUpperCase();
    const uai = $('desk-school').value.trim().toUpperCase();
    if (dep && !/^(\d{2,3}|2[AB])$/.test(dep)) {
      $('desk-error').textContent = 'Un département s’écrit 94, 2A ou 974.';
      return;
    }
    if (uai && !/^[0-9]{7}[A-Z]$/.test(uai)) {
      $('desk-error').textContent = 'Une UAI a 7 chiffres et une lettre, par exemple 0941234A.';
      return;
    }
    Object.assign(state.desk, { department: dep, school: uai, pupil: '' });
    $('desk-pupil').hidden = true;
    await refreshDesk('');
  }

  // A round's preview: its figures beside first come's, on the same
  // market and lottery.
  async function showRound() {
    const id = $('round-id').value.trim().toLowerCase();
    $('round-error').textContent = '';
    if (!UUID.test(id)) {
      $('round-error').textContent = 'Un identifiant de tour a la forme 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44.';
      return;
    }
    let d;
    try {
      d = await get('/v1/rounds/' + id);
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      $('round-view').hidden = true;
      $('round-error').textContent = e.status === 404 ? 'Aucun tour ne porte cet identifiant.'
        : e.status === 403 ? 'Votre rôle ne donne pas accès aux tours.' : e.message;
      return;
    }
    renderRound(d);
  }

  function renderRound(d) {
    const p = d.preview;
    const fc = p.first_come;
    $('round-summary').textContent = 'Tour de la campagne ' + d.campaign_id + ', calculé le ' +
      new Date(d.computed_at).toLocaleString('fr-FR') + (d.published ? ', publié' : ', pas encore publié') + ' : ' +
      num.format(p.matches.length) + ' proposition' + (p.matches.length > 1 ? 's' : '') + (d.published ? ' faites.' : ' prêtes.');
    const rows = [
      ['pupils', 'Élèves du marché', p.pupils, fc.pupils],
      ['seats', 'Places libres du marché', p.seats, fc.seats],
      ['placed', 'Élèves placés', p.placed, fc.placed],
    ];
    for (const g of ['rep_plus', 'rep', 'qpv', 'none']) {
      if (!(g in (p.pupils_by_priority || {}))) continue;
      rows.push(['placed:' + g, 'dont ' + PRIORITY[g] + ' (sur ' + num.format(p.pupils_by_priority[g]) + ')',
        p.placed_by_priority[g] || 0, (fc.placed_by_priority || {})[g] || 0]);
    }
    rows.push(['distance_km_median', 'Distance médiane (km)', p.distance_km_median, fc.distance_km_median],
      ['distance_km_p90', '90ᵉ centile de la distance (km)', p.distance_km_p90, fc.distance_km_p90],
      ['seats_left', 'Places restantes', p.seats_left, fc.seats_left]);
    fill($('round-figures'), rows.map(([key, label, round, first]) => {
      const cell = (v) => {
        const td = el('td', dec.format(v || 0), 'num');
        td.dataset.value = String(v || 0);
        return td;
      };
      const name = el('th', label);
      name.scope = 'row';
      const tr = row([name, cell(round), cell(first)]);
      tr.dataset.key = key;
      return tr;
    }));
    $('round-view').hidden = false;
  }

  // --- signing in and out ---

  function showWho() {
    const c = state.claims;
    $('who').textContent = !state.token ? 'Authentification désactivée (développement)'
      : (ROLES[c && c.role] || (c && c.role) || 'jeton') + (c && c.sub ? ' · ' + c.sub : '');
    $('logout').hidden = !state.token;
  }

  function signOut(message) {
    state.session++;
    if (state.stream) state.stream.abort();
    state.stream = null;
    clearTimeout(state.slowTimer);
    state.slowTimer = 0;
    state.token = '';
    state.claims = null;
    state.uai = '';
    state.lines = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('convention-view').replaceChildren(); // names a pupil: not left for the next user
    $('convention-id').value = '';
    $('convention-pdf').hidden = true;
    state.desk = null; // the pupils listed are not left for the next user either
    $('desk-pupils').tBodies[0].replaceChildren();
    $('without').tBodies[0].replaceChildren();
    $('suggestions').replaceChildren();
    $('propose-status').textContent = '';
    $('round-view').hidden = true;
    $('board').hidden = true;
    $('login').hidden = false;
    $('logout').hidden = true;
    $('who').textContent = '';
    $('token-error').textContent = message || '';
    setLive(false, 'Non connecté');
    $('token').focus();
  }

  // start shows the board if the API answers with the token held (or
  // without one when the service runs with --auth=false).
  async function start() {
    state.claims = claimsOf(state.token);
    let stats;
    try {
      stats = await get('/v1/stats/offers');
    } catch (e) {
      if (e instanceof AuthError) return signOut(state.token ? 'Le jeton a été refusé ou a expiré.' : '');
      if (e.status === 403) return signOut('Ce rôle ne peut pas lire les statistiques.');
      setLive(false, 'Service indisponible');
      $('board-error').textContent = 'Le service ne répond pas : ' + e.message;
      $('board').hidden = false;
      setTimeout(start, 3000);
      return;
    }
    $('login').hidden = true;
    $('board').hidden = false;
    $('board-error').textContent = '';
    showWho();
    renderStats(stats);
    chooseSchool();
    chooseDesk();
    follow();
    refreshSlow();
  }

  // chooseSchool: a school's token follows its own school; the back office
  // (and everyone without authentication) may type a UAI, or give it in
  // the address as #school=UAI.
  function chooseSchool() {
    const role = state.claims && state.claims.role;
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('school') || '';
    $('school-view').hidden = true;
    if (role === 'school') {
      state.uai = state.claims.sub;
      $('school-form').hidden = true;
    } else if (!state.token || role === 'backoffice') {
      state.uai = /^[0-9]{7}[A-Z]$/.test(fromHash) ? fromHash : '';
      $('uai').value = state.uai;
      $('school-form').hidden = false;
    } else {
      $('school').hidden = true;
      return;
    }
    $('school').hidden = false;
  }

  // A convention's document: the fragment the API renders (its text
  // escaped there; nothing in it runs), and the PDF its parties sign.
  const CONVENTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const DENIED = { 403: 'Votre rôle ne donne pas accès à cette convention.', 404: 'Aucune convention ne porte cet identifiant.' };

  async function fetchDocument(id, format) {
    const session = state.session;
    const r = await fetch('/v1/conventions/' + id + '/document?format=' + format, { headers: headers(), cache: 'no-store' });
    if (session !== state.session) return abandoned();
    if (r.status === 401) throw new AuthError('unauthenticated');
    if (!r.ok) throw new Error(DENIED[r.status] || 'Le document n’a pas pu être lu (' + r.status + ').');
    return r;
  }

  async function showConvention() {
    const id = $('convention-id').value.trim().toLowerCase();
    $('convention-error').textContent = '';
    $('convention-pdf').hidden = true;
    if (!CONVENTION_ID.test(id)) {
      $('convention-error').textContent = 'Un identifiant de convention a la forme 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44.';
      return;
    }
    try {
      const html = await (await fetchDocument(id, 'html')).text();
      const article = new DOMParser().parseFromString(html, 'text/html').body.firstElementChild;
      $('convention-view').replaceChildren(document.importNode(article, true));
      $('convention-pdf').dataset.id = id;
      $('convention-pdf').hidden = false;
    } catch (e) {
      if (e instanceof AuthError) return signOut('Le jeton a été refusé ou a expiré.');
      $('convention-view').replaceChildren();
      $('convention-error').textContent = e.message;
    }
  }

  async function downloadConvention() {
    const id = $('convention-pdf').dataset.id;
    try {
      const url = URL.createObjectURL(await (await fetchDocument(id, 'pdf')).blob());
      const a = el('a');
      a.href = url;
      a.download = 'convention-' + id + '.pdf';
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      $('convention-error').textContent = e.message;
    }
  }

  async function loadMap() {
    try {
      const [svg, names] = await Promise.all([
        fetch('/assets/france.svg').then((r) => r.text()),
        fetch('/assets/refdata.json').then((r) => r.json()),
      ]);
      state.names = names;
      const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
      const node = document.importNode(doc.documentElement, true);
      node.setAttribute('aria-hidden', 'true');
      node.setAttribute('focusable', 'false');
      $('map').replaceChildren(node);
    } catch {
      $('map').textContent = 'La carte n’a pas pu être chargée.';
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      if (!token) {
        $('token-error').textContent = 'Collez un jeton.';
        return;
      }
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      $('token-error').textContent = '';
      start();
    });
    $('logout').addEventListener('click', () => signOut('Vous êtes déconnecté.'));
    $('metric').addEventListener('change', renderMap);
    $('school-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const uai = $('uai').value.trim().toUpperCase();
      if (!/^[0-9]{7}[A-Z]$/.test(uai)) {
        $('uai-error').textContent = 'Une UAI a 7 chiffres et une lettre, par exemple 0941234A.';
        return;
      }
      state.uai = uai;
      history.replaceState(null, '', '#school=' + uai);
      refreshSchool();
    });
    $('convention-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      showConvention();
    });
    $('convention-pdf').addEventListener('click', downloadConvention);
    $('desk-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      applyDeskFilter();
    });
    $('round-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      showRound();
    });
    await loadMap();
    start();
  });
})();
