import { randomUUID } from 'node:crypto';
import type { PrismaService } from '../src/database/prisma.service';
import {
  DiscoveryRepository,
  type ItemSearch,
  type SearchPosition,
  type SearchRow,
  searchWindowFor,
} from '../src/discovery/discovery.repository';
import type { ItemKind } from '../src/discovery/fingerprint';
import { startScratchPrisma } from './support/scratch-prisma';

/**
 * DiscoveryRepository.search against real PostgreSQL, on more items than the
 * window it reads in page order before it collects every match: whichever
 * plan answers, every page must be the one a plain filter-and-sort gives.
 */

const SERVERS = 60;
const TOOLS_PER_SERVER = 50; // 3,000 tools: more than the search window
const VERBS = ['get', 'list', 'create', 'delete', 'run'];
const NOUNS = ['issue', 'file', 'user', 'order', 'report', 'alert', 'table', 'event', 'metric', 'record'];

interface SeededServer {
  id: string;
  slug: string;
  name: string;
  status: string;
  tags: string[];
  title: string;
}

interface SeededItem {
  serverId: string;
  kind: ItemKind;
  name: string;
  gatewayName: string;
  title: string | null;
  description: string | null;
  displayName: string | null;
}

function seedServers(): SeededServer[] {
  return Array.from({ length: SERVERS }, (_, index) => {
    const padded = String(index).padStart(3, '0');
    // The last servers (last in gateway-name order too) are the only ones that mention Zephyr.
    const title = index >= SERVERS - 3 ? `Zephyr ${index}` : `Team ${index}`;
    return {
      id: randomUUID(),
      slug: `s${padded}`,
      name: `io.test/search-${padded}`,
      status: index % 7 === 3 ? 'disabled' : index % 5 === 2 ? 'deprecated' : 'active',
      tags: [index % 2 === 0 ? 'red' : 'blue'],
      title,
    };
  });
}

function seedItems(servers: readonly SeededServer[]): SeededItem[] {
  return servers.flatMap((server, index) => {
    const late = index >= SERVERS - 4;
    const tools = Array.from({ length: TOOLS_PER_SERVER }, (_, position): SeededItem => {
      const verb = VERBS[position % VERBS.length] as string;
      const noun = NOUNS[Math.floor(position / VERBS.length) % NOUNS.length] as string;
      const name = position === 0 && late ? `zz${verb}` : `${verb}_${noun}`;
      // LIKE's wildcards and escape character, literally, only in late servers' descriptions.
      const special = late && position === 1 ? ' 100%_done\\ok' : '';
      return {
        serverId: server.id,
        kind: 'tool',
        name,
        gatewayName: `${server.slug}__${name}`,
        title: `${verb.toUpperCase()} ${noun}`,
        description: `${verb} a ${noun} in ${server.title}.${special}`,
        displayName: name,
      };
    });
    const prompt: SeededItem = {
      serverId: server.id,
      kind: 'prompt',
      name: 'summarise',
      gatewayName: `${server.slug}__summarise`,
      title: null,
      description: `Summarises for ${server.title}`,
      displayName: 'summarise',
    };
    const resource: SeededItem = {
      serverId: server.id,
      kind: 'resource',
      name: `file:///${server.slug}/readme.md`,
      gatewayName: `mcpgw://${server.slug}/file:///${server.slug}/readme.md`,
      title: null,
      description: null,
      // Only its own name mentions Zephyr.
      displayName: `${server.title} readme`,
    };
    const template: SeededItem = {
      serverId: server.id,
      kind: 'resource_template',
      name: `db://${server.slug}/{id}`,
      gatewayName: `mcpgw://${server.slug}/db://${server.slug}/{id}`,
      title: 'Row',
      description: null,
      displayName: 'row',
    };
    // Fields side by side in server_items.search_text: a newline within a description, a name and a title that
    // a q spanning both would find there, letters whose lower case is not ASCII.
    const odd: SeededItem[] =
      index === 11
        ? [
            { name: 'odd_alpha', title: 'Beta', description: 'first line\nsecond line' },
            { name: 'odd_uber', title: 'ÜBER Größe', description: 'Ærøskøbing ferry' },
          ].map((fields) => ({
            serverId: server.id,
            kind: 'tool',
            gatewayName: `${server.slug}__${fields.name}`,
            displayName: fields.name,
            ...fields,
          }))
        : [];
    return [...tools, ...odd, prompt, resource, template];
  });
}

/** What a search must answer: filter, then sort in byte order (ASCII data: JavaScript's order is the same). */
function expected(
  servers: readonly SeededServer[],
  items: readonly SeededItem[],
  search: Omit<ItemSearch, 'limit' | 'after'>,
): SearchRow[] {
  const byId = new Map(servers.map((server) => [server.id, server]));
  const text = search.text?.toLowerCase();
  const contains = (value: string | null): boolean => value !== null && value.toLowerCase().includes(text ?? '');
  const resourceKind = (kind: ItemKind): boolean => kind === 'resource' || kind === 'resource_template';
  return items
    .filter((item) => {
      const server = byId.get(item.serverId);
      if (!server || !search.kinds.includes(item.kind)) return false;
      if (server.status === 'disabled') return false;
      if (search.tag !== undefined && !server.tags.includes(search.tag)) return false;
      if (search.server && 'slug' in search.server && server.slug !== search.server.slug) return false;
      if (!text) return true;
      return (
        contains(item.name) ||
        contains(item.title) ||
        contains(item.description) ||
        (resourceKind(item.kind) && contains(item.displayName))
      );
    })
    .sort(
      (a, b) =>
        compare(a.gatewayName, b.gatewayName) ||
        compare(a.serverId, b.serverId) ||
        compare(a.kind, b.kind) ||
        compare(a.name, b.name),
    )
    .map((item) => {
      const server = byId.get(item.serverId) as SeededServer;
      return {
        serverId: item.serverId,
        serverSlug: server.slug,
        serverName: server.name,
        kind: item.kind,
        name: item.name,
        gatewayName: item.gatewayName,
        title: item.title,
        description: item.description,
        fingerprint: `fp-${item.name}`,
        displayName: item.displayName,
        mimeType: null,
      };
    });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

describe('DiscoveryRepository.search on PostgreSQL, beyond its page-order window', () => {
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>> | undefined;
  let prisma: PrismaService;
  let repository: DiscoveryRepository;
  const servers = seedServers();
  const items = seedItems(servers);

  beforeAll(async () => {
    scratch = await startScratchPrisma();
    prisma = scratch.prisma;
    await prisma.server.createMany({
      data: servers.map((server) => ({
        id: server.id,
        name: server.name,
        slug: server.slug,
        title: server.title,
        url: `http://127.0.0.1:9/${server.slug}`,
        status: server.status,
        tags: server.tags,
      })),
    });
    await prisma.serverItem.createMany({
      data: items.map((item, position) => ({
        serverId: item.serverId,
        kind: item.kind,
        name: item.name,
        gatewayName: item.gatewayName,
        title: item.title,
        description: item.description,
        definition: item.displayName === null ? {} : { name: item.displayName },
        fingerprint: `fp-${item.name}`,
        position,
      })),
    });
    repository = new DiscoveryRepository(prisma);
  });

  afterAll(async () => {
    await scratch?.close();
  });

  /** Every page of a search, following the last row of each as the cursor. */
  async function allPages(search: Omit<ItemSearch, 'limit' | 'after'>, limit: number): Promise<SearchRow[][]> {
    const pages: SearchRow[][] = [];
    let after: SearchPosition | undefined;
    for (;;) {
      const rows = await repository.search({ ...search, after, limit });
      pages.push(rows);
      const last = rows[rows.length - 1];
      if (rows.length < limit || !last) return pages;
      after = { gatewayName: last.gatewayName, serverId: last.serverId, kind: last.kind, name: last.name };
    }
  }

  const tools: ItemKind[] = ['tool'];
  it.each<[string, Omit<ItemSearch, 'limit' | 'after'>]>([
    ['no q', { kinds: tools }],
    ['a q matching many rows', { kinds: tools, text: 'ORDER' }],
    ['a q whose matches all sort last', { kinds: tools, text: 'zephyr' }],
    ['a q whose matches sort last, with a tag', { kinds: tools, text: 'Zephyr', tag: 'red' }],
    // s003 is disabled and its matches sort first: a page of them must not end the search.
    ['a q whose first matches are a disabled server', { kinds: tools, text: 'in Team 3' }],
    ['a q matching nothing', { kinds: tools, text: 'qqxz' }],
    ['a q under three characters (no trigram), matching late rows only', { kinds: tools, text: 'zZ' }],
    ['a one-character q', { kinds: tools, text: 'k' }],
    ['a literal %', { kinds: tools, text: '%' }],
    ['a literal _', { kinds: tools, text: '_' }],
    ['a literal backslash', { kinds: tools, text: '\\' }],
    ['wildcards and backslash together, literally', { kinds: tools, text: '0%_done\\o' }],
    ['a pattern the wildcards would widen', { kinds: tools, text: '1_0' }],
    ['a tag only', { kinds: tools, tag: 'blue' }],
    ['one server by slug, with q', { kinds: tools, text: 'get', server: { slug: 's058' } }],
    ['a newline within a description', { kinds: tools, text: 'LINE\nsecond' }],
    ['a newline between name and title (no match)', { kinds: tools, text: 'alpha\nbeta' }],
    ['title then description (no match)', { kinds: tools, text: 'Beta\nfirst' }],
    ['name and title run together (no match)', { kinds: tools, text: 'odd_alphabeta' }],
    ['non-ASCII letters in another case', { kinds: tools, text: 'über grö' }],
    ['non-ASCII letters in upper case', { kinds: tools, text: 'ÆRØSKØBING' }],
    ['prompts', { kinds: ['prompt'], text: 'zephyr' }],
    ['resources and templates, by their own name', { kinds: ['resource', 'resource_template'], text: 'ZEPHYR' }],
    ['resources and templates, all', { kinds: ['resource', 'resource_template'] }],
  ])('answers %s as a filter-and-sort would, page by page', async (_what, search) => {
    const want = expected(servers, items, search);
    for (const limit of [7, 101]) {
      const pages = await allPages(search, limit);
      expect(pages.flat().map(identity)).toEqual(want.map(identity));
      expect(pages.flat()).toEqual(want);
      // Full pages until the last one.
      expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
    }
  });

  it('finds the late matches the page-order window cannot hold', () => {
    // The data set is what makes the cases above exercise both plans: say so, so a change to it is noticed.
    const late = expected(servers, items, { kinds: tools, text: 'zephyr' });
    expect(late.length).toBeGreaterThan(0);
    const all = expected(servers, items, { kinds: tools });
    const widest = searchWindowFor(101);
    expect(all.length).toBeGreaterThan(widest);
    expect(all.findIndex((row) => row.gatewayName === late[0]?.gatewayName)).toBeGreaterThan(widest);
    // And the cases about fields side by side: the first two match, the next three do not.
    expect(expected(servers, items, { kinds: tools, text: 'LINE\nsecond' })).toHaveLength(1);
    expect(expected(servers, items, { kinds: tools, text: 'über grö' })).toHaveLength(1);
    const disabledFirst = expected(servers, items, { kinds: tools, text: 'in Team 3' });
    expect(servers[3]?.status).toBe('disabled');
    expect(disabledFirst.length).toBeGreaterThan(101);
    expect(disabledFirst.every((row) => row.serverSlug > 's003')).toBe(true);
    for (const text of ['alpha\nbeta', 'Beta\nfirst', 'odd_alphabeta']) {
      expect(expected(servers, items, { kinds: tools, text })).toEqual([]);
    }
  });
});

function identity(row: SearchRow): string {
  return `${row.gatewayName} ${row.serverId} ${row.kind} ${row.name}`;
}
