// The public surface of humphrey-ws.
export { WebSocketError, type WebSocketErrorCode, type HandshakeResponse } from './protocol/errors.js';
export { CloseCode, Opcode, isValidCloseCode } from './protocol/frame.js';
export { Message, type MessageLike, type BinaryPayload } from './message.js';
export { WebSocketStream, type CloseInfo, type StreamOptions, type UpgradeRequestInfo } from './stream/stream.js';
export {
  websocketHandler,
  handleUpgrade,
  type WebSocketHandler,
  type WebSocketHandlerOptions,
  type WebSocketRoute,
} from './stream/handler.js';
export {
  rejectUpgrade,
  type UpgradeOptions,
  type UpgradeDecision,
  type UpgradeAcceptance,
  type UpgradeRejection,
  type UpgradeHookRequest,
} from './node/upgrade.js';
export { connect, type ConnectOptions } from './stream/client.js';
export type { PerMessageDeflateOptions } from './protocol/deflate/negotiate.js';
export { Bus, BusReader, type BusOptions } from './stream/bus.js';
export {
  App,
  HttpRequest,
  HttpResponse,
  HttpAppError,
  serveDir,
  serveFile,
  contentTypeFor,
  matchPath,
  type RouteHandler,
  type StatelessRouteHandler,
  type WebSocketRouteHandler,
  type ErrorHandler,
  type CloseHook,
  type TlsOptions,
  type RunOptions,
  type CloseOptions,
  type AppAddress,
  type HttpResponseLike,
  type HttpBody,
  type HttpAppErrorCode,
  type ServeDirOptions,
  type StaticHandler,
} from './http/app.js';
export {
  AsyncWebSocketApp,
  AsyncStream,
  AsyncSender,
  asyncWebsocketHandler,
  type DeliveryReport,
  type BackpressurePolicy,
  type AsyncAppOptions,
  type AsyncRunOptions,
  type AttachOptions,
  type AsyncAppAddress,
  type ConnectHook,
  type AsyncWebSocketRoute,
  type ConnectHandler,
  type MessageHandler,
  type DisconnectHandler,
  type AsyncErrorHandler,
  type StreamStateFactory,
} from './event/app.js';
export type { HeartbeatOptions } from './event/heartbeat.js';
export {
  nodeOf,
  NODE_ID_FACTOR,
  type Broker,
  type BrokerMembership,
  type BrokerListener,
  type BrokerDirectListener,
  type BrokerJoinOptions,
  type BrokerHealthEvent,
  type BrokerHealthListener,
  type BrokerStats,
} from './broker/types.js';
export { InProcessBroker } from './broker/in-process.js';
export type { WorkerExit } from './broker/cluster.js';
export { Metrics, type MetricsSnapshot } from './node/metrics.js';
export { formatMetrics, metricsHandler, metricsRoute, METRICS_CONTENT_TYPE, type MetricsSource } from './http/metrics.js';
export {
  createUpgradeListener,
  type UpgradeRequest,
  type UpgradeListener,
  type UpgradeListenerOptions,
} from './node/listener.js';
