// The document relay-compiler persists for `make check-clients` (relay.mjs copies this folder
// into a scratch folder and compiles it there, so no generated file lands in the repository).
import { graphql } from "relay-runtime";

export const RelayAuthorsQuery = graphql`
  query RelayAuthorsQuery($first: Int!) {
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
`;
