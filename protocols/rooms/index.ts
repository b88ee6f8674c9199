// Public surface of rooms: the entry schemas (to register with the audit codec), the pure fold,
// and the service that runs them on libp2p. Other folders import from here only.
export { RoomError, isRoomError, type RoomErrorCode } from './errors.js'
export {
  roomSchemas, validateRoomCreate, validateRoomMember, validateRoomRekey, roomTopic, roomOfTopic, keyId, memberId, roomIdFor,
  encodeFrame, decodeFrame, isAgentName, isRoomId,
  ROOM_CREATE, ROOM_MEMBER, ROOM_REKEY, ROOM_KINDS, HISTORY_PROTOCOL, MAX_ROOM_HOSTS, MAX_MEMBERS, MAX_KEYS_PER_ENTRY,
  type HistoryMode, type RoomMember, type SealedKey, type RoomCreateBody, type RoomMemberBody, type RoomRekeyBody, type SignedRoomMessage
} from './codec.js'
export { createRoomsState, applyRoomEntry, foldRoom, admitMessage, canManage, memberHosts, type Room, type RoomsState, type EpochState, type StandingAt } from './state.js'
export { RoomService } from './service.js'
export { roomsSublevel, type RoomDb } from './history-store.js'
export type { RoomServiceOptions, RoomMembershipView, RoomLog, RoomLogger, RoomMessageOut, RoomInfo, RejectEvent, RoomStats } from './types.js'
