// Relay with persisted queries: relay-compiler compiles relay/ against schema.graphql with
// `persistConfig.file`, which writes `{"<md5 id>": "<text>"}` and leaves only the id in the
// artifact; `python -m api documents load` stores that file; a Relay network layer sends
// `{doc_id, variables}` and relay-runtime reads the answer into its store.

import { execFile } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

import relayRuntime from "relay-runtime";

import { loadDocuments, root } from "./server.mjs";
import {
  CheckFailed, expect, expectEqual, recordingFetch, reference, shown, traced,
} from "./wire.mjs";

const { Environment, Network, RecordSource, Store, fetchQuery } = relayRuntime;
const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(import.meta.url);
const run = promisify(execFile);

/** relay-compiler on a copy of relay/ in `workDir`: the artifact and the persisted file. */
async function compile(workDir) {
  const project = path.join(workDir, "relay");
  mkdirSync(project, { recursive: true });
  cpSync(path.join(here, "relay"), path.join(project, "src"), { recursive: true });
  const persisted = path.join(project, "persisted-queries.json");
  writeFileSync(persisted, "{}\n"); // relay-compiler adds to this file, which must exist
  // Relay 21 writes its artifacts as ES modules, even for `language: "javascript"`.
  writeFileSync(path.join(project, "package.json"), '{"type": "module"}\n');
  writeFileSync(
    path.join(project, "relay.config.json"),
    JSON.stringify({
      src: "./src",
      schema: path.join(root, "schema.graphql"),
      language: "javascript",
      persistConfig: { file: "./persisted-queries.json" },
    }),
  );
  const compiler = path.join(path.dirname(require.resolve("relay-compiler/package.json")), "cli.js");
  try {
    await run(process.execPath, [compiler, "relay.config.json"], { cwd: project });
  } catch (error) {
    throw new CheckFailed(`relay-compiler failed: ${error.stdout}${error.stderr}`);
  }
  const generated = path.join(project, "src", "__generated__", "RelayAuthorsQuery.graphql.js");
  const { default: artifact } = await import(pathToFileURL(generated));
  return { artifact, persisted, documents: JSON.parse(readFileSync(persisted, "utf8")) };
}

function environment(url, wire) {
  const network = Network.create(async (params, variables) => {
    const response = await wire.fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/graphql-response+json" },
      body: JSON.stringify({ doc_id: params.id, variables }),
    });
    return response.json();
  });
  return new Environment({ network, store: new Store(new RecordSource()) });
}

export async function relayPersisted(ctx) {
  const { artifact, persisted, documents } = await compile(ctx.workDir);
  const id = artifact.params.id;
  expect(typeof id === "string" && artifact.params.text == null,
    `the artifact is not persisted: ${JSON.stringify(artifact.params)}`);
  expect(typeof documents[id] === "string", `${id} is not in relay-compiler's persisted file`);
  const loaded = await loadDocuments(persisted, ctx.databaseUrl);

  const variables = { first: 2 };
  const wire = recordingFetch();
  const data = await traced(wire, () =>
    fetchQuery(environment(ctx.url, wire), artifact, variables).toPromise(),
  );
  const expected = await reference(ctx.url, documents[id], variables);

  const trace = wire.sent.map(shown).join("\n    ");
  expect(wire.sent.length === 1, `expected 1 request, got:\n    ${trace}`);
  const [sent] = wire.sent;
  expect(sent.body?.doc_id === id && sent.body.query === undefined,
    `the request did not carry doc_id alone:\n    ${trace}`);
  expect(sent.status === 200 && !sent.answer?.errors, `the doc_id request failed:\n    ${trace}`);
  expectEqual(JSON.parse(JSON.stringify(data)), expected, "Relay's data");
  return `relay-compiler persisted ${Object.keys(documents).length} query (md5 ${id});` +
    ` ${loaded.replace(/^documents: /, "").replace(/, from .*/, "")}; POST doc_id answered, ${expected.authors.edges.length} authors as expected`;
}
