/**
 * The socket wire formats, on their own so that fan-out and presence (which each encode frames per
 * format) can both name them without importing each other.
 * @module
 */

/** The two wire formats of a socket: Phoenix V2 JSON (with binary frames) or protobuf Envelopes. */
export type WireFormat = "json" | "protobuf";
