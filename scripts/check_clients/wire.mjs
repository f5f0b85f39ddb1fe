// What went over the wire: a fetch that records each request and its answer, so a check can
// say which method a client chose, what it put in the URL or body, and what came back.

import { createHash, randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";

/** A fetch for a client's options, and the list of exchanges it has made. */
export function recordingFetch() {
  const sent = [];
  async function fetchAndRecord(input, init = {}) {
    const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const body = typeof init.body === "string" ? safeJson(init.body) : undefined;
    const response = await fetch(input, init);
    const text = await response.clone().text();
    sent.push({
      method,
      params: Object.fromEntries(url.searchParams),
      body,
      status: response.status,
      etag: response.headers.get("etag"),
      answer: safeJson(text) ?? text,
    });
    return response;
  }
  return { fetch: fetchAndRecord, sent };
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Runs a client's requests; if the client gives up, the failure shows what went over the wire. */
export async function traced(wire, requests) {
  try {
    return await requests();
  } catch (error) {
    const trace = wire.sent.map(shown).join("\n    ");
    throw new CheckFailed(`${error?.message ?? error}\n    ${trace || "(nothing was sent)"}`);
  }
}

/** The request as it went: method and what it carried, for a failure message. */
export function shown(exchange) {
  const carried = exchange.method === "GET" ? exchange.params : exchange.body;
  return `${exchange.method} ${JSON.stringify(carried)} -> ${exchange.status} ${JSON.stringify(exchange.answer)}`;
}

export function sha256Hex(text) {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** A few letters unique to this run, so a document is new to the server's store each time. */
export function nonce() {
  return randomBytes(4).toString("hex");
}

/** The answer to a plain POST of `query`: the reference a client's data must equal. */
export async function reference(url, query, variables) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/graphql-response+json" },
    body: JSON.stringify({ query, variables }),
  });
  const answer = await response.json();
  if (response.status !== 200 || answer.errors || !answer.data) {
    throw new CheckFailed(`the reference POST failed: ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer.data;
}

export class CheckFailed extends Error {
  name = "CheckFailed";
}

export function expect(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

export function expectEqual(actual, expected, what) {
  expect(
    isDeepStrictEqual(actual, expected),
    `${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`,
  );
}
