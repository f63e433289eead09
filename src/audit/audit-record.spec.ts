import {
  type AuditRow,
  ChainHead,
  ChainWalker,
  GENESIS_HASH,
  type StreamBounds,
  type UnchainedRow,
} from './audit-record';

const STREAM = '00000000-0000-4000-8000-000000000001';

function unchained(i: number): UnchainedRow {
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    streamId: '',
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    requestId: `r${i}`,
    surface: 'server',
    ip: null,
    tenantId: 't',
    objectId: 'o',
    clientId: 'c',
    principalName: null,
    principalKind: null,
    sessionId: null,
    serverId: null,
    serverSlug: 'weather',
    method: 'tools/call',
    rpcId: String(i),
    target: 'forecast',
    arguments: null,
    decision: 'allowed',
    rule: null,
    outcome: 'ok',
    latencyMs: 1.5,
    upstreamMs: null,
    upstreamStatus: 200,
    errorKind: null,
  };
}

function chain(count: number, key?: string, overrides: Partial<UnchainedRow> = {}): AuditRow[] {
  const head = new ChainHead(STREAM, key);
  return Array.from({ length: count }, (_, i) => head.link({ ...unchained(i + 1), ...overrides }));
}

const bounds = (rows: AuditRow[]): StreamBounds => ({
  streamId: STREAM,
  anchorSeq: 0,
  anchorHash: null,
  lastSeq: rows.at(-1)?.seq ?? 0,
  lastHash: rows.at(-1)?.hash ?? GENESIS_HASH,
});

function walk(rows: AuditRow[], stream = bounds(rows), key?: string) {
  const walker = new ChainWalker(stream, key);
  return walker.feed(rows) ?? walker.finish();
}

describe('audit hash chain', () => {
  it('hashes as chains already stored were hashed (format v1), with and without a key', () => {
    // Digests of these two records as every release so far computed them: a change of the canonical form or of
    // the hashing would make every stored chain fail verification.
    expect(chain(2).map((row) => row.hash)).toEqual([
      '24545f4ae1a6534c0935cb2b6f6a86ffbc2c4667a7b6b0f46bbb95f46394b542',
      'e71b7c0d6c19ba14254c0731dcfeb059660fba40537b2ce8d52fdabf2d717cd2',
    ]);
    expect(chain(2, 'chain-key').map((row) => row.hash)).toEqual([
      'a235a2b8227d876e276fb78d6c7d3c8f91bc88b6682dbbe059fac0352f64c4c9',
      '12f857d3aedd09dbe8eb921c798aa77364a5313a88e1539ce1b7b77f61888d91',
    ]);
  });

  it("hashes a record with its caller's kind in the v2 form (v1 and the kind), pinned as v1 is", () => {
    // sha256 of ["mcp-gateway.audit.v2", prevHash, ...the v1 fields, "app"], computed apart from this code.
    expect(chain(2, undefined, { principalKind: 'app' }).map((row) => row.hash)).toEqual([
      '305a034b0719147c2912fe3543630cf944aaf37da14b7bc83ae12e9387f72f65',
      '9971c50a19260bac4c3d2125d6e2e6b34c7bbb2525f6b909fc529595a5784951',
    ]);
    expect(chain(1, undefined, { principalKind: 'user' })[0]!.hash).toBe(
      '24adddb97106bc2fcabd566f0742c183f2be70ce08abe6769bb672a2a74a88d8',
    );
    expect(chain(1, 'chain-key', { principalKind: 'app' })[0]!.hash).toBe(
      '861dc178a39ee3534de706ee0741c1b189325b03c1869a61e80af50a9cd15692',
    );
  });

  it('hashes a row without the kind field (as read back from a batch an earlier version spooled) as v1', () => {
    const head = new ChainHead(STREAM);
    const spooledByEarlierVersion = (i: number): UnchainedRow => {
      const row: Partial<UnchainedRow> = unchained(i);
      delete row.principalKind;
      return row as UnchainedRow;
    };
    const rows = [head.link(spooledByEarlierVersion(1)), head.link(spooledByEarlierVersion(2))];
    expect(rows.map((row) => row.hash)).toEqual(chain(2).map((row) => row.hash));
    expect(walk(chain(2))).toBeUndefined();
    expect(walk(rows)).toBeUndefined();
  });

  it.each<[string, UnchainedRow['principalKind'], UnchainedRow['principalKind']]>([
    ['an app caller made a user', 'app', 'user'],
    ['a user made an app caller', 'user', 'app'],
    ["a caller's kind cleared", 'app', null],
    ['a kind given to a record stored without one', null, 'app'],
  ])('finds %s', (_name, stored, edited) => {
    const rows = chain(3, undefined, { principalKind: stored });
    const tampered = rows.map((row) => (row.seq === 2 ? { ...row, principalKind: edited } : row));
    expect(walk(tampered, bounds(rows))).toMatchObject({ seq: 2, reason: expect.stringMatching(/hash to its/) });
  });

  it('links records by seq and hash, starting from the genesis hash', () => {
    const rows = chain(3);
    expect(rows.map((row) => row.seq)).toEqual([1, 2, 3]);
    expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
    expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
    expect(walk(rows)).toBeUndefined();
  });

  it.each<[string, (rows: AuditRow[]) => AuditRow[], RegExp]>([
    ['an edited field', (rows) => rows.map((r) => (r.seq === 2 ? { ...r, outcome: 'refused' } : r)), /hash to its/],
    ['an edited time', (rows) => rows.map((r) => (r.seq === 2 ? { ...r, at: new Date(0) } : r)), /hash to its/],
    ['a deleted middle record', (rows) => rows.filter((r) => r.seq !== 2), /seq 2 is missing/],
    ['a deleted first record', (rows) => rows.slice(1), /seq 1 is missing/],
    ['a deleted last record', (rows) => rows.slice(0, -1), /seq 3\.\.3 are missing/],
    ['a swapped pair', (rows) => [rows[0]!, rows[2]!, rows[1]!], /missing|out of place/],
  ])('finds %s', (_name, tamper, reason) => {
    const rows = chain(3);
    expect(walk(tamper(rows), bounds(rows))?.reason).toMatch(reason);
  });

  it('finds a record re-hashed without the key when the chain is keyed', () => {
    const rows = chain(2, 'a-key-of-sixteen-chars');
    const forged = chain(2);
    expect(walk(forged, bounds(forged), 'a-key-of-sixteen-chars')?.reason).toMatch(/hashed without a key .* or forged/);
    expect(walk(rows, bounds(rows), 'a-key-of-sixteen-chars')).toBeUndefined();
  });

  it('starts from the anchor after retention', () => {
    const rows = chain(5);
    const kept = rows.slice(3);
    const anchored = { ...bounds(rows), anchorSeq: 3, anchorHash: rows[2]!.hash };
    expect(walk(kept, anchored)).toBeUndefined();
    expect(walk(kept, { ...anchored, anchorHash: 'f'.repeat(64) })?.reason).toMatch(/prev_hash/);
  });
});
