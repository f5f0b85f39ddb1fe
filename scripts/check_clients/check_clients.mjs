// The API with the GraphQL clients frontends use, in Node: one line per client, status 1 on
// any failure.
//
//   make check-clients                    (installs package.json's exact versions, runs this)
//   node scripts/check_clients/check_clients.mjs [http://127.0.0.1:PORT/graphql]
//
// With no URL it starts `python -m api dev --port 0` itself, on an embedded Postgres in a
// scratch folder (or on DATABASE_URL when that is set), and stops it afterwards. With a URL,
// DATABASE_URL must name that server's database: Relay's and codegen's documents are loaded
// into it with `python -m api documents load`. Either way the trusted-documents check starts
// a second `python -m api dev` with TRUSTED_DOCUMENTS=require on the same database.
//
// Every check prints what went over the wire when it fails: method, URL parameters or body,
// status and answer.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";

import { apolloGet, apolloPost } from "./apollo.mjs";
import { codegenTrusted } from "./codegen.mjs";
import { apolloWebSocket, graphqlSse, urqlWebSocket } from "./live.mjs";
import { relayPersisted } from "./relay.mjs";
import { embeddedDatabaseUrl, startDev, stopDev } from "./server.mjs";
import { urqlDefaults } from "./urql.mjs";
import { CheckFailed } from "./wire.mjs";

const CHECKS = [
  ["Apollo Client 4, APQ over POST", apolloPost],
  ["Apollo Client 4, APQ over GET (useGETForHashedQueries)", apolloGet],
  ["urql 6, defaults (GET for queries)", urqlDefaults],
  ["Relay, persisted queries by doc_id", relayPersisted],
  ["graphql-codegen client preset, persisted documents, TRUSTED_DOCUMENTS=require", codegenTrusted],
  ["Apollo Client 4, subscription over graphql-ws (GraphQLWsLink)", apolloWebSocket],
  ["urql 6, subscription over graphql-ws (subscriptionExchange)", urqlWebSocket],
  ["graphql-sse, subscription over an event stream", graphqlSse],
];

const CHECK_MS = 240_000; // a check that starts a server waits for it too
const workDir = mkdtempSync(path.join(os.tmpdir(), "check-clients-"));
const embeddedData = path.join(workDir, "pgdata");
const servers = [];

let stopping = false;

/** However this process ends, its servers end too: an interrupted run (Ctrl-C, SIGTERM, a
 * closed terminal) must not leave a server and its Postgres behind. */
async function stopServers() {
  stopping = true;
  for (const server of servers.splice(0).reverse()) await stopDev(server);
  rmSync(workDir, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => stopServers().finally(() => process.exit(128 + os.constants.signals[signal])));
}
// Output piped into `head` that has exited: the checks still run to the end and stop the servers.
process.stdout.on("error", () => {});

async function startServer(env = {}) {
  if (stopping) throw new CheckFailed("interrupted");
  const dev = startDev({ EMBEDDED_PGDATA: embeddedData, ...env });
  servers.push(dev);
  return dev.url;
}

async function context() {
  const given = process.argv[2];
  if (given) return { url: given, databaseUrl: process.env.DATABASE_URL, workDir, startServer };
  const url = await startServer();
  const databaseUrl = process.env.DATABASE_URL || embeddedDatabaseUrl(embeddedData);
  return { url, databaseUrl, workDir, startServer };
}

/** A client that never answers fails its check instead of hanging the run. */
function withDeadline(promise, name) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${name}: no result in ${CHECK_MS / 1000} s`)), CHECK_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A failed check says what was wrong; anything else thrown is a bug here, shown with its stack. */
function explained(error) {
  if (error instanceof CheckFailed) return error.message;
  if (error?.message === "fetch failed") return `cannot reach the server: ${error.cause?.message ?? error.cause}`;
  return error?.stack ?? String(error);
}

let failures = 0;
try {
  const ctx = await context();
  console.log(`server: ${ctx.url}`);
  for (const [name, check] of CHECKS) {
    try {
      console.log(`ok   ${name}: ${await withDeadline(check(ctx), name)}`);
    } catch (error) {
      failures += 1;
      console.log(`FAIL ${name}: ${explained(error)}`);
    }
  }
} catch (error) {
  failures += 1;
  console.log(`FAIL setting up: ${explained(error)}`);
} finally {
  await stopServers();
}
console.log(failures ? `check-clients FAILED (${failures})` : `check-clients passed (${CHECKS.length} clients)`);
process.exit(failures ? 1 : 0);
