// urql 6 with its defaults: `preferGetMethod` is 'within-url-limit', so a query goes over GET
// (its text in the URL) and a mutation over POST. The check creates an author with a name of
// its own, then reads it back by id over GET. (Its cache adds `__typename` to every selection;
// the query names them itself, so the plain POST it is compared with asks for the same.)

import { Client, cacheExchange, fetchExchange, gql } from "@urql/core";

import { expect, expectEqual, nonce, recordingFetch, reference, shown, traced } from "./wire.mjs";

const AUTHORS = gql`
  query UrqlAuthors($first: Int!) {
    authors(first: $first, orderBy: NAME_ASC) {
      __typename
      totalCount
      edges { __typename node { __typename id name } }
    }
  }
`;
const CREATE = gql`
  mutation UrqlCreateAuthor($input: CreateAuthorInput!) {
    createAuthor(input: $input) {
      author { id name }
      userErrors { code message }
    }
  }
`;
const NODE = gql`
  query UrqlAuthor($id: ID!) {
    node(id: $id) { id ... on Author { name } }
  }
`;

function answered(result, what) {
  if (result.error) throw new Error(`${what} failed: ${result.error.message}`);
  return result.data;
}

export async function urqlDefaults(ctx) {
  const wire = recordingFetch();
  const client = new Client({ url: ctx.url, exchanges: [cacheExchange, fetchExchange], fetch: wire.fetch });
  const variables = { first: 2 };
  // Taken before the mutation, which adds an author (and so changes totalCount).
  const expected = await reference(ctx.url, AUTHORS.loc.source.body, variables);
  const name = `urql check ${nonce()}`;
  const [authors, created, readBack] = await traced(wire, async () => {
    const authors = answered(await client.query(AUTHORS, variables).toPromise(), "the query");
    const created = answered(
      await client.mutation(CREATE, { input: { name } }).toPromise(),
      "the mutation",
    );
    const id = created.createAuthor.author?.id;
    const readBack = answered(
      await client.query(NODE, { id }, { requestPolicy: "network-only" }).toPromise(),
      "the read-back",
    );
    return [authors, created, readBack];
  });
  const id = created.createAuthor.author?.id;

  const trace = wire.sent.map(shown).join("\n    ");
  expect(wire.sent.length === 3, `expected 3 requests, got:\n    ${trace}`);
  const [query, mutation, node] = wire.sent;
  expect(query.method === "GET" && query.params.query, `the query did not go over GET:\n    ${trace}`);
  expect(query.status === 200 && query.etag, `the GET answer is not 200 with an ETag:\n    ${trace}`);
  expect(mutation.method === "POST", `the mutation did not go over POST:\n    ${trace}`);
  expect(node.method === "GET", `the read-back did not go over GET:\n    ${trace}`);
  expectEqual(authors, expected, "the query's data");
  expectEqual(created.createAuthor.userErrors, [], "the mutation's userErrors");
  expectEqual(created.createAuthor.author?.name, name, "the created author's name");
  expectEqual(readBack.node, { __typename: "Author", id, name }, "the author read back");
  return `query over GET (ETag), mutation over POST created "${name}", read back over GET`;
}
