// The SIP codec: RFC 3261 message parsing, framing (UDP datagrams, TCP streams) and serializing.
// No sockets here: transports feed bytes in and send what comes out.
export { buildResponse, type ResponseOptions } from './build-response.ts';
export { formatCSeq, parseCSeq, type CSeq } from './cseq.ts';
export { formatParams, parseParams, type SipParams } from './header-params.ts';
export {
  addRecordRoute,
  decrementMaxForwards,
  getMaxForwards,
  prependRoute,
  prependVia,
  removeTopRoute,
  removeTopVia,
  setRequestUri,
  topVia,
} from './message-mutations.ts';
export { formatNameAddr, parseNameAddr, type NameAddr } from './name-addr.ts';
export { isKeepAliveDatagram, parseDatagram } from './parse-datagram.ts';
export { reasonPhrase } from './reason-phrase.ts';
export { serializeMessage } from './serialize-message.ts';
export {
  addHeader,
  compactHeaderForms,
  getHeader,
  getHeaderLines,
  getHeaderValues,
  hasHeader,
  headerKey,
  isListHeader,
  prependHeaderValue,
  removeFirstHeaderValue,
  removeHeader,
  sameHeaderName,
  setHeader,
  splitHeaderValues,
} from './sip-headers.ts';
export { hasControlChar, isToken } from './sip-chars.ts';
export { BRANCH_MAGIC_COOKIE, newBranch, newTag } from './sip-ids.ts';
export { defaultSipLimits, resolveSipLimits, type SipLimits } from './sip-limits.ts';
export {
  cloneMessage,
  createRequest,
  emptyBody,
  isRequest,
  isResponse,
  SIP_VERSION,
  SipMessageKind,
  type SipHeader,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from './sip-message.ts';
export { SipErrorCode, SipParseError, sipStatusFor } from './sip-parse-error.ts';
export { SipStreamParser, SipStreamState, type SipStreamSink } from './sip-stream-parser.ts';
export { formatSipUri, isAbsoluteUri, parseSipUri, SipUriScheme, type SipUri } from './sip-uri.ts';
export { validateRequest, validateResponse, type MessageEssentials } from './validate-request.ts';
export { formatVia, parseVia, type Via } from './via.ts';
// The SIP front end's socket-free parts: peers, transactions, dialogs, the proxy core, the demo UAS.
export { SipDialogNoteEvent, type SipDialogNote } from './sip-dialog-note.ts';
export {
  isSelfAddress,
  isSelfUri,
  peerKey,
  samePeer,
  SipTransportName,
  uriTarget,
  viaProtocol,
  viaTarget,
  type SipPeer,
  type SipSelf,
  type SipSender,
} from './sip-peer.ts';
export { replyTarget, sharedOf, stampReceived, stampVia } from './via-received.ts';
export { ExpiryWheel } from './expiry-wheel.ts';
export {
  BranchDeriver,
  T1_MS,
  T2_MS,
  TIMER_64T1_MS,
  TIMER_C_MS,
  TransactionTable,
  transactionKey,
  type ServerTransaction,
} from './transaction-table.ts';
export { Dialog, DialogState, DialogUsage, dialogKey, type CallAttempt, type DialogParty } from './dialog.ts';
export {
  contactUri,
  DialogTracker,
  parseDeltaSeconds,
  parseSubscriptionState,
  splitRecordRoute,
  type SipSessionSink,
} from './dialog-tracker.ts';
export { cancelFor, MAINTENANCE_REASON, ownVia, requestToParty } from './dialog-requests.ts';
export { UacRequests } from './uac-requests.ts';
export { SipProxyCore, type SipProxyCoreOptions, type SipProxyStats } from './sip-proxy-core.ts';
export { DemoUas, type DemoUasStats } from './demo-uas.ts';
