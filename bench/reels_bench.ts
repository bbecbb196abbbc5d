/**
 * Reel wire formats: JSON vs protobuf for a `reel_update` and an `interaction` broadcast — frame
 * sizes (printed once) and encode/decode cost, JSON as the baseline of each group.
 * Run: `deno bench -A bench/reels_bench.ts`.
 * @module
 */
import {
  decodeEnvelope,
  decodeInteraction,
  decodeReelUpdate,
  encodeEnvelope,
  encodeInteraction,
  encodeReelUpdate,
  type InteractionJson,
  type ReelUpdateJson,
} from "../proto/codec.ts";
import { broadcast, encodeText } from "../realtime/phoenix.ts";

const update: ReelUpdateJson = {
  id: "01J9Z3S7Q8K4T1V2W3X4Y5Z6A7",
  reel_id: "reel_12345",
  update_data: { caption: "sunset over the bay", likes_hint: 1204, tags: ["travel", "sea"] },
  priority: "normal",
  timestamp: 1767225600000,
  seq: 4821,
};
const interaction: InteractionJson = {
  id: "01J9Z3S7Q8K4T1V2W3X4Y5Z6A8",
  reel_id: "reel_12345",
  type: "like",
  user_id: "user_987654",
  timestamp: 1767225600123,
};
const updateFrame = broadcast("reel:reel_12345", "reel_update", update as never);
const interactionFrame = broadcast("reel:reel_12345", "interaction", interaction as never);
const updateJson = encodeText(updateFrame) as string;
const updatePb = encodeEnvelope(updateFrame);
const interactionJson = encodeText(interactionFrame) as string;
const interactionPb = encodeEnvelope(interactionFrame);
const bytes = (s: string) => new TextEncoder().encode(s).byteLength;
console.log(
  `frame bytes: reel_update json ${bytes(updateJson)} / protobuf ${updatePb.byteLength}; ` +
    `interaction json ${bytes(interactionJson)} / protobuf ${interactionPb.byteLength}; ` +
    `bare ReelUpdate ${encodeReelUpdate(update).byteLength}, Interaction ${
      encodeInteraction(interaction).byteLength
    }`,
);

Deno.bench("reel_update frame: JSON encode", { group: "encode update", baseline: true }, () => {
  encodeText(updateFrame);
});
Deno.bench("reel_update frame: protobuf Envelope encode", { group: "encode update" }, () => {
  encodeEnvelope(updateFrame);
});
Deno.bench("reel_update frame: JSON decode", { group: "decode update", baseline: true }, () => {
  JSON.parse(updateJson);
});
Deno.bench("reel_update frame: protobuf Envelope decode", { group: "decode update" }, () => {
  decodeEnvelope(updatePb);
});
Deno.bench(
  "interaction frame: JSON encode",
  { group: "encode interaction", baseline: true },
  () => {
    encodeText(interactionFrame);
  },
);
Deno.bench("interaction frame: protobuf Envelope encode", { group: "encode interaction" }, () => {
  encodeEnvelope(interactionFrame);
});
Deno.bench("interaction: JSON decode", { group: "decode interaction", baseline: true }, () => {
  JSON.parse(interactionJson);
});
const interactionMessage = encodeInteraction(interaction);
Deno.bench("interaction: protobuf Envelope decode", { group: "decode interaction" }, () => {
  decodeEnvelope(interactionPb);
});
Deno.bench("interaction: bare protobuf Interaction decode", { group: "decode interaction" }, () => {
  decodeInteraction(interactionMessage);
});
Deno.bench("ReelUpdate message: protobuf round trip", { group: "message" }, () => {
  decodeReelUpdate(encodeReelUpdate(update));
});
