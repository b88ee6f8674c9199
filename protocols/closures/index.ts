// The public surface of protocols/closures: fetching Nix closures from mesh peers.
export { ClosuresError, WIRE_ERROR_CODES, type ClosuresErrorCode, type FetchAttempt } from './errors.js'
export {
  CLOSURE_PROTOCOL, MAX_HEADER_BYTES, MAX_REQUEST_BYTES, frame, encodeRequest, decodeRequest, encodeHeader, decodeHeader,
  type ClosureRequest, type ClosureHeader
} from './codec.js'
export { ClosureService, type ClosureServiceOptions, type ClosuresLogger } from './service.js'
export { sourcesFetcher, PEERS_SOURCE, type SourcesFetcherOptions } from './sources.js'
