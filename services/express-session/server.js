'use strict';
// A login service the way an Express tutorial writes one: a form with a CSRF
// token kept in the session, express-session's cookie, and a store chosen by
// SESSION_STORE. clw-cli's real-service tests (loadgen/tests/it/real_services.rs)
// drive it over loopback: `memory` is express-session's own MemoryStore,
// which its README says "will leak memory under most conditions" (sessions
// without maxAge are never pruned); `memorystore` is the bounded twin (an LRU
// of at most SESSION_MAX sessions, pruned every SESSION_CHECK_PERIOD_MS).
//
// Env: PORT (default 3000, bound on 127.0.0.1), SESSION_STORE=memory|memorystore,
// SESSION_MAX (memorystore's bound, default 2000), SESSION_PROFILE_BYTES,
// USERS_CSV (extra users).

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const session = require('express-session');
const client = require('prom-client');

const PORT = Number(process.env.PORT || 3000);
const STORE = process.env.SESSION_STORE || 'memory';
const SESSION_MAX = Number(process.env.SESSION_MAX || 2000);
const CHECK_PERIOD_MS = Number(process.env.SESSION_CHECK_PERIOD_MS || 10000);
// Bytes of profile data each logged-in session keeps (0 by default), as an
// app that caches the user's profile or cart in the session does; the tests
// use 2048 so a storm fills a small memory limit in seconds.
const PROFILE_BYTES = Number(process.env.SESSION_PROFILE_BYTES || 0);
// clw-cli's default [users] pool: user-N / clw-load-test.
const DEFAULT_PASSWORD = 'clw-load-test';

function loadUsers(file) {
  const users = new Map();
  if (!fs.existsSync(file)) return users;
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  for (const line of lines.slice(1)) { // header: username,password
    const [name, password] = line.split(',');
    users.set(name.trim(), (password || '').trim());
  }
  return users;
}
const csvUsers = loadUsers(process.env.USERS_CSV || path.join(__dirname, 'users.csv'));

function passwordOk(username, password) {
  if (typeof username !== 'string' || typeof password !== 'string') return false;
  if (csvUsers.has(username)) return csvUsers.get(username) === password;
  return /^user-\d+$/.test(username) && password === DEFAULT_PASSWORD;
}

function makeStore() {
  if (STORE === 'memory') return new session.MemoryStore();
  if (STORE === 'memorystore') {
    const MemoryStore = require('memorystore')(session);
    return new MemoryStore({ checkPeriod: CHECK_PERIOD_MS, max: SESSION_MAX });
  }
  console.error(`SESSION_STORE must be memory or memorystore, got ${JSON.stringify(STORE)}`);
  process.exit(2);
}
const store = makeStore();

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
new client.Gauge({
  name: 'sessions_active',
  help: 'Sessions held by the session store (store.length).',
  registers: [registry],
  collect() {
    return new Promise((resolve) => {
      store.length((err, n) => {
        if (!err) this.set(n);
        resolve();
      });
    });
  },
});
const logins = new client.Counter({
  name: 'logins_total',
  help: 'POST /login answers, by outcome.',
  labelNames: ['outcome'],
  registers: [registry],
});

const app = express();
app.disable('x-powered-by');
app.use(express.urlencoded({ extended: false }));
app.use(express.json());
app.use(session({
  name: 'session',
  secret: process.env.SESSION_SECRET || 'clw-real-services-not-a-secret',
  store,
  resave: false,
  saveUninitialized: false,
  cookie: {
    httpOnly: true,
    sameSite: 'lax',
    // Without a maxAge express-session's MemoryStore never drops a session;
    // memorystore prunes expired ones every checkPeriod.
    maxAge: STORE === 'memorystore' ? 10 * 60 * 1000 : undefined,
  },
}));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

app.get('/health', (req, res) => res.type('text').send('ok\n'));
// clw-cli --spawn-server polls GET /ready.
app.get('/ready', (req, res) => res.type('text').send('ready\n'));

app.get('/metrics', async (req, res) => {
  res.set('Content-Type', registry.contentType);
  res.send(await registry.metrics());
});

app.get('/login', (req, res) => {
  if (!req.session.csrf) req.session.csrf = crypto.randomBytes(16).toString('hex');
  res.type('html').send(`<!doctype html>
<html><head><title>Log in</title></head><body>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="${escape(req.session.csrf)}">
  <label>User <input name="username"></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Log in</button>
</form>
</body></html>
`);
});

app.post('/login', (req, res, next) => {
  const { username, password, csrf_token: csrf } = req.body || {};
  if (!req.session.csrf || typeof csrf !== 'string' || csrf !== req.session.csrf) {
    logins.inc({ outcome: 'csrf' });
    return res.status(403).json({ error: 'bad or missing csrf_token' });
  }
  if (!passwordOk(username, password)) {
    logins.inc({ outcome: 'denied' });
    return res.status(401).json({ error: 'bad username or password' });
  }
  // A new session id on login (no session fixation); the form's session is
  // destroyed with it.
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = { username, loggedInAt: new Date().toISOString() };
    if (PROFILE_BYTES > 0) req.session.profile = crypto.randomBytes(Math.ceil(PROFILE_BYTES / 2)).toString('hex').slice(0, PROFILE_BYTES);
    req.session.save((err2) => {
      if (err2) return next(err2);
      logins.inc({ outcome: 'ok' });
      res.redirect(302, '/me');
    });
  });
});

app.get('/me', (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  res.json(req.session.user);
});

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => {
    if (err) return next(err);
    res.clearCookie('session');
    res.redirect(302, '/login');
  });
});

const server = app.listen(PORT, '127.0.0.1', () => {
  console.log(`express-session (${STORE}) listening on 127.0.0.1:${server.address().port}`);
});
server.keepAliveTimeout = 65000;
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
