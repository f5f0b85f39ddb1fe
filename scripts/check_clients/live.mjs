// Subscriptions with the clients frontends use: Apollo Client's GraphQLWsLink and urql's
// subscriptionExchange, both over graphql-ws (a WebSocket at /graphql), and graphql-sse's
// client (an event stream, distinct connections mode). Each subscribes to bookChanged, then
// creates books over plain HTTP until the CREATED event of one of them arrives: the server
// opens a subscription a moment after the client sends it, and no message says when, so one
// write could land before it; a book a second removes the guess without hiding a loss (every
// book is one the check made, and the event must name it).

import { ApolloClient, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { Client, subscriptionExchange } from "@urql/core";
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws";

import { CheckFailed, expectEqual, nonce } from "./wire.mjs";

// Node before 22 has no global WebSocket; graphql-ws is given `ws`, but Apollo's link reads
// `WebSocket.CLOSED` itself when it reports an error.
globalThis.WebSocket ??= WebSocket;

const BOOK_CHANGED = "subscription { bookChanged { cursor kind id node { title } } }";
const CREATE_AUTHOR = `mutation LiveCheckAuthor($input: CreateAuthorInput!) {
  createAuthor(input: $input) { author { id } userErrors { code message } }
}`;
const CREATE_BOOK = `mutation LiveCheckBook($input: CreateBookInput!) {
  createBook(input: $input) { book { id title } userErrors { code message } }
}`;
const DELIVERY_MS = 30_000; // books keep being created until then
const WRITE_EVERY_MS = 1_000;

async function post(url, query, variables) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/graphql-response+json" },
    body: JSON.stringify({ query, variables }),
  });
  const answer = await response.json();
  if (response.status !== 200 || answer.errors || !answer.data) {
    throw new CheckFailed(`a write over HTTP failed: ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer.data;
}

/** What a subscription delivered, and a way to wait for one item of it. */
class Inbox {
  items = [];
  waiters = [];
  failure = null;

  push(item) {
    this.items.push(item);
    for (const wake of this.waiters.splice(0)) wake();
  }

  fail(error) {
    this.failure = error;
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The first item `matches` accepts, or null after `ms`; throws what the client reported. */
  async find(matches, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.failure) throw new CheckFailed(`the subscription failed: ${describe(this.failure)}`);
      const found = this.items.find(matches);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }
}

function describe(error) {
  if (Array.isArray(error)) return JSON.stringify(error); // graphql-ws: the GraphQL errors
  if (error?.code !== undefined && error?.reason !== undefined) return `closed ${error.code} ${error.reason}`;
  return error?.message ?? JSON.stringify(error);
}

/** Creates books until one's CREATED event is in `inbox`; that event, checked. */
async function bookCreatedArrives(url, inbox, label) {
  const author = (await post(url, CREATE_AUTHOR, { input: { name: `${label} ${nonce()}` } })).createAuthor;
  expectEqual(author.userErrors, [], "the author's userErrors");
  const created = new Map(); // title -> id
  const deadline = Date.now() + DELIVERY_MS;
  while (Date.now() < deadline) {
    const title = `${label} ${nonce()}`;
    const book = (await post(url, CREATE_BOOK, { input: { authorId: author.author.id, title } })).createBook;
    expectEqual(book.userErrors, [], "the book's userErrors");
    created.set(title, book.book.id);
    const event = await inbox.find(
      (data) => created.has(data?.bookChanged?.node?.title),
      WRITE_EVERY_MS,
    );
    if (event) {
      const change = event.bookChanged;
      expectEqual(change.kind, "CREATED", "the event's kind");
      expectEqual(change.id, created.get(change.node.title), "the event's id");
      expectEqual(typeof change.cursor, "string", "the event's cursor type");
      return `"${change.node.title}" arrived after ${created.size} book(s) created`;
    }
  }
  const got = inbox.items.map((item) => JSON.stringify(item)).join(", ") || "nothing";
  throw new CheckFailed(`no CREATED event for ${created.size} books in ${DELIVERY_MS / 1000} s; got ${got}`);
}

function webSocketUrl(url) {
  return url.replace(/^http/, "ws");
}

function wsClient(url) {
  return createWsClient({ url: webSocketUrl(url), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}

export async function apolloWebSocket(ctx) {
  const ws = wsClient(ctx.url);
  const client = new ApolloClient({ cache: new InMemoryCache(), link: new GraphQLWsLink(ws) });
  const inbox = new Inbox();
  const subscription = client.subscribe({ query: gql(BOOK_CHANGED) }).subscribe({
    next: (result) => (result.error ? inbox.fail(result.error) : inbox.push(result.data)),
    error: (error) => inbox.fail(error),
  });
  try {
    return `GraphQLWsLink: ${await bookCreatedArrives(ctx.url, inbox, "Apollo ws")}`;
  } finally {
    subscription.unsubscribe();
    client.stop();
    await ws.dispose();
  }
}

export async function urqlWebSocket(ctx) {
  const ws = wsClient(ctx.url);
  const client = new Client({
    url: ctx.url,
    exchanges: [
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(input, sink) }) };
        },
      }),
    ],
  });
  const inbox = new Inbox();
  const subscription = client.subscription(BOOK_CHANGED, {}).subscribe((result) =>
    result.error ? inbox.fail(result.error) : inbox.push(result.data),
  );
  try {
    return `subscriptionExchange with graphql-ws: ${await bookCreatedArrives(ctx.url, inbox, "urql ws")}`;
  } finally {
    subscription.unsubscribe();
    await ws.dispose();
  }
}

export async function graphqlSse(ctx) {
  const client = createSseClient({ url: ctx.url, singleConnection: false, retryAttempts: 0 });
  const inbox = new Inbox();
  const dispose = client.subscribe(
    { query: BOOK_CHANGED },
    {
      next: (result) => (result.errors ? inbox.fail(result.errors) : inbox.push(result.data)),
      error: (error) => inbox.fail(error),
      complete: () => inbox.fail(new Error("the stream completed")),
    },
  );
  try {
    return `distinct connections: ${await bookCreatedArrives(ctx.url, inbox, "graphql-sse")}`;
  } finally {
    dispose();
    client.dispose();
  }
}
