// Generated from proto/chorus.proto by proto/gen_schema.ts. Do not edit.
/**
 * The text of `proto/chorus.proto`, embedded so the schema loads without reading files (Deno Deploy).
 * @module
 */

/** The Chorus protobuf schema, character for character the file `proto/chorus.proto`. */
export const CHORUS_PROTO: string = `\
// Chorus wire messages: the protobuf form of the JSON bodies and of the Phoenix frames.
//
// Served at GET /proto/chorus.proto. A socket opened with \`format=protobuf\` exchanges binary
// frames that are each one Envelope. Conventions:
// - Integers are milliseconds (timestamps) or counters; decoders return them as JS numbers and
//   reject values past Number.MAX_SAFE_INTEGER.
// - \`*_json\` bytes hold UTF-8 JSON; empty bytes mean "absent".
// - \`optional\` marks fields whose absence differs from the default value (null refs, missing
//   optional JSON keys).
// - Repeated fields: an empty list and an absent key are the same.
syntax = "proto3";

package chorus.v1;

// Delivery priority. JSON: "low", "normal", "high", "critical". The numbers are Kronop's
// (LOW=0, NORMAL=1, HIGH=2, CRITICAL=3), so an unset priority (the proto3 default, 0) is "low"
// in protobuf, as it was for Kronop; JSON bodies without a priority mean "normal". Only "low"
// messages are dropped for slow consumers.
enum Priority {
  PRIORITY_LOW = 0;
  PRIORITY_NORMAL = 1;
  PRIORITY_HIGH = 2;
  PRIORITY_CRITICAL = 3;
}

// One update published to a reel (POST /api/v1/reels/:id/updates, event \`reel_update\`).
//
// Wire-compatible with Kronop's \`ReelUpdate\` (fields 1-7 have Kronop's numbers and wire types;
// fields 8-10 are Chorus's own, which Kronop's decoders skip). A message encoded with Kronop's
// schema is read as the same update: its int32 \`reel_id\` (field 2) is the reel id in decimal,
// its \`target_channel\` (field 5) delivers the update on that topic, its Priority numbers are the
// ones above. Chorus writes field 2 too whenever the reel id is a decimal int32 ("123"), so
// Kronop clients can decode what Chorus sends.
message ReelUpdate {
  string id = 1; // ULID
  int32 reel_id_int32 = 2; // Kronop's \`int32 reel_id\`; 0 = unset (use reel_id)
  // update_data when every value is a string; otherwise update_data_json is used.
  map<string, string> update_data = 3;
  repeated string target_users = 4;
  // A topic (\`reel:<id>\`, \`user:<id>\`) the update is delivered on, or a plain label.
  optional string target_channel = 5;
  int64 timestamp = 6; // ms since the Unix epoch
  Priority priority = 7;
  // update_data as a UTF-8 JSON object; takes precedence over the map when not empty.
  bytes update_data_json = 8;
  uint64 seq = 9; // the reel's update sequence number
  string reel_id = 10; // the reel id; when empty, reel_id_int32 in decimal
}

// The updates of a reel (GET /api/v1/reels/:id/updates with Accept: application/x-protobuf).
message ReelUpdateList {
  string reel_id = 1;
  uint64 seq = 2; // the reel's last seq
  bool complete = 3; // false when updates after \`since\` were trimmed or expired
  repeated ReelUpdate updates = 4; // oldest first
}

// A like, unlike, comment, share or view on a reel (event \`interaction\`).
message Interaction {
  string id = 1;
  string reel_id = 2;
  string type = 3; // like | unlike | comment | share | view
  string user_id = 4;
  optional string text = 5;
  int64 timestamp = 6; // ms since the Unix epoch
}

// A reel's counters (GET /api/v1/reels/:id).
message ReelState {
  string reel_id = 1;
  uint64 views = 2;
  uint64 likes = 3;
  uint64 comments = 4;
  uint64 shares = 5;
  int64 updated_at = 6; // ms since the Unix epoch
  uint64 seq = 7;
}

// A user's presence (POST/GET /api/v1/users/:id/presence).
message PresenceUpdate {
  string user_id = 1;
  string status = 2; // online | away | offline
  optional string current_reel = 3;
  optional string activity = 4;
  int64 last_seen = 5; // ms since the Unix epoch
}

// A context sync result or change (event \`delta\`): type full_context | delta | no_change.
message ContextDelta {
  optional string id = 1; // the context id
  optional uint64 from_version = 2;
  uint64 version = 3;
  string type = 4;
  bytes delta_json = 5; // the delta (chord object, JSON Patch array or merge patch); empty = absent
  bytes context_json = 6; // the full context; empty = absent
  optional int64 at = 7; // when the change was made (ms since the Unix epoch): retained deltas only
}

// The retained deltas of a context (GET /api/v1/contexts/:id/deltas): each entry is a
// ContextDelta of type "delta" with from_version, version, delta_json (chord) and at.
message ContextDeltaList {
  string id = 1; // the context id
  uint64 version = 2; // the context's current version
  repeated ContextDelta deltas = 3; // oldest first
}

// A write, delete or expiry of a key (event \`change\`).
message KvChange {
  string key = 1;
  string op = 2;
  uint64 version = 3;
  bytes value_json = 4; // the new value; empty = absent (delete, expiry)
  int64 at = 5; // ms since the Unix epoch
}

// The payload of a \`phx_reply\`: {"status", "response"}.
message Reply {
  string status = 1;
  oneof response {
    bytes response_json = 2; // the response as UTF-8 JSON
    bytes response_binary = 3; // a binary response (an ArrayBuffer for the client)
  }
}

// One Phoenix message [join_ref, ref, topic, event, payload] as a binary WebSocket frame.
message Envelope {
  optional string join_ref = 1; // unset = null
  optional string ref = 2; // unset = null
  string topic = 3;
  string event = 4;
  oneof payload {
    bytes json = 5; // any payload as a UTF-8 JSON object
    ReelUpdate reel_update = 6; // event reel_update
    Interaction interaction = 7; // event interaction
    ReelState reel_state = 8;
    PresenceUpdate presence = 9;
    ContextDelta context_delta = 10; // event delta
    KvChange kv_change = 11; // event change
    Reply reply = 12; // event phx_reply
    bytes binary = 13; // a raw binary payload (an ArrayBuffer for the client)
  }
}
`;
