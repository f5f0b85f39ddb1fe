// graphql-http's GraphQL-over-HTTP audit against a running server: prints one line per audit
// and a summary, and fails when any MUST or SHOULD audit does not pass.
// Usage: node scripts/audit_graphql_http.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node scripts/audit_graphql_http.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
const tally = {};
let failed = 0;
for (const result of results) {
  const level = result.name.split(' ')[0];
  tally[level] ??= { ok: 0, total: 0 };
  tally[level].total += 1;
  if (result.status === 'ok') {
    tally[level].ok += 1;
    continue;
  }
  if (level !== 'MAY') failed += 1;
  const reason = result.reason ?? '';
  console.log(`${result.status.toUpperCase()} ${result.name}: ${reason}`);
}
for (const [level, { ok, total }] of Object.entries(tally)) {
  console.log(`${level} ${ok}/${total}`);
}
process.exit(failed ? 1 : 0);
