// The documents graphql-codegen's client preset persists for `make check-clients` (codegen.mjs
// copies this folder into a scratch folder and generates `gql/` there, with
// persisted-documents.json beside it; nothing generated lands in the repository).
import { graphql } from "./gql";

export const CodegenAuthors = graphql(`
  query CodegenAuthors($first: Int!) {
    authors(first: $first, orderBy: NAME_ASC) {
      totalCount
      edges {
        node {
          id
          name
        }
      }
    }
  }
`);

export const CodegenBooks = graphql(`
  query CodegenBooks($first: Int!) {
    books(first: $first) {
      totalCount
    }
  }
`);
