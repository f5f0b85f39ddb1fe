"""The GraphQL schema: types, queries, mutations and the request context they share."""
