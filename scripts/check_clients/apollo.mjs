// Apollo Client 4 with automatic persisted queries (APQ), over POST and over GET.
//
// `PersistedQueryLink` is what `createPersistedQueryLink` builds (Apollo Client 4 keeps that
// name as a deprecated alias). Its first request carries only the hash; the server answers
// PersistedQueryNotFound, so the link sends the text with the hash (always over POST, which
// registers it); a repeat of the same query is the hash alone again, and now it is found.
// Each run's operation has a name of its own, so the first request is a miss every time.

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

import {
  expect, expectEqual, nonce, recordingFetch, reference, sha256Hex, shown, traced,
} from "./wire.mjs";

function authorsQuery(name) {
  return `query ${name}($first: Int!) {
  authors(first: $first, orderBy: NAME_ASC) {
    __typename
    totalCount
    edges { __typename node { __typename id name } }
  }
}`;
}

async function runApq(url, { useGET }) {
  const name = `Apollo${useGET ? "Get" : "Post"}${nonce()}`;
  const text = authorsQuery(name);
  const variables = { first: 2 };
  const wire = recordingFetch();
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new PersistedQueryLink({
      sha256: sha256Hex,
      useGETForHashedQueries: useGET,
    }).concat(new HttpLink({ uri: url, fetch: wire.fetch })),
  });
  const query = gql(text);
  const [first, repeat] = await traced(wire, async () => [
    await client.query({ query, variables, fetchPolicy: "no-cache" }),
    await client.query({ query, variables, fetchPolicy: "no-cache" }),
  ]);
  client.stop();
  const expected = await reference(url, text, variables);

  const trace = wire.sent.map(shown).join("\n    ");
  expect(wire.sent.length === 3, `expected 3 requests (miss, register, hit), got:\n    ${trace}`);
  const [miss, register, hit] = wire.sent;
  const hashedMethod = useGET ? "GET" : "POST";
  const carried = (exchange) =>
    exchange.method === "GET"
      ? {
          query: exchange.params.query,
          extensions: exchange.params.extensions && JSON.parse(exchange.params.extensions),
        }
      : exchange.body ?? {};
  const hash = carried(miss).extensions?.persistedQuery?.sha256Hash;
  expect(miss.method === hashedMethod, `the first request went by ${miss.method}:\n    ${trace}`);
  expect(typeof hash === "string" && !carried(miss).query, `the first request was not hash-only:\n    ${trace}`);
  expect(
    miss.answer?.errors?.[0]?.extensions?.code === "PERSISTED_QUERY_NOT_FOUND",
    `the hash-only miss was not PERSISTED_QUERY_NOT_FOUND:\n    ${trace}`,
  );
  expect(
    register.method === "POST" && typeof register.body?.query === "string" &&
      register.body?.extensions?.persistedQuery?.sha256Hash === hash,
    `the fallback did not POST the text with its hash:\n    ${trace}`,
  );
  expect(hash === sha256Hex(register.body.query), "the link's hash is not the sha256 of its text");
  expect(
    hit.method === hashedMethod && !carried(hit).query &&
      carried(hit).extensions?.persistedQuery?.sha256Hash === hash && hit.status === 200,
    `the repeat was not a hash-only ${hashedMethod} answered 200:\n    ${trace}`,
  );
  if (useGET) expect(hit.etag, `the GET answer has no ETag:\n    ${trace}`);
  expectEqual(first.data, expected, "the first answer's data");
  expectEqual(repeat.data, expected, "the repeat's data");
  const how = useGET ? "GET" : "POST";
  return `${how} miss PERSISTED_QUERY_NOT_FOUND -> POST registered -> ${how} hash-only hit` +
    ` (sha256 ${hash.slice(0, 12)}…), ${expected.authors.edges.length} authors as expected`;
}

export const apolloPost = (ctx) => runApq(ctx.url, { useGET: false });
export const apolloGet = (ctx) => runApq(ctx.url, { useGET: true });
