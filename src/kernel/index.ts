export {
  chainName,
  chainScript,
  maxListingBytes,
  parseChainListing,
  ruleChainPriority,
  ruleKey,
  tableName,
  type ChainListing,
  type RefusalRule,
} from './nft-script.ts';
export { maxSocketLines, parseSockets, ssArgs } from './socket-table.ts';
export { runCommand, systemCommands, type CommandResult, type KernelCommands } from './kernel-commands.ts';
export { MemberChain, memberChain, type RuleWant } from './member-chain.ts';
export {
  checkKernelPath,
  systemProbe,
  type KernelListenerSite,
  type PreflightProbe,
} from './kernel-preflight.ts';
export { SocketEvents } from './socket-events.ts';
