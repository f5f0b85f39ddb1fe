// The servers the clients talk to, and the `python -m api` commands around them.
//
// `startDev` runs `python -m api dev --port 0` and resolves to its /graphql URL once uvicorn
// listens. With no DATABASE_URL, dev starts the embedded Postgres in EMBEDDED_PGDATA: the
// check gives it a fresh folder of its own, so its persisted-document store starts empty and
// a developer's .pgdata is never touched. A second dev on the same folder shares that server.

import { spawn, execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { promisify } from "node:util";

import { CheckFailed } from "./wire.mjs";

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
export const python = process.env.PYTHON ?? path.join(root, ".venv", "bin", "python");
const STARTUP_MS = 180_000;
const run = promisify(execFile);

export function startDev(env) {
  const server = spawn(python, ["-m", "api", "dev", "--port", "0"], {
    cwd: root,
    env: { ...process.env, LOG_FORMAT: "text", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new CheckFailed(`dev did not start:\n${log}`)), STARTUP_MS);
    server.stderr.on("data", (chunk) => {
      log += chunk;
      const found = /Uvicorn running on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(`${found[1]}/graphql`);
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new CheckFailed(`dev exited (${code}):\n${log}`));
    });
  });
  url.catch(() => {}); // a server that dies before anyone awaits it is reported by its user
  return { server, url, log: () => log };
}

export async function stopDev(dev) {
  if (dev.server.exitCode !== null || dev.server.signalCode !== null) return;
  const exited = new Promise((resolve) => dev.server.on("exit", resolve));
  dev.server.kill("SIGTERM");
  await exited;
}

/** The URL of the embedded Postgres running on `dataDir`, as pgserver spells it: its socket
 * folder is the fifth line of postmaster.pid. */
export function embeddedDatabaseUrl(dataDir) {
  let lines;
  try {
    lines = readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n");
  } catch {
    throw new CheckFailed(
      `no embedded Postgres runs in ${dataDir}: dev found a DATABASE_URL (in .env?);` +
        " export it, so that documents are loaded into the same database",
    );
  }
  const socketDir = lines[4]?.trim();
  if (!socketDir) throw new CheckFailed(`${dataDir}/postmaster.pid names no socket folder`);
  return `postgresql://postgres:@/postgres?host=${socketDir}`;
}

/** `python -m api documents load FILE` on DATABASE_URL; its one line of output. */
export async function loadDocuments(file, databaseUrl) {
  if (!databaseUrl) {
    throw new CheckFailed("DATABASE_URL is needed to load documents into the server's database");
  }
  try {
    const { stdout } = await run(python, ["-m", "api", "documents", "load", file], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
    return stdout.trim();
  } catch (error) {
    throw new CheckFailed(`documents load ${file} failed: ${error.stderr || error.message}`);
  }
}
