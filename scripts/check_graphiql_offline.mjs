// GraphiQL works with no network: headless Chromium, every request off 127.0.0.1 blocked.
//
//   make check-graphiql-offline            (installs what it needs, then runs this)
//   node scripts/check_graphiql_offline.mjs [http://127.0.0.1:PORT/graphql]
//
// With no URL it starts `python -m api dev --port 0` (embedded Postgres unless DATABASE_URL
// is set) and stops it afterwards. It loads the page, types a query into the editor, runs it,
// reads the result pane, saves a screenshot, and fails on any blocked request, any
// Content-Security-Policy violation, any page error, or a result without data.
//
// Needs Debian's `chromium` (CHROMIUM to use another) and npm's `playwright-core`, found in
// PLAYWRIGHT_CORE_DIR (the Makefile target installs it under .venv/npm-tools).

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import process from "node:process";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const toolsDir = process.env.PLAYWRIGHT_CORE_DIR ?? path.join(root, ".venv", "npm-tools");
const { chromium } = createRequire(path.join(toolsDir, "noop.js"))("playwright-core");
const SCREENSHOT = process.env.SCREENSHOT ?? "/tmp/graphiql-offline.png";
const QUERY = "{ authors(first: 2, orderBy: NAME_ASC) { totalCount edges { node { name } } } }";
const DEADLINE_MS = 180_000;

function startDev() {
  const python = process.env.PYTHON ?? path.join(root, ".venv", "bin", "python");
  const server = spawn(python, ["-m", "api", "dev", "--port", "0"], {
    cwd: root,
    env: { ...process.env, LOG_FORMAT: "text" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`dev did not start:\n${log}`)), DEADLINE_MS);
    server.stderr.on("data", (chunk) => {
      log += chunk;
      const found = /Uvicorn running on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(`${found[1]}/graphql`);
      }
    });
    server.on("exit", (code) => reject(new Error(`dev exited (${code}):\n${log}`)));
  });
  return { server, url };
}

async function check(url) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
  const blocked = [];
  const problems = [];
  try {
    const context = await browser.newContext();
    await context.route("**/*", (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === "127.0.0.1") return route.continue();
      blocked.push(route.request().url());
      return route.abort("internetdisconnected");
    });
    const page = await context.newPage();
    await page.addInitScript(() => {
      window.__violations = [];
      document.addEventListener("securitypolicyviolation", (event) => {
        window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });

    await page.goto(url, { waitUntil: "load" });
    const editor = page.locator(".graphiql-query-editor .CodeMirror");
    await editor.waitFor({ timeout: 30_000 });
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.type(QUERY);
    const typed = await page.evaluate(
      () => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.getValue(),
    );
    await page.locator(".graphiql-execute-button").click();
    await page.waitForFunction(
      () => {
        const pane = document.querySelector(".graphiql-response .CodeMirror");
        return pane && pane.CodeMirror.getValue().includes('"data"');
      },
      null,
      { timeout: 30_000 },
    );
    const shown = await page.evaluate(
      () => document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue(),
    );
    await page.screenshot({ path: SCREENSHOT });
    const violations = await page.evaluate(() => window.__violations);
    const result = JSON.parse(shown);

    console.log(`page: ${url}`);
    console.log(`typed: ${typed}`);
    console.log(`result: ${JSON.stringify(result)}`);
    console.log(`screenshot: ${SCREENSHOT}`);
    console.log(`blocked requests: ${blocked.length}`);
    console.log(`CSP violations: ${violations.length}`);
    if (typed.replace(/\s+/g, "") !== QUERY.replace(/\s+/g, "")) {
      problems.push("the editor does not hold the typed query");
    }
    if (result.errors || !result.data?.authors?.edges) problems.push(`bad result: ${shown}`);
    problems.push(...blocked.map((u) => `blocked request: ${u}`));
    problems.push(...violations.map((v) => `CSP violation: ${v}`));
  } finally {
    await browser.close();
  }
  return problems;
}

const given = process.argv[2];
const dev = given ? null : startDev();
let problems;
try {
  problems = await check(given ?? (await dev.url));
} catch (error) {
  problems = [String(error?.stack ?? error)];
} finally {
  if (dev) {
    dev.server.kill("SIGTERM");
    await new Promise((resolve) => {
      if (dev.server.exitCode !== null) resolve();
      else dev.server.on("exit", resolve);
    });
  }
}
for (const problem of problems) console.error(`FAIL ${problem}`);
console.log(problems.length ? "GraphiQL offline check FAILED" : "GraphiQL offline check passed");
process.exit(problems.length ? 1 : 0);
