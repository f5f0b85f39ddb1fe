// graphql-codegen's client preset with `persistedDocuments: true`: it generates gql/ from
// codegen/documents.ts against schema.graphql, with persisted-documents.json (`{"<sha256>":
// "<text>"}`) beside it and each document's hash in its `__meta__`. `python -m api documents
// load` stores the file; a second server with TRUSTED_DOCUMENTS=require runs those documents
// by `documentId` (GET and POST) and refuses any raw text with PERSISTED_QUERY_REQUIRED.
//
// The preset is passed as the module package.json pins, not by name: the CLI would resolve
// "client" to the older client preset it depends on itself (5.x, whose hashes are sha1).

import { cpSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

import { generate as runCodegen } from "@graphql-codegen/cli";
import { preset as clientPreset } from "@graphql-codegen/client-preset";

import { loadDocuments, root } from "./server.mjs";
import { expect, expectEqual, recordingFetch, reference, sha256Hex, shown } from "./wire.mjs";

const here = path.dirname(new URL(import.meta.url).pathname);
const STRICT = { Accept: "application/graphql-response+json" };
const NOT_STORED = "query NotStored { authors(first: 1) { totalCount } }";

async function generate(workDir) {
  const project = path.join(workDir, "codegen");
  mkdirSync(project, { recursive: true });
  cpSync(path.join(here, "codegen"), project, { recursive: true });
  const output = path.join(project, "gql") + "/";
  await runCodegen(
    {
      schema: path.join(root, "schema.graphql"),
      documents: [path.join(project, "*.ts")],
      generates: { [output]: { preset: clientPreset, presetConfig: { persistedDocuments: true } } },
      silent: true,
      errorsOnly: true,
    },
    true,
  );
  const manifest = path.join(output, "persisted-documents.json");
  return {
    manifest,
    documents: JSON.parse(readFileSync(manifest, "utf8")),
    generated: readFileSync(path.join(output, "graphql.ts"), "utf8"),
  };
}

/** The manifest's key for `operation` (client preset 6 writes `sha256:<hex>`), and its text. */
function hashOf(documents, operation) {
  const found = Object.entries(documents).find(([, text]) => text.includes(`query ${operation}`));
  expect(found, `${operation} is not in persisted-documents.json`);
  return found;
}

export async function codegenTrusted(ctx) {
  const { manifest, documents, generated } = await generate(ctx.workDir);
  const [documentId, text] = hashOf(documents, "CodegenAuthors");
  expect(documentId === `sha256:${sha256Hex(text)}`, `codegen's key ${documentId} is not sha256:<hex of its text>`);
  expect(generated.includes(`"hash":"${documentId}"`), "the generated document does not carry its id");
  const loaded = await loadDocuments(manifest, ctx.databaseUrl);

  const variables = { first: 2 };
  const expected = await reference(ctx.url, text, variables);
  const trusted = await ctx.startServer({ TRUSTED_DOCUMENTS: "require" });
  const wire = recordingFetch();
  const byGet = new URL(trusted);
  byGet.searchParams.set("documentId", documentId);
  byGet.searchParams.set("variables", JSON.stringify(variables));
  await wire.fetch(byGet, { headers: STRICT });
  await wire.fetch(trusted, {
    method: "POST",
    headers: { ...STRICT, "Content-Type": "application/json" },
    body: JSON.stringify({ documentId, variables }),
  });
  await wire.fetch(trusted, {
    method: "POST",
    headers: { ...STRICT, "Content-Type": "application/json" },
    body: JSON.stringify({ query: NOT_STORED }),
  });

  const trace = wire.sent.map(shown).join("\n    ");
  const [get, post, raw] = wire.sent;
  expect(get.status === 200 && get.etag, `documentId over GET was not 200 with an ETag:\n    ${trace}`);
  expectEqual(get.answer, { data: expected }, "documentId over GET");
  expect(post.status === 200, `documentId over POST was not 200:\n    ${trace}`);
  expectEqual(post.answer, { data: expected }, "documentId over POST");
  expect(
    raw.status === 400 && raw.answer?.errors?.[0]?.extensions?.code === "PERSISTED_QUERY_REQUIRED" &&
      !("data" in raw.answer),
    `raw text was not refused with PERSISTED_QUERY_REQUIRED:\n    ${trace}`,
  );
  return `client preset persisted ${Object.keys(documents).length} documents (sha256);` +
    ` ${loaded.replace(/^documents: /, "").replace(/, from .*/, "")};` +
    " under TRUSTED_DOCUMENTS=require documentId ran over GET and POST," +
    " raw text 400 PERSISTED_QUERY_REQUIRED";
}
