"""The one front door: every GraphQL request is read, parsed, validated, authorised, costed,
admitted and counted here once, then executed by the planner or by the resolvers."""
