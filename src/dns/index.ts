/** The authoritative DNS server for the pool zone (SPEC §4.1). */
export {
  DnsServer,
  DnsServerState,
  type DnsLogger,
  type DnsServerOptions,
  type DnsServerStats,
} from './dns-server.ts';
export {
  DnsWorkerPool,
  createDnsServer,
  type DnsWorkerPoolOptions,
  type PoolDnsServer,
} from './dns-worker-pool.ts';
export { Rcode, type DnsQuery } from './dns-message.ts';
export { type DnsResponse, type ResourceRecord } from './response-writer.ts';
export { answerQuery, type AnswerContext } from './zone-answer.ts';
